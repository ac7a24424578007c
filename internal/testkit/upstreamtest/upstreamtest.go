// Package upstreamtest is the conformance suite every upstream package runs, from its own test
// file, against its emulated registry (a registries.Descriptor) and a real moto_server, through
// the rotationtest harness: a full rotation step by step, every step run twice, a crash between
// minting and PutSecretValue, one generation of overlap and the revocation after it,
// RotateSecret(RotateImmediately=false) running testSecret only, and a refused source
// credential — each ending with a scan of the captured logs, metrics and errors for every
// planted secret. What a registry can and cannot do (mint, label, slots, revoke) comes from its
// descriptor; checks only one registry can make are hooks (Options) in its own test file.
//
//	func TestConformance(t *testing.T) {
//		upstreamtest.Run(t, moto, registries.GitLab, upstreamtest.Options{})
//	}
package upstreamtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/registryauth"
	"github.com/ptc-credentials/ptc-credentials/internal/rotation"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/emukit"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/registries"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/rotationtest"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
)

// Options shape one run of the suite. Every hook is optional; a hook fails the test through
// f.T when what it checks does not hold.
type Options struct {
	// Emulator configures the registry's emulator (clock, source secret edits, …).
	Emulator registries.Options
	// Provider adapts the descriptor's provider, e.g. to share the emulator's fake clock and
	// make retry waits advance it; nil: the provider as it is.
	Provider func(upstream.Provider) upstream.Provider

	// AfterSetup runs once the first version exists and rotation is enabled, in every test.
	AfterSetup func(f *Fixture)
	// AfterMint runs in FullRotation once createSecret stored the pending version.
	AfterMint func(f *Fixture, version string)
	// AfterRotation runs at the end of FullRotation.
	AfterRotation func(f *Fixture, r Rotation)
	// AfterRepeat runs at the end of EveryStepTwice; version is the one rotated to.
	AfterRepeat func(f *Fixture, version string)
	// AfterCrash runs in CrashBetweenMintAndPut after the crash and again after the retry.
	AfterCrash func(f *Fixture, c Crash)
	// AfterTestSecretOnly runs at the end of TestSecretOnly with the upstream calls testSecret
	// made.
	AfterTestSecretOnly func(f *Fixture, calls []emukit.Call)
}

// Rotation is what FullRotation did.
type Rotation struct {
	// Previous and Current are the versions that became AWSPREVIOUS and AWSCURRENT.
	Previous, Current string
	// Calls are the upstream calls the four steps made (the test's own login checks between
	// steps are not among them).
	Calls []emukit.Call
}

// Crash is what CrashBetweenMintAndPut saw.
type Crash struct {
	// Token is the pending version the crashed createSecret was for.
	Token string
	// Retried is false right after the crash, true after the retried rotation finished.
	Retried bool
	// Orphans are the credentials the crash left in the registry (registries that mint).
	Orphans []registries.Credential
}

// Fixture is one managed secret whose credentials come from a registry's emulator: the
// rotationtest harness plus the emulator and the checks every test of an upstream needs.
type Fixture struct {
	*rotationtest.Harness
	// T is the test.
	T *testing.T
	// E is the registry's emulator.
	E *registries.Emulator
	// Planted are further secret values the final leak scan looks for (bad source secrets a
	// test put in); the emulator's own are always scanned for.
	Planted []string
}

// New starts the registry's emulator and sets up one managed secret with its first credential
// and rotation enabled (rotationtest.New). When the test ends it scans the captured logs,
// metrics and errors for every planted secret.
func New(t *testing.T, moto *testenv.Moto, d *registries.Descriptor, o Options) *Fixture {
	t.Helper()
	e := d.MustStart(t, o.Emulator)
	p := e.Provider // the emulator's: federated registries add their web identity source
	if o.Provider != nil {
		p = o.Provider(p)
	}
	f := &Fixture{T: t, E: e}
	f.Harness = rotationtest.New(t, moto, rotationtest.Config{Provider: p, SourceJSON: e.Source(0), RegistryURL: e.URL, Standins: e.Standins()})
	t.Cleanup(func() { f.ScanLeaks() })
	return f
}

