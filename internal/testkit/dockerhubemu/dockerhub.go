// Package dockerhub is a protocol-faithful emulator of the parts of Docker Hub this project
// talks to, written from the public API reference (docs.docker.com/reference/api/hub/latest)
// and the distribution token spec: password and 2FA sessions, personal and organization access
// tokens, and the registry's /v2/ challenge plus its token endpoint. One server plays both
// hub.docker.com and registry-1.docker.io/auth.docker.io so a test needs one URL.
//
// It is used by the tests and by `make demo`, and is tested itself.
package dockerhubemu

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/emukit"

	"github.com/ptc-credentials/ptc-credentials/internal/totp"
)

// RegistryService is the service name the registry's challenge announces.
const RegistryService = "registry.docker.io"

// Account is a Docker Hub user.
type Account struct {
	Username string
	Password string
	// TOTPSecret turns on two-factor authentication (base32).
	TOTPSecret string
	// Orgs the user owns; owners may manage organization access tokens.
	Orgs []string
}

// Options configure the emulator.
type Options struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// RateLimit answers 429 to Hub API calls beyond Requests per Window (zero: no limit).
	RateLimit struct {
		Requests int
		Window   time.Duration
	}
	// OrgTokenCap is the number of organization access tokens allowed (expired and inactive
	// ones count until deleted); zero means 10, Team plan.
	OrgTokenCap int
	// SessionLifetime ends Hub API sessions this long after login, measured on Now (Hub's JWTs
	// expire; a warm Lambda may hold one past that). Zero: sessions never expire.
	SessionLifetime time.Duration
}

// Token is an access token as the emulator stores it.
type Token struct {
	ID        string
	Owner     string // user name, or org name for organization tokens
	Org       bool
	Label     string
	Secret    string
	Scopes    []string
	Active    bool
	CreatedAt time.Time
	ExpiresAt time.Time // zero: never
}

type session struct {
	user    string
	fromPAT bool
	expires time.Time // zero: never
}

// Call is one request the emulator answered.
type Call = emukit.Call

// Server is the emulator. Create it with New.
type Server struct {
	emukit.Recorder
	opts Options

	mu          sync.Mutex
	accounts    map[string]*Account
	sessions    map[string]session
	twoFA       map[string]string // login_2fa_token -> user
	tokens      map[string]*Token
	order       []string // token ids in creation order
	regTokens   map[string]time.Time
	issued      []string // every access-token secret handed out, deleted ones included
	windowStart time.Time
	windowCount int
}

// New returns an emulator with the given accounts.
func New(opts Options, accounts ...Account) *Server {
	s := &Server{
		opts: opts, accounts: map[string]*Account{}, sessions: map[string]session{}, twoFA: map[string]string{},
		tokens: map[string]*Token{}, regTokens: map[string]time.Time{},
	}
	for _, a := range accounts {
		s.AddAccount(a)
	}
	return s
}

// AddAccount adds or replaces a user.
func (s *Server) AddAccount(a Account) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cp := a
	s.accounts[a.Username] = &cp
}

// SetPassword changes a user's password (existing sessions stay valid, as on Hub).
func (s *Server) SetPassword(user, password string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.accounts[user]; ok {
		a.Password = password
	}
}

// Tokens returns a copy of every stored access token (secrets included, for assertions).
func (s *Server) Tokens() []Token {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Token, 0, len(s.order))
	for _, id := range s.order {
		if t, ok := s.tokens[id]; ok {
			cp := *t
			cp.Scopes = slices.Clone(t.Scopes)
			out = append(out, cp)
		}
	}
	return out
}

