// Package gitlab mints GitLab group or project access tokens for the gitlab-container-registry
// pull-through cache rule.
//
// The source secret holds an Owner's token with the api scope; each rotation creates a new
// access token named after the secret version (POST /groups/:id/access_tokens, or
// /projects/:id/...), proves it can pull from the registry, and later deletes tokens two
// generations old. It never calls GitLab's .../access_tokens/:id/rotate endpoints: they revoke
// the old token at once, which would cut off the login ECR may still be using (the previous
// version is kept working for one generation on purpose).
//
// Registry username: every access token gets its own bot user, but GitLab does not read the
// username of a token login (lib/gitlab/auth.rb personal_access_token_check matches the
// password alone; the docs say "any non-blank value"). Looking the bot's username up would cost
// a users-API call per rotation, and GitLab may hide bot users, so the credential's username is
// the token's own name (ptc-<hash>-<version>), which ties the secret version to the token an
// operator sees in GitLab's UI. Each token therefore has its own username (FixedUsername=false).
package gitlab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/pinned"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/registryauth"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/httpapi"
)

// Defaults for the source secret's optional fields.
const (
	DefaultAPIURL   = "https://gitlab.com"
	DefaultRegistry = "registry.gitlab.com"
	// DefaultAccessLevel is Reporter (20), not Guest (10): GitLab grants read_container_image on
	// a private project from the Reporter role up (ProjectPolicy), so a Guest token logs in to
	// the registry but may not pull anything private.
	DefaultAccessLevel  = 20
	DefaultLifetimeDays = 90
	// MaxLifetimeDays is GitLab.com's cap on expires_at (self-managed may set less).
	MaxLifetimeDays = 365
	maxNameLen      = 255
	pageSize        = 100
	maxPages        = 100
	// loginOnlyRepository is the pull scope requested when no repository under the group or
	// project is known: the registry still checks the credential, but cannot show pull rights.
	loginOnlyRepository = "ptc-credentials/login-check"
)

// The hosts GitLab credentials may go to (internal/pinned). ECR supports pull through cache for
// GitLab.com only, so the registry is registry.gitlab.com, whose /v2/ challenge names the
// realm https://gitlab.com/jwt/auth, and the token API is gitlab.com. Self-managed GitLab is
// refused: ECR would refuse its rule at Create anyway.
var (
	// RegistryHosts is the registry ECR pulls from (UpstreamRegistryUrl).
	RegistryHosts = pinned.Hosts{Upstream: ptcsecret.UpstreamGitLab, Exact: []string{"registry.gitlab.com"}}
	// RealmHosts is the registry's token realm.
	RealmHosts = pinned.Hosts{Upstream: ptcsecret.UpstreamGitLab, Exact: []string{"gitlab.com"}}
	// APIHosts is GitLab's REST API: the source's "apiUrl".
	APIHosts = pinned.Hosts{Upstream: ptcsecret.UpstreamGitLab, Exact: []string{"gitlab.com"}}
)

// RegistryRule is why RegistryHosts is registry.gitlab.com alone, for refusals.
const RegistryRule = "ECR supports pull through cache only for GitLab.com; self-managed GitLab cannot be an upstream"

// DefaultScopes are the token scopes used when the source secret names none.
var DefaultScopes = []string{"read_registry"}

// validScopes are the scopes GitLab accepts for group and project access tokens.
var validScopes = []string{"api", "read_api", "read_registry", "write_registry", "read_repository", "write_repository",
	"create_runner", "manage_runner", "ai_features", "k8s_proxy", "self_rotate"}

// validAccessLevels: Guest, Planner, Reporter, Developer, Maintainer, Owner.
var validAccessLevels = []int{10, 15, 20, 30, 40, 50}

