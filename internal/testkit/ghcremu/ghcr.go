// Package ghcr is a protocol-faithful emulator of the two GitHub hosts the
// github-container-registry upstream talks to, written from GitHub's public REST documentation
// and the distribution token spec:
//
//   - api.github.com: GET /user with a token answers 200 with the token's owner, its classic
//     scopes in X-OAuth-Scopes and, for an expiring token, GitHub-Authentication-Token-Expiration
//     ("2026-01-02 03:04:05 UTC"); an unknown, revoked or expired token gets 401 "Bad
//     credentials". Fine-grained tokens carry no X-OAuth-Scopes header, as on GitHub.
//   - ghcr.io: GET /v2/ answers 401 with a Bearer challenge whose realm is /token on the same
//     host:port; GET /token?service=ghcr.io&scope=repository:<owner>/<image>:pull turns Basic
//     credentials into a registry token. A refused credential gets 403 DENIED ("requested access
//     to the resource is denied"), which is what ghcr.io answers for an expired or revoked PAT;
//     an anonymous request for a package that is not public gets 401 UNAUTHORIZED.
//
// GitHub has no API that creates personal access tokens, so neither does the emulator: tests put
// tokens in with AddToken, as a person would create them in the web UI, and take them away with
// Revoke. One server plays both hosts so a test needs one URL. It is used by the tests and by
// `make demo`, and is tested itself.
package ghcremu

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/emukit"
)

// RegistryService is the service name ghcr.io's challenge announces.
const RegistryService = "ghcr.io"

// ExpirationLayout is how GitHub writes GitHub-Authentication-Token-Expiration.
const ExpirationLayout = "2006-01-02 15:04:05 MST"

// Options configure the emulator.
type Options struct {
	// Now is the clock tokens expire against; nil means time.Now.
	Now func() time.Time
	// ExpirationZone, when set, makes the expiry header carry a numeric offset in that zone
	// ("2023-04-26 20:23:26 +0200"), which GitHub sends for some tokens (go-github issue 2649).
	ExpirationZone *time.Location
}

// Token is a GitHub token as the emulator stores it. Value is secret.
type Token struct {
	// Value is what a client sends, e.g. "ghp_…" for a classic PAT.
	Value string
	// User is the GitHub login the token belongs to.
	User string
	// Scopes are the classic OAuth scopes, e.g. "read:packages"; ignored when FineGrained.
	Scopes []string
	// ExpiresAt is zero for a token that never expires.
	ExpiresAt time.Time
	// FineGrained marks a fine-grained PAT: /user works, but no X-OAuth-Scopes header is sent
	// and ghcr.io refuses it (packages accept only classic PATs).
	FineGrained bool
	// Revoked is set by Revoke.
	Revoked bool
}

// Package is a container package on ghcr.io.
type Package struct {
	// Name is "<owner>/<image>".
	Name string
	// Public packages can be pulled anonymously and with any valid token.
	Public bool
	// Readers are logins granted read access besides the owner namespace.
	Readers []string
}

// Call is one request the emulator answered.
type Call = emukit.Call

// Server is the emulator. Create it with New.
type Server struct {
	emukit.Recorder
	opts Options

	mu        sync.Mutex
	tokens    map[string]*Token
	order     []string
	packages  map[string]Package
	regTokens map[string]time.Time
}

// New returns an emulator holding the given tokens.
func New(opts Options, tokens ...Token) *Server {
	s := &Server{opts: opts, tokens: map[string]*Token{}, packages: map[string]Package{}, regTokens: map[string]time.Time{}}
	for _, t := range tokens {
		s.AddToken(t)
	}
	return s
}

// AddToken stores a token, as a person creating one in GitHub's settings would; a token with
// the same value is replaced.
func (s *Server) AddToken(t Token) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cp := t
	cp.Scopes = slices.Clone(t.Scopes)
	if _, ok := s.tokens[t.Value]; !ok {
		s.order = append(s.order, t.Value)
	}
	s.tokens[t.Value] = &cp
}

// Revoke marks a token revoked (deleted in GitHub's settings); it reports whether it existed.
func (s *Server) Revoke(value string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[value]
	if ok {
		t.Revoked = true
	}
	return ok
}

