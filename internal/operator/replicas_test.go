package operator_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/ptc-credentials/ptc-credentials/internal/operator"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/registryauth"
	"github.com/ptc-credentials/ptc-credentials/internal/rotation"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/ecremu"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/localsm"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/providers"
)

// The Regions of the multi-Region tests: the home Region first.
const (
	home   = testenv.Region // us-east-1
	dublin = "eu-west-1"
	sydney = "ap-southeast-2"
	berlin = "eu-central-1" // the Region whose replication the tests break
)

var allRegions = []string{home, dublin, sydney, berlin}

// clock is the one clock of a multi-Region world: localsm's replication lag and the
// commands' Now both read it, so a test moves time for both.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// regionWorld is a world in four Regions: a localsm cluster (replication with lag and
// breakable Regions) and an ECR in each Region reading the secrets of its own Region, both on
// one endpoint each, reached by real SDK clients that differ only by Region.
type regionWorld struct {
	*world
	cluster *testenv.LocalSMCluster
	ecrs    *ecremu.Regions
	ecrURL  string
	clock   *clock
}

func newRegionWorld(t *testing.T, lag time.Duration) *regionWorld {
	t.Helper()
	return newRegionWorldWith(t, lag, nil)
}

// newRegionWorldWith is newRegionWorld whose Secrets Manager runs rotations with rot (set once
// the world exists), before RotateSecret answers.
func newRegionWorldWith(t *testing.T, lag time.Duration, rot **rotation.Rotator) *regionWorld {
	t.Helper()
	c := &clock{t: time.Now().UTC().Truncate(time.Second)}
	opts := localsm.Options{Now: c.Now}
	if rot != nil {
		opts.Synchronous = true
		opts.Invoker = func(ctx context.Context, _ string, payload []byte) error {
			var ev rotation.Event
			if err := json.Unmarshal(payload, &ev); err != nil {
				return err
			}
			return (*rot).Handle(ctx, ev)
		}
	}
	cluster := testenv.StartLocalSMCluster(t, localsm.ClusterOptions{Regions: allRegions, ReplicationLag: lag, Options: opts})
	w := newWorld(t, cluster)
	rw := &regionWorld{world: w, cluster: cluster, clock: c}
	rw.ecrs = ecremu.NewRegions(allRegions, func(region string) ecremu.Options {
		return ecremu.Options{
			SecretsManager: cluster.SecretsManagerIn(region),
			Verify: func(ctx context.Context, upstreamRegistry, url string, cred ptcsecret.Value) error {
				return registryauth.Check(ctx, nil, registryauth.Target{Registry: url, Repository: w.hub.CheckRepository},
					registryauth.Credential{Username: cred.Username, Password: cred.AccessToken})
			},
			MaxRules: 1000,
		}
	})
	hs := httptest.NewServer(rw.ecrs)
	t.Cleanup(hs.Close)
	rw.ecrURL = hs.URL
	w.ecr = rw.ecrIn(home)
	return rw
}

func (rw *regionWorld) ecrIn(region string) *ecr.Client {
	cfg := testenv.AWSConfig()
	cfg.Region = region
	return ecr.NewFromConfig(cfg, func(o *ecr.Options) { o.BaseEndpoint = aws.String(rw.ecrURL) })
}

// envIn is the Env of `ptc --region region`: clients for every Region, the shared clock.
func (rw *regionWorld) envIn(region string) *operator.Env {
	env := rw.env()
	env.Region = region
	env.SM, env.ECR = rw.cluster.SecretsManagerIn(region), rw.ecrIn(region)
	env.SMFor = func(r string) operator.SecretsManager { return rw.cluster.SecretsManagerIn(r) }
	env.ECRFor = func(r string) operator.ECR { return rw.ecrIn(r) }
	env.Now = rw.clock.Now
	env.Sleep = func(_ context.Context, d time.Duration) error { rw.clock.Add(d); return nil }
	return env
}

