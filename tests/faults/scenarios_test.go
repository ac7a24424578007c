package faults

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/customresource"
	"github.com/ptc-credentials/ptc-credentials/internal/provision"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/rotationtest"
)

// faultSpec is the one fault of a case; at.N 0 means none (the dry run).
type faultSpec struct {
	at           Call
	kind         Kind
	hangDeadline time.Duration
	// last is the last try of withHangRetry: no errRerun then.
	last bool
}

// deadline is the Lambda deadline of invocation inv.
func (f faultSpec) deadline(inv int) time.Duration {
	if f.kind == Hang && inv == f.at.Inv {
		return f.hangDeadline
	}
	return crDeadline
}

// begin arms the fault and starts counting: the scenario's faulted attempt begins.
func (e *provEnv) begin(f faultSpec) {
	if f.at.N > 0 {
		e.inj.Arm(f.at, f.kind)
		if f.kind == Hang && !f.last {
			e.rerunInv = f.at.Inv
		}
	}
	e.inj.Counting(true)
}

// end stops counting and disarms: retries and checks are fault-free.
func (e *provEnv) end() {
	e.inj.Counting(false)
	e.inj.Disarm()
}

// next is the number the next invocation will get.
func (e *provEnv) next() int { return e.inv + 1 }

// outcomeOf classifies the faulted attempt's replies, in order; a nil reply (an invocation
// never made) is skipped.
func outcomeOf(replies ...*reply) Outcome {
	for _, r := range replies {
		switch {
		case r == nil:
		case r.died:
			return Died
		case r.status() != customresource.StatusSuccess:
			return Failed
		}
	}
	return Absorbed
}

// settle records and returns the faulted attempt's outcome.
func (e *provEnv) settle(replies ...*reply) Outcome {
	out := outcomeOf(replies...)
	*e.outcome = out
	return out
}

// provScenario is one custom-resource scenario of the matrix.
type provScenario struct {
	name, doc string
	kinds     []Kind
	run       func(e *provEnv, f faultSpec) Outcome
}

func runProvMatrix(t *testing.T, s provScenario) {
	t.Parallel()
	var invs map[int]string
	dryRun := func(tb testing.TB, sm smServer) []Call {
		e := newProvEnv(tb, sm)
		var dryOutcome Outcome
		e.outcome = &dryOutcome
		if out := s.run(e, faultSpec{last: true}); out != Absorbed {
			tb.Fatalf("the fault-free run did not succeed: %s", out)
		}
		invs = e.invs
		return e.inj.Calls()
	}
	dry := anchoredDryRun(t, newProvLocal, func(sm smServer) []Call { return dryRun(t, sm) })
	info := &scenarioInfo{name: s.name, doc: s.doc, calls: dry, invs: invs, kinds: s.kinds}
	recordScenario(info)
	for _, c := range dry {
		t.Logf("call %d (%s): %s", c.N, info.invs[c.Inv], c.Op)
	}
	for _, c := range dry {
		for _, kind := range s.kinds {
			t.Run(fmt.Sprintf("call-%d-%s", c.N, kind), func(t *testing.T) {
				t.Parallel()
				var outcome Outcome
				var note string
				recordCell(t, s.name, c.N, kind, &outcome, &note)
				runCase(t, s.name, c, kind, &note, func(tb testing.TB) {
					e := withHangRetry(kind, crHangDeadline, crDeadline, func(hang time.Duration, last bool) *provEnv {
						e := newProvEnv(tb, newProvLocal(tb))
						e.outcome = &outcome
						s.run(e, faultSpec{at: c, kind: kind, hangDeadline: hang, last: last})
						return e
					})
					checkSequence(tb, dry, e.inj.Calls(), e.inj.Fired(), c.N)
				})
			})
		}
	}
	for _, c := range dry {
		for _, kind := range s.kinds {
			if !motoSample(c, kind) {
				continue
			}
			t.Run(fmt.Sprintf("moto/call-%d-%s", c.N, kind), func(t *testing.T) {
				t.Parallel()
				var outcome Outcome
				var note string
				runCase(t, s.name, c, kind, &note, func(tb testing.TB) {
					e := newProvEnv(tb, moto)
					e.outcome = &outcome
					s.run(e, faultSpec{at: c, kind: kind, last: true})
					checkSequence(tb, dry, e.inj.Calls(), e.inj.Fired(), c.N)
				})
			})
		}
	}
}

// TestCreateFaults is scenario 2: Create of a Docker Hub set, answered through
// customresource.Wrap.
func TestCreateFaults(t *testing.T) {
	runProvMatrix(t, provScenario{
		name: "create",
		doc: "Custom-resource Create (Docker Hub) through `customresource.Wrap`. After a FAILED answer: nothing is left, " +
			"CloudFormation's Delete of the FAILED answer's id succeeds, and a new Create succeeds. After a death " +
			"(no answer): Lambda's asynchronous retry delivers the same event again and it must succeed.",
		kinds: Kinds,
		run:   runCreate,
	})
}

