package acr_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/pinned"
	"github.com/ptc-credentials/ptc-credentials/internal/registryauth"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/acremu"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/acr"
)

// Planted values: distinctive, so the leak checks can scan every error and log line for them.
const (
	tenantID     = "0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5"
	clientID     = "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9"
	clientSecret = "PLANTED-acr-client-secret~Q8x2"
	subID        = "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"
	rg           = "ptc-rg"
	registry     = "ptcreg"
	tokenName    = "ptc-pull"
)

var t0 = time.Date(2026, 4, 5, 6, 7, 8, 0, time.UTC)

// clock is the fake time shared by the emulator and the upstream; sleeping advances it.
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

// sleeper records every wait and advances the clock instead of sleeping.
type sleeper struct {
	clock *clock
	mu    sync.Mutex
	waits []time.Duration
}

func (s *sleeper) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	s.waits = append(s.waits, d)
	s.mu.Unlock()
	s.clock.Advance(d)
	return nil
}

func (s *sleeper) Waits() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.waits)
}

// env is an ACR emulator and an upstream pointed at it.
type env struct {
	t     *testing.T
	emu   *acremu.Server
	srv   *httptest.Server
	clock *clock
	sleep *sleeper
	logs  bytes.Buffer
	logMu sync.Mutex
	errs  []error
}

func newEnv(t *testing.T, tweak func(*acremu.Options)) *env {
	t.Helper()
	e := &env{t: t, clock: &clock{t: t0}}
	e.sleep = &sleeper{clock: e.clock}
	o := acremu.Options{
		Now: e.clock.Now, TenantID: tenantID, ClientID: clientID, ClientSecret: clientSecret,
		SubscriptionID: subID, ResourceGroup: rg, Registry: registry,
	}
	if tweak != nil {
		tweak(&o)
	}
	e.emu = acremu.New(o, tokenName)
	e.srv = httptest.NewServer(e.emu)
	t.Cleanup(e.srv.Close)
	t.Cleanup(e.scan)
	return e
}

func (e *env) Write(p []byte) (int, error) {
	e.logMu.Lock()
	defer e.logMu.Unlock()
	return e.logs.Write(p)
}

// scan fails the test when an error or log line shows the client secret or anything the
// emulator handed out (passwords, Entra ID tokens, registry tokens).
func (e *env) scan() {
	var all []string
	for _, err := range e.errs {
		if err != nil {
			all = append(all, err.Error())
		}
	}
	e.logMu.Lock()
	all = append(all, e.logs.String())
	e.logMu.Unlock()
	for _, s := range all {
		for _, leak := range append(e.emu.Issued(), clientSecret) {
			if strings.Contains(s, leak) {
				e.t.Errorf("secret %.8s… leaked in %q", leak, s)
			}
		}
	}
}

func (e *env) note(err error) error {
	e.errs = append(e.errs, err)
	return err
}

