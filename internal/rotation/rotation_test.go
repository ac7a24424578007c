package rotation_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/ptc-credentials/ptc-credentials/internal/pinned"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/registryauth"
	"github.com/ptc-credentials/ptc-credentials/internal/rotation"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/dockerhubemu"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/rotationtest"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/dockerhub"
)

var moto *testenv.Moto

func TestMain(m *testing.M) { os.Exit(testenv.RunWithMoto(m, &moto)) }

// Planted values: distinctive, so a leak is unmistakable.
const (
	hubUser     = "ptc-hub-user"
	hubPassword = "PLANTED-hub-password-7f3a9c"
	hubTOTP     = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
)

type fixture struct {
	*rotationtest.Harness
	t      *testing.T
	ctx    context.Context
	sm     *secretsmanager.Client
	hub    *dockerhubemu.Server
	hubURL string
	name   string
	arn    string
}

type fixtureOpts struct {
	source  map[string]any
	account dockerhubemu.Account
	hub     dockerhubemu.Options
	noSetup bool
}

func newFixture(t *testing.T, o fixtureOpts) *fixture {
	t.Helper()
	return newFixtureIn(t, moto, o)
}

// newFixtureIn is newFixture in another Secrets Manager (a localsm cluster, say).
func newFixtureIn(t *testing.T, sm testenv.SecretsManagerServer, o fixtureOpts) *fixture {
	t.Helper()
	if o.account.Username == "" {
		o.account = dockerhubemu.Account{Username: hubUser, Password: hubPassword, Orgs: []string{"ptc-org"}}
	}
	hub := dockerhubemu.New(o.hub, o.account)
	srv := httptest.NewServer(hub)
	t.Cleanup(srv.Close)
	if o.source == nil {
		o.source = map[string]any{"username": o.account.Username, "password": o.account.Password}
	}
	if _, ok := o.source["apiUrl"]; !ok {
		o.source["apiUrl"] = srv.URL
	}
	b, _ := json.Marshal(o.source)
	h := rotationtest.New(t, sm, rotationtest.Config{Provider: dockerhub.Provider, SourceJSON: string(b), RegistryURL: srv.URL, NoSetup: o.noSetup, Standins: pinned.NewStandins(srv.URL)})
	return &fixture{Harness: h, t: t, ctx: h.Ctx, sm: h.SM, hub: hub, hubURL: srv.URL, name: h.Name, arn: h.ARN}
}

func (f *fixture) rotator() *rotation.Rotator { return f.Rotator() }

func (f *fixture) step(step rotation.Step, token string) error { return f.Step(step, token) }

func (f *fixture) stepWith(r *rotation.Rotator, step rotation.Step, token string) error {
	return f.StepWith(r, step, token)
}

func (f *fixture) rotate() string                     { return f.Rotate() }
func (f *fixture) stages() map[string][]string        { return f.Stages() }
func (f *fixture) value(v string) ptcsecret.Value     { return f.Value(v) }
func (f *fixture) current() (string, ptcsecret.Value) { return f.Current() }
func (f *fixture) logsText() string                   { return f.Logs.String() }
func (f *fixture) emfText() string                    { return f.EMF.String() }

func (f *fixture) loginErr(v ptcsecret.Value) error {
	return registryauth.Check(f.ctx, nil, registryauth.Target{Registry: f.hubURL, Repository: "library/alpine"},
		registryauth.Credential{Username: v.Username, Password: v.AccessToken})
}

func (f *fixture) mustLogIn(v ptcsecret.Value, what string) {
	f.t.Helper()
	if err := f.loginErr(v); err != nil {
		f.t.Fatalf("%s does not log in: %v", what, err)
	}
}

// tokens returns the emulator's tokens labelled for this secret, by version id.
func (f *fixture) tokens() map[string]dockerhubemu.Token {
	out := map[string]dockerhubemu.Token{}
	for _, t := range f.hub.Tokens() {
		if v, ok := ptcsecret.VersionFromLabel(f.Key, t.Label); ok {
			if _, dup := out[v]; dup {
				f.t.Fatalf("two tokens carry the label of version %s", v)
			}
			out[v] = t
		}
	}
	return out
}

// assertNoLeak scans everything captured for planted and minted secrets.
func (f *fixture) assertNoLeak() {
	f.t.Helper()
	planted := []string{hubPassword, hubTOTP}
	for _, t := range f.hub.Tokens() {
		planted = append(planted, t.Secret)
	}
	f.AssertNoLeak(planted...)
}

