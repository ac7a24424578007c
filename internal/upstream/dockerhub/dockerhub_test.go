package dockerhub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/pinned"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/registryauth"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/dockerhubemu"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
)

// Planted values: distinctive, so the leak checks can scan every error and log line for them.
const (
	user      = "alice"
	password  = "PLANTED-hub-password-5e1b"
	tfaUser   = "bob"
	tfaPass   = "PLANTED-bob-password-77aa"
	tfaSecret = "JBSWY3DPEHPK3PXP"
	org       = "acme"
	secret    = "ecr-pullthroughcache/docker-hub"
)

// key is what token labels hash (see ptcsecret.Key).
var key = ptcsecret.Key("us-east-1", "123456789012", secret)

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

// env is a Docker Hub emulator with its own clock, shared with the upstream under test.
type env struct {
	t     *testing.T
	emu   *dockerhubemu.Server
	srv   *httptest.Server
	clock *clock
	logs  bytes.Buffer
	// leaks collects every secret the test must never see in an error or a log line.
	leaks []string
	// errs collects every error returned, for the final leak scan.
	errs []error
}

func newEnv(t *testing.T, tweak func(*dockerhubemu.Options)) *env {
	t.Helper()
	e := &env{t: t, clock: &clock{t: time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)}}
	opts := dockerhubemu.Options{Now: e.clock.Now}
	if tweak != nil {
		tweak(&opts)
	}
	e.emu = dockerhubemu.New(opts,
		dockerhubemu.Account{Username: user, Password: password, Orgs: []string{org}},
		dockerhubemu.Account{Username: tfaUser, Password: tfaPass, TOTPSecret: tfaSecret},
	)
	e.srv = httptest.NewServer(e.emu)
	e.leaks = []string{password, tfaPass, tfaSecret}
	t.Cleanup(e.srv.Close)
	t.Cleanup(e.scan)
	return e
}

// scan fails the test when any error or log line shows a planted or minted secret.
func (e *env) scan() {
	var all []string
	for _, err := range e.errs {
		if err != nil {
			all = append(all, err.Error())
		}
	}
	all = append(all, e.logs.String())
	for _, s := range all {
		for _, leak := range e.leaks {
			if leak != "" && strings.Contains(s, leak) {
				e.t.Errorf("secret %.12s… leaked in %q", leak, s)
			}
		}
	}
	// Every minted token too, including ones the test never saw.
	for _, tok := range e.emu.Tokens() {
		for _, s := range all {
			if strings.Contains(s, tok.Secret) {
				e.t.Errorf("minted token leaked in %q", s)
			}
		}
	}
}

func (e *env) note(err error) error {
	e.errs = append(e.errs, err)
	return err
}

// source renders a source secret pointing at the emulator.
func (e *env) source(fields map[string]any) []byte {
	m := map[string]any{"username": user, "password": password, "apiUrl": e.srv.URL}
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

// sleeps records the Caller's waits instead of sleeping.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(_ context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.d = append(s.d, d)
	return nil
}

