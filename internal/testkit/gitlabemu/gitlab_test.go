package gitlabemu_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/gitlabemu"
)

const (
	ownerToken  = "glpat-PLANTED-owner-0001"
	devToken    = "glpat-PLANTED-developer-02"
	readToken   = "glpat-PLANTED-read-api-003"
	poorToken   = "glpat-PLANTED-free-owner-4"
	maintToken  = "glpat-PLANTED-maintainer-5"
	privateRepo = "acme/platform/app"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	t   *testing.T
	emu *gitlabemu.Server
	url string
	clk *clock
}

func newEnv(t *testing.T, opts gitlabemu.Options) *env {
	t.Helper()
	clk := &clock{t: time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)}
	opts.Now = clk.Now
	emu := gitlabemu.New(opts)
	emu.AddUser(gitlabemu.User{Username: "olivia", Token: ownerToken})
	emu.AddUser(gitlabemu.User{Username: "dev", Token: devToken})
	emu.AddUser(gitlabemu.User{Username: "reader", Token: readToken, Scopes: []string{"read_api"}})
	emu.AddUser(gitlabemu.User{Username: "freeowner", Token: poorToken})
	emu.AddUser(gitlabemu.User{Username: "mona", Token: maintToken})
	emu.AddGroup(gitlabemu.Group{ID: 11, Path: "acme", Premium: true, Members: map[string]int{"olivia": gitlabemu.Owner, "dev": gitlabemu.Developer, "reader": gitlabemu.Owner}})
	emu.AddGroup(gitlabemu.Group{ID: 12, Path: "acme/platform"})
	emu.AddGroup(gitlabemu.Group{ID: 21, Path: "freebies", Members: map[string]int{"freeowner": gitlabemu.Owner}})
	emu.AddProject(gitlabemu.Project{ID: 31, Path: privateRepo, Members: map[string]int{"mona": gitlabemu.Maintainer}})
	emu.AddProject(gitlabemu.Project{ID: 32, Path: "other/secret"})
	emu.AddProject(gitlabemu.Project{ID: 33, Path: "acme/public-tools", Public: true})
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	return &env{t: t, emu: emu, url: srv.URL, clk: clk}
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) obj() map[string]any {
	var m map[string]any
	_ = json.Unmarshal(a.body, &m)
	return m
}

func (a answer) list() []map[string]any {
	var l []map[string]any
	_ = json.Unmarshal(a.body, &l)
	return l
}

func (e *env) api(method, path, token string, body any) answer {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.url+path, rd)
	if token != "" {
		req.Header.Set("PRIVATE-TOKEN", token)
	}
	req.Header.Set("Content-Type", "application/json")
	return e.send(req)
}

func (e *env) send(req *http.Request) answer {
	e.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, b}
}

func (e *env) create(kind, id, token string, body map[string]any) answer {
	e.t.Helper()
	if body == nil {
		body = map[string]any{}
	}
	if _, ok := body["name"]; !ok {
		body["name"] = "ptc-test"
	}
	if _, ok := body["scopes"]; !ok {
		body["scopes"] = []string{"read_registry"}
	}
	if _, ok := body["access_level"]; !ok {
		body["access_level"] = 20
	}
	return e.api("POST", "/api/v4/"+kind+"/"+id+"/access_tokens", token, body)
}

func (e *env) mustCreate(kind, id string, body map[string]any) map[string]any {
	e.t.Helper()
	a := e.create(kind, id, ownerToken, body)
	if a.status != http.StatusCreated {
		e.t.Fatalf("create: HTTP %d %s", a.status, a.body)
	}
	return a.obj()
}

// login runs the registry handshake by hand: challenge, realm, then tags/list of repo.
func (e *env) login(user, pass, repo string) (realmStatus int, access []gitlabemu.Access, pullStatus int) {
	e.t.Helper()
	ping := e.send(mustReq("GET", e.url+"/v2/"))
	if ping.status != 401 {
		e.t.Fatalf("/v2/ without a token: HTTP %d", ping.status)
	}
	realm, service := parseChallenge(e.t, ping.header.Get("WWW-Authenticate"))
	req := mustReq("GET", realm+"?service="+url.QueryEscape(service)+"&scope="+url.QueryEscape("repository:"+repo+":pull"))
	req.SetBasicAuth(user, pass)
	tok := e.send(req)
	if tok.status != 200 {
		return tok.status, nil, 0
	}
	bearer, _ := tok.obj()["token"].(string)
	parts := strings.Split(bearer, ".")
	if len(parts) != 3 {
		e.t.Fatalf("registry token is not a JWT")
	}
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims struct{ Access []gitlabemu.Access }
	_ = json.Unmarshal(payload, &claims)
	pull := mustReq("GET", e.url+"/v2/"+repo+"/tags/list")
	pull.Header.Set("Authorization", "Bearer "+bearer)
	return 200, claims.Access, e.send(pull).status
}

