// Package gitlab is a protocol-faithful emulator of the parts of GitLab this project talks to,
// written from GitLab's public REST API documentation (group_access_tokens.md,
// project_access_tokens.md), its API source (lib/api/resource_access_tokens.rb and the
// ResourceAccessTokens services) and the distribution token spec: group and project access
// tokens (list with offset pagination, get, create, revoke, rotate) and the container
// registry's /v2/ challenge plus its /jwt/auth token endpoint. One server plays both gitlab.com
// and registry.gitlab.com, so a test needs one URL.
//
// What it models, because the product depends on it:
//   - PRIVATE-TOKEN (or Bearer) authentication; 401 for an unknown, revoked or expired token,
//     403 insufficient_scope for a token without the api scope (read_api may only read);
//   - permissions as GitLab's policies grant them: managing group tokens needs the Owner role,
//     project tokens at least Maintainer, and on GitLab.com a Premium/Ultimate namespace. A user
//     without that right gets 401 on list and get, 400 on create and revoke — GitLab's answers,
//     not 403;
//   - expires_at as GitLab.com enforces it: a date at most 365 days ahead (default: the
//     maximum), the token dead from midnight UTC of that date;
//   - revocation takes effect at once; revoked and expired tokens stay listed as inactive for
//     30 days (GitLab 17.9+); revoking a revoked token answers 400 (its bot user already lost
//     its membership — an assumption from RevokeService, which the product tolerates);
//   - the rotate endpoint revokes the old token immediately, as GitLab documents;
//   - registry logins ignore the username (GitLab's personal_access_token_check never reads
//     it) and grant pull on a private project only from the Reporter role up: a valid credential
//     without that right still gets 200 and a token whose "access" claim is empty, as
//     ContainerRegistryAuthenticationService does.
//
// Also GET /api/v4/user (the token's own user, API::Entities::UserPublic): a group or project
// access token answers as its bot user — "bot": true and a username GitLab generates as
// group_<id>_bot_<hex> / project_<id>_bot_<hex> (ResourceAccessTokens::CreateService); a
// service account is "bot": true too, under its own username; a person is "bot": false. It needs
// the api, read_api or read_user scope (403 insufficient_scope otherwise).
//
// Not modelled: GraphQL, OAuth, CI job tokens, deploy tokens, token-family reuse detection.
package gitlabemu

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/emukit"
)

// Access levels GitLab assigns to members and to access tokens.
const (
	Guest      = 10
	Planner    = 15
	Reporter   = 20
	Developer  = 30
	Maintainer = 40
	Owner      = 50
)

// ValidAccessLevels are the access_level values the token API accepts.
var ValidAccessLevels = []int{Guest, Planner, Reporter, Developer, Maintainer, Owner}

// ValidScopes are the scopes a group or project access token may carry (GitLab's
// resource_bot_scopes, from the "Scopes for a group access token" table).
var ValidScopes = []string{"api", "read_api", "read_registry", "write_registry", "read_repository", "write_repository",
	"create_runner", "manage_runner", "ai_features", "k8s_proxy", "self_rotate"}

// Options configure the emulator.
type Options struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MaxLifetimeDays caps expires_at; zero means 365, GitLab.com's limit.
	MaxLifetimeDays int
	// MaxPerPage caps per_page on lists; zero means 100, GitLab's cap. Tests lower it to see
	// pagination without creating hundreds of tokens.
	MaxPerPage int
	// RegistryTokenLifetime is how long a /jwt/auth token lasts; zero means 15 minutes (GitLab.com).
	RegistryTokenLifetime time.Duration
}

// User is a GitLab account (a person, or a service account) with one personal access token.
type User struct {
	// ID is the user id GET /user reports; zero means one is assigned.
	ID       int
	Username string
	// ServiceAccount marks a service account: GitLab renders it with "bot": true (user type
	// service_account is one of its BOT_USER_TYPES), yet its personal access tokens may manage
	// group and project access tokens like a person's.
	ServiceAccount bool
	// Token is the personal access token the user authenticates with.
	Token string
	// Scopes of Token; nil means ["api"].
	Scopes []string
}

