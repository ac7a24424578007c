package ghcremu

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
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

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

const (
	classic = "ghp_EMULATORclassic0000000000000000000000"
	noPkg   = "ghp_EMULATORnopackages000000000000000000"
	writer  = "ghp_EMULATORwriter0000000000000000000000"
	forever = "ghp_EMULATORforever000000000000000000000"
	fine    = "github_pat_EMULATORfinegrained_00000000000"
)

func newServer(t *testing.T, opts Options) (*Server, *httptest.Server, *clock) {
	t.Helper()
	c := &clock{t: t0}
	if opts.Now == nil {
		opts.Now = c.Now
	}
	s := New(opts,
		Token{Value: classic, User: "Octo-Cat", Scopes: []string{"read:packages"}, ExpiresAt: t0.Add(30 * 24 * time.Hour)},
		Token{Value: noPkg, User: "octo-cat", Scopes: []string{"repo"}, ExpiresAt: t0.Add(24 * time.Hour)},
		Token{Value: writer, User: "octo-cat", Scopes: []string{"write:packages"}, ExpiresAt: t0.Add(24 * time.Hour)},
		Token{Value: forever, User: "octo-cat", Scopes: []string{"read:packages", "repo"}},
		Token{Value: fine, User: "octo-cat", FineGrained: true, ExpiresAt: t0.Add(24 * time.Hour)},
	)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv, c
}

func get(t *testing.T, u string, hdr map[string]string) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp, body
}

func TestUser(t *testing.T) {
	_, srv, _ := newServer(t, Options{})
	cases := []struct {
		name       string
		auth       string
		status     int
		scopes     *string // nil: header absent
		expiration string
		login      string
	}{
		{"classic bearer", "Bearer " + classic, 200, ptr("read:packages"), "2026-02-01 03:04:05 UTC", "Octo-Cat"},
		{"classic token scheme", "token " + classic, 200, ptr("read:packages"), "2026-02-01 03:04:05 UTC", "Octo-Cat"},
		{"two scopes", "Bearer " + forever, 200, ptr("read:packages, repo"), "", "octo-cat"},
		{"fine-grained has no scopes header", "Bearer " + fine, 200, nil, "2026-01-03 03:04:05 UTC", "octo-cat"},
		{"unknown token", "Bearer ghp_unknown", 401, nil, "", ""},
		{"no auth", "", 401, nil, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hdr := map[string]string{}
			if c.auth != "" {
				hdr["Authorization"] = c.auth
			}
			resp, body := get(t, srv.URL+"/user", hdr)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d (%v)", resp.StatusCode, c.status, body)
			}
			got, present := resp.Header["X-Oauth-Scopes"]
			switch {
			case c.scopes == nil && present:
				t.Errorf("X-OAuth-Scopes present: %q", got)
			case c.scopes != nil && (!present || got[0] != *c.scopes):
				t.Errorf("X-OAuth-Scopes = %q, want %q", got, *c.scopes)
			}
			if e := resp.Header.Get("GitHub-Authentication-Token-Expiration"); e != c.expiration {
				t.Errorf("expiration header %q, want %q", e, c.expiration)
			}
			if c.status == 200 && body["login"] != c.login {
				t.Errorf("login %v, want %s", body["login"], c.login)
			}
			if c.status == 401 && body["message"] == nil {
				t.Errorf("401 without a message: %v", body)
			}
		})
	}
}

func TestUserExpiryAndRevocation(t *testing.T) {
	s, srv, clk := newServer(t, Options{})
	auth := map[string]string{"Authorization": "Bearer " + noPkg}
	if resp, _ := get(t, srv.URL+"/user", auth); resp.StatusCode != 200 {
		t.Fatalf("status %d before expiry", resp.StatusCode)
	}
	clk.Add(24 * time.Hour)
	if resp, body := get(t, srv.URL+"/user", auth); resp.StatusCode != 401 || body["message"] != "Bad credentials" {
		t.Fatalf("expired token: status %d %v", resp.StatusCode, body)
	}
	if !s.Revoke(classic) || s.Revoke("ghp_nothing") {
		t.Fatal("Revoke reported the wrong existence")
	}
	if resp, _ := get(t, srv.URL+"/user", map[string]string{"Authorization": "Bearer " + classic}); resp.StatusCode != 401 {
		t.Fatalf("revoked token: status %d", resp.StatusCode)
	}
}

