package faults

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/localsm"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
)

// smServer is the Secrets Manager one run of a scenario uses.
//
// The fault cases run against localsm (a fresh testenv.LocalSM per run): its conformance test
// (internal/testkit/localsm/conformance_test.go, the product script) holds it to moto for every
// call the product makes, and it answers in microseconds where moto, one Python process behind
// a one-request gate, takes milliseconds — the matrix used to spend most of its time waiting
// for moto. Each scenario's fault-free run is made against moto as well (anchoredDryRun): a full
// rotation per registry, and Create, Create with a dead first attempt, Update by replacement
// plus Delete, and Delete, all against an independent implementation. The two fault-free runs
// must make the same calls in the same order, or the cases (which fault the calls of the dry
// run) would not be testing what the product does against moto. A sample of fault cases runs
// against moto too (motoSample).
type smServer = testenv.SecretsManagerServer

// motoSample reports whether the case of fault kind at call c also runs against moto (as a
// subtest moto/call-N-<kind>, outside the matrix table): a lost answer after each Secrets
// Manager write. There the server did the work and the retry meets the state that work left,
// so those are the cases where the Secrets Manager's own rules decide the outcome most. A write
// in any Region counts (the op without its "@<region>"), replication's own writes included.
func motoSample(c Call, kind Kind) bool {
	if kind != Lost {
		return false
	}
	op, _ := regionOf(c.Op)
	switch op {
	case "sm:PutSecretValue", "sm:UpdateSecretVersionStage", "sm:CreateSecret", "sm:DeleteSecret",
		"sm:RotateSecret", "sm:TagResource", "sm:UntagResource",
		"sm:UpdateSecret", "sm:ReplicateSecretToRegions", "sm:RemoveRegionsFromReplication", "sm:StopReplicationToReplica":
		return true
	}
	return false
}

// newLocal starts the localsm of one rotation run; it stops when the run's test ends.
func newLocal(t testing.TB) smServer { return testenv.StartLocalSMT(t) }

// newProvLocal starts the Secrets Manager of one provisioning run: a localsm.Cluster of every
// Region of provRegions at one endpoint, replicating at once (ReplicationLag 0). moto, the
// anchor, serves every Region at its one endpoint too.
func newProvLocal(t testing.TB) smServer {
	return testenv.StartLocalSMCluster(t, localsm.ClusterOptions{Regions: provRegions, Options: localsm.Options{Synchronous: true}})
}

// anchoredDryRun makes a scenario's fault-free run against moto and against localsm and fails
// unless both succeeded with the same calls; it returns the localsm run's calls, which the
// cases then fault one by one.
func anchoredDryRun(t *testing.T, local func(testing.TB) smServer, run func(sm smServer) []Call) []Call {
	t.Helper()
	onMoto := run(moto)
	onLocal := run(local(t))
	if !slices.Equal(onMoto, onLocal) {
		t.Fatalf("the fault-free run makes different calls against localsm than against moto, so localsm cannot stand in for moto here:\n%s", diffCalls(onMoto, onLocal))
	}
	return onLocal
}

func diffCalls(a, b []Call) string {
	var out strings.Builder
	for i := range max(len(a), len(b)) {
		var x, y string
		if i < len(a) {
			x = fmt.Sprintf("%s (inv %d)", a[i].Op, a[i].Inv)
		}
		if i < len(b) {
			y = fmt.Sprintf("%s (inv %d)", b[i].Op, b[i].Inv)
		}
		mark := "  "
		if x != y {
			mark = "!!"
		}
		fmt.Fprintf(&out, "%s %3d moto: %-45s localsm: %s\n", mark, i+1, x, y)
	}
	return out.String()
}

// motoDeviation is a known difference of moto 5.2.1 from AWS (a row of localsm's deviation
// table, internal/testkit/localsm/conformance_test.go, where localsm follows AWS) that a
// scenario's fault-free run meets.
type motoDeviation struct {
	// name is the row's name in localsm's deviation table.
	name string
	// call reports whether a call (its op name) is the one moto answers otherwise.
	call func(op string) bool
	// symptom is what moto's answer says there.
	symptom string
}

// deviatingDryRun is anchoredDryRun for a scenario whose run meets d: moto cannot anchor it
// whole, so the fault-free run against moto must fail showing d's symptom, after the same calls
// as against localsm up to and including the first call d names — the calls moto can anchor.
// A moto run that no longer fails, or fails otherwise, fails the test (the deviation is gone or
// another one appeared: look again). The moto samples are not run for such a scenario. run is
// the scenario's fault-free run; calls returns the counted calls of its latest run, even one
// that ended in a failure.
func deviatingDryRun(t *testing.T, d *motoDeviation, run func(tb testing.TB, sm smServer) []Call, calls func() []Call) []Call {
	t.Helper()
	msgs := softly(t, func(tb testing.TB) { run(tb, moto) })
	onMoto := calls()
	switch {
	case len(msgs) == 0:
		t.Errorf("the fault-free run succeeded against moto, yet it is listed as meeting moto's deviation %q: anchor it against moto again (drop the scenario's moto field)", d.name)
	case !slices.ContainsFunc(msgs, func(m string) bool { return strings.Contains(m, d.symptom) }):
		t.Fatalf("the fault-free run against moto was expected to fail showing moto's deviation %q (%q); it failed otherwise:\n%s", d.name, d.symptom, strings.Join(msgs, "\n"))
	}
	onLocal := run(t, newProvLocal(t))
	n := slices.IndexFunc(onMoto, func(c Call) bool { return d.call(c.Op) }) + 1
	if n == 0 && len(msgs) == 0 {
		n = len(onMoto)
	}
	if n > len(onLocal) || !slices.Equal(onMoto[:n], onLocal[:n]) {
		t.Fatalf("up to the call moto answers otherwise (deviation %q), the fault-free run makes different calls against localsm than against moto:\n%s", d.name, diffCalls(onMoto[:n], onLocal[:min(n, len(onLocal))]))
	}
	t.Logf("moto's deviation %q: the fault-free run against moto fails as expected; the first %d of its %d calls are anchored to it", d.name, n, len(onLocal))
	return onLocal
}
