// Package chainguardemu emulates the parts of Chainguard the chainguard upstream talks to, from
// the public API definitions in github.com/chainguard-dev/sdk (proto/platform/oidc/v1,
// proto/platform/iam/v1 and their grpc-gateway REST bindings) and Chainguard's registry
// documentation. One server plays issuer.enforce.dev, console-api.enforce.dev and cgr.dev:
//
//   - POST /sts/exchange (form aud, identity; Authorization: Bearer <external OIDC token>): the
//     token exchange. The external token must be a JWT of the assumable identity's issuer —
//     its keys discovered over HTTP at <iss>/.well-known/openid-configuration — whose
//     signature verifies and whose iss, sub and aud match the identity's claim_match and which
//     has not expired. Answers {"token", "expiry"} (RawToken in protojson): an opaque
//     Chainguard token carrying the identity's capabilities for the requested audiences.
//   - The IAM API, each call needing a live Chainguard token for the API's audience with the
//     call's capability: POST /iam/v1/identities/{group} (identity.create; a static identity
//     with issuer, subject, issuerKeys (a JWKS) and an expiration at most MaxStaticTTL ahead),
//     GET /iam/v1/identities?uidp.children_of={group} (identity.list), DELETE
//     /iam/v1/identities/{id} (identity.delete; its role bindings go with it), GET
//     /iam/v1/roles?name= (roles.list), POST /iam/v1/rolebindings/{group}
//     (role_bindings.create). Errors are grpc-gateway's {"code","message","details"} with the
//     gRPC code's HTTP status.
//   - The registry: GET /v2/ answers 401 with a Bearer challenge whose realm is <URL>/token;
//     GET /token with Basic <identity id>:<JWT> issues a pull token only when the identity
//     exists, is static and unexpired, has a registry.pull role binding, and the JWT verifies
//     against the identity's own issuerKeys with its issuer and subject, audience PullAudience,
//     unexpired. Deleting the identity ends its pull token at once.
//
// Every secret it hands out is kept for leak scans (Issued).
package chainguardemu

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"

	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/emukit"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/jwtkit"
)

// Defaults the real service uses.
const (
	// IssuerAudience is the audience an external token must carry for the exchange, and a pull
	// token's JWT for the registry.
	IssuerAudience = "https://issuer.enforce.dev"
	// APIAudience is the audience of a Chainguard token the IAM API accepts.
	APIAudience = "https://console-api.enforce.dev"
	// PullRole is the role a pull token is bound to.
	PullRole = "registry.pull"
	// MaxStaticTTL is how far ahead a static identity's expiration may be (the proto says at
	// most 30 days).
	MaxStaticTTL = 30 * 24 * time.Hour
	// TokenLifetime is the lifetime of an exchanged Chainguard token.
	TokenLifetime = time.Hour
)

// The capabilities the IAM API checks (names as in the SDK's capabilities.proto).
const (
	CapIdentityCreate     = "identity.create"
	CapIdentityList       = "identity.list"
	CapIdentityDelete     = "identity.delete"
	CapRoleBindingsCreate = "role_bindings.create"
	CapRolesList          = "roles.list"
)

// MinterCapabilities is what the chainguard upstream needs: the capabilities of
// registry.pull_token_creator plus identity.list and identity.delete to find and revoke what
// it minted (docs/deploy.md: a custom role).
var MinterCapabilities = []string{CapIdentityCreate, CapIdentityList, CapIdentityDelete, CapRoleBindingsCreate, CapRolesList}

// Assumable is an assumable identity with a claim_match: tokens of Issuer about Subject (or,
// with SubjectPattern, about any subject the regular expression matches, as `chainctl iam
// identities create --subject-pattern` registers it; Chainguard anchors it with ^…$ itself
// here) for Audience (empty: IssuerAudience) may be exchanged for its Capabilities in Group.
type Assumable struct {
	ID, Issuer, Subject, Audience string
	SubjectPattern                string
	Capabilities                  []string
}

