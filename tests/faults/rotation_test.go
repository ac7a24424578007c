package faults

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/ptc-credentials/ptc-credentials/internal/metrics"
	"github.com/ptc-credentials/ptc-credentials/internal/rotation"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/rotationtest"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
)

// Deadlines of one rotation step (a Lambda invocation): the normal one, and the short one the
// step a hang fault hits gets.
const (
	stepDeadline     = 30 * time.Second
	stepHangDeadline = 500 * time.Millisecond
)

// TestRotationFaults is scenario 1: a full rotation per registry, one fault per case.
func TestRotationFaults(t *testing.T) {
	t.Parallel()
	for _, reg := range Registries {
		name := "rotation-" + reg
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dry := anchoredDryRun(t, newLocal, func(sm smServer) []Call {
				var dryOutcome Outcome
				res := runRotation(t, sm, reg, Call{}, "", 0, true, &dryOutcome)
				if dryOutcome != Absorbed {
					t.Fatalf("the fault-free rotation did not finish: %s", dryOutcome)
				}
				return res.calls
			})
			info := &scenarioInfo{
				name:  name,
				doc:   fmt.Sprintf("A full four-step rotation of a managed secret for %s (the four steps in one warm Lambda environment, as Secrets Manager usually runs them).", reg),
				calls: dry, kinds: Kinds,
				invs: map[int]string{1: string(rotation.CreateSecret), 2: string(rotation.SetSecret), 3: string(rotation.TestSecret), 4: string(rotation.FinishSecret)},
			}
			recordScenario(info)
			for _, c := range dry {
				t.Logf("call %d (%s): %s", c.N, info.invs[c.Inv], c.Op)
			}
			for _, c := range dry {
				for _, kind := range Kinds {
					t.Run(fmt.Sprintf("call-%d-%s", c.N, kind), func(t *testing.T) {
						t.Parallel()
						var outcome Outcome
						var note string
						recordCell(t, name, c.N, kind, &outcome, &note)
						runCase(t, name, c, kind, &note, func(tb testing.TB) {
							res := withHangRetry(kind, stepHangDeadline, stepDeadline, func(hang time.Duration, last bool) rotationResult {
								return runRotation(tb, newLocal(tb), reg, c, kind, hang, last, &outcome)
							})
							checkSequence(tb, dry, res.calls, res.fired, c.N)
						})
					})
				}
			}
			for _, c := range dry {
				for _, kind := range Kinds {
					if !motoSample(c, kind) {
						continue
					}
					t.Run(fmt.Sprintf("moto/call-%d-%s", c.N, kind), func(t *testing.T) {
						t.Parallel()
						var outcome Outcome
						var note string
						runCase(t, name, c, kind, &note, func(tb testing.TB) {
							res := runRotation(tb, moto, reg, c, kind, 0, true, &outcome)
							checkSequence(tb, dry, res.calls, res.fired, c.N)
						})
					})
				}
			}
		})
	}
}

type rotationResult struct {
	outcome Outcome
	calls   []Call
	fired   *Call
}