// replicated creates a managed Docker Hub secret in the home Region replicated to regions
// (CreateSecret with AddReplicaRegions, as the provisioner does), its rule at home and, in each
// Region of rulesIn, a rule with the same prefix pointing at that Region's replica. It returns
// the primary's ARN once every replica holds the value.
func (rw *regionWorld) replicated(prefix string, regions, rulesIn []string) string {
	rw.t.Helper()
	in := &secretsmanager.CreateSecretInput{Name: aws.String(ptcsecret.Prefix + prefix), SecretString: aws.String(rw.hubValue()),
		Tags: []smtypes.Tag{{Key: aws.String(ptcsecret.TagUpstream), Value: aws.String(ptcsecret.UpstreamDockerHub)}}}
	for _, r := range regions {
		in.AddReplicaRegions = append(in.AddReplicaRegions, smtypes.ReplicaRegionType{Region: aws.String(r)})
	}
	out, err := rw.sm.CreateSecret(rw.ctx, in)
	if err != nil {
		rw.t.Fatal(err)
	}
	arn := aws.ToString(out.ARN)
	rw.enableRotation(arn)
	rw.settle()
	rw.rule(prefix, arn)
	for _, r := range rulesIn {
		rw.ruleIn(r, prefix, replicaARNIn(arn, r))
	}
	return arn
}

// settle lets every queued replication happen (past any lag).
func (rw *regionWorld) settle() {
	rw.clock.Add(time.Hour)
	// Any request applies what is due, even one that finds nothing.
	_, _ = rw.sm.DescribeSecret(rw.ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(ptcsecret.Prefix + "settle")})
}

func (rw *regionWorld) ruleIn(region, prefix, credentialARN string) {
	rw.t.Helper()
	if _, err := rw.ecrIn(region).CreatePullThroughCacheRule(rw.ctx, &ecr.CreatePullThroughCacheRuleInput{
		EcrRepositoryPrefix: aws.String(prefix), UpstreamRegistry: ecrtypes.UpstreamRegistryDockerHub,
		UpstreamRegistryUrl: aws.String(rw.hub.URL), CredentialArn: aws.String(credentialARN),
	}); err != nil {
		rw.t.Fatalf("rule %s in %s: %v", prefix, region, err)
	}
}

// newCurrent stores a new value version in the primary and makes it AWSCURRENT, as a finished
// rotation does, and returns its id.
func (rw *regionWorld) newCurrent(arn string) string {
	rw.t.Helper()
	id := newID()
	if _, err := rw.sm.PutSecretValue(rw.ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(arn), ClientRequestToken: aws.String(id),
		SecretString: aws.String(rw.hubValue()), VersionStages: []string{ptcsecret.StageCurrent}}); err != nil {
		rw.t.Fatal(err)
	}
	return id
}

func replicaARNIn(arn, region string) string {
	p := strings.SplitN(arn, ":", 5)
	p[3] = region
	return strings.Join(p, ":")
}

func byPrefix(rep *operator.StatusReport) map[string]operator.RuleStatus {
	m := map[string]operator.RuleStatus{}
	for _, r := range rep.Rules {
		m[r.Prefix] = r
	}
	return m
}

func replicaIn(r operator.RuleStatus, region string) (operator.ReplicaStatus, bool) {
	i := slices.IndexFunc(r.Replicas, func(x operator.ReplicaStatus) bool { return x.Region == region })
	if i < 0 {
		return operator.ReplicaStatus{}, false
	}
	return r.Replicas[i], true
}

