package dockerhub

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/pinned"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/registryauth"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/dockerhubemu"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/httpapi"
)

// longCtx leaves room for a wait for the next TOTP step (up to 31 s of fake time, but the
// deadline is checked on the wall clock, as a Lambda's is).
func longCtx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func (e *env) tryMint(d *DockerHub, version string) error {
	_, err := d.Mint(longCtx(e.t), upstream.MintRequest{SecretName: secret, VersionID: version, Label: ptcsecret.Label(key, version)})
	return e.note(err)
}

// calls counts the emulator's answers to method path with status (0: any).
func (e *env) calls(method, path string, status int) int {
	n := 0
	for _, c := range e.emu.Calls() {
		if c.Method == method && c.Path == path && (status == 0 || c.Status == status) {
			n++
		}
	}
	return n
}

// TestSessionUsesAuthToken: a password account starts its session with POST /v2/auth/token, the
// endpoint the Hub API reference recommends; the deprecated /v2/users/login is not called.
func TestSessionUsesAuthToken(t *testing.T) {
	e := newEnv(t, nil)
	d, _ := e.upstream(nil)
	e.mint(d, "v1")
	if e.calls("POST", "/v2/auth/token", 200) != 1 || e.calls("POST", "/v2/users/login", 0) != 0 {
		t.Errorf("calls = %+v, want one /v2/auth/token and no /v2/users/login", e.emu.Calls())
	}
}

