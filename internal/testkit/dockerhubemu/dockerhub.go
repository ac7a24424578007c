// Package dockerhub is a protocol-faithful emulator of the parts of Docker Hub this project
// talks to, written from the public API reference (docs.docker.com/reference/api/hub/latest)
// and the distribution token spec: sessions from POST /v2/auth/token and from the deprecated
// /v2/users/login + /v2/users/2fa-login (RFC 6238 codes, each accepted once), organizations that
// enforce single sign-on (password logins refused, PAT-derived sessions refused on the token
// endpoints), personal and organization access tokens (the organization cap counting expired
// tokens), the documented error bodies (ValueError {"fields","text"} on 400, {"detail"} or
// {"message","errinfo"} otherwise), 429s carrying Retry-After and X-Retry-After, and the
// registry's /v2/ challenge, token endpoint and manifests with the pull-limit headers
// (ratelimit-limit / ratelimit-remaining, "N;w=seconds"; a HEAD does not count as a pull, a GET
// does). One server plays hub.docker.com and registry-1.docker.io/auth.docker.io so a test
// needs one URL.
//
// It is used by the tests and by `make demo`, and is tested itself.
package dockerhubemu

import (
	"crypto/sha256"
	"encoding/hex"
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
	// SSOEnforced: the user's organization enforces single sign-on. Docker Hub then refuses the
	// password on /v2/users/login and /v2/auth/token (since 2024-09-16); a personal access
	// token still starts a session, which the token endpoints refuse.
	SSOEnforced bool
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
	// RetryHeaders are the hint headers a 429 carries (the rate limit's and injected ones):
	// "Retry-After" (seconds) and "X-Retry-After" (a Unix time, as the Hub API reference
	// documents). Nil means both.
	RetryHeaders []string
	// FaultRetryAfter is the hint an injected 429 carries (in the RetryHeaders); zero means an
	// injected 429 carries none.
	FaultRetryAfter time.Duration
	// PullLimits are the pulls per PullWindow of each registry login name (a user, or an
	// organization for its access tokens; "" for anonymous pulls). A name without an entry is
	// unlimited, as paid plans are, and its manifest answers carry no ratelimit headers.
	PullLimits map[string]int
	// PullWindow is the pull limit's rolling window; zero means 6 hours (21600 s).
	PullWindow time.Duration
	// PrivateRepositories maps a private repository ("acme/app") to the registry login names
	// (users, or organizations for their access tokens) that may pull it; every other
	// repository is public. A token request's pull scope on a private repository another name
	// asks for is left out of the token, not refused: the distribution token spec says a client
	// granted a subset of the requested access must not get an error.
	PrivateRepositories map[string][]string
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
	fromPAT bool      // started from a personal access token
	fromOAT bool      // started from an organization access token (user is the organization)
	expires time.Time // zero: never
}

// regToken is a registry bearer token the token endpoint issued.
type regToken struct {
	expires time.Time
	subject string          // the Basic username, "" when anonymous
	repos   map[string]bool // repositories with pull granted
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
	regTokens   map[string]regToken
	issued      []string // every access-token secret handed out, deleted ones included
	windowStart time.Time
	windowCount int
	totpUsed    map[string]int64       // user -> last RFC 6238 time step accepted
	pulls       map[string][]time.Time // registry login name -> manifest GETs, oldest first
	peak        map[string]int         // owner -> most tokens it ever held at once
}