// ScanLeaks fails the test if a planted secret (the emulator's, f.Planted, extra) appears in the
// captured logs, metrics or errors. New registers it to run when the test ends.
func (f *Fixture) ScanLeaks(extra ...string) {
	f.T.Helper()
	planted := append(f.E.PlantedSecrets(), f.Planted...)
	f.AssertNoLeak(append(planted, extra...)...)
}

// LoginErr checks a credential with the registry's OCI handshake directly, not through the
// upstream (whose Verify may retry).
func (f *Fixture) LoginErr(v ptcsecret.Value) error { return f.E.Login(f.Ctx, v) }

// MustLogIn fails the test unless v logs in.
func (f *Fixture) MustLogIn(v ptcsecret.Value, what string) {
	f.T.Helper()
	if err := f.LoginErr(v); err != nil {
		f.T.Fatalf("%s does not log in: %v", what, err)
	}
}

// MustNotLogIn fails the test unless the registry refuses v.
func (f *Fixture) MustNotLogIn(v ptcsecret.Value, what string) {
	f.T.Helper()
	if err := f.LoginErr(v); !errors.Is(err, registryauth.ErrBadCredentials) {
		f.T.Fatalf("%s still logs in (err=%v)", what, err)
	}
}

// CurrentLogsIn fails the test unless AWSCURRENT logs in.
func (f *Fixture) CurrentLogsIn(when string) {
	f.T.Helper()
	_, cur := f.Current()
	f.MustLogIn(cur, "AWSCURRENT "+when)
}

// PutSource replaces the source secret's value, as an operator does.
func (f *Fixture) PutSource(doc string) {
	f.T.Helper()
	doc = rotationtest.BindSource(doc, f.Name) // the owner keeps allowing this managed secret
	if _, err := f.SM.PutSecretValue(f.Ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(f.SourceARN), SecretString: aws.String(doc)}); err != nil {
		f.T.Fatal(err)
	}
}

// Stage puts doc into the source secret the way a person stages the next credential, and makes
// the harness's own upstream read it too.
func (f *Fixture) Stage(doc string) {
	f.T.Helper()
	f.PutSource(doc)
	f.Cfg.SourceJSON = doc
}

// StageNext is what a person does before a rotation where the registry cannot mint: create the
// next credential and stage it. ok is false (and nothing happens) where the registry mints.
func (f *Fixture) StageNext() (c registries.Credential, ok bool) {
	f.T.Helper()
	c, doc, ok := f.E.StageNext(0)
	if ok {
		f.Stage(doc)
	}
	return c, ok
}

// Version reads one version of the managed secret as the registry checks see it.
func (f *Fixture) Version(id string) registries.Version {
	f.T.Helper()
	return registries.Version{ID: id, Stages: f.Stages()[id], Value: f.Value(id)}
}

// CheckAtRest fails the test unless the registry holds the credentials of AWSCURRENT current
// and AWSPREVIOUS previous and, where it revokes, nothing else for the secret
// (registries.Emulator.CheckAtRest).
func (f *Fixture) CheckAtRest(current, previous string) {
	f.T.Helper()
	for _, p := range f.E.CheckAtRest(f.Key, f.Version(current), f.Version(previous)) {
		f.T.Error(p)
	}
}

// sameCredential reports whether two records are one credential: same name, secret and username
// (a Chainguard pull token's record has no secret; its identity id, the username, tells two
// tokens of one version apart).
func sameCredential(a, b registries.Credential) bool {
	return a.Name == b.Name && a.Secret == b.Secret && a.Username == b.Username
}

