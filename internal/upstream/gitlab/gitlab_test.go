package gitlab_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/pinned"
	"github.com/ptc-credentials/ptc-credentials/internal/registryauth"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/gitlabemu"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/gitlab"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/httpapi"
)

// Planted values: distinctive, so a leak is unmistakable.
const (
	ownerToken = "glpat-PLANTED-owner-7c1e9a"
	devToken   = "glpat-PLANTED-developer-5d2b"
	readToken  = "glpat-PLANTED-readapi-93fe"
	freeToken  = "glpat-PLANTED-freeowner-1a7"
	maintToken = "glpat-PLANTED-maintainer-44"
	appRepo    = "acme/platform/app"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// world is one emulated GitLab: a Premium group acme (owner olivia) with a private project,
// a free group, and users with too little of something each.
type world struct {
	emu *gitlabemu.Server
	url string
	clk *fakeClock
}

func newWorld(t *testing.T, opts gitlabemu.Options) *world {
	t.Helper()
	clk := &fakeClock{t: time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)}
	if opts.Now == nil {
		opts.Now = clk.Now
	}
	emu := gitlabemu.New(opts)
	emu.AddUser(gitlabemu.User{Username: "olivia", Token: ownerToken})
	emu.AddUser(gitlabemu.User{Username: "dev", Token: devToken})
	emu.AddUser(gitlabemu.User{Username: "reader", Token: readToken, Scopes: []string{"read_api"}})
	emu.AddUser(gitlabemu.User{Username: "freeowner", Token: freeToken})
	emu.AddUser(gitlabemu.User{Username: "mona", Token: maintToken})
	emu.AddGroup(gitlabemu.Group{ID: 11, Path: "acme", Premium: true, Members: map[string]int{"olivia": gitlabemu.Owner, "dev": gitlabemu.Developer, "reader": gitlabemu.Owner}})
	emu.AddGroup(gitlabemu.Group{ID: 12, Path: "acme/platform"})
	emu.AddGroup(gitlabemu.Group{ID: 21, Path: "freebies", Members: map[string]int{"freeowner": gitlabemu.Owner}})
	emu.AddProject(gitlabemu.Project{ID: 31, Path: appRepo, Members: map[string]int{"mona": gitlabemu.Maintainer}})
	emu.AddProject(gitlabemu.Project{ID: 32, Path: "other/secret"})
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	return &world{emu: emu, url: srv.URL, clk: clk}
}

func (w *world) sourceJSON(fields map[string]any) []byte {
	src := map[string]any{"token": ownerToken, "groupId": 11, "apiUrl": w.url, "checkRepository": appRepo}
	for k, v := range fields {
		if v == nil {
			delete(src, k)
		} else {
			src[k] = v
		}
	}
	b, _ := json.Marshal(src)
	return b
}