// New returns an emulator with the given accounts.
func New(opts Options, accounts ...Account) *Server {
	s := &Server{
		opts: opts, accounts: map[string]*Account{}, sessions: map[string]session{}, twoFA: map[string]string{},
		tokens: map[string]*Token{}, regTokens: map[string]regToken{}, totpUsed: map[string]int64{}, pulls: map[string][]time.Time{}, peak: map[string]int{},
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

// SSOSession is a person signing in to Docker Hub's web UI with single sign-on (the identity
// provider's browser flow, which this emulator does not play): it returns the bearer session
// the UI then calls the Hub API with. Unlike a PAT-derived session it may manage personal and
// organization access tokens, which is how the owner of an organization that enforces SSO
// makes the organization access tokens staged mode takes. ok is false for an unknown user.
func (s *Server) SSOSession(user string) (session string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.accounts[user]; !ok {
		return "", false
	}
	return "Bearer " + s.newSession(user, false), true
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

// PeakTokens is the most access tokens owner (a user, or an organization for its organization
// access tokens) ever held at once, deleted ones not counted once deleted: what a token cap such
// as the organization's (Options.OrgTokenCap) is measured against.
func (s *Server) PeakTokens(owner string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak[owner]
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
		if wait := s.opts.FaultRetryAfter; st == http.StatusTooManyRequests && wait > 0 {
			s.retryHeaders(w, wait, s.now().Add(wait))
		}
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
	case strings.HasPrefix(p, "/v2/") && strings.Contains(p, "/manifests/"):
		s.manifest(w, r)
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
	w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
	s.retryHeaders(w, reset.Sub(now), reset)
	emukit.WriteJSON(w, http.StatusTooManyRequests, map[string]any{"detail": "too many requests"})
	return true
}

// retryHeaders sets the 429 hints Options.RetryHeaders names: Retry-After in whole seconds (at
// least one) and X-Retry-After as the Unix time of at.
func (s *Server) retryHeaders(w http.ResponseWriter, wait time.Duration, at time.Time) {
	names := s.opts.RetryHeaders
	if names == nil {
		names = []string{"Retry-After", "X-Retry-After"}
	}
	for _, n := range names {
		switch n {
		case "Retry-After":
			w.Header().Set("Retry-After", strconv.Itoa(max(int(math.Ceil(wait.Seconds())), 1)))
		case "X-Retry-After":
			// Rounded up, so a client that waits until then is past the window.
			w.Header().Set("X-Retry-After", strconv.FormatInt(at.Add(time.Second-time.Nanosecond).Unix(), 10))
		}
	}
}

// Error bodies, as the Hub API reference documents them.
const (
	msgBadCredentials = "Incorrect authentication credentials"
	// MsgSSOEnforced is the refusal of a password for a user whose organization enforces SSO.
	MsgSSOEnforced = "Your organization enforces single sign-on (SSO): sign in with SSO, or use a personal access token instead of a password"
	// MsgPATSession is the token endpoints' refusal of a session started from a personal access
	// token (docker/hub-feedback #2438, #2478).
	MsgPATSession = "token issued from personal access token is not allowed"
	// MsgOATSession is the token endpoints' refusal of a session started from an organization
	// access token.
	MsgOATSession = "token issued from organization access token is not allowed"
)

// valueError writes the documented 400 body, ValueError {"fields": {...}, "text": "..."}.
func valueError(w http.ResponseWriter, text string, fields map[string][]string) {
	if fields == nil {
		fields = map[string][]string{}
	}
	emukit.WriteJSON(w, http.StatusBadRequest, map[string]any{"fields": fields, "text": text})
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
		emukit.WriteJSON(w, http.StatusUnauthorized, map[string]any{"detail": msgBadCredentials})
		return
	}
	if in.Password == a.Password && a.SSOEnforced {
		emukit.WriteJSON(w, http.StatusUnauthorized, map[string]any{"detail": MsgSSOEnforced})
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
	emukit.WriteJSON(w, http.StatusUnauthorized, map[string]any{"detail": msgBadCredentials})
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
	// One step of clock skew either way; a code is accepted once (RFC 6238 §5.2: "the verifier
	// MUST NOT accept the second attempt of the OTP after the successful validation"), so a
	// second login within the same 30 s step is refused like a wrong code.
	step := s.now().Unix() / 30
	for _, st := range []int64{step, step - 1, step + 1} {
		if c, err := totp.Code(a.TOTPSecret, time.Unix(st*30, 0)); err == nil && c == in.Code {
			if last, used := s.totpUsed[user]; used && st <= last {
				break
			}
			s.totpUsed[user] = st
			delete(s.twoFA, in.Token)
			emukit.WriteJSON(w, http.StatusOK, map[string]any{"token": s.newSession(user, false)})
			return
		}
	}
	emukit.WriteJSON(w, http.StatusUnauthorized, map[string]any{"detail": "Incorrect authentication code"})
}

// authToken is POST /v2/auth/token {"identifier","secret"} -> {"access_token"}: the secret is a
// password, a personal access token (identifier: the user) or an organization access token
// (identifier: the organization). A 2FA account's password alone is refused like a wrong one:
// the reference documents no second factor here.
func (s *Server) authToken(w http.ResponseWriter, r *http.Request) {
	var in struct{ Identifier, Secret string }
	_ = json.NewDecoder(r.Body).Decode(&in)
	if in.Identifier == "" || in.Secret == "" {
		fields := map[string][]string{}
		if in.Identifier == "" {
			fields["identifier"] = []string{"This field is required."}
		}
		if in.Secret == "" {
			fields["secret"] = []string{"This field is required."}
		}
		valueError(w, "identifier and secret are required", fields)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.accounts[in.Identifier]
	switch {
	case ok && in.Secret == a.Password && a.SSOEnforced:
		emukit.WriteJSON(w, http.StatusUnauthorized, map[string]any{"detail": MsgSSOEnforced})
	case ok && in.Secret == a.Password && a.TOTPSecret == "":
		emukit.WriteJSON(w, http.StatusOK, map[string]any{"access_token": s.newSession(a.Username, false)})
	case ok && s.tokenBySecret(a.Username, in.Secret) != nil:
		emukit.WriteJSON(w, http.StatusOK, map[string]any{"access_token": s.newSessionFrom(session{user: a.Username, fromPAT: true})})
	case !ok && s.orgTokenBySecret(in.Identifier, in.Secret) != nil:
		emukit.WriteJSON(w, http.StatusOK, map[string]any{"access_token": s.newSessionFrom(session{user: in.Identifier, fromOAT: true})})
	default:
		emukit.WriteJSON(w, http.StatusUnauthorized, map[string]any{"detail": msgBadCredentials})
	}
}

// newSession needs s.mu held.
func (s *Server) newSession(user string, fromPAT bool) string {
	return s.newSessionFrom(session{user: user, fromPAT: fromPAT})
}

// newSessionFrom needs s.mu held.
func (s *Server) newSessionFrom(sess session) string {
	t := "jwt_" + emukit.RandHex(20)
	if s.opts.SessionLifetime > 0 {
		sess.expires = s.now().Add(s.opts.SessionLifetime)
	}
	s.sessions[t] = sess
	return t
}

// tokenBySecret needs s.mu held: a usable personal access token of user owner.
func (s *Server) tokenBySecret(owner, secret string) *Token {
	for _, t := range s.tokens {
		if t.Owner == owner && !t.Org && t.Secret == secret && s.usable(t) {
			return t
		}
	}
	return nil
}

// orgTokenBySecret needs s.mu held: a usable organization access token of org.
func (s *Server) orgTokenBySecret(org, secret string) *Token {
	for _, t := range s.tokens {
		if t.Owner == org && t.Org && t.Secret == secret && s.usable(t) {
			return t
		}
	}
	return nil
}

// usable needs s.mu held: active and not expired.
func (s *Server) usable(t *Token) bool {
	return t.Active && (t.ExpiresAt.IsZero() || s.now().Before(t.ExpiresAt))
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
		emukit.WriteJSON(w, http.StatusForbidden, map[string]any{"message": MsgPATSession, "errinfo": map[string]any{}})
		return
	}
	if sess.fromOAT {
		emukit.WriteJSON(w, http.StatusForbidden, map[string]any{"message": MsgOATSession, "errinfo": map[string]any{}})
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
		valueError(w, "invalid JSON", nil)
		return
	}
	label, scopes, labelField := in.TokenLabel, in.Scopes, "token_label"
	if org {
		label, labelField = in.Label, "label"
		if len(in.Resources) == 0 {
			valueError(w, "invalid request", map[string][]string{"resources": {"This field is required."}})
			return
		}
		scopes = nil
		for _, res := range in.Resources {
			if res.Type != "TYPE_REPO" && res.Type != "TYPE_ORG" {
				valueError(w, "invalid request", map[string][]string{"resources": {"unknown resource type " + res.Type}})
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
			// Expired and inactive tokens count until deleted (Docker docs, "Organization access
			// tokens").
			valueError(w, fmt.Sprintf("organization access token limit reached (%d)", cap), nil)
			return
		}
	} else {
		for _, sc := range scopes {
			if !slices.Contains(validScopes, sc) {
				valueError(w, "invalid request", map[string][]string{"scopes": {"invalid scope " + sc}})
				return
			}
		}
		if len(scopes) == 0 {
			valueError(w, "invalid request", map[string][]string{"scopes": {"This field is required."}})
			return
		}
	}
	if len(label) < 1 || len(label) > 100 {
		valueError(w, "invalid request", map[string][]string{labelField: {"Ensure this field has 1 to 100 characters."}})
		return
	}
	t := &Token{ID: uuid(), Owner: owner, Org: org, Label: label, Scopes: scopes, Active: true, CreatedAt: s.now().UTC()}
	if in.ExpiresAt != "" {
		exp, err := time.Parse(time.RFC3339, in.ExpiresAt)
		if err != nil || !exp.After(s.now()) {
			valueError(w, "invalid request", map[string][]string{"expires_at": {"must be an RFC 3339 time in the future"}})
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
	held := 0
	for _, o := range s.tokens {
		if o.Owner == owner && o.Org == org {
			held++
		}
	}
	s.peak[owner] = max(s.peak[owner], held)
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
	rt, ok := s.regTokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
	valid := ok && s.now().Before(rt.expires)
	s.mu.Unlock()
	if valid {
		emukit.WriteJSON(w, http.StatusOK, map[string]any{})
		return
	}
	w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="http://%s/token",service="%s"`, r.Host, RegistryService))
	emukit.WriteJSON(w, http.StatusUnauthorized, map[string]any{"errors": []map[string]any{{"code": "UNAUTHORIZED", "message": "authentication required"}}})
}

// registryToken is the distribution token endpoint: Basic credentials in, a bearer token out,
// granting pull on every repository of the repeated "scope" parameters the login may pull.
func (s *Server) registryToken(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("service") != RegistryService {
		emukit.WriteJSON(w, http.StatusBadRequest, map[string]any{"details": "unknown service"})
		return
	}
	repos := map[string]bool{}
	for _, sc := range q["scope"] {
		if !strings.HasPrefix(sc, "repository:") || !strings.HasSuffix(sc, ":pull") && !strings.Contains(sc, ":pull,") {
			emukit.WriteJSON(w, http.StatusBadRequest, map[string]any{"details": "invalid scope " + url.QueryEscape(sc)})
			return
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(sc, "repository:"), ":")
		repos[name] = true
	}
	user, pass, hasAuth := r.BasicAuth()
	s.mu.Lock()
	defer s.mu.Unlock()
	if hasAuth {
		ok := s.tokenBySecret(user, pass) != nil
		ok = ok || s.orgTokenBySecret(user, pass) != nil
		if a, exists := s.accounts[user]; exists && a.Password == pass && a.TOTPSecret == "" && !a.SSOEnforced {
			ok = true
		}
		if !ok {
			emukit.WriteJSON(w, http.StatusUnauthorized, map[string]any{"details": "incorrect username or password"})
			return
		}
	}
	tok := "reg_" + emukit.RandHex(16)
	if !hasAuth {
		user = ""
	}
	// Each scope (the parameter repeats, one per scope) is granted when the name may pull it.
	for name := range repos {
		if allowed, private := s.opts.PrivateRepositories[name]; private && (user == "" || !slices.Contains(allowed, user)) {
			delete(repos, name)
		}
	}
	s.regTokens[tok] = regToken{expires: s.now().Add(5 * time.Minute), subject: user, repos: repos}
	emukit.WriteJSON(w, http.StatusOK, map[string]any{"token": tok, "access_token": tok, "expires_in": 300, "issued_at": s.now().UTC().Format(time.RFC3339)})
}

func uuid() string {
	h := emukit.RandHex(16)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// manifestBody is the image manifest every repository and tag answers with: the emulator keeps
// no images, only what a pull is counted by.
var manifestBody = []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",` +
	`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}`)

// manifest answers HEAD and GET /v2/<name>/manifests/<reference> to a bearer token with pull on
// <name>. A login name with a pull limit gets Docker Hub's headers on both methods,
// "ratelimit-limit: N;w=<window seconds>" and "ratelimit-remaining: R;w=<window seconds>"; only
// a GET counts as a pull (Docker docs, "Docker Hub pull usage and limits"), and a GET with
// nothing remaining is refused with 429 TOOMANYREQUESTS.
func (s *Server) manifest(w http.ResponseWriter, r *http.Request) {
	name, ref, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/v2/"), "/manifests/")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		emukit.WriteJSON(w, http.StatusMethodNotAllowed, map[string]any{"errors": []map[string]any{{"code": "UNSUPPORTED", "message": "method not allowed"}}})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.regTokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
	if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") || !ok || !s.now().Before(rt.expires) || !rt.repos[name] {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="http://%s/token",service="%s",scope="repository:%s:pull"`, r.Host, RegistryService, name))
		emukit.WriteJSON(w, http.StatusUnauthorized, map[string]any{"errors": []map[string]any{{"code": "UNAUTHORIZED", "message": "authentication required"}}})
		return
	}
	if name == "" || ref == "" {
		emukit.WriteJSON(w, http.StatusNotFound, map[string]any{"errors": []map[string]any{{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}}})
		return
	}
	limit, limited := s.opts.PullLimits[rt.subject]
	if limited {
		window := s.opts.PullWindow
		if window <= 0 {
			window = 6 * time.Hour
		}
		now := s.now()
		recent := slices.DeleteFunc(s.pulls[rt.subject], func(t time.Time) bool { return !now.Before(t.Add(window)) })
		remaining := max(limit-len(recent), 0)
		if r.Method == http.MethodGet && remaining > 0 {
			recent = append(recent, now)
			remaining--
		} else if r.Method == http.MethodGet {
			s.pulls[rt.subject] = recent
			emukit.WriteJSON(w, http.StatusTooManyRequests, map[string]any{"errors": []map[string]any{{"code": "TOOMANYREQUESTS",
				"message": "You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limits"}}})
			return
		}
		s.pulls[rt.subject] = recent
		secs := int(window / time.Second)
		w.Header().Set("Ratelimit-Limit", fmt.Sprintf("%d;w=%d", limit, secs))
		w.Header().Set("Ratelimit-Remaining", fmt.Sprintf("%d;w=%d", remaining, secs))
		w.Header().Set("Docker-Ratelimit-Source", rt.subject)
	}
	sum := sha256.Sum256(manifestBody)
	w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	w.Header().Set("Docker-Content-Digest", "sha256:"+hex.EncodeToString(sum[:]))
	w.Header().Set("Content-Length", strconv.Itoa(len(manifestBody)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(manifestBody)
	}
}

// PullsLeft is how many pulls login name has left in the current window, and whether it has a
// limit at all.
func (s *Server) PullsLeft(name string) (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	limit, ok := s.opts.PullLimits[name]
	if !ok {
		return 0, false
	}
	window := s.opts.PullWindow
	if window <= 0 {
		window = 6 * time.Hour
	}
	n := 0
	for _, t := range s.pulls[name] {
		if s.now().Before(t.Add(window)) {
			n++
		}
	}
	return max(limit-n, 0), true
}
