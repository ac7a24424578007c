package dockerhubemu

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/totp"
)

// These tests speak plain net/http to the emulator, so it is checked independently of the
// client code in internal/upstream.

const (
	alice     = "alice"
	alicePass = "alice-password-1"
	bob       = "bob" // has 2FA
	bobPass   = "bob-password-2"
	bobTOTP   = "JBSWY3DPEHPK3PXP"
	carol     = "carol" // owns nothing
	carolPass = "carol-password-3"
	org       = "acme"
)

// clock is the emulator's injectable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type hub struct {
	t     *testing.T
	emu   *Server
	srv   *httptest.Server
	clock *clock
}

func newHub(t *testing.T, tweak func(*Options)) *hub {
	t.Helper()
	c := &clock{t: time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)}
	opts := Options{Now: c.Now}
	if tweak != nil {
		tweak(&opts)
	}
	emu := New(opts,
		Account{Username: alice, Password: alicePass, Orgs: []string{org}},
		Account{Username: bob, Password: bobPass, TOTPSecret: bobTOTP},
		Account{Username: carol, Password: carolPass},
	)
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	return &hub{t: t, emu: emu, srv: srv, clock: c}
}

// reply is a decoded answer.
type reply struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    string
}

func (r reply) str(key string) string { s, _ := r.Body[key].(string); return s }

// do sends one request. auth is a whole Authorization header value, or empty.
func (h *hub) do(method, path, auth string, body any) reply {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, h.srv.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &r.Body); err != nil {
			h.t.Fatalf("%s %s answered %d with non-JSON %q", method, path, resp.StatusCode, raw)
		}
	}
	return r
}

func (h *hub) expect(r reply, status int) reply {
	h.t.Helper()
	if r.Status != status {
		h.t.Fatalf("status %d, want %d: %s", r.Status, status, r.Raw)
	}
	return r
}

// login returns a password session token for a user without 2FA.
func (h *hub) login(user, pass string) string {
	h.t.Helper()
	r := h.expect(h.do("POST", "/v2/users/login", "", map[string]string{"username": user, "password": pass}), 200)
	if r.str("token") == "" {
		h.t.Fatalf("login answered no token: %s", r.Raw)
	}
	return "Bearer " + r.str("token")
}

func (h *hub) createPAT(sess, label string, extra map[string]any) reply {
	h.t.Helper()
	body := map[string]any{"token_label": label, "scopes": []string{"repo:public_read"}}
	for k, v := range extra {
		body[k] = v
	}
	return h.do("POST", "/v2/access-tokens", sess, body)
}

func basic(user, pass string) string {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(user, pass)
	return req.Header.Get("Authorization")
}

const pullScope = "repository:library/alpine:pull"

func (h *hub) registryToken(user, pass string) reply {
	h.t.Helper()
	q := url.Values{"service": {RegistryService}, "scope": {pullScope}}
	auth := ""
	if user != "" {
		auth = basic(user, pass)
	}
	return h.do("GET", "/token?"+q.Encode(), auth, nil)
}

func TestLogin(t *testing.T) {
	h := newHub(t, nil)
	t.Run("ok", func(t *testing.T) {
		h.login(alice, alicePass)
	})
	t.Run("wrong password", func(t *testing.T) {
		r := h.expect(h.do("POST", "/v2/users/login", "", map[string]string{"username": alice, "password": "nope"}), 401)
		if _, has := r.Body["login_2fa_token"]; has {
			t.Errorf("a wrong password got a 2FA token: %s", r.Raw)
		}
		if strings.Contains(r.Raw, "nope") {
			t.Errorf("the answer echoes the password")
		}
	})
	t.Run("unknown user", func(t *testing.T) {
		r := h.expect(h.do("POST", "/v2/users/login", "", map[string]string{"username": "mallory", "password": "x"}), 401)
		if _, has := r.Body["login_2fa_token"]; has {
			t.Errorf("an unknown user got a 2FA token")
		}
	})
	t.Run("missing fields", func(t *testing.T) {
		h.expect(h.do("POST", "/v2/users/login", "", map[string]string{"password": "x"}), 400)
	})
	t.Run("2FA account", func(t *testing.T) {
		r := h.expect(h.do("POST", "/v2/users/login", "", map[string]string{"username": bob, "password": bobPass}), 401)
		tfa := r.str("login_2fa_token")
		if tfa == "" || r.str("token") != "" {
			t.Fatalf("2FA challenge = %s, want a login_2fa_token and no session", r.Raw)
		}
		// A wrong code is refused and the challenge stays usable.
		good, _ := totp.Code(bobTOTP, h.clock.Now())
		bad := "000000"
		for _, skew := range []time.Duration{-30 * time.Second, 0, 30 * time.Second} {
			if c, _ := totp.Code(bobTOTP, h.clock.Now().Add(skew)); c == bad {
				bad = "111111"
			}
		}
		h.expect(h.do("POST", "/v2/users/2fa-login", "", map[string]string{"login_2fa_token": tfa, "code": bad}), 401)
		r = h.expect(h.do("POST", "/v2/users/2fa-login", "", map[string]string{"login_2fa_token": tfa, "code": good}), 200)
		sess := "Bearer " + r.str("token")
		if r.str("token") == "" {
			t.Fatalf("2fa-login gave no session: %s", r.Raw)
		}
		h.expect(h.do("GET", "/v2/access-tokens", sess, nil), 200)
		// The challenge is single-use.
		h.expect(h.do("POST", "/v2/users/2fa-login", "", map[string]string{"login_2fa_token": tfa, "code": good}), 401)
	})
	t.Run("2FA code from the previous step", func(t *testing.T) {
		h.clock.Advance(time.Minute) // past the step the subtest above used
		tfa := h.expect(h.do("POST", "/v2/users/login", "", map[string]string{"username": bob, "password": bobPass}), 401).str("login_2fa_token")
		prev, _ := totp.Code(bobTOTP, h.clock.Now().Add(-30*time.Second))
		h.expect(h.do("POST", "/v2/users/2fa-login", "", map[string]string{"login_2fa_token": tfa, "code": prev}), 200)
	})
	t.Run("2FA code from long ago", func(t *testing.T) {
		tfa := h.expect(h.do("POST", "/v2/users/login", "", map[string]string{"username": bob, "password": bobPass}), 401).str("login_2fa_token")
		old, _ := totp.Code(bobTOTP, h.clock.Now().Add(-10*time.Minute))
		if now, _ := totp.Code(bobTOTP, h.clock.Now()); now == old {
			t.Skip("codes coincide")
		}
		h.expect(h.do("POST", "/v2/users/2fa-login", "", map[string]string{"login_2fa_token": tfa, "code": old}), 401)
	})
	t.Run("unknown 2FA token", func(t *testing.T) {
		code, _ := totp.Code(bobTOTP, h.clock.Now())
		h.expect(h.do("POST", "/v2/users/2fa-login", "", map[string]string{"login_2fa_token": "2fa_forged", "code": code}), 401)
	})
	t.Run("auth/token", func(t *testing.T) {
		r := h.expect(h.do("POST", "/v2/auth/token", "", map[string]string{"identifier": alice, "secret": alicePass}), 200)
		h.expect(h.do("GET", "/v2/access-tokens", "Bearer "+r.str("access_token"), nil), 200)
		h.expect(h.do("POST", "/v2/auth/token", "", map[string]string{"identifier": alice, "secret": "nope"}), 401)
		h.expect(h.do("POST", "/v2/auth/token", "", map[string]string{"identifier": bob, "secret": bobPass}), 401)
		// Missing fields get the documented ValueError body.
		r = h.expect(h.do("POST", "/v2/auth/token", "", map[string]string{"identifier": alice}), 400)
		if fields, _ := r.Body["fields"].(map[string]any); fields["secret"] == nil || r.str("text") == "" {
			t.Errorf("missing secret answered %s", r.Raw)
		}
	})
}

