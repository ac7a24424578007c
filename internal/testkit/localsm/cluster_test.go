package localsm_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/localsm"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
)

const (
	home  = "us-east-1"
	west  = "us-west-2"
	eu    = "eu-west-1"
	value = "planted-replica-value-7f3a"
)

// world is a three-Region cluster on one endpoint with a non-retrying client per Region.
type world struct {
	c   *localsm.Cluster
	clk *clock
	ctx context.Context
	url string
	sm  map[string]*secretsmanager.Client
}

func startWorld(t *testing.T, lag time.Duration) *world {
	t.Helper()
	clk := &clock{t: time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)}
	c := localsm.NewCluster(localsm.ClusterOptions{
		Regions: []string{home, west, eu}, Options: localsm.Options{Now: clk.Now}, ReplicationLag: lag,
	})
	hs := httptest.NewServer(c)
	t.Cleanup(hs.Close)
	w := &world{c: c, clk: clk, ctx: testenv.Context(t), url: hs.URL, sm: map[string]*secretsmanager.Client{}}
	for _, r := range []string{home, west, eu, "ap-south-1"} {
		w.sm[r] = regionClient(hs.URL, r)
	}
	return w
}

func regionClient(endpoint, region string) *secretsmanager.Client {
	cfg := testenv.AWSConfig()
	cfg.Region = region
	return secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.RetryMaxAttempts = 1
	})
}

func (w *world) create(t *testing.T, name string, regions ...string) *secretsmanager.CreateSecretOutput {
	t.Helper()
	in := &secretsmanager.CreateSecretInput{
		Name: aws.String(name), ClientRequestToken: aws.String(tok(1)), SecretString: aws.String(value),
		Description: aws.String("replicated"), Tags: []smtypes.Tag{{Key: aws.String("team"), Value: aws.String("a")}},
	}
	for _, r := range regions {
		in.AddReplicaRegions = append(in.AddReplicaRegions, smtypes.ReplicaRegionType{Region: aws.String(r)})
	}
	out, err := w.sm[home].CreateSecret(w.ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (w *world) describe(t *testing.T, region, id string) *secretsmanager.DescribeSecretOutput {
	t.Helper()
	d, err := w.sm[region].DescribeSecret(w.ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)})
	if err != nil {
		t.Fatalf("DescribeSecret in %s: %v", region, err)
	}
	return d
}

func statusOf(d *secretsmanager.DescribeSecretOutput, region string) (string, string) {
	for _, r := range d.ReplicationStatus {
		if aws.ToString(r.Region) == region {
			return string(r.Status), aws.ToString(r.StatusMessage)
		}
	}
	return "absent", ""
}

func currentOf(d *secretsmanager.DescribeSecretOutput) string {
	for id, st := range d.VersionIdsToStages {
		if slices.Contains(st, localsm.StageCurrent) {
			return id
		}
	}
	return ""
}