func TestExpirationWithOffset(t *testing.T) {
	_, srv, _ := newServer(t, Options{ExpirationZone: time.FixedZone("CEST", 2*3600)})
	resp, _ := get(t, srv.URL+"/user", map[string]string{"Authorization": "Bearer " + classic})
	if e := resp.Header.Get("GitHub-Authentication-Token-Expiration"); e != "2026-02-01 05:04:05 +0200" {
		t.Fatalf("expiration header %q", e)
	}
}

func TestRegistryChallenge(t *testing.T) {
	_, srv, _ := newServer(t, Options{})
	resp, body := get(t, srv.URL+"/v2/", nil)
	host := strings.TrimPrefix(srv.URL, "http://")
	want := `Bearer realm="http://` + host + `/token",service="ghcr.io",scope="repository:user/image:pull"`
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != want {
		t.Fatalf("challenge: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	if errs, _ := body["errors"].([]any); len(errs) != 1 {
		t.Fatalf("body %v", body)
	}
}

func tokenURL(srv *httptest.Server, service string, scopes ...string) string {
	q := url.Values{"service": {service}}
	for _, s := range scopes {
		q.Add("scope", s)
	}
	return srv.URL + "/token?" + q.Encode()
}

func basic(user, pass string) map[string]string {
	req, _ := http.NewRequest(http.MethodGet, "http://x", nil)
	req.SetBasicAuth(user, pass)
	return map[string]string{"Authorization": req.Header.Get("Authorization")}
}

func TestRegistryToken(t *testing.T) {
	s, srv, _ := newServer(t, Options{})
	s.AddPackage(Package{Name: "public-org/tool", Public: true})
	s.AddPackage(Package{Name: "private-org/app", Readers: []string{"octo-cat"}})
	s.AddPackage(Package{Name: "private-org/secret"})
	cases := []struct {
		name    string
		auth    map[string]string
		service string
		scope   string
		status  int
		code    string
	}{
		{"own namespace", basic("octo-cat", classic), "ghcr.io", "repository:octo-cat/anything:pull", 200, ""},
		{"username case does not matter", basic("OCTO-CAT", classic), "ghcr.io", "repository:octo-cat/anything:pull", 200, ""},
		{"write implies read", basic("octo-cat", writer), "ghcr.io", "repository:octo-cat/anything:pull", 200, ""},
		{"granted reader", basic("octo-cat", classic), "ghcr.io", "repository:private-org/app:pull", 200, ""},
		{"public package with token", basic("octo-cat", noPkg), "ghcr.io", "repository:public-org/tool:pull", 200, ""},
		{"public package anonymous", nil, "ghcr.io", "repository:public-org/tool:pull", 200, ""},
		{"private package anonymous", nil, "ghcr.io", "repository:private-org/app:pull", 401, "UNAUTHORIZED"},
		{"not a reader", basic("octo-cat", classic), "ghcr.io", "repository:private-org/secret:pull", 403, "DENIED"},
		{"lacks read:packages", basic("octo-cat", noPkg), "ghcr.io", "repository:octo-cat/anything:pull", 403, "DENIED"},
		{"push needs write:packages", basic("octo-cat", classic), "ghcr.io", "repository:octo-cat/anything:pull,push", 403, "DENIED"},
		{"wrong password", basic("octo-cat", "ghp_wrong"), "ghcr.io", "repository:octo-cat/anything:pull", 403, "DENIED"},
		{"someone else's token", basic("other", classic), "ghcr.io", "repository:octo-cat/anything:pull", 403, "DENIED"},
		{"fine-grained refused", basic("octo-cat", fine), "ghcr.io", "repository:octo-cat/anything:pull", 403, "DENIED"},
		{"wrong service", basic("octo-cat", classic), "registry.docker.io", "repository:octo-cat/anything:pull", 400, "UNSUPPORTED"},
		{"bad scope", basic("octo-cat", classic), "ghcr.io", "registry:catalog:*", 400, "UNSUPPORTED"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := get(t, tokenURL(srv, c.service, c.scope), c.auth)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d (%v)", resp.StatusCode, c.status, body)
			}
			if c.status == 200 {
				tok, _ := body["token"].(string)
				if !strings.HasPrefix(tok, "ghcr_reg_") {
					t.Fatalf("no token in %v", body)
				}
				// The token opens /v2/.
				if r, _ := get(t, srv.URL+"/v2/", map[string]string{"Authorization": "Bearer " + tok}); r.StatusCode != 200 {
					t.Fatalf("/v2/ with the registry token: %d", r.StatusCode)
				}
				return
			}
			errs, _ := body["errors"].([]any)
			if len(errs) != 1 || errs[0].(map[string]any)["code"] != c.code {
				t.Fatalf("errors %v, want code %s", body, c.code)
			}
		})
	}
}