func mustReq(method, u string) *http.Request {
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		panic(err)
	}
	return req
}

func parseChallenge(t *testing.T, h string) (realm, service string) {
	t.Helper()
	if !strings.HasPrefix(h, "Bearer ") {
		t.Fatalf("challenge %q is not Bearer", h)
	}
	for _, kv := range strings.Split(strings.TrimPrefix(h, "Bearer "), ",") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "realm":
			realm = strings.Trim(v, `"`)
		case "service":
			service = strings.Trim(v, `"`)
		}
	}
	return realm, service
}

func TestGroupTokenLifecycle(t *testing.T) {
	e := newEnv(t, gitlabemu.Options{})
	created := e.mustCreate("groups", "11", map[string]any{"name": "ptc-abc-v1", "expires_at": "2025-06-08", "description": "d"})
	for k, want := range map[string]any{"name": "ptc-abc-v1", "expires_at": "2025-06-08", "access_level": 20.0, "active": true, "revoked": false} {
		if created[k] != want {
			t.Errorf("created %s = %v, want %v", k, created[k], want)
		}
	}
	secret, _ := created["token"].(string)
	if !strings.HasPrefix(secret, "glpat-") || created["user_id"] == nil || created["id"] == nil {
		t.Fatalf("created token lacks token/id/user_id: %v", created)
	}
	id := jsonID(created)

	got := e.api("GET", "/api/v4/groups/11/access_tokens", ownerToken, nil)
	if got.status != 200 || len(got.list()) != 1 || got.list()[0]["token"] != nil {
		t.Fatalf("list: HTTP %d %s (the secret must not be listed)", got.status, got.body)
	}
	if a := e.api("GET", "/api/v4/groups/11/access_tokens/"+id, ownerToken, nil); a.status != 200 || a.obj()["name"] != "ptc-abc-v1" {
		t.Fatalf("get: HTTP %d %s", a.status, a.body)
	}
	if st, acc, pull := e.login("anything", secret, privateRepo); st != 200 || len(acc) != 1 || pull != 200 {
		t.Fatalf("new token: realm %d access %v pull %d", st, acc, pull)
	}

	if a := e.api("DELETE", "/api/v4/groups/11/access_tokens/"+id, ownerToken, nil); a.status != 204 {
		t.Fatalf("revoke: HTTP %d %s", a.status, a.body)
	}
	if st, _, _ := e.login("anything", secret, privateRepo); st != 401 {
		t.Fatalf("revoked token logs in: realm answered %d", st)
	}
	if l := e.api("GET", "/api/v4/groups/11/access_tokens?state=active", ownerToken, nil).list(); len(l) != 0 {
		t.Fatalf("revoked token listed as active: %v", l)
	}
	l := e.api("GET", "/api/v4/groups/11/access_tokens", ownerToken, nil).list()
	if len(l) != 1 || l[0]["revoked"] != true || l[0]["active"] != false {
		t.Fatalf("revoked token should stay listed as inactive for 30 days: %v", l)
	}
	if a := e.api("DELETE", "/api/v4/groups/11/access_tokens/"+id, ownerToken, nil); a.status != 400 {
		t.Fatalf("revoking twice: HTTP %d, want 400", a.status)
	}
	e.clk.Add(31 * 24 * time.Hour)
	if l := e.api("GET", "/api/v4/groups/11/access_tokens", ownerToken, nil).list(); len(l) != 0 {
		t.Fatalf("revoked token still listed after 30 days: %v", l)
	}
	if a := e.api("DELETE", "/api/v4/groups/11/access_tokens/"+id, ownerToken, nil); a.status != 404 {
		t.Fatalf("revoking a forgotten token: HTTP %d, want 404", a.status)
	}
}