func TestClusterCreateWithReplicas(t *testing.T) {
	w := startWorld(t, 0)
	out := w.create(t, "app/db", west, eu)
	if len(out.ReplicationStatus) != 2 || aws.ToString(out.ReplicationStatus[0].Region) != west {
		t.Fatalf("CreateSecret ReplicationStatus = %+v", out.ReplicationStatus)
	}
	arn := aws.ToString(out.ARN)
	if !strings.HasPrefix(arn, "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db-") {
		t.Fatalf("ARN %s", arn)
	}
	p := w.describe(t, home, "app/db")
	if aws.ToString(p.PrimaryRegion) != home {
		t.Errorf("primary's PrimaryRegion = %q, want its own Region", aws.ToString(p.PrimaryRegion))
	}
	for _, r := range []string{west, eu} {
		if st, msg := statusOf(p, r); st != "InSync" || msg == "" {
			t.Errorf("status of %s = %s %q", r, st, msg)
		}
		if k := aws.ToString(p.ReplicationStatus[0].KmsKeyId); k != localsm.DefaultReplicaKMSKey {
			t.Errorf("KmsKeyId = %q", k)
		}
		d := w.describe(t, r, "app/db")
		wantARN := strings.Replace(arn, ":us-east-1:", ":"+r+":", 1)
		if aws.ToString(d.ARN) != wantARN || aws.ToString(d.PrimaryRegion) != home || len(d.ReplicationStatus) != 0 {
			t.Errorf("replica in %s: ARN %s (want %s) PrimaryRegion %q ReplicationStatus %v", r, aws.ToString(d.ARN), wantARN, aws.ToString(d.PrimaryRegion), d.ReplicationStatus)
		}
		if aws.ToString(d.Description) != "replicated" || len(d.Tags) != 1 || currentOf(d) != tok(1) {
			t.Errorf("replica in %s: description %q tags %v stages %v", r, aws.ToString(d.Description), d.Tags, d.VersionIdsToStages)
		}
		// By its own ARN too; the primary's ARN is not a secret of this Region.
		g, err := w.sm[r].GetSecretValue(w.ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(wantARN)})
		if err != nil || aws.ToString(g.SecretString) != value || aws.ToString(g.ARN) != wantARN {
			t.Errorf("GetSecretValue in %s: %v", r, err)
		}
		_, err = w.sm[r].GetSecretValue(w.ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)})
		wantCode(t, "GetSecretValue by the primary's ARN in "+r, err, "ResourceNotFoundException")
	}
	// The replicas were read today: the primary's ReplicationStatus says so, per Region.
	day := w.clk.Now().UTC().Truncate(24 * time.Hour)
	for _, rs := range w.describe(t, home, "app/db").ReplicationStatus {
		if rs.LastAccessedDate == nil || !rs.LastAccessedDate.Equal(day) {
			t.Errorf("ReplicationStatus %s LastAccessedDate = %v, want %v", aws.ToString(rs.Region), rs.LastAccessedDate, day)
		}
	}
	// Replica Region checks.
	for _, bad := range []string{home, "not a region", ""} {
		_, err := w.sm[home].CreateSecret(w.ctx, &secretsmanager.CreateSecretInput{Name: aws.String("bad"), SecretString: aws.String("x"),
			AddReplicaRegions: []smtypes.ReplicaRegionType{{Region: aws.String(bad)}}})
		wantCode(t, "AddReplicaRegions "+bad, err, "InvalidParameterException")
	}
}

func TestClusterReplicaIsReadOnly(t *testing.T) {
	w := startWorld(t, 0)
	w.create(t, "app/db", west)
	sm := w.sm[west]
	calls := map[string]func() error{
		"PutSecretValue": func() error {
			_, err := sm.PutSecretValue(w.ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("app/db"), SecretString: aws.String("v2")})
			return err
		},
		"UpdateSecret": func() error {
			_, err := sm.UpdateSecret(w.ctx, &secretsmanager.UpdateSecretInput{SecretId: aws.String("app/db"), Description: aws.String("x")})
			return err
		},
		"DeleteSecret": func() error {
			_, err := sm.DeleteSecret(w.ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("app/db"), ForceDeleteWithoutRecovery: aws.Bool(true)})
			return err
		},
		"TagResource": func() error {
			_, err := sm.TagResource(w.ctx, &secretsmanager.TagResourceInput{SecretId: aws.String("app/db"), Tags: []smtypes.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
			return err
		},
		"PutResourcePolicy": func() error {
			_, err := sm.PutResourcePolicy(w.ctx, &secretsmanager.PutResourcePolicyInput{SecretId: aws.String("app/db"), ResourcePolicy: aws.String(denyPolicy)})
			return err
		},
		"ReplicateSecretToRegions": func() error {
			_, err := sm.ReplicateSecretToRegions(w.ctx, &secretsmanager.ReplicateSecretToRegionsInput{SecretId: aws.String("app/db"),
				AddReplicaRegions: []smtypes.ReplicaRegionType{{Region: aws.String(eu)}}})
			return err
		},
	}
	for op, call := range calls {
		err := call()
		wantCode(t, op+" on a replica", err, "InvalidParameterException")
		if !strings.Contains(err.Error(), "Operation not permitted on a replica secret") {
			t.Errorf("%s on a replica: %v, want AWS's message", op, err)
		}
	}
	if d := w.describe(t, west, "app/db"); currentOf(d) != tok(1) || aws.ToString(d.Description) != "replicated" || len(d.Tags) != 1 {
		t.Errorf("a refused write changed the replica: %+v", d)
	}
}

const denyPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":{"AWS":"*"},"Action":"secretsmanager:DeleteSecret","Resource":"*",` +
	`"Condition":{"StringNotEquals":{"aws:PrincipalArn":"arn:aws:iam::123456789012:role/provisioner"}}}]}`

func TestClusterDeleteRefusedWhileReplicasExist(t *testing.T) {
	w := startWorld(t, 0)
	w.create(t, "app/db", west, eu)
	for _, force := range []bool{false, true} {
		in := &secretsmanager.DeleteSecretInput{SecretId: aws.String("app/db")}
		if force {
			in.ForceDeleteWithoutRecovery = aws.Bool(true)
		}
		_, err := w.sm[home].DeleteSecret(w.ctx, in)
		wantCode(t, fmt.Sprintf("DeleteSecret force=%v with replicas", force), err, "InvalidParameterException")
		if !strings.Contains(err.Error(), "still has replica regions ["+west+", "+eu+"]") {
			t.Errorf("the refusal does not name the replica Regions: %v", err)
		}
	}
	out, err := w.sm[home].RemoveRegionsFromReplication(w.ctx, &secretsmanager.RemoveRegionsFromReplicationInput{
		SecretId: aws.String("app/db"), RemoveReplicaRegions: []string{west}})
	if err != nil || len(out.ReplicationStatus) != 1 || aws.ToString(out.ReplicationStatus[0].Region) != eu {
		t.Fatalf("RemoveRegionsFromReplication: %v %+v", err, out)
	}
	_, err = w.sm[west].GetSecretValue(w.ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("app/db")})
	wantCode(t, "GetSecretValue of a removed replica", err, "ResourceNotFoundException")
	_, err = w.sm[home].DeleteSecret(w.ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("app/db"), ForceDeleteWithoutRecovery: aws.Bool(true)})
	wantCode(t, "DeleteSecret with one replica left", err, "InvalidParameterException")
	// Removing a Region twice is a no-op, as a re-run of a half-done Delete needs.
	for range 2 {
		if _, err := w.sm[home].RemoveRegionsFromReplication(w.ctx, &secretsmanager.RemoveRegionsFromReplicationInput{
			SecretId: aws.String("app/db"), RemoveReplicaRegions: []string{eu, west}}); err != nil {
			t.Fatal(err)
		}
	}
	if d := w.describe(t, home, "app/db"); len(d.ReplicationStatus) != 0 || d.PrimaryRegion != nil {
		t.Errorf("after removing every replica: ReplicationStatus %v PrimaryRegion %v", d.ReplicationStatus, aws.ToString(d.PrimaryRegion))
	}
	if _, err := w.sm[home].DeleteSecret(w.ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("app/db"), ForceDeleteWithoutRecovery: aws.Bool(true)}); err != nil {
		t.Fatalf("DeleteSecret without replicas: %v", err)
	}
	_, err = w.sm[eu].DescribeSecret(w.ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("app/db")})
	wantCode(t, "DescribeSecret of a removed replica", err, "ResourceNotFoundException")
}

