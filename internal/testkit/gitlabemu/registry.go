package gitlabemu

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/emukit"
)

// RegistryService is the service name GitLab's registry challenge announces.
const RegistryService = "container_registry"

// Access is one entry of a registry token's "access" claim (distribution token spec).
type Access struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

type registryClaims struct {
	Issuer    string   `json:"iss"`
	Audience  string   `json:"aud"`
	Subject   string   `json:"sub"`
	IssuedAt  int64    `json:"iat"`
	NotBefore int64    `json:"nbf"`
	Expires   int64    `json:"exp"`
	ID        string   `json:"jti"`
	Access    []Access `json:"access"`
}

func (s *Server) challenge(w http.ResponseWriter, r *http.Request, extra string) {
	w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="http://%s/jwt/auth",service="%s"%s`, r.Host, RegistryService, extra))
	emukit.WriteJSON(w, http.StatusUnauthorized, map[string]any{"errors": []map[string]any{{"code": "UNAUTHORIZED", "message": "authentication required", "detail": nil}}})
}

// registryPing is GET /v2/: 200 with a valid registry token, else the challenge.
func (s *Server) registryPing(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.registryToken(r); ok {
		w.Header().Set("Docker-Distribution-Api-Version", "registry/2.0")
		emukit.WriteJSON(w, http.StatusOK, map[string]any{})
		return
	}
	s.challenge(w, r, "")
}

// registryResource serves /v2/<name>/tags/list and /v2/<name>/manifests/<ref> to a bearer
// whose token grants pull on <name>: the proof that a login can actually pull.
func (s *Server) registryResource(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/v2/")
	var name string
	switch {
	case strings.HasSuffix(rest, "/tags/list"):
		name = strings.TrimSuffix(rest, "/tags/list")
	case strings.Contains(rest, "/manifests/"):
		name = rest[:strings.LastIndex(rest, "/manifests/")]
	default:
		emukit.WriteJSON(w, http.StatusNotFound, map[string]any{"errors": []map[string]any{{"code": "NOT_FOUND", "message": "not found"}}})
		return
	}
	c, ok := s.registryToken(r)
	if !ok || !grantsPull(c.Access, name) {
		s.challenge(w, r, fmt.Sprintf(`,scope="repository:%s:pull",error="insufficient_scope"`, name))
		return
	}
	if strings.HasSuffix(rest, "/tags/list") {
		emukit.WriteJSON(w, http.StatusOK, map[string]any{"name": name, "tags": []string{"latest"}})
		return
	}
	emukit.WriteJSON(w, http.StatusNotFound, map[string]any{"errors": []map[string]any{{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}}})
}

func grantsPull(access []Access, name string) bool {
	for _, a := range access {
		if a.Type == "repository" && a.Name == name && (slices.Contains(a.Actions, "pull") || slices.Contains(a.Actions, "*")) {
			return true
		}
	}
	return false
}

// jwtAuth is GitLab's registry token endpoint, /jwt/auth?service=container_registry&scope=...
func (s *Server) jwtAuth(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("service") != RegistryService {
		emukit.WriteJSON(w, http.StatusNotFound, map[string]any{"message": "404 Not Found"})
		return
	}
	user, pass, hasAuth := r.BasicAuth()
	s.mu.Lock()
	defer s.mu.Unlock()
	var p *principal
	if hasAuth {
		// The username is not read: any non-blank value works with a token (GitLab's
		// personal_access_token_check), except the CI job token's reserved name.
		if user != "" && user != "gitlab-ci-token" {
			p = s.authenticate(pass)
		}
		if p == nil {
			emukit.WriteJSON(w, http.StatusUnauthorized, map[string]any{"errors": []map[string]any{{"code": "UNAUTHORIZED",
				"message": "HTTP Basic: Access denied. If a token was provided, it was either incorrect, expired, or improperly scoped."}}})
			return
		}
		if !hasScope(p.scopes, "api", "read_registry", "write_registry") {
			emukit.WriteJSON(w, http.StatusForbidden, map[string]any{"errors": []map[string]any{{"code": "DENIED", "message": "access forbidden"}}})
			return
		}
	}
	var granted []Access
	for _, sc := range q["scope"] {
		parts := strings.Split(sc, ":")
		if len(parts) != 3 || parts[0] != "repository" {
			continue
		}
		name := strings.ToLower(parts[1])
		if slices.Contains(strings.Split(parts[2], ","), "pull") && s.mayPull(p, name) {
			granted = append(granted, Access{Type: "repository", Name: name, Actions: []string{"pull"}})
		}
	}
	if p == nil && len(granted) == 0 {
		emukit.WriteJSON(w, http.StatusForbidden, map[string]any{"errors": []map[string]any{{"code": "DENIED", "message": "access forbidden"}}})
		return
	}
	now := s.Now()
	life := s.opts.RegistryTokenLifetime
	if life <= 0 {
		life = 15 * time.Minute
	}
	sub := ""
	if p != nil {
		sub = p.username
	}
	if granted == nil {
		granted = []Access{} // GitLab answers 200 with "access": [] rather than refusing
	}
	tok := s.sign(registryClaims{Issuer: "gitlab-issuer", Audience: RegistryService, Subject: sub, IssuedAt: now.Unix(),
		NotBefore: now.Add(-5 * time.Second).Unix(), Expires: now.Add(life).Unix(), ID: emukit.RandHex(16), Access: granted})
	emukit.WriteJSON(w, http.StatusOK, map[string]any{"token": tok})
}

// mayPull needs s.mu held. name is an image path: the project is its longest prefix that is
// a project path.
func (s *Server) mayPull(p *principal, name string) bool {
	var proj *Project
	for _, pr := range s.projects {
		pp := strings.ToLower(pr.Path)
		if (name == pp || strings.HasPrefix(name, pp+"/")) && (proj == nil || len(pp) > len(proj.Path)) {
			proj = pr
		}
	}
	if proj == nil {
		return false
	}
	if proj.Public {
		return true
	}
	if p == nil || !hasScope(p.scopes, "api", "read_registry") {
		return false
	}
	// read_container_image comes with the Reporter role on a private project.
	return s.level(p, "projects", proj.Path) >= Reporter
}

func (s *Server) sign(c registryClaims) string {
	enc := base64.RawURLEncoding
	header, _ := json.Marshal(map[string]string{"alg": "HS256", "typ": "JWT", "kid": "gitlab-emulator"})
	payload, _ := json.Marshal(c)
	signing := enc.EncodeToString(header) + "." + enc.EncodeToString(payload)
	mac := hmac.New(sha256.New, s.jwtKey)
	mac.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(mac.Sum(nil))
}

// registryToken reads and checks the request's bearer token.
func (s *Server) registryToken(r *http.Request) (registryClaims, bool) {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return registryClaims{}, false
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return registryClaims{}, false
	}
	mac := hmac.New(sha256.New, s.jwtKey)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, mac.Sum(nil)) {
		return registryClaims{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	var c registryClaims
	if err != nil || json.Unmarshal(payload, &c) != nil || s.Now().Unix() >= c.Expires {
		return registryClaims{}, false
	}
	return c, true
}