// Source is the source secret's JSON for gitlab-container-registry, parsed and defaulted:
//
//	{"token": "glpat-…", "groupId": 1234 | "acme/platform", "projectId": …, "scopes": ["read_registry"],
//	 "accessLevel": 20, "tokenLifetimeDays": 90, "apiUrl": "https://gitlab.com",
//	 "checkRepository": "acme/platform/app"}
type Source struct {
	// Token authenticates the token API: a token with the api scope whose user is an Owner of
	// the group (at least Maintainer of the project).
	Token string
	// Kind is "groups" when the source names groupId, "projects" for projectId.
	Kind string
	// ID is the numeric id or the full path (unescaped) of the group or project.
	ID string
	// Scopes of the minted tokens (default read_registry).
	Scopes []string
	// AccessLevel of the minted tokens (default 20, Reporter).
	AccessLevel int
	// TokenLifetimeDays sets expires_at (1..365, default 90).
	TokenLifetimeDays int
	// APIURL is GitLab's base URL: https://gitlab.com, the default and the only host allowed
	// (APIHosts); it exists for the test kit's emulators (pinned stand-ins).
	APIURL string
	// CheckRepository is the image path the login check asks a pull scope for. Default: the
	// project's path when projectId is a path; otherwise none, and the check proves the login
	// but not pull rights (set it to a project path under the group to prove those too).
	CheckRepository string
}

// field is how the source secret names a Source field in errors.
func (s Source) field() string {
	if s.Kind == "projects" {
		return "projectId"
	}
	return "groupId"
}

type rawSource struct {
	Token             string          `json:"token"`
	GroupID           json.RawMessage `json:"groupId"`
	ProjectID         json.RawMessage `json:"projectId"`
	Scopes            []string        `json:"scopes"`
	AccessLevel       int             `json:"accessLevel"`
	TokenLifetimeDays int             `json:"tokenLifetimeDays"`
	APIURL            string          `json:"apiUrl"`
	CheckRepository   string          `json:"checkRepository"`
}

// pathRE is a GitLab namespace/project path: segments of letters, digits, _ . - joined by /.
var pathRE = regexp.MustCompile(`^[A-Za-z0-9_.][A-Za-z0-9_.-]*(/[A-Za-z0-9_.][A-Za-z0-9_.-]*)*$`)

// repoRE is an OCI repository name (distribution reference grammar).
var repoRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)

const errPrefix = "gitlab-container-registry source secret: "

