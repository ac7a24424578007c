package rotation_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/ptc-credentials/ptc-credentials/internal/metrics"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/localsm"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/rotationtest"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
)

// replicationRecords returns the EMF records carrying ReplicationFailed.
func replicationRecords(t *testing.T, emf string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(emf, "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil {
			if _, ok := rec[metrics.ReplicationFailed]; ok {
				out = append(out, rec)
			}
		}
	}
	return out
}

// rotateCounting runs one rotation, warm (one rotator for the four steps) or cold (a fresh one
// per step, as four Lambda environments), and returns the Secrets Manager calls each Region
// served meanwhile.
func rotateCounting(f *fixture, cluster *localsm.Cluster, warm bool) map[string][]string {
	f.t.Helper()
	token := f.Begin()
	for _, r := range cluster.Regions() {
		cluster.Region(r).ResetCalls()
	}
	r := f.rotator()
	for _, s := range rotationtest.Steps {
		if !warm {
			r = f.rotator()
		}
		if err := f.stepWith(r, s, token); err != nil {
			f.t.Fatalf("%s: %v", s, err)
		}
	}
	calls := map[string][]string{}
	for _, r := range cluster.Regions() {
		calls[r] = cluster.Region(r).Calls()
	}
	return calls
}

// TestReplicationFailedFromTheDescribeSecretEveryStepMakes: a managed secret replicated to two
// Regions, replication into one of them broken. Every step emits ReplicationFailed per replica
// Region (1 for the broken one, with the service's reason; 0 for the healthy one), with the
// Region the rotator runs in, and logs the failure; the rotation still promotes. And it costs no
// call: warm and cold rotations of the replicated secret make exactly the calls, in the home
// Region only, of an unreplicated one.
func TestReplicationFailedFromTheDescribeSecretEveryStepMakes(t *testing.T) {
	t.Setenv("AWS_REGION", testenv.Region)
	const ok, broken = "eu-west-1", "eu-central-1"
	cluster := testenv.StartLocalSMCluster(t, localsm.ClusterOptions{Regions: []string{testenv.Region, ok, broken}, Options: localsm.Options{Synchronous: true}})
	plain := newFixtureIn(t, cluster, fixtureOpts{})
	f := newFixtureIn(t, cluster, fixtureOpts{})
	if _, err := f.sm.ReplicateSecretToRegions(f.ctx, &secretsmanager.ReplicateSecretToRegionsInput{SecretId: aws.String(f.arn),
		AddReplicaRegions: []smtypes.ReplicaRegionType{{Region: aws.String(ok)}, {Region: aws.String(broken)}}}); err != nil {
		t.Fatal(err)
	}
	cluster.Cluster.FailReplication(broken)

	for _, warm := range []bool{true, false} {
		want := rotateCounting(plain, cluster.Cluster, warm)
		emf := len(f.emfText())
		got := rotateCounting(f, cluster.Cluster, warm)
		if !slices.Equal(got[testenv.Region], want[testenv.Region]) {
			t.Errorf("warm=%v: the replicated secret's rotation made %d calls %v, the unreplicated one's %d %v", warm, len(got[testenv.Region]), got[testenv.Region], len(want[testenv.Region]), want[testenv.Region])
		}
		for _, r := range []string{ok, broken} {
			if len(got[r]) > 0 {
				t.Errorf("warm=%v: the rotator called Secrets Manager in %s: %v", warm, r, got[r])
			}
		}
		t.Logf("warm=%v: %d Secrets Manager calls per rotation, replicated or not: %v", warm, len(got[testenv.Region]), got[testenv.Region])

		recs := replicationRecords(t, f.emfText()[emf:])
		byRegion := map[string][]map[string]any{}
		for _, rec := range recs {
			byRegion[rec[metrics.ReplicaRegionDimension].(string)] = append(byRegion[rec[metrics.ReplicaRegionDimension].(string)], rec)
			if rec[metrics.RegionProperty] != testenv.Region || rec["Upstream"] != "docker-hub" || rec["secret"] != f.name {
				t.Errorf("record %v", rec)
			}
			dims, _ := json.Marshal(rec["_aws"].(map[string]any)["CloudWatchMetrics"].([]any)[0].(map[string]any)["Dimensions"])
			if string(dims) != `[[],["Upstream","ReplicaRegion"]]` {
				t.Errorf("dimensions %s", dims)
			}
		}
		if n := len(byRegion[ok]); n != len(rotationtest.Steps) {
			t.Errorf("warm=%v: %d records for %s, want one per step", warm, n, ok)
		}
		for _, rec := range byRegion[ok] {
			if rec[metrics.ReplicationFailed] != 0.0 || rec["replica_status"] != localsm.ReplicationInSync {
				t.Errorf("the healthy replica: %v", rec)
			}
		}
		// The first step's DescribeSecret may precede the first failed copy; by the last step
		// the broken Region has failed.
		last := byRegion[broken]
		if len(last) != len(rotationtest.Steps) || last[len(last)-1][metrics.ReplicationFailed] != 1.0 || last[len(last)-1]["status_message"] == "" {
			t.Errorf("warm=%v: the broken replica's records: %v", warm, last)
		}
	}
	if !strings.Contains(f.logsText(), "replication of the secret to a replica Region failed") || !strings.Contains(f.logsText(), broken) {
		t.Errorf("no warning about %s in the rotator's log", broken)
	}
	if cur, _ := f.current(); !slices.Contains(f.stages()[cur], "AWSCURRENT") {
		t.Error("no AWSCURRENT after the rotations")
	}
	f.AssertNoLeak(hubPassword)
}