// TestTOTPCodeAcceptedOnce: RFC 6238 §5.2 — a verifier refuses a code already used, so a
// second login in the same 30 s step is refused, and the next step's code is accepted.
func TestTOTPCodeAcceptedOnce(t *testing.T) {
	h := newHub(t, nil)
	// Start just after a step boundary, so the skew window is easy to reason about.
	h.clock.Advance(time.Duration(30-h.clock.Now().Unix()%30) * time.Second)
	challenge := func() string {
		return h.expect(h.do("POST", "/v2/users/login", "", map[string]string{"username": bob, "password": bobPass}), 401).str("login_2fa_token")
	}
	code, _ := totp.Code(bobTOTP, h.clock.Now())
	h.expect(h.do("POST", "/v2/users/2fa-login", "", map[string]string{"login_2fa_token": challenge(), "code": code}), 200)
	h.clock.Advance(10 * time.Second)
	r := h.expect(h.do("POST", "/v2/users/2fa-login", "", map[string]string{"login_2fa_token": challenge(), "code": code}), 401)
	if r.str("detail") != "Incorrect authentication code" {
		t.Errorf("reused code answered %s, want the wrong-code answer", r.Raw)
	}
	// An older step's code is refused as well once a later one was used.
	prev, _ := totp.Code(bobTOTP, h.clock.Now().Add(-30*time.Second))
	h.expect(h.do("POST", "/v2/users/2fa-login", "", map[string]string{"login_2fa_token": challenge(), "code": prev}), 401)
	h.clock.Advance(20 * time.Second) // the next step
	next, _ := totp.Code(bobTOTP, h.clock.Now())
	h.expect(h.do("POST", "/v2/users/2fa-login", "", map[string]string{"login_2fa_token": challenge(), "code": next}), 200)
}

// TestSSOEnforced: since 2024-09-16 an organization that enforces SSO refuses its members'
// passwords on both session endpoints; a personal access token starts a session, which the
// token endpoints refuse (docker/hub-feedback #2438, #2478, #2514).
func TestSSOEnforced(t *testing.T) {
	h := newHub(t, nil)
	sess := h.login(alice, alicePass)
	pat := h.expect(h.createPAT(sess, "before-sso", nil), 201).str("token")
	h.emu.AddAccount(Account{Username: alice, Password: alicePass, Orgs: []string{org}, SSOEnforced: true})
	for _, r := range []reply{
		h.do("POST", "/v2/users/login", "", map[string]string{"username": alice, "password": alicePass}),
		h.do("POST", "/v2/auth/token", "", map[string]string{"identifier": alice, "secret": alicePass}),
	} {
		h.expect(r, 401)
		if r.str("detail") != MsgSSOEnforced || r.str("token") != "" || r.str("login_2fa_token") != "" {
			t.Errorf("SSO refusal = %s", r.Raw)
		}
	}
	// The registry refuses the password too, and accepts the PAT.
	h.expect(h.registryToken(alice, alicePass), 401)
	h.expect(h.registryToken(alice, pat), 200)
	patSess := "Bearer " + h.expect(h.do("POST", "/v2/auth/token", "", map[string]string{"identifier": alice, "secret": pat}), 200).str("access_token")
	for _, path := range []string{"/v2/access-tokens", "/v2/orgs/" + org + "/access-tokens"} {
		r := h.expect(h.do("POST", path, patSess, orgTokenBody("x")), 403)
		if r.str("message") != MsgPATSession {
			t.Errorf("POST %s with a PAT session = %s", path, r.Raw)
		}
	}
	// A wrong password is still a wrong password, not an SSO refusal.
	if r := h.expect(h.do("POST", "/v2/auth/token", "", map[string]string{"identifier": alice, "secret": "nope"}), 401); r.str("detail") == MsgSSOEnforced {
		t.Errorf("a wrong password was answered as SSO: %s", r.Raw)
	}
}

