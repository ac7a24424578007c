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