func TestClusterReplicationLag(t *testing.T) {
	w := startWorld(t, 10*time.Second)
	w.create(t, "app/db", west)
	_, err := w.sm[west].DescribeSecret(w.ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("app/db")})
	wantCode(t, "replica before the lag has passed", err, "ResourceNotFoundException")
	if st, _ := statusOf(w.describe(t, home, "app/db"), west); st != "InProgress" {
		t.Errorf("status before the first copy = %s, want InProgress", st)
	}
	w.clk.Add(10 * time.Second)
	if d := w.describe(t, west, "app/db"); currentOf(d) != tok(1) {
		t.Fatalf("replica after the lag: %v", d.VersionIdsToStages)
	}
	if st, _ := statusOf(w.describe(t, home, "app/db"), west); st != "InSync" {
		t.Errorf("status after the first copy = %s, want InSync", st)
	}

	// A new version: the replica shows the old one until the clock passes.
	if _, err := w.sm[home].PutSecretValue(w.ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("app/db"),
		ClientRequestToken: aws.String(tok(2)), SecretString: aws.String(value + "-2")}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.sm[home].UpdateSecret(w.ctx, &secretsmanager.UpdateSecretInput{SecretId: aws.String("app/db"), Description: aws.String("new")}); err != nil {
		t.Fatal(err)
	}
	w.clk.Add(9 * time.Second)
	d := w.describe(t, west, "app/db")
	if currentOf(d) != tok(1) || aws.ToString(d.Description) != "replicated" {
		t.Errorf("replica 9 s after the write: current %s description %q, want the old ones", currentOf(d), aws.ToString(d.Description))
	}
	g, err := w.sm[west].GetSecretValue(w.ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("app/db")})
	if err != nil || aws.ToString(g.SecretString) != value {
		t.Errorf("replica value 9 s after the write: %v", err)
	}
	w.clk.Add(time.Second)
	d = w.describe(t, west, "app/db")
	if currentOf(d) != tok(2) || !slices.Equal(d.VersionIdsToStages[tok(1)], []string{"AWSPREVIOUS"}) || aws.ToString(d.Description) != "new" {
		t.Errorf("replica after the lag: %v description %q", d.VersionIdsToStages, aws.ToString(d.Description))
	}
}

func TestClusterFailReplication(t *testing.T) {
	w := startWorld(t, 0)
	w.c.FailReplication(west)
	w.create(t, "app/db", west, eu)
	p := w.describe(t, home, "app/db")
	if st, msg := statusOf(p, west); st != "Failed" || msg == "" {
		t.Errorf("status of the failing Region = %s %q, want Failed with a message", st, msg)
	}
	if st, _ := statusOf(p, eu); st != "InSync" {
		t.Errorf("status of the healthy Region = %s", st)
	}
	_, err := w.sm[west].GetSecretValue(w.ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("app/db")})
	wantCode(t, "replica whose replication failed", err, "ResourceNotFoundException")

	w.c.HealReplication(west)
	if st, _ := statusOf(w.describe(t, home, "app/db"), west); st != "InSync" {
		t.Errorf("status after HealReplication = %s", st)
	}
	if d := w.describe(t, west, "app/db"); currentOf(d) != tok(1) {
		t.Errorf("replica after HealReplication: %v", d.VersionIdsToStages)
	}

	// A failure after the replica exists: it keeps the old version.
	w.c.FailReplication(eu)
	if _, err := w.sm[home].PutSecretValue(w.ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("app/db"),
		ClientRequestToken: aws.String(tok(2)), SecretString: aws.String(value + "-2")}); err != nil {
		t.Fatal(err)
	}
	if st, _ := statusOf(w.describe(t, home, "app/db"), eu); st != "Failed" {
		t.Errorf("status after a failed copy = %s", st)
	}
	if currentOf(w.describe(t, eu, "app/db")) != tok(1) || currentOf(w.describe(t, west, "app/db")) != tok(2) {
		t.Errorf("the failing Region must keep the old version and the healthy one get the new")
	}
	w.c.HealReplication(eu)
	if currentOf(w.describe(t, eu, "app/db")) != tok(2) {
		t.Errorf("the healed Region did not converge")
	}
}