func (e *env) upstream(fields map[string]any) (*DockerHub, *sleeps) {
	e.t.Helper()
	d, err := New(e.source(fields), upstream.Options{
		HTTPClient:  e.srv.Client(),
		Now:         e.clock.Now,
		Logger:      slog.New(slog.NewJSONHandler(&e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		RegistryURL: e.srv.URL,
		Standins:    pinned.NewStandins(e.srv.URL),
	})
	if err != nil {
		e.t.Fatalf("New: %v", e.note(err))
	}
	sl := &sleeps{}
	d.api2.Sleep = sl.sleep
	return d, sl
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func (e *env) mint(d *DockerHub, version string) upstream.Minted {
	e.t.Helper()
	m, err := d.Mint(ctx(e.t), upstream.MintRequest{SecretName: secret, VersionID: version, Label: ptcsecret.Label(key, version)})
	if err != nil {
		e.t.Fatalf("Mint: %v", e.note(err))
	}
	e.leaks = append(e.leaks, m.Credential.AccessToken)
	return m
}

// logins counts the session logins: POST /v2/auth/token, or /v2/users/login for 2FA accounts.
func (e *env) logins() int {
	n := 0
	for _, c := range e.emu.Calls() {
		if c.Path == "/v2/users/login" || c.Path == "/v2/auth/token" {
			n++
		}
	}
	return n
}

func TestParseSource(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		wantErr string // substring; empty means success
		check   func(t *testing.T, s Source)
	}{
		{name: "defaults", raw: `{"username":"alice","password":"` + password + `"}`, check: func(t *testing.T, s Source) {
			want := Source{Username: "alice", Password: password, Scope: DefaultScope, OrgResourcePath: DefaultOrgResourcePath,
				TokenLifetimeDays: DefaultLifetimeDays, APIURL: DefaultAPIURL, CheckRepository: DefaultCheckRepository}
			if s != want {
				t.Errorf("ParseSource = %+v, want %+v", s, want)
			}
		}},
		{name: "everything", raw: `{"username":"alice","password":"p","totpSecret":"jbsw y3dp-ehpk3pxp","organization":"acme","scope":"repo:read",
			"orgResourcePath":"acme/*","tokenLifetimeDays":-1,"apiUrl":"https://hub.example.com/","checkRepository":"acme/app"}`, check: func(t *testing.T, s Source) {
			if s.Organization != "acme" || s.Scope != "repo:read" || s.OrgResourcePath != "acme/*" || s.TokenLifetimeDays != -1 ||
				s.APIURL != "https://hub.example.com/" || s.CheckRepository != "acme/app" || s.TOTPSecret == "" {
				t.Errorf("ParseSource = %+v", s)
			}
		}},
		{name: "loopback http apiUrl", raw: `{"username":"a","password":"p","apiUrl":"http://127.0.0.1:8080"}`},
		{name: "lifetime 365", raw: `{"username":"a","password":"p","tokenLifetimeDays":365}`},
		{name: "org lifetime 365", raw: `{"username":"a","password":"p","organization":"acme","tokenLifetimeDays":365}`},
		{name: "missing username", raw: `{"password":"` + password + `"}`, wantErr: `field "username" is required`},
		{name: "blank username", raw: `{"username":"  ","password":"` + password + `"}`, wantErr: `field "username" is required`},
		{name: "missing password", raw: `{"username":"alice"}`, wantErr: `field "password" is required`},
		{name: "bad totpSecret", raw: `{"username":"a","password":"` + password + `","totpSecret":"not base32 !!1"}`, wantErr: `field "totpSecret"`},
		{name: "bad scope", raw: `{"username":"a","password":"` + password + `","scope":"repo:everything"}`, wantErr: `field "scope"`},
		// Docker Hub's UI caps a custom token expiry at one year: refused up front, for personal
		// and organization tokens alike.
		{name: "lifetime 366", raw: `{"username":"a","password":"` + password + `","tokenLifetimeDays":366}`, wantErr: `field "tokenLifetimeDays" is 366; Docker Hub caps a personal access token's expiry at one year: use 1..365 days`},
		{name: "org lifetime 366", raw: `{"username":"a","password":"` + password + `","organization":"acme","tokenLifetimeDays":366}`, wantErr: `caps a organization access token's expiry at one year`},
		{name: "lifetime 3650", raw: `{"username":"a","password":"` + password + `","tokenLifetimeDays":3650}`, wantErr: `field "tokenLifetimeDays"`},
		{name: "PAT as password", raw: `{"username":"a","password":"dckr_pat_PLANTEDabc123"}`, wantErr: `field "password" holds a personal access token`},
		{name: "OAT as password", raw: `{"username":"a","password":"dckr_oat_PLANTEDabc123"}`, wantErr: `field "password" holds an organization access token`},
		{name: "lifetime negative", raw: `{"username":"a","password":"` + password + `","tokenLifetimeDays":-2}`, wantErr: `field "tokenLifetimeDays"`},
		{name: "lifetime not a number", raw: `{"username":"a","password":"` + password + `","tokenLifetimeDays":"90"}`, wantErr: `field "tokenLifetimeDays" must be a int`},
		{name: "password not a string", raw: `{"username":"a","password":12345}`, wantErr: `field "password" must be a string`},
		{name: "unknown field", raw: `{"username":"a","password":"` + password + `","pasword":"x"}`, wantErr: `unknown field "pasword"`},
		{name: "not JSON", raw: `username=a password=` + password, wantErr: "not valid JSON"},
		{name: "JSON array", raw: `["a","` + password + `"]`, wantErr: "docker-hub source secret"},
		{name: "empty", raw: ``, wantErr: "docker-hub source secret"},
		{name: "http apiUrl non-loopback", raw: `{"username":"a","password":"` + password + `","apiUrl":"http://hub.docker.com"}`, wantErr: "plain http is accepted only for loopback"},
		{name: "apiUrl garbage", raw: `{"username":"a","password":"` + password + `","apiUrl":"hub.docker.com"}`, wantErr: `field "apiUrl"`},
		{name: "apiUrl with credentials", raw: `{"username":"a","password":"p","apiUrl":"https://a:` + password + `@hub.docker.com"}`, wantErr: "credentials in the URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseSource([]byte(tt.raw))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseSource: %v", err)
				}
				if tt.check != nil {
					tt.check(t, s)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseSource succeeded, want an error containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), password) || strings.Contains(err.Error(), "not base32 !!1") || strings.Contains(err.Error(), "PLANTEDabc123") {
				t.Errorf("error quotes a value: %q", err)
			}
		})
	}
}