// TestStatusShowsEachReplicaRegion: under each replicated managed secret, one row per replica
// Region with that Region's rule and whether its replica holds the primary's AWSCURRENT: a
// healthy secret in two replica Regions; one whose replica Region has no rule and one whose
// rule there reads another secret; one whose replication into a Region fails after a rotation
// (the replica keeps the old version). In the table, with the problems, and in JSON.
func TestStatusShowsEachReplicaRegion(t *testing.T) {
	rw := newRegionWorld(t, 0)
	rw.replicated("good", []string{dublin, sydney}, []string{dublin, sydney})
	rw.replicated("norule", []string{sydney}, nil)
	rw.replicated("wrongarn", []string{dublin}, nil)
	rw.ruleIn(dublin, "wrongarn", replicaARNIn(rw.replicated("other", []string{dublin}, nil), dublin))
	failing := rw.replicated("failing", []string{berlin}, []string{berlin})
	rw.cluster.Cluster.FailReplication(berlin)
	rw.newCurrent(failing)
	rw.settle()

	rep, err := operator.Status(rw.ctx, rw.envIn(home))
	if err != nil {
		t.Fatal(err)
	}
	by := byPrefix(rep)
	g := by["good"]
	if !g.Healthy() || len(g.Replicas) != 2 || g.Replicas[0].Region != sydney || g.Replicas[1].Region != dublin { // by Region
		t.Errorf("good: %+v", g)
	}
	for _, r := range g.Replicas {
		if !r.Healthy() || r.Replication != "InSync" || !r.HoldsCurrent || !r.Rule || r.RuleCredentialARN != r.SecretARN || r.Valid == nil || !*r.Valid ||
			!strings.Contains(r.SecretARN, ":"+r.Region+":") {
			t.Errorf("good in %s: %+v", r.Region, r)
		}
	}
	if r, ok := replicaIn(by["norule"], sydney); !ok || r.Rule || r.Healthy() || !r.HoldsCurrent || !strings.Contains(strings.Join(r.Problems, " "), "no pull-through cache rule norule in "+sydney) {
		t.Errorf("norule in %s: %+v", sydney, r)
	}
	if r, ok := replicaIn(by["wrongarn"], dublin); !ok || !r.Rule || r.Healthy() || r.RuleCredentialARN == r.SecretARN || !strings.Contains(strings.Join(r.Problems, " "), "not at the replica") {
		t.Errorf("wrongarn in %s: %+v", dublin, r)
	}
	f, ok := replicaIn(by["failing"], berlin)
	if !ok || f.Replication != "Failed" || f.HoldsCurrent || f.CatchingUp || f.StatusMessage == "" || f.Healthy() ||
		!strings.Contains(strings.Join(f.Problems, " "), "replication to "+berlin+" failed") {
		t.Errorf("failing in %s: %+v", berlin, f)
	}
	if rep.Unhealthy != 4 {
		t.Errorf("unhealthy = %d, want 4 (norule, wrongarn, failing, and other, whose replica Region has no rule)", rep.Unhealthy)
	}

	env := rw.envIn(home)
	if err := operator.WriteStatusTable(env, rep); err != nil {
		t.Fatal(err)
	}
	table := rw.out.String()
	t.Logf("ptc status:\n%s", table)
	for _, want := range []string{"REPLICA", "primary, 2 replica(s)", "1 in replica Regions", "↳ " + dublin, "↳ " + sydney, "InSync, current", "NO RULE", "WRONG ARN", "Failed, BEHIND",
		"✘ failing ↳ " + berlin + ": replication to " + berlin + " failed", "✘ norule ↳ " + sydney + ": no pull-through cache rule"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q", want)
		}
	}
	// The replica rows sit under their rule.
	lines := strings.Split(table, "\n")
	gi := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "good ") })
	if gi < 0 || gi+2 >= len(lines) || !strings.HasPrefix(lines[gi+1], "↳ ") || !strings.HasPrefix(lines[gi+2], "↳ ") {
		t.Errorf("the replica rows of good do not follow it:\n%s", table)
	}
	rw.out.Reset()
	if err := operator.WriteStatusJSON(env, rep); err != nil {
		t.Fatal(err)
	}
	var back operator.StatusReport
	if err := json.Unmarshal([]byte(rw.out.String()), &back); err != nil || len(byPrefix(&back)["good"].Replicas) != 2 {
		t.Errorf("JSON does not carry the replicas (%v):\n%s", err, rw.out.String())
	}
	rw.assertNoLeak()
}

// TestStatusCatchingUpIsNotAProblem: right after a new AWSCURRENT the replicas lag (here a
// minute): status says so and calls it healthy; once replication lands, the replica holds it.
func TestStatusCatchingUpIsNotAProblem(t *testing.T) {
	rw := newRegionWorld(t, time.Minute)
	arn := rw.replicated("lagging", []string{dublin}, []string{dublin})
	id := rw.newCurrent(arn)
	rep, err := operator.Status(rw.ctx, rw.envIn(home))
	if err != nil {
		t.Fatal(err)
	}
	r, _ := replicaIn(byPrefix(rep)["lagging"], dublin)
	if !r.Healthy() || r.HoldsCurrent || !r.CatchingUp {
		t.Errorf("right after the change: %+v", r)
	}
	rw.clock.Add(2 * time.Minute)
	rep, err = operator.Status(rw.ctx, rw.envIn(home))
	if err != nil {
		t.Fatal(err)
	}
	r, _ = replicaIn(byPrefix(rep)["lagging"], dublin)
	if !r.Healthy() || !r.HoldsCurrent || r.CurrentVersion != id || r.CatchingUp {
		t.Errorf("after the lag: %+v", r)
	}
}