// MustHold fails the test unless the credential version id holds is on record, held, under the
// name the registry describes it with, and holding the version's value and username.
func (f *Fixture) MustHold(id, what string) registries.Credential {
	f.T.Helper()
	v := f.Version(id)
	name := f.E.DescribeVersion(f.Key, v)
	for _, c := range f.E.Held(f.Key) {
		if c.Name == name {
			if !f.E.HoldsValue(c, v.Value) || c.Username != v.Value.Username {
				f.T.Fatalf("%s: %s's credential %s does not hold the version's value (username %q, the version's %q)", what, f.E.Title, name, c.Username, v.Value.Username)
			}
			return c
		}
	}
	f.T.Fatalf("%s: %s holds no credential %s (held: %v)", what, f.E.Title, name, fingerprints(f.E.Held(f.Key)))
	return registries.Credential{}
}

// Snapshot renders the secret's stages and every credential the registry has on record,
// without secrets: equal snapshots mean a step changed nothing.
func (f *Fixture) Snapshot() string {
	f.T.Helper()
	return fmt.Sprint(rotationtest.SortedStages(f.Stages()), f.credentials())
}

// credentials renders every credential the registry has on record, any secret's, without
// secrets: equal renderings mean nothing was made, revoked or changed.
func (f *Fixture) credentials() string { return fmt.Sprint(f.E.Fingerprints("")) }

func fingerprints(cs []registries.Credential) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Fingerprint())
	}
	return out
}

// Run runs every test of the suite as subtests of t, each on a fresh managed secret.
func Run(t *testing.T, moto *testenv.Moto, d *registries.Descriptor, o Options) {
	for _, tc := range []struct {
		name string
		run  func(*Fixture, Options)
	}{
		{"FullRotation", FullRotation},
		{"EveryStepTwice", EveryStepTwice},
		{"CrashBetweenMintAndPut", CrashBetweenMintAndPut},
		{"OverlapAndRevocation", OverlapAndRevocation},
		{"TestSecretOnly", TestSecretOnly},
		{"RefusedSourceLeavesCurrentWorking", RefusedSourceLeavesCurrentWorking},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := New(t, moto, d, o)
			if o.AfterSetup != nil {
				o.AfterSetup(f)
			}
			tc.run(f, o)
		})
	}
}

// FullRotation drives one rotation step by step in one warm environment: createSecret stores
// a new credential (minted, or the one a person staged) as AWSPENDING without touching
// AWSCURRENT; setSecret and testSecret move no stage; finishSecret promotes it and the old
// version becomes AWSPREVIOUS. AWSCURRENT logs in after every step, AWSPREVIOUS still logs in
// at the end (one generation of overlap), the registry holds exactly those two credentials, and
// RotationSucceeded is emitted.
func FullRotation(f *Fixture, o Options) {
	t := f.T
	oldID, oldVal := f.Current()
	f.MustHold(oldID, "the first version")
	staged, stagedOK := f.StageNext()

	token := f.Begin()
	r := f.Rotator()
	var calls []emukit.Call
	// step runs one step and keeps the upstream calls it made.
	step := func(s rotation.Step) {
		t.Helper()
		f.E.ResetCalls()
		err := f.StepWith(r, s, token)
		calls = append(calls, f.E.Calls()...)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}

	step(rotation.CreateSecret)
	st := f.Stages()
	if !slices.Contains(st[token], ptcsecret.StagePending) || !slices.Contains(st[oldID], ptcsecret.StageCurrent) {
		t.Fatalf("after createSecret: stages %v", st)
	}
	pending := f.Value(token)
	if pending.AccessToken == oldVal.AccessToken {
		t.Fatal("the pending value holds the old credential")
	}
	if stagedOK && (pending.AccessToken != staged.Secret || pending.Username != staged.Username) {
		t.Fatalf("the pending version does not hold %s, which a person staged", staged.Name)
	}
	if f.E.Provider.FixedUsername && pending.Username != oldVal.Username {
		t.Fatalf("the pending username %q differs from the current one %q", pending.Username, oldVal.Username)
	}
	f.MustHold(token, "the pending version")
	if o.AfterMint != nil {
		o.AfterMint(f, token)
	}
	f.CurrentLogsIn("after createSecret")

	for _, s := range []rotation.Step{rotation.SetSecret, rotation.TestSecret} {
		step(s)
		if st := f.Stages(); !slices.Contains(st[oldID], ptcsecret.StageCurrent) || !slices.Contains(st[token], ptcsecret.StagePending) {
			t.Fatalf("%s moved a stage: %v", s, st)
		}
		f.CurrentLogsIn("after " + string(s))
	}
	step(rotation.FinishSecret)
	f.AssertStages(token, ptcsecret.StageCurrent)
	f.AssertStages(oldID, ptcsecret.StagePrevious)
	curID, cur := f.Current()
	if curID != token || cur.AccessToken != pending.AccessToken {
		t.Fatalf("AWSCURRENT is version %s, want %s holding the pending value", curID, token)
	}
	if prev := f.Value(oldID); prev.AccessToken != oldVal.AccessToken {
		t.Fatal("AWSPREVIOUS does not hold the old value")
	}
	f.CurrentLogsIn("after finishSecret")
	f.MustLogIn(oldVal, "AWSPREVIOUS (one generation of overlap, until the next rotation)")
	f.CheckAtRest(token, oldID)
	if !strings.Contains(f.EMF.String(), `"RotationSucceeded":1`) {
		t.Error("no RotationSucceeded metric")
	}
	if o.AfterRotation != nil {
		o.AfterRotation(f, Rotation{Previous: oldID, Current: token, Calls: calls})
	}
}

