package acremu

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	tenant = "11111111-2222-3333-4444-555555555555"
	client = "66666666-7777-8888-9999-000000000000"
	secret = "PLANTED-client-secret-acr-91d2"
	sub    = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
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
	s   *Server
	srv *httptest.Server
	clk *clock
}

func newEnv(t *testing.T, o Options) *env {
	t.Helper()
	clk := &clock{t: time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)}
	o.Now = clk.Now
	o.TenantID, o.ClientID, o.ClientSecret = tenant, client, secret
	o.SubscriptionID, o.ResourceGroup, o.Registry = sub, "ptc-rg", "ptcreg"
	s := New(o, "ptc-pull")
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return &env{t: t, s: s, srv: srv, clk: clk}
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
}

func (e *env) do(method, path string, header http.Header, body io.Reader) answer {
	e.t.Helper()
	u := path
	if !strings.HasPrefix(path, "http") {
		u = e.srv.URL + path
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, header: resp.Header}
	b, _ := io.ReadAll(resp.Body)
	if len(b) > 0 {
		_ = json.Unmarshal(b, &a.body)
	}
	return a
}

func form(v url.Values) (http.Header, io.Reader) {
	return http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, strings.NewReader(v.Encode())
}

func goodForm() url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "client_id": {client}, "client_secret": {secret}, "scope": {ManagementScope}}
}

func (e *env) aadToken() string {
	e.t.Helper()
	h, b := form(goodForm())
	a := e.do(http.MethodPost, "/"+tenant+"/oauth2/v2.0/token", h, b)
	if a.status != 200 {
		e.t.Fatalf("token: %d %v", a.status, a.body)
	}
	return a.body["access_token"].(string)
}

func (e *env) genPath() string {
	return "/subscriptions/" + sub + "/resourceGroups/ptc-rg/providers/Microsoft.ContainerRegistry/registries/ptcreg/generateCredentials?api-version=" + APIVersion
}

func (e *env) generate(bearer string, body map[string]any) answer {
	e.t.Helper()
	b, _ := json.Marshal(body)
	h := http.Header{"Content-Type": {"application/json"}}
	if bearer != "" {
		h.Set("Authorization", "Bearer "+bearer)
	}
	return e.do(http.MethodPost, e.genPath(), h, strings.NewReader(string(b)))
}

func TestEntraToken(t *testing.T) {
	e := newEnv(t, Options{})
	cases := []struct {
		name   string
		tenant string
		edit   func(url.Values)
		status int
		code   string
	}{
		{"ok", tenant, func(url.Values) {}, 200, ""},
		{"unknown tenant", "00000000-0000-0000-0000-000000000000", func(url.Values) {}, 400, "AADSTS90002"},
		{"wrong grant", tenant, func(v url.Values) { v.Set("grant_type", "password") }, 400, "AADSTS70003"},
		{"unknown client", tenant, func(v url.Values) { v.Set("client_id", "x") }, 400, "AADSTS700016"},
		{"wrong secret", tenant, func(v url.Values) { v.Set("client_secret", "nope") }, 401, "AADSTS7000215"},
		{"wrong scope", tenant, func(v url.Values) { v.Set("scope", "https://graph.microsoft.com/.default") }, 400, "AADSTS70011"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := goodForm()
			c.edit(v)
			h, b := form(v)
			a := e.do(http.MethodPost, "/"+c.tenant+"/oauth2/v2.0/token", h, b)
			if a.status != c.status {
				t.Fatalf("status %d, want %d (%v)", a.status, c.status, a.body)
			}
			if c.code == "" {
				if a.body["token_type"] != "Bearer" || a.body["access_token"] == "" || a.body["expires_in"].(float64) != 3599 {
					t.Fatalf("token answer %v", a.body)
				}
				return
			}
			if d, _ := a.body["error_description"].(string); !strings.HasPrefix(d, c.code) {
				t.Fatalf("error_description %q, want %s", d, c.code)
			}
		})
	}
	// JSON instead of a form is refused, as Entra ID does.
	a := e.do(http.MethodPost, "/"+tenant+"/oauth2/v2.0/token", http.Header{"Content-Type": {"application/json"}}, strings.NewReader(`{}`))
	if a.status != 400 {
		t.Fatalf("JSON body: status %d", a.status)
	}
}