func runCreate(e *provEnv, f faultSpec) Outcome {
	return runCreateOf(e, f, setSpec{prefix: newPrefix()})
}

// runCreateOf is scenario create for the set spec describes.
func runCreateOf(e *provEnv, f faultSpec, spec setSpec) Outcome {
	t := e.t
	prefix := spec.prefix
	props := e.propsOf(spec)
	e.begin(f)
	rep, req := e.create("Create", props, f.deadline(e.next()))
	e.end()
	out := e.settle(&rep)
	e.assertRulesWork("after the faulted Create")
	switch out {
	case Died:
		// No answer reached CloudFormation; the invocation failed, so Lambda retries the
		// asynchronous event (same RequestId) a minute later.
		e.mustSucceed("the same Create again (Lambda's async retry)", e.send("Create (async retry)", req, crDeadline))
	case Failed:
		e.assertGone("after the FAILED Create", prefix)
		id := rep.physicalID()
		if _, _, ok := provision.ParsePhysicalID(id); ok {
			t.Errorf("the FAILED Create carried physical id %q, which names a set", id)
		}
		// CloudFormation follows a failed Create with a Delete of the id the answer carried.
		d, _ := e.delete("Delete (of the FAILED Create)", id, props, crDeadline)
		e.mustSucceed("CloudFormation's Delete of the failed Create", d)
		e.assertGone("after the Delete of the failed Create", prefix)
		r, _ := e.create("Create (retried)", props, crDeadline)
		e.mustSucceed("the retried Create", r)
	}
	e.assertSet("at the end", spec)
	e.assertRulesWork("at the end")
	e.finish()
	return out
}

// TestCreateTimeoutFaults is scenario 2 for a process that dies with nobody retrying it
// (the Lambda's asynchronous retries off, as customresource recommends): CloudFormation waits
// until its timeout, fails the resource, and rolls back with a Delete whose physical id it
// made up; the operator deletes the rolled-back stack and creates it again (a new stack id).
func TestCreateTimeoutFaults(t *testing.T) {
	runProvMatrix(t, provScenario{
		name: "create-timeout",
		doc: "Create dies and is not retried: CloudFormation times out, rolls back with a Delete carrying a physical id " +
			"CloudFormation generated, and the stack is then created again (new stack id) with the same properties.",
		kinds: []Kind{Die},
		run:   runCreateTimeout,
	})
}

func runCreateTimeout(e *provEnv, f faultSpec) Outcome {
	return runCreateTimeoutOf(e, f, setSpec{prefix: newPrefix()})
}

// runCreateTimeoutOf is scenario create-timeout for the set spec describes.
func runCreateTimeoutOf(e *provEnv, f faultSpec, spec setSpec) Outcome {
	props := e.propsOf(spec)
	e.begin(f)
	rep, _ := e.create("Create", props, f.deadline(e.next()))
	e.end()
	out := e.settle(&rep)
	if out == Failed {
		// Only a death is this scenario's; a Create that answered FAILED is scenario create's.
		e.t.Fatalf("the Create answered %v", rep.answer)
	}
	if out == Died {
		e.assertRulesWork("after the dead Create")
		stackName := strings.Split(e.stackID, "/")[1]
		generated := stackName + "-" + logicalID + "-" + strings.ToUpper(strings.ReplaceAll(rotationtest.NewID(), "-", "")[:12])
		d, _ := e.delete("Delete (rollback, CloudFormation's id)", generated, props, crDeadline)
		e.mustSucceed("the rollback Delete", d)
		// The rollback removes what the dead Create made, in every Region (K2).
		e.assertGone("after the rollback", spec.prefix)
		e.assertRulesWork("after the rollback")
		e.stackID = newStackID()
		r, _ := e.create("Create (re-created stack)", props, crDeadline)
		e.mustSucceed("Create in the re-created stack", r)
	}
	e.assertSet("at the end", spec)
	e.assertRulesWork("at the end")
	e.finish()
	return out
}

// TestUpdateFaults is scenario 3: an Update that needs replacement (new prefix), then
// CloudFormation's cleanup Delete of the old id.
func TestUpdateFaults(t *testing.T) {
	runProvMatrix(t, provScenario{
		name: "update-replace",
		doc: "Update with a new EcrRepositoryPrefix (replacement: a new set under a new physical id), then CloudFormation's " +
			"cleanup Delete of the old id. A FAILED Update is rolled back (Update to the old properties) and run again; a " +
			"dead one is retried by Lambda; a failed or dead cleanup Delete is sent again.",
		kinds: Kinds,
		run:   runUpdate,
	})
}