// Issued returns the secret of every access token the emulator created, deleted ones included
// (Tokens forgets a token once it is deleted). Leak tests scan logs and errors for them.
func (s *Server) Issued() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.issued)
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
		emukit.WriteJSON(w, st, map[string]any{"detail": "injected failure"})
		return
	}
	p := r.URL.Path
	isHubAPI := strings.HasPrefix(p, "/v2/users/") || strings.HasPrefix(p, "/v2/access-tokens") || strings.HasPrefix(p, "/v2/orgs/") || p == "/v2/auth/token"
	if isHubAPI && s.rateLimited(w) {
		return
	}
	switch {
	case p == "/v2/users/login" && r.Method == http.MethodPost:
		s.login(w, r)
	case p == "/v2/users/2fa-login" && r.Method == http.MethodPost:
		s.login2FA(w, r)
	case p == "/v2/auth/token" && r.Method == http.MethodPost:
		s.authToken(w, r)
	case p == "/v2/access-tokens" || strings.HasPrefix(p, "/v2/access-tokens/"):
		s.accessTokens(w, r, "", strings.TrimPrefix(strings.TrimPrefix(p, "/v2/access-tokens"), "/"))
	case strings.HasPrefix(p, "/v2/orgs/"):
		rest := strings.TrimPrefix(p, "/v2/orgs/")
		org, tail, _ := strings.Cut(rest, "/")
		if tail != "access-tokens" && !strings.HasPrefix(tail, "access-tokens/") {
			emukit.WriteJSON(w, http.StatusNotFound, map[string]any{"detail": "not found"})
			return
		}
		s.accessTokens(w, r, org, strings.TrimPrefix(strings.TrimPrefix(tail, "access-tokens"), "/"))
	case p == "/v2/" || p == "/v2":
		s.registryPing(w, r)
	case p == "/token":
		s.registryToken(w, r)
	default:
		emukit.WriteJSON(w, http.StatusNotFound, map[string]any{"detail": "not found"})
	}
}

func (s *Server) rateLimited(w http.ResponseWriter) bool {
	rl := s.opts.RateLimit
	if rl.Requests <= 0 || rl.Window <= 0 {
		return false
	}
	s.mu.Lock()
	now := s.now()
	if now.Sub(s.windowStart) >= rl.Window {
		s.windowStart, s.windowCount = now, 0
	}
	s.windowCount++
	over := s.windowCount > rl.Requests
	reset := s.windowStart.Add(rl.Window)
	s.mu.Unlock()
	if !over {
		return false
	}
	wait := int(math.Ceil(reset.Sub(now).Seconds()))
	w.Header().Set("Retry-After", strconv.Itoa(max(wait, 1)))
	w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
	emukit.WriteJSON(w, http.StatusTooManyRequests, map[string]any{"detail": "too many requests"})
	return true
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var in struct{ Username, Password string }
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Username == "" {
		emukit.WriteJSON(w, http.StatusBadRequest, map[string]any{"detail": "username and password are required"})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.accounts[in.Username]
	if !ok {
		emukit.WriteJSON(w, http.StatusUnauthorized, map[string]any{"detail": "Incorrect authentication credentials"})
		return
	}
	if in.Password == a.Password {
		if a.TOTPSecret != "" {
			t := "2fa_" + emukit.RandHex(16)
			s.twoFA[t] = a.Username
			emukit.WriteJSON(w, http.StatusUnauthorized, map[string]any{"detail": "Require secondary authentication on MFA enabled account", "login_2fa_token": t})
			return
		}
		emukit.WriteJSON(w, http.StatusOK, map[string]any{"token": s.newSession(a.Username, false)})
		return
	}
	// Hub accepts a personal access token in place of the password, but such a session may
	// not manage tokens.
	if t := s.tokenBySecret(a.Username, in.Password); t != nil && !t.Org {
		emukit.WriteJSON(w, http.StatusOK, map[string]any{"token": s.newSession(a.Username, true)})
		return
	}
	emukit.WriteJSON(w, http.StatusUnauthorized, map[string]any{"detail": "Incorrect authentication credentials"})
}

func (s *Server) login2FA(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Token string `json:"login_2fa_token"`
		Code  string `json:"code"`
	}
	_ = json.NewDecoder(r.Body).Decode(&in)
	s.mu.Lock()
	defer s.mu.Unlock()
	user, ok := s.twoFA[in.Token]
	a := s.accounts[user]
	if !ok || a == nil {
		emukit.WriteJSON(w, http.StatusUnauthorized, map[string]any{"detail": "invalid or expired 2FA token"})
		return
	}
	now := s.now()
	for _, skew := range []time.Duration{0, -30 * time.Second, 30 * time.Second} {
		if c, err := totp.Code(a.TOTPSecret, now.Add(skew)); err == nil && c == in.Code {
			delete(s.twoFA, in.Token)
			emukit.WriteJSON(w, http.StatusOK, map[string]any{"token": s.newSession(user, false)})
			return
		}
	}
	emukit.WriteJSON(w, http.StatusUnauthorized, map[string]any{"detail": "Incorrect authentication code"})
}