// EveryStepTwice runs every step of a rotation twice, each run in a fresh environment, after
// a first rotation (so that finishSecret has an old credential to revoke, twice): the second
// run changes nothing — no stage, no credential — the pending value stays the one stored
// first, AWSCURRENT logs in after every run, and the registry ends with exactly the current
// and previous credentials.
func EveryStepTwice(f *Fixture, o Options) {
	t := f.T
	f.StageNext()
	f.Rotate()
	prevID, prevVal := f.Current()
	staged, stagedOK := f.StageNext()
	token := f.Begin()
	var pending ptcsecret.Value
	for i, s := range rotationtest.Steps {
		var after string
		for run := 1; run <= 2; run++ {
			// A retry may land in a fresh environment: a new Rotator each time.
			if err := f.Step(s, token); err != nil {
				t.Fatalf("%s run %d: %v", s, run, err)
			}
			f.CurrentLogsIn(fmt.Sprintf("after %s run %d", s, run))
			now := f.Snapshot()
			if run == 1 {
				after = now
				if i == 0 {
					pending = f.Value(token)
				}
			} else if now != after {
				t.Fatalf("%s run twice changed state: %s then %s", s, after, now)
			}
		}
	}
	if v := f.Value(token); v.AccessToken != pending.AccessToken {
		t.Fatal("the pending value changed between runs")
	}
	if stagedOK && pending.AccessToken != staged.Secret {
		t.Fatalf("the rotation did not promote %s, which a person staged", staged.Name)
	}
	f.AssertStages(token, ptcsecret.StageCurrent)
	f.AssertStages(prevID, ptcsecret.StagePrevious)
	if f.Value(prevID).AccessToken != prevVal.AccessToken {
		t.Fatal("AWSPREVIOUS does not hold the old value")
	}
	f.CurrentLogsIn("at the end")
	f.CheckAtRest(token, prevID)
	if o.AfterRepeat != nil {
		o.AfterRepeat(f, token)
	}
}

