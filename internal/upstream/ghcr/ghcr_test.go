package ghcr_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/pinned"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/registryauth"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/ghcremu"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/ghcr"
)

// Planted values: distinctive, so a leak is unmistakable.
const (
	user        = "Octo-Cat"
	goodPAT     = "ghp_PLANTEDgood7f3a9c0000000000000000000"
	noPkgPAT    = "ghp_PLANTEDnopkg7f3a9c000000000000000000"
	writePAT    = "ghp_PLANTEDwrite7f3a9c000000000000000000"
	foreverPAT  = "ghp_PLANTEDforever7f3a9c0000000000000000"
	otherPAT    = "ghp_PLANTEDother7f3a9c000000000000000000"
	finePAT     = "github_pat_PLANTEDfine7f3a9c_000000000000"
	fineScoped  = "ghu_PLANTEDnoscopes7f3a9c000000000000000"
	revokedPAT  = "ghp_PLANTEDrevoked7f3a9c0000000000000000"
	unknownPAT  = "ghp_PLANTEDunknown7f3a9c0000000000000000"
	plantedJunk = "PLANTED-junk-value-91c2e"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type env struct {
	emu  *ghcremu.Server
	srv  *httptest.Server
	logs *bytes.Buffer
	opts upstream.Options
}

func newEnv(t *testing.T, o ghcremu.Options) *env {
	t.Helper()
	if o.Now == nil {
		o.Now = func() time.Time { return now }
	}
	e := ghcremu.New(o,
		ghcremu.Token{Value: goodPAT, User: user, Scopes: []string{"read:packages"}, ExpiresAt: now.Add(45 * 24 * time.Hour)},
		ghcremu.Token{Value: noPkgPAT, User: user, Scopes: []string{"repo", "read:org"}, ExpiresAt: now.Add(45 * 24 * time.Hour)},
		ghcremu.Token{Value: writePAT, User: user, Scopes: []string{"write:packages"}, ExpiresAt: now.Add(3 * 24 * time.Hour)},
		ghcremu.Token{Value: foreverPAT, User: user, Scopes: []string{"read:packages"}},
		ghcremu.Token{Value: otherPAT, User: "someone-else", Scopes: []string{"read:packages"}},
		ghcremu.Token{Value: fineScoped, User: user, FineGrained: true},
		ghcremu.Token{Value: revokedPAT, User: user, Scopes: []string{"read:packages"}},
	)
	e.Revoke(revokedPAT)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	logs := &bytes.Buffer{}
	return &env{emu: e, srv: srv, logs: logs, opts: upstream.Options{
		Now:         func() time.Time { return now },
		Logger:      slog.New(slog.NewJSONHandler(logs, nil)),
		RegistryURL: srv.URL,
		Sleep:       func(context.Context, time.Duration) error { return nil },
		Standins:    pinned.NewStandins(srv.URL),
	}}
}

func (e *env) source(extra string) []byte {
	return []byte(`{"username":"` + user + `","token":"` + goodPAT + `","apiUrl":"` + e.srv.URL + `"` + extra + `}`)
}

func (e *env) upstream(t *testing.T, extra string) *ghcr.GHCR {
	t.Helper()
	g, err := ghcr.New(e.source(extra), e.opts)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func assertNoSecret(t *testing.T, where, text string) {
	t.Helper()
	for _, p := range []string{goodPAT, noPkgPAT, writePAT, foreverPAT, otherPAT, finePAT, fineScoped, revokedPAT, unknownPAT, plantedJunk} {
		if strings.Contains(text, p) {
			t.Errorf("a planted secret starting %q appears in the %s", p[:8], where)
		}
	}
}

func TestParseSource(t *testing.T) {
	cases := []struct {
		name    string
		json    string
		wantErr string // substring; empty means success
		check   func(t *testing.T, s ghcr.Source)
	}{
		{name: "defaults", json: `{"username":"Octo-Cat","token":"ghp_x"}`, check: func(t *testing.T, s ghcr.Source) {
			if s.APIURL != ghcr.DefaultAPIURL || s.CheckRepository != "octo-cat/ptc-credentials-check" {
				t.Errorf("defaults not filled: %+v", s.APIURL+" "+s.CheckRepository)
			}
		}},
		{name: "overrides", json: `{"username":"u","token":"ghp_x","apiUrl":"https://ghe.example.com/api/v3/","checkRepository":"my-org/app/sub"}`, check: func(t *testing.T, s ghcr.Source) {
			if s.APIURL != "https://ghe.example.com/api/v3" || s.CheckRepository != "my-org/app/sub" {
				t.Errorf("overrides lost: %s %s", s.APIURL, s.CheckRepository)
			}
		}},
		{name: "loopback http", json: `{"username":"u","token":"ghp_x","apiUrl":"http://127.0.0.1:9"}`},
		{name: "old 40-hex classic PAT", json: `{"username":"u","token":"0123456789abcdef0123456789abcdef01234567"}`},
		{name: "not JSON", json: `{"username":` + plantedJunk, wantErr: "not valid JSON"},
		{name: "truncated", json: `{"username":"u","token":"` + plantedJunk, wantErr: "not valid JSON (it ends early)"},
		{name: "empty", json: ``, wantErr: "empty"},
		{name: "array", json: `["` + plantedJunk + `"]`, wantErr: "not a JSON object"},
		{name: "two values", json: `{"username":"u","token":"ghp_x"} {}`, wantErr: "more than one JSON value"},
		{name: "unknown field", json: `{"username":"u","token":"ghp_x","accessToken":"` + plantedJunk + `"}`, wantErr: `unknown field "accessToken"`},
		{name: "wrong type", json: `{"username":"u","token":12345}`, wantErr: `field "token" must be a string`},
		{name: "no username", json: `{"token":"` + plantedJunk + `"}`, wantErr: `field "username" is required`},
		{name: "no token", json: `{"username":"u"}`, wantErr: `field "token" is required`},
		{name: "padded token", json: `{"username":"u","token":" ` + plantedJunk + `\n"}`, wantErr: "white space"},
		{name: "fine-grained PAT", json: `{"username":"u","token":"` + finePAT + `"}`, wantErr: "fine-grained personal access token"},
		{name: "installation token", json: `{"username":"u","token":"ghs_` + plantedJunk + `"}`, wantErr: "installation or Actions token"},
		{name: "http not loopback", json: `{"username":"u","token":"ghp_x","apiUrl":"http://api.github.com"}`, wantErr: `field "apiUrl": plain http`},
		{name: "url with credentials", json: `{"username":"u","token":"ghp_x","apiUrl":"https://me:` + plantedJunk + `@api.github.com"}`, wantErr: `field "apiUrl": credentials in the URL`},
		{name: "check repository without image", json: `{"username":"u","token":"ghp_x","checkRepository":"octo-cat"}`, wantErr: `field "checkRepository": must be "<owner>/<image>"`},
		{name: "check repository upper case", json: `{"username":"u","token":"ghp_x","checkRepository":"Octo/App"}`, wantErr: "lower case"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := ghcr.ParseSource([]byte(c.json))
			if c.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.check != nil {
					c.check(t, s)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("error %v, want it to contain %q", err, c.wantErr)
			}
			assertNoSecret(t, "error", err.Error())
		})
	}
}

func TestNewRejectsBadRegistry(t *testing.T) {
	_, err := ghcr.New([]byte(`{"username":"u","token":"ghp_x"}`), upstream.Options{RegistryURL: "http://registry.example.com"})
	if err == nil || !strings.Contains(err.Error(), ptcsecret.TagRegistryURL) {
		t.Fatalf("error %v, want one naming the tag", err)
	}
}

func TestProvider(t *testing.T) {
	p := ghcr.Provider
	if p.Registry != "github-container-registry" || p.DefaultRegistryURL != "ghcr.io" || p.FixedUsername {
		t.Fatalf("provider %+v", p)
	}
	up, err := p.New([]byte(`{"username":"u","token":"ghp_x"}`), upstream.Options{})
	if err != nil || up.Registry() != "github-container-registry" {
		t.Fatalf("New: %v", err)
	}
}

func TestMintStagesTheSourceTokenWithoutCalls(t *testing.T) {
	e := newEnv(t, ghcremu.Options{})
	g := e.upstream(t, "")
	label := ptcsecret.Label("ecr-pullthroughcache/ghcr", "11111111-2222-3333-4444-555555555555")
	m, err := g.Mint(context.Background(), upstream.MintRequest{SecretName: "ecr-pullthroughcache/ghcr", VersionID: "11111111-2222-3333-4444-555555555555", Label: label})
	if err != nil {
		t.Fatal(err)
	}
	if m.Credential.Username != user || m.Credential.AccessToken != goodPAT {
		t.Fatalf("minted %v, want the source secret's pair", m.Credential)
	}
	if m.Token.ID != "" || m.Token.Label != label || len(m.Stages) != 0 {
		t.Fatalf("token %+v stages %v", m.Token, m.Stages)
	}
	if n := len(e.emu.Calls()); n != 0 {
		t.Fatalf("Mint made %d calls", n)
	}
	if !strings.Contains(e.logs.String(), "GHCR tokens cannot be minted; staging the token a person put in the source secret") {
		t.Fatalf("Mint did not say it does not mint: %s", e.logs.String())
	}
	assertNoSecret(t, "logs", e.logs.String())
}

func TestTokensAndRevokeDoNothing(t *testing.T) {
	e := newEnv(t, ghcremu.Options{})
	g := e.upstream(t, "")
	toks, err := g.Tokens(context.Background(), "ptc-")
	if err != nil || toks != nil {
		t.Fatalf("Tokens = %v, %v", toks, err)
	}
	if err := g.Revoke(context.Background(), upstream.Token{Label: "ptc-x"}); err != nil {
		t.Fatal(err)
	}
	if n := len(e.emu.Calls()); n != 0 {
		t.Fatalf("%d calls", n)
	}
	for _, tk := range e.emu.Tokens() {
		if tk.Revoked && tk.Value != revokedPAT {
			t.Fatalf("token of %s revoked", tk.User)
		}
	}
}

func TestVerify(t *testing.T) {
	cases := []struct {
		name     string
		emu      ghcremu.Options
		cred     upstream.Credential
		extra    string // more source JSON
		inject   func(s *ghcremu.Server)
		wantExp  time.Time
		wantErr  string
		wantKind error // a registryauth sentinel the error must wrap
		wantLog  string
		calls    int // upstream calls made, -1: do not check
	}{
		{name: "expiring classic PAT", cred: upstream.Credential{Username: user, AccessToken: goodPAT}, wantExp: now.Add(45 * 24 * time.Hour), calls: 3},
		{name: "username case differs", cred: upstream.Credential{Username: "octo-cat", AccessToken: goodPAT}, wantExp: now.Add(45 * 24 * time.Hour), calls: 3},
		{name: "expiry with offset", emu: ghcremu.Options{ExpirationZone: time.FixedZone("", -7*3600)}, cred: upstream.Credential{Username: user, AccessToken: goodPAT}, wantExp: now.Add(45 * 24 * time.Hour), calls: 3},
		{name: "write implies read", cred: upstream.Credential{Username: user, AccessToken: writePAT}, wantExp: now.Add(3 * 24 * time.Hour), calls: 3},
		{name: "never expires", cred: upstream.Credential{Username: user, AccessToken: foreverPAT}, wantLog: "never expires", calls: 3},
		{name: "rate limited then fine", cred: upstream.Credential{Username: user, AccessToken: goodPAT}, inject: func(s *ghcremu.Server) { s.Inject(http.MethodGet, "/user", 429, 2) }, wantExp: now.Add(45 * 24 * time.Hour), calls: 5},
		{name: "500 then fine", cred: upstream.Credential{Username: user, AccessToken: goodPAT}, inject: func(s *ghcremu.Server) { s.Inject(http.MethodGet, "/user", 502, 1) }, wantExp: now.Add(45 * 24 * time.Hour), calls: 4},
		{name: "lacks read:packages", cred: upstream.Credential{Username: user, AccessToken: noPkgPAT}, wantErr: "lacks read:packages (its scopes: repo, read:org); create a classic PAT with read:packages", calls: 1},
		{name: "no scopes header", cred: upstream.Credential{Username: user, AccessToken: fineScoped}, wantErr: "not a classic personal access token", calls: 1},
		{name: "fine-grained refused before any call", cred: upstream.Credential{Username: user, AccessToken: finePAT}, wantErr: "fine-grained personal access token, which GitHub Packages do not accept; create a classic PAT with read:packages", calls: 0},
		{name: "revoked", cred: upstream.Credential{Username: user, AccessToken: revokedPAT}, wantErr: "GitHub refused the token of \"Octo-Cat\" (expired or revoked?)", calls: 1},
		{name: "unknown", cred: upstream.Credential{Username: user, AccessToken: unknownPAT}, wantErr: "expired or revoked?", calls: 1},
		{name: "another user's token", cred: upstream.Credential{Username: user, AccessToken: otherPAT}, wantErr: `belongs to GitHub user "someone-else", not "Octo-Cat"`, calls: 1},
		{name: "403 from the API", cred: upstream.Credential{Username: user, AccessToken: goodPAT}, inject: func(s *ghcremu.Server) { s.Inject(http.MethodGet, "/user", 403, 1) }, wantErr: "GitHub answered 403", calls: 1},
		{name: "API keeps failing", cred: upstream.Credential{Username: user, AccessToken: goodPAT}, inject: func(s *ghcremu.Server) { s.Inject(http.MethodGet, "/user", 500, 10) }, wantErr: "GitHub's API is unavailable", calls: 5},
		{name: "API rate limit persists", cred: upstream.Credential{Username: user, AccessToken: goodPAT}, inject: func(s *ghcremu.Server) { s.Inject(http.MethodGet, "/user", 429, 100) }, wantErr: "still rate limited after 20 attempts", calls: 20},
		{name: "registry denies the image", cred: upstream.Credential{Username: user, AccessToken: goodPAT}, extra: `,"checkRepository":"private-org/secret"`, wantErr: `refused a pull of private-org/secret`, wantKind: registryauth.ErrBadCredentials, calls: 3},
		{name: "registry down", cred: upstream.Credential{Username: user, AccessToken: goodPAT}, inject: func(s *ghcremu.Server) { s.Inject("", "/token", 503, 1) }, wantKind: registryauth.ErrUnreachable, calls: -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, c.emu)
			if c.inject != nil {
				c.inject(e.emu)
			}
			g := e.upstream(t, c.extra)
			v, err := g.Verify(context.Background(), c.cred)
			switch {
			case c.wantErr == "" && c.wantKind == nil:
				if err != nil {
					t.Fatal(err)
				}
				if !v.ExpiresAt.Equal(c.wantExp) {
					t.Fatalf("ExpiresAt %v, want %v", v.ExpiresAt, c.wantExp)
				}
			default:
				if err == nil {
					t.Fatal("Verify succeeded")
				}
				if c.wantErr != "" && !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %q, want it to contain %q", err, c.wantErr)
				}
				if c.wantKind != nil && !errors.Is(err, c.wantKind) {
					t.Fatalf("error %q does not wrap %v", err, c.wantKind)
				}
				assertNoSecret(t, "error", err.Error())
			}
			if c.wantLog != "" && !strings.Contains(e.logs.String(), c.wantLog) {
				t.Errorf("log lacks %q: %s", c.wantLog, e.logs.String())
			}
			if calls := e.emu.Calls(); c.calls >= 0 && len(calls) != c.calls {
				t.Errorf("%d upstream calls, want %d: %+v", len(calls), c.calls, calls)
			}
			for _, call := range e.emu.Calls() {
				if call.Path == "/user" && call.Auth != "Bearer" {
					t.Errorf("GET /user sent auth scheme %q, want Bearer", call.Auth)
				}
				if call.Path == "/token" && call.Auth != "Basic" {
					t.Errorf("GET /token sent auth scheme %q, want Basic", call.Auth)
				}
			}
			assertNoSecret(t, "logs", e.logs.String())
		})
	}
}