func (s *Server) authToken(w http.ResponseWriter, r *http.Request) {
	var in struct{ Identifier, Secret string }
	_ = json.NewDecoder(r.Body).Decode(&in)
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.accounts[in.Identifier]
	switch {
	case ok && in.Secret == a.Password && a.TOTPSecret == "":
		emukit.WriteJSON(w, http.StatusOK, map[string]any{"access_token": s.newSession(a.Username, false)})
	case ok && s.tokenBySecret(a.Username, in.Secret) != nil:
		emukit.WriteJSON(w, http.StatusOK, map[string]any{"access_token": s.newSession(a.Username, true)})
	default:
		emukit.WriteJSON(w, http.StatusUnauthorized, map[string]any{"detail": "Incorrect authentication credentials"})
	}
}

// newSession needs s.mu held.
func (s *Server) newSession(user string, fromPAT bool) string {
	t := "jwt_" + emukit.RandHex(20)
	sess := session{user: user, fromPAT: fromPAT}
	if s.opts.SessionLifetime > 0 {
		sess.expires = s.now().Add(s.opts.SessionLifetime)
	}
	s.sessions[t] = sess
	return t
}

// tokenBySecret needs s.mu held.
func (s *Server) tokenBySecret(owner, secret string) *Token {
	for _, t := range s.tokens {
		if t.Owner == owner && t.Secret == secret && t.Active && (t.ExpiresAt.IsZero() || s.now().Before(t.ExpiresAt)) {
			return t
		}
	}
	return nil
}

var validScopes = []string{"repo:public_read", "repo:read", "repo:write", "repo:admin"}

func (s *Server) accessTokens(w http.ResponseWriter, r *http.Request, org, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	auth := r.Header.Get("Authorization")
	sess, ok := s.sessions[strings.TrimPrefix(auth, "Bearer ")]
	if !strings.HasPrefix(auth, "Bearer ") || !ok {
		emukit.WriteJSON(w, http.StatusUnauthorized, map[string]any{"detail": "Authentication credentials were not provided."})
		return
	}
	if !sess.expires.IsZero() && !s.now().Before(sess.expires) {
		delete(s.sessions, strings.TrimPrefix(auth, "Bearer "))
		emukit.WriteJSON(w, http.StatusUnauthorized, map[string]any{"detail": "Token has expired"})
		return
	}
	if sess.fromPAT {
		emukit.WriteJSON(w, http.StatusForbidden, map[string]any{"detail": "token issued from personal access token is not allowed"})
		return
	}
	owner := sess.user
	if org != "" {
		if !slices.Contains(s.accounts[sess.user].Orgs, org) {
			emukit.WriteJSON(w, http.StatusForbidden, map[string]any{"detail": "you are not an owner of organization " + org})
			return
		}
		owner = org
	}
	switch {
	case id == "" && r.Method == http.MethodPost:
		s.createToken(w, r, owner, org != "")
	case id == "" && r.Method == http.MethodGet:
		s.listTokens(w, r, owner, org != "")
	case id != "":
		t, ok := s.tokens[id]
		if !ok || t.Owner != owner || t.Org != (org != "") {
			emukit.WriteJSON(w, http.StatusNotFound, map[string]any{"detail": "access token not found"})
			return
		}
		switch r.Method {
		case http.MethodGet:
			emukit.WriteJSON(w, http.StatusOK, s.render(t, false))
		case http.MethodPatch:
			var in struct {
				IsActive *bool `json:"is_active"`
			}
			_ = json.NewDecoder(r.Body).Decode(&in)
			if in.IsActive != nil {
				t.Active = *in.IsActive
			}
			emukit.WriteJSON(w, http.StatusOK, s.render(t, false))
		case http.MethodDelete:
			delete(s.tokens, id)
			s.order = slices.DeleteFunc(s.order, func(x string) bool { return x == id })
			w.WriteHeader(http.StatusNoContent)
		default:
			emukit.WriteJSON(w, http.StatusMethodNotAllowed, map[string]any{"detail": "method not allowed"})
		}
	default:
		emukit.WriteJSON(w, http.StatusMethodNotAllowed, map[string]any{"detail": "method not allowed"})
	}
}