// CrashBetweenMintAndPut kills createSecret inside PutSecretValue, after the credential was
// made and before it was stored (rotationtest.CrashingSM). AWSCURRENT stays and logs in; a
// registry that mints holds the orphan. Secrets Manager retries the rotation from createSecret
// in a fresh environment: it finishes, the orphan no longer logs in nor is held (a labelled
// one is revoked, and that is logged), the old current logs in after every step of the retry,
// and the registry ends with exactly the current and previous credentials.
func CrashBetweenMintAndPut(f *Fixture, o Options) {
	t := f.T
	curID, cur := f.Current()
	staged, stagedOK := f.StageNext()
	before := f.credentials()
	heldBefore := f.E.Held(f.Key)
	token := f.Begin()
	crashing := f.Rotator()
	crashing.SM = rotationtest.CrashingSM{SecretsManager: f.SM}
	if err := f.StepWith(crashing, rotation.CreateSecret, token); err == nil {
		t.Fatal("the crashing createSecret reported success")
	}
	var orphans []registries.Credential
	for _, c := range f.E.Held(f.Key) {
		if !slices.ContainsFunc(heldBefore, func(b registries.Credential) bool { return sameCredential(b, c) }) {
			orphans = append(orphans, c)
		}
	}
	switch {
	case f.E.Can.Mints && len(orphans) == 0:
		t.Fatal("the crash did not leave an orphan credential to clean up")
	case !f.E.Can.Mints && f.credentials() != before:
		t.Fatalf("the crash changed %s's credentials, where nothing can be minted", f.E.Title)
	}
	for _, o := range orphans {
		if f.E.Can.Labels && o.Version != token {
			t.Fatalf("the crash left %s, which is not labelled for the pending version %s", o.Name, token)
		}
	}
	if id, _ := f.Current(); id != curID {
		t.Fatal("AWSCURRENT moved")
	}
	f.MustLogIn(cur, "AWSCURRENT after the crash")
	if o.AfterCrash != nil {
		o.AfterCrash(f, Crash{Token: token, Orphans: orphans})
	}

	// Secrets Manager retries the rotation from createSecret in a new environment.
	r := f.Rotator()
	for _, s := range rotationtest.Steps {
		if err := f.StepWith(r, s, token); err != nil {
			t.Fatalf("retry %s: %v", s, err)
		}
		f.MustLogIn(cur, "the old AWSCURRENT after the retry's "+string(s))
	}
	held := f.E.Held(f.Key)
	for _, orphan := range orphans {
		if slices.ContainsFunc(held, func(c registries.Credential) bool { return sameCredential(c, orphan) }) {
			t.Fatalf("the orphan %s survived the retry", orphan.Name)
		}
		f.MustNotLogIn(orphan.Value(), "the orphan "+orphan.Name)
	}
	if f.E.Can.Mints && f.E.Can.Labels && !strings.Contains(f.Logs.String(), "revoked token left by an earlier attempt") {
		t.Error("the orphan's revocation was not logged")
	}
	if !f.E.Can.Mints && f.credentials() != before {
		t.Fatalf("the retry changed %s's credentials", f.E.Title)
	}
	id, now := f.Current()
	if id != token {
		t.Fatalf("after the retry AWSCURRENT is %s, want %s", id, token)
	}
	if stagedOK && now.AccessToken != staged.Secret {
		t.Fatalf("AWSCURRENT is not %s, which a person staged", staged.Name)
	}
	f.MustLogIn(now, "AWSCURRENT after the retry")
	f.MustLogIn(cur, "AWSPREVIOUS after the retry")
	f.CheckAtRest(token, curID)
	if o.AfterCrash != nil {
		o.AfterCrash(f, Crash{Token: token, Retried: true, Orphans: orphans})
	}
}