// ParseSource reads and checks the source secret. Errors name the field, never its value.
func ParseSource(raw []byte) (Source, error) {
	var r rawSource
	if err := upstream.DecodeSource(raw, ptcsecret.UpstreamGitLab, &r); err != nil {
		return Source{}, err
	}
	s := Source{Token: r.Token, AccessLevel: r.AccessLevel, TokenLifetimeDays: r.TokenLifetimeDays,
		APIURL: r.APIURL, CheckRepository: r.CheckRepository, Scopes: r.Scopes}
	if strings.TrimSpace(s.Token) == "" || strings.TrimSpace(s.Token) != s.Token {
		return Source{}, errors.New(errPrefix + `field "token" is required, without surrounding spaces (a token with the api scope whose user is an Owner of the group or project)`)
	}
	hasGroup, hasProject := present(r.GroupID), present(r.ProjectID)
	switch {
	case hasGroup && hasProject:
		return Source{}, errors.New(errPrefix + `give either "groupId" or "projectId", not both`)
	case hasGroup:
		s.Kind = "groups"
		id, err := parseID("groupId", r.GroupID)
		if err != nil {
			return Source{}, err
		}
		s.ID = id
	case hasProject:
		s.Kind = "projects"
		id, err := parseID("projectId", r.ProjectID)
		if err != nil {
			return Source{}, err
		}
		s.ID = id
	default:
		return Source{}, errors.New(errPrefix + `field "groupId" or "projectId" is required (a numeric id or the full path, e.g. "acme/platform")`)
	}
	if s.Scopes == nil {
		s.Scopes = slices.Clone(DefaultScopes)
	}
	if len(s.Scopes) == 0 {
		return Source{}, errors.New(errPrefix + `field "scopes" is empty; leave it out for ["read_registry"]`)
	}
	for i, sc := range s.Scopes {
		if !slices.Contains(validScopes, sc) {
			return Source{}, fmt.Errorf(errPrefix+`field "scopes" item %d is not a GitLab access token scope; use %s`, i+1, strings.Join(validScopes, ", "))
		}
		if slices.Contains(s.Scopes[:i], sc) {
			return Source{}, fmt.Errorf(errPrefix+`field "scopes" lists %q twice`, sc)
		}
	}
	if !slices.Contains(s.Scopes, "read_registry") && !slices.Contains(s.Scopes, "api") {
		return Source{}, errors.New(errPrefix + `field "scopes" must include "read_registry" (or "api"): without it the token cannot pull`)
	}
	if s.AccessLevel == 0 {
		s.AccessLevel = DefaultAccessLevel
	}
	if !slices.Contains(validAccessLevels, s.AccessLevel) {
		return Source{}, fmt.Errorf(errPrefix+`field "accessLevel" is %d; use 10 (Guest), 15 (Planner), 20 (Reporter), 30 (Developer), 40 (Maintainer) or 50 (Owner)`, s.AccessLevel)
	}
	switch {
	case s.TokenLifetimeDays == 0:
		s.TokenLifetimeDays = DefaultLifetimeDays
	case s.TokenLifetimeDays < 1 || s.TokenLifetimeDays > MaxLifetimeDays:
		return Source{}, fmt.Errorf(errPrefix+`field "tokenLifetimeDays" is %d; use 1..%d (GitLab caps access tokens at one year)`, s.TokenLifetimeDays, MaxLifetimeDays)
	}
	if s.APIURL == "" {
		s.APIURL = DefaultAPIURL
	}
	if _, err := httpapi.BaseURL(errPrefix+`field "apiUrl"`, s.APIURL); err != nil {
		return Source{}, err
	}
	s.APIURL = strings.TrimRight(strings.TrimSpace(s.APIURL), "/")
	if err := s.checkRepository(); err != nil {
		return Source{}, err
	}
	return s, nil
}

// checkRepository defaults and validates CheckRepository.
func (s *Source) checkRepository() error {
	isPath := !isNumeric(s.ID)
	if s.CheckRepository == "" {
		if s.Kind == "projects" && isPath {
			s.CheckRepository = strings.ToLower(s.ID)
		}
		return nil
	}
	if !repoRE.MatchString(s.CheckRepository) {
		return errors.New(errPrefix + `field "checkRepository" is not a repository path (lowercase, e.g. "acme/platform/app")`)
	}
	if isPath {
		base := strings.ToLower(s.ID)
		if s.CheckRepository != base && !strings.HasPrefix(s.CheckRepository, base+"/") {
			return fmt.Errorf(errPrefix+`field "checkRepository" must be a project path under %q (field %q)`, s.ID, s.field())
		}
	}
	return nil
}

func present(m json.RawMessage) bool { return len(m) > 0 && string(m) != "null" }

func isNumeric(s string) bool {
	_, err := strconv.ParseUint(s, 10, 63)
	return err == nil
}

// parseID accepts a positive JSON integer or a string holding an id or a full path.
func parseID(field string, raw json.RawMessage) (string, error) {
	var n json.Number
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", fmt.Errorf(errPrefix+"field %q is not valid JSON", field)
	}
	switch t := v.(type) {
	case json.Number:
		n = t
		if i, err := strconv.ParseUint(n.String(), 10, 63); err != nil || i == 0 {
			return "", fmt.Errorf(errPrefix+"field %q must be a positive whole number or a path string", field)
		}
		return n.String(), nil
	case string:
		p := strings.Trim(t, "/")
		if isNumeric(p) && p != "0" {
			return p, nil
		}
		if p == "" || !pathRE.MatchString(p) || strings.Contains(p, "..") || len(p) > 1024 {
			return "", fmt.Errorf(errPrefix+`field %q is not a GitLab path (segments of letters, digits, "_", "." and "-" joined by "/", e.g. "acme/platform")`, field)
		}
		return p, nil
	}
	return "", fmt.Errorf(errPrefix+"field %q must be a number or a string", field)
}