// Options configure the emulator.
type Options struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Group is the UIDP of the organization (group) the pull tokens live in.
	Group string
	// Assumable are the assumable identities.
	Assumable []Assumable
	// DiscoveryClient fetches external issuers' keys; nil means http.DefaultClient.
	DiscoveryClient *http.Client
	// PullAudience is the audience a pull token's JWT must carry; empty means IssuerAudience.
	PullAudience string
}

// Identity is a static identity (a pull token) as the emulator stores it.
type Identity struct {
	ID, Name, Description string
	Issuer, Subject       string
	Keys                  jwtkit.JWKS
	Expiration, Created   time.Time
}

type token struct {
	caps    []string
	aud     []string
	expires time.Time
}

// Server is the emulator; it implements http.Handler.
type Server struct {
	emukit.Recorder
	opts   Options
	pullID string

	mu         sync.Mutex
	identities map[string]*Identity
	bindings   map[string]string // binding id -> identity id (role registry.pull)
	tokens     map[string]token
	registry   map[string]time.Time
	issued     []string
	deleted    []string
}

// New returns an emulator with no pull tokens.
func New(opts Options) *Server {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.PullAudience == "" {
		opts.PullAudience = IssuerAudience
	}
	for i := range opts.Assumable {
		if opts.Assumable[i].Audience == "" {
			opts.Assumable[i].Audience = IssuerAudience
		}
	}
	return &Server{opts: opts, pullID: emukit.RandHex(20), identities: map[string]*Identity{}, bindings: map[string]string{},
		tokens: map[string]token{}, registry: map[string]time.Time{}}
}

// Identities returns the static identities, sorted by creation then id.
func (s *Server) Identities() []Identity {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Identity
	for _, id := range s.identities {
		out = append(out, *id)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Bound reports whether identity id has a registry.pull role binding.
func (s *Server) Bound(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bound(id)
}

func (s *Server) bound(id string) bool {
	for _, ident := range s.bindings {
		if ident == id {
			return true
		}
	}
	return false
}

// Accepts reports whether jwt logs in as identity id: the identity exists, is bound to
// registry.pull and unexpired, and jwt verifies against its keys, issuer, subject and the pull
// audience (what the registry's token endpoint checks).
func (s *Server) Accepts(id, jwt string) bool {
	s.mu.Lock()
	ident := s.identities[id]
	bound := ident != nil && s.bound(id)
	s.mu.Unlock()
	now := s.opts.Now()
	if !bound || !now.Before(ident.Expiration) {
		return false
	}
	_, err := jwtkit.Verify(jwt, ident.Keys, jwtkit.Expect{Issuer: ident.Issuer, Subject: ident.Subject, Audience: s.opts.PullAudience, Now: now})
	return err == nil
}

// Deleted lists the ids of the identities deleted so far.
func (s *Server) Deleted() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.deleted)
}

// Issued returns every secret the emulator handed out (Chainguard tokens, registry tokens).
func (s *Server) Issued() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.issued)
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.Record(w, r, emukit.AuthScheme(r), s.serve)
}

// grpc codes and their HTTP status, as grpc-gateway maps them.
const (
	codeInvalidArgument  = 3
	codeNotFound         = 5
	codePermissionDenied = 7
	codeUnauthenticated  = 16
)

var httpStatus = map[int]int{codeInvalidArgument: 400, codeNotFound: 404, codePermissionDenied: 403, codeUnauthenticated: 401}