func jsonID(m map[string]any) string {
	f, _ := m["id"].(float64)
	return strconv.Itoa(int(f))
}

func TestAuthenticationAndPermissions(t *testing.T) {
	e := newEnv(t, gitlabemu.Options{})
	for _, tc := range []struct {
		name, method, path, token string
		status                    int
		want                      string
	}{
		{"no token", "GET", "/api/v4/groups/11/access_tokens", "", 401, "401 Unauthorized"},
		{"unknown token", "GET", "/api/v4/groups/11/access_tokens", "glpat-nope", 401, "401 Unauthorized"},
		{"read_api cannot create", "POST", "/api/v4/groups/11/access_tokens", readToken, 403, "insufficient_scope"},
		{"read_api may list", "GET", "/api/v4/groups/11/access_tokens", readToken, 200, "["},
		{"developer cannot list", "GET", "/api/v4/groups/11/access_tokens", devToken, 401, "401 Unauthorized"},
		{"developer cannot create", "POST", "/api/v4/groups/11/access_tokens", devToken, 400, "User does not have permission to create group access token"},
		{"owner of a free group (GitLab.com)", "POST", "/api/v4/groups/21/access_tokens", poorToken, 400, "does not have permission"},
		{"free group list", "GET", "/api/v4/groups/21/access_tokens", poorToken, 401, "401 Unauthorized"},
		{"unknown group", "GET", "/api/v4/groups/999/access_tokens", ownerToken, 404, "404 Group Not Found"},
		{"group the user cannot see", "GET", "/api/v4/groups/21/access_tokens", ownerToken, 404, "404 Group Not Found"},
		{"project the user cannot see", "GET", "/api/v4/projects/32/access_tokens", ownerToken, 404, "404 Project Not Found"},
		{"subgroup inherits ownership", "GET", "/api/v4/groups/acme%2Fplatform/access_tokens", ownerToken, 200, "["},
		{"maintainer manages project tokens", "POST", "/api/v4/projects/31/access_tokens", maintToken, 201, "glpat-"},
		{"maintainer cannot manage group tokens", "POST", "/api/v4/groups/11/access_tokens", maintToken, 404, "Not Found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body any
			if tc.method == "POST" {
				body = map[string]any{"name": "x", "scopes": []string{"read_registry"}, "access_level": 20}
			}
			a := e.api(tc.method, tc.path, tc.token, body)
			if a.status != tc.status || !strings.Contains(string(a.body), tc.want) {
				t.Fatalf("HTTP %d %s, want %d with %q", a.status, a.body, tc.status, tc.want)
			}
		})
	}
}

func TestCreateValidation(t *testing.T) {
	e := newEnv(t, gitlabemu.Options{})
	for _, tc := range []struct {
		name   string
		body   map[string]any
		status int
		want   string
	}{
		{"bad scope", map[string]any{"scopes": []string{"read_everything"}}, 400, "scopes does not have a valid value"},
		{"no scopes", map[string]any{"scopes": []string{}}, 400, "scopes is missing"},
		{"bad access level", map[string]any{"access_level": 25}, 400, "access_level does not have a valid value"},
		{"planner is valid", map[string]any{"access_level": 15}, 201, "glpat-"},
		{"beyond 365 days", map[string]any{"expires_at": "2026-03-11"}, 400, "must expire in 365 days"},
		{"exactly 365 days", map[string]any{"expires_at": "2026-03-10"}, 201, `"expires_at":"2026-03-10"`},
		{"in the past", map[string]any{"expires_at": "2025-03-10"}, 400, "cannot be in the past"},
		{"not a date", map[string]any{"expires_at": "next week"}, 400, "expires_at is invalid"},
		{"default expiry is the maximum", map[string]any{}, 201, `"expires_at":"2026-03-10"`},
		{"default access level is Maintainer", map[string]any{"access_level": nil}, 201, `"access_level":40`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if v, ok := tc.body["access_level"]; ok && v == nil {
				tc.body = map[string]any{"name": "x", "scopes": []string{"read_registry"}}
				a := e.api("POST", "/api/v4/groups/11/access_tokens", ownerToken, tc.body)
				if a.status != tc.status || !strings.Contains(string(a.body), tc.want) {
					t.Fatalf("HTTP %d %s", a.status, a.body)
				}
				return
			}
			a := e.create("groups", "11", ownerToken, tc.body)
			if a.status != tc.status || !strings.Contains(string(a.body), tc.want) {
				t.Fatalf("HTTP %d %s, want %d with %q", a.status, a.body, tc.status, tc.want)
			}
		})
	}
	// A maintainer may not mint above its own role.
	if a := e.create("projects", "31", maintToken, map[string]any{"access_level": 50}); a.status != 400 || !strings.Contains(string(a.body), "permissions not held by the creating user") {
		t.Fatalf("owner-level token from a maintainer: HTTP %d %s", a.status, a.body)
	}
}