func TestRegistryRefusesExpiredAndRevoked(t *testing.T) {
	s, srv, clk := newServer(t, Options{})
	u := tokenURL(srv, "ghcr.io", "repository:octo-cat/x:pull")
	if r, _ := get(t, u, basic("octo-cat", writer)); r.StatusCode != 200 {
		t.Fatalf("before expiry: %d", r.StatusCode)
	}
	clk.Add(24 * time.Hour)
	if r, _ := get(t, u, basic("octo-cat", writer)); r.StatusCode != 403 {
		t.Fatalf("expired: %d", r.StatusCode)
	}
	s.Revoke(forever)
	if r, _ := get(t, u, basic("octo-cat", forever)); r.StatusCode != 403 {
		t.Fatalf("revoked: %d", r.StatusCode)
	}
}

func TestInjectAndCalls(t *testing.T) {
	s, srv, _ := newServer(t, Options{})
	s.Inject(http.MethodGet, "/user", http.StatusTooManyRequests, 1)
	s.Inject("", "/token", http.StatusServiceUnavailable, 2)
	auth := map[string]string{"Authorization": "Bearer " + classic}
	r, _ := get(t, srv.URL+"/user", auth)
	if r.StatusCode != 429 || r.Header.Get("Retry-After") != "1" {
		t.Fatalf("injected 429: %d %q", r.StatusCode, r.Header.Get("Retry-After"))
	}
	if r, _ := get(t, srv.URL+"/user", auth); r.StatusCode != 200 {
		t.Fatalf("after the fault: %d", r.StatusCode)
	}
	u := tokenURL(srv, "ghcr.io", "repository:octo-cat/x:pull")
	for i, want := range []int{503, 503, 200} {
		if r, _ := get(t, u, basic("octo-cat", classic)); r.StatusCode != want {
			t.Fatalf("token call %d: %d, want %d", i, r.StatusCode, want)
		}
	}
	calls := s.Calls()
	if len(calls) != 5 || calls[0].Path != "/user" || calls[0].Auth != "Bearer" || calls[0].Status != 429 || calls[4].Auth != "Basic" || calls[4].Status != 200 {
		t.Fatalf("calls %+v", calls)
	}
	if n := len(s.RegistryTokens()); n != 1 {
		t.Fatalf("%d registry tokens, want 1", n)
	}
	s.ResetCalls()
	if len(s.Calls()) != 0 {
		t.Fatal("ResetCalls kept calls")
	}
}

func TestUserNeedsUserAgent(t *testing.T) {
	_, srv, _ := newServer(t, Options{})
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/user", nil)
	req.Header.Set("Authorization", "Bearer "+classic)
	req.Header.Set("User-Agent", "")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("no User-Agent: %d", resp.StatusCode)
	}
}

func TestTokensCopies(t *testing.T) {
	s, _, _ := newServer(t, Options{})
	toks := s.Tokens()
	toks[0].Scopes[0] = "changed"
	if s.Tokens()[0].Scopes[0] != "read:packages" || len(toks) != 5 {
		t.Fatal("Tokens does not return copies in insertion order")
	}
	s.AddToken(Token{Value: classic, User: "Octo-Cat"})
	if len(s.Tokens()) != 5 {
		t.Fatal("replacing a token added one")
	}
}

func ptr(s string) *string { return &s }