func TestNewRejectsBadRegistryTag(t *testing.T) {
	_, err := New([]byte(`{"username":"a","password":"p"}`), upstream.Options{RegistryURL: "http://registry.example.com"})
	if err == nil || !strings.Contains(err.Error(), ptcsecret.TagRegistryURL) {
		t.Fatalf("New = %v, want an error naming the %s tag", err, ptcsecret.TagRegistryURL)
	}
}

func TestProvider(t *testing.T) {
	if Provider.Registry != ptcsecret.UpstreamDockerHub || !Provider.FixedUsername || Provider.DefaultRegistryURL != DefaultRegistry {
		t.Errorf("Provider = %+v", Provider)
	}
	u, err := Provider.New([]byte(`{"username":"a","password":"p"}`), upstream.Options{})
	if err != nil || u.Registry() != ptcsecret.UpstreamDockerHub {
		t.Fatalf("Provider.New = %v, %v", u, err)
	}
}

func TestMintPAT(t *testing.T) {
	e := newEnv(t, nil)
	d, _ := e.upstream(nil)
	m := e.mint(d, "v1")
	label := ptcsecret.Label(key, "v1")
	wantExp := e.clock.Now().Add(DefaultLifetimeDays * 24 * time.Hour)

	if m.Credential.Username != user || !strings.HasPrefix(m.Credential.AccessToken, "dckr_pat_") {
		t.Errorf("credential = %v", m.Credential)
	}
	if m.Token.Label != label || m.Token.ID == "" || !m.Token.ExpiresAt.Equal(wantExp) {
		t.Errorf("token = %+v, want label %s and expiry %v", m.Token, label, wantExp)
	}
	toks := e.emu.Tokens()
	if len(toks) != 1 {
		t.Fatalf("%d tokens at the emulator", len(toks))
	}
	got := toks[0]
	if got.ID != m.Token.ID || got.Label != label || got.Org || got.Owner != user || got.Secret != m.Credential.AccessToken ||
		len(got.Scopes) != 1 || got.Scopes[0] != DefaultScope || !got.ExpiresAt.Equal(wantExp) {
		t.Errorf("emulator token = %+v", got)
	}
	if err := e.note(func() error { _, err := d.Verify(ctx(t), m.Credential); return err }()); err != nil {
		t.Fatalf("Verify(minted): %v", err)
	}
}

func TestMintOptions(t *testing.T) {
	e := newEnv(t, nil)
	d, _ := e.upstream(map[string]any{"scope": "repo:read", "tokenLifetimeDays": -1})
	m := e.mint(d, "v1")
	if !m.Token.ExpiresAt.IsZero() {
		t.Errorf("ExpiresAt = %v, want none", m.Token.ExpiresAt)
	}
	tok := e.emu.Tokens()[0]
	if !tok.ExpiresAt.IsZero() || tok.Scopes[0] != "repo:read" {
		t.Errorf("emulator token = %+v", tok)
	}

	d2, _ := e.upstream(map[string]any{"tokenLifetimeDays": 7})
	m = e.mint(d2, "v2")
	if want := e.clock.Now().Add(7 * 24 * time.Hour); !m.Token.ExpiresAt.Equal(want) {
		t.Errorf("ExpiresAt = %v, want %v", m.Token.ExpiresAt, want)
	}
}