// Group is a group or subgroup.
type Group struct {
	ID int
	// Path is the full path, e.g. "acme" or "acme/platform".
	Path string
	// Premium marks a Premium/Ultimate namespace; on GitLab.com only those may use group and
	// project access tokens. A subgroup or project inherits it from any ancestor.
	Premium bool
	// Members maps a username to its access level; subgroups and projects inherit it.
	Members map[string]int
}

// Project is a project with a container registry.
type Project struct {
	ID int
	// Path is the full path, e.g. "acme/platform/app".
	Path string
	// Public projects let anyone pull; private ones need Reporter or above.
	Public bool
	// Premium as on Group (a project in a Premium group is Premium already).
	Premium bool
	// Members maps a username to its direct access level.
	Members map[string]int
}

// Token is a group or project access token as the emulator stores it.
type Token struct {
	ID int
	// Kind is "groups" or "projects".
	Kind string
	// ResourceID and ResourcePath name the group or project.
	ResourceID   int
	ResourcePath string
	Name         string
	Description  string
	// Secret is the token value, shown by the API only when created or rotated.
	Secret      string
	Scopes      []string
	AccessLevel int
	// ExpiresAt is the expiry date; the token stops working at midnight UTC that day.
	ExpiresAt time.Time
	CreatedAt time.Time
	Revoked   bool
	// InactiveSince is when it was revoked (zero while not revoked).
	InactiveSince time.Time
	// BotUserID and BotUsername are the bot user GitLab creates for each token.
	BotUserID   int
	BotUsername string
}

// Active reports whether the token still authenticates at now.
func (t Token) Active(now time.Time) bool { return !t.Revoked && now.Before(t.ExpiresAt) }

// Call is one request the emulator answered.
type Call = emukit.Call

// Server is the emulator. Create it with New.
type Server struct {
	emukit.Recorder
	opts   Options
	jwtKey []byte

	mu        sync.Mutex
	users     map[string]*User // by username
	groups    []*Group
	projects  []*Project
	tokens    []*Token // creation order
	nextID    int
	nextUser  int
	nextHuman int
}

// New returns an empty emulator; add users, groups and projects before use.
func New(opts Options) *Server {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return &Server{opts: opts, jwtKey: key, users: map[string]*User{}, nextID: 100, nextUser: 1000}
}

// AddUser adds or replaces a user.
func (s *Server) AddUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cp := u
	if cp.Scopes == nil {
		cp.Scopes = []string{"api"}
	}
	if cp.ID == 0 {
		s.nextHuman++
		cp.ID = s.nextHuman
	}
	s.users[u.Username] = &cp
}

// AddGroup adds a group.
func (s *Server) AddGroup(g Group) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cp := g
	s.groups = append(s.groups, &cp)
}

// AddProject adds a project.
func (s *Server) AddProject(p Project) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cp := p
	s.projects = append(s.projects, &cp)
}

// SetMember sets a user's direct access level on the group or project with this full path
// (zero removes the membership).
func (s *Server) SetMember(path, username string, level int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := func(m *map[string]int) {
		if *m == nil {
			*m = map[string]int{}
		}
		if level == 0 {
			delete(*m, username)
		} else {
			(*m)[username] = level
		}
	}
	for _, g := range s.groups {
		if g.Path == path {
			set(&g.Members)
		}
	}
	for _, p := range s.projects {
		if p.Path == path {
			set(&p.Members)
		}
	}
}

// Tokens returns a copy of every access token ever created (secrets included, for assertions).
func (s *Server) Tokens() []Token {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Token, 0, len(s.tokens))
	for _, t := range s.tokens {
		cp := *t
		cp.Scopes = slices.Clone(t.Scopes)
		out = append(out, cp)
	}
	return out
}