// createToken needs s.mu held.
func (s *Server) createToken(w http.ResponseWriter, r *http.Request, owner string, org bool) {
	var in struct {
		TokenLabel string   `json:"token_label"`
		Label      string   `json:"label"`
		Scopes     []string `json:"scopes"`
		ExpiresAt  string   `json:"expires_at"`
		Resources  []struct {
			Type   string   `json:"type"`
			Path   string   `json:"path"`
			Scopes []string `json:"scopes"`
		} `json:"resources"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		emukit.WriteJSON(w, http.StatusBadRequest, map[string]any{"detail": "invalid JSON"})
		return
	}
	label, scopes := in.TokenLabel, in.Scopes
	if org {
		label = in.Label
		if len(in.Resources) == 0 {
			emukit.WriteJSON(w, http.StatusBadRequest, map[string]any{"detail": "resources are required"})
			return
		}
		scopes = nil
		for _, res := range in.Resources {
			if res.Type != "TYPE_REPO" && res.Type != "TYPE_ORG" {
				emukit.WriteJSON(w, http.StatusBadRequest, map[string]any{"detail": "unknown resource type " + res.Type})
				return
			}
			scopes = append(scopes, res.Scopes...)
		}
		cap := s.opts.OrgTokenCap
		if cap == 0 {
			cap = 10
		}
		n := 0
		for _, t := range s.tokens {
			if t.Org && t.Owner == owner {
				n++
			}
		}
		if n >= cap {
			emukit.WriteJSON(w, http.StatusForbidden, map[string]any{"detail": fmt.Sprintf("organization access token limit reached (%d)", cap)})
			return
		}
	} else {
		for _, sc := range scopes {
			if !slices.Contains(validScopes, sc) {
				emukit.WriteJSON(w, http.StatusBadRequest, map[string]any{"detail": "invalid scope " + sc})
				return
			}
		}
		if len(scopes) == 0 {
			emukit.WriteJSON(w, http.StatusBadRequest, map[string]any{"detail": "scopes are required"})
			return
		}
	}
	if len(label) < 1 || len(label) > 100 {
		emukit.WriteJSON(w, http.StatusBadRequest, map[string]any{"detail": "token_label must be 1 to 100 characters"})
		return
	}
	t := &Token{ID: uuid(), Owner: owner, Org: org, Label: label, Scopes: scopes, Active: true, CreatedAt: s.now().UTC()}
	if in.ExpiresAt != "" {
		exp, err := time.Parse(time.RFC3339, in.ExpiresAt)
		if err != nil || !exp.After(s.now()) {
			emukit.WriteJSON(w, http.StatusBadRequest, map[string]any{"detail": "expires_at must be an RFC 3339 time in the future"})
			return
		}
		t.ExpiresAt = exp.UTC()
	}
	if org {
		t.Secret = "dckr_oat_" + emukit.RandHex(16)
	} else {
		t.Secret = "dckr_pat_" + emukit.RandHex(16)
	}
	s.tokens[t.ID] = t
	s.order = append(s.order, t.ID)
	s.issued = append(s.issued, t.Secret)
	emukit.WriteJSON(w, http.StatusCreated, s.render(t, true))
}

// listTokens needs s.mu held.
func (s *Server) listTokens(w http.ResponseWriter, r *http.Request, owner string, org bool) {
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	size, _ := strconv.Atoi(r.URL.Query().Get("page_size"))
	page, size = max(page, 1), min(max(size, 1), 100)
	if r.URL.Query().Get("page_size") == "" {
		size = 10
	}
	var mine []*Token
	for _, id := range s.order {
		if t := s.tokens[id]; t.Owner == owner && t.Org == org {
			mine = append(mine, t)
		}
	}
	sort.SliceStable(mine, func(i, j int) bool { return mine[i].CreatedAt.After(mine[j].CreatedAt) })
	from, to := min((page-1)*size, len(mine)), min(page*size, len(mine))
	results := []map[string]any{}
	active := 0
	for _, t := range mine {
		if t.Active {
			active++
		}
	}
	for _, t := range mine[from:to] {
		results = append(results, s.render(t, false))
	}
	var next any
	if to < len(mine) {
		u := *r.URL
		q := u.Query()
		q.Set("page", strconv.Itoa(page+1))
		u.RawQuery = q.Encode()
		next = "http://" + r.Host + u.RequestURI()
	}
	body := map[string]any{"next": next, "previous": nil, "results": results}
	if org {
		body["total"] = len(mine)
	} else {
		body["count"], body["active_count"] = len(mine), active
	}
	emukit.WriteJSON(w, http.StatusOK, body)
}

// render needs s.mu held. The secret is shown only when the token is created.
func (s *Server) render(t *Token, withSecret bool) map[string]any {
	m := map[string]any{"is_active": t.Active, "created_at": t.CreatedAt.Format(time.RFC3339), "expires_at": nil}
	if !t.ExpiresAt.IsZero() {
		m["expires_at"] = t.ExpiresAt.Format(time.RFC3339)
	}
	if t.Org {
		m["id"], m["label"] = t.ID, t.Label
		m["resources"] = []map[string]any{{"type": "TYPE_REPO", "path": "*/*/public", "scopes": t.Scopes}}
	} else {
		m["uuid"], m["token_label"], m["scopes"] = t.ID, t.Label, t.Scopes
	}
	if withSecret {
		m["token"] = t.Secret
	}
	return m
}

func (s *Server) registryPing(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	exp, ok := s.regTokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
	valid := ok && s.now().Before(exp)
	s.mu.Unlock()
	if valid {
		emukit.WriteJSON(w, http.StatusOK, map[string]any{})
		return
	}
	w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="http://%s/token",service="%s"`, r.Host, RegistryService))
	emukit.WriteJSON(w, http.StatusUnauthorized, map[string]any{"errors": []map[string]any{{"code": "UNAUTHORIZED", "message": "authentication required"}}})
}