func TestParseExpiration(t *testing.T) {
	want := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, c := range []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2026-01-02 03:04:05 UTC", want, true},
		{" 2026-01-02 03:04:05 UTC ", want, true},
		{"2026-01-02 03:04:05 +0000", want, true},
		{"2026-01-02 05:04:05 +0200", want, true},
		{"2026-01-01 22:04:05 -0500", want, true},
		{"2026-01-02T03:04:05Z", want, true},
		{"2026-01-02 03:04:05 PST", time.Time{}, false},
		{"tomorrow", time.Time{}, false},
		{"", time.Time{}, false},
	} {
		got, err := ghcr.ParseExpiration(c.in)
		if (err == nil) != c.ok || !got.Equal(c.want) {
			t.Errorf("ParseExpiration(%q) = %v, %v; want %v ok=%v", c.in, got, err, c.want, c.ok)
		}
	}
}

// An unreadable expiry date must not fail a token that works; it is logged instead.
func TestVerifyUnreadableExpiryIsLoggedNotFatal(t *testing.T) {
	e := newEnv(t, ghcremu.Options{})
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-OAuth-Scopes", "read:packages")
		w.Header().Set("GitHub-Authentication-Token-Expiration", "someday")
		_, _ = w.Write([]byte(`{"login":"Octo-Cat"}`))
	}))
	defer api.Close()
	opts := e.opts
	opts.Standins = pinned.NewStandins(e.srv.URL, api.URL)
	g, err := ghcr.New([]byte(`{"username":"`+user+`","token":"`+goodPAT+`","apiUrl":"`+api.URL+`"}`), opts)
	if err != nil {
		t.Fatal(err)
	}
	v, err := g.Verify(context.Background(), upstream.Credential{Username: user, AccessToken: goodPAT})
	if err != nil || !v.ExpiresAt.IsZero() {
		t.Fatalf("Verify = %v, %v", v, err)
	}
	if !strings.Contains(e.logs.String(), "could not read the token expiry") {
		t.Fatalf("no warning logged: %s", e.logs.String())
	}
}