// GitLab is the gitlab-container-registry upstream.
type GitLab struct {
	src      Source
	tokens   string // {api}/api/v4/{groups|projects}/{escaped id}/access_tokens
	registry string
	api      *httpapi.Caller
	opts     upstream.Options
	// whoChecked and resourceBot remember refuseResourceToken's one lookup (under whoMu).
	whoMu       sync.Mutex
	whoChecked  bool
	resourceBot string
}

var _ upstream.Upstream = (*GitLab)(nil)

// New builds the upstream from the source secret's JSON.
func New(source []byte, opts upstream.Options) (*GitLab, error) {
	src, err := ParseSource(source)
	if err != nil {
		return nil, err
	}
	if src.APIURL, err = opts.CheckURL(errPrefix+`field "apiUrl"`, src.APIURL, APIHosts); err != nil {
		return nil, fmt.Errorf("%w (%s)", err, RegistryRule)
	}
	reg, err := opts.LoginRegistry(RegistryHosts, DefaultRegistry, RegistryRule)
	if err != nil {
		return nil, err
	}
	return &GitLab{
		src: src,
		// A path id is one URL-encoded segment ("acme%2Fplatform"), as GitLab requires.
		tokens:   src.APIURL + "/api/v4/" + src.Kind + "/" + url.PathEscape(src.ID) + "/access_tokens",
		registry: reg,
		opts:     opts,
		api:      &httpapi.Caller{Service: "GitLab", Client: opts.Client(APIHosts), Now: opts.Clock(), Sleep: opts.Sleep},
	}, nil
}

// Provider describes gitlab-container-registry to the rotation engine and the provisioner.
var Provider = upstream.Provider{
	Registry:           ptcsecret.UpstreamGitLab,
	New:                func(source []byte, opts upstream.Options) (upstream.Upstream, error) { return New(source, opts) },
	FixedUsername:      false, // each token logs in under its own name (see the package comment)
	DefaultRegistryURL: DefaultRegistry,
	RegistryHosts:      RegistryHosts,
	RegistryRule:       RegistryRule,
}

// Registry implements upstream.Upstream.
func (g *GitLab) Registry() string { return ptcsecret.UpstreamGitLab }

// Retries reports how many API calls were retried (429 or transient), for logs and benchmarks.
func (g *GitLab) Retries() int { return g.api.Retries }

func (g *GitLab) call(ctx context.Context, op string, req httpapi.Request, out any) (httpapi.Response, error) {
	req.Header = http.Header{"PRIVATE-TOKEN": {g.src.Token}}
	resp, err := g.api.Do(ctx, op, req, out)
	// Only the calls that come before a mint ask who the token is: a refused revoke has its own
	// meaning (Revoke reads the token after GitLab's 400).
	if op == opList || op == opCreate+g.kindName() {
		if berr := g.refuseResourceToken(ctx, err); berr != nil {
			return resp, berr
		}
	}
	return resp, g.explain(err)
}

// Operation names of the calls made before a mint (see call).
const (
	opList   = "list access tokens"
	opCreate = "create "
)

func (g *GitLab) kindName() string { return strings.TrimSuffix(g.src.Kind, "s") + " access token" }

// ErrResourceToken is wrapped by the error for a source token that is itself a group or project
// access token: GitLab documents that such a token cannot create other tokens.
var ErrResourceToken = errors.New("this token cannot create access tokens; use a personal or service-account token with `api`")

// resourceBotRE is the username GitLab generates for a group or project access token's bot user
// (ResourceAccessTokens::CreateService: "<group|project>_<id>_bot", then a random suffix).
var resourceBotRE = regexp.MustCompile(`^(group|project)_[0-9]+_bot`)