func grpcError(w http.ResponseWriter, code int, msg string) {
	emukit.WriteJSON(w, httpStatus[code], map[string]any{"code": code, "message": msg, "details": []any{}})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if st := s.TakeFault(r); st != 0 {
		emukit.WriteJSON(w, st, map[string]any{"code": 14, "message": "injected failure", "details": []any{}})
		return
	}
	p := r.URL.Path
	switch {
	case p == "/sts/exchange" && r.Method == http.MethodPost:
		s.exchange(w, r)
	case p == "/v2/" || p == "/v2":
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+scheme(r)+"://"+r.Host+`/token",service="cgr.dev"`)
		emukit.WriteJSON(w, http.StatusUnauthorized, map[string]any{"errors": []any{map[string]any{"code": "UNAUTHORIZED", "message": "authentication required"}}})
	case p == "/token":
		s.registryToken(w, r)
	case p == "/iam/v1/roles" && r.Method == http.MethodGet:
		s.roles(w, r)
	case p == "/iam/v1/identities" && r.Method == http.MethodGet:
		s.listIdentities(w, r)
	case strings.HasPrefix(p, "/iam/v1/identities/") && r.Method == http.MethodPost:
		s.createIdentity(w, r, strings.TrimPrefix(p, "/iam/v1/identities/"))
	case strings.HasPrefix(p, "/iam/v1/identities/") && r.Method == http.MethodDelete:
		s.deleteIdentity(w, r, strings.TrimPrefix(p, "/iam/v1/identities/"))
	case strings.HasPrefix(p, "/iam/v1/rolebindings/") && r.Method == http.MethodPost:
		s.createBinding(w, r, strings.TrimPrefix(p, "/iam/v1/rolebindings/"))
	default:
		grpcError(w, codeNotFound, "Not Found")
	}
}

func scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

func bearer(r *http.Request) string {
	a := r.Header.Get("Authorization")
	if !strings.HasPrefix(a, "Bearer ") {
		return ""
	}
	return strings.TrimPrefix(a, "Bearer ")
}

// exchange is the STS token exchange for an assumable identity.
func (s *Server) exchange(w http.ResponseWriter, r *http.Request) {
	ext := bearer(r)
	if ext == "" {
		grpcError(w, codeUnauthenticated, "missing bearer token")
		return
	}
	if err := r.ParseForm(); err != nil {
		grpcError(w, codeInvalidArgument, "malformed form")
		return
	}
	auds := r.PostForm["aud"]
	if len(auds) == 0 {
		grpcError(w, codeInvalidArgument, "aud is required")
		return
	}
	var as *Assumable
	for i := range s.opts.Assumable {
		if s.opts.Assumable[i].ID == r.PostForm.Get("identity") {
			as = &s.opts.Assumable[i]
		}
	}
	if as == nil {
		grpcError(w, codePermissionDenied, "identity not found or not assumable")
		return
	}
	_, _, claims, err := jwtkit.Parse(ext)
	if err != nil {
		grpcError(w, codeUnauthenticated, "the token is not a JWT")
		return
	}
	if claims.Issuer != as.Issuer {
		grpcError(w, codePermissionDenied, "the token's issuer does not match the identity")
		return
	}
	client := s.opts.DiscoveryClient
	if client == nil {
		client = http.DefaultClient
	}
	keys, err := jwtkit.Discover(r.Context(), client, claims.Issuer)
	if err != nil {
		grpcError(w, codeUnauthenticated, "unable to fetch the issuer's keys")
		return
	}
	verified, err := jwtkit.Verify(ext, keys, jwtkit.Expect{Issuer: as.Issuer, Subject: as.Subject, Audience: as.Audience, Now: s.opts.Now()})
	if err == nil && as.SubjectPattern != "" {
		if ok, rerr := regexp.MatchString("^(?:"+as.SubjectPattern+")$", verified.Subject); rerr != nil || !ok {
			err = fmt.Errorf("%w (%q)", jwtkit.ErrSubject, verified.Subject)
		}
	}
	if err != nil {
		switch {
		case errors.Is(err, jwtkit.ErrSubject), errors.Is(err, jwtkit.ErrAudience):
			grpcError(w, codePermissionDenied, "the token does not match the identity: "+err.Error())
		default:
			grpcError(w, codeUnauthenticated, "invalid token: "+err.Error())
		}
		return
	}
	tok := "cgtok-PLANTED-" + emukit.RandHex(24)
	exp := s.opts.Now().Add(TokenLifetime).UTC()
	s.mu.Lock()
	s.tokens[tok] = token{caps: slices.Clone(as.Capabilities), aud: slices.Clone(auds), expires: exp}
	s.issued = append(s.issued, tok)
	s.mu.Unlock()
	emukit.WriteJSON(w, http.StatusOK, map[string]any{"token": tok, "expiry": exp.Format(time.RFC3339)})
}

