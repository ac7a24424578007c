package acr_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/ptc-credentials/ptc-credentials/internal/registryauth"
	"github.com/ptc-credentials/ptc-credentials/internal/rotation"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/emukit"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/registries"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/rotationtest"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/upstreamtest"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/acr"
)

var moto *testenv.Moto

func TestMain(m *testing.M) { os.Exit(testenv.RunWithMoto(m, &moto)) }

// withClock makes the emulator and the upstream share a fake clock, and the upstream's retry
// waits advance it, so waiting for replication costs no real time.
func withClock(o upstreamtest.Options, clk *clock, sl *sleeper) upstreamtest.Options {
	o.Emulator.Now = clk.Now
	o.Provider = func(p upstream.Provider) upstream.Provider {
		p.New = func(source []byte, opts upstream.Options) (upstream.Upstream, error) {
			opts.Now, opts.Sleep = clk.Now, sl.Sleep
			return acr.New(source, opts)
		}
		return p
	}
	return o
}

// TestConformance runs the shared rotation suite against the ACR emulator and moto, with ACR's
// own facts as hooks: the first password is password1, the slots alternate, one rotation makes
// 4 upstream calls, and a repeated or testSecret-only step regenerates nothing.
func TestConformance(t *testing.T) {
	clk := &clock{t: t0}
	upstreamtest.Run(t, moto, registries.ACR, withClock(upstreamtest.Options{
		// The provisioner mints the first password into password1 and labels it so.
		AfterSetup: func(f *upstreamtest.Fixture) {
			v0, _ := f.Current()
			if slotOf(f, v0) != acr.StagePassword1 || !slices.Equal(slots(f), []string{acr.Password1}) {
				f.T.Fatalf("first version: slot %q, generations %v", slotOf(f, v0), slots(f))
			}
		},
		AfterMint: func(f *upstreamtest.Fixture, version string) {
			pending := f.Value(version)
			if !slices.Contains(f.Stages()[version], acr.StagePassword2) || pending.Username != tokenName ||
				pending.AccessToken != f.E.ACR.Passwords(tokenName)[acr.Password2].Value {
				f.T.Fatalf("the pending value is not the new password2 of the token: stages %v", f.Stages())
			}
		},
		AfterRotation: func(f *upstreamtest.Fixture, r upstreamtest.Rotation) {
			if slotOf(f, r.Current) != acr.StagePassword2 || slotOf(f, r.Previous) != acr.StagePassword1 {
				f.T.Fatalf("slot labels: current %q previous %q", slotOf(f, r.Current), slotOf(f, r.Previous))
			}
			// Entra ID token, generateCredentials, and the registry handshake (challenge + token
			// endpoint) in testSecret.
			logCalls(f.T, r.Calls)
			if len(r.Calls) != 4 {
				f.T.Errorf("%d upstream calls for one rotation, want 4", len(r.Calls))
			}
		},
		// After a first rotation (password2) the repeated one regenerated password1 once.
		AfterRepeat: func(f *upstreamtest.Fixture, version string) {
			if want := []string{acr.Password1, acr.Password2, acr.Password1}; !slices.Equal(slots(f), want) {
				f.T.Fatalf("regenerated %v, want %v: a repeated step regenerated again", slots(f), want)
			}
			if slotOf(f, version) != acr.StagePassword1 {
				f.T.Fatalf("stages %v", f.Stages())
			}
		},
		// The crash came after regenerating password2; the retry regenerates the same slot again
		// (the one AWSCURRENT does not carry), so the lost password is dead, no orphan.
		AfterCrash: func(f *upstreamtest.Fixture, c upstreamtest.Crash) {
			want := []string{acr.Password1, acr.Password2}
			if c.Retried {
				want = append(want, acr.Password2)
			}
			if !slices.Equal(slots(f), want) {
				f.T.Fatalf("regenerated %v, want %v (retried: %v)", slots(f), want, c.Retried)
			}
			if c.Retried && slotOf(f, c.Token) != acr.StagePassword2 {
				f.T.Fatalf("after the retry the current version carries %q", slotOf(f, c.Token))
			}
		},
		AfterTestSecretOnly: func(f *upstreamtest.Fixture, _ []emukit.Call) {
			if n := len(f.E.ACR.Generations()); n != 1 {
				f.T.Fatalf("testSecret-only rotation regenerated a password: %d generations", n)
			}
		},
	}, clk, &sleeper{clock: clk}))
}

func logCalls(t *testing.T, calls []emukit.Call) {
	t.Helper()
	for _, c := range calls {
		t.Logf("upstream call: %s %s -> %d", c.Method, c.Path, c.Status)
	}
}

// slotOf returns the ACR slot label a version carries, or "".
func slotOf(f *upstreamtest.Fixture, version string) string {
	st := f.Stages()[version]
	for _, l := range []string{acr.StagePassword1, acr.StagePassword2} {
		if slices.Contains(st, l) {
			return l
		}
	}
	return ""
}

// slots are the password slots generateCredentials regenerated, oldest first.
func slots(f *upstreamtest.Fixture) []string {
	var out []string
	for _, g := range f.E.ACR.Generations() {
		out = append(out, g.Slot)
	}
	return out
}

// fixture is a managed ACR secret in moto, its source secret, and the descriptor's ACR emulator
// behind it, on a fake clock that the upstream's waits advance.
type fixture struct {
	*upstreamtest.Fixture
	clock *clock
	sleep *sleeper
}