// TestOrgAccessTokenSession: /v2/auth/token takes an organization access token with the
// organization as identifier; that session cannot manage tokens.
func TestOrgAccessTokenSession(t *testing.T) {
	h := newHub(t, nil)
	owner := h.login(alice, alicePass)
	oat := h.expect(h.do("POST", "/v2/orgs/"+org+"/access-tokens", owner, orgTokenBody("ci")), 201).str("token")
	h.expect(h.do("POST", "/v2/auth/token", "", map[string]string{"identifier": alice, "secret": oat}), 401)
	sess := "Bearer " + h.expect(h.do("POST", "/v2/auth/token", "", map[string]string{"identifier": org, "secret": oat}), 200).str("access_token")
	r := h.expect(h.do("POST", "/v2/orgs/"+org+"/access-tokens", sess, orgTokenBody("y")), 403)
	if r.str("message") != MsgOATSession {
		t.Errorf("OAT session = %s", r.Raw)
	}
}

func TestSessionFromPATRefused(t *testing.T) {
	h := newHub(t, nil)
	sess := h.login(alice, alicePass)
	pat := h.expect(h.createPAT(sess, "ci", nil), 201).str("token")
	if !strings.HasPrefix(pat, "dckr_pat_") {
		t.Fatalf("PAT = %q, want dckr_pat_…", pat)
	}
	for _, how := range []struct {
		name string
		get  func() string
	}{
		{"users/login", func() string {
			return "Bearer " + h.expect(h.do("POST", "/v2/users/login", "", map[string]string{"username": alice, "password": pat}), 200).str("token")
		}},
		{"auth/token", func() string {
			return "Bearer " + h.expect(h.do("POST", "/v2/auth/token", "", map[string]string{"identifier": alice, "secret": pat}), 200).str("access_token")
		}},
	} {
		t.Run(how.name, func(t *testing.T) {
			patSess := how.get()
			for _, req := range []struct{ method, path string }{
				{"GET", "/v2/access-tokens"},
				{"POST", "/v2/access-tokens"},
				{"GET", "/v2/orgs/" + org + "/access-tokens"},
			} {
				r := h.expect(h.do(req.method, req.path, patSess, map[string]any{"token_label": "x", "scopes": []string{"repo:read"}}), 403)
				// The body docker/hub-feedback #2438 and #2478 report: {"message", "errinfo"}.
				if r.str("message") != MsgPATSession || r.Body["errinfo"] == nil {
					t.Errorf("%s %s: body = %s", req.method, req.path, r.Raw)
				}
			}
		})
	}
}

func TestPATCreate(t *testing.T) {
	h := newHub(t, nil)
	sess := h.login(alice, alicePass)
	future := h.clock.Now().Add(24 * time.Hour).Format(time.RFC3339)
	tests := []struct {
		name   string
		label  string
		extra  map[string]any
		status int
	}{
		{"minimal", "a", nil, 201},
		{"label of 100", strings.Repeat("l", 100), nil, 201},
		{"expires in the future", "exp", map[string]any{"expires_at": future}, 201},
		{"every scope", "scopes", map[string]any{"scopes": []string{"repo:public_read", "repo:read", "repo:write", "repo:admin"}}, 201},
		{"empty label", "", nil, 400},
		{"label of 101", strings.Repeat("l", 101), nil, 400},
		{"unknown scope", "bad", map[string]any{"scopes": []string{"repo:everything"}}, 400},
		{"org scope on a PAT", "bad", map[string]any{"scopes": []string{"scope-image-pull"}}, 400},
		{"no scopes", "bad", map[string]any{"scopes": []string{}}, 400},
		{"expires in the past", "bad", map[string]any{"expires_at": h.clock.Now().Add(-time.Hour).Format(time.RFC3339)}, 400},
		{"expires now", "bad", map[string]any{"expires_at": h.clock.Now().Format(time.RFC3339)}, 400},
		{"expires garbage", "bad", map[string]any{"expires_at": "next week"}, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.expect(h.createPAT(sess, tt.label, tt.extra), tt.status)
			if tt.status != 201 {
				// The documented 400 body: ValueError {"fields": {name: [problems]}, "text"}.
				fields, _ := r.Body["fields"].(map[string]any)
				if r.str("text") == "" || len(fields) != 1 {
					t.Errorf("a refusal that is not a ValueError naming one field: %s", r.Raw)
				}
				return
			}
			if r.str("uuid") == "" || r.str("token_label") != tt.label || r.Body["is_active"] != true || !strings.HasPrefix(r.str("token"), "dckr_pat_") {
				t.Errorf("created = %s", r.Raw)
			}
			if tt.extra["expires_at"] != nil && r.str("expires_at") != future {
				t.Errorf("expires_at = %q, want %q", r.str("expires_at"), future)
			}
			if tt.extra["expires_at"] == nil && r.Body["expires_at"] != nil {
				t.Errorf("expires_at = %v, want null", r.Body["expires_at"])
			}
		})
	}
	t.Run("bad JSON", func(t *testing.T) {
		req, _ := http.NewRequest("POST", h.srv.URL+"/v2/access-tokens", strings.NewReader("{"))
		req.Header.Set("Authorization", sess)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("status %d, want 400", resp.StatusCode)
		}
	})
	t.Run("no session", func(t *testing.T) {
		h.expect(h.createPAT("", "x", nil), 401)
		h.expect(h.createPAT("Bearer jwt_forged", "x", nil), 401)
		h.expect(h.createPAT(basic(alice, alicePass), "x", nil), 401)
	})
}