// Now is the emulator's clock.
func (s *Server) Now() time.Time {
	if s.opts.Now != nil {
		return s.opts.Now()
	}
	return time.Now()
}

func (s *Server) maxLifetimeDays() int {
	if s.opts.MaxLifetimeDays > 0 {
		return s.opts.MaxLifetimeDays
	}
	return 365
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	auth := emukit.AuthScheme(r)
	if r.Header.Get("PRIVATE-TOKEN") != "" {
		auth = "PRIVATE-TOKEN"
	}
	s.Record(w, r, auth, s.serve)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if st := s.TakeFault(r); st != 0 {
		if st == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		emukit.WriteJSON(w, st, map[string]any{"message": fmt.Sprintf("%d injected failure", st)})
		return
	}
	p := r.URL.EscapedPath()
	switch {
	case p == "/api/v4/user":
		s.currentUser(w, r)
	case strings.HasPrefix(p, "/api/v4/groups/"):
		s.resourceAPI(w, r, "groups", strings.TrimPrefix(p, "/api/v4/groups/"))
	case strings.HasPrefix(p, "/api/v4/projects/"):
		s.resourceAPI(w, r, "projects", strings.TrimPrefix(p, "/api/v4/projects/"))
	case p == "/jwt/auth":
		s.jwtAuth(w, r)
	case p == "/v2" || p == "/v2/":
		s.registryPing(w, r)
	case strings.HasPrefix(p, "/v2/"):
		s.registryResource(w, r)
	default:
		emukit.WriteJSON(w, http.StatusNotFound, map[string]any{"error": "404 Not Found"})
	}
}

// principal is who authenticated an API or registry request.
type principal struct {
	username string
	scopes   []string
	bot      *Token // set for a group/project access token
	user     *User  // set for a personal access token
}

// authenticate needs s.mu held. It finds the owner of a token value, or nil.
func (s *Server) authenticate(secret string) *principal {
	if secret == "" {
		return nil
	}
	for _, u := range s.users {
		if u.Token == secret {
			return &principal{username: u.Username, scopes: u.Scopes, user: u}
		}
	}
	now := s.Now()
	for _, t := range s.tokens {
		if t.Secret == secret && t.Active(now) {
			return &principal{username: t.BotUsername, scopes: t.Scopes, bot: t}
		}
	}
	return nil
}

// level needs s.mu held: the access level p has on the group or project at path.
func (s *Server) level(p *principal, kind, path string) int {
	if p.bot != nil {
		// A group token's bot is a member of its group and so of everything below it; a
		// project token's bot only of its project.
		b := p.bot
		if path == b.ResourcePath || (b.Kind == "groups" && strings.HasPrefix(path, b.ResourcePath+"/")) {
			return b.AccessLevel
		}
		return 0
	}
	lvl := 0
	for _, g := range s.groups {
		if g.Path == path || strings.HasPrefix(path, g.Path+"/") {
			lvl = max(lvl, g.Members[p.username])
		}
	}
	if kind == "projects" {
		for _, pr := range s.projects {
			if pr.Path == path {
				lvl = max(lvl, pr.Members[p.username])
			}
		}
	}
	return lvl
}

// premium needs s.mu held.
func (s *Server) premium(kind, path string) bool {
	for _, g := range s.groups {
		if g.Premium && (g.Path == path || strings.HasPrefix(path, g.Path+"/")) {
			return true
		}
	}
	if kind == "projects" {
		for _, p := range s.projects {
			if p.Path == path && p.Premium {
				return true
			}
		}
	}
	return false
}

// resource is a group or project found by id or path.
type resource struct {
	kind string
	id   int
	path string
}

// find needs s.mu held. id is a number or an unescaped full path.
func (s *Server) find(kind, id string) (resource, bool) {
	n, numErr := strconv.Atoi(id)
	if kind == "groups" {
		for _, g := range s.groups {
			if (numErr == nil && g.ID == n) || strings.EqualFold(g.Path, id) {
				return resource{kind, g.ID, g.Path}, true
			}
		}
	} else {
		for _, p := range s.projects {
			if (numErr == nil && p.ID == n) || strings.EqualFold(p.Path, id) {
				return resource{kind, p.ID, p.Path}, true
			}
		}
	}
	return resource{}, false
}