// TestRefusalsToldApart: each way Docker Hub says no gets its own error, saying what to do.
func TestRefusalsToldApart(t *testing.T) {
	t.Run("SSO enforced", func(t *testing.T) {
		e := newEnv(t, nil)
		e.emu.AddAccount(dockerhubemu.Account{Username: user, Password: password, Orgs: []string{org}, SSOEnforced: true})
		for _, fields := range []map[string]any{nil, {"organization": org}} {
			d, _ := e.upstream(fields)
			err := e.tryMint(d, "v1")
			if err == nil || !strings.Contains(err.Error(), "enforces single sign-on") || !strings.Contains(err.Error(), "use staged mode") ||
				!strings.Contains(err.Error(), ModesDoc) || !strings.Contains(err.Error(), `"mode": "staged"`) {
				t.Errorf("Mint = %v, want the SSO refusal pointing at staged mode", err)
			}
			if err != nil && strings.Contains(err.Error(), `check fields "username" and "password"`) {
				t.Errorf("the SSO refusal blames the password: %v", err)
			}
		}
		if len(e.emu.Tokens()) != 0 {
			t.Errorf("a token was minted")
		}
	})
	t.Run("SSO enforced with TOTP", func(t *testing.T) {
		e := newEnv(t, nil)
		e.emu.AddAccount(dockerhubemu.Account{Username: tfaUser, Password: tfaPass, TOTPSecret: tfaSecret, SSOEnforced: true})
		d, _ := e.upstream(map[string]any{"username": tfaUser, "password": tfaPass, "totpSecret": tfaSecret})
		if err := e.tryMint(d, "v1"); err == nil || !strings.Contains(err.Error(), "use staged mode") {
			t.Errorf("Mint = %v, want the SSO refusal", err)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		e := newEnv(t, nil)
		e.leaks = append(e.leaks, "PLANTED-wrong-9d1f")
		d, _ := e.upstream(map[string]any{"password": "PLANTED-wrong-9d1f"})
		err := e.tryMint(d, "v1")
		if !errors.Is(err, errWrongPassword) || strings.Contains(err.Error(), "staged") || strings.Contains(err.Error(), "totpSecret") {
			t.Errorf("Mint = %v, want the wrong-password error", err)
		}
	})
	t.Run("2FA without totpSecret", func(t *testing.T) {
		e := newEnv(t, nil)
		d, _ := e.upstream(map[string]any{"username": tfaUser, "password": tfaPass})
		err := e.tryMint(d, "v1")
		if !errors.Is(err, errNeedTOTP) {
			t.Errorf("Mint = %v, want the request for totpSecret", err)
		}
		// /v2/auth/token refused it; the older login's challenge told it was 2FA.
		if e.calls("POST", "/v2/auth/token", 401) != 1 || e.calls("POST", "/v2/users/login", 401) != 1 {
			t.Errorf("calls = %+v", e.emu.Calls())
		}
	})
	t.Run("locked", func(t *testing.T) {
		e := newEnv(t, nil)
		hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"detail":"Account locked: too many failed login attempts"}`))
		}))
		defer hub.Close()
		d, err := New(e.source(map[string]any{"apiUrl": hub.URL}), upstream.Options{HTTPClient: hub.Client(), RegistryURL: e.srv.URL, Standins: pinned.NewStandins(e.srv.URL, hub.URL)})
		if err != nil {
			t.Fatal(err)
		}
		err = e.tryMint(d, "v1")
		if err == nil || !strings.Contains(err.Error(), "refuses logins of this account for now") || !strings.Contains(err.Error(), "rotating in a loop") {
			t.Errorf("Mint = %v, want the locked-account error", err)
		}
	})
	t.Run("rate limited past the deadline", func(t *testing.T) {
		e := newEnv(t, func(o *dockerhubemu.Options) { o.FaultRetryAfter = time.Second })
		d, _ := e.upstream(nil)
		e.emu.Inject(http.MethodPost, "/v2/auth/token", http.StatusTooManyRequests, 1)
		c, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond) // the 1 s hint does not fit
		defer cancel()
		_, err := d.Mint(c, upstream.MintRequest{SecretName: secret, VersionID: "v1", Label: ptcsecret.Label(key, "v1")})
		if e.note(err) == nil || !strings.Contains(err.Error(), "rate limiting this account's logins") || !strings.Contains(err.Error(), "HTTP 429") {
			t.Errorf("Mint = %v, want the rate-limit error", err)
		}
	})
	t.Run("OAT session", func(t *testing.T) {
		err := patSessionError(&httpapi.StatusError{Service: "Docker Hub", Op: "create access token", StatusCode: 403, Message: dockerhubemu.MsgOATSession}).Error()
		if !strings.Contains(err, "organization access token cannot create access tokens") {
			t.Errorf("error = %s", err)
		}
	})
}

// TestSessionRetried5xx: the session endpoints only create a session, so a 5xx or a lost
// connection is retried (here: a cold finishSecret meeting a transient 502, the gap the
// independent check found) and the mint goes on.
func TestSessionRetried5xx(t *testing.T) {
	t.Run("auth/token", func(t *testing.T) {
		e := newEnv(t, nil)
		d, sl := e.upstream(nil)
		e.emu.Inject(http.MethodPost, "/v2/auth/token", http.StatusBadGateway, 2)
		e.mint(d, "v1")
		if e.calls("POST", "/v2/auth/token", 0) != 3 || len(sl.d) != 2 {
			t.Errorf("%d session calls, waits %v; want 3 calls, 2 waits", e.calls("POST", "/v2/auth/token", 0), sl.d)
		}
	})
	t.Run("users/login and 2fa-login", func(t *testing.T) {
		e := newEnv(t, nil)
		d, sl := e.upstream(map[string]any{"username": tfaUser, "password": tfaPass, "totpSecret": tfaSecret})
		e.emu.Inject(http.MethodPost, "/v2/users/login", http.StatusServiceUnavailable, 1)
		e.emu.Inject(http.MethodPost, "/v2/users/2fa-login", http.StatusInternalServerError, 1)
		e.mint(d, "v1")
		if e.calls("POST", "/v2/users/2fa-login", 200) != 1 || len(sl.d) != 2 {
			t.Errorf("waits %v, calls %+v", sl.d, e.emu.Calls())
		}
	})
	t.Run("create is still not retried", func(t *testing.T) {
		e := newEnv(t, nil)
		d, _ := e.upstream(nil)
		e.emu.Inject(http.MethodPost, "/v2/access-tokens", http.StatusBadGateway, 1)
		if err := e.tryMint(d, "v1"); err == nil || e.calls("POST", "/v2/access-tokens", 0) != 1 {
			t.Errorf("Mint = %v after %d creates, want the 502 after one", err, e.calls("POST", "/v2/access-tokens", 0))
		}
	})
}

// TestTOTPCodeReusedWaitsForNextStep: two cold environments (createSecret, finishSecret) log in
// within one 30 s step. Docker Hub accepts a code once, so the second is refused; it waits for
// the next step (on the injected clock) and logs in, without blaming totpSecret.
func TestTOTPCodeReusedWaitsForNextStep(t *testing.T) {
	e := newEnv(t, nil)
	src := map[string]any{"username": tfaUser, "password": tfaPass, "totpSecret": tfaSecret}
	first, _ := e.upstream(src)
	e.mint(first, "v1")
	second, sl := e.upstream(src)
	second.api2.Sleep = func(c context.Context, w time.Duration) error {
		e.clock.Advance(w)
		return sl.sleep(c, w)
	}
	before := e.clock.Now()
	if _, err := second.Mint(longCtx(t), upstream.MintRequest{SecretName: secret, VersionID: "v2", Label: ptcsecret.Label(key, "v2")}); e.note(err) != nil {
		t.Fatalf("Mint: %v", err)
	}
	if len(sl.d) != 1 || e.calls("POST", "/v2/users/2fa-login", 401) != 1 || e.calls("POST", "/v2/users/2fa-login", 200) != 2 {
		t.Fatalf("waits %v, calls %+v", sl.d, e.emu.Calls())
	}
	if after := e.clock.Now(); after.Unix()/30 != before.Unix()/30+1 {
		t.Errorf("waited from %v to %v, want the next 30 s step", before, after)
	}
	if !strings.Contains(e.logs.String(), "waiting for the next 30-second step") {
		t.Errorf("the wait was not logged")
	}

	t.Run("next step does not fit the deadline", func(t *testing.T) {
		third, _ := e.upstream(src)
		c, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := third.Mint(c, upstream.MintRequest{SecretName: secret, VersionID: "v3", Label: ptcsecret.Label(key, "v3")})
		if e.note(err) == nil || !strings.Contains(err.Error(), "did not fit before the deadline") || strings.Contains(err.Error(), "two consecutive") {
			t.Errorf("Mint = %v, want the code refusal explained without blaming totpSecret", err)
		}
	})
}

// TestWrongTOTPSecretAfterTwoSteps: a wrong totpSecret is reported only when the next step's
// code is refused too.
func TestWrongTOTPSecretAfterTwoSteps(t *testing.T) {
	e := newEnv(t, nil)
	const wrong = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
	e.leaks = append(e.leaks, wrong)
	d, sl := e.upstream(map[string]any{"username": tfaUser, "password": tfaPass, "totpSecret": wrong})
	d.api2.Sleep = func(c context.Context, w time.Duration) error {
		e.clock.Advance(w)
		return sl.sleep(c, w)
	}
	err := e.tryMint(d, "v1")
	if err == nil || !strings.Contains(err.Error(), "two consecutive 30-second steps") || !strings.Contains(err.Error(), `"totpSecret"`) {
		t.Fatalf("Mint = %v", err)
	}
	if n := e.calls("POST", "/v2/users/2fa-login", 401); n != 2 || len(sl.d) != 1 {
		t.Errorf("%d refused codes, waits %v; want 2 and 1", n, sl.d)
	}
}

// TestXRetryAfterHonoured: a 429 whose only hint is X-Retry-After (a Unix time, as the Hub API
// reference documents) is waited out until then.
func TestXRetryAfterHonoured(t *testing.T) {
	e := newEnv(t, func(o *dockerhubemu.Options) {
		o.RetryHeaders, o.FaultRetryAfter = []string{"X-Retry-After"}, 7*time.Second
	})
	d, sl := e.upstream(nil)
	e.emu.Inject(http.MethodPost, "/v2/auth/token", http.StatusTooManyRequests, 1)
	e.emu.Inject(http.MethodGet, "/v2/access-tokens", http.StatusTooManyRequests, 1)
	e.mint(d, "v1")
	if _, err := d.Tokens(ctx(t), ""); e.note(err) != nil {
		t.Fatal(err)
	}
	if len(sl.d) != 2 {
		t.Fatalf("waits = %v", sl.d)
	}
	for _, w := range sl.d {
		if w < 7*time.Second || w >= 8*time.Second {
			t.Errorf("waits = %v, want 7 s (+ jitter < 1 s) each", sl.d)
		}
	}
}

// TestExpiredOrgTokensDeletedBeforeMint: expired organization tokens count towards the cap
// until deleted, so a mint first deletes this secret's expired ones — and no other secret's.
func TestExpiredOrgTokensDeletedBeforeMint(t *testing.T) {
	e := newEnv(t, func(o *dockerhubemu.Options) { o.OrgTokenCap = 2 })
	d, _ := e.upstream(map[string]any{"organization": org, "tokenLifetimeDays": 1})
	e.mint(d, "v1")
	otherKey := ptcsecret.Key("eu-west-1", "123456789012", secret)
	other, err := d.Mint(ctx(t), upstream.MintRequest{SecretName: secret, VersionID: "x", Label: ptcsecret.Label(otherKey, "x")})
	if e.note(err) != nil {
		t.Fatal(err)
	}
	e.leaks = append(e.leaks, other.Credential.AccessToken)
	e.clock.Advance(48 * time.Hour) // both expired; the cap of 2 is reached
	e.mint(d, "v2")
	var labels []string
	for _, tok := range e.emu.Tokens() {
		labels = append(labels, tok.Label)
	}
	if len(labels) != 2 || labels[0] != ptcsecret.Label(otherKey, "x") || labels[1] != ptcsecret.Label(key, "v2") {
		t.Errorf("tokens after the mint = %v, want the other secret's and v2", labels)
	}
	if !strings.Contains(e.logs.String(), "deleted an expired organization access token") {
		t.Errorf("the deletion was not logged")
	}
}

// TestPullBudget: Verify reads the pull budget from a manifest HEAD of ratelimitpreview/test,
// which does not count as a pull; without ratelimit headers (a paid plan) it reports nothing,
// and a failing probe is logged, never an error.
func TestPullBudget(t *testing.T) {
	e := newEnv(t, func(o *dockerhubemu.Options) { o.PullLimits = map[string]int{user: 200} })
	d, _ := e.upstream(nil)
	m := e.mint(d, "v1")
	for range 2 {
		v, err := d.Verify(ctx(t), m.Credential)
		if e.note(err) != nil {
			t.Fatal(err)
		}
		if v.PullsRemaining == nil || *v.PullsRemaining != 200 || v.PullLimit == nil || *v.PullLimit != 200 || v.PullWindow != 6*time.Hour {
			t.Fatalf("Verification = %+v, want 200 of 200 per 6 h", v)
		}
	}
	if e.calls("HEAD", "/v2/"+PullProbeRepository+"/manifests/"+PullProbeReference, 200) != 2 || e.calls("GET", "/v2/"+PullProbeRepository+"/manifests/latest", 0) != 0 {
		t.Errorf("calls = %+v, want two HEADs and no GET", e.emu.Calls())
	}
	if left, _ := e.emu.PullsLeft(user); left != 200 {
		t.Errorf("the probe used up pulls: %d left", left)
	}

	t.Run("unlimited", func(t *testing.T) {
		e := newEnv(t, nil)
		d, _ := e.upstream(nil)
		v, err := d.Verify(ctx(t), e.mint(d, "v1").Credential)
		if e.note(err) != nil || v.PullsRemaining != nil || v.PullLimit != nil || !v.PullsUnlimited {
			t.Errorf("Verify = %+v, %v; want no budget, reported as unlimited", v, err)
		}
	})
	t.Run("probe fails", func(t *testing.T) {
		e.emu.Inject(http.MethodHead, "/v2/"+PullProbeRepository, http.StatusInternalServerError, 1)
		v, err := d.Verify(ctx(t), m.Credential)
		if e.note(err) != nil || v.PullsRemaining != nil || v.PullsUnlimited {
			t.Errorf("Verify = %+v, %v; want success without a budget (a failed probe is not \"unlimited\")", v, err)
		}
		if !strings.Contains(e.logs.String(), "could not read the credential's Docker Hub pull budget") {
			t.Errorf("the failed probe was not logged")
		}
	})
}

// TestVerifyIsOneHandshake: Verify proves the credential and reads its pull budget in three
// registry calls — GET /v2/, one token request carrying both pull scopes (checkRepository and
// the probe), and the probe's HEAD with that same token — not two handshakes (five calls). A
// refused credential stops after the token request and is still ErrBadCredentials; a HEAD the
// registry refuses only costs the budget.
func TestVerifyIsOneHandshake(t *testing.T) {
	e := newEnv(t, func(o *dockerhubemu.Options) { o.PullLimits = map[string]int{user: 100} })
	d, _ := e.upstream(nil)
	m := e.mint(d, "v1")
	e.emu.ResetCalls()
	v, err := d.Verify(ctx(t), m.Credential)
	if e.note(err) != nil || v.PullsRemaining == nil || *v.PullsRemaining != 100 {
		t.Fatalf("Verify = %+v, %v; want 100 pulls remaining", v, err)
	}
	calls := e.emu.Calls()
	want := []string{"GET /v2/", "GET /token", "HEAD /v2/" + PullProbeRepository + "/manifests/" + PullProbeReference}
	if len(calls) != len(want) {
		t.Fatalf("%d registry calls %+v, want %v", len(calls), calls, want)
	}
	for i, c := range calls {
		if c.Method+" "+c.Path != want[i] {
			t.Errorf("call %d = %s %s, want %s", i, c.Method, c.Path, want[i])
		}
	}
	q, _ := url.ParseQuery(calls[1].Query)
	if got := q["scope"]; len(got) != 2 || got[0] != "repository:"+DefaultCheckRepository+":pull" || got[1] != "repository:"+PullProbeRepository+":pull" {
		t.Errorf("token request scopes = %q, want checkRepository's and the probe's pull scope", got)
	}
	if calls[1].Auth != "Basic" || calls[2].Auth != "Bearer" {
		t.Errorf("auth: token request %q, HEAD %q; want Basic then the bearer token", calls[1].Auth, calls[2].Auth)
	}

	t.Run("refused credential", func(t *testing.T) {
		e.emu.ResetCalls()
		bad := upstream.Credential{Username: user, AccessToken: "dckr_pat_not-a-token"}
		if _, err := d.Verify(ctx(t), bad); !errors.Is(err, registryauth.ErrBadCredentials) {
			t.Fatalf("Verify of a wrong token = %v, want ErrBadCredentials", err)
		}
		if n := len(e.emu.Calls()); n != 2 {
			t.Errorf("%d calls for a refused credential %+v, want /v2/ and the token request", n, e.emu.Calls())
		}
	})
	t.Run("HEAD refused", func(t *testing.T) {
		e.emu.Inject(http.MethodHead, "/v2/"+PullProbeRepository, http.StatusForbidden, 1)
		v, err := d.Verify(ctx(t), m.Credential)
		if e.note(err) != nil || v.PullsRemaining != nil || v.PullsUnlimited {
			t.Errorf("Verify = %+v, %v; want success without a budget (a failed probe is not \"unlimited\")", v, err)
		}
	})
}

func TestParseRateLimit(t *testing.T) {
	for _, c := range []struct {
		in     string
		n      int
		window time.Duration
		ok     bool
	}{
		{"100;w=21600", 100, 6 * time.Hour, true},
		{"0;w=21600", 0, 6 * time.Hour, true},
		{"42", 42, 0, true},
		{" 7 ; w = 60 ", 7, time.Minute, true},
		{"100, 100;w=21600", 100, 0, true},
		{"", 0, 0, false},
		{"-1;w=60", 0, 0, false},
		{"many;w=60", 0, 0, false},
		{"5;w=soon", 5, 0, true},
	} {
		n, w, ok := parseRateLimit(c.in)
		if n != c.n || w != c.window || ok != c.ok {
			t.Errorf("parseRateLimit(%q) = %d, %v, %v; want %d, %v, %v", c.in, n, w, ok, c.n, c.window, c.ok)
		}
	}
	if v := parsePullBudget(http.Header{"Ratelimit-Limit": {"100;w=21600"}}); v.PullsRemaining != nil || v.PullsUnlimited {
		t.Errorf("a limit without remaining reported %+v", v)
	}
	if v := parsePullBudget(http.Header{"Ratelimit-Remaining": {"many"}}); v.PullsRemaining != nil || v.PullsUnlimited {
		t.Errorf("an unreadable header reported %+v", v)
	}
	if v := parsePullBudget(http.Header{}); !v.PullsUnlimited || v.PullsRemaining != nil {
		t.Errorf("no rate-limit header at all: %+v, want unlimited", v)
	}
}