func newID() string { return rotationtest.NewID() }

func (f *fixture) enableRotation() { f.EnableRotation() }

func TestFullRotationStagesAndLogin(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	oldID, oldVal := f.current()
	token := newID()
	if err := testenv.BeginRotation(f.ctx, f.sm, f.arn, token, true); err != nil {
		t.Fatal(err)
	}
	r := f.rotator()

	if err := f.stepWith(r, rotation.CreateSecret, token); err != nil {
		t.Fatal(err)
	}
	st := f.stages()
	if !slices.Contains(st[token], "AWSPENDING") || !slices.Contains(st[oldID], "AWSCURRENT") {
		t.Fatalf("after createSecret: stages %v", st)
	}
	pending := f.value(token)
	if pending.Username != hubUser || pending.AccessToken == oldVal.AccessToken {
		t.Fatalf("pending value is not a new token for %s", hubUser)
	}
	if tok, ok := f.tokens()[token]; !ok || !tok.Active || tok.ExpiresAt.IsZero() {
		t.Fatalf("no active expiring token labelled for the pending version: %+v", f.tokens())
	}

	for _, s := range []rotation.Step{rotation.SetSecret, rotation.TestSecret} {
		if err := f.stepWith(r, s, token); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if st := f.stages(); !slices.Contains(st[oldID], "AWSCURRENT") {
			t.Fatalf("%s moved AWSCURRENT: %v", s, st)
		}
	}
	if err := f.stepWith(r, rotation.FinishSecret, token); err != nil {
		t.Fatal(err)
	}
	st = f.stages()
	if !slices.Contains(st[token], "AWSCURRENT") || !slices.Contains(st[oldID], "AWSPREVIOUS") {
		t.Fatalf("after finishSecret: stages %v", st)
	}
	curID, cur := f.current()
	if curID != token {
		t.Fatalf("AWSCURRENT is %s, want %s", curID, token)
	}
	f.mustLogIn(cur, "AWSCURRENT")
	f.mustLogIn(oldVal, "AWSPREVIOUS (one generation of overlap)")
	if !strings.Contains(f.emfText(), `"RotationSucceeded":1`) {
		t.Errorf("no RotationSucceeded metric in %s", f.emfText())
	}
	f.assertNoLeak()
}

func TestTokenTwoGenerationsOldIsRevoked(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	v0, val0 := f.current()
	v1 := f.rotate()
	val1 := f.value(v1)
	v2 := f.rotate()
	val2 := f.value(v2)

	toks := f.tokens()
	if _, ok := toks[v0]; ok {
		t.Errorf("token of version %s (two generations old) still exists", v0)
	}
	if len(toks) != 2 || toks[v1].ID == "" || toks[v2].ID == "" {
		t.Errorf("want exactly the current and previous tokens, have %d: %v", len(toks), keys(toks))
	}
	if err := f.loginErr(val0); !errors.Is(err, registryauth.ErrBadCredentials) {
		t.Errorf("revoked token still logs in (err=%v)", err)
	}
	f.mustLogIn(val1, "AWSPREVIOUS")
	f.mustLogIn(val2, "AWSCURRENT")
	if !strings.Contains(f.emfText(), `"TokensRevoked":1`) {
		t.Errorf("no TokensRevoked metric")
	}
	f.assertNoLeak()
}

func TestEveryStepTwiceChangesNothing(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	oldID, _ := f.current()
	token := newID()
	if err := testenv.BeginRotation(f.ctx, f.sm, f.arn, token, true); err != nil {
		t.Fatal(err)
	}
	var after map[string][]string
	var pending ptcsecret.Value
	for i, s := range []rotation.Step{rotation.CreateSecret, rotation.SetSecret, rotation.TestSecret, rotation.FinishSecret} {
		for run := 1; run <= 2; run++ {
			// A retry may land in a fresh environment: use a new Rotator each time.
			if err := f.step(s, token); err != nil {
				t.Fatalf("%s run %d: %v", s, run, err)
			}
			st := f.stages()
			if run == 1 {
				after = st
				if i == 0 {
					pending = f.value(token)
				}
				continue
			}
			if fmt.Sprint(rotationtest.SortedStages(st)) != fmt.Sprint(rotationtest.SortedStages(after)) {
				t.Fatalf("%s run twice changed stages: %v then %v", s, after, st)
			}
		}
	}
	if v := f.value(token); v.AccessToken != pending.AccessToken {
		t.Fatal("the pending value changed between runs")
	}
	if n := len(f.tokens()); n != 2 {
		t.Fatalf("want 2 tokens (current and previous) after a doubled rotation, have %d", n)
	}
	if st := f.stages(); !slices.Contains(st[oldID], "AWSPREVIOUS") {
		t.Fatalf("stages %v", st)
	}
	_, cur := f.current()
	f.mustLogIn(cur, "AWSCURRENT")
	f.assertNoLeak()
}

