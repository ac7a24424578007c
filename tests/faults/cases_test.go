package faults

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// knownFailure is an invariant the product does not meet yet, with its root cause in
// docs/reliability.md. Its cases still run: a case that fails with the listed symptom is
// skipped as "known"; one that fails otherwise fails; one that passes fails too, saying the
// entry can go.
type knownFailure struct {
	scenarios []string
	ops       []string
	kind      Kind
	// symptoms: one of them must appear in one of the case's failure messages.
	symptoms []string
	reason   string
}

// knownFailures are the invariants not met (see docs/reliability.md, "Known failures").
var knownFailures = []knownFailure{}

func findKnown(scenario, op string, kind Kind) *knownFailure {
	for i, k := range knownFailures {
		if k.kind == kind && slices.Contains(k.scenarios, scenario) && slices.Contains(k.ops, op) {
			return &knownFailures[i]
		}
	}
	return nil
}

// runCase runs one case: directly, or, for a known failure, with its failures captured and
// judged against the entry.
func runCase(t *testing.T, scenario string, c Call, kind Kind, note *string, run func(tb testing.TB)) {
	k := findKnown(scenario, c.Op, kind)
	if k == nil {
		run(t)
		return
	}
	msgs := softly(t, run)
	switch {
	case len(msgs) == 0:
		t.Errorf("listed as known failure %q, yet every invariant held: remove the entry from knownFailures (and docs/reliability.md)", k.reason)
	case !slices.ContainsFunc(msgs, func(m string) bool {
		return slices.ContainsFunc(k.symptoms, func(s string) bool { return strings.Contains(m, s) })
	}):
		t.Errorf("known failure %q was expected to show one of %q; it failed otherwise:\n%s", k.reason, k.symptoms, strings.Join(msgs, "\n"))
	default:
		for _, m := range msgs {
			t.Log("known failure: " + m)
		}
		*note = k.reason
		t.Skip("known: " + k.reason)
	}
}

// softTB records failures instead of failing the test; Fatal ends only the goroutine softly
// runs the case in.
type softTB struct {
	testing.TB
	mu   sync.Mutex
	msgs []string
}

func (s *softTB) add(m string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, m)
}

func (s *softTB) Error(args ...any)                 { s.add(fmt.Sprint(args...)) }
func (s *softTB) Errorf(format string, args ...any) { s.add(fmt.Sprintf(format, args...)) }
func (s *softTB) Fail()                             { s.add("failed") }
func (s *softTB) Fatal(args ...any)                 { s.add(fmt.Sprint(args...)); runtime.Goexit() }
func (s *softTB) Fatalf(format string, args ...any) {
	s.add(fmt.Sprintf(format, args...))
	runtime.Goexit()
}
func (s *softTB) FailNow() { s.add("failed"); runtime.Goexit() }
func (s *softTB) Failed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs) > 0
}

// softly runs fn in a goroutine of its own with a softTB and returns the failures it recorded.
// A panic in fn is re-raised on the test goroutine.
func softly(t *testing.T, fn func(tb testing.TB)) []string {
	s := &softTB{TB: t}
	done := make(chan any, 1)
	go func() {
		defer func() { done <- recover() }() // nil after a Fatal's Goexit
		fn(s)
	}()
	if p := <-done; p != nil {
		panic(p)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.msgs)
}

// errRerun, panicked by a hang case's run, means the short deadline was too short on this
// machine to test what the case tests: it ran out before the run reached the faulted call (the
// injector then fires no fault at all), before the handler had undone its work after the
// deadline guard answered, or before the guard's answer was out. The run is dropped and the
// case run again, from scratch.
type errRerun string

// withHangRetry runs a case. A hang case's invocation gets a short deadline (first), so that
// the matrix does not wait a whole Lambda timeout per hang; one that panics errRerun is run
// again with twice the deadline, up to normal — the deadline every other case has — where the
// last try (last is true) must not panic errRerun. So a loaded machine costs a hang case time,
// never its verdict, and it is never held to a tighter deadline than the other cases.
func withHangRetry[R any](kind Kind, first, normal time.Duration, run func(hang time.Duration, last bool) R) R {
	for d := min(first, normal); ; d = min(2*d, normal) {
		last := kind != Hang || d >= normal
		res, again := func() (res R, again bool) {
			defer func() {
				if p := recover(); p != nil {
					if _, ok := p.(errRerun); ok && !last {
						again = true
						return
					}
					panic(p)
				}
			}()
			return run(d, last), false
		}()
		if !again {
			return res
		}
		hangReruns.Add(1)
	}
}

// hangReruns counts the runs withHangRetry dropped, reported when the package ends: how much a
// loaded machine cost the hang cases.
var hangReruns atomic.Int64

// checkSequence fails unless the faulted run made the dry run's calls up to the faulted one
// (so the matrix names the call the fault really hit).
func checkSequence(t testing.TB, dry, got []Call, fired *Call, k int) {
	t.Helper()
	if fired == nil {
		t.Fatalf("the fault at call %d never fired: the run made %d calls", k, len(got))
	}
	for i := 0; i < k && i < len(got); i++ {
		if got[i].Op != dry[i].Op || got[i].Inv != dry[i].Inv {
			t.Fatalf("call %d was %s in invocation %d, the dry run's was %s in invocation %d: the call sequence is not deterministic",
				i+1, got[i].Op, got[i].Inv, dry[i].Op, dry[i].Inv)
		}
	}
}