func TestPATLifecycle(t *testing.T) {
	h := newHub(t, nil)
	sess := h.login(alice, alicePass)
	created := h.expect(h.createPAT(sess, "life", nil), 201)
	id := created.str("uuid")

	got := h.expect(h.do("GET", "/v2/access-tokens/"+id, sess, nil), 200)
	if got.str("token_label") != "life" || got.str("uuid") != id {
		t.Errorf("get = %s", got.Raw)
	}
	if _, shown := got.Body["token"]; shown {
		t.Errorf("the secret is shown again after creation: %s", got.Raw)
	}

	// Someone else cannot see it.
	other := h.login(carol, carolPass)
	h.expect(h.do("GET", "/v2/access-tokens/"+id, other, nil), 404)
	h.expect(h.do("DELETE", "/v2/access-tokens/"+id, other, nil), 404)

	r := h.expect(h.do("PATCH", "/v2/access-tokens/"+id, sess, map[string]any{"is_active": false}), 200)
	if r.Body["is_active"] != false {
		t.Errorf("patch = %s", r.Raw)
	}
	if h.expect(h.do("GET", "/v2/access-tokens/"+id, sess, nil), 200).Body["is_active"] != false {
		t.Errorf("patch did not stick")
	}
	r = h.expect(h.do("PATCH", "/v2/access-tokens/"+id, sess, map[string]any{"is_active": true}), 200)
	if r.Body["is_active"] != true {
		t.Errorf("reactivate = %s", r.Raw)
	}
	h.expect(h.do("PUT", "/v2/access-tokens/"+id, sess, nil), 405)

	del := h.do("DELETE", "/v2/access-tokens/"+id, sess, nil)
	h.expect(del, 204)
	if del.Raw != "" {
		t.Errorf("204 with a body %q", del.Raw)
	}
	h.expect(h.do("GET", "/v2/access-tokens/"+id, sess, nil), 404)
	h.expect(h.do("DELETE", "/v2/access-tokens/"+id, sess, nil), 404)
	if n := len(h.emu.Tokens()); n != 0 {
		t.Errorf("%d tokens left after delete", n)
	}
	// Issued still knows the deleted token's secret, for leak scans.
	if issued := h.emu.Issued(); len(issued) != 1 || issued[0] != created.str("token") {
		t.Errorf("Issued has %d secrets, want the deleted token's", len(issued))
	}
}

func TestPATListPagination(t *testing.T) {
	h := newHub(t, nil)
	sess := h.login(alice, alicePass)
	const n = 25
	for i := range n {
		h.expect(h.createPAT(sess, fmt.Sprintf("tok-%02d", i), nil), 201)
		h.clock.Advance(time.Second) // distinct creation times
	}
	// carol's token must not show up in alice's list.
	h.expect(h.createPAT(h.login(carol, carolPass), "carol-tok", nil), 201)
	h.expect(h.do("PATCH", "/v2/access-tokens/"+h.emu.Tokens()[0].ID, sess, map[string]any{"is_active": false}), 200)

	var labels []string
	next := "/v2/access-tokens?page_size=10"
	pages := 0
	for next != "" {
		r := h.expect(h.do("GET", next, sess, nil), 200)
		pages++
		if r.Body["count"] != float64(n) || r.Body["active_count"] != float64(n-1) {
			t.Errorf("page %d: count %v active_count %v", pages, r.Body["count"], r.Body["active_count"])
		}
		results, _ := r.Body["results"].([]any)
		for _, it := range results {
			m := it.(map[string]any)
			labels = append(labels, m["token_label"].(string))
			if _, shown := m["token"]; shown {
				t.Errorf("list shows a secret")
			}
		}
		next = ""
		if s, ok := r.Body["next"].(string); ok {
			u, err := url.Parse(s)
			if err != nil || u.Host != strings.TrimPrefix(h.srv.URL, "http://") {
				t.Fatalf("next = %q is not on the emulator", s)
			}
			if u.Query().Get("page") != strconv.Itoa(pages+1) || u.Query().Get("page_size") != "10" {
				t.Errorf("next = %q", s)
			}
			next = u.RequestURI()
		}
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
	}
	if pages != 3 || len(labels) != n {
		t.Fatalf("%d pages, %d tokens; want 3 pages of 25", pages, len(labels))
	}
	// Newest first, each once.
	for i, l := range labels {
		if want := fmt.Sprintf("tok-%02d", n-1-i); l != want {
			t.Errorf("labels[%d] = %q, want %q", i, l, want)
		}
	}

	tests := []struct {
		query     string
		wantCount int
		wantNext  bool
	}{
		{"", 10, true}, // default page size
		{"?page=3&page_size=10", 5, false},
		{"?page=9&page_size=10", 0, false},
		{"?page_size=100", 25, false},
		{"?page_size=1000", 25, false}, // capped at 100
		{"?page_size=0", 1, true},
		{"?page=0&page_size=5", 5, true},
	}
	for _, tt := range tests {
		r := h.expect(h.do("GET", "/v2/access-tokens"+tt.query, sess, nil), 200)
		results, _ := r.Body["results"].([]any)
		_, hasNext := r.Body["next"].(string)
		if len(results) != tt.wantCount || hasNext != tt.wantNext {
			t.Errorf("%s: %d results, next %v; want %d, %v", tt.query, len(results), hasNext, tt.wantCount, tt.wantNext)
		}
		if r.Body["previous"] != nil {
			t.Errorf("%s: previous = %v", tt.query, r.Body["previous"])
		}
	}
}

func orgTokenBody(label string) map[string]any {
	return map[string]any{
		"label": label, "description": "test",
		"resources":  []map[string]any{{"type": "TYPE_REPO", "path": "*/*/public", "scopes": []string{"scope-image-pull"}}},
		"expires_at": time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC).Format(time.RFC3339),
	}
}