func TestTokenDiesAtMidnightUTCOfItsExpiryDate(t *testing.T) {
	e := newEnv(t, gitlabemu.Options{})
	secret := e.mustCreate("groups", "11", map[string]any{"expires_at": "2025-03-12"})["token"].(string)
	e.clk.Add(35*time.Hour + 59*time.Minute) // 2025-03-11T23:59
	if st, _, _ := e.login("x", secret, privateRepo); st != 200 {
		t.Fatalf("token refused a minute before its expiry date: %d", st)
	}
	e.clk.Add(time.Minute)
	if st, _, _ := e.login("x", secret, privateRepo); st != 401 {
		t.Fatalf("token accepted at midnight of its expiry date: %d", st)
	}
	if l := e.api("GET", "/api/v4/groups/11/access_tokens", ownerToken, nil).list(); len(l) != 1 || l[0]["active"] != false || l[0]["revoked"] != false {
		t.Fatalf("expired token should be listed inactive, not revoked: %v", l)
	}
}

func TestListPaginatesAndFilters(t *testing.T) {
	e := newEnv(t, gitlabemu.Options{MaxPerPage: 2})
	for _, n := range []string{"ptc-a-1", "ptc-a-2", "other", "ptc-a-3", "ptc-a-4"} {
		e.mustCreate("groups", "acme", map[string]any{"name": n})
	}
	a := e.api("GET", "/api/v4/groups/acme/access_tokens?per_page=100", ownerToken, nil)
	if a.status != 200 || len(a.list()) != 2 {
		t.Fatalf("per_page is not capped: HTTP %d, %d items", a.status, len(a.list()))
	}
	for k, want := range map[string]string{"X-Total": "5", "X-Total-Pages": "3", "X-Page": "1", "X-Per-Page": "2", "X-Next-Page": "2", "X-Prev-Page": ""} {
		if got := a.header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if l := a.header.Get("Link"); !strings.Contains(l, `page=2`) || !strings.Contains(l, `rel="next"`) || !strings.Contains(l, `rel="last"`) {
		t.Errorf("Link = %q", l)
	}
	last := e.api("GET", "/api/v4/groups/acme/access_tokens?page=3&per_page=2", ownerToken, nil)
	if len(last.list()) != 1 || last.header.Get("X-Next-Page") != "" || strings.Contains(last.header.Get("Link"), `rel="next"`) {
		t.Fatalf("last page: %d items, X-Next-Page %q, Link %q", len(last.list()), last.header.Get("X-Next-Page"), last.header.Get("Link"))
	}
	search := e.api("GET", "/api/v4/groups/acme/access_tokens?search=ptc-a-&per_page=2&page=2", ownerToken, nil)
	if search.header.Get("X-Total") != "4" {
		t.Fatalf("search: X-Total %q, want 4", search.header.Get("X-Total"))
	}
}

func TestPathIDsAreURLEncoded(t *testing.T) {
	e := newEnv(t, gitlabemu.Options{})
	a := e.create("projects", "acme%2Fplatform%2Fapp", ownerToken, nil)
	if a.status != 201 {
		t.Fatalf("create by encoded path: HTTP %d %s", a.status, a.body)
	}
	if l := e.api("GET", "/api/v4/projects/31/access_tokens", ownerToken, nil).list(); len(l) != 1 {
		t.Fatalf("the token made by path is not the project's: %v", l)
	}
	calls := e.emu.Calls()
	if calls[0].Path != "/api/v4/projects/acme%2Fplatform%2Fapp/access_tokens" || calls[0].Auth != "PRIVATE-TOKEN" {
		t.Fatalf("recorded call %+v", calls[0])
	}
}

func TestRegistryGrantsPullByRoleAndScope(t *testing.T) {
	e := newEnv(t, gitlabemu.Options{})
	tok := func(kind, id string, level int, scopes ...string) string {
		if len(scopes) == 0 {
			scopes = []string{"read_registry"}
		}
		return e.mustCreate(kind, id, map[string]any{"access_level": level, "scopes": scopes})["token"].(string)
	}
	reporter := tok("groups", "11", gitlabemu.Reporter)
	guest := tok("groups", "11", gitlabemu.Guest)
	projectTok := tok("projects", "31", gitlabemu.Reporter)
	apiOnly := tok("groups", "11", gitlabemu.Reporter, "read_api")
	for _, tc := range []struct {
		name, user, pass, repo string
		realm, pull            int
	}{
		{"group token, project in group", "any-name", reporter, privateRepo, 200, 200},
		{"group token, image below a project", "x", reporter, privateRepo + "/sub/image", 200, 200},
		{"group token, project outside the group", "x", reporter, "other/secret", 200, 401},
		{"guest on a private project: login ok, no pull", "x", guest, privateRepo, 200, 401},
		{"guest on a public project", "x", guest, "acme/public-tools", 200, 200},
		{"project token, its project", "x", projectTok, privateRepo, 200, 200},
		{"project token, sibling project", "x", projectTok, "acme/public-tools", 200, 200},
		{"token without a registry scope", "x", apiOnly, privateRepo, 403, 0},
		{"wrong password", "x", "glpat-wrong", privateRepo, 401, 0},
		{"blank username", "", reporter, privateRepo, 401, 0},
		{"owner's own token", "olivia", ownerToken, privateRepo, 200, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			realm, _, pull := e.login(tc.user, tc.pass, tc.repo)
			if realm != tc.realm || pull != tc.pull {
				t.Fatalf("realm %d pull %d, want %d %d", realm, pull, tc.realm, tc.pull)
			}
		})
	}
	ping := e.send(mustReq("GET", e.url+"/v2/"))
	realm, service := parseChallenge(t, ping.header.Get("WWW-Authenticate"))
	if realm != e.url+"/jwt/auth" || service != "container_registry" {
		t.Fatalf("challenge realm %q service %q: the realm must be on the registry's host:port", realm, service)
	}
	if a := e.send(mustReq("GET", e.url+"/jwt/auth?service=other&scope=repository:acme/x:pull")); a.status != 404 {
		t.Fatalf("unknown service: HTTP %d", a.status)
	}
}