// refuseResourceToken runs when the token API refused the source token (400, 401 or 403, which
// is how GitLab answers a group or project access token on another token endpoint, in the same
// words as a person who lacks the role). It asks GitLab whose token it is (GET /api/v4/user,
// once) and returns ErrResourceToken's error when it is a group or project token's bot user —
// "bot": true under a generated name; a service account is a bot too, under its own name, and
// may mint. Nothing is minted before this, because the refused call is the list or the create.
// Any other outcome (a person, a token /user refuses) returns nil and GitLab's own error stands.
func (g *GitLab) refuseResourceToken(ctx context.Context, err error) error {
	var se *httpapi.StatusError
	if !errors.As(err, &se) || (se.StatusCode != http.StatusBadRequest && se.StatusCode != http.StatusUnauthorized && se.StatusCode != http.StatusForbidden) {
		return nil
	}
	g.whoMu.Lock()
	defer g.whoMu.Unlock()
	if !g.whoChecked {
		g.whoChecked = true
		var who struct {
			Username string `json:"username"`
			Bot      bool   `json:"bot"`
		}
		_, werr := g.api.Do(ctx, "look up the source token's user", httpapi.Request{Method: http.MethodGet, URL: g.src.APIURL + "/api/v4/user",
			Header: http.Header{"PRIVATE-TOKEN": {g.src.Token}}}, &who)
		if werr == nil && who.Bot && resourceBotRE.MatchString(who.Username) {
			g.resourceBot = who.Username
		}
	}
	if g.resourceBot == "" {
		return nil
	}
	return fmt.Errorf(errPrefix+`field "token" is a group or project access token (its user is the bot %s): %w; GitLab refused: %w`, g.resourceBot, ErrResourceToken, err)
}

// explain adds what to fix to GitLab's error answers. GitLab answers a token it does not know
// with 401, a token without the api scope with 403, a group or project the user cannot see with
// 404, and a user who may not manage access tokens with 401 (list, get) or 400 (create, revoke).
func (g *GitLab) explain(err error) error {
	var se *httpapi.StatusError
	if !errors.As(err, &se) {
		return err
	}
	kind := strings.TrimSuffix(g.src.Kind, "s")
	role := "an Owner of the group"
	if g.src.Kind == "projects" {
		role = "at least a Maintainer of the project"
	}
	switch se.StatusCode {
	case http.StatusUnauthorized:
		return fmt.Errorf(`%w: GitLab refused the source token: check field "token" (an Owner's token with the api scope); GitLab also answers 401 when the token's user is not %s or, on GitLab.com, the namespace lacks Premium/Ultimate`, err, role)
	case http.StatusForbidden:
		return fmt.Errorf(`%w: the source token needs the api scope; and its user must be %s, and %s access tokens need Premium/Ultimate on GitLab.com`, err, role, kind)
	case http.StatusNotFound:
		return fmt.Errorf(`%w: %s not found: check field %q (a numeric id or the full path), and that the source token's user is a member`, err, kind, g.src.field())
	case http.StatusBadRequest:
		m := strings.ToLower(se.Message)
		if strings.Contains(m, "access level") {
			return fmt.Errorf(`%w: lower field "accessLevel" to the source token user's own role or below`, err)
		}
		if strings.Contains(m, "permission") || strings.Contains(m, "cannot delete") {
			return fmt.Errorf("%w: the source token's user must be %s, and %s access tokens need Premium/Ultimate on GitLab.com", err, role, kind)
		}
		if strings.Contains(m, "expire") {
			return fmt.Errorf(`%w: lower field "tokenLifetimeDays" (this GitLab limits token lifetime)`, err)
		}
	}
	return err // GitLab's own message names the bad parameter
}

// tokenJSON is one access token as the API renders it.
type tokenJSON struct {
	ID        int64    `json:"id"`
	Name      string   `json:"name"`
	Token     string   `json:"token"`
	ExpiresAt string   `json:"expires_at"`
	UserID    int64    `json:"user_id"`
	Scopes    []string `json:"scopes"`
	Active    *bool    `json:"active"`
	Revoked   bool     `json:"revoked"`
}