func runUpdate(e *provEnv, f faultSpec) Outcome {
	t := e.t
	a, b := newPrefix(), newPrefix()
	pa, pb := e.props(a), e.props(b)
	r, _ := e.create("Create A (setup)", pa, crDeadline)
	idA := e.mustSucceed("the setup Create", r).physicalID()
	idB := provision.PhysicalID(b, ptcsecret.Prefix+b)

	e.begin(f)
	ru, reqU := e.update("Update A→B", idA, pb, pa, f.deadline(e.next()))
	var rd *reply
	var reqD customresource.Request
	if !ru.died && ru.status() == customresource.StatusSuccess {
		if ru.physicalID() != idB {
			t.Fatalf("the replacing Update answered physical id %q, want %q", ru.physicalID(), idB)
		}
		d, req := e.delete("Delete A (cleanup)", idA, pa, f.deadline(e.next()))
		rd, reqD = &d, req
	}
	e.end()
	out := e.settle(&ru, rd)
	e.assertRulesWork("after the faulted attempt")
	if !ru.died {
		// (A death between minting B's token and storing it in B's secret leaves that token
		// without a secret; nothing can prevent that, only the retry can clean it up.)
		e.assertTokensNeedSecret("after the faulted attempt", a, b)
	}

	switch {
	case ru.died:
		e.assertWorks("A after a dead Update", a)
		e.mustSucceed("the same Update again (Lambda's async retry)", e.send("Update A→B (async retry)", reqU, crDeadline))
		d, _ := e.delete("Delete A (cleanup)", idA, pa, crDeadline)
		e.mustSucceed("the cleanup Delete", d)
	case ru.status() != customresource.StatusSuccess:
		if ru.physicalID() != idA {
			t.Errorf("the FAILED Update answered physical id %q, want the old %q", ru.physicalID(), idA)
		}
		e.assertWorks("A after a FAILED Update", a)
		e.assertGone("B after a FAILED Update", b)
		// CloudFormation rolls the resource back: an Update to the old properties.
		rb, _ := e.update("Update B→A (rollback)", idA, pa, pb, crDeadline)
		if e.mustSucceed("the rollback Update", rb).physicalID() != idA {
			t.Errorf("the rollback Update answered physical id %q, want %q", rb.physicalID(), idA)
		}
		e.assertWorks("A after the rollback", a)
		// The operator runs the stack update again.
		ru2, _ := e.update("Update A→B (again)", idA, pb, pa, crDeadline)
		e.mustSucceed("the repeated Update", ru2)
		d, _ := e.delete("Delete A (cleanup)", idA, pa, crDeadline)
		e.mustSucceed("the cleanup Delete", d)
	case rd.died:
		e.assertWorks("B after a dead cleanup Delete", b)
		e.mustSucceed("the same Delete again (Lambda's async retry)", e.send("Delete A (async retry)", reqD, crDeadline))
	case rd.status() != customresource.StatusSuccess:
		e.assertWorks("B after a FAILED cleanup Delete", b)
		d, _ := e.delete("Delete A (again)", idA, pa, crDeadline)
		e.mustSucceed("the repeated cleanup Delete", d)
	}
	e.assertWorks("B at the end", b)
	e.assertGone("A at the end", a)
	e.assertRulesWork("at the end")
	e.finish()
	return out
}

// TestDeleteFaults is scenario 4: Delete, retried the way CloudFormation would.
func TestDeleteFaults(t *testing.T) {
	runProvMatrix(t, provScenario{
		name: "delete",
		doc: "Delete (RecoveryWindowInDays \"0\": force delete). A FAILED Delete is sent again by CloudFormation's retry " +
			"(a second Delete of the same physical id); a dead one by Lambda's async retry (the same event).",
		kinds: Kinds,
		run:   runDelete,
	})
}

func runDelete(e *provEnv, f faultSpec) Outcome {
	return runDeleteOf(e, f, setSpec{prefix: newPrefix()})
}

// runDeleteOf is scenario delete for the set spec describes.
func runDeleteOf(e *provEnv, f faultSpec, spec setSpec) Outcome {
	a := spec.prefix
	pa := e.propsOf(spec)
	r, _ := e.create("Create (setup)", pa, crDeadline)
	idA := e.mustSucceed("the setup Create", r).physicalID()
	e.assertSet("after the setup Create", spec)
	e.begin(f)
	rd, reqD := e.delete("Delete", idA, pa, f.deadline(e.next()))
	e.end()
	out := e.settle(&rd)
	e.assertRulesWork("after the faulted Delete")
	e.assertTokensNeedSecret("after the faulted Delete", a)
	switch out {
	case Died:
		e.mustSucceed("the same Delete again (Lambda's async retry)", e.send("Delete (async retry)", reqD, crDeadline))
	case Failed:
		d, _ := e.delete("Delete (again)", idA, pa, crDeadline)
		e.mustSucceed("the second Delete", d)
	}
	e.assertGone("at the end", a)
	e.finish()
	return out
}