func TestRotateRevokesTheOldTokenAtOnce(t *testing.T) {
	e := newEnv(t, gitlabemu.Options{})
	old := e.mustCreate("groups", "11", map[string]any{"name": "ptc-rot"})
	oldSecret := old["token"].(string)
	a := e.api("POST", "/api/v4/groups/11/access_tokens/"+jsonID(old)+"/rotate", ownerToken, map[string]any{})
	if a.status != 200 {
		t.Fatalf("rotate: HTTP %d %s", a.status, a.body)
	}
	rotated := a.obj()
	if rotated["name"] != "ptc-rot" || rotated["user_id"] != old["user_id"] || rotated["expires_at"] != "2025-03-17" {
		t.Fatalf("rotated token: %v (same name and bot, one week by default)", rotated)
	}
	if st, _, _ := e.login("x", oldSecret, privateRepo); st != 401 {
		t.Fatalf("the old token still logs in after rotate (realm %d): no overlap is what GitLab documents", st)
	}
	if st, _, pull := e.login("x", rotated["token"].(string), privateRepo); st != 200 || pull != 200 {
		t.Fatal("the rotated token does not log in")
	}
	if a := e.api("POST", "/api/v4/groups/11/access_tokens/"+jsonID(old)+"/rotate", ownerToken, nil); a.status != 400 {
		t.Fatalf("rotating a revoked token: HTTP %d", a.status)
	}
	if a := e.api("POST", "/api/v4/groups/11/access_tokens/"+jsonID(rotated)+"/rotate", devToken, nil); a.status != 401 {
		t.Fatalf("rotate without rights: HTTP %d", a.status)
	}
}