func TestClusterReplicateLaterAndNameCollision(t *testing.T) {
	w := startWorld(t, 0)
	w.create(t, "app/db")
	if d := w.describe(t, home, "app/db"); d.PrimaryRegion != nil || d.ReplicationStatus != nil {
		t.Errorf("an unreplicated secret shows PrimaryRegion %v ReplicationStatus %v", aws.ToString(d.PrimaryRegion), d.ReplicationStatus)
	}
	// A secret of the same name already in eu: replication there fails unless forced.
	if _, err := w.sm[eu].CreateSecret(w.ctx, &secretsmanager.CreateSecretInput{Name: aws.String("app/db"), SecretString: aws.String("other")}); err != nil {
		t.Fatal(err)
	}
	out, err := w.sm[home].ReplicateSecretToRegions(w.ctx, &secretsmanager.ReplicateSecretToRegionsInput{SecretId: aws.String("app/db"),
		AddReplicaRegions: []smtypes.ReplicaRegionType{{Region: aws.String(west)}, {Region: aws.String(eu)}}})
	if err != nil || len(out.ReplicationStatus) != 2 {
		t.Fatalf("ReplicateSecretToRegions: %v %+v", err, out)
	}
	p := w.describe(t, home, "app/db")
	if st, msg := statusOf(p, eu); st != "Failed" || !strings.Contains(msg, "already exists") {
		t.Errorf("collision: %s %q", st, msg)
	}
	if st, _ := statusOf(p, west); st != "InSync" {
		t.Errorf("west: %s", st)
	}
	g, err := w.sm[eu].GetSecretValue(w.ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("app/db")})
	if err != nil || aws.ToString(g.SecretString) != "other" {
		t.Errorf("the colliding secret must be left alone: %v", err)
	}
	// Remove the failed Region and add it again with ForceOverwriteReplicaSecret.
	if _, err := w.sm[home].RemoveRegionsFromReplication(w.ctx, &secretsmanager.RemoveRegionsFromReplicationInput{SecretId: aws.String("app/db"), RemoveReplicaRegions: []string{eu}}); err != nil {
		t.Fatal(err)
	}
	g, err = w.sm[eu].GetSecretValue(w.ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("app/db")})
	if err != nil || aws.ToString(g.SecretString) != "other" {
		t.Errorf("removing a failed Region must not delete the colliding secret: %v", err)
	}
	if _, err := w.sm[home].ReplicateSecretToRegions(w.ctx, &secretsmanager.ReplicateSecretToRegionsInput{SecretId: aws.String("app/db"),
		AddReplicaRegions: []smtypes.ReplicaRegionType{{Region: aws.String(eu), KmsKeyId: aws.String("alias/eu-key")}}, ForceOverwriteReplicaSecret: true}); err != nil {
		t.Fatal(err)
	}
	d := w.describe(t, eu, "app/db")
	if aws.ToString(d.PrimaryRegion) != home || currentOf(d) != tok(1) || aws.ToString(d.KmsKeyId) != "alias/eu-key" {
		t.Errorf("forced replica: PrimaryRegion %q current %s key %q", aws.ToString(d.PrimaryRegion), currentOf(d), aws.ToString(d.KmsKeyId))
	}
	// Adding a Region that is already a replica changes nothing.
	out, err = w.sm[home].ReplicateSecretToRegions(w.ctx, &secretsmanager.ReplicateSecretToRegionsInput{SecretId: aws.String("app/db"),
		AddReplicaRegions: []smtypes.ReplicaRegionType{{Region: aws.String(west)}}})
	if err != nil || len(out.ReplicationStatus) != 2 {
		t.Errorf("re-adding a replica Region: %v %+v", err, out)
	}
	// A Region the cluster does not have: replication fails, as it would into an opted-out
	// Region.
	if _, err := w.sm[home].ReplicateSecretToRegions(w.ctx, &secretsmanager.ReplicateSecretToRegionsInput{SecretId: aws.String("app/db"),
		AddReplicaRegions: []smtypes.ReplicaRegionType{{Region: aws.String("ap-south-1")}}}); err != nil {
		t.Fatal(err)
	}
	if st, _ := statusOf(w.describe(t, home, "app/db"), "ap-south-1"); st != "Failed" {
		t.Errorf("replication into a Region outside the cluster: %s", st)
	}
	// Requests signed for that Region are refused as AWS refuses a Region it does not serve.
	_, err = w.sm["ap-south-1"].ListSecretVersionIds(w.ctx, &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String("app/db")})
	wantCode(t, "request for a Region outside the cluster", err, "InvalidSignatureException")
}