func TestMintLabelChecked(t *testing.T) {
	e := newEnv(t, nil)
	d, _ := e.upstream(nil)
	for _, label := range []string{"", strings.Repeat("x", 101)} {
		_, err := d.Mint(ctx(t), upstream.MintRequest{SecretName: secret, VersionID: "v", Label: label})
		if e.note(err) == nil || !strings.Contains(err.Error(), "label") {
			t.Errorf("Mint(label of %d) = %v", len(label), err)
		}
	}
	if len(e.emu.Calls()) != 0 {
		t.Errorf("a bad label reached Docker Hub")
	}
}

func TestMintOrgToken(t *testing.T) {
	e := newEnv(t, func(o *dockerhubemu.Options) { o.OrgTokenCap = 1 })
	d, _ := e.upstream(map[string]any{"organization": org})
	m := e.mint(d, "v1")
	if m.Credential.Username != org || d.Username() != org || !strings.HasPrefix(m.Credential.AccessToken, "dckr_oat_") {
		t.Errorf("credential = %v, want the org %q as username", m.Credential, org)
	}
	tok := e.emu.Tokens()[0]
	if !tok.Org || tok.Owner != org || tok.Label != ptcsecret.Label(key, "v1") || len(tok.Scopes) != 1 || tok.Scopes[0] != "scope-image-pull" {
		t.Errorf("emulator token = %+v", tok)
	}
	if _, err := d.Verify(ctx(t), m.Credential); e.note(err) != nil {
		t.Fatalf("Verify(org token): %v", err)
	}
	found, err := d.Tokens(ctx(t), ptcsecret.LabelPrefix(key))
	if e.note(err) != nil || len(found) != 1 || found[0].ID != m.Token.ID || found[0].Label != m.Token.Label {
		t.Fatalf("Tokens = %+v, %v", found, err)
	}

	// The cap is reached: the error says what to do.
	_, err = d.Mint(ctx(t), upstream.MintRequest{SecretName: secret, VersionID: "v2", Label: ptcsecret.Label(key, "v2")})
	if e.note(err) == nil || !strings.Contains(err.Error(), "cap is reached") || !strings.Contains(err.Error(), "HTTP 400") ||
		!strings.Contains(err.Error(), "acme holds 1 organization access tokens") || !strings.Contains(err.Error(), "10 (Team) or 100 (Business)") {
		t.Fatalf("Mint over the cap = %v, want the cap named with the count", err)
	}
	if err := e.note(d.Revoke(ctx(t), m.Token)); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	e.mint(d, "v2")
}