// AddPackage adds or replaces a package. Packages in a user's own namespace need not be added:
// a token with read:packages may pull "<its user>/<anything>".
func (s *Server) AddPackage(p Package) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p.Readers = slices.Clone(p.Readers)
	s.packages[p.Name] = p
}

// Tokens returns a copy of every stored token (secrets included, for assertions).
func (s *Server) Tokens() []Token {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Token, 0, len(s.order))
	for _, v := range s.order {
		cp := *s.tokens[v]
		cp.Scopes = slices.Clone(cp.Scopes)
		out = append(out, cp)
	}
	return out
}

// RegistryTokens returns every registry token /token handed out (secrets, for leak scans).
func (s *Server) RegistryTokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.regTokens))
	for t := range s.regTokens {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

func (s *Server) now() time.Time {
	if s.opts.Now != nil {
		return s.opts.Now()
	}
	return time.Now()
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.Record(w, r, emukit.AuthScheme(r), s.serve)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if st := s.TakeFault(r); st != 0 {
		if st == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		if strings.HasPrefix(r.URL.Path, "/v2") || r.URL.Path == "/token" {
			emukit.WriteJSON(w, st, registryErrors("UNKNOWN", "injected failure"))
		} else {
			emukit.WriteJSON(w, st, map[string]any{"message": "injected failure", "documentation_url": "https://docs.github.com/rest"})
		}
		return
	}
	switch p := r.URL.Path; {
	case p == "/user":
		s.user(w, r)
	case p == "/v2/" || p == "/v2":
		s.registryPing(w, r)
	case p == "/token":
		s.registryToken(w, r)
	default:
		emukit.WriteJSON(w, http.StatusNotFound, map[string]any{"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})
	}
}

// valid needs s.mu held.
func (s *Server) valid(value string) *Token {
	t, ok := s.tokens[value]
	if !ok || t.Revoked || (!t.ExpiresAt.IsZero() && !s.now().Before(t.ExpiresAt)) {
		return nil
	}
	return t
}

// user is GET /user: GitHub's "get the authenticated user", which also reports the token's
// classic scopes and expiry in response headers.
func (s *Server) user(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		emukit.WriteJSON(w, http.StatusNotFound, map[string]any{"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})
		return
	}
	if r.UserAgent() == "" {
		// GitHub refuses requests without a User-Agent.
		emukit.WriteJSON(w, http.StatusForbidden, map[string]any{"message": "Request forbidden by administrative rules. Please make sure your request has a User-Agent header"})
		return
	}
	scheme, value, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	s.mu.Lock()
	var t *Token
	if strings.EqualFold(scheme, "Bearer") || strings.EqualFold(scheme, "token") {
		if found := s.valid(strings.TrimSpace(value)); found != nil {
			cp := *found
			t = &cp
		}
	}
	s.mu.Unlock()
	h := w.Header()
	h.Set("X-GitHub-Media-Type", "github.v3; format=json")
	h.Set("X-RateLimit-Limit", "5000")
	h.Set("X-RateLimit-Remaining", "4999")
	if scheme == "" {
		emukit.WriteJSON(w, http.StatusUnauthorized, map[string]any{"message": "Requires authentication", "documentation_url": "https://docs.github.com/rest/users/users#get-the-authenticated-user", "status": "401"})
		return
	}
	if t == nil {
		emukit.WriteJSON(w, http.StatusUnauthorized, map[string]any{"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"})
		return
	}
	if !t.FineGrained {
		h.Set("X-OAuth-Scopes", strings.Join(t.Scopes, ", "))
		h.Set("X-Accepted-OAuth-Scopes", "")
	}
	if !t.ExpiresAt.IsZero() {
		h.Set("GitHub-Authentication-Token-Expiration", s.formatExpiry(t.ExpiresAt))
	}
	emukit.WriteJSON(w, http.StatusOK, map[string]any{"login": t.User, "id": loginID(t.User), "type": "User", "site_admin": false})
}

func (s *Server) formatExpiry(t time.Time) string {
	if s.opts.ExpirationZone != nil {
		return t.In(s.opts.ExpirationZone).Format("2006-01-02 15:04:05 -0700")
	}
	return t.UTC().Format(ExpirationLayout)
}

func (s *Server) registryPing(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	exp, ok := s.regTokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
	valid := ok && s.now().Before(exp)
	s.mu.Unlock()
	w.Header().Set("Docker-Distribution-Api-Version", "registry/2.0")
	if valid {
		emukit.WriteJSON(w, http.StatusOK, map[string]any{})
		return
	}
	// ghcr.io puts a placeholder scope into its challenge; clients that honour it only do so
	// after a 401 on a scoped request.
	w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="http://%s/token",service="%s",scope="repository:user/image:pull"`, r.Host, RegistryService))
	emukit.WriteJSON(w, http.StatusUnauthorized, registryErrors("UNAUTHORIZED", "authentication required"))
}

// registryToken is the distribution token endpoint: Basic credentials in, a bearer token out.
func (s *Server) registryToken(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("service") != RegistryService {
		emukit.WriteJSON(w, http.StatusBadRequest, registryErrors("UNSUPPORTED", "unknown service"))
		return
	}
	type want struct {
		repo string
		push bool
	}
	var wants []want
	for _, raw := range q["scope"] {
		for _, sc := range strings.Fields(raw) {
			rest, ok := strings.CutPrefix(sc, "repository:")
			i := strings.LastIndexByte(rest, ':')
			if !ok || i <= 0 {
				emukit.WriteJSON(w, http.StatusBadRequest, registryErrors("UNSUPPORTED", "invalid scope"))
				return
			}
			wt := want{repo: rest[:i]}
			for _, a := range strings.Split(rest[i+1:], ",") {
				switch a {
				case "pull":
				case "push", "delete", "*":
					wt.push = true
				default:
					emukit.WriteJSON(w, http.StatusBadRequest, registryErrors("UNSUPPORTED", "invalid scope"))
					return
				}
			}
			wants = append(wants, wt)
		}
	}
	user, pass, hasAuth := r.BasicAuth()
	s.mu.Lock()
	defer s.mu.Unlock()
	var t *Token
	if hasAuth {
		t = s.valid(pass)
		if t == nil || t.FineGrained || !strings.EqualFold(t.User, user) {
			emukit.WriteJSON(w, http.StatusForbidden, registryErrors("DENIED", "requested access to the resource is denied"))
			return
		}
	}
	for _, wt := range wants {
		if !s.allowed(t, wt.repo, wt.push) {
			if t == nil {
				emukit.WriteJSON(w, http.StatusUnauthorized, registryErrors("UNAUTHORIZED", "authentication required"))
			} else {
				emukit.WriteJSON(w, http.StatusForbidden, registryErrors("DENIED", "requested access to the resource is denied"))
			}
			return
		}
	}
	tok := "ghcr_reg_" + emukit.RandHex(16)
	s.regTokens[tok] = s.now().Add(5 * time.Minute)
	emukit.WriteJSON(w, http.StatusOK, map[string]any{"token": tok})
}

// allowed needs s.mu held; t nil means anonymous.
func (s *Server) allowed(t *Token, repo string, push bool) bool {
	p, known := s.packages[repo]
	if t == nil {
		return known && p.Public && !push
	}
	need := "read:packages"
	if push {
		need = "write:packages"
	}
	hasScope := slices.Contains(t.Scopes, need) || (!push && slices.Contains(t.Scopes, "write:packages"))
	if known && p.Public && !push {
		return true
	}
	owner, _, _ := strings.Cut(repo, "/")
	if strings.EqualFold(owner, t.User) || (known && slices.ContainsFunc(p.Readers, func(u string) bool { return strings.EqualFold(u, t.User) })) {
		return hasScope
	}
	return false
}

func registryErrors(code, msg string) map[string]any {
	return map[string]any{"errors": []map[string]any{{"code": code, "message": msg}}}
}

// loginID gives each login a stable numeric id, as GitHub's "id" field is.
func loginID(login string) int {
	id := 1000
	for _, c := range strings.ToLower(login) {
		id = id*31 + int(c)
		id %= 1 << 30
	}
	return id
}