func TestTestSecretOnlyPassesWithoutMinting(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	before := len(f.hub.Tokens())
	f.hub.ResetCalls()
	f.enableRotation() // RotateSecret(RotateImmediately=false) again
	if after := len(f.hub.Tokens()); after != before {
		t.Fatalf("testSecret-only rotation minted: %d tokens before, %d after", before, after)
	}
	for _, c := range f.hub.Calls() {
		if strings.HasPrefix(c.Path, "/v2/access-tokens") || strings.HasPrefix(c.Path, "/v2/users") {
			t.Errorf("testSecret called the token API: %s %s", c.Method, c.Path)
		}
	}
}

func TestCrashBetweenMintAndPutLeavesNoOrphan(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	curID, cur := f.current()
	token := newID()
	if err := testenv.BeginRotation(f.ctx, f.sm, f.arn, token, true); err != nil {
		t.Fatal(err)
	}
	crashing := f.rotator()
	crashing.SM = rotationtest.CrashingSM{SecretsManager: f.sm}
	if err := f.stepWith(crashing, rotation.CreateSecret, token); err == nil {
		t.Fatal("the crashing createSecret reported success")
	}
	orphan, ok := f.tokens()[token]
	if !ok {
		t.Fatal("the crash scenario did not leave an orphan token to clean up")
	}
	if id, _ := f.current(); id != curID {
		t.Fatal("AWSCURRENT moved")
	}
	f.mustLogIn(cur, "AWSCURRENT after the crash")

	// Secrets Manager retries the rotation from createSecret in a new environment.
	r := f.rotator()
	for _, s := range []rotation.Step{rotation.CreateSecret, rotation.SetSecret, rotation.TestSecret, rotation.FinishSecret} {
		if err := f.stepWith(r, s, token); err != nil {
			t.Fatalf("retry %s: %v", s, err)
		}
	}
	toks := f.tokens()
	if toks[token].ID == orphan.ID {
		t.Fatal("the orphan token survived the retry")
	}
	for _, tk := range f.hub.Tokens() {
		if tk.ID == orphan.ID {
			t.Fatal("the orphan token still exists upstream")
		}
	}
	if len(toks) != 2 {
		t.Fatalf("want current and previous tokens only, have %v", keys(toks))
	}
	_, now := f.current()
	f.mustLogIn(now, "AWSCURRENT after the retry")
	if !strings.Contains(f.logsText(), "revoked token left by an earlier attempt") {
		t.Error("the orphan's revocation was not logged")
	}
	f.assertNoLeak()
}

func TestTwoFactorAccount(t *testing.T) {
	acct := dockerhubemu.Account{Username: hubUser, Password: hubPassword, TOTPSecret: hubTOTP}
	f := newFixture(t, fixtureOpts{account: acct, source: map[string]any{"username": hubUser, "password": hubPassword, "totpSecret": hubTOTP}})
	f.rotate()
	_, cur := f.current()
	f.mustLogIn(cur, "AWSCURRENT")
	f.assertNoLeak()
}

func TestOrganizationTokens(t *testing.T) {
	f := newFixture(t, fixtureOpts{source: map[string]any{"username": hubUser, "password": hubPassword, "organization": "ptc-org"}})
	f.rotate()
	f.rotate()
	_, cur := f.current()
	if cur.Username != "ptc-org" {
		t.Fatalf("organization token logs in as %q, want the organization name", cur.Username)
	}
	f.mustLogIn(cur, "AWSCURRENT")
	for _, tk := range f.tokens() {
		if !tk.Org {
			t.Errorf("token %s is not an organization token", tk.Label)
		}
	}
	if n := len(f.tokens()); n != 2 {
		t.Fatalf("want 2 organization tokens, have %d", n)
	}
	f.assertNoLeak()
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