func TestOrgTokens(t *testing.T) {
	h := newHub(t, func(o *Options) { o.OrgTokenCap = 2 })
	owner := h.login(alice, alicePass)
	base := "/v2/orgs/" + org + "/access-tokens"

	r := h.expect(h.do("POST", base, owner, orgTokenBody("org-1")), 201)
	id1 := r.str("id")
	if id1 == "" || r.str("label") != "org-1" || !strings.HasPrefix(r.str("token"), "dckr_oat_") {
		t.Fatalf("created = %s", r.Raw)
	}
	id2 := h.expect(h.do("POST", base, owner, orgTokenBody("org-2")), 201).str("id")

	// The cap counts inactive tokens too.
	h.expect(h.do("PATCH", base+"/"+id2, owner, map[string]any{"is_active": false}), 200)
	r = h.expect(h.do("POST", base, owner, orgTokenBody("org-3")), 400)
	if !strings.Contains(r.str("text"), "limit") {
		t.Errorf("cap refusal = %s", r.Raw)
	}
	h.expect(h.do("DELETE", base+"/"+id2, owner, nil), 204)
	h.expect(h.do("POST", base, owner, orgTokenBody("org-3")), 201)
	// The peak counts tokens held at once: org-3 replaced org-2, a refused one never counted.
	if p := h.emu.PeakTokens(org); p != 2 {
		t.Errorf("PeakTokens(%s) = %d, want 2", org, p)
	}

	list := h.expect(h.do("GET", base, owner, nil), 200)
	if list.Body["total"] != float64(2) {
		t.Errorf("list total = %v: %s", list.Body["total"], list.Raw)
	}
	h.expect(h.do("GET", base+"/"+id1, owner, nil), 200)

	// An org token is not a personal one and vice versa.
	h.expect(h.do("GET", "/v2/access-tokens/"+id1, owner, nil), 404)
	pat := h.expect(h.createPAT(owner, "personal", nil), 201).str("uuid")
	h.expect(h.do("GET", base+"/"+pat, owner, nil), 404)
	if l := h.expect(h.do("GET", "/v2/access-tokens", owner, nil), 200); l.Body["count"] != float64(1) {
		t.Errorf("the personal list counts org tokens: %s", l.Raw)
	}

	// Not an owner.
	other := h.login(carol, carolPass)
	for _, req := range []struct{ method, path string }{{"POST", base}, {"GET", base}, {"GET", base + "/" + id1}, {"DELETE", base + "/" + id1}} {
		r := h.expect(h.do(req.method, req.path, other, orgTokenBody("x")), 403)
		if !strings.Contains(r.str("detail"), "not an owner") {
			t.Errorf("%s %s: %s", req.method, req.path, r.Raw)
		}
	}

	// Bad bodies.
	noRes := orgTokenBody("x")
	delete(noRes, "resources")
	h.expect(h.do("POST", base, owner, noRes), 400)
	badType := orgTokenBody("x")
	badType["resources"] = []map[string]any{{"type": "TYPE_EVERYTHING", "path": "*", "scopes": []string{"scope-image-pull"}}}
	h.expect(h.do("POST", base, owner, badType), 400)
	h.expect(h.do("GET", "/v2/orgs/"+org+"/members", owner, nil), 404)
}

func TestOrgTokenDefaultCap(t *testing.T) {
	h := newHub(t, nil)
	owner := h.login(alice, alicePass)
	base := "/v2/orgs/" + org + "/access-tokens"
	for i := range 10 {
		h.expect(h.do("POST", base, owner, orgTokenBody(fmt.Sprintf("t%d", i))), 201)
	}
	h.expect(h.do("POST", base, owner, orgTokenBody("t10")), 400)
}

// TestOrgTokenCapCountsExpired: Docker's docs say expired organization access tokens count
// towards the cap until deleted.
func TestOrgTokenCapCountsExpired(t *testing.T) {
	h := newHub(t, func(o *Options) { o.OrgTokenCap = 2 })
	owner := h.login(alice, alicePass)
	base := "/v2/orgs/" + org + "/access-tokens"
	soon := orgTokenBody("soon")
	soon["expires_at"] = h.clock.Now().Add(time.Hour).Format(time.RFC3339)
	id := h.expect(h.do("POST", base, owner, soon), 201).str("id")
	h.expect(h.do("POST", base, owner, orgTokenBody("keep")), 201)
	h.clock.Advance(2 * time.Hour)
	h.expect(h.do("POST", base, owner, orgTokenBody("new")), 400)
	h.expect(h.do("DELETE", base+"/"+id, owner, nil), 204)
	h.expect(h.do("POST", base, owner, orgTokenBody("new")), 201)
}

var challengeRE = regexp.MustCompile(`^Bearer realm="([^"]+)",service="([^"]+)"$`)

func TestRegistryChallenge(t *testing.T) {
	h := newHub(t, nil)
	for _, path := range []string{"/v2/", "/v2"} {
		r := h.expect(h.do("GET", path, "", nil), 401)
		m := challengeRE.FindStringSubmatch(r.Header.Get("WWW-Authenticate"))
		if m == nil {
			t.Fatalf("WWW-Authenticate = %q", r.Header.Get("WWW-Authenticate"))
		}
		if m[1] != h.srv.URL+"/token" || m[2] != RegistryService {
			t.Errorf("realm %q service %q; want %s/token and %s", m[1], m[2], h.srv.URL, RegistryService)
		}
		errs, _ := r.Body["errors"].([]any)
		if len(errs) != 1 || errs[0].(map[string]any)["code"] != "UNAUTHORIZED" {
			t.Errorf("challenge body = %s", r.Raw)
		}
	}
}