// authorize answers an error and returns false unless r carries a live Chainguard token for the
// API with capability.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, capability string) bool {
	s.mu.Lock()
	t, ok := s.tokens[bearer(r)]
	s.mu.Unlock()
	switch {
	case !ok:
		grpcError(w, codeUnauthenticated, "invalid or missing token")
	case !s.opts.Now().Before(t.expires):
		grpcError(w, codeUnauthenticated, "token expired")
	case !slices.Contains(t.aud, APIAudience):
		grpcError(w, codeUnauthenticated, "token audience is not "+APIAudience)
	case !slices.Contains(t.caps, capability):
		grpcError(w, codePermissionDenied, "missing capability "+capability)
	default:
		return true
	}
	return false
}

func (s *Server) roles(w http.ResponseWriter, r *http.Request) {
	if !s.authorize(w, r, CapRolesList) {
		return
	}
	var items []any
	if n := r.URL.Query().Get("name"); n == "" || n == PullRole {
		items = append(items, map[string]any{"id": s.pullID, "name": PullRole, "capabilities": []string{"repo.list", "manifest.list"}})
	}
	emukit.WriteJSON(w, http.StatusOK, map[string]any{"items": items})
}

type staticJSON struct {
	Issuer     string `json:"issuer"`
	Subject    string `json:"subject"`
	IssuerKeys string `json:"issuerKeys"`
	Expiration string `json:"expiration"`
}

func (s *Server) identityJSON(id *Identity) map[string]any {
	keys, _ := json.Marshal(id.Keys)
	return map[string]any{"id": id.ID, "name": id.Name, "description": id.Description, "createdAt": id.Created.Format(time.RFC3339),
		"static": staticJSON{Issuer: id.Issuer, Subject: id.Subject, IssuerKeys: string(keys), Expiration: id.Expiration.Format(time.RFC3339)}}
}

func (s *Server) createIdentity(w http.ResponseWriter, r *http.Request, parent string) {
	if !s.authorize(w, r, CapIdentityCreate) {
		return
	}
	if parent != s.opts.Group {
		grpcError(w, codePermissionDenied, "no access to group "+parent)
		return
	}
	var body struct {
		Name        string `json:"name"`
		Description string `json:"description"`
		Static      *struct {
			staticJSON
			IssuerKeysSnake string `json:"issuer_keys"`
		} `json:"static"`
	}
	if b, err := emukit.ReadBody(r, 1<<20); err != nil || json.Unmarshal(b, &body) != nil {
		grpcError(w, codeInvalidArgument, "malformed Identity")
		return
	}
	if body.Static == nil {
		grpcError(w, codeInvalidArgument, "only static identities are emulated")
		return
	}
	keysText := body.Static.IssuerKeys
	if keysText == "" {
		keysText = body.Static.IssuerKeysSnake
	}
	var keys jwtkit.JWKS
	if json.Unmarshal([]byte(keysText), &keys) != nil || len(keys.Keys) == 0 {
		grpcError(w, codeInvalidArgument, "static.issuer_keys must be a JWKS with at least one key")
		return
	}
	for _, k := range keys.Keys {
		if k.Kty == "" || k.Kid == "" {
			grpcError(w, codeInvalidArgument, "static.issuer_keys: every key needs kty and kid")
			return
		}
	}
	now := s.opts.Now().UTC().Truncate(time.Second)
	exp, err := time.Parse(time.RFC3339, body.Static.Expiration)
	switch {
	case body.Name == "" || body.Static.Issuer == "" || body.Static.Subject == "":
		grpcError(w, codeInvalidArgument, "name, static.issuer and static.subject are required")
		return
	case body.Static.Expiration == "":
		exp = now.Add(MaxStaticTTL)
	case err != nil:
		grpcError(w, codeInvalidArgument, "static.expiration is not a timestamp")
		return
	case !exp.After(now) || exp.After(now.Add(MaxStaticTTL)):
		grpcError(w, codeInvalidArgument, "static.expiration must be in the future and at most 30 days after creation")
		return
	}
	id := &Identity{ID: s.opts.Group + "/" + emukit.RandHex(8), Name: body.Name, Description: body.Description,
		Issuer: body.Static.Issuer, Subject: body.Static.Subject, Keys: keys, Expiration: exp, Created: now}
	s.mu.Lock()
	s.identities[id.ID] = id
	s.mu.Unlock()
	emukit.WriteJSON(w, http.StatusOK, s.identityJSON(id))
}