// live reports whether the token may still log in (older GitLab omits "active").
func (t tokenJSON) live() bool { return !t.Revoked && (t.Active == nil || *t.Active) }

func (t tokenJSON) describe() upstream.Token {
	out := upstream.Token{ID: strconv.FormatInt(t.ID, 10), Label: t.Name}
	// GitLab expires a token at midnight UTC of its expires_at date.
	if d, err := time.Parse("2006-01-02", t.ExpiresAt); err == nil {
		out.ExpiresAt = d
	}
	return out
}

// Mint implements upstream.Upstream: POST .../access_tokens. Never .../rotate (see the
// package comment).
func (g *GitLab) Mint(ctx context.Context, req upstream.MintRequest) (upstream.Minted, error) {
	if req.Label == "" || len(req.Label) > maxNameLen {
		return upstream.Minted{}, fmt.Errorf("gitlab-container-registry: token name must be 1..%d characters, got %d", maxNameLen, len(req.Label))
	}
	now := g.opts.Clock()().UTC()
	y, m, d := now.Date()
	expires := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).AddDate(0, 0, g.src.TokenLifetimeDays)
	body := map[string]any{
		"name":         req.Label,
		"description":  "ECR pull-through cache credential for " + req.SecretName + ", managed by ptc-credentials",
		"scopes":       g.src.Scopes,
		"access_level": g.src.AccessLevel,
		"expires_at":   expires.Format("2006-01-02"),
	}
	var out tokenJSON
	if _, err := g.call(ctx, opCreate+g.kindName(), httpapi.Request{Method: http.MethodPost, URL: g.tokens, JSON: body}, &out); err != nil {
		return upstream.Minted{}, err
	}
	if out.Token == "" || out.ID == 0 {
		return upstream.Minted{}, errors.New("GitLab: create access token: the answer carried no token or id")
	}
	tok := out.describe()
	if tok.Label == "" {
		tok.Label = req.Label
	}
	if tok.ExpiresAt.IsZero() {
		tok.ExpiresAt = expires
	}
	return upstream.Minted{
		Credential: upstream.Credential{Username: tok.Label, AccessToken: out.Token},
		Token:      tok,
	}, nil
}

// Tokens implements upstream.Upstream: every active, unrevoked token whose name starts with
// labelPrefix, following X-Next-Page (or the Link header) across pages. GitLab 17.9+ keeps
// revoked and expired tokens listed for 30 days; they cannot log in, so they are skipped.
func (g *GitLab) Tokens(ctx context.Context, labelPrefix string) ([]upstream.Token, error) {
	var found []upstream.Token
	next := g.tokens + "?" + url.Values{
		// state and search narrow the list on GitLab 17.2+; older versions ignore them, and the
		// filter below is what counts.
		"state": {"active"}, "search": {labelPrefix}, "per_page": {strconv.Itoa(pageSize)}, "page": {"1"},
	}.Encode()
	for page := 1; next != "" && page <= maxPages; page++ {
		var out []tokenJSON
		resp, err := g.call(ctx, opList, httpapi.Request{Method: http.MethodGet, URL: next}, &out)
		if err != nil {
			return nil, err
		}
		for _, t := range out {
			if t.live() && strings.HasPrefix(t.Name, labelPrefix) {
				found = append(found, t.describe())
			}
		}
		if len(out) == 0 {
			break
		}
		next = g.nextPage(next, resp.Header, page)
	}
	return found, nil
}