func TestTokensAcrossPages(t *testing.T) {
	e := newEnv(t, nil)
	d, _ := e.upstream(nil)
	const mine = 103
	want := map[string]bool{}
	for i := range mine {
		m := e.mint(d, fmt.Sprintf("version-%03d", i))
		want[m.Token.ID] = true
	}
	// Two tokens of the same secret name in another Region, and one made by hand.
	other := ptcsecret.Key("eu-west-1", "123456789012", secret) // same name, another Region
	for i := range 2 {
		if _, err := d.Mint(ctx(t), upstream.MintRequest{SecretName: secret, VersionID: fmt.Sprint(i), Label: ptcsecret.Label(other, fmt.Sprint(i))}); e.note(err) != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.Mint(ctx(t), upstream.MintRequest{SecretName: "x", VersionID: "x", Label: "laptop"}); e.note(err) != nil {
		t.Fatal(err)
	}
	e.emu.ResetCalls()

	found, err := d.Tokens(ctx(t), ptcsecret.LabelPrefix(key))
	if e.note(err) != nil {
		t.Fatalf("Tokens: %v", err)
	}
	if len(found) != mine {
		t.Fatalf("Tokens found %d, want %d", len(found), mine)
	}
	for _, tok := range found {
		if !want[tok.ID] {
			t.Errorf("unexpected token %+v", tok)
		}
		delete(want, tok.ID)
		if _, ok := ptcsecret.VersionFromLabel(key, tok.Label); !ok || tok.ExpiresAt.IsZero() {
			t.Errorf("token %+v", tok)
		}
	}
	var lists int
	for _, c := range e.emu.Calls() {
		if c.Method == "GET" && c.Path == "/v2/access-tokens" {
			lists++
		}
	}
	if lists != 2 {
		t.Errorf("%d list calls for 106 tokens, want 2 pages of 100", lists)
	}

	all, err := d.Tokens(ctx(t), "")
	if e.note(err) != nil || len(all) != mine+3 {
		t.Errorf("Tokens(\"\") = %d, %v", len(all), err)
	}
	none, err := d.Tokens(ctx(t), ptcsecret.LabelPrefix(ptcsecret.Key("us-east-1", "123456789012", "ecr-pullthroughcache/nothing")))
	if e.note(err) != nil || len(none) != 0 {
		t.Errorf("Tokens(unused prefix) = %v, %v", none, err)
	}
}

func TestRevokeAndVerify(t *testing.T) {
	e := newEnv(t, nil)
	d, _ := e.upstream(nil)
	m := e.mint(d, "v1")
	keep := e.mint(d, "v2")
	if _, err := d.Verify(ctx(t), m.Credential); e.note(err) != nil {
		t.Fatalf("Verify before revoke: %v", err)
	}
	if err := e.note(d.Revoke(ctx(t), m.Token)); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if toks := e.emu.Tokens(); len(toks) != 1 || toks[0].ID != keep.Token.ID {
		t.Errorf("after Revoke the emulator holds %+v", toks)
	}
	// Revoking a token that is already gone is not an error.
	if err := e.note(d.Revoke(ctx(t), m.Token)); err != nil {
		t.Errorf("second Revoke: %v", err)
	}
	_, err := d.Verify(ctx(t), m.Credential)
	if !errors.Is(e.note(err), registryauth.ErrBadCredentials) {
		t.Fatalf("Verify(revoked) = %v, want ErrBadCredentials", err)
	}
	if _, err := d.Verify(ctx(t), keep.Credential); e.note(err) != nil {
		t.Errorf("Verify(kept): %v", err)
	}
	if err := e.note(d.Revoke(ctx(t), upstream.Token{Label: "no id"})); err == nil {
		t.Errorf("Revoke without an id succeeded")
	}
	// A wrong username with a valid token is refused too.
	_, err = d.Verify(ctx(t), upstream.Credential{Username: tfaUser, AccessToken: keep.Credential.AccessToken})
	if !errors.Is(e.note(err), registryauth.ErrBadCredentials) {
		t.Errorf("Verify(wrong user) = %v", err)
	}
}

func TestVerifyUnreachable(t *testing.T) {
	e := newEnv(t, nil)
	d, _ := e.upstream(nil)
	m := e.mint(d, "v1")
	e.srv.Close()
	_, err := d.Verify(ctx(t), m.Credential)
	if !errors.Is(e.note(err), registryauth.ErrUnreachable) {
		t.Fatalf("Verify(closed) = %v, want ErrUnreachable", err)
	}
}

func TestTwoFactor(t *testing.T) {
	t.Run("with totpSecret", func(t *testing.T) {
		e := newEnv(t, nil)
		d, _ := e.upstream(map[string]any{"username": tfaUser, "password": tfaPass, "totpSecret": tfaSecret})
		m := e.mint(d, "v1")
		if m.Credential.Username != tfaUser {
			t.Errorf("username = %q", m.Credential.Username)
		}
		var twoFA int
		for _, c := range e.emu.Calls() {
			if c.Path == "/v2/users/2fa-login" && c.Status == 200 {
				twoFA++
			}
		}
		if twoFA != 1 {
			t.Errorf("%d successful 2fa-login calls, want 1", twoFA)
		}
		// The session is reused.
		e.mint(d, "v2")
		if n := e.logins(); n != 1 {
			t.Errorf("%d logins for two mints, want 1", n)
		}
	})
	t.Run("without totpSecret", func(t *testing.T) {
		e := newEnv(t, nil)
		d, _ := e.upstream(map[string]any{"username": tfaUser, "password": tfaPass})
		_, err := d.Mint(ctx(t), upstream.MintRequest{SecretName: secret, VersionID: "v1", Label: ptcsecret.Label(key, "v1")})
		if e.note(err) == nil || !strings.Contains(err.Error(), `"totpSecret"`) || !strings.Contains(err.Error(), "two-factor") {
			t.Fatalf("Mint = %v, want an error asking for totpSecret", err)
		}
	})
	t.Run("wrong totpSecret", func(t *testing.T) {
		e := newEnv(t, nil)
		const wrong = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
		e.leaks = append(e.leaks, wrong)
		d, _ := e.upstream(map[string]any{"username": tfaUser, "password": tfaPass, "totpSecret": wrong})
		_, err := d.Mint(ctx(t), upstream.MintRequest{SecretName: secret, VersionID: "v1", Label: ptcsecret.Label(key, "v1")})
		if e.note(err) == nil || !strings.Contains(err.Error(), "refused the two-factor code") || !strings.Contains(err.Error(), `"totpSecret"`) {
			t.Fatalf("Mint = %v", err)
		}
		if len(e.emu.Tokens()) != 0 {
			t.Errorf("a token was minted")
		}
	})
}

func TestWrongPassword(t *testing.T) {
	e := newEnv(t, nil)
	const wrong = "PLANTED-wrong-password-31c4"
	e.leaks = append(e.leaks, wrong)
	d, _ := e.upstream(map[string]any{"password": wrong})
	for _, call := range []func() error{
		func() error {
			_, err := d.Mint(ctx(t), upstream.MintRequest{SecretName: secret, VersionID: "v1", Label: ptcsecret.Label(key, "v1")})
			return err
		},
		func() error { _, err := d.Tokens(ctx(t), "ptc-"); return err },
		func() error { return d.Revoke(ctx(t), upstream.Token{ID: "x"}) },
	} {
		err := e.note(call())
		if err == nil || !strings.Contains(err.Error(), `"username"`) || !strings.Contains(err.Error(), `"password"`) {
			t.Errorf("err = %v, want it to name fields \"username\" and \"password\"", err)
		}
		if err != nil && strings.Contains(err.Error(), user) {
			t.Errorf("err quotes the username value: %v", err)
		}
	}
}

// TestPATAsPassword: a personal access token in "password" is refused before any call (its
// dckr_pat_ prefix says what it is); one without the prefix (older tokens are bare UUIDs) starts
// a session that the token endpoints refuse with 403, and that error says what to do.
func TestPATAsPassword(t *testing.T) {
	e := newEnv(t, nil)
	good, _ := e.upstream(nil)
	pat := e.mint(good, "v1").Credential.AccessToken
	e.emu.ResetCalls()
	_, err := New(e.source(map[string]any{"password": pat}), upstream.Options{HTTPClient: e.srv.Client(), RegistryURL: e.srv.URL, Standins: pinned.NewStandins(e.srv.URL)})
	if e.note(err) == nil || !strings.Contains(err.Error(), "personal access token") || !strings.Contains(err.Error(), ModesDoc) {
		t.Fatalf("New = %v, want the PAT refused up front", err)
	}
	if n := len(e.emu.Calls()); n != 0 {
		t.Errorf("%d calls before the refusal", n)
	}
	// A bare-UUID PAT: Hub answers the token endpoints as docker/hub-feedback #2438 reports.
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/v2/auth/token" {
			_, _ = w.Write([]byte(`{"access_token":"jwt-from-pat"}`))
			return
		}
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"message":"token issued from personal access token is not allowed","errinfo":{}}`))
	}))
	defer hub.Close()
	d, err := New(e.source(map[string]any{"password": "0b1d4c2e-PLANTED-uuid-pat", "apiUrl": hub.URL}), upstream.Options{HTTPClient: hub.Client(), RegistryURL: e.srv.URL, Standins: pinned.NewStandins(e.srv.URL, hub.URL)})
	if err != nil {
		t.Fatal(err)
	}
	e.leaks = append(e.leaks, "0b1d4c2e-PLANTED-uuid-pat")
	_, err = d.Mint(ctx(t), upstream.MintRequest{SecretName: secret, VersionID: "v2", Label: ptcsecret.Label(key, "v2")})
	if e.note(err) == nil || !strings.Contains(err.Error(), `"password" is a personal access token`) || !strings.Contains(err.Error(), "HTTP 403") || !strings.Contains(err.Error(), "staged mode") {
		t.Fatalf("Mint = %v, want an error saying a personal access token cannot mint tokens", err)
	}
}

func TestRateLimitedThenSuccess(t *testing.T) {
	t.Run("Retry-After", func(t *testing.T) {
		e := newEnv(t, func(o *dockerhubemu.Options) {
			o.RateLimit.Requests = 1
			o.RateLimit.Window = 5 * time.Second
		})
		d, sl := e.upstream(nil)
		// The login uses the window's one request; the create is refused with Retry-After: 5.
		// The fake sleep moves the shared clock on, as a real wait would.
		d.api2.Sleep = func(c context.Context, w time.Duration) error {
			e.clock.Advance(w)
			return sl.sleep(c, w)
		}
		e.mint(d, "v1")
		// The hint plus up to a second of jitter (httpapi spreads clients told the same hint).
		if len(sl.d) != 1 || sl.d[0] < 5*time.Second || sl.d[0] >= 6*time.Second {
			t.Errorf("waits = %v, want [5s + jitter < 1s]", sl.d)
		}
		if d.Retries() != 1 || len(e.emu.Tokens()) != 1 {
			t.Errorf("Retries = %d, tokens %d", d.Retries(), len(e.emu.Tokens()))
		}
	})
	t.Run("injected 429 without a hint", func(t *testing.T) {
		e := newEnv(t, nil)
		d, sl := e.upstream(nil)
		e.emu.Inject(http.MethodPost, "/v2/access-tokens", http.StatusTooManyRequests, 1)
		e.mint(d, "v1")
		if len(sl.d) != 1 || sl.d[0] < 250*time.Millisecond || sl.d[0] >= 1250*time.Millisecond {
			t.Errorf("waits = %v, want one 250ms backoff (+ jitter < 1s)", sl.d)
		}
		if len(e.emu.Tokens()) != 1 {
			t.Errorf("%d tokens after one retried create", len(e.emu.Tokens()))
		}
	})
}

func TestCreateNotRetriedOn5xx(t *testing.T) {
	e := newEnv(t, nil)
	d, sl := e.upstream(nil)
	e.emu.Inject(http.MethodPost, "/v2/access-tokens", http.StatusBadGateway, 1)
	_, err := d.Mint(ctx(t), upstream.MintRequest{SecretName: secret, VersionID: "v1", Label: ptcsecret.Label(key, "v1")})
	if e.note(err) == nil || !strings.Contains(err.Error(), "HTTP 502") {
		t.Fatalf("Mint = %v, want the 502", err)
	}
	if len(sl.d) != 0 || len(e.emu.Tokens()) != 0 {
		t.Errorf("a create was retried: waits %v", sl.d)
	}
	// Listing is idempotent and is retried.
	e.emu.Inject(http.MethodGet, "/v2/access-tokens", http.StatusServiceUnavailable, 1)
	if _, err := d.Tokens(ctx(t), "ptc-"); e.note(err) != nil {
		t.Fatalf("Tokens: %v", err)
	}
	if len(sl.d) != 1 {
		t.Errorf("waits = %v, want one retry of the list", sl.d)
	}
}

func TestExpiredSessionLogsInAgain(t *testing.T) {
	e := newEnv(t, func(o *dockerhubemu.Options) { o.SessionLifetime = 10 * time.Minute })
	d, _ := e.upstream(nil)
	m := e.mint(d, "v1")
	if e.logins() != 1 {
		t.Fatalf("%d logins", e.logins())
	}
	e.clock.Advance(11 * time.Minute)
	// Each call below meets an expired session once at most, logs in again and goes on.
	e.mint(d, "v2")
	if n := e.logins(); n != 2 {
		t.Errorf("%d logins, want 2", n)
	}
	e.clock.Advance(11 * time.Minute)
	found, err := d.Tokens(ctx(t), ptcsecret.LabelPrefix(key))
	if e.note(err) != nil || len(found) != 2 {
		t.Fatalf("Tokens = %v, %v", found, err)
	}
	e.clock.Advance(11 * time.Minute)
	if err := e.note(d.Revoke(ctx(t), m.Token)); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if n := e.logins(); n != 4 {
		t.Errorf("%d logins, want 4", n)
	}
	if !strings.Contains(e.logs.String(), "session expired") {
		t.Errorf("the re-login was not logged: %s", e.logs.String())
	}
}

func TestPasswordChangedWhileSessionExpired(t *testing.T) {
	e := newEnv(t, func(o *dockerhubemu.Options) { o.SessionLifetime = time.Minute })
	d, _ := e.upstream(nil)
	e.mint(d, "v1")
	e.emu.SetPassword(user, "PLANTED-new-password-0a0a")
	e.leaks = append(e.leaks, "PLANTED-new-password-0a0a")
	e.clock.Advance(2 * time.Minute)
	_, err := d.Tokens(ctx(t), "")
	if e.note(err) == nil || !strings.Contains(err.Error(), `"password"`) {
		t.Fatalf("Tokens = %v, want the login refusal", err)
	}
}