func singular(kind string) string { return strings.TrimSuffix(kind, "s") }

// canManage needs s.mu held: GitLab's create/read_resource_access_tokens policies.
func (s *Server) canManage(p *principal, res resource) bool {
	if p.bot != nil {
		return false // "You cannot use group access tokens to create other ... tokens."
	}
	need := Owner
	if res.kind == "projects" {
		need = Maintainer
	}
	return s.level(p, res.kind, res.path) >= need && s.premium(res.kind, res.path)
}

func hasScope(scopes []string, want ...string) bool {
	for _, w := range want {
		if slices.Contains(scopes, w) {
			return true
		}
	}
	return false
}

// resourceAPI serves /api/v4/{groups|projects}/:id/access_tokens[/:token_id[/rotate]].
func (s *Server) resourceAPI(w http.ResponseWriter, r *http.Request, kind, rest string) {
	rawID, tail, _ := strings.Cut(rest, "/")
	id, err := url.PathUnescape(rawID)
	if err != nil || (tail != "access_tokens" && !strings.HasPrefix(tail, "access_tokens/")) {
		emukit.WriteJSON(w, http.StatusNotFound, map[string]any{"error": "404 Not Found"})
		return
	}
	tail = strings.TrimPrefix(strings.TrimPrefix(tail, "access_tokens"), "/")
	tokenID, action, _ := strings.Cut(tail, "/")

	s.mu.Lock()
	defer s.mu.Unlock()
	secret := r.Header.Get("PRIVATE-TOKEN")
	if secret == "" {
		if a := r.Header.Get("Authorization"); strings.HasPrefix(a, "Bearer ") {
			secret = strings.TrimPrefix(a, "Bearer ")
		}
	}
	p := s.authenticate(secret)
	if p == nil {
		emukit.WriteJSON(w, http.StatusUnauthorized, map[string]any{"message": "401 Unauthorized"})
		return
	}
	write := r.Method != http.MethodGet && r.Method != http.MethodHead
	if !hasScope(p.scopes, "api") && (write || !hasScope(p.scopes, "read_api")) {
		need := "api"
		if !write {
			need = "api read_api"
		}
		emukit.WriteJSON(w, http.StatusForbidden, map[string]any{"error": "insufficient_scope",
			"error_description": "The request requires higher privileges than provided by the access token.", "scope": need})
		return
	}
	res, ok := s.find(kind, id)
	if !ok || s.level(p, kind, res.path) == 0 {
		// GitLab hides what the user may not see.
		emukit.WriteJSON(w, http.StatusNotFound, map[string]any{"message": "404 " + strings.ToUpper(kind[:1]) + singular(kind)[1:] + " Not Found"})
		return
	}
	switch {
	case tokenID == "" && r.Method == http.MethodGet:
		s.list(w, r, p, res)
	case tokenID == "" && r.Method == http.MethodPost:
		s.create(w, r, p, res)
	case tokenID != "" && action == "" && r.Method == http.MethodGet:
		if !s.canManage(p, res) {
			emukit.WriteJSON(w, http.StatusUnauthorized, map[string]any{"message": "401 Unauthorized"})
			return
		}
		t := s.tokenOf(res, tokenID)
		if t == nil {
			emukit.WriteJSON(w, http.StatusNotFound, map[string]any{"message": "404 " + singular(kind) + " Access Token Not Found"})
			return
		}
		emukit.WriteJSON(w, http.StatusOK, s.render(t, false))
	case tokenID != "" && action == "" && r.Method == http.MethodDelete:
		s.revoke(w, p, res, tokenID)
	case tokenID != "" && action == "rotate" && r.Method == http.MethodPost:
		s.rotate(w, r, p, res, tokenID)
	default:
		emukit.WriteJSON(w, http.StatusMethodNotAllowed, map[string]any{"error": "405 Method Not Allowed"})
	}
}