func (w *world) upstream(t *testing.T, fields map[string]any) *gitlab.GitLab {
	t.Helper()
	g, err := gitlab.New(w.sourceJSON(fields), upstream.Options{
		RegistryURL: w.url, Now: w.clk.Now, Standins: pinned.NewStandins(w.url),
		Sleep: func(context.Context, time.Duration) error { return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func (w *world) token(id string) gitlabemu.Token {
	for _, t := range w.emu.Tokens() {
		if fmt.Sprint(t.ID) == id {
			return t
		}
	}
	return gitlabemu.Token{}
}

func mint(t *testing.T, g *gitlab.GitLab, label string) upstream.Minted {
	t.Helper()
	m, err := g.Mint(context.Background(), upstream.MintRequest{SecretName: "ecr-pullthroughcache/x", VersionID: "v", Label: label})
	if err != nil {
		t.Fatalf("mint %s: %v", label, err)
	}
	return m
}

func noLeak(t *testing.T, text string, secrets ...string) {
	t.Helper()
	for _, s := range append(secrets, ownerToken, devToken, readToken, freeToken, maintToken) {
		if strings.Contains(text, s) {
			t.Fatalf("a secret (starts %q) appears in %q", s[:8], text)
		}
	}
}

func TestParseSource(t *testing.T) {
	const planted = "glpat-PLANTED-parse-0x55"
	for _, tc := range []struct {
		name string
		json string
		want string // error substring; "" means valid
		chk  func(t *testing.T, s gitlab.Source)
	}{
		{name: "group by number, defaults", json: `{"token":"` + planted + `","groupId":1234}`, chk: func(t *testing.T, s gitlab.Source) {
			if s.Kind != "groups" || s.ID != "1234" || s.AccessLevel != 20 || s.TokenLifetimeDays != 90 || s.APIURL != "https://gitlab.com" ||
				fmt.Sprint(s.Scopes) != "[read_registry]" || s.CheckRepository != "" {
				t.Fatalf("%+v", s)
			}
		}},
		{name: "group by path", json: `{"token":"` + planted + `","groupId":"acme/platform"}`, chk: func(t *testing.T, s gitlab.Source) {
			if s.ID != "acme/platform" || s.CheckRepository != "" {
				t.Fatalf("%+v", s)
			}
		}},
		{name: "numeric string is an id", json: `{"token":"t","projectId":"42"}`, chk: func(t *testing.T, s gitlab.Source) {
			if s.Kind != "projects" || s.ID != "42" || s.CheckRepository != "" {
				t.Fatalf("%+v", s)
			}
		}},
		{name: "project path is the default check repository", json: `{"token":"t","projectId":"Acme/Platform/App"}`, chk: func(t *testing.T, s gitlab.Source) {
			if s.CheckRepository != "acme/platform/app" {
				t.Fatalf("checkRepository %q", s.CheckRepository)
			}
		}},
		{name: "everything set", json: `{"token":"t","groupId":"acme","scopes":["read_registry","read_repository"],"accessLevel":30,"tokenLifetimeDays":365,"apiUrl":"https://gitlab.example.com/","checkRepository":"acme/app/img"}`,
			chk: func(t *testing.T, s gitlab.Source) {
				if s.AccessLevel != 30 || s.TokenLifetimeDays != 365 || s.APIURL != "https://gitlab.example.com" || len(s.Scopes) != 2 || s.CheckRepository != "acme/app/img" {
					t.Fatalf("%+v", s)
				}
			}},
		{name: "loopback http", json: `{"token":"t","groupId":1,"apiUrl":"http://127.0.0.1:8080"}`},
		{name: "not JSON", json: `{"token":"` + planted, want: "not valid JSON"},
		{name: "array", json: `[1]`, want: "not a JSON object"},
		{name: "unknown field", json: `{"token":"t","groupId":1,"group":"x"}`, want: `unknown field "group"`},
		{name: "no token", json: `{"groupId":1}`, want: `field "token" is required`},
		{name: "token with spaces", json: `{"token":" ` + planted + ` ","groupId":1}`, want: `field "token"`},
		{name: "token not a string", json: `{"token":5,"groupId":1}`, want: `field "token" must be a string`},
		{name: "neither id", json: `{"token":"t"}`, want: `"groupId" or "projectId" is required`},
		{name: "null ids count as missing", json: `{"token":"t","groupId":null,"projectId":null}`, want: `is required`},
		{name: "both ids", json: `{"token":"t","groupId":1,"projectId":2}`, want: `either "groupId" or "projectId", not both`},
		{name: "zero id", json: `{"token":"t","groupId":0}`, want: `field "groupId" must be a positive whole number`},
		{name: "negative id", json: `{"token":"t","projectId":-3}`, want: `field "projectId" must be a positive whole number`},
		{name: "fractional id", json: `{"token":"t","groupId":1.5}`, want: `field "groupId" must be a positive`},
		{name: "bool id", json: `{"token":"t","groupId":true}`, want: `field "groupId" must be a number or a string`},
		{name: "path with spaces", json: `{"token":"t","groupId":"acme platform"}`, want: `field "groupId" is not a GitLab path`},
		{name: "path with dot-dot", json: `{"token":"t","groupId":"acme/../x"}`, want: `field "groupId" is not a GitLab path`},
		{name: "empty path", json: `{"token":"t","groupId":""}`, want: `field "groupId" is not a GitLab path`},
		{name: "unknown scope", json: `{"token":"t","groupId":1,"scopes":["read_registry","sudo"]}`, want: `field "scopes" item 2 is not a GitLab access token scope`},
		{name: "empty scopes", json: `{"token":"t","groupId":1,"scopes":[]}`, want: `field "scopes" is empty`},
		{name: "duplicate scope", json: `{"token":"t","groupId":1,"scopes":["read_registry","read_registry"]}`, want: `lists "read_registry" twice`},
		{name: "scopes that cannot pull", json: `{"token":"t","groupId":1,"scopes":["read_repository"]}`, want: `must include "read_registry"`},
		{name: "api may pull", json: `{"token":"t","groupId":1,"scopes":["api"]}`},
		{name: "bad access level", json: `{"token":"t","groupId":1,"accessLevel":25}`, want: `field "accessLevel" is 25; use 10 (Guest), 15 (Planner), 20 (Reporter)`},
		{name: "guest is allowed", json: `{"token":"t","groupId":1,"accessLevel":10}`},
		{name: "lifetime beyond a year", json: `{"token":"t","groupId":1,"tokenLifetimeDays":366}`, want: `field "tokenLifetimeDays" is 366; use 1..365`},
		{name: "negative lifetime", json: `{"token":"t","groupId":1,"tokenLifetimeDays":-1}`, want: `field "tokenLifetimeDays"`},
		{name: "plain http elsewhere", json: `{"token":"t","groupId":1,"apiUrl":"http://gitlab.example.com"}`, want: `field "apiUrl": plain http is accepted only for loopback`},
		{name: "credentials in apiUrl", json: `{"token":"t","groupId":1,"apiUrl":"https://u:` + planted + `@gitlab.example.com"}`, want: `field "apiUrl": credentials in the URL`},
		{name: "check repository outside the group", json: `{"token":"t","groupId":"acme","checkRepository":"other/app"}`, want: `field "checkRepository" must be a project path under "acme"`},
		{name: "check repository not lowercase", json: `{"token":"t","groupId":"acme","checkRepository":"acme/App"}`, want: `field "checkRepository" is not a repository path`},
		{name: "check repository under a numeric group cannot be checked", json: `{"token":"t","groupId":7,"checkRepository":"anything/app"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := gitlab.ParseSource([]byte(tc.json))
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if tc.chk != nil {
					tc.chk(t, s)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			noLeak(t, err.Error(), planted)
		})
	}
}

func TestProvider(t *testing.T) {
	if gitlab.Provider.Registry != "gitlab-container-registry" || gitlab.Provider.FixedUsername || gitlab.Provider.DefaultRegistryURL != "registry.gitlab.com" {
		t.Fatalf("%+v", gitlab.Provider)
	}
	if _, err := gitlab.Provider.New([]byte(`{"token":"t","groupId":1}`), upstream.Options{RegistryURL: "https://user:pw@registry.example.com"}); err == nil {
		t.Fatal("a registry URL with credentials was accepted")
	}
}

func TestMintGroupAndProjectTokens(t *testing.T) {
	w := newWorld(t, gitlabemu.Options{})
	for _, tc := range []struct {
		name   string
		fields map[string]any
		kind   string
		path   string
	}{
		{"group by id", map[string]any{"groupId": 11}, "groups", "/api/v4/groups/11/access_tokens"},
		{"group by path", map[string]any{"groupId": "acme"}, "groups", "/api/v4/groups/acme/access_tokens"},
		{"subgroup by path", map[string]any{"groupId": "acme/platform"}, "groups", "/api/v4/groups/acme%2Fplatform/access_tokens"},
		{"project by path", map[string]any{"groupId": nil, "projectId": appRepo}, "projects", "/api/v4/projects/acme%2Fplatform%2Fapp/access_tokens"},
		{"project by id", map[string]any{"groupId": nil, "projectId": 31}, "projects", "/api/v4/projects/31/access_tokens"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w.emu.ResetCalls()
			label := "ptc-0123456789ab-" + strings.ReplaceAll(tc.name, " ", "-")
			m := mint(t, w.upstream(t, tc.fields), label)
			stored := w.token(m.Token.ID)
			if stored.Name != label || stored.Kind != tc.kind || stored.AccessLevel != 20 || fmt.Sprint(stored.Scopes) != "[read_registry]" {
				t.Fatalf("stored token %+v", stored)
			}
			wantExp := time.Date(2025, 6, 8, 0, 0, 0, 0, time.UTC) // 90 days after 2025-03-10
			if !stored.ExpiresAt.Equal(wantExp) || !m.Token.ExpiresAt.Equal(wantExp) {
				t.Fatalf("expires %v / %v, want %v", stored.ExpiresAt, m.Token.ExpiresAt, wantExp)
			}
			if m.Credential.AccessToken != stored.Secret || m.Credential.Username != label || m.Token.Label != label || len(m.Stages) != 0 {
				t.Fatalf("minted %+v (username must be the token name)", m.Token)
			}
			calls := w.emu.Calls()
			if len(calls) != 1 || calls[0].Method != "POST" || calls[0].Path != tc.path || calls[0].Auth != "PRIVATE-TOKEN" || calls[0].Status != 201 {
				t.Fatalf("calls %+v", calls)
			}
		})
	}
	// Configured scopes, level and the longest lifetime GitLab.com allows.
	m := mint(t, w.upstream(t, map[string]any{"scopes": []string{"read_registry", "read_repository"}, "accessLevel": 30, "tokenLifetimeDays": 365}), "ptc-long")
	if st := w.token(m.Token.ID); st.AccessLevel != 30 || len(st.Scopes) != 2 || st.ExpiresAt.Format("2006-01-02") != "2026-03-10" {
		t.Fatalf("stored %+v", st)
	}
	if _, err := w.upstream(t, nil).Mint(context.Background(), upstream.MintRequest{Label: strings.Repeat("x", 256)}); err == nil {
		t.Fatal("a 256-character name was sent")
	}
}

func TestTokensPaginatesAndFilters(t *testing.T) {
	w := newWorld(t, gitlabemu.Options{MaxPerPage: 2})
	g := w.upstream(t, nil)
	var mine []upstream.Minted
	for i := range 5 {
		mine = append(mine, mint(t, g, fmt.Sprintf("ptc-aaaaaaaaaaaa-v%d", i)))
	}
	mint(t, g, "ptc-bbbbbbbbbbbb-v0")  // another secret's
	mint(t, g, "x-ptc-aaaaaaaaaaaa-1") // matches GitLab's substring search, not the prefix
	if err := g.Revoke(context.Background(), mine[1].Token); err != nil {
		t.Fatal(err)
	}
	w.emu.ResetCalls()
	got, err := g.Tokens(context.Background(), "ptc-aaaaaaaaaaaa-")
	if err != nil {
		t.Fatal(err)
	}
	var labels []string
	for _, tk := range got {
		labels = append(labels, tk.Label)
		if tk.ID == "" || tk.ExpiresAt.IsZero() {
			t.Errorf("token %+v lacks id or expiry", tk)
		}
	}
	if fmt.Sprint(labels) != "[ptc-aaaaaaaaaaaa-v4 ptc-aaaaaaaaaaaa-v3 ptc-aaaaaaaaaaaa-v2 ptc-aaaaaaaaaaaa-v0]" {
		t.Fatalf("tokens %v (want the four live ones of this prefix)", labels)
	}
	calls := w.emu.Calls()
	if len(calls) != 3 {
		t.Fatalf("want 3 pages of 2, made %d calls: %+v", len(calls), calls)
	}
	for i, c := range calls {
		if c.Method != "GET" || !strings.Contains(c.Query, fmt.Sprintf("page=%d", i+1)) || !strings.Contains(c.Query, "state=active") || !strings.Contains(c.Query, "per_page=100") {
			t.Errorf("call %d: %+v", i, c)
		}
	}
}

// TestTokensFollowsLinkHeader covers answers without X-Next-Page, and refuses a Link that would
// take the PRIVATE-TOKEN to another host.
func TestTokensFollowsLinkHeader(t *testing.T) {
	var elsewhere int
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere++ }))
	defer other.Close()
	var pages []string
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("PRIVATE-TOKEN") != ownerToken {
			w.WriteHeader(401)
			return
		}
		pages = append(pages, r.URL.Query().Get("page"))
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Query().Get("page") {
		case "1":
			w.Header().Set("Link", `<`+srv.URL+r.URL.Path+`?page=2&per_page=100>; rel="next", <`+srv.URL+`/x?page=1>; rel="first"`)
			fmt.Fprint(w, `[{"id":1,"name":"ptc-p-1","active":true,"revoked":false,"expires_at":"2025-06-01"}]`)
		case "2":
			w.Header().Set("Link", `<`+other.URL+`/api/v4/groups/11/access_tokens?page=3>; rel="next"`)
			fmt.Fprint(w, `[{"id":2,"name":"ptc-p-2","revoked":false,"expires_at":"2025-06-01"},{"id":3,"name":"ptc-p-3","active":true,"revoked":true}]`)
		default:
			fmt.Fprint(w, `[]`)
		}
	}))
	defer srv.Close()
	g, err := gitlab.New([]byte(`{"token":"`+ownerToken+`","groupId":11,"apiUrl":"`+srv.URL+`"}`), upstream.Options{Standins: pinned.NewStandins(srv.URL)})
	if err != nil {
		t.Fatal(err)
	}
	got, err := g.Tokens(context.Background(), "ptc-p-")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != "1" || got[1].ID != "2" {
		t.Fatalf("tokens %+v (an old GitLab without \"active\" counts as live; revoked ones never)", got)
	}
	if fmt.Sprint(pages) != "[1 2]" || elsewhere != 0 {
		t.Fatalf("pages %v, calls to another host %d", pages, elsewhere)
	}
}

func TestRevoke(t *testing.T) {
	w := newWorld(t, gitlabemu.Options{})
	g := w.upstream(t, nil)
	ctx := context.Background()
	m := mint(t, g, "ptc-revoke-me")
	if err := g.Revoke(ctx, m.Token); err != nil {
		t.Fatal(err)
	}
	if !w.token(m.Token.ID).Revoked {
		t.Fatal("not revoked")
	}
	w.emu.ResetCalls()
	if err := g.Revoke(ctx, m.Token); err != nil {
		t.Fatalf("revoking a revoked token again: %v", err)
	}
	if c := w.emu.Calls(); len(c) != 2 || c[0].Status != 400 || c[1].Method != "GET" || c[1].Status != 200 {
		t.Fatalf("a repeated revoke should read the token after GitLab's 400: %+v", c)
	}
	if err := g.Revoke(ctx, upstream.Token{ID: "987654", Label: "gone"}); err != nil {
		t.Fatalf("revoking an unknown token: %v", err)
	}
	if err := g.Revoke(ctx, upstream.Token{ID: "not-a-number"}); err == nil {
		t.Fatal("a non-numeric id was sent")
	}
	live := mint(t, g, "ptc-keep-me")
	err := w.upstream(t, map[string]any{"token": devToken}).Revoke(ctx, live.Token)
	if err == nil || !strings.Contains(err.Error(), "must be an Owner of the group") {
		t.Fatalf("revoke without rights: %v", err)
	}
	if w.token(live.Token.ID).Revoked {
		t.Fatal("a developer revoked a token")
	}
	noLeak(t, err.Error(), live.Credential.AccessToken)
}

// recordingTransport notes the host of every request.
type recordingTransport struct {
	mu    sync.Mutex
	hosts []string
}

func (r *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil { // go-containerregistry tries https first on an insecure registry
		r.hosts = append(r.hosts, req.URL.Host+req.URL.Path)
	}
	return resp, err
}

func TestVerify(t *testing.T) {
	w := newWorld(t, gitlabemu.Options{})
	// The registry is a different host:port from the API: Verify must find the realm through
	// the registry's own challenge.
	registry := httptest.NewServer(w.emu)
	defer registry.Close()
	ctx := context.Background()
	build := func(fields map[string]any, rec *recordingTransport) *gitlab.GitLab {
		opts := upstream.Options{RegistryURL: registry.URL, Now: w.clk.Now, Standins: pinned.NewStandins(w.url, registry.URL)}
		if rec != nil {
			opts.HTTPClient = &http.Client{Transport: rec}
		}
		g, err := gitlab.New(w.sourceJSON(fields), opts)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}

	rec := &recordingTransport{}
	g := build(nil, rec)
	good := mint(t, g, "ptc-verify-good")
	rec.hosts = nil
	if _, err := g.Verify(ctx, good.Credential); err != nil {
		t.Fatalf("a fresh Reporter token: %v", err)
	}
	regHost := strings.TrimPrefix(registry.URL, "http://")
	if len(rec.hosts) != 2 || rec.hosts[0] != regHost+"/v2/" || rec.hosts[1] != regHost+"/jwt/auth" {
		t.Fatalf("Verify went to %v, want the registry's /v2/ then its realm", rec.hosts)
	}

	if err := g.Revoke(ctx, good.Token); err != nil {
		t.Fatal(err)
	}
	_, err := g.Verify(ctx, good.Credential)
	if !errors.Is(err, registryauth.ErrBadCredentials) {
		t.Fatalf("a revoked token: %v", err)
	}
	noLeak(t, err.Error(), good.Credential.AccessToken)

	guest := build(map[string]any{"accessLevel": 10}, nil)
	gm := mint(t, guest, "ptc-verify-guest")
	_, err = guest.Verify(ctx, gm.Credential)
	if !errors.Is(err, registryauth.ErrBadCredentials) || !strings.Contains(err.Error(), `granted no pull on "acme/platform/app"`) || !strings.Contains(err.Error(), `raise field "accessLevel"`) {
		t.Fatalf("a Guest token on a private project: %v", err)
	}
	noLeak(t, err.Error(), gm.Credential.AccessToken)

	// Without a repository to check, the login alone is proved (GitLab answers any valid
	// credential with a token).
	loginOnly := build(map[string]any{"accessLevel": 10, "checkRepository": nil}, nil)
	if _, err := loginOnly.Verify(ctx, gm.Credential); err != nil {
		t.Fatalf("login-only check: %v", err)
	}

	project := build(map[string]any{"groupId": nil, "projectId": appRepo, "checkRepository": nil}, nil)
	pm := mint(t, project, "ptc-verify-project")
	if _, err := project.Verify(ctx, pm.Credential); err != nil {
		t.Fatalf("a project token, checked against its own project by default: %v", err)
	}
	if _, err := project.Verify(ctx, upstream.Credential{Username: "x", AccessToken: "glpat-not-a-token"}); !errors.Is(err, registryauth.ErrBadCredentials) {
		t.Fatalf("an unknown token: %v", err)
	}
}

func TestAPIErrorsSayWhatToFix(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		fields map[string]any
		opts   gitlabemu.Options
		inject func(e *gitlabemu.Server)
		op     string // "list" or "mint"
		want   []string
		status int
	}{
		{name: "unknown token", fields: map[string]any{"token": "glpat-PLANTED-unknown-zz"}, op: "list", status: 401,
			want: []string{`GitLab refused the source token: check field "token" (an Owner's token with the api scope)`}},
		{name: "developer lists", fields: map[string]any{"token": devToken}, op: "list", status: 401,
			want: []string{`check field "token"`, "not an Owner of the group", "Premium/Ultimate"}},
		{name: "developer mints", fields: map[string]any{"token": devToken}, op: "mint", status: 400,
			want: []string{"User does not have permission to create group access token", "must be an Owner of the group", "Premium/Ultimate on GitLab.com"}},
		{name: "owner's token without api scope", fields: map[string]any{"token": readToken}, op: "mint", status: 403,
			want: []string{"needs the api scope", "must be an Owner of the group", "Premium/Ultimate on GitLab.com"}},
		{name: "free group on GitLab.com", fields: map[string]any{"token": freeToken, "groupId": 21, "checkRepository": nil}, op: "mint", status: 400,
			want: []string{"Premium/Ultimate"}},
		{name: "group not found", fields: map[string]any{"groupId": 999, "checkRepository": nil}, op: "list", status: 404,
			want: []string{`group not found: check field "groupId"`}},
		{name: "project not found", fields: map[string]any{"groupId": nil, "projectId": "acme/nope", "checkRepository": nil}, op: "mint", status: 404,
			want: []string{`project not found: check field "projectId"`}},
		{name: "maintainer asks for owner level", fields: map[string]any{"token": maintToken, "groupId": nil, "projectId": appRepo, "accessLevel": 50}, op: "mint", status: 400,
			want: []string{"permissions not held by the creating user", `lower field "accessLevel"`}},
		{name: "self-managed lifetime limit", opts: gitlabemu.Options{MaxLifetimeDays: 30}, op: "mint", status: 400,
			want: []string{"Expires at must expire in 30 days", `lower field "tokenLifetimeDays"`}},
		{name: "5xx until the caller gives up", inject: func(e *gitlabemu.Server) { e.Inject("GET", "/api/v4/", 500, 10) }, op: "list", status: 500,
			want: []string{"list access tokens: HTTP 500", "gave up after 5 attempts"}},
		{name: "5xx on create is not retried", inject: func(e *gitlabemu.Server) { e.Inject("POST", "/api/v4/", 502, 10) }, op: "mint", status: 502,
			want: []string{"create group access token: HTTP 502"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, tc.opts)
			if tc.inject != nil {
				tc.inject(w.emu)
			}
			g := w.upstream(t, tc.fields)
			var err error
			if tc.op == "list" {
				_, err = g.Tokens(ctx, "ptc-")
			} else {
				_, err = g.Mint(ctx, upstream.MintRequest{SecretName: "s", VersionID: "v", Label: "ptc-errors"})
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if !httpapi.IsStatus(err, tc.status) {
				t.Errorf("error %v does not carry HTTP %d", err, tc.status)
			}
			noLeak(t, err.Error(), "glpat-PLANTED-unknown-zz")
			for _, tk := range w.emu.Tokens() {
				t.Errorf("a token was created: %s", tk.Name)
			}
		})
	}
}

func TestRateLimitIsRetried(t *testing.T) {
	w := newWorld(t, gitlabemu.Options{})
	w.emu.Inject("POST", "/api/v4/groups/11/access_tokens", 429, 2)
	g := w.upstream(t, nil)
	m := mint(t, g, "ptc-after-429")
	if g.Retries() != 2 || w.token(m.Token.ID).Name != "ptc-after-429" || len(w.emu.Tokens()) != 1 {
		t.Fatalf("retries %d, tokens %d", g.Retries(), len(w.emu.Tokens()))
	}
}

// TestRotateEndpointWouldBreakOverlap shows why Mint creates a new token instead of calling
// GitLab's rotate endpoint: create-then-delete keeps the previous token working (ECR may still
// be using it), rotate revokes it at once.
func TestRotateEndpointWouldBreakOverlap(t *testing.T) {
	w := newWorld(t, gitlabemu.Options{})
	g := w.upstream(t, nil)
	ctx := context.Background()
	previous := mint(t, g, "ptc-overlap-v1")
	current := mint(t, g, "ptc-overlap-v2")
	for _, m := range []upstream.Minted{previous, current} {
		if _, err := g.Verify(ctx, m.Credential); err != nil {
			t.Fatalf("%s after create-then-create: %v", m.Token.Label, err)
		}
	}
	req, _ := http.NewRequest("POST", w.url+"/api/v4/groups/11/access_tokens/"+current.Token.ID+"/rotate", nil)
	req.Header.Set("PRIVATE-TOKEN", ownerToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("rotate: HTTP %d", resp.StatusCode)
	}
	if _, err := g.Verify(ctx, current.Credential); !errors.Is(err, registryauth.ErrBadCredentials) {
		t.Fatalf("the rotated-away token still logs in (%v): the emulator does not behave as GitLab documents", err)
	}
}

// TestResourceTokenAsSourceIsRefusedClearly: a group or project access token given as the
// source cannot create tokens (GitLab: "You cannot use group access tokens to create other
// group, project, or personal access tokens"). Whichever token call GitLab refuses first (the
// list before a mint, or the create), the error says what the token is and what to use
// instead, nothing is minted, and GET /user is asked once; a service account's token — also a
// "bot" to GitLab — still mints.
func TestResourceTokenAsSourceIsRefusedClearly(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, gitlabemu.Options{})
	owner := w.upstream(t, nil)
	projTok := mint(t, w.upstream(t, map[string]any{"token": maintToken, "groupId": nil, "projectId": appRepo}), "a-project-access-token")
	before := len(w.emu.Tokens())

	// The minted ones carry read_registry only; a person would more likely paste an api one.
	apiGroup := mint(t, w.upstream(t, map[string]any{"scopes": []string{"api"}, "accessLevel": gitlabemu.Owner}), "an-api-group-token")
	before++
	for _, tc := range []struct {
		name   string
		fields map[string]any
		op     string
		status int
		bot    string
	}{
		{"group token with api lists", map[string]any{"token": apiGroup.Credential.AccessToken}, "list", 401, "group_11_bot_"},
		{"group token with api mints", map[string]any{"token": apiGroup.Credential.AccessToken}, "mint", 400, "group_11_bot_"},
		{"project token mints", map[string]any{"token": projTok.Credential.AccessToken, "scopes": nil, "groupId": nil, "projectId": appRepo}, "mint", 403, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := w.upstream(t, tc.fields)
			w.emu.ResetCalls()
			var err error
			if tc.op == "list" {
				_, err = g.Tokens(ctx, "ptc-")
			} else {
				_, err = g.Mint(ctx, upstream.MintRequest{SecretName: "s", VersionID: "v", Label: "ptc-bot-source"})
			}
			if err == nil {
				t.Fatal("no error")
			}
			if tc.bot == "" {
				// A read_registry project token cannot even ask who it is (403 on /user):
				// GitLab's own error, with what to fix, stands.
				if errors.Is(err, gitlab.ErrResourceToken) || !strings.Contains(err.Error(), "needs the api scope") {
					t.Fatalf("error %q", err)
				}
			} else {
				for _, want := range []string{"this token cannot create access tokens; use a personal or service-account token with `api`", `field "token" is a group or project access token`, tc.bot} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not say %q", err, want)
					}
				}
				if !errors.Is(err, gitlab.ErrResourceToken) || !httpapi.IsStatus(err, tc.status) {
					t.Errorf("error %v: want ErrResourceToken and HTTP %d", err, tc.status)
				}
			}
			users := 0
			for _, c := range w.emu.Calls() {
				if c.Path == "/api/v4/user" {
					users++
				}
			}
			if users != 1 {
				t.Errorf("GET /api/v4/user asked %d times, want once", users)
			}
			noLeak(t, err.Error(), apiGroup.Credential.AccessToken, projTok.Credential.AccessToken)
			if n := len(w.emu.Tokens()); n != before {
				t.Errorf("%d tokens were created", n-before)
			}
		})
	}

	t.Run("service account mints", func(t *testing.T) {
		const svcToken = "glpat-PLANTED-service-acct-7"
		w.emu.AddUser(gitlabemu.User{Username: "service_account_group_11_9c1d", Token: svcToken, ServiceAccount: true})
		w.emu.SetMember("acme", "service_account_group_11_9c1d", gitlabemu.Owner)
		g := w.upstream(t, map[string]any{"token": svcToken})
		if _, err := g.Tokens(ctx, "ptc-"); err != nil {
			t.Fatal(err)
		}
		mint(t, g, "ptc-by-service-account")
	})

	t.Run("a person's refusal costs one lookup and keeps GitLab's words", func(t *testing.T) {
		g := w.upstream(t, map[string]any{"token": devToken})
		w.emu.ResetCalls()
		_, err := g.Mint(ctx, upstream.MintRequest{SecretName: "s", VersionID: "v", Label: "ptc-dev"})
		if err == nil || errors.Is(err, gitlab.ErrResourceToken) || !strings.Contains(err.Error(), "must be an Owner of the group") {
			t.Fatalf("error %v", err)
		}
		if n := len(w.emu.Calls()); n != 2 {
			t.Errorf("%d calls, want the create and one GET /user", n)
		}
	})

	t.Run("the happy path asks nothing extra", func(t *testing.T) {
		w.emu.ResetCalls()
		mint(t, owner, "ptc-happy")
		for _, c := range w.emu.Calls() {
			if c.Path == "/api/v4/user" {
				t.Fatal("GET /api/v4/user on a successful mint")
			}
		}
	})
}