func TestRegistryToken(t *testing.T) {
	h := newHub(t, nil)
	sess := h.login(alice, alicePass)
	inAnHour := h.clock.Now().Add(time.Hour).Format(time.RFC3339)
	mint := func(label string) (id, secret string) {
		r := h.expect(h.createPAT(sess, label, map[string]any{"expires_at": inAnHour}), 201)
		return r.str("uuid"), r.str("token")
	}

	t.Run("active token", func(t *testing.T) {
		_, secret := mint("active")
		r := h.expect(h.registryToken(alice, secret), 200)
		tok := r.str("token")
		if tok == "" || r.str("access_token") != tok || r.Body["expires_in"] != float64(300) {
			t.Fatalf("token answer = %s", r.Raw)
		}
		h.expect(h.do("GET", "/v2/", "Bearer "+tok, nil), 200)
		h.expect(h.do("GET", "/v2/", "Bearer reg_forged", nil), 401)
		// A different user name with the same secret is refused.
		h.expect(h.registryToken(carol, secret), 401)
	})
	t.Run("deleted", func(t *testing.T) {
		id, secret := mint("deleted")
		h.expect(h.registryToken(alice, secret), 200)
		h.expect(h.do("DELETE", "/v2/access-tokens/"+id, sess, nil), 204)
		h.expect(h.registryToken(alice, secret), 401)
	})
	t.Run("deactivated", func(t *testing.T) {
		id, secret := mint("deactivated")
		h.expect(h.do("PATCH", "/v2/access-tokens/"+id, sess, map[string]any{"is_active": false}), 200)
		h.expect(h.registryToken(alice, secret), 401)
		h.expect(h.do("PATCH", "/v2/access-tokens/"+id, sess, map[string]any{"is_active": true}), 200)
		h.expect(h.registryToken(alice, secret), 200)
	})
	t.Run("password and 2FA password", func(t *testing.T) {
		h.expect(h.registryToken(alice, alicePass), 200)
		h.expect(h.registryToken(alice, "wrong"), 401)
		// An account with 2FA cannot log in to the registry with its password.
		h.expect(h.registryToken(bob, bobPass), 401)
	})
	t.Run("org token logs in as the org", func(t *testing.T) {
		secret := h.expect(h.do("POST", "/v2/orgs/"+org+"/access-tokens", sess, orgTokenBody("org")), 201).str("token")
		h.expect(h.registryToken(org, secret), 200)
		h.expect(h.registryToken(alice, secret), 401)
	})
	t.Run("anonymous", func(t *testing.T) {
		h.expect(h.registryToken("", ""), 200)
	})
	t.Run("bad service or scope", func(t *testing.T) {
		_, secret := mint("params")
		q := url.Values{"service": {"other"}, "scope": {pullScope}}
		h.expect(h.do("GET", "/token?"+q.Encode(), basic(alice, secret), nil), 400)
		h.expect(h.do("GET", "/token?scope="+url.QueryEscape(pullScope), basic(alice, secret), nil), 400)
		for _, scope := range []string{"repository:library/alpine:push", "registry:catalog:*", "library/alpine"} {
			q := url.Values{"service": {RegistryService}, "scope": {scope}}
			h.expect(h.do("GET", "/token?"+q.Encode(), basic(alice, secret), nil), 400)
		}
		q = url.Values{"service": {RegistryService}, "scope": {"repository:library/alpine:pull,push"}}
		h.expect(h.do("GET", "/token?"+q.Encode(), basic(alice, secret), nil), 200)
	})
	t.Run("expiry", func(t *testing.T) {
		_, secret := mint("expiring")
		regTok := h.expect(h.registryToken(alice, secret), 200).str("token")
		h.clock.Advance(6 * time.Minute) // past the 300 s pull token
		h.expect(h.do("GET", "/v2/", "Bearer "+regTok, nil), 401)
		h.expect(h.registryToken(alice, secret), 200)
		h.clock.Advance(time.Hour) // past the access token's expires_at
		h.expect(h.registryToken(alice, secret), 401)
		// An expired PAT cannot start a Hub session either.
		h.expect(h.do("POST", "/v2/users/login", "", map[string]string{"username": alice, "password": secret}), 401)
	})
}

func TestRateLimit(t *testing.T) {
	h := newHub(t, func(o *Options) {
		o.RateLimit.Requests = 2
		o.RateLimit.Window = time.Minute
	})
	sess := h.login(alice, alicePass)                          // 1
	h.expect(h.do("GET", "/v2/access-tokens", sess, nil), 200) // 2
	h.clock.Advance(20 * time.Second)
	r := h.expect(h.do("GET", "/v2/access-tokens", sess, nil), 429)
	if got := r.Header.Get("Retry-After"); got != "40" {
		t.Errorf("Retry-After = %q, want 40", got)
	}
	wantReset := h.clock.Now().Add(40 * time.Second).Unix()
	if got := r.Header.Get("X-RateLimit-Reset"); got != strconv.FormatInt(wantReset, 10) {
		t.Errorf("X-RateLimit-Reset = %q, want %d", got, wantReset)
	}
	// The Hub API reference: a 429 carries X-Retry-After, the Unix time to call again.
	if got := r.Header.Get("X-Retry-After"); got != strconv.FormatInt(wantReset, 10) {
		t.Errorf("X-Retry-After = %q, want %d", got, wantReset)
	}
	if r.str("detail") == "" {
		t.Errorf("429 without a detail: %s", r.Raw)
	}
	// Logins count too; the registry does not.
	h.expect(h.do("POST", "/v2/users/login", "", map[string]string{"username": alice, "password": alicePass}), 429)
	h.expect(h.do("GET", "/v2/", "", nil), 401)
	h.expect(h.registryToken(alice, alicePass), 200)

	h.clock.Advance(40 * time.Second) // the window has passed
	h.expect(h.do("GET", "/v2/access-tokens", sess, nil), 200)
}

func TestRetryAfterAtLeastOneSecond(t *testing.T) {
	h := newHub(t, func(o *Options) {
		o.RateLimit.Requests = 1
		o.RateLimit.Window = time.Minute
	})
	sess := h.login(alice, alicePass)
	h.clock.Advance(time.Minute - 100*time.Millisecond)
	r := h.expect(h.do("GET", "/v2/access-tokens", sess, nil), 429)
	if got := r.Header.Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After = %q, want 1", got)
	}
}

func TestInject(t *testing.T) {
	h := newHub(t, nil)
	sess := h.login(alice, alicePass)
	h.emu.Inject("POST", "/v2/access-tokens", 503, 2)
	// Other methods and paths are untouched.
	h.expect(h.do("GET", "/v2/access-tokens", sess, nil), 200)
	for range 2 {
		r := h.expect(h.createPAT(sess, "x", nil), 503)
		if r.str("detail") != "injected failure" || r.Header.Get("Retry-After") != "" {
			t.Errorf("injected answer = %s %v", r.Raw, r.Header)
		}
	}
	h.expect(h.createPAT(sess, "x", nil), 201)

	h.emu.Inject("", "/token", 500, 1)
	h.expect(h.registryToken(alice, alicePass), 500)
	h.expect(h.registryToken(alice, alicePass), 200)

	// Injected faults come before the rate limit and before authentication; without
	// FaultRetryAfter an injected 429 carries no hint.
	h.emu.Inject("", "/v2/users/login", 429, 1)
	r := h.expect(h.do("POST", "/v2/users/login", "", map[string]string{"username": "nobody"}), 429)
	if r.Header.Get("Retry-After") != "" || r.Header.Get("X-Retry-After") != "" {
		t.Errorf("injected 429 hints = %v", r.Header)
	}
}