// TestStatusInAReplicaRegion: `ptc status --region eu-west-1` lists the rule there, its secret
// a replica of the home Region's, not "rotation off".
func TestStatusInAReplicaRegion(t *testing.T) {
	rw := newRegionWorld(t, 0)
	rw.replicated("here", []string{dublin}, []string{dublin})
	rep, err := operator.Status(rw.ctx, rw.envIn(dublin))
	if err != nil {
		t.Fatal(err)
	}
	r := byPrefix(rep)["here"]
	if !r.Healthy() || r.PrimaryRegion != home || len(r.Replicas) != 0 || r.Valid == nil || !*r.Valid {
		t.Errorf("the rule in %s: %+v", dublin, r)
	}
	if err := operator.WriteStatusTable(rw.envIn(dublin), rep); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rw.out.String(), "replica of "+home) {
		t.Errorf("table:\n%s", rw.out.String())
	}
}

// TestDoctorChecksEachReplicaRegion: doctor adds, per replica Region, the replica (InSync,
// holding AWSCURRENT), the Region's rule (pointing at the replica) and ECR's validation there;
// a Region whose replication failed is a ✘ with the fix, a Region without a rule too.
func TestDoctorChecksEachReplicaRegion(t *testing.T) {
	rw := newRegionWorld(t, 0)
	rw.replicated("docgood", []string{dublin, sydney}, []string{dublin, sydney})
	ok, err := operator.Doctor(rw.ctx, rw.envIn(home), "docgood", "")
	out := rw.out.String()
	t.Logf("ptc doctor docgood:\n%s", out)
	if err != nil || !ok {
		t.Fatalf("doctor of a healthy replicated rule: ok=%v err=%v", ok, err)
	}
	for _, r := range []string{dublin, sydney} {
		wantLines(t, out, "✔ replica "+r+": InSync, holds AWSCURRENT", "✔ rule in "+r+": docgood → the replica arn:aws:secretsmanager:"+r+":", "✔ ECR validation in "+r+": IsValid")
	}

	rw.out.Reset()
	arn := rw.replicated("docbad", []string{berlin, sydney}, []string{berlin})
	rw.cluster.Cluster.FailReplication(berlin)
	rw.newCurrent(arn)
	rw.settle()
	ok, err = operator.Doctor(rw.ctx, rw.envIn(home), "docbad", "")
	out = rw.out.String()
	t.Logf("ptc doctor docbad:\n%s", out)
	if err != nil || ok {
		t.Fatalf("doctor with a failed replica: ok=%v err=%v", ok, err)
	}
	wantLines(t, out, "✘ replica "+berlin+": replication Failed: ", "fix: fix the cause the status message names",
		"✘ rule in "+sydney+": no pull-through cache rule with prefix \"docbad\" in "+sydney, "--credential-arn arn:aws:secretsmanager:"+sydney+":")
	rw.assertNoLeak()
}

// TestDoctorInAReplicaRegion: doctor of the rule in a replica Region checks the replica against
// its primary and sends the rotation checks to the primary's Region.
func TestDoctorInAReplicaRegion(t *testing.T) {
	rw := newRegionWorld(t, 0)
	rw.replicated("docreplica", []string{dublin}, []string{dublin})
	ok, err := operator.Doctor(rw.ctx, rw.envIn(dublin), "docreplica", "")
	out := rw.out.String()
	t.Logf("ptc doctor --region %s docreplica:\n%s", dublin, out)
	if err != nil || !ok {
		t.Fatalf("doctor in the replica Region: ok=%v err=%v", ok, err)
	}
	wantLines(t, out, "✔ replica: a replica of "+home+" (replication InSync); rotation runs there: ptc doctor docreplica --region "+home, "holds the primary's AWSCURRENT", "✔ ECR validation: IsValid")
	if strings.Contains(out, "rotation:") {
		t.Errorf("doctor checks rotation on a replica:\n%s", out)
	}
}