// tokenOf needs s.mu held: the token with this id belonging to res, listed or not.
func (s *Server) tokenOf(res resource, tokenID string) *Token {
	n, err := strconv.Atoi(tokenID)
	if err != nil {
		return nil
	}
	for _, t := range s.tokens {
		if t.ID == n && t.Kind == res.kind && t.ResourceID == res.id && s.listed(t) {
			return t
		}
	}
	return nil
}

// listed needs s.mu held: inactive tokens stay visible for 30 days (GitLab 17.9+).
func (s *Server) listed(t *Token) bool {
	now := s.Now()
	if t.Revoked {
		return now.Sub(t.InactiveSince) < 30*24*time.Hour
	}
	return now.Sub(t.ExpiresAt) < 30*24*time.Hour
}

func (s *Server) list(w http.ResponseWriter, r *http.Request, p *principal, res resource) {
	if !s.canManage(p, res) {
		emukit.WriteJSON(w, http.StatusUnauthorized, map[string]any{"message": "401 Unauthorized"})
		return
	}
	q := r.URL.Query()
	now := s.Now()
	var mine []*Token
	for _, t := range s.tokens {
		if t.Kind != res.kind || t.ResourceID != res.id || !s.listed(t) {
			continue
		}
		switch q.Get("state") {
		case "active":
			if !t.Active(now) {
				continue
			}
		case "inactive":
			if t.Active(now) {
				continue
			}
		}
		if q.Get("revoked") == "true" && !t.Revoked {
			continue
		}
		if sv := q.Get("search"); sv != "" && !strings.Contains(strings.ToLower(t.Name), strings.ToLower(sv)) {
			continue
		}
		mine = append(mine, t)
	}
	sort.SliceStable(mine, func(i, j int) bool { return mine[i].ID > mine[j].ID })
	maxPer := s.opts.MaxPerPage
	if maxPer <= 0 {
		maxPer = 100
	}
	page, _ := strconv.Atoi(q.Get("page"))
	per, _ := strconv.Atoi(q.Get("per_page"))
	if per <= 0 {
		per = 20
	}
	page, per = max(page, 1), min(per, maxPer)
	total := len(mine)
	pages := max((total+per-1)/per, 1)
	from, to := min((page-1)*per, total), min(page*per, total)
	out := []map[string]any{}
	for _, t := range mine[from:to] {
		out = append(out, s.render(t, false))
	}
	h := w.Header()
	h.Set("X-Page", strconv.Itoa(page))
	h.Set("X-Per-Page", strconv.Itoa(per))
	h.Set("X-Total", strconv.Itoa(total))
	h.Set("X-Total-Pages", strconv.Itoa(pages))
	h.Set("X-Prev-Page", "")
	h.Set("X-Next-Page", "")
	link := func(n int, rel string) string {
		u := url.URL{Scheme: "http", Host: r.Host, RawPath: r.URL.EscapedPath(), Path: r.URL.Path}
		qq := r.URL.Query()
		qq.Set("page", strconv.Itoa(n))
		qq.Set("per_page", strconv.Itoa(per))
		u.RawQuery = qq.Encode()
		return fmt.Sprintf("<%s>; rel=%q", u.String(), rel)
	}
	var links []string
	if page > 1 {
		h.Set("X-Prev-Page", strconv.Itoa(page-1))
		links = append(links, link(page-1, "prev"))
	}
	if page < pages {
		h.Set("X-Next-Page", strconv.Itoa(page+1))
		links = append(links, link(page+1, "next"))
	}
	links = append(links, link(1, "first"), link(pages, "last"))
	h.Set("Link", strings.Join(links, ", "))
	emukit.WriteJSON(w, http.StatusOK, out)
}

func badRequest(w http.ResponseWriter, msg string) {
	emukit.WriteJSON(w, http.StatusBadRequest, map[string]any{"message": "400 Bad request - " + msg})
}

