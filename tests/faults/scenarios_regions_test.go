package faults

import (
	"testing"

	"github.com/ptc-credentials/ptc-credentials/internal/customresource"
)

// The multi-Region scenarios (issue 16): a set whose secret is replicated from the home Region
// to replica Regions, with one rule per Region reading that Region's copy. They run in the same
// three-Region world as every provisioning scenario (provRegions, replication without lag), and
// every call a replica Region gets is a row of its own (named <op>@<region>).

// replicasBoth are the replica Regions of create-regions and delete-regions: every Region of
// the world but the home one.
var replicasBoth = []string{"eu-west-1", "ap-southeast-2"}

const descriptionRegions = "Docker Hub credential of the fault matrix, replicated"

// TestCreateRegionsFaults is scenario create with ReplicaRegions [eu-west-1, ap-southeast-2]
// and a Description.
func TestCreateRegionsFaults(t *testing.T) {
	runProvMatrix(t, provScenario{
		name: "create-regions",
		doc: "Create (Docker Hub) with `ReplicaRegions: [eu-west-1, ap-southeast-2]` and a `Description`, retried as in " +
			"`create`. After a FAILED answer nothing is left in any Region. At the end: the primary in us-east-1 replicates " +
			"to exactly those two Regions (in sync, default key), each replica holds the primary's AWSCURRENT and the " +
			"Description, and each Region's rule reads its own Region's replica ARN.",
		kinds: Kinds,
		run: func(e *provEnv, f faultSpec) Outcome {
			return runCreateOf(e, f, setSpec{prefix: newPrefix(), replicas: replicasBoth, description: descriptionRegions})
		},
	})
}

// TestCreateTimeoutRegionsFaults is scenario create-timeout with replicas: the rollback Delete
// (an id CloudFormation made up) must find and remove the dead Create's replicas and rules in
// every Region from the properties alone.
func TestCreateTimeoutRegionsFaults(t *testing.T) {
	runProvMatrix(t, provScenario{
		name: "create-timeout-regions",
		doc: "`create-timeout` with `ReplicaRegions: [eu-west-1, ap-southeast-2]`: the rollback Delete, carrying a physical " +
			"id CloudFormation generated, must remove what the dead Create made in every Region; then the re-created " +
			"stack's Create succeeds.",
		kinds: []Kind{Die},
		run: func(e *provEnv, f faultSpec) Outcome {
			return runCreateTimeoutOf(e, f, setSpec{prefix: newPrefix(), replicas: replicasBoth, description: descriptionRegions})
		},
	})
}

// TestUpdateRegionsFaults is an Update in place: one Region added, one removed, the
// Description changed.
func TestUpdateRegionsFaults(t *testing.T) {
	runProvMatrix(t, provScenario{
		name: "update-regions",
		doc: "Update in place (same physical id) from `ReplicaRegions: [eu-west-1]` to `[ap-southeast-2]` with a new " +
			"`Description`: a replica and its rule added, another removed. A FAILED Update is rolled back (Update to the " +
			"old properties, which must restore the old Regions exactly) and run again; a dead one is retried by Lambda. " +
			"Whatever the fault, the home Region's set keeps working and every rule in every Region reads a copy that logs in.",
		kinds: Kinds,
		run:   runUpdateRegions,
	})
}

func runUpdateRegions(e *provEnv, f faultSpec) Outcome {
	t := e.t
	p := newPrefix()
	before := setSpec{prefix: p, replicas: []string{"eu-west-1"}, description: "before: " + descriptionRegions}
	after := setSpec{prefix: p, replicas: []string{"ap-southeast-2"}, description: "after: " + descriptionRegions}
	pb, pa := e.propsOf(before), e.propsOf(after)
	r, _ := e.create("Create (setup)", pb, crDeadline)
	id := e.mustSucceed("the setup Create", r).physicalID()
	e.assertSet("after the setup Create", before)

	e.begin(f)
	ru, reqU := e.update("Update", id, pa, pb, f.deadline(e.next()))
	e.end()
	out := e.settle(&ru)
	e.assertRulesWork("after the faulted Update")
	e.assertTokensNeedSecret("after the faulted Update", p)
	// Adding or removing a replica touches neither the primary nor the home rule.
	e.assertHome("after the faulted Update", p)
	switch out {
	case Died:
		e.mustSucceed("the same Update again (Lambda's async retry)", e.send("Update (async retry)", reqU, crDeadline))
	case Failed:
		if ru.physicalID() != id {
			t.Errorf("the FAILED Update answered physical id %q, want the unchanged %q", ru.physicalID(), id)
		}
		rb, _ := e.update("Update (rollback to the old properties)", id, pb, pa, crDeadline)
		if e.mustSucceed("the rollback Update", rb).physicalID() != id {
			t.Errorf("the rollback Update answered physical id %q, want %q", rb.physicalID(), id)
		}
		e.assertSet("after the rollback", before)
		ru2, _ := e.update("Update (again)", id, pa, pb, crDeadline)
		ru = e.mustSucceed("the repeated Update", ru2)
	}
	if !ru.died && ru.status() == customresource.StatusSuccess && ru.physicalID() != id {
		t.Errorf("the in-place Update answered physical id %q, want the unchanged %q (a new id would make CloudFormation delete the set)", ru.physicalID(), id)
	}
	e.assertSet("at the end", after)
	e.assertRulesWork("at the end")
	e.finish()
	return out
}

// TestDeleteRegionsFaults is scenario delete for a set with two replicas: rules in every
// Region, then the replicas, then the secret.
func TestDeleteRegionsFaults(t *testing.T) {
	runProvMatrix(t, provScenario{
		name: "delete-regions",
		doc: "Delete of a set replicated to eu-west-1 and ap-southeast-2, retried as in `delete`. After the faulted " +
			"attempt every rule left in any Region still reads a copy that logs in; at the end nothing is left in any " +
			"Region (no rule, no primary, no replica, no standalone copy) and no labelled token.",
		kinds: Kinds,
		run: func(e *provEnv, f faultSpec) Outcome {
			return runDeleteOf(e, f, setSpec{prefix: newPrefix(), replicas: replicasBoth, description: descriptionRegions})
		},
	})
}