func TestGenerateCredentialsChecks(t *testing.T) {
	e := newEnv(t, Options{})
	tok := e.aadToken()
	good := map[string]any{"tokenId": e.s.TokenID("ptc-pull"), "name": "password1", "expiry": "2026-08-01T00:00:00Z"}
	cases := []struct {
		name   string
		bearer string
		path   string
		body   map[string]any
		status int
		code   string
	}{
		{"no bearer", "", "", good, 401, "AuthenticationFailed"},
		{"bad bearer", "forged", "", good, 401, "InvalidAuthenticationToken"},
		{"no api-version", tok, strings.Split(e.genPath(), "?")[0], good, 400, "MissingApiVersionParameter"},
		{"old api-version", tok, strings.Split(e.genPath(), "?")[0] + "?api-version=2017-10-01", good, 400, "NoRegisteredProviderFound"},
		{"other subscription", tok, strings.Replace(e.genPath(), sub, "ffffffff-bbbb-cccc-dddd-eeeeeeeeeeee", 1), good, 404, "SubscriptionNotFound"},
		{"other registry", tok, strings.Replace(e.genPath(), "/ptcreg/", "/otherreg/", 1), good, 404, "ResourceNotFound"},
		{"unknown token", tok, "", map[string]any{"tokenId": e.s.TokenID("nobody"), "name": "password1"}, 404, "ResourceNotFound"},
		{"token of another registry", tok, "", map[string]any{"tokenId": strings.Replace(e.s.TokenID("ptc-pull"), "/ptcreg/", "/otherreg/", 1), "name": "password1"}, 404, "ResourceNotFound"},
		{"no tokenId", tok, "", map[string]any{"name": "password1"}, 400, "InvalidParameter"},
		{"bad slot", tok, "", map[string]any{"tokenId": e.s.TokenID("ptc-pull"), "name": "password3"}, 400, "InvalidParameter"},
		{"past expiry", tok, "", map[string]any{"tokenId": e.s.TokenID("ptc-pull"), "name": "password1", "expiry": "2020-01-01T00:00:00Z"}, 400, "InvalidParameter"},
		{"bad expiry", tok, "", map[string]any{"tokenId": e.s.TokenID("ptc-pull"), "name": "password1", "expiry": "tomorrow"}, 400, "InvalidParameter"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := c.path
			if path == "" {
				path = e.genPath()
			}
			b, _ := json.Marshal(c.body)
			h := http.Header{"Content-Type": {"application/json"}}
			if c.bearer != "" {
				h.Set("Authorization", "Bearer "+c.bearer)
			}
			a := e.do(http.MethodPost, path, h, strings.NewReader(string(b)))
			if a.status != c.status {
				t.Fatalf("status %d, want %d (%v)", a.status, c.status, a.body)
			}
			if got := a.body["error"].(map[string]any)["code"]; got != c.code {
				t.Fatalf("code %v, want %s", got, c.code)
			}
		})
	}
	if n := len(e.s.Generations()); n != 0 {
		t.Fatalf("refused requests generated %d passwords", n)
	}
	// Case does not matter to ARM.
	a := e.do(http.MethodPost, strings.ToLower(e.genPath()), http.Header{"Authorization": {"Bearer " + tok}}, strings.NewReader(`{"tokenId":"`+strings.ToUpper(e.s.TokenID("ptc-pull"))+`","name":"password2"}`))
	if a.status != 200 {
		t.Fatalf("lower-case path: %d %v", a.status, a.body)
	}
}

func TestExpiredAADTokenAndForbidden(t *testing.T) {
	e := newEnv(t, Options{AADTokenLifetime: time.Minute})
	tok := e.aadToken()
	e.clk.Add(2 * time.Minute)
	a := e.generate(tok, map[string]any{"tokenId": e.s.TokenID("ptc-pull"), "name": "password1"})
	if a.status != 401 || a.body["error"].(map[string]any)["code"] != "ExpiredAuthenticationToken" {
		t.Fatalf("expired token: %d %v", a.status, a.body)
	}
	f := newEnv(t, Options{Forbidden: true})
	a = f.generate(f.aadToken(), map[string]any{"tokenId": f.s.TokenID("ptc-pull"), "name": "password1"})
	if a.status != 403 || a.body["error"].(map[string]any)["code"] != "AuthorizationFailed" {
		t.Fatalf("forbidden: %d %v", a.status, a.body)
	}
}