// validationError is Grape's answer to a parameter that fails declaration.
func validationError(w http.ResponseWriter, msg string) {
	emukit.WriteJSON(w, http.StatusBadRequest, map[string]any{"error": msg})
}

// expiry parses expires_at and applies GitLab.com's limits; ok is false once it answered.
func (s *Server) expiry(w http.ResponseWriter, raw *string, defaultDays int) (time.Time, bool) {
	today := midnight(s.Now())
	limit := today.AddDate(0, 0, s.maxLifetimeDays())
	if raw == nil || *raw == "" {
		return today.AddDate(0, 0, defaultDays), true
	}
	d, err := time.Parse("2006-01-02", *raw)
	if err != nil {
		validationError(w, "expires_at is invalid")
		return time.Time{}, false
	}
	if !d.After(today) {
		badRequest(w, "Expires at cannot be in the past")
		return time.Time{}, false
	}
	if d.After(limit) {
		badRequest(w, fmt.Sprintf("Expires at must expire in %d days", s.maxLifetimeDays()))
		return time.Time{}, false
	}
	return d, true
}

func midnight(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

func (s *Server) create(w http.ResponseWriter, r *http.Request, p *principal, res resource) {
	var in struct {
		Name        *string   `json:"name"`
		Description string    `json:"description"`
		Scopes      *[]string `json:"scopes"`
		AccessLevel *int      `json:"access_level"`
		ExpiresAt   *string   `json:"expires_at"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		validationError(w, "name is missing, scopes is missing")
		return
	}
	switch {
	case in.Name == nil || *in.Name == "":
		validationError(w, "name is missing")
		return
	case in.Scopes == nil || len(*in.Scopes) == 0:
		validationError(w, "scopes is missing")
		return
	}
	for _, sc := range *in.Scopes {
		if !slices.Contains(ValidScopes, sc) {
			validationError(w, "scopes does not have a valid value")
			return
		}
	}
	level := Maintainer // GitLab's default
	if in.AccessLevel != nil {
		level = *in.AccessLevel
		if !slices.Contains(ValidAccessLevels, level) {
			validationError(w, "access_level does not have a valid value")
			return
		}
	}
	if len(*in.Name) > 255 {
		badRequest(w, "Name is too long (maximum is 255 characters)")
		return
	}
	exp, ok := s.expiry(w, in.ExpiresAt, s.maxLifetimeDays())
	if !ok {
		return
	}
	if !s.canManage(p, res) {
		badRequest(w, "User does not have permission to create "+singular(res.kind)+" access token")
		return
	}
	if level > s.level(p, res.kind, res.path) {
		badRequest(w, "Access level of the token contains permissions not held by the creating user")
		return
	}
	s.nextUser++
	t := &Token{
		Kind: res.kind, ResourceID: res.id, ResourcePath: res.path, Name: *in.Name, Description: in.Description,
		Scopes: slices.Clone(*in.Scopes), AccessLevel: level, ExpiresAt: exp, CreatedAt: s.Now().UTC(),
		BotUserID: s.nextUser, BotUsername: fmt.Sprintf("%s_%d_bot_%s", singular(res.kind), res.id, emukit.RandHex(16)),
	}
	s.store(t)
	emukit.WriteJSON(w, http.StatusCreated, s.render(t, true))
}

// store needs s.mu held: give t an id and a secret and keep it.
func (s *Server) store(t *Token) {
	s.nextID++
	t.ID = s.nextID
	t.Secret = "glpat-" + emukit.RandHex(10)
	s.tokens = append(s.tokens, t)
}

func (s *Server) revoke(w http.ResponseWriter, p *principal, res resource, tokenID string) {
	t := s.tokenOf(res, tokenID)
	if t == nil {
		emukit.WriteJSON(w, http.StatusNotFound, map[string]any{"message": "404 " + singular(res.kind) + " Access Token Not Found"})
		return
	}
	if !s.canManage(p, res) {
		badRequest(w, p.username+" cannot delete "+t.BotUsername)
		return
	}
	if t.Revoked {
		badRequest(w, "Failed to find bot user")
		return
	}
	t.Revoked, t.InactiveSince = true, s.Now()
	w.WriteHeader(http.StatusNoContent)
}

// rotate is POST .../access_tokens/:id/rotate as GitLab documents it: the old token is revoked
// at once and a new one (same bot user, name, scopes and role) replaces it. The product never
// calls it: ECR may keep using the previous login for a while, and rotation would cut it off.
func (s *Server) rotate(w http.ResponseWriter, r *http.Request, p *principal, res resource, tokenID string) {
	var t *Token
	if s.canManage(p, res) {
		t = s.tokenOf(res, tokenID)
	}
	if t == nil {
		emukit.WriteJSON(w, http.StatusUnauthorized, map[string]any{"message": "401 Unauthorized"})
		return
	}
	var in struct {
		ExpiresAt *string `json:"expires_at"`
	}
	_ = json.NewDecoder(r.Body).Decode(&in)
	exp, ok := s.expiry(w, in.ExpiresAt, 7) // "If undefined, the token expires after one week."
	if !ok {
		return
	}
	if t.Revoked {
		badRequest(w, "token already revoked")
		return
	}
	t.Revoked, t.InactiveSince = true, s.Now()
	nt := &Token{
		Kind: t.Kind, ResourceID: t.ResourceID, ResourcePath: t.ResourcePath, Name: t.Name, Description: t.Description,
		Scopes: slices.Clone(t.Scopes), AccessLevel: t.AccessLevel, ExpiresAt: exp, CreatedAt: s.Now().UTC(),
		BotUserID: t.BotUserID, BotUsername: t.BotUsername,
	}
	s.store(nt)
	emukit.WriteJSON(w, http.StatusOK, s.render(nt, true))
}

// render needs s.mu held. The secret is shown only when a token is created or rotated.
func (s *Server) render(t *Token, withSecret bool) map[string]any {
	m := map[string]any{
		"id": t.ID, "name": t.Name, "description": t.Description, "revoked": t.Revoked,
		"created_at": t.CreatedAt.Format("2006-01-02T15:04:05.000Z"), "scopes": t.Scopes, "user_id": t.BotUserID,
		"last_used_at": nil, "active": t.Active(s.Now()), "expires_at": t.ExpiresAt.Format("2006-01-02"),
		"access_level": t.AccessLevel,
	}
	if withSecret {
		m["token"] = t.Secret
	}
	return m
}

// currentUser serves GET /api/v4/user: who the token belongs to.
func (s *Server) currentUser(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		emukit.WriteJSON(w, http.StatusMethodNotAllowed, map[string]any{"error": "405 Method Not Allowed"})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	secret := r.Header.Get("PRIVATE-TOKEN")
	if secret == "" {
		if a := r.Header.Get("Authorization"); strings.HasPrefix(a, "Bearer ") {
			secret = strings.TrimPrefix(a, "Bearer ")
		}
	}
	p := s.authenticate(secret)
	if p == nil {
		emukit.WriteJSON(w, http.StatusUnauthorized, map[string]any{"message": "401 Unauthorized"})
		return
	}
	if !hasScope(p.scopes, "api", "read_api", "read_user") {
		emukit.WriteJSON(w, http.StatusForbidden, map[string]any{"error": "insufficient_scope",
			"error_description": "The request requires higher privileges than provided by the access token.", "scope": "api read_api read_user"})
		return
	}
	var id int
	var bot bool
	if p.bot != nil {
		id, bot = p.bot.BotUserID, true
	} else {
		id, bot = p.user.ID, p.user.ServiceAccount
	}
	emukit.WriteJSON(w, http.StatusOK, map[string]any{
		"id": id, "username": p.username, "name": p.username, "state": "active", "locked": false,
		"bot": bot, "web_url": "https://gitlab.com/" + p.username,
	})
}