func TestClusterReplicatesPolicyTagsAndRotationWrites(t *testing.T) {
	w := startWorld(t, 0)
	w.create(t, "app/db", west)
	sm := w.sm[home]
	id := aws.String("app/db")
	steps := []func() error{
		func() error {
			_, err := sm.PutResourcePolicy(w.ctx, &secretsmanager.PutResourcePolicyInput{SecretId: id, ResourcePolicy: aws.String(denyPolicy)})
			return err
		},
		func() error {
			_, err := sm.TagResource(w.ctx, &secretsmanager.TagResourceInput{SecretId: id, Tags: []smtypes.Tag{{Key: aws.String("env"), Value: aws.String("prod")}}})
			return err
		},
		func() error {
			_, err := sm.UntagResource(w.ctx, &secretsmanager.UntagResourceInput{SecretId: id, TagKeys: []string{"team"}})
			return err
		},
		// The rotation function's writes: a pending version, then the label move.
		func() error {
			_, err := sm.PutSecretValue(w.ctx, &secretsmanager.PutSecretValueInput{SecretId: id, ClientRequestToken: aws.String(tok(3)),
				SecretString: aws.String(value + "-3"), VersionStages: []string{"AWSPENDING"}})
			return err
		},
		func() error {
			_, err := sm.UpdateSecretVersionStage(w.ctx, &secretsmanager.UpdateSecretVersionStageInput{SecretId: id, VersionStage: aws.String("AWSCURRENT"),
				MoveToVersionId: aws.String(tok(3)), RemoveFromVersionId: aws.String(tok(1))})
			return err
		},
		func() error {
			_, err := sm.UpdateSecret(w.ctx, &secretsmanager.UpdateSecretInput{SecretId: id, Description: aws.String("d2"),
				ClientRequestToken: aws.String(tok(4)), SecretString: aws.String(value + "-4")})
			return err
		},
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	pol, err := w.sm[west].GetResourcePolicy(w.ctx, &secretsmanager.GetResourcePolicyInput{SecretId: id})
	if err != nil || aws.ToString(pol.ResourcePolicy) != denyPolicy {
		t.Errorf("replica's policy: %v %q", err, aws.ToString(pol.ResourcePolicy))
	}
	p, r := w.describe(t, home, "app/db"), w.describe(t, west, "app/db")
	if fmt.Sprint(p.VersionIdsToStages) != fmt.Sprint(r.VersionIdsToStages) || currentOf(r) != tok(4) {
		t.Errorf("stages: primary %v replica %v", p.VersionIdsToStages, r.VersionIdsToStages)
	}
	if len(r.Tags) != 1 || aws.ToString(r.Tags[0].Key) != "env" || aws.ToString(r.Description) != "d2" {
		t.Errorf("replica tags %v description %q", r.Tags, aws.ToString(r.Description))
	}
	g, err := w.sm[west].GetSecretValue(w.ctx, &secretsmanager.GetSecretValueInput{SecretId: id, VersionStage: aws.String("AWSPREVIOUS")})
	if err != nil || aws.ToString(g.VersionId) != tok(3) || aws.ToString(g.SecretString) != value+"-3" {
		t.Errorf("replica AWSPREVIOUS: %v", err)
	}
}

func TestClusterStopReplicationToReplica(t *testing.T) {
	w := startWorld(t, 0)
	w.create(t, "app/db", west, eu)
	_, err := w.sm[home].StopReplicationToReplica(w.ctx, &secretsmanager.StopReplicationToReplicaInput{SecretId: aws.String("app/db")})
	wantCode(t, "StopReplicationToReplica in the primary's Region", err, "InvalidRequestException")
	if _, err := w.sm[west].StopReplicationToReplica(w.ctx, &secretsmanager.StopReplicationToReplicaInput{SecretId: aws.String("app/db")}); err != nil {
		t.Fatal(err)
	}
	d := w.describe(t, west, "app/db")
	if d.PrimaryRegion != nil || currentOf(d) != tok(1) {
		t.Errorf("promoted replica: PrimaryRegion %q stages %v", aws.ToString(d.PrimaryRegion), d.VersionIdsToStages)
	}
	if st, _ := statusOf(w.describe(t, home, "app/db"), west); st != "absent" {
		t.Errorf("the primary still lists the promoted Region: %s", st)
	}
	// It is a standalone secret now: writable, and no longer fed by the primary.
	if _, err := w.sm[west].PutSecretValue(w.ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("app/db"), ClientRequestToken: aws.String(tok(5)), SecretString: aws.String("own")}); err != nil {
		t.Errorf("PutSecretValue on a promoted replica: %v", err)
	}
	if _, err := w.sm[home].PutSecretValue(w.ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("app/db"), ClientRequestToken: aws.String(tok(6)), SecretString: aws.String("p")}); err != nil {
		t.Fatal(err)
	}
	if currentOf(w.describe(t, west, "app/db")) != tok(5) || currentOf(w.describe(t, eu, "app/db")) != tok(6) {
		t.Errorf("after promotion the primary must feed only the remaining replica")
	}
}