// source renders a source secret pointing at the emulator; nil values delete a field.
func (e *env) source(fields map[string]any) []byte {
	m := map[string]any{
		"tenantId": tenantID, "clientId": clientID, "clientSecret": clientSecret,
		"tokenId": e.emu.TokenID(tokenName), "authorityUrl": e.srv.URL, "managementUrl": e.srv.URL,
	}
	for k, v := range fields {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	b, _ := json.Marshal(m)
	return b
}

func (e *env) opts() upstream.Options {
	return upstream.Options{
		Now: e.clock.Now, Sleep: e.sleep.Sleep, RegistryURL: e.srv.URL, Standins: pinned.NewStandins(e.srv.URL),
		Logger: slog.New(slog.NewJSONHandler(e, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

func (e *env) upstream(fields map[string]any) *acr.ACR {
	e.t.Helper()
	a, err := acr.New(e.source(fields), e.opts())
	if err != nil {
		e.t.Fatal(e.note(err))
	}
	return a
}

func (e *env) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	e.t.Cleanup(cancel)
	return ctx
}

// calls returns "METHOD path" of every recorded request.
func (e *env) calls() []string {
	var out []string
	for _, c := range e.emu.Calls() {
		out = append(out, c.Method+" "+c.Path)
	}
	return out
}

func (e *env) loginErr(cred upstream.Credential) error {
	return registryauth.Check(context.Background(), nil, registryauth.Target{Registry: e.srv.URL, Repository: "hello-world"},
		registryauth.Credential{Username: cred.Username, Password: cred.AccessToken})
}

func TestParseSource(t *testing.T) {
	tid := "/subscriptions/" + subID + "/resourceGroups/" + rg + "/providers/Microsoft.ContainerRegistry/registries/" + registry + "/tokens/" + tokenName
	base := func(edit map[string]any) string {
		m := map[string]any{"tenantId": tenantID, "clientId": clientID, "clientSecret": clientSecret, "tokenId": tid}
		for k, v := range edit {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	t.Run("defaults", func(t *testing.T) {
		s, err := acr.ParseSource([]byte(base(map[string]any{"tokenId": strings.ToLower(tid) + "/"})))
		if err != nil {
			t.Fatal(err)
		}
		want := acr.Source{
			TenantID: tenantID, ClientID: clientID, ClientSecret: clientSecret,
			TokenID:     "/subscriptions/" + subID + "/resourceGroups/" + rg + "/providers/Microsoft.ContainerRegistry/registries/" + registry + "/tokens/" + tokenName,
			LoginServer: "ptcreg.azurecr.io", PasswordLifetimeDays: 90, CheckRepository: "hello-world",
			AuthorityURL: "https://login.microsoftonline.com", ManagementURL: "https://management.azure.com",
			ManagementScope: "https://management.azure.com/.default",
		}
		if s != want {
			t.Fatalf("got  %+v\nwant %+v", s, want)
		}
	})
	t.Run("overrides", func(t *testing.T) {
		s, err := acr.ParseSource([]byte(base(map[string]any{
			"loginServer": "ptcreg.azurecr.cn", "passwordLifetimeDays": -1, "checkRepository": "team/app",
			"authorityUrl": "https://login.chinacloudapi.cn/", "managementUrl": "https://management.chinacloudapi.cn",
			"managementScope": "https://management.chinacloudapi.cn/.default", "tenantId": "contoso.onmicrosoft.com",
		})))
		if err != nil {
			t.Fatal(err)
		}
		if s.LoginServer != "ptcreg.azurecr.cn" || s.PasswordLifetimeDays != -1 || s.CheckRepository != "team/app" ||
			s.AuthorityURL != "https://login.chinacloudapi.cn" || s.ManagementScope != "https://management.chinacloudapi.cn/.default" {
			t.Fatalf("%+v", s)
		}
	})
	for _, tc := range []struct {
		name, raw, want string
	}{
		{"not JSON", `{"tenantId": "` + clientSecret, "not valid JSON"},
		{"array", `[]`, "not a JSON object"},
		{"unknown field", base(map[string]any{"password": "x"}), `unknown field "password"`},
		{"wrong type", base(map[string]any{"passwordLifetimeDays": "90"}), `field "passwordLifetimeDays" must be a int`},
		{"no tenant", base(map[string]any{"tenantId": nil}), `field "tenantId" is required`},
		{"bad tenant", base(map[string]any{"tenantId": "a/b"}), `field "tenantId" must be`},
		{"no client", base(map[string]any{"clientId": nil}), `field "clientId" is required`},
		{"client not a GUID", base(map[string]any{"clientId": "my-app"}), `field "clientId" must be the application (client) id`},
		{"no secret", base(map[string]any{"clientSecret": ""}), `field "clientSecret" is required`},
		{"no token id", base(map[string]any{"tokenId": nil}), `field "tokenId" is required`},
		{"token id relative", base(map[string]any{"tokenId": strings.TrimPrefix(tid, "/")}), `field "tokenId" must start with /subscriptions/`},
		{"token id of registry", base(map[string]any{"tokenId": strings.TrimSuffix(tid, "/tokens/"+tokenName)}), `field "tokenId" has 8 path segments, want 10`},
		{"token id of scope map", base(map[string]any{"tokenId": strings.Replace(tid, "/tokens/", "/scopeMaps/", 1)}), `field "tokenId" segment 9 is "scopeMaps" where "tokens" belongs`},
		{"token id other provider", base(map[string]any{"tokenId": strings.Replace(tid, "Microsoft.ContainerRegistry", "Microsoft.Storage", 1)}), `where "Microsoft.ContainerRegistry" belongs`},
		{"bad subscription", base(map[string]any{"tokenId": strings.Replace(tid, subID, "my-sub", 1)}), `subscription "my-sub" is not a subscription id`},
		{"bad registry", base(map[string]any{"tokenId": strings.Replace(tid, "/"+registry+"/", "/my-reg/", 1)}), `registry "my-reg" is not a valid registry name`},
		{"bad token name", base(map[string]any{"tokenId": strings.Replace(tid, tokenName, "bad.name", 1)}), `token name "bad.name" is not a valid`},
		{"bad resource group", base(map[string]any{"tokenId": strings.Replace(tid, rg, "rg.", 1)}), `resource group "rg." is not a valid`},
		{"bad login server", base(map[string]any{"loginServer": "https://x.azurecr.io/v2/"}), `field "loginServer" is not a registry host`},
		{"lifetime too long", base(map[string]any{"passwordLifetimeDays": 4000}), `"passwordLifetimeDays" is 4000`},
		{"lifetime negative", base(map[string]any{"passwordLifetimeDays": -2}), `"passwordLifetimeDays" is -2`},
		{"authority over http", base(map[string]any{"authorityUrl": "http://login.example.com"}), `field "authorityUrl": plain http is accepted only for loopback`},
		{"management with credentials", base(map[string]any{"managementUrl": "https://u:" + clientSecret + "@management.azure.com"}), `field "managementUrl": credentials in the URL`},
		{"management not a URL", base(map[string]any{"managementUrl": "management.azure.com"}), `field "managementUrl": not an absolute URL`},
		{"bad scope", base(map[string]any{"managementScope": "https://management.azure.com"}), `field "managementScope" must be`},
		{"bad check repository", base(map[string]any{"checkRepository": "Hello World"}), `field "checkRepository" is not a repository name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := acr.ParseSource([]byte(tc.raw))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "azure-container-registry source secret: ") {
				t.Errorf("error does not say which secret: %v", err)
			}
			if strings.Contains(err.Error(), clientSecret) || strings.Contains(err.Error(), "PLANTED") {
				t.Errorf("error quotes the secret: %v", err)
			}
		})
	}
}

func TestChooseSlot(t *testing.T) {
	for _, tc := range []struct {
		name    string
		stages  []string
		slot    string
		guessed bool
		err     string
	}{
		{"no secret yet (provisioner)", nil, acr.Password1, false, ""},
		{"current uses password1", []string{"AWSCURRENT", acr.StagePassword1}, acr.Password2, false, ""},
		{"current uses password2", []string{acr.StagePassword2, "AWSCURRENT"}, acr.Password1, false, ""},
		{"current made by hand", []string{"AWSCURRENT"}, acr.Password2, true, ""},
		{"current carries both", []string{"AWSCURRENT", acr.StagePassword1, acr.StagePassword2}, "", false, "carries both"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			slot, guessed, err := acr.ChooseSlot(tc.stages)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, want error %q", err, tc.err)
				}
				return
			}
			if err != nil || slot != tc.slot || guessed != tc.guessed {
				t.Fatalf("got %s %v %v, want %s %v", slot, guessed, err, tc.slot, tc.guessed)
			}
		})
	}
	if acr.StageFor(acr.Password1) != acr.StagePassword1 || acr.StageFor(acr.Password2) != acr.StagePassword2 {
		t.Fatal("StageFor")
	}
}

func TestMint(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stages []string
		slot   string
	}{
		{"first password", nil, acr.Password1},
		{"current on password1", []string{"AWSCURRENT", acr.StagePassword1}, acr.Password2},
		{"current on password2", []string{"AWSCURRENT", acr.StagePassword2}, acr.Password1},
		{"hand-made current", []string{"AWSCURRENT"}, acr.Password2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			a := e.upstream(nil)
			m, err := a.Mint(e.ctx(), upstream.MintRequest{SecretName: "ecr-pullthroughcache/acr", VersionID: "v1", Label: "ptc-label-v1", CurrentStages: tc.stages})
			if err != nil {
				t.Fatal(e.note(err))
			}
			pw := e.emu.Passwords(tokenName)[tc.slot]
			if m.Credential.Username != tokenName || m.Credential.AccessToken == "" || m.Credential.AccessToken != pw.Value {
				t.Fatalf("credential %v is not the %s password of %s", m.Credential, tc.slot, tokenName)
			}
			wantExp := t0.Add(90 * 24 * time.Hour)
			if m.Token.ID != tc.slot || m.Token.Label != "ptc-label-v1" || !m.Token.ExpiresAt.Equal(wantExp) {
				t.Fatalf("token %+v", m.Token)
			}
			if !slices.Equal(m.Stages, []string{acr.StageFor(tc.slot)}) {
				t.Fatalf("stages %v", m.Stages)
			}
			gens := e.emu.Generations()
			if len(gens) != 1 || gens[0].Slot != tc.slot || gens[0].Token != tokenName || !gens[0].Expiry.Equal(wantExp) {
				t.Fatalf("generations %+v", gens)
			}
			if got, want := e.calls(), []string{
				"POST /" + tenantID + "/oauth2/v2.0/token",
				"POST /subscriptions/" + subID + "/resourceGroups/" + rg + "/providers/Microsoft.ContainerRegistry/registries/" + registry + "/generateCredentials",
			}; !slices.Equal(got, want) {
				t.Fatalf("calls %v, want %v", got, want)
			}
			if other := e.emu.Passwords(tokenName); len(other) != 1 {
				t.Fatalf("the other slot was touched: %d slots set", len(other))
			}
			if len(tc.stages) == 1 && !strings.Contains(e.logs.String(), "no ACR slot label") {
				t.Error("a hand-made current gave no warning")
			}
		})
	}
}

func TestMintNoExpiry(t *testing.T) {
	e := newEnv(t, nil)
	m, err := e.upstream(map[string]any{"passwordLifetimeDays": -1}).Mint(e.ctx(), upstream.MintRequest{Label: "l"})
	if err != nil {
		t.Fatal(e.note(err))
	}
	if !m.Token.ExpiresAt.IsZero() || !e.emu.Generations()[0].Expiry.IsZero() {
		t.Fatalf("a password with lifetime -1 expires: %v", m.Token.ExpiresAt)
	}
}

func TestEntraTokenReusedUntilNearExpiry(t *testing.T) {
	e := newEnv(t, nil)
	a := e.upstream(nil)
	count := func() int {
		n := 0
		for _, c := range e.calls() {
			if strings.HasSuffix(c, "/oauth2/v2.0/token") {
				n++
			}
		}
		return n
	}
	for range 3 {
		if _, err := a.Mint(e.ctx(), upstream.MintRequest{Label: "l", CurrentStages: []string{acr.StagePassword1}}); err != nil {
			t.Fatal(e.note(err))
		}
	}
	if n := count(); n != 1 {
		t.Fatalf("%d token requests for three mints, want 1", n)
	}
	e.clock.Advance(3599*time.Second - 4*time.Minute) // inside the 5-minute renewal margin
	if _, err := a.Mint(e.ctx(), upstream.MintRequest{Label: "l", CurrentStages: []string{acr.StagePassword1}}); err != nil {
		t.Fatal(e.note(err))
	}
	if n := count(); n != 2 {
		t.Fatalf("%d token requests, want a new one near expiry", n)
	}
}

func TestMintLongRunning(t *testing.T) {
	for _, mode := range []struct {
		name  string
		async acremu.AsyncMode
		waits []time.Duration
		calls int
	}{
		// Location: 202, one poll still 202, then 200.
		{"location", acremu.AsyncLocation, []time.Duration{3 * time.Second, 3 * time.Second}, 4},
		// Azure-AsyncOperation: 202, status InProgress, status Succeeded, then the result.
		{"azure-asyncoperation", acremu.AsyncOperation, []time.Duration{3 * time.Second, 3 * time.Second}, 5},
		// The REST spec's example Location, under the registry (…/operationStatuses/registries-…).
		{"registry-scoped location", acremu.AsyncLocation, []time.Duration{3 * time.Second, 3 * time.Second}, 4},
	} {
		t.Run(mode.name, func(t *testing.T) {
			e := newEnv(t, func(o *acremu.Options) {
				o.Async, o.AsyncPolls, o.RetryAfter = mode.async, 1, 3
				o.RegistryLocation = strings.HasPrefix(mode.name, "registry")
			})
			m, err := e.upstream(nil).Mint(e.ctx(), upstream.MintRequest{Label: "l", CurrentStages: []string{acr.StagePassword2}})
			if err != nil {
				t.Fatal(e.note(err))
			}
			if m.Credential.AccessToken != e.emu.Passwords(tokenName)[acr.Password1].Value {
				t.Fatal("the polled result is not the new password1")
			}
			if got := e.sleep.Waits(); !slices.Equal(got, mode.waits) {
				t.Errorf("waits %v, want %v (Retry-After honoured)", got, mode.waits)
			}
			if n := len(e.calls()); n != mode.calls {
				t.Errorf("calls %v, want %d", e.calls(), mode.calls)
			}
		})
	}
}

// TestLongRunningOffHostRefused: a poll URL on another host never receives the bearer token.
func TestLongRunningOffHostRefused(t *testing.T) {
	e := newEnv(t, nil)
	var otherHits int
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { otherHits++ }))
	defer other.Close()
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/generateCredentials") {
			w.Header().Set("Location", other.URL+"/operationResults/1")
			w.WriteHeader(http.StatusAccepted)
			return
		}
		e.emu.ServeHTTP(w, r)
	}))
	defer front.Close()
	o := e.opts()
	o.Standins = pinned.NewStandins(e.srv.URL, front.URL) // the other host is not listed
	a, err := acr.New(e.source(map[string]any{"authorityUrl": front.URL, "managementUrl": front.URL}), o)
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Mint(e.ctx(), upstream.MintRequest{Label: "l"})
	if e.note(err) == nil || !strings.Contains(err.Error(), "on another host") {
		t.Fatalf("got %v", err)
	}
	if otherHits != 0 {
		t.Fatal("the other host was called")
	}
}

func TestMintErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tweak  func(*acremu.Options)
		source map[string]any
		before func(e *env)
		want   []string
		ok     bool
		waits  int
	}{
		{name: "wrong client secret", source: map[string]any{"clientSecret": "PLANTED-wrong-secret-77"},
			want: []string{"Microsoft Entra ID", "HTTP 401", "AADSTS7000215", `"tenantId", "clientId" and "clientSecret"`}},
		{name: "unknown tenant", source: map[string]any{"tenantId": "0c1d2e3f-0000-4c6d-8e7f-8091a2b3c4d5"},
			want: []string{"HTTP 400", "AADSTS90002", `"tenantId"`}},
		{name: "unknown client", source: map[string]any{"clientId": "00000000-0000-4000-8000-000000000000"},
			want: []string{"HTTP 400", "AADSTS700016", `"clientId"`}},
		{name: "no role on the registry", tweak: func(o *acremu.Options) { o.Forbidden = true },
			want: []string{"HTTP 403", "does not have authorization", "generateCredentials/action", `field "clientId"`}},
		{name: "unknown token", source: map[string]any{"tokenId": "/subscriptions/" + subID + "/resourceGroups/" + rg + "/providers/Microsoft.ContainerRegistry/registries/" + registry + "/tokens/nobody"},
			want: []string{"HTTP 404", `check field "tokenId"`, "token nobody"}},
		{name: "unknown registry", source: map[string]any{"tokenId": "/subscriptions/" + subID + "/resourceGroups/" + rg + "/providers/Microsoft.ContainerRegistry/registries/otherreg/tokens/" + tokenName},
			want: []string{"HTTP 404", "registry otherreg"}},
		{name: "429 is waited out", before: func(e *env) { e.emu.Inject(http.MethodPost, "/subscriptions/", 429, 2) }, ok: true, waits: 2},
		{name: "500 on generate is retried", before: func(e *env) { e.emu.Inject(http.MethodPost, "/subscriptions/", 500, 2) }, ok: true, waits: 2},
		{name: "500 on generate three times", before: func(e *env) { e.emu.Inject(http.MethodPost, "/subscriptions/", 500, 3) },
			want: []string{"Azure Resource Manager: generate password1 of ACR token ptc-pull: HTTP 500"}, waits: 2},
		{name: "500 on the Entra token is retried", before: func(e *env) { e.emu.Inject(http.MethodPost, "/"+tenantID+"/", 503, 1) }, ok: true, waits: 1},
		{name: "401 from ARM gets a new token once", before: func(e *env) { e.emu.Inject(http.MethodPost, "/subscriptions/", 401, 1) }, ok: true},
		{name: "401 from ARM twice", before: func(e *env) { e.emu.Inject(http.MethodPost, "/subscriptions/", 401, 2) },
			want: []string{"HTTP 401", `check that field "tenantId" is the tenant of the subscription`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.tweak)
			if tc.before != nil {
				tc.before(e)
			}
			a := e.upstream(tc.source)
			m, err := a.Mint(e.ctx(), upstream.MintRequest{Label: "l"})
			e.note(err)
			if tc.ok {
				if err != nil || m.Credential.AccessToken != e.emu.Passwords(tokenName)[acr.Password1].Value {
					t.Fatalf("mint failed: %v", err)
				}
			} else {
				if err == nil {
					t.Fatal("mint succeeded")
				}
				for _, w := range tc.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
				if strings.Contains(err.Error(), "PLANTED") {
					t.Errorf("error quotes a secret: %v", err)
				}
			}
			if n := len(e.sleep.Waits()); n != tc.waits {
				t.Errorf("%d waits, want %d: %v", n, tc.waits, e.sleep.Waits())
			}
		})
	}
}

func TestTokensAndRevokeDoNothing(t *testing.T) {
	e := newEnv(t, nil)
	a := e.upstream(nil)
	m, err := a.Mint(e.ctx(), upstream.MintRequest{Label: "l"})
	if err != nil {
		t.Fatal(e.note(err))
	}
	e.emu.ResetCalls()
	toks, err := a.Tokens(e.ctx(), "ptc-")
	if err != nil || toks != nil {
		t.Fatalf("Tokens = %v, %v", toks, err)
	}
	if err := a.Revoke(e.ctx(), m.Token); err != nil {
		t.Fatal(err)
	}
	if len(e.emu.Calls()) != 0 {
		t.Fatalf("Tokens/Revoke called the API: %v", e.calls())
	}
	e.clock.Advance(time.Minute)
	if err := e.loginErr(m.Credential); err != nil {
		t.Fatalf("Revoke invalidated the password: %v", err)
	}
}

func TestProvider(t *testing.T) {
	e := newEnv(t, nil)
	if acr.Provider.Registry != "azure-container-registry" || !acr.Provider.FixedUsername || acr.Provider.DefaultRegistryURL != "" {
		t.Fatalf("%+v", acr.Provider)
	}
	up, err := acr.Provider.New(e.source(nil), e.opts())
	if err != nil || up.Registry() != "azure-container-registry" {
		t.Fatalf("%v %v", up, err)
	}
	if _, err := acr.Provider.New(e.source(nil), upstream.Options{RegistryURL: "http://10.0.0.1:5000", Standins: pinned.NewStandins(e.srv.URL)}); err == nil || !strings.Contains(err.Error(), "tag ptc:registry-url") {
		t.Fatalf("a plain-http registry tag off loopback was accepted: %v", err)
	}
	if a := e.upstream(nil); a.Username() != tokenName {
		t.Fatal(a.Username())
	}
}

func TestVerify(t *testing.T) {
	t.Run("replicated password logs in at once", func(t *testing.T) {
		e := newEnv(t, func(o *acremu.Options) { o.ReplicationDelay = time.Minute })
		a := e.upstream(nil)
		m, err := a.Mint(e.ctx(), upstream.MintRequest{Label: "l"})
		if err != nil {
			t.Fatal(e.note(err))
		}
		e.clock.Advance(time.Minute)
		if _, err := a.Verify(e.ctx(), m.Credential); err != nil {
			t.Fatal(e.note(err))
		}
		if len(e.sleep.Waits()) != 0 {
			t.Fatalf("waited %v", e.sleep.Waits())
		}
	})
	t.Run("waits for replication with backoff", func(t *testing.T) {
		e := newEnv(t, func(o *acremu.Options) { o.ReplicationDelay = 30 * time.Second })
		a := e.upstream(nil)
		m, err := a.Mint(e.ctx(), upstream.MintRequest{Label: "l"})
		if err != nil {
			t.Fatal(e.note(err))
		}
		e.emu.ResetCalls()
		if _, err := a.Verify(e.ctx(), m.Credential); err != nil {
			t.Fatal(e.note(err))
		}
		want := []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
		if got := e.sleep.Waits(); !slices.Equal(got, want) {
			t.Fatalf("waits %v, want %v", got, want)
		}
		// Six handshakes of two calls each (the /v2/ challenge, then the token endpoint).
		if n := len(e.calls()); n != 12 {
			t.Errorf("%d calls, want 12: %v", n, e.calls())
		}
		if !strings.Contains(e.logs.String(), "ACR accepted the new password") {
			t.Error("no log line for the eventual success")
		}
	})
	t.Run("never replicates before the deadline", func(t *testing.T) {
		e := newEnv(t, func(o *acremu.Options) { o.ReplicationDelay = time.Hour })
		a := e.upstream(nil)
		m, err := a.Mint(e.ctx(), upstream.MintRequest{Label: "l"})
		if err != nil {
			t.Fatal(e.note(err))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err = a.Verify(ctx, m.Credential)
		e.note(err)
		if err == nil || !errors.Is(err, registryauth.ErrBadCredentials) {
			t.Fatalf("got %v", err)
		}
		want := []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second} // 14 s; 10 more would pass 30 s - 10 s margin
		if got := e.sleep.Waits(); !slices.Equal(got, want) {
			t.Fatalf("waits %v, want %v", got, want)
		}
		for _, w := range []string{"the new ACR password was still refused after 4 attempts over 14s", "about a minute to replicate", "the rotation will be retried"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not say %q", err, w)
			}
		}
	})
	t.Run("no deadline: bounded by VerifyBudget", func(t *testing.T) {
		e := newEnv(t, func(o *acremu.Options) { o.ReplicationDelay = 24 * time.Hour })
		a := e.upstream(nil)
		m, err := a.Mint(e.ctx(), upstream.MintRequest{Label: "l"})
		if err != nil {
			t.Fatal(e.note(err))
		}
		_, err = a.Verify(context.Background(), m.Credential)
		e.note(err)
		var total time.Duration
		for _, w := range e.sleep.Waits() {
			total += w
		}
		if err == nil || total > acr.VerifyBudget || total < acr.VerifyBudget-acr.VerifyMaxWait {
			t.Fatalf("err %v after waiting %s", err, total)
		}
	})
	t.Run("wrong username is refused", func(t *testing.T) {
		e := newEnv(t, nil)
		a := e.upstream(nil)
		m, err := a.Mint(e.ctx(), upstream.MintRequest{Label: "l"})
		if err != nil {
			t.Fatal(e.note(err))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 12*time.Second)
		defer cancel()
		_, err = a.Verify(ctx, upstream.Credential{Username: "someone", AccessToken: m.Credential.AccessToken})
		if e.note(err) == nil || !errors.Is(err, registryauth.ErrBadCredentials) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("unreachable registry", func(t *testing.T) {
		e := newEnv(t, nil)
		dead := httptest.NewServer(http.NotFoundHandler())
		deadURL := dead.URL
		dead.Close()
		o := e.opts()
		o.RegistryURL = deadURL
		o.Standins = pinned.NewStandins(e.srv.URL, deadURL)
		a, err := acr.New(e.source(nil), o)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err = a.Verify(ctx, upstream.Credential{Username: tokenName, AccessToken: "PLANTED-not-a-password"})
		e.note(err)
		if err == nil || !errors.Is(err, registryauth.ErrUnreachable) || !strings.Contains(err.Error(), "could not be reached after 3 attempts over 6s") {
			t.Fatalf("got %v (waits %v)", err, e.sleep.Waits())
		}
	})
	t.Run("protocol error is not retried", func(t *testing.T) {
		e := newEnv(t, nil)
		open := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) }))
		defer open.Close()
		o := e.opts()
		o.RegistryURL = open.URL
		o.Standins = pinned.NewStandins(e.srv.URL, open.URL)
		a, err := acr.New(e.source(nil), o)
		if err != nil {
			t.Fatal(err)
		}
		_, err = a.Verify(e.ctx(), upstream.Credential{Username: tokenName, AccessToken: "PLANTED-not-a-password"})
		if e.note(err) == nil || !errors.Is(err, registryauth.ErrProtocol) || len(e.sleep.Waits()) != 0 {
			t.Fatalf("got %v after %v", err, e.sleep.Waits())
		}
	})
	t.Run("loginServer is used without the registry tag", func(t *testing.T) {
		e := newEnv(t, nil)
		o := e.opts()
		o.RegistryURL = ""
		a, err := acr.New(e.source(map[string]any{"loginServer": e.srv.URL}), o)
		if err != nil {
			t.Fatal(err)
		}
		m, err := a.Mint(e.ctx(), upstream.MintRequest{Label: "l"})
		if err != nil {
			t.Fatal(e.note(err))
		}
		if _, err := a.Verify(e.ctx(), m.Credential); err != nil {
			t.Fatal(e.note(err))
		}
	})
}

func TestRetireAllInvalidatesBothSlots(t *testing.T) {
	e := newEnv(t, nil)
	a := e.upstream(nil)
	first, err := a.Mint(e.ctx(), upstream.MintRequest{Label: "l1"})
	if err != nil {
		t.Fatal(e.note(err))
	}
	second, err := a.Mint(e.ctx(), upstream.MintRequest{Label: "l2", CurrentStages: first.Stages})
	if err != nil {
		t.Fatal(e.note(err))
	}
	e.clock.Advance(time.Minute)
	for _, m := range []upstream.Minted{first, second} {
		if err := e.loginErr(m.Credential); err != nil {
			t.Fatalf("before RetireAll %s does not log in: %v", m.Token.ID, err)
		}
	}
	if err := a.RetireAll(e.ctx()); err != nil {
		t.Fatal(e.note(err))
	}
	e.clock.Advance(time.Minute)
	for _, m := range []upstream.Minted{first, second} {
		if err := e.loginErr(m.Credential); !errors.Is(err, registryauth.ErrBadCredentials) {
			t.Errorf("after RetireAll the %s password still logs in (err=%v)", m.Token.ID, err)
		}
	}
}

// TestLongRunningFailuresAreSurfaced: an operation that ends Failed or Canceled — told by its
// Azure-AsyncOperation document, or by its Location's error answer when that is the only form —
// fails the mint with ARM's own code and message, and no password is taken as new.
func TestLongRunningFailuresAreSurfaced(t *testing.T) {
	for _, tc := range []struct {
		name    string
		async   acremu.AsyncMode
		outcome string
		want    []string
	}{
		{"azure-asyncoperation failed", acremu.AsyncOperation, "Failed", []string{"long-running operation ended Failed", "TokenCredentialGenerationFailed", "Please retry the operation", "InternalServerError"}},
		{"azure-asyncoperation canceled", acremu.AsyncOperation, "Canceled", []string{"long-running operation ended Canceled", "OperationCanceled"}},
		{"location failed", acremu.AsyncLocation, "Failed", []string{"the long-running operation failed", "HTTP 400", "Generating credentials for token"}},
		{"location canceled", acremu.AsyncLocation, "Canceled", []string{"the long-running operation failed", "HTTP 409", "was canceled"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(o *acremu.Options) {
				o.Async, o.AsyncPolls, o.RetryAfter, o.AsyncOutcome = tc.async, 1, 3, tc.outcome
			})
			_, err := e.upstream(nil).Mint(e.ctx(), upstream.MintRequest{Label: "l", CurrentStages: []string{acr.StagePassword2}})
			if e.note(err) == nil {
				t.Fatal("mint succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if len(e.emu.Generations()) != 0 {
				t.Error("the emulator regenerated a slot on a failed operation")
			}
		})
	}
}

// TestLongRunningStopsBeforeTheDeadline: a poll wait (Retry-After) that would outlast the
// invocation is not started; the error says the operation is still running.
func TestLongRunningStopsBeforeTheDeadline(t *testing.T) {
	e := newEnv(t, func(o *acremu.Options) { o.Async, o.AsyncPolls, o.RetryAfter = acremu.AsyncOperation, 5, 20 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := e.upstream(nil).Mint(ctx, upstream.MintRequest{Label: "l", CurrentStages: []string{acr.StagePassword2}})
	if e.note(err) == nil || !strings.Contains(err.Error(), "would outlast this invocation") || !strings.Contains(err.Error(), "the rotation will be retried") {
		t.Fatalf("got %v", err)
	}
	if w := e.sleep.Waits(); len(w) != 0 {
		t.Errorf("waited %v although the wait could not fit", w)
	}
}

// TestLongRunningStatusDocumentAtLocation: a Location that answers 200 with an operation
// resource (the spec names an …/operationStatuses/… URL as Location) is read as a status —
// InProgress keeps polling — not taken for the result; the result then follows.
func TestLongRunningStatusDocumentAtLocation(t *testing.T) {
	e := newEnv(t, nil)
	var polls int
	var front *httptest.Server
	front = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/generateCredentials"):
			w.Header().Set("Location", front.URL+"/subscriptions/"+subID+"/resourceGroups/"+rg+"/providers/Microsoft.ContainerRegistry/registries/"+registry+"/operationStatuses/registries-1?api-version=2023-07-01")
			w.Header().Set("Retry-After", "4")
			w.WriteHeader(http.StatusAccepted)
		case strings.Contains(r.URL.Path, "/operationStatuses/"):
			polls++
			w.Header().Set("Content-Type", "application/json")
			if polls == 1 {
				_, _ = w.Write([]byte(`{"id":"x","status":"InProgress"}`))
				return
			}
			_, _ = w.Write([]byte(`{"username":"` + tokenName + `","passwords":[{"name":"password1","value":"PLANTED-lro-pass-1","creationTime":"2025-01-01T00:00:00Z"}]}`))
		default:
			e.emu.ServeHTTP(w, r)
		}
	}))
	defer front.Close()
	fo := e.opts()
	fo.Standins = pinned.NewStandins(e.srv.URL, front.URL)
	a, err := acr.New(e.source(map[string]any{"authorityUrl": front.URL, "managementUrl": front.URL}), fo)
	if err != nil {
		t.Fatal(err)
	}
	m, err := a.Mint(e.ctx(), upstream.MintRequest{Label: "l", CurrentStages: []string{acr.StagePassword2}})
	if e.note(err) != nil {
		t.Fatal(err)
	}
	if m.Credential.AccessToken != "PLANTED-lro-pass-1" || polls != 2 {
		t.Fatalf("credential %q after %d polls", m.Credential.Username, polls)
	}
	// The 202's Retry-After, then the default: the status answer carried none.
	if w := e.sleep.Waits(); !slices.Equal(w, []time.Duration{4 * time.Second, 2 * time.Second}) {
		t.Errorf("waits %v", w)
	}
}