// runRotation sets up a managed secret in sm, runs one rotation with a fault at call at (none
// when at.N is 0), retries it as Secrets Manager does, runs one more fault-free rotation, and
// checks the invariants after the fault, after the retry and at the end.
func runRotation(t testing.TB, srv smServer, reg string, at Call, kind Kind, hangDeadline time.Duration, last bool, outcome *Outcome) rotationResult {
	t.Helper()
	inj := NewInjector()
	f := newRegFixture(t, inj, srv, reg)
	h := f.h
	f.stage()
	oldCurrent, _ := h.Current()
	token := h.Begin()
	sm := faultySM(inj, srv.URL())
	newRotator := func() *rotation.Rotator {
		return &rotation.Rotator{
			SM: sm, Providers: map[string]upstream.Provider{reg: h.Cfg.Provider}, HTTPClient: inj.Client(), Standins: h.Cfg.Standins,
			Logger:  slog.New(slog.NewJSONHandler(h.Logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			Metrics: &metrics.Emitter{W: h.EMF},
		}
	}

	// The faulted attempt: the four steps in one warm environment, stopping at the first
	// failure as Secrets Manager does; a death ends the environment.
	if at.N > 0 {
		inj.Arm(at, kind)
	}
	inj.Counting(true)
	res := rotationResult{outcome: Absorbed}
	r := newRotator()
	for i, step := range rotationtest.Steps {
		inv := i + 1
		inj.Begin(inv)
		hang := kind == Hang && inv == at.Inv
		ctx, cancel := invocationContext(hang, stepDeadline, hangDeadline)
		err := r.Handle(ctx, rotation.Event{Step: step, SecretID: h.ARN, ClientRequestToken: token, RotationToken: "rotation-token-" + rotationtest.NewID()})
		cancel()
		inj.Freeze()
		if hang && !last && inj.Fired() == nil {
			panic(errRerun("the short deadline ran out before the faulted call"))
		}
		if err != nil {
			h.Errs = append(h.Errs, err)
		}
		if inj.Dead() || (err != nil && strings.Contains(err.Error(), deathText)) {
			res.outcome = Died
			break
		}
		if err != nil {
			res.outcome = Failed
			break
		}
	}
	inj.Counting(false)
	inj.Disarm()
	inj.Begin(0)
	res.calls, res.fired = inj.Calls(), inj.Fired()
	*outcome = res.outcome
	if u := inj.Unbounded(); len(u) > 0 {
		t.Errorf("calls without a deadline (a hang would last until the Lambda timeout): %v", u)
	}
	f.checkCurrent("after the faulted attempt", "")

	if res.outcome != Absorbed {
		// Secrets Manager retries the whole rotation with the same token, from createSecret,
		// each time in a fresh environment.
		done := false
		for attempt := 1; attempt <= 3 && !done; attempt++ {
			r := newRotator()
			done = true
			for _, step := range rotationtest.Steps {
				if err := h.StepWith(r, step, token); err != nil {
					t.Logf("retry %d: %s: %v", attempt, step, err)
					done = false
					break
				}
			}
		}
		if !done {
			t.Fatalf("three fault-free retries did not finish the rotation (the faulted attempt %s)", res.outcome)
		}
	}
	f.checkCurrent("after the retry", token)
	if prev := testenv.VersionWith(h.Stages(), "AWSPREVIOUS"); prev != oldCurrent {
		t.Errorf("after the retry AWSPREVIOUS is %q, want the old current %s", prev, oldCurrent)
	}

	// One more fault-free rotation.
	f.stage()
	final := h.Rotate()
	f.checkCurrent("after the final rotation", final)
	if prev := testenv.VersionWith(h.Stages(), "AWSPREVIOUS"); prev != token {
		t.Errorf("after the final rotation AWSPREVIOUS is %q, want the rotated version %s", prev, token)
	}
	f.checkStagesAtRest(final, token)
	f.checkUpstream(final, token)
	h.AssertNoLeak(f.planted()...)
	return res
}

// checkCurrent asserts exactly one version carries AWSCURRENT, it logs in at the registry, and
// (when want is set) it is version want.
func (f *regFixture) checkCurrent(when, want string) {
	f.t.Helper()
	var currents []string
	for id, st := range f.h.Stages() {
		if slices.Contains(st, "AWSCURRENT") {
			currents = append(currents, id)
		}
	}
	if len(currents) != 1 {
		f.t.Fatalf("%s: %d versions carry AWSCURRENT: %v", when, len(currents), f.h.Stages())
	}
	if want != "" && currents[0] != want {
		f.t.Fatalf("%s: AWSCURRENT is version %s, want %s", when, currents[0], want)
	}
	if err := f.loginErr(f.h.Value(currents[0])); err != nil {
		f.t.Fatalf("%s: AWSCURRENT does not log in: %v", when, err)
	}
}

// checkStagesAtRest asserts the stages a finished rotation leaves: AWSCURRENT and AWSPREVIOUS
// on one version each, AWSPENDING on none but the current one (elsewhere it would block the
// next RotateSecret), and each of the upstream's own staging labels (ACR's slot labels) on at
// most one version.
func (f *regFixture) checkStagesAtRest(current, previous string) {
	f.t.Helper()
	count := map[string][]string{}
	for id, st := range f.h.Stages() {
		for _, s := range st {
			count[s] = append(count[s], id)
		}
	}
	if got := count["AWSCURRENT"]; len(got) != 1 || got[0] != current {
		f.t.Errorf("AWSCURRENT is on %v, want [%s]", got, current)
	}
	if got := count["AWSPREVIOUS"]; len(got) != 1 || got[0] != previous {
		f.t.Errorf("AWSPREVIOUS is on %v, want [%s]", got, previous)
	}
	if got := count["AWSPENDING"]; len(got) > 1 || (len(got) == 1 && got[0] != current) {
		f.t.Errorf("AWSPENDING is left on %v (current %s): the next rotation would be refused", got, current)
	}
	for _, l := range f.e.Stages {
		if len(count[l]) > 1 {
			f.t.Errorf("%s staging label %s is on %d versions", f.e.Title, l, len(count[l]))
		}
	}
}

// checkUpstream asserts that after a successful rotation only the current and previous
// versions hold a live upstream credential (registries.Emulator.CheckAtRest: for a slot
// registry, that AWSCURRENT's slot label names the slot holding its password, or the next
// rotation would overwrite the password in use; where nothing is revoked, that the registry
// has exactly the credentials a person made).
func (f *regFixture) checkUpstream(current, previous string) {
	f.t.Helper()
	for _, p := range f.e.CheckAtRest(f.h.Key, f.version(current), f.version(previous)) {
		f.t.Error(p)
	}
}

// putSource replaces the source secret's value.
func putSource(h *rotationtest.Harness, doc string) error {
	doc = rotationtest.BindSource(doc, h.Name) // the owner keeps allowing this managed secret
	_, err := h.SM.PutSecretValue(h.Ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(h.SourceARN), SecretString: aws.String(doc)})
	return err
}