// login runs the registry handshake by hand: challenge, Basic to the realm, bearer to /v2/.
func (e *env) login(user, pass string) int {
	e.t.Helper()
	a := e.do(http.MethodGet, "/v2/", nil, nil)
	if a.status != 401 {
		e.t.Fatalf("anonymous /v2/: %d", a.status)
	}
	ch := a.header.Get("WWW-Authenticate")
	want := `Bearer realm="` + e.srv.URL + `/oauth2/token",service="ptcreg.azurecr.io"`
	if ch != want {
		e.t.Fatalf("challenge %q, want %q", ch, want)
	}
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/oauth2/token?service=ptcreg.azurecr.io&scope=repository:hello-world:pull", nil)
	req.SetBasicAuth(user, pass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return resp.StatusCode
	}
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.AccessToken == "" {
		e.t.Fatalf("token answer without access_token: %v", err)
	}
	if a := e.do(http.MethodGet, "/v2/", http.Header{"Authorization": {"Bearer " + out.AccessToken}}, nil); a.status != 200 {
		e.t.Fatalf("/v2/ with the registry token: %d", a.status)
	}
	return 200
}

func TestSlotsReplicationAndExpiry(t *testing.T) {
	e := newEnv(t, Options{ReplicationDelay: 60 * time.Second})
	tok := e.aadToken()
	gen := func(slot, expiry string) string {
		t.Helper()
		body := map[string]any{"tokenId": e.s.TokenID("ptc-pull"), "name": slot}
		if expiry != "" {
			body["expiry"] = expiry
		}
		a := e.generate(tok, body)
		if a.status != 200 || a.body["username"] != "ptc-pull" {
			t.Fatalf("generate %s: %d %v", slot, a.status, a.body)
		}
		pw := a.body["passwords"].([]any)
		if len(pw) != 1 || pw[0].(map[string]any)["name"] != slot {
			t.Fatalf("passwords %v", pw)
		}
		return pw[0].(map[string]any)["value"].(string)
	}
	p1 := gen(Password1, "2026-05-06T08:00:00Z")
	if st := e.login("ptc-pull", p1); st != 401 {
		t.Fatalf("a password that has not replicated logged in: %d", st)
	}
	e.clk.Add(59 * time.Second)
	if st := e.login("ptc-pull", p1); st != 401 {
		t.Fatalf("a password 59 s old logged in: %d", st)
	}
	e.clk.Add(time.Second)
	if st := e.login("ptc-pull", p1); st != 200 {
		t.Fatalf("replicated password refused: %d", st)
	}
	if st := e.login("PTC-PULL", p1); st != 200 {
		t.Fatalf("token names are case-insensitive: %d", st)
	}
	if st := e.login("other", p1); st != 401 {
		t.Fatalf("another username logged in: %d", st)
	}
	p2 := gen(Password2, "")
	e.clk.Add(time.Minute)
	if st := e.login("ptc-pull", p2); st != 200 {
		t.Fatalf("password2 refused: %d", st)
	}
	if st := e.login("ptc-pull", p1); st != 200 {
		t.Fatalf("regenerating password2 broke password1: %d", st)
	}
	// Regenerating a slot invalidates its old value at once.
	p1b := gen(Password1, "")
	if st := e.login("ptc-pull", p1); st != 401 {
		t.Fatalf("the replaced password1 still logs in: %d", st)
	}
	e.clk.Add(time.Minute)
	if st := e.login("ptc-pull", p1b); st != 200 {
		t.Fatalf("new password1 refused: %d", st)
	}
	// Expiry: a password with an expiry stops working then.
	p2b := gen(Password2, e.clk.Now().Add(2*time.Minute).Format(time.RFC3339))
	e.clk.Add(time.Minute)
	if st := e.login("ptc-pull", p2b); st != 200 {
		t.Fatalf("p2b refused before expiry: %d", st)
	}
	e.clk.Add(2 * time.Minute)
	if st := e.login("ptc-pull", p2b); st != 401 {
		t.Fatalf("expired password logs in: %d", st)
	}
	// A disabled token logs in with nothing.
	e.s.SetEnabled("ptc-pull", false)
	if st := e.login("ptc-pull", p1b); st != 401 {
		t.Fatalf("disabled token logs in: %d", st)
	}
	gens := e.s.Generations()
	if len(gens) != 4 || gens[0].Slot != Password1 || gens[1].Slot != Password2 || gens[2].Slot != Password1 || gens[3].Slot != Password2 {
		t.Fatalf("generations %+v", gens)
	}
	if !gens[0].Expiry.Equal(time.Date(2026, 5, 6, 8, 0, 0, 0, time.UTC)) || !gens[1].Expiry.IsZero() {
		t.Fatalf("recorded expiries %v %v", gens[0].Expiry, gens[1].Expiry)
	}
	issued := strings.Join(e.s.Issued(), "\n")
	for _, p := range []string{p1, p2, p1b, p2b} {
		if !strings.Contains(issued, p) {
			t.Fatal("Issued() misses a password")
		}
	}
}