// TestInjected429Hints: with FaultRetryAfter an injected 429 carries both hints, Retry-After in
// seconds and X-Retry-After as a Unix time.
func TestInjected429Hints(t *testing.T) {
	h := newHub(t, func(o *Options) { o.FaultRetryAfter = 3 * time.Second })
	h.emu.Inject("", "/v2/auth/token", 429, 1)
	r := h.expect(h.do("POST", "/v2/auth/token", "", map[string]string{"identifier": alice, "secret": alicePass}), 429)
	if r.Header.Get("Retry-After") != "3" || r.Header.Get("X-Retry-After") != strconv.FormatInt(h.clock.Now().Add(3*time.Second).Unix(), 10) {
		t.Errorf("injected 429 hints = %v", r.Header)
	}
	h.emu.Inject("", "/v2/auth/token", 503, 1)
	if r := h.expect(h.do("POST", "/v2/auth/token", "", map[string]string{"identifier": alice, "secret": alicePass}), 503); r.Header.Get("Retry-After") != "" {
		t.Errorf("an injected 503 carries a hint: %v", r.Header)
	}
}

// TestRetryHeadersChosen: Options.RetryHeaders picks the hints a 429 carries, so a client test
// can prove it reads each one alone.
func TestRetryHeadersChosen(t *testing.T) {
	h := newHub(t, func(o *Options) { o.RetryHeaders, o.FaultRetryAfter = []string{"X-Retry-After"}, 7*time.Second })
	h.emu.Inject("", "/v2/auth/token", 429, 1)
	r := h.expect(h.do("POST", "/v2/auth/token", "", map[string]string{"identifier": alice, "secret": alicePass}), 429)
	if r.Header.Get("Retry-After") != "" || r.Header.Get("X-Retry-After") != strconv.FormatInt(h.clock.Now().Add(7*time.Second).Unix(), 10) {
		t.Errorf("hints = %v, want X-Retry-After only", r.Header)
	}
}

func (h *hub) manifest(method, repo, regTok string) reply {
	h.t.Helper()
	return h.do(method, "/v2/"+repo+"/manifests/latest", "Bearer "+regTok, nil)
}

func (h *hub) scopedToken(user, pass, repo string) string {
	h.t.Helper()
	q := url.Values{"service": {RegistryService}, "scope": {"repository:" + repo + ":pull"}}
	auth := ""
	if user != "" {
		auth = basic(user, pass)
	}
	return h.expect(h.do("GET", "/token?"+q.Encode(), auth, nil), 200).str("token")
}

// TestPullLimitHeaders follows "Docker Hub pull usage and limits": manifest answers carry
// ratelimit-limit / ratelimit-remaining as "N;w=<seconds>"; a HEAD does not count as a pull, a
// GET does; with nothing left a GET is refused with 429; the window rolls; a login name
// without a limit (a paid plan) gets no such headers.
func TestPullLimitHeaders(t *testing.T) {
	h := newHub(t, func(o *Options) { o.PullLimits = map[string]int{alice: 2, "": 1} })
	const repo = "ratelimitpreview/test"
	tok := h.scopedToken(alice, alicePass, repo)
	check := func(r reply, limit, remaining string) {
		t.Helper()
		if r.Header.Get("Ratelimit-Limit") != limit || r.Header.Get("Ratelimit-Remaining") != remaining {
			t.Errorf("limit %q remaining %q, want %q %q", r.Header.Get("Ratelimit-Limit"), r.Header.Get("Ratelimit-Remaining"), limit, remaining)
		}
	}
	for range 3 {
		r := h.expect(h.manifest("HEAD", repo, tok), 200)
		check(r, "2;w=21600", "2;w=21600")
		if !strings.HasPrefix(r.Header.Get("Docker-Content-Digest"), "sha256:") || r.Raw != "" {
			t.Errorf("HEAD answer = %v %q", r.Header, r.Raw)
		}
	}
	r := h.expect(h.manifest("GET", repo, tok), 200)
	check(r, "2;w=21600", "1;w=21600")
	if r.str("mediaType") != "application/vnd.oci.image.manifest.v1+json" {
		t.Errorf("GET body = %s", r.Raw)
	}
	h.clock.Advance(time.Minute)
	tok = h.scopedToken(alice, alicePass, repo) // the first one lasted 5 minutes: fine, but fresh is clearer
	check(h.expect(h.manifest("GET", repo, tok), 200), "2;w=21600", "0;w=21600")
	check(h.expect(h.manifest("HEAD", repo, tok), 200), "2;w=21600", "0;w=21600")
	r = h.expect(h.manifest("GET", repo, tok), 429)
	if errs, _ := r.Body["errors"].([]any); len(errs) != 1 || errs[0].(map[string]any)["code"] != "TOOMANYREQUESTS" {
		t.Errorf("over the limit = %s", r.Raw)
	}
	if n, limited := h.emu.PullsLeft(alice); n != 0 || !limited {
		t.Errorf("PullsLeft = %d, %v", n, limited)
	}
	// Six hours after the first pull it has left the window.
	h.clock.Advance(6*time.Hour - time.Minute)
	tok = h.scopedToken(alice, alicePass, repo)
	check(h.expect(h.manifest("HEAD", repo, tok), 200), "2;w=21600", "1;w=21600")

	// Anonymous pulls have their own limit; an unlimited user gets no headers.
	check(h.expect(h.manifest("HEAD", repo, h.scopedToken("", "", repo)), 200), "1;w=21600", "1;w=21600")
	r = h.expect(h.manifest("GET", repo, h.scopedToken(carol, carolPass, repo)), 200)
	check(r, "", "")
	if _, limited := h.emu.PullsLeft(carol); limited {
		t.Errorf("carol has a limit")
	}
}

