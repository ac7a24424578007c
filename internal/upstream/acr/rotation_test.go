package acr_test

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
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/registryauth"
	"github.com/ptc-credentials/ptc-credentials/internal/rotation"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/acremu"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/rotationtest"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/acr"
)

var moto *testenv.Moto

func TestMain(m *testing.M) { os.Exit(testenv.RunWithMoto(m, &moto)) }

// fixture is a managed ACR secret in moto, its source secret, and the ACR emulator behind it.
type fixture struct {
	*rotationtest.Harness
	t     *testing.T
	emu   *acremu.Server
	url   string
	clock *clock
	sleep *sleeper
}

// newFixture sets up a secret whose first password (password1, as the provisioner mints it)
// is labelled ptc-acr-password1. The upstream gets the emulator's clock and a Sleep that
// advances it, so waiting for replication costs no real time.
func newFixture(t *testing.T, tweak func(*acremu.Options)) *fixture {
	t.Helper()
	f := &fixture{t: t, clock: &clock{t: t0}}
	f.sleep = &sleeper{clock: f.clock}
	o := acremu.Options{
		Now: f.clock.Now, TenantID: tenantID, ClientID: clientID, ClientSecret: clientSecret,
		SubscriptionID: subID, ResourceGroup: rg, Registry: registry,
	}
	if tweak != nil {
		tweak(&o)
	}
	f.emu = acremu.New(o, tokenName)
	srv := httptest.NewServer(f.emu)
	t.Cleanup(srv.Close)
	f.url = srv.URL
	provider := acr.Provider
	provider.New = func(source []byte, opts upstream.Options) (upstream.Upstream, error) {
		opts.Now, opts.Sleep = f.clock.Now, f.sleep.Sleep
		return acr.New(source, opts)
	}
	f.Harness = rotationtest.New(t, moto, rotationtest.Config{Provider: provider, SourceJSON: f.sourceJSON(nil), RegistryURL: srv.URL})
	t.Cleanup(f.assertNoLeak)
	return f
}