// OverlapAndRevocation rotates twice. The versions of both rotations log in; where the registry
// revokes, the first version's credential (two generations old) no longer does, is no longer
// held, is not offered by the upstream's own listing, and TokensRevoked is emitted where
// credentials carry labels; where it cannot revoke, the first one still logs in and nothing is
// revoked. Either way the registry holds the current and previous credentials.
func OverlapAndRevocation(f *Fixture, _ Options) {
	t := f.T
	v0, val0 := f.Current()
	f.StageNext()
	v1 := f.Rotate()
	f.StageNext()
	v2 := f.Rotate()
	f.AssertStages(v2, ptcsecret.StageCurrent)
	f.AssertStages(v1, ptcsecret.StagePrevious)
	f.MustLogIn(f.Value(v1), "AWSPREVIOUS")
	f.MustLogIn(f.Value(v2), "AWSCURRENT")
	f.CheckAtRest(v2, v1)
	if !f.E.Can.Revokes {
		f.MustLogIn(val0, "the first credential (the registry revokes nothing: it is its owner's to end)")
		return
	}
	f.MustNotLogIn(val0, "the credential two generations old")
	for _, c := range f.E.Held(f.Key) {
		if c.Secret == val0.AccessToken || (c.Version != "" && c.Version == v0) {
			t.Fatalf("%s still holds the credential two generations old (%s)", f.E.Title, c.Name)
		}
	}
	if f.E.Can.Labels {
		toks, err := f.Upstream().Tokens(f.Ctx, ptcsecret.LabelPrefix(f.Key))
		if err != nil {
			t.Fatal(err)
		}
		var labels []string
		for _, tk := range toks {
			labels = append(labels, tk.Label)
		}
		if len(labels) != 2 || slices.Contains(labels, ptcsecret.Label(f.Key, v0)) {
			t.Fatalf("the upstream still lists the old token: %v", labels)
		}
		if !strings.Contains(f.EMF.String(), `"TokensRevoked":1`) {
			t.Error("no TokensRevoked metric")
		}
	}
}

// TestSecretOnly is RotateSecret(RotateImmediately=false), how the provisioner turns rotation
// on: testSecret on a pending copy of the current value. It makes and revokes nothing (no call
// to the token API where the registry mints; its credentials unchanged), leaves every existing
// version's stages as they were and no new version with a stage, and AWSCURRENT still logs in.
func TestSecretOnly(f *Fixture, o Options) {
	t := f.T
	before := f.Stages()
	creds := f.credentials()
	f.E.ResetCalls()
	f.EnableRotation()
	calls := f.E.Calls()
	if f.E.Can.Mints {
		for _, c := range calls {
			if f.E.IsAPI(c.Path) {
				t.Errorf("testSecret called %s's API: %s %s", f.E.Title, c.Method, c.Path)
			}
		}
	}
	if now := f.credentials(); now != creds {
		t.Fatalf("testSecret-only rotation changed %s's credentials: %v then %v", f.E.Title, creds, now)
	}
	for id, stages := range f.Stages() {
		old, existed := before[id]
		switch {
		case !existed && len(stages) > 0:
			t.Errorf("a new version %s kept stages %v", id, stages)
		case existed && fmt.Sprint(rotationtest.SortedStages(map[string][]string{id: old})) != fmt.Sprint(rotationtest.SortedStages(map[string][]string{id: stages})):
			t.Errorf("version %s's stages changed from %v to %v", id, old, stages)
		}
	}
	f.CurrentLogsIn("after a testSecret-only rotation")
	if o.AfterTestSecretOnly != nil {
		o.AfterTestSecretOnly(f, calls)
	}
}

// RefusedSourceLeavesCurrentWorking puts a source secret whose credential the registry does not
// know (a planted value) and rotates: a step fails, AWSCURRENT stays and logs in, no credential
// is made, and neither the planted value nor any other secret reaches a log, metric or error.
func RefusedSourceLeavesCurrentWorking(f *Fixture, _ Options) {
	t := f.T
	curID, cur := f.Current()
	creds := f.credentials()
	wrong := "PLANTED-refused-" + strings.ReplaceAll(rotationtest.NewID(), "-", "")[:20]
	f.Planted = append(f.Planted, wrong)
	f.PutSource(f.E.WrongSourceJSON(wrong))
	token := f.Begin()
	r := f.Rotator()
	var failed rotation.Step
	for _, s := range rotationtest.Steps {
		if err := f.StepWith(r, s, token); err != nil {
			failed = s
			break
		}
	}
	if failed == "" {
		t.Fatal("a rotation with a refused source credential succeeded")
	}
	if failed == rotation.FinishSecret {
		t.Fatal("only finishSecret failed: the refused credential was never checked")
	}
	if id, v := f.Current(); id != curID || v.AccessToken != cur.AccessToken {
		t.Fatal("AWSCURRENT changed")
	}
	f.MustLogIn(cur, "AWSCURRENT after the failed rotation")
	if now := f.credentials(); now != creds {
		t.Fatalf("the failed rotation (%s) changed %s's credentials: %v then %v", failed, f.E.Title, creds, now)
	}
	if len(f.Errs) == 0 || !strings.Contains(f.Logs.String(), "rotation step failed") {
		t.Fatal("the failure was not captured")
	}
}