// TestManifestNeedsPullScope: a manifest answers only to a registry token granting pull on
// that repository; otherwise 401 with a challenge naming the scope.
// TestRegistryTokenSeveralScopes: one token request may carry several "scope" parameters (the
// distribution token spec; Docker clients send one per scope) and the token grants each the
// login may pull — here two public repositories — while a private repository the login may not
// pull is left out of the token rather than failing the request; its owner gets it.
func TestRegistryTokenSeveralScopes(t *testing.T) {
	h := newHub(t, func(o *Options) { o.PrivateRepositories = map[string][]string{"carol/secret": {carol}} })
	q := url.Values{"service": {RegistryService}, "scope": {pullScope, "repository:ratelimitpreview/test:pull", "repository:carol/secret:pull"}}
	tok := h.expect(h.do("GET", "/token?"+q.Encode(), basic(alice, alicePass), nil), 200).str("token")
	h.expect(h.manifest("HEAD", "library/alpine", tok), 200)
	h.expect(h.manifest("HEAD", "ratelimitpreview/test", tok), 200)
	h.expect(h.manifest("HEAD", "carol/secret", tok), 401)
	anon := h.expect(h.do("GET", "/token?"+q.Encode(), "", nil), 200).str("token")
	h.expect(h.manifest("HEAD", "carol/secret", anon), 401)
	h.expect(h.manifest("HEAD", "library/alpine", anon), 200)
	owner := h.expect(h.do("GET", "/token?"+q.Encode(), basic(carol, carolPass), nil), 200).str("token")
	h.expect(h.manifest("HEAD", "carol/secret", owner), 200)
	// A refused credential is refused whatever it asks for.
	h.expect(h.do("GET", "/token?"+q.Encode(), basic(alice, "wrong"), nil), 401)
}

func TestManifestNeedsPullScope(t *testing.T) {
	h := newHub(t, nil)
	tok := h.scopedToken(alice, alicePass, "library/alpine")
	h.expect(h.manifest("HEAD", "library/alpine", tok), 200)
	r := h.expect(h.manifest("HEAD", "ratelimitpreview/test", tok), 401)
	if !strings.Contains(r.Header.Get("WWW-Authenticate"), `scope="repository:ratelimitpreview/test:pull"`) {
		t.Errorf("challenge = %q", r.Header.Get("WWW-Authenticate"))
	}
	h.expect(h.manifest("HEAD", "library/alpine", "reg_forged"), 401)
	h.expect(h.do("PUT", "/v2/library/alpine/manifests/latest", "Bearer "+tok, nil), 405)
	h.clock.Advance(6 * time.Minute)
	h.expect(h.manifest("HEAD", "library/alpine", tok), 401)
}

func TestCalls(t *testing.T) {
	h := newHub(t, nil)
	sess := h.login(alice, alicePass)
	h.expect(h.do("GET", "/v2/access-tokens", sess, nil), 200)
	h.expect(h.registryToken(alice, alicePass), 200)
	h.expect(h.do("GET", "/nowhere", "", nil), 404)
	want := []Call{
		{Method: "POST", Path: "/v2/users/login", Auth: "", Status: 200},
		{Method: "GET", Path: "/v2/access-tokens", Auth: "Bearer", Status: 200},
		{Method: "GET", Path: "/token", Query: "scope=repository%3Alibrary%2Falpine%3Apull&service=registry.docker.io", Auth: "Basic", Status: 200},
		{Method: "GET", Path: "/nowhere", Auth: "", Status: 404},
	}
	got := h.emu.Calls()
	if len(got) != len(want) {
		t.Fatalf("Calls = %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("call %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	h.emu.ResetCalls()
	if n := len(h.emu.Calls()); n != 0 {
		t.Errorf("%d calls after ResetCalls", n)
	}
}

func TestSessionLifetime(t *testing.T) {
	h := newHub(t, func(o *Options) { o.SessionLifetime = 10 * time.Minute })
	sess := h.login(alice, alicePass)
	h.clock.Advance(9 * time.Minute)
	h.expect(h.do("GET", "/v2/access-tokens", sess, nil), 200)
	h.clock.Advance(time.Minute)
	h.expect(h.do("GET", "/v2/access-tokens", sess, nil), 401)
	h.expect(h.do("GET", "/v2/access-tokens", h.login(alice, alicePass), nil), 200)
}

func TestSetPasswordAndTokensCopy(t *testing.T) {
	h := newHub(t, nil)
	sess := h.login(alice, alicePass)
	h.emu.SetPassword(alice, "new-password")
	h.expect(h.do("POST", "/v2/users/login", "", map[string]string{"username": alice, "password": alicePass}), 401)
	h.login(alice, "new-password")
	// Existing sessions stay valid, as on Hub.
	h.expect(h.createPAT(sess, "after", nil), 201)
	toks := h.emu.Tokens()
	if len(toks) != 1 || toks[0].Owner != alice || toks[0].Label != "after" || !toks[0].Active {
		t.Fatalf("Tokens = %+v", toks)
	}
	toks[0].Scopes[0] = "mutated"
	if h.emu.Tokens()[0].Scopes[0] != "repo:public_read" {
		t.Errorf("Tokens returns shared slices")
	}
}

// TestSSOSessionMakesOrgTokens: the owner of an organization that enforces SSO cannot start a
// session with a password, but signed in through SSO (the web UI) makes an organization access
// token, which then logs in at the registry with the organization as username — staged mode's
// token. A stranger gets no session.
func TestSSOSessionMakesOrgTokens(t *testing.T) {
	h := newHub(t, nil)
	h.emu.AddAccount(Account{Username: alice, Password: alicePass, Orgs: []string{org}, SSOEnforced: true})
	h.expect(h.do("POST", "/v2/auth/token", "", map[string]string{"identifier": alice, "secret": alicePass}), 401)
	if _, ok := h.emu.SSOSession("nobody"); ok {
		t.Error("an unknown user got an SSO session")
	}
	sess, ok := h.emu.SSOSession(alice)
	if !ok {
		t.Fatal("no SSO session for the owner")
	}
	oat := h.expect(h.do("POST", "/v2/orgs/"+org+"/access-tokens", sess, orgTokenBody("staged")), 201).str("token")
	if !strings.HasPrefix(oat, "dckr_oat_") {
		t.Fatalf("organization token = %q, want dckr_oat_…", oat)
	}
	h.expect(h.registryToken(org, oat), 200)
	h.expect(h.registryToken(alice, alicePass), 401)
}