func TestGenerateBothSlotsWithoutName(t *testing.T) {
	e := newEnv(t, Options{})
	a := e.generate(e.aadToken(), map[string]any{"tokenId": e.s.TokenID("ptc-pull")})
	if a.status != 200 || len(a.body["passwords"].([]any)) != 2 {
		t.Fatalf("%d %v", a.status, a.body)
	}
	if p := e.s.Passwords("ptc-pull"); p[Password1].Value == "" || p[Password2].Value == "" || p[Password1].Value == p[Password2].Value {
		t.Fatal("both slots were not regenerated with distinct values")
	}
}

func TestRegistryTokenRefusals(t *testing.T) {
	e := newEnv(t, Options{})
	cases := []struct {
		name, query string
		basic       bool
		status      int
	}{
		{"no credentials", "service=ptcreg.azurecr.io&scope=repository:x:pull", false, 401},
		{"wrong service", "service=other.azurecr.io&scope=repository:x:pull", true, 400},
		{"push scope only", "service=ptcreg.azurecr.io&scope=repository:x:push", true, 400},
		{"no password yet", "service=ptcreg.azurecr.io&scope=repository:x:pull", true, 401},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/oauth2/token?"+c.query, nil)
			if c.basic {
				req.SetBasicAuth("ptc-pull", "")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, c.status)
			}
		})
	}
	if a := e.do(http.MethodGet, "/v2/", http.Header{"Authorization": {"Bearer forged"}}, nil); a.status != 401 {
		t.Fatalf("/v2/ with a forged bearer: %d", a.status)
	}
}

func TestLongRunningLocation(t *testing.T) {
	e := newEnv(t, Options{Async: AsyncLocation, AsyncPolls: 2, RetryAfter: 3})
	tok := e.aadToken()
	a := e.generate(tok, map[string]any{"tokenId": e.s.TokenID("ptc-pull"), "name": "password2"})
	loc := a.header.Get("Location")
	if a.status != 202 || loc == "" || a.header.Get("Retry-After") != "3" || a.header.Get("Azure-AsyncOperation") != "" {
		t.Fatalf("initial answer %d %v", a.status, a.header)
	}
	if !strings.HasPrefix(loc, e.srv.URL+"/subscriptions/"+sub+"/providers/Microsoft.ContainerRegistry/locations/") {
		t.Fatalf("Location %q", loc)
	}
	bearer := http.Header{"Authorization": {"Bearer " + tok}}
	if a := e.do(http.MethodGet, loc, nil, nil); a.status != 401 {
		t.Fatalf("poll without bearer: %d", a.status)
	}
	for i := range 2 {
		if a := e.do(http.MethodGet, loc, bearer, nil); a.status != 202 {
			t.Fatalf("poll %d: %d", i, a.status)
		}
	}
	a = e.do(http.MethodGet, loc, bearer, nil)
	if a.status != 200 || a.body["username"] != "ptc-pull" {
		t.Fatalf("final poll: %d %v", a.status, a.body)
	}
	pw := a.body["passwords"].([]any)[0].(map[string]any)
	if pw["name"] != "password2" || pw["value"] != e.s.Passwords("ptc-pull")[Password2].Value {
		t.Fatalf("result %v", pw)
	}
}

func TestLongRunningAsyncOperation(t *testing.T) {
	e := newEnv(t, Options{Async: AsyncOperation})
	tok := e.aadToken()
	a := e.generate(tok, map[string]any{"tokenId": e.s.TokenID("ptc-pull"), "name": "password1"})
	status, loc := a.header.Get("Azure-AsyncOperation"), a.header.Get("Location")
	if a.status != 202 || status == "" || loc == "" {
		t.Fatalf("initial answer %d %v", a.status, a.header)
	}
	bearer := http.Header{"Authorization": {"Bearer " + tok}}
	if a := e.do(http.MethodGet, loc, bearer, nil); a.status != 202 {
		t.Fatalf("result before the operation finished: %d", a.status)
	}
	if a := e.do(http.MethodGet, status, bearer, nil); a.status != 200 || a.body["status"] != "InProgress" {
		t.Fatalf("first status %d %v", a.status, a.body)
	}
	if a := e.do(http.MethodGet, status, bearer, nil); a.body["status"] != "Succeeded" {
		t.Fatalf("second status %v", a.body)
	}
	if a := e.do(http.MethodGet, loc, bearer, nil); a.status != 200 || len(a.body["passwords"].([]any)) != 1 {
		t.Fatalf("result %d %v", a.status, a.body)
	}
}