func (s *Server) listIdentities(w http.ResponseWriter, r *http.Request) {
	if !s.authorize(w, r, CapIdentityList) {
		return
	}
	q := r.URL.Query()
	parent := q.Get("uidp.children_of")
	if parent == "" {
		parent = q.Get("uidp.childrenOf")
	}
	items := []any{}
	for _, id := range s.Identities() {
		if parent == "" || strings.HasPrefix(id.ID, parent+"/") && !strings.Contains(strings.TrimPrefix(id.ID, parent+"/"), "/") {
			items = append(items, s.identityJSON(&id))
		}
	}
	emukit.WriteJSON(w, http.StatusOK, map[string]any{"items": items})
}

func (s *Server) deleteIdentity(w http.ResponseWriter, r *http.Request, id string) {
	if !s.authorize(w, r, CapIdentityDelete) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.identities[id]; !ok {
		grpcError(w, codeNotFound, "identity not found")
		return
	}
	delete(s.identities, id)
	for b, ident := range s.bindings {
		if ident == id {
			delete(s.bindings, b)
		}
	}
	s.deleted = append(s.deleted, id)
	emukit.WriteJSON(w, http.StatusOK, map[string]any{})
}

func (s *Server) createBinding(w http.ResponseWriter, r *http.Request, parent string) {
	if !s.authorize(w, r, CapRoleBindingsCreate) {
		return
	}
	var body struct{ Identity, Role string }
	if b, err := emukit.ReadBody(r, 1<<16); err != nil || json.Unmarshal(b, &body) != nil {
		grpcError(w, codeInvalidArgument, "malformed RoleBinding")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case parent != s.opts.Group:
		grpcError(w, codePermissionDenied, "no access to group "+parent)
	case s.identities[body.Identity] == nil:
		grpcError(w, codeNotFound, "identity not found")
	case body.Role != s.pullID:
		grpcError(w, codeNotFound, "role not found")
	default:
		id := parent + "/" + emukit.RandHex(8)
		s.bindings[id] = body.Identity
		emukit.WriteJSON(w, http.StatusOK, map[string]any{"id": id, "identity": body.Identity, "role": body.Role})
	}
}

// registryToken is cgr.dev's token endpoint for a pull token's Basic credential.
func (s *Server) registryToken(w http.ResponseWriter, r *http.Request) {
	refuse := func(msg string) {
		w.Header().Set("WWW-Authenticate", `Basic realm="cgr.dev"`)
		emukit.WriteJSON(w, http.StatusUnauthorized, map[string]any{"errors": []any{map[string]any{"code": "UNAUTHORIZED", "message": msg}}})
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		refuse("basic credentials required")
		return
	}
	s.mu.Lock()
	id := s.identities[user]
	bound := id != nil && s.bound(user)
	s.mu.Unlock()
	now := s.opts.Now()
	switch {
	case id == nil:
		refuse("identity not found")
		return
	case !bound:
		refuse("the identity has no registry.pull role")
		return
	case !now.Before(id.Expiration):
		refuse("the identity expired")
		return
	}
	if _, err := jwtkit.Verify(pass, id.Keys, jwtkit.Expect{Issuer: id.Issuer, Subject: id.Subject, Audience: s.opts.PullAudience, Now: now}); err != nil {
		refuse("invalid token: " + err.Error())
		return
	}
	scope := r.URL.Query().Get("scope")
	if scope != "" && !strings.HasSuffix(scope, ":pull") {
		refuse("pull tokens may only pull")
		return
	}
	tok := base64.RawURLEncoding.EncodeToString([]byte("cgr-PLANTED-" + emukit.RandHex(16)))
	s.mu.Lock()
	s.registry[tok] = now.Add(5 * time.Minute)
	s.issued = append(s.issued, tok)
	s.mu.Unlock()
	emukit.WriteJSON(w, http.StatusOK, map[string]any{"token": tok, "access_token": tok, "expires_in": 300, "issued_at": now.UTC().Format(time.RFC3339)})
}