// nextPage returns the URL of the page after page, or "" on the last one.
func (g *GitLab) nextPage(current string, h http.Header, page int) string {
	if _, ok := h["X-Next-Page"]; ok {
		// GitLab sends it empty on the last page.
		n := strings.TrimSpace(h.Get("X-Next-Page"))
		if p, err := strconv.Atoi(n); err == nil && p > page {
			u, err := url.Parse(current)
			if err != nil {
				return ""
			}
			q := u.Query()
			q.Set("page", n)
			u.RawQuery = q.Encode()
			return u.String()
		}
		return ""
	}
	// Keyset-paginated or proxied answers may carry only a Link header.
	for _, part := range strings.Split(h.Get("Link"), ",") {
		target, params, ok := strings.Cut(strings.TrimSpace(part), ";")
		if !ok || !strings.Contains(strings.ReplaceAll(params, " ", ""), `rel="next"`) {
			continue
		}
		link, err := url.Parse(strings.Trim(strings.TrimSpace(target), "<>"))
		base, berr := url.Parse(g.tokens)
		if err != nil || berr != nil {
			return ""
		}
		// Follow only links to the same API host: the PRIVATE-TOKEN goes with every request.
		abs := base.ResolveReference(link)
		if abs.Scheme != base.Scheme || abs.Host != base.Host {
			return ""
		}
		return abs.String()
	}
	return ""
}

// Revoke implements upstream.Upstream: DELETE .../access_tokens/:id. Gone already (404) is
// success; so is a 400 for a token that turns out to be revoked already (GitLab 17.9+ keeps
// revoked tokens, whose bot user has lost its membership, and refuses to revoke them again).
func (g *GitLab) Revoke(ctx context.Context, t upstream.Token) error {
	if !isNumeric(t.ID) {
		return fmt.Errorf("gitlab-container-registry: revoke: token id %q is not a GitLab token id", t.ID)
	}
	u := g.tokens + "/" + t.ID
	_, err := g.call(ctx, "revoke access token "+t.Label, httpapi.Request{Method: http.MethodDelete, URL: u}, nil)
	switch {
	case err == nil, httpapi.IsStatus(err, http.StatusNotFound):
		return nil
	case httpapi.IsStatus(err, http.StatusBadRequest):
		var cur tokenJSON
		_, gerr := g.call(ctx, "read access token "+t.Label, httpapi.Request{Method: http.MethodGet, URL: u}, &cur)
		if httpapi.IsStatus(gerr, http.StatusNotFound) || (gerr == nil && !cur.live()) {
			return nil
		}
	}
	return err
}

// Verify implements upstream.Upstream: the registry's token handshake with the credential (the
// realm comes from the registry's /v2/ challenge; https://gitlab.com/jwt/auth for GitLab.com).
// GitLab answers a valid credential without pull rights with 200 and a token whose "access"
// claim is empty, so the claim is read too: a token that logs in but may not pull
// CheckRepository fails here, not later in ECR.
func (g *GitLab) Verify(ctx context.Context, cred upstream.Credential) (upstream.Verification, error) {
	repo := g.src.CheckRepository
	if repo == "" {
		repo = loginOnlyRepository
	}
	rec := &accessRecorder{}
	client := *g.opts.Client(RegistryHosts.Union(RealmHosts))
	rec.inner = client.Transport
	client.Transport = rec
	err := registryauth.Check(ctx, &client, registryauth.Target{Registry: g.registry, Repository: repo},
		registryauth.Credential{Username: cred.Username, Password: cred.AccessToken})
	if err != nil {
		return upstream.Verification{}, err
	}
	if g.src.CheckRepository == "" {
		g.opts.Log().Info("GitLab registry accepted the login; set checkRepository in the source secret to prove pull rights too")
		return upstream.Verification{}, nil
	}
	access, known := rec.result()
	if !known {
		g.opts.Log().Info("GitLab registry accepted the login; its token does not say which access it grants", "repository", repo)
		return upstream.Verification{}, nil
	}
	if !grantsPull(access, repo) {
		return upstream.Verification{}, fmt.Errorf("login check at %s: %w: the registry accepted the login but granted no pull on %q: raise field \"accessLevel\" (Reporter, 20, is the least that pulls from a private project), keep \"read_registry\" in \"scopes\", and make \"checkRepository\" a project under the %s",
			g.registry, registryauth.ErrBadCredentials, repo, strings.TrimSuffix(g.src.Kind, "s"))
	}
	return upstream.Verification{}, nil
}