// TestRotateRefusesAReplica: in a replica Region (by name) or by the replica's ARN, rotate
// refuses before calling RotateSecret and says where rotation runs.
func TestRotateRefusesAReplica(t *testing.T) {
	rw := newRegionWorld(t, 0)
	arn := rw.replicated("norotate", []string{dublin}, []string{dublin})
	rw.cluster.Cluster.Region(home).ResetCalls()
	rw.cluster.Cluster.Region(dublin).ResetCalls()
	for _, tc := range []struct{ region, secret string }{{dublin, ptcsecret.Prefix + "norotate"}, {home, replicaARNIn(arn, dublin)}} {
		ok, err := operator.Rotate(rw.ctx, rw.envIn(tc.region), tc.secret, time.Minute)
		if ok || err == nil || !strings.Contains(err.Error(), "is a replica of the one in "+home+": rotation runs in the primary only") ||
			!strings.Contains(err.Error(), "ptc rotate "+ptcsecret.Prefix+"norotate --region "+home) {
			t.Errorf("rotate %s in %s: ok=%v err=%v", tc.secret, tc.region, ok, err)
		}
	}
	for _, r := range []string{home, dublin} {
		if calls := rw.cluster.Cluster.Region(r).Calls(); slices.Contains(calls, "RotateSecret") {
			t.Errorf("RotateSecret was called in %s: %v", r, calls)
		}
	}
}

// TestRotateFollowsTheReplicas: a real rotation of a secret replicated to two Regions, with a
// minute of replication lag: after the promotion rotate follows each replica Region until it
// holds the new version. With replication into one Region broken, rotate says so and fails
// (the promotion stands).
func TestRotateFollowsTheReplicas(t *testing.T) {
	var rot *rotation.Rotator
	rw := newRegionWorldWith(t, time.Minute, &rot)
	rot = &rotation.Rotator{SM: rw.cluster.SecretsManagerIn(home), Providers: providers.All(), Standins: rw.hub.Standins(), Now: rw.clock.Now}
	managed := func(name string, regions ...string) string {
		src := rw.secret("ptc-source/"+name, rw.hub.Source(0), nil)
		arn := rw.secret(ptcsecret.Prefix+name, rw.hubValue(), map[string]string{
			ptcsecret.TagUpstream: ptcsecret.UpstreamDockerHub, ptcsecret.TagSourceSecret: src, ptcsecret.TagRegistryURL: rw.hub.URL})
		var add []smtypes.ReplicaRegionType
		for _, r := range regions {
			add = append(add, smtypes.ReplicaRegionType{Region: aws.String(r)})
		}
		if _, err := rw.sm.ReplicateSecretToRegions(rw.ctx, &secretsmanager.ReplicateSecretToRegionsInput{SecretId: aws.String(arn), AddReplicaRegions: add}); err != nil {
			t.Fatal(err)
		}
		if _, err := rw.sm.RotateSecret(rw.ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String(arn), RotationLambdaARN: aws.String(rotatorARN),
			RotationRules: &smtypes.RotationRulesType{ScheduleExpression: aws.String("rate(30 days)")}, RotateImmediately: aws.Bool(false)}); err != nil {
			t.Fatal(err)
		}
		rw.settle()
		return arn
	}
	managed("rotrepl", dublin, sydney)
	ok, err := operator.Rotate(rw.ctx, rw.envIn(home), ptcsecret.Prefix+"rotrepl", 10*time.Minute)
	out := rw.out.String()
	t.Logf("ptc rotate:\n%s", out)
	if err != nil || !ok {
		t.Fatalf("rotate: ok=%v err=%v", ok, err)
	}
	wantLines(t, out, "finishSecret: AWSCURRENT moved to", "replica "+sydney+" holds the new version as AWSCURRENT", "replica "+dublin+" holds the new version as AWSCURRENT")

	rw.out.Reset()
	managed("rotbroken", berlin)
	rw.cluster.Cluster.FailReplication(berlin)
	ok, err = operator.Rotate(rw.ctx, rw.envIn(home), ptcsecret.Prefix+"rotbroken", 10*time.Minute)
	out = rw.out.String()
	t.Logf("ptc rotate with %s broken:\n%s", berlin, out)
	if err != nil || ok {
		t.Fatalf("rotate with a broken replica: ok=%v err=%v", ok, err)
	}
	wantLines(t, out, "finishSecret: AWSCURRENT moved to", "replica "+berlin+": replication Failed (")
	rw.assertNoLeak()
}