func TestInjectedFaultsAndRecordedCalls(t *testing.T) {
	e := newEnv(t, gitlabemu.Options{})
	e.emu.Inject("POST", "/api/v4/groups/", 429, 1)
	a := e.create("groups", "11", ownerToken, nil)
	if a.status != 429 || a.header.Get("Retry-After") == "" {
		t.Fatalf("injected 429: HTTP %d Retry-After %q", a.status, a.header.Get("Retry-After"))
	}
	if a := e.create("groups", "11", ownerToken, nil); a.status != 201 {
		t.Fatalf("the fault outlived its count: HTTP %d", a.status)
	}
	e.emu.Inject("", "/jwt/auth", 503, 5)
	e.emu.ClearFaults()
	if st, _, _ := e.login("x", e.emu.Tokens()[0].Secret, privateRepo); st != 200 {
		t.Fatal("cleared faults still fire")
	}
	calls := e.emu.Calls()
	if len(calls) < 4 || calls[0].Status != 429 || calls[1].Status != 201 {
		t.Fatalf("calls %+v", calls)
	}
	dump, _ := json.Marshal(calls)
	for _, tk := range append([]string{ownerToken}, e.emu.Tokens()[0].Secret) {
		if strings.Contains(string(dump), tk) {
			t.Fatal("a recorded call carries a secret")
		}
	}
	e.emu.ResetCalls()
	if len(e.emu.Calls()) != 0 {
		t.Fatal("ResetCalls kept calls")
	}
}

// TestCurrentUserTellsTokenKinds: GET /api/v4/user answers who a token belongs to, the signal
// the product uses to refuse a group or project access token as the minting credential: a
// person is "bot": false; a group or project token is its bot user, "bot": true under a
// generated group_<id>_bot_… / project_<id>_bot_… name, and cannot create tokens; a service
// account is "bot": true under its own name and can.
func TestCurrentUserTellsTokenKinds(t *testing.T) {
	e := newEnv(t, gitlabemu.Options{})
	const svcToken = "glpat-PLANTED-service-acct-6"
	e.emu.AddUser(gitlabemu.User{Username: "service_account_group_11_0f3a", Token: svcToken, ServiceAccount: true})
	e.emu.SetMember("acme", "service_account_group_11_0f3a", gitlabemu.Owner)
	groupTok := e.mustCreate("groups", "11", map[string]any{"name": "gat", "scopes": []string{"api"}, "access_level": gitlabemu.Owner})
	projTok := e.mustCreate("projects", "31", map[string]any{"name": "pat", "scopes": []string{"api"}, "access_level": gitlabemu.Maintainer})
	readOnly := e.mustCreate("groups", "11", map[string]any{"name": "ro", "scopes": []string{"read_registry"}})

	for _, tc := range []struct {
		name, token string
		status      int
		bot         bool
		username    string // prefix
	}{
		{"person", ownerToken, 200, false, "olivia"},
		{"read_api person", readToken, 200, false, "reader"},
		{"service account", svcToken, 200, true, "service_account_group_11_"},
		{"group access token", groupTok["token"].(string), 200, true, "group_11_bot_"},
		{"project access token", projTok["token"].(string), 200, true, "project_31_bot_"},
		{"token without a user scope", readOnly["token"].(string), 403, false, ""},
		{"unknown token", "glpat-nope", 401, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := e.api("GET", "/api/v4/user", tc.token, nil)
			if a.status != tc.status {
				t.Fatalf("HTTP %d %s, want %d", a.status, a.body, tc.status)
			}
			if tc.status != 200 {
				return
			}
			u := a.obj()
			name, _ := u["username"].(string)
			if u["bot"] != tc.bot || !strings.HasPrefix(name, tc.username) || u["id"] == nil {
				t.Fatalf("user %v, want bot=%v username %s…", u, tc.bot, tc.username)
			}
		})
	}
	// What the signal stands for: the group token cannot create tokens, the service account can.
	body := map[string]any{"name": "x", "scopes": []string{"read_registry"}, "access_level": 20}
	if a := e.api("POST", "/api/v4/groups/11/access_tokens", groupTok["token"].(string), body); a.status != 400 {
		t.Fatalf("group token created a token: HTTP %d %s", a.status, a.body)
	}
	if a := e.api("POST", "/api/v4/groups/11/access_tokens", svcToken, body); a.status != 201 {
		t.Fatalf("service account could not create a token: HTTP %d %s", a.status, a.body)
	}
	if a := e.api("POST", "/api/v4/user", ownerToken, nil); a.status != 405 {
		t.Fatalf("POST /user: HTTP %d", a.status)
	}
}