func TestInjectAndCalls(t *testing.T) {
	e := newEnv(t, Options{})
	tok := e.aadToken()
	e.s.Inject(http.MethodPost, "/subscriptions/", 429, 1)
	e.s.Inject("", "/subscriptions/", 503, 1)
	body := map[string]any{"tokenId": e.s.TokenID("ptc-pull"), "name": "password1"}
	if a := e.generate(tok, body); a.status != 429 || a.header.Get("Retry-After") == "" {
		t.Fatalf("first: %d", a.status)
	}
	if a := e.generate(tok, body); a.status != 503 {
		t.Fatalf("second: %d", a.status)
	}
	if a := e.generate(tok, body); a.status != 200 {
		t.Fatalf("third: %d", a.status)
	}
	calls := e.s.Calls()
	if len(calls) != 4 || calls[0].Path != "/"+tenant+"/oauth2/v2.0/token" || calls[0].Auth != "" || calls[3].Auth != "Bearer" || calls[3].Status != 200 || calls[1].Status != 429 {
		t.Fatalf("calls %+v", calls)
	}
	e.s.ResetCalls()
	if len(e.s.Calls()) != 0 || len(e.s.Generations()) != 1 {
		t.Fatal("ResetCalls")
	}
}

// TestLongRunningFailureForms: a failed or canceled operation ends its Azure-AsyncOperation
// document with that status and ARM's error detail, answers its Location with an error response,
// and changes no password; the REST spec's registry-scoped operationStatuses Location behaves as
// a Location: 202 while running, then the result.
func TestLongRunningFailureForms(t *testing.T) {
	for _, tc := range []struct {
		outcome string
		status  int
		code    string
	}{{"Failed", 400, "TokenCredentialGenerationFailed"}, {"Canceled", 409, "OperationCanceled"}} {
		t.Run(tc.outcome, func(t *testing.T) {
			e := newEnv(t, Options{Async: AsyncOperation, AsyncOutcome: tc.outcome})
			tok := e.aadToken()
			before := e.s.Passwords("ptc-pull")
			a := e.generate(tok, map[string]any{"tokenId": e.s.TokenID("ptc-pull"), "name": "password1"})
			status, loc := a.header.Get("Azure-AsyncOperation"), a.header.Get("Location")
			if a.status != 202 || status == "" || loc == "" {
				t.Fatalf("initial answer %d %v", a.status, a.header)
			}
			bearer := http.Header{"Authorization": {"Bearer " + tok}}
			if a := e.do(http.MethodGet, status, bearer, nil); a.status != 200 || a.body["status"] != "InProgress" {
				t.Fatalf("first status %d %v", a.status, a.body)
			}
			a = e.do(http.MethodGet, status, bearer, nil)
			errBody, _ := a.body["error"].(map[string]any)
			if a.status != 200 || a.body["status"] != tc.outcome || errBody["code"] != tc.code || errBody["message"] == "" {
				t.Fatalf("final status %d %v", a.status, a.body)
			}
			a = e.do(http.MethodGet, loc, bearer, nil)
			errBody, _ = a.body["error"].(map[string]any)
			if a.status != tc.status || errBody["code"] != tc.code {
				t.Fatalf("Location after the failure: %d %v", a.status, a.body)
			}
			if _, has := a.body["passwords"]; has {
				t.Fatal("a failed operation answered passwords")
			}
			if after := e.s.Passwords("ptc-pull"); len(after) != len(before) || len(e.s.Generations()) != 0 {
				t.Fatalf("a failed operation changed passwords: %v -> %v", before, after)
			}
		})
	}
	t.Run("registry-scoped Location", func(t *testing.T) {
		e := newEnv(t, Options{Async: AsyncLocation, RegistryLocation: true})
		tok := e.aadToken()
		a := e.generate(tok, map[string]any{"tokenId": e.s.TokenID("ptc-pull"), "name": "password2"})
		loc := a.header.Get("Location")
		want := e.srv.URL + "/subscriptions/" + sub + "/resourceGroups/"
		if a.status != 202 || !strings.HasPrefix(loc, want) || !strings.Contains(loc, "/registries/") || !strings.Contains(loc, "/operationStatuses/registries-") {
			t.Fatalf("initial answer %d Location %q", a.status, loc)
		}
		bearer := http.Header{"Authorization": {"Bearer " + tok}}
		if a := e.do(http.MethodGet, loc, bearer, nil); a.status != 202 {
			t.Fatalf("poll: %d", a.status)
		}
		a = e.do(http.MethodGet, loc, bearer, nil)
		if a.status != 200 || a.body["username"] != "ptc-pull" || len(a.body["passwords"].([]any)) != 1 {
			t.Fatalf("result %d %v", a.status, a.body)
		}
	})
}