// TestClusterConcurrent drives every Region at once, for the race detector and the lock order.
func TestClusterConcurrent(t *testing.T) {
	w := startWorld(t, 0)
	w.create(t, "app/db", west, eu)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 10 {
				n := 10 + i*10 + j
				if _, err := w.sm[home].PutSecretValue(w.ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("app/db"),
					ClientRequestToken: aws.String(tok(n)), SecretString: aws.String(fmt.Sprint(n))}); err != nil {
					t.Error(err)
				}
				for _, r := range []string{west, eu} {
					if _, err := w.sm[r].GetSecretValue(w.ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("app/db")}); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	want := currentOf(w.describe(t, home, "app/db"))
	for _, r := range []string{west, eu} {
		if got := currentOf(w.describe(t, r, "app/db")); got != want {
			t.Errorf("%s converged on %s, the primary on %s", r, got, want)
		}
	}
}

// TestServerAloneDoesNotReplicate keeps a Server used alone as it was: replication refused.
func TestServerAloneDoesNotReplicate(t *testing.T) {
	e := start(t, localsm.Options{})
	_, err := e.sm.CreateSecret(e.ctx, &secretsmanager.CreateSecretInput{Name: aws.String("a"), SecretString: aws.String("x"),
		AddReplicaRegions: []smtypes.ReplicaRegionType{{Region: aws.String(west)}}})
	wantCode(t, "CreateSecret with replicas on a lone Server", err, "InvalidRequestException")
	if _, err := e.sm.CreateSecret(e.ctx, &secretsmanager.CreateSecretInput{Name: aws.String("a"), SecretString: aws.String("x")}); err != nil {
		t.Fatal(err)
	}
	_, err = e.sm.ReplicateSecretToRegions(e.ctx, &secretsmanager.ReplicateSecretToRegionsInput{SecretId: aws.String("a"),
		AddReplicaRegions: []smtypes.ReplicaRegionType{{Region: aws.String(west)}}})
	wantCode(t, "ReplicateSecretToRegions on a lone Server", err, "InvalidRequestException")
	out, err := e.sm.UpdateSecret(e.ctx, &secretsmanager.UpdateSecretInput{SecretId: aws.String("a"), Description: aws.String("d")})
	if err != nil || out.VersionId != nil {
		t.Fatalf("UpdateSecret (description only): %v %+v", err, out)
	}
	// Signed for any Region, a lone Server answers as before: it does not route.
	g, err := regionClient(e.url, eu).DescribeSecret(e.ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("a")})
	if err != nil || aws.ToString(g.Description) != "d" || g.PrimaryRegion != nil {
		t.Errorf("DescribeSecret: %v %+v", err, g)
	}
}