// registryToken is the distribution token endpoint: Basic credentials in, a bearer token out.
func (s *Server) registryToken(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("service") != RegistryService {
		emukit.WriteJSON(w, http.StatusBadRequest, map[string]any{"details": "unknown service"})
		return
	}
	for _, sc := range q["scope"] {
		if !strings.HasPrefix(sc, "repository:") || !strings.HasSuffix(sc, ":pull") && !strings.Contains(sc, ":pull,") {
			emukit.WriteJSON(w, http.StatusBadRequest, map[string]any{"details": "invalid scope " + url.QueryEscape(sc)})
			return
		}
	}
	user, pass, hasAuth := r.BasicAuth()
	s.mu.Lock()
	defer s.mu.Unlock()
	if hasAuth {
		ok := s.tokenBySecret(user, pass) != nil
		if a, exists := s.accounts[user]; exists && a.Password == pass && a.TOTPSecret == "" {
			ok = true
		}
		if !ok {
			emukit.WriteJSON(w, http.StatusUnauthorized, map[string]any{"details": "incorrect username or password"})
			return
		}
	}
	tok := "reg_" + emukit.RandHex(16)
	s.regTokens[tok] = s.now().Add(5 * time.Minute)
	emukit.WriteJSON(w, http.StatusOK, map[string]any{"token": tok, "access_token": tok, "expires_in": 300, "issued_at": s.now().UTC().Format(time.RFC3339)})
}

func uuid() string {
	h := emukit.RandHex(16)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