// newFixture sets up a secret whose first password (password1, as the provisioner mints it)
// is labelled ptc-acr-password1, with the emulator refusing new passwords for replication.
func newFixture(t *testing.T, replication time.Duration) *fixture {
	t.Helper()
	f := &fixture{clock: &clock{t: t0}}
	f.sleep = &sleeper{clock: f.clock}
	f.Fixture = upstreamtest.New(t, moto, registries.ACR, withClock(upstreamtest.Options{
		Emulator: registries.Options{ReplicationDelay: replication},
	}, f.clock, f.sleep))
	f.Planted = append(f.Planted, "PLANTED-wrong-secret-77")
	return f
}

// sourceJSON is the descriptor's source secret with fields replaced.
func (f *fixture) sourceJSON(edit map[string]any) string {
	var m map[string]any
	if err := json.Unmarshal([]byte(f.E.Source(0)), &m); err != nil {
		f.T.Fatal(err)
	}
	for k, v := range edit {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func (f *fixture) slotOf(version string) string { return slotOf(f.Fixture, version) }
func (f *fixture) slots() []string              { return slots(f.Fixture) }

// currentLogsIn asserts AWSCURRENT logs in; called after every step.
func (f *fixture) currentLogsIn(when string) { f.T.Helper(); f.CurrentLogsIn(when) }

// assertLabelsUnique fails unless each slot label sits on at most one version.
func (f *fixture) assertLabelsUnique() {
	f.T.Helper()
	for _, l := range []string{acr.StagePassword1, acr.StagePassword2} {
		n := 0
		for _, st := range f.Stages() {
			if slices.Contains(st, l) {
				n++
			}
		}
		if n > 1 {
			f.T.Fatalf("%s is on %d versions: %v", l, n, f.Stages())
		}
	}
}

// TestSlotsAlternate runs three rotations: the slot alternates, its label moves with it, and
// AWSCURRENT logs in after every step. The previous password works until the next rotation's
// createSecret regenerates its slot.
func TestSlotsAlternate(t *testing.T) {
	f := newFixture(t, 0)
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
				f.MustNotLogIn(f.Value(prevID), fmt.Sprintf("AWSPREVIOUS after rotation %d createSecret", i))
			}
		}
		versions = append(versions, token)
		f.MustLogIn(prev, fmt.Sprintf("AWSPREVIOUS after rotation %d", i))
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
	f.MustNotLogIn(f.Value(versions[1]), "the version two generations old")
}

func TestReplicationDelayIsWaitedOut(t *testing.T) {
	f := newFixture(t, 30*time.Second)
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
	f := newFixture(t, 0)
	curID, cur := f.Current()
	f.clock.Advance(2 * time.Hour) // the current password is long replicated
	f.E.ACR.SetReplicationDelay(time.Hour)
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
	f.MustLogIn(cur, "AWSCURRENT after the failed testSecret")
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
			return f.sourceJSON(map[string]any{"tokenId": strings.Replace(f.E.ACR.TokenID(tokenName), "/tokens/", "/scopeMaps/", 1)})
		}, []string{`field "tokenId" segment 9 is "scopeMaps"`}},
		{"wrong client secret", func(f *fixture) string {
			return f.sourceJSON(map[string]any{"clientSecret": "PLANTED-wrong-secret-77"})
		},
			[]string{"AADSTS7000215", `"tenantId", "clientId" and "clientSecret"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 0)
			curID, cur := f.Current()
			f.PutSource(tc.doc(f))
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
			f.MustLogIn(cur, "AWSCURRENT")
			if len(f.E.ACR.Generations()) != 1 {
				t.Fatal("a password was regenerated")
			}
		})
	}
}

// TestHandMadeSecretKeepsPassword1: a secret created by hand (no slot label) that uses
// password1 keeps working; the rotation takes password2 and labels it.
func TestHandMadeSecretKeepsPassword1(t *testing.T) {
	f := newFixture(t, 0)
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
		f.MustLogIn(cur, "the hand-made password1 during "+string(s))
	}
	if f.slotOf(token) != acr.StagePassword2 || !strings.Contains(f.Logs.String(), "no ACR slot label") {
		t.Fatalf("slot %q; warning logged: %v", f.slotOf(token), strings.Contains(f.Logs.String(), "no ACR slot label"))
	}
	f.currentLogsIn("after rotating a hand-made secret")
}

// TestConformanceFederated runs the shared rotation suite with ACR in federated mode: no client
// secret exists anywhere; every Entra ID token is obtained with the role's web identity token
// (emulated STS), which Entra's emulator verifies against the issuer's keys.
func TestConformanceFederated(t *testing.T) {
	clk := &clock{t: t0}
	sl := &sleeper{clock: clk}
	o := upstreamtest.Options{
		AfterRotation: func(f *upstreamtest.Fixture, r upstreamtest.Rotation) {
			logCalls(f.T, r.Calls)
			if len(r.Calls) != 4 {
				f.T.Errorf("%d ACR calls for one rotation, want 4", len(r.Calls))
			}
			if len(f.E.STS.Issued()) == 0 {
				f.T.Error("no web identity token was asked for: the rotation did not federate")
			}
			if strings.Contains(f.Logs.String(), "eyJ") {
				f.T.Error("a JWT appears in the logs")
			}
		},
	}
	o.Emulator.Now = clk.Now
	o.Provider = func(p upstream.Provider) upstream.Provider {
		inner := p.New // the emulator's: it adds the web identity source
		p.New = func(source []byte, opts upstream.Options) (upstream.Upstream, error) {
			opts.Now, opts.Sleep = clk.Now, sl.Sleep
			return inner(source, opts)
		}
		return p
	}
	upstreamtest.Run(t, moto, registries.ACRFederated, o)
}