func (f *fixture) sourceJSON(edit map[string]any) string {
	m := map[string]any{
		"tenantId": tenantID, "clientId": clientID, "clientSecret": clientSecret,
		"tokenId": f.emu.TokenID(tokenName), "authorityUrl": f.url, "managementUrl": f.url,
	}
	for k, v := range edit {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func (f *fixture) putSource(doc string) {
	f.t.Helper()
	if _, err := f.SM.PutSecretValue(f.Ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(f.SourceARN), SecretString: aws.String(doc)}); err != nil {
		f.t.Fatal(err)
	}
}

// loginErr checks a credential with registryauth directly against the emulator, not through
// the upstream's own Verify (which would retry).
func (f *fixture) loginErr(v ptcsecret.Value) error {
	return registryauth.Check(context.Background(), nil, registryauth.Target{Registry: f.url, Repository: "hello-world"},
		registryauth.Credential{Username: v.Username, Password: v.AccessToken})
}

func (f *fixture) mustLogIn(v ptcsecret.Value, what string) {
	f.t.Helper()
	if err := f.loginErr(v); err != nil {
		f.t.Fatalf("%s does not log in: %v", what, err)
	}
}

func (f *fixture) mustNotLogIn(v ptcsecret.Value, what string) {
	f.t.Helper()
	if err := f.loginErr(v); !errors.Is(err, registryauth.ErrBadCredentials) {
		f.t.Fatalf("%s still logs in (err=%v)", what, err)
	}
}

// currentLogsIn asserts AWSCURRENT logs in; called after every step.
func (f *fixture) currentLogsIn(when string) {
	f.t.Helper()
	_, cur := f.Current()
	f.mustLogIn(cur, "AWSCURRENT "+when)
}

// slotOf returns the ACR slot label a version carries, or "".
func (f *fixture) slotOf(version string) string {
	st := f.Stages()[version]
	for _, l := range []string{acr.StagePassword1, acr.StagePassword2} {
		if slices.Contains(st, l) {
			return l
		}
	}
	return ""
}

// assertLabelsUnique fails unless each slot label sits on at most one version.
func (f *fixture) assertLabelsUnique() {
	f.t.Helper()
	for _, l := range []string{acr.StagePassword1, acr.StagePassword2} {
		n := 0
		for _, st := range f.Stages() {
			if slices.Contains(st, l) {
				n++
			}
		}
		if n > 1 {
			f.t.Fatalf("%s is on %d versions: %v", l, n, f.Stages())
		}
	}
}

func (f *fixture) slots() []string {
	var out []string
	for _, g := range f.emu.Generations() {
		out = append(out, g.Slot)
	}
	return out
}

func (f *fixture) assertNoLeak() {
	f.AssertNoLeak(append(f.emu.Issued(), clientSecret, "PLANTED-wrong-secret-77")...)
}

func TestFullRotationStagesAndLogin(t *testing.T) {
	f := newFixture(t, nil)
	oldID, oldVal := f.Current()
	if f.slotOf(oldID) != acr.StagePassword1 || !slices.Equal(f.slots(), []string{acr.Password1}) {
		t.Fatalf("first version: slot %q, generations %v", f.slotOf(oldID), f.slots())
	}
	token := f.Begin()
	r := f.Rotator()
	// step runs one step and keeps the upstream calls it made (the login checks between steps
	// call the emulator too and are not counted).
	var calls []acremu.Call
	step := func(s rotation.Step) error {
		f.emu.ResetCalls()
		err := f.StepWith(r, s, token)
		calls = append(calls, f.emu.Calls()...)
		return err
	}

	if err := step(rotation.CreateSecret); err != nil {
		t.Fatal(err)
	}
	st := f.Stages()
	if !slices.Contains(st[token], "AWSPENDING") || !slices.Contains(st[token], acr.StagePassword2) || !slices.Contains(st[oldID], "AWSCURRENT") {
		t.Fatalf("after createSecret: stages %v", st)
	}
	pending := f.Value(token)
	if pending.Username != tokenName || pending.AccessToken != f.emu.Passwords(tokenName)[acr.Password2].Value || pending.AccessToken == oldVal.AccessToken {
		t.Fatal("pending value is not the new password2 of the token")
	}
	f.currentLogsIn("after createSecret")

	for _, s := range []rotation.Step{rotation.SetSecret, rotation.TestSecret} {
		if err := step(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if st := f.Stages(); !slices.Contains(st[oldID], "AWSCURRENT") {
			t.Fatalf("%s moved AWSCURRENT: %v", s, st)
		}
		f.currentLogsIn("after " + string(s))
	}
	if err := step(rotation.FinishSecret); err != nil {
		t.Fatal(err)
	}
	st = f.Stages()
	if !slices.Contains(st[token], "AWSCURRENT") || !slices.Contains(st[oldID], "AWSPREVIOUS") {
		t.Fatalf("after finishSecret: stages %v", st)
	}
	if f.slotOf(token) != acr.StagePassword2 || f.slotOf(oldID) != acr.StagePassword1 {
		t.Fatalf("slot labels: current %q previous %q", f.slotOf(token), f.slotOf(oldID))
	}
	f.currentLogsIn("after finishSecret")
	f.mustLogIn(oldVal, "AWSPREVIOUS (one generation of overlap, until the next rotation)")

	// Upstream calls of one full rotation: Entra ID token, generateCredentials, and the
	// registry handshake (challenge + token endpoint) in testSecret.
	for _, c := range calls {
		t.Logf("upstream call: %s %s -> %d", c.Method, c.Path, c.Status)
	}
	if len(calls) != 4 {
		t.Errorf("%d upstream calls for one rotation, want 4", len(calls))
	}
	if !strings.Contains(f.EMF.String(), `"RotationSucceeded":1`) {
		t.Error("no RotationSucceeded metric")
	}
}

// TestSlotsAlternate runs three rotations: the slot alternates, its label moves with it, and
// AWSCURRENT logs in after every step. The previous password works until the next rotation's
// createSecret regenerates its slot.
func TestSlotsAlternate(t *testing.T) {
	f := newFixture(t, nil)
	v0, _ := f.Current()
	versions := []string{v0}
	wantSlot := []string{acr.StagePassword1, acr.StagePassword2, acr.StagePassword1, acr.StagePassword2}
	for i := 1; i <= 3; i++ {
		_, prev := f.Current()
		token := f.Begin()
		r := f.Rotator()
		for _, s := range rotationtest.Steps {
			if err := f.StepWith(r, s, token); err != nil {
				t.Fatalf("rotation %d %s: %v", i, s, err)
			}
			f.currentLogsIn(fmt.Sprintf("after rotation %d %s", i, s))
			f.assertLabelsUnique()
			if s == rotation.CreateSecret && i > 1 {
				// The slot AWSPREVIOUS used was just regenerated: that is the one overlap ACR's
				// two slots cannot keep.
				prevID := testenv.VersionWith(f.Stages(), "AWSPREVIOUS")
				f.mustNotLogIn(f.Value(prevID), fmt.Sprintf("AWSPREVIOUS after rotation %d createSecret", i))
			}
		}
		versions = append(versions, token)
		f.mustLogIn(prev, fmt.Sprintf("AWSPREVIOUS after rotation %d", i))
		for j, v := range versions {
			got := f.slotOf(v)
			switch {
			case j >= len(versions)-2 && got != wantSlot[j]:
				t.Fatalf("rotation %d: version %d carries %q, want %q (stages %v)", i, j, got, wantSlot[j], f.Stages())
			case j < len(versions)-2 && got != "":
				t.Fatalf("rotation %d: version %d still carries %q", i, j, got)
			}
		}
	}
	if want := []string{acr.Password1, acr.Password2, acr.Password1, acr.Password2}; !slices.Equal(f.slots(), want) {
		t.Fatalf("regenerated slots %v, want %v", f.slots(), want)
	}
	f.mustNotLogIn(f.Value(versions[1]), "the version two generations old")
}

func TestEveryStepTwiceChangesNothing(t *testing.T) {
	f := newFixture(t, nil)
	oldID, _ := f.Current()
	token := f.Begin()
	var after map[string][]string
	var pending ptcsecret.Value
	for i, s := range rotationtest.Steps {
		for run := 1; run <= 2; run++ {
			// A retry may land in a fresh environment: use a new Rotator each time.
			if err := f.Step(s, token); err != nil {
				t.Fatalf("%s run %d: %v", s, run, err)
			}
			f.currentLogsIn(fmt.Sprintf("after %s run %d", s, run))
			st := f.Stages()
			if run == 1 {
				after = st
				if i == 0 {
					pending = f.Value(token)
				}
				continue
			}
			if fmt.Sprint(rotationtest.SortedStages(st)) != fmt.Sprint(rotationtest.SortedStages(after)) {
				t.Fatalf("%s run twice changed stages: %v then %v", s, after, st)
			}
		}
	}
	if v := f.Value(token); v.AccessToken != pending.AccessToken {
		t.Fatal("the pending value changed between runs")
	}
	if want := []string{acr.Password1, acr.Password2}; !slices.Equal(f.slots(), want) {
		t.Fatalf("regenerated %v, want %v: a repeated step minted again", f.slots(), want)
	}
	if st := f.Stages(); !slices.Contains(st[oldID], "AWSPREVIOUS") || !slices.Contains(st[token], acr.StagePassword2) {
		t.Fatalf("stages %v", st)
	}
}

func TestTestSecretOnlyMintsNothing(t *testing.T) {
	f := newFixture(t, nil)
	before := len(f.emu.Generations())
	f.emu.ResetCalls()
	f.EnableRotation() // RotateSecret(RotateImmediately=false) again
	if after := len(f.emu.Generations()); after != before {
		t.Fatalf("testSecret-only rotation regenerated a password: %d generations before, %d after", before, after)
	}
	for _, c := range f.emu.Calls() {
		if strings.HasPrefix(c.Path, "/subscriptions/") || strings.HasSuffix(c.Path, "/oauth2/v2.0/token") {
			t.Errorf("testSecret called Azure: %s %s", c.Method, c.Path)
		}
	}
	f.currentLogsIn("after a testSecret-only rotation")
}

// TestCrashBetweenRegenerateAndPut: the retry regenerates the same slot again, so the lost
// password is dead (no orphan) and AWSCURRENT keeps working throughout.
func TestCrashBetweenRegenerateAndPut(t *testing.T) {
	f := newFixture(t, nil)
	curID, cur := f.Current()
	token := f.Begin()
	crashing := f.Rotator()
	crashing.SM = rotationtest.CrashingSM{SecretsManager: f.SM}
	if err := f.StepWith(crashing, rotation.CreateSecret, token); err == nil {
		t.Fatal("the crashing createSecret reported success")
	}
	lost := f.emu.Passwords(tokenName)[acr.Password2]
	if lost.Value == "" || !slices.Equal(f.slots(), []string{acr.Password1, acr.Password2}) {
		t.Fatalf("the crash did not happen after regenerating password2: %v", f.slots())
	}
	if id, _ := f.Current(); id != curID {
		t.Fatal("AWSCURRENT moved")
	}
	f.mustLogIn(cur, "AWSCURRENT after the crash")

	// Secrets Manager retries the rotation from createSecret in a new environment.
	r := f.Rotator()
	for _, s := range rotationtest.Steps {
		if err := f.StepWith(r, s, token); err != nil {
			t.Fatalf("retry %s: %v", s, err)
		}
		if s != rotation.FinishSecret {
			f.mustLogIn(cur, "the old AWSCURRENT during the retry's "+string(s))
		}
	}
	if want := []string{acr.Password1, acr.Password2, acr.Password2}; !slices.Equal(f.slots(), want) {
		t.Fatalf("regenerated %v, want %v: the retry must reuse the slot AWSCURRENT does not carry", f.slots(), want)
	}
	f.mustNotLogIn(ptcsecret.Value{Username: tokenName, AccessToken: lost.Value}, "the password lost in the crash")
	id, now := f.Current()
	if id != token || f.slotOf(token) != acr.StagePassword2 {
		t.Fatalf("after the retry: current %s slot %q", id, f.slotOf(token))
	}
	f.mustLogIn(now, "AWSCURRENT after the retry")
	f.mustLogIn(cur, "AWSPREVIOUS after the retry")
}

func TestReplicationDelayIsWaitedOut(t *testing.T) {
	f := newFixture(t, func(o *acremu.Options) { o.ReplicationDelay = 30 * time.Second })
	f.sleep.mu.Lock()
	f.sleep.waits = nil // the first password's testSecret waited too
	f.sleep.mu.Unlock()
	token := f.Rotate()
	if id, _ := f.Current(); id != token {
		t.Fatal("the rotation did not finish")
	}
	want := []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	if got := f.sleep.Waits(); !slices.Equal(got, want) {
		t.Fatalf("waits %v, want %v", got, want)
	}
	f.currentLogsIn("after a rotation that waited for replication")
	if !strings.Contains(f.Logs.String(), "waiting for the new password to replicate") {
		t.Error("the wait was not logged")
	}
}

// TestReplicationNeverCompletes: testSecret fails with a clear error before the deadline,
// AWSCURRENT stays and logs in, and the retried rotation succeeds once ACR has caught up.
func TestReplicationNeverCompletes(t *testing.T) {
	f := newFixture(t, nil)
	curID, cur := f.Current()
	f.clock.Advance(2 * time.Hour) // the current password is long replicated
	f.emu.SetReplicationDelay(time.Hour)
	token := f.Begin()
	r := f.Rotator()
	for _, s := range []rotation.Step{rotation.CreateSecret, rotation.SetSecret} {
		if err := f.StepWith(r, s, token); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	ctx, cancel := context.WithTimeout(f.Ctx, 30*time.Second)
	defer cancel()
	err := r.Handle(ctx, rotation.Event{Step: rotation.TestSecret, SecretID: f.ARN, ClientRequestToken: token})
	f.Errs = append(f.Errs, err)
	if err == nil {
		t.Fatal("testSecret passed with a password that never replicated")
	}
	for _, w := range []string{"cannot log in to the azure-container-registry registry", "the new ACR password was still refused after 4 attempts over 14s", "about a minute to replicate", "the rotation will be retried"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	if !errors.Is(err, registryauth.ErrBadCredentials) {
		t.Errorf("error %v does not wrap ErrBadCredentials", err)
	}
	if id, _ := f.Current(); id != curID {
		t.Fatal("AWSCURRENT moved")
	}
	f.mustLogIn(cur, "AWSCURRENT after the failed testSecret")
	if !slices.Contains(f.Stages()[token], "AWSPENDING") {
		t.Fatal("the pending version lost AWSPENDING")
	}

	// Secrets Manager retries the rotation later; by then the password has replicated, and
	// createSecret keeps the stored password instead of regenerating again.
	f.clock.Advance(time.Hour)
	r = f.Rotator()
	for _, s := range rotationtest.Steps {
		if err := f.StepWith(r, s, token); err != nil {
			t.Fatalf("retry %s: %v", s, err)
		}
	}
	if want := []string{acr.Password1, acr.Password2}; !slices.Equal(f.slots(), want) {
		t.Fatalf("regenerated %v, want %v", f.slots(), want)
	}
	f.currentLogsIn("after the retried rotation")
}

func TestBadSourceSecretLeavesCurrentWorking(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  func(f *fixture) string
		want []string
	}{
		{"not JSON", func(f *fixture) string { return `{"clientSecret": "PLANTED-wrong-secret-77"` }, []string{"azure-container-registry source secret: not valid JSON"}},
		{"unknown field", func(f *fixture) string { return f.sourceJSON(map[string]any{"password": "PLANTED-wrong-secret-77"}) }, []string{`unknown field "password"`}},
		{"token id of a scope map", func(f *fixture) string {
			return f.sourceJSON(map[string]any{"tokenId": strings.Replace(f.emu.TokenID(tokenName), "/tokens/", "/scopeMaps/", 1)})
		}, []string{`field "tokenId" segment 9 is "scopeMaps"`}},
		{"wrong client secret", func(f *fixture) string {
			return f.sourceJSON(map[string]any{"clientSecret": "PLANTED-wrong-secret-77"})
		},
			[]string{"AADSTS7000215", `"tenantId", "clientId" and "clientSecret"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			curID, cur := f.Current()
			f.putSource(tc.doc(f))
			token := f.Begin()
			err := f.Step(rotation.CreateSecret, token)
			if err == nil {
				t.Fatal("createSecret succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if id, v := f.Current(); id != curID || v.AccessToken != cur.AccessToken {
				t.Fatal("AWSCURRENT changed")
			}
			f.mustLogIn(cur, "AWSCURRENT")
			if len(f.emu.Generations()) != 1 {
				t.Fatal("a password was regenerated")
			}
		})
	}
}

// TestHandMadeSecretKeepsPassword1: a secret created by hand (no slot label) that uses
// password1 keeps working; the rotation takes password2 and labels it.
func TestHandMadeSecretKeepsPassword1(t *testing.T) {
	f := newFixture(t, nil)
	curID, cur := f.Current()
	if _, err := f.SM.UpdateSecretVersionStage(f.Ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String(f.ARN), VersionStage: aws.String(acr.StagePassword1), RemoveFromVersionId: aws.String(curID),
	}); err != nil {
		t.Fatal(err)
	}
	token := f.Begin()
	r := f.Rotator()
	for _, s := range rotationtest.Steps {
		if err := f.StepWith(r, s, token); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		f.mustLogIn(cur, "the hand-made password1 during "+string(s))
	}
	if f.slotOf(token) != acr.StagePassword2 || !strings.Contains(f.Logs.String(), "no ACR slot label") {
		t.Fatalf("slot %q; warning logged: %v", f.slotOf(token), strings.Contains(f.Logs.String(), "no ACR slot label"))
	}
	f.currentLogsIn("after rotating a hand-made secret")
}