// RunStaged runs the suite with the registry in staged mode (registries.Staged: the source
// secret holds the next token a person made; nothing is minted or revoked), plus the tests only
// staged mode has: StagedReverifiesCurrent and StagedExpiry. Only o.Emulator and o.Provider
// apply; the hooks are the minting mode's.
func RunStaged(t *testing.T, moto *testenv.Moto, d *registries.Descriptor, o Options) {
	sd := registries.Staged(d)
	o = Options{Emulator: o.Emulator, Provider: o.Provider}
	Run(t, moto, sd, o)
	for _, tc := range []struct {
		name string
		run  func(*Fixture, Options)
	}{
		{"StagedReverifiesCurrent", StagedReverifiesCurrent},
		{"StagedExpiry", StagedExpiry},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(New(t, moto, sd, o), o) })
	}
}

// StagedReverifiesCurrent rotates while the source secret still holds the token already
// current (nobody staged a new one): the rotation succeeds, AWSCURRENT holds the same token and
// logs in, nothing was made or revoked, and TokenDaysToExpiry is reported again.
func StagedReverifiesCurrent(f *Fixture, _ Options) {
	t := f.T
	_, cur := f.Current()
	creds := f.credentials()
	emf := len(f.EMF.String())
	v := f.Rotate()
	id, now := f.Current()
	if id != v || now != cur {
		t.Fatalf("AWSCURRENT is %s (same token: %v), want the re-verified version %s holding the same token", id, now == cur, v)
	}
	f.CurrentLogsIn("after re-verifying the current staged token")
	if c := f.credentials(); c != creds {
		t.Fatalf("re-verifying changed %s's credentials: %v then %v", f.E.Title, creds, c)
	}
	if !strings.Contains(f.EMF.String()[emf:], `"TokenDaysToExpiry"`) {
		t.Error("re-verifying the current staged token reported no TokenDaysToExpiry")
	}
}

// StagedExpiry: a staged token's days to expiry come from the registry where it tells them,
// else from the source's "expiresAt" (TokenDaysToExpiry emitted, no warning); with neither the
// expiry is unknown — a warning in the log, and no TokenDaysToExpiry.
func StagedExpiry(f *Fixture, _ Options) {
	t := f.T
	var src map[string]any
	if err := json.Unmarshal([]byte(f.Cfg.SourceJSON), &src); err != nil {
		t.Fatal(err)
	}
	_, hasExpiresAt := src["expiresAt"]
	vendorTells := !hasExpiresAt // the descriptor states one only where the registry tells none
	emf, logs := len(f.EMF.String()), len(f.Logs.String())
	f.Rotate()
	if !strings.Contains(f.EMF.String()[emf:], `"TokenDaysToExpiry"`) {
		t.Fatal("no TokenDaysToExpiry for a staged token whose expiry is known")
	}
	if strings.Contains(f.Logs.String()[logs:], "expiry is unknown") {
		t.Fatal("an expiry warning although the expiry is known")
	}
	if vendorTells {
		return
	}
	delete(src, "expiresAt")
	doc, err := json.Marshal(src)
	if err != nil {
		t.Fatal(err)
	}
	f.Stage(string(doc))
	emf, logs = len(f.EMF.String()), len(f.Logs.String())
	f.Rotate()
	if strings.Contains(f.EMF.String()[emf:], `"TokenDaysToExpiry"`) {
		t.Error("TokenDaysToExpiry emitted for a staged token whose expiry nobody knows")
	}
	if !strings.Contains(f.Logs.String()[logs:], "expiry is unknown") || !strings.Contains(f.Logs.String()[logs:], `"level":"WARN"`) {
		t.Error("no warning that the staged token's expiry is unknown")
	}
}
