package provision_test

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
)

// A Region whose replication turns Failed after its replica was made (here: the Update's own tag
// change cannot reach it) keeps a replica that still holds the current version and the policy,
// and its rule reads that replica. An Update must not remove it — that would break the Region's
// pulls over a tag — and need not fail: the set works. Once the replica is behind (a rotation
// that did not reach it), the Update fails naming the Region, as before, and tries it afresh.
func TestManyRegionsFailedRegionThatStillServesIsKept(t *testing.T) {
	w := newWorld(t, worldOptions{})
	props := w.props("hub-keep", west, sydney)
	res := w.mustDo("Create", "", props, nil)
	name := res.Data["SecretName"]
	sydneyARN := aws.ToString(w.secret(sydney, name).ARN)

	w.cl.Cluster.FailReplication(sydney)
	tagged := w.props("hub-keep", west, sydney)
	tagged["Tags"] = map[string]any{"team": "platform"}
	for i := range 2 {
		mark := w.calls()
		if _, err := w.do("Update", res.PhysicalID, tagged, props); err != nil {
			t.Fatalf("Update #%d (tags) with ap-southeast-2 failing but its replica current: %v", i+1, err)
		}
		if got := w.since(mark)[home][0]; count(got, "RemoveRegionsFromReplication") != 0 {
			t.Errorf("Update #%d removed a replica that still serves its Region: %v", i+1, got)
		}
		d := w.secret(sydney, name)
		if d == nil || aws.ToString(d.ARN) != sydneyARN {
			t.Fatalf("Update #%d: the replica in ap-southeast-2 is gone", i+1)
		}
		v, err := w.ecrIn(sydney).ValidatePullThroughCacheRule(w.ctx, &ecr.ValidatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("hub-keep")})
		if err != nil || !v.IsValid {
			t.Errorf("Update #%d: the rule in ap-southeast-2 no longer validates: %v", i+1, err)
		}
	}
	if !strings.Contains(w.logs.String(), "replication to a replica Region failed, but its replica") {
		t.Error("keeping a Failed Region is not logged")
	}

	// A rotation while the Region fails leaves its replica behind: now the Update says so.
	if _, err := w.sm(home).RotateSecret(w.ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String(res.Data["SecretArn"])}); err != nil {
		t.Fatal(err)
	}
	current := testenv.VersionWith(w.secret(home, name).VersionIdsToStages, "AWSCURRENT")
	if got := testenv.VersionWith(w.secret(sydney, name).VersionIdsToStages, "AWSCURRENT"); got == current {
		t.Fatal("the rotation reached ap-southeast-2 although its replication fails")
	}
	if _, err := w.do("Update", res.PhysicalID, tagged, tagged); err == nil || !strings.Contains(err.Error(), `ReplicaRegions "ap-southeast-2"`) {
		t.Fatalf("Update with ap-southeast-2 behind: want a failure naming it, got %v", err)
	}
	w.cl.Cluster.HealReplication(sydney)
	res2 := w.mustDo("Update", res.PhysicalID, tagged, tagged)
	w.assertSet(res2, "hub-keep", []string{west, sydney}, "")
	w.assertNoLeak()
}
