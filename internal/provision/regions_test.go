package provision_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/ptc-credentials/ptc-credentials/internal/pinned"
	"github.com/ptc-credentials/ptc-credentials/internal/provision"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/registryauth"
	"github.com/ptc-credentials/ptc-credentials/internal/rotation"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/benchkit"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/dockerhubemu"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/ecremu"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/localsm"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/rotationtest"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/providers"
)

// The Regions of the multi-Region tests: the home Region first, then the replica Regions a
// resource asks for, then one more that Update adds.
const (
	home   = testenv.Region // us-east-1
	west   = "eu-west-1"
	sydney = "ap-southeast-2"
	extra  = "eu-central-1"
	// outside is a Region the cluster serves but the deployer does not allow.
	outside = "sa-east-1"
)

var allRegions = []string{home, west, sydney, extra, outside}

// attackerKey signs requests as a principal that is neither function role: the resource policy
// must stop it where it counts.
const (
	attackerKey  = "AKIDATTACKER"
	attackerRole = "arn:aws:iam::123456789012:role/someone-else"
)

// clock is the shared fake clock: the cluster's replication lag runs on it, and the
// provisioner's waits advance it instead of sleeping.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
	return ctx.Err()
}

// world is Secrets Manager and ECR in five Regions behind one endpoint each, reached by real SDK
// clients that differ only in their Region, with the Docker Hub emulator as the upstream.
type world struct {
	t         *testing.T
	ctx       context.Context
	clk       *clock
	cl        *testenv.LocalSMCluster
	ecr       *ecremu.Regions
	hub       *dockerhubemu.Server
	hubURL    string
	prov      *provision.Provisioner
	logs      *rotationtest.SyncBuffer
	sourceARN string
	stackID   string
	// smCounts and ecrCounts tally the provisioner's own calls per Region.
	smCounts, ecrCounts map[string]*benchkit.Counts
	// ecrIn is a real ECR client of a Region.
	ecrIn func(region string) *ecr.Client
	// ecrHook, when set, runs before every ECR call of a Region (op, region).
	ecrHook func(op, region string) error
}

type worldOptions struct {
	lag  time.Duration
	wait time.Duration
}

func newWorld(t *testing.T, o worldOptions) *world {
	t.Helper()
	w := &world{t: t, ctx: testenv.Context(t), clk: &clock{now: time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)}, logs: &rotationtest.SyncBuffer{}}
	w.hub = dockerhubemu.New(dockerhubemu.Options{}, dockerhubemu.Account{Username: hubUser, Password: hubPassword})
	hubSrv := httptest.NewServer(w.hub)
	t.Cleanup(hubSrv.Close)
	w.hubURL = hubSrv.URL
	logger := slog.New(slog.NewJSONHandler(w.logs, nil))

	// The rotator runs when Secrets Manager invokes it (RotateSecret at Create runs testSecret).
	var rot *rotation.Rotator
	w.cl = testenv.StartLocalSMCluster(t, localsm.ClusterOptions{
		Regions:        allRegions,
		ReplicationLag: o.lag,
		Options: localsm.Options{
			Now: w.clk.Now, Synchronous: true,
			// The provisioner signs as its role, so the protecting policy is enforced on it too
			// (it must never block the provisioner's own calls); the attacker as someone else.
			Principals: map[string]string{"AKIDTEST": testenv.ProvisionerRoleARN, attackerKey: attackerRole},
			Invoker: func(ctx context.Context, _ string, payload []byte) error {
				var ev localsm.RotationEvent
				if err := json.Unmarshal(payload, &ev); err != nil {
					return err
				}
				return rot.Handle(ctx, rotation.Event{Step: rotation.Step(ev.Step), SecretID: ev.SecretID, ClientRequestToken: ev.ClientRequestToken})
			},
		},
	})
	rot = &rotation.Rotator{SM: w.cl.SecretsManagerIn(home), Providers: providers.All(), Logger: logger, Standins: pinned.NewStandins(w.hubURL)}

	w.ecr = ecremu.NewRegions(allRegions, func(region string) ecremu.Options {
		return ecremu.Options{
			SecretsManager: w.cl.SecretsManagerIn(region),
			Verify: func(ctx context.Context, reg, url string, cred ptcsecret.Value) error {
				return registryauth.Check(ctx, nil, registryauth.Target{Registry: url, Repository: "library/alpine"}, registryauth.Credential{Username: cred.Username, Password: cred.AccessToken})
			},
			Hook: func(op string) error {
				if w.ecrHook != nil {
					return w.ecrHook(op, region)
				}
				return nil
			},
		}
	})
	ecrSrv := httptest.NewServer(w.ecr)
	t.Cleanup(ecrSrv.Close)

	id := rotationtest.NewID()
	src, err := w.sm(home).CreateSecret(w.ctx, &secretsmanager.CreateSecretInput{
		Name:         aws.String("ptc-source/regions-" + id[:8]),
		SecretString: aws.String(`{"username":"` + hubUser + `","password":"` + hubPassword + `","apiUrl":"` + hubSrv.URL + `","allowedSecrets":["ecr-pullthroughcache/"]}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	w.sourceARN = aws.ToString(src.ARN)
	w.stackID = "arn:aws:cloudformation:us-east-1:123456789012:stack/ptc-regions/" + id
	ecrIn := func(region string) *ecr.Client {
		cfg := testenv.AWSConfig()
		cfg.Region = region
		return ecr.NewFromConfig(cfg, func(o *ecr.Options) { o.BaseEndpoint = aws.String(ecrSrv.URL); o.RetryMaxAttempts = 1 })
	}
	w.ecrIn = ecrIn
	// The provisioner's own calls are counted per Region (the emulators' Calls also include ECR's
	// reads of the secret and the rotator's calls).
	w.smCounts, w.ecrCounts = map[string]*benchkit.Counts{}, map[string]*benchkit.Counts{}
	for _, r := range allRegions {
		w.smCounts[r], w.ecrCounts[r] = &benchkit.Counts{}, &benchkit.Counts{}
	}
	smIn := func(r string) provision.SecretsManager {
		return benchkit.CountingProvisionSM{Inner: w.cl.SecretsManagerIn(r), Counts: w.smCounts[r]}
	}
	ecrCounted := func(r string) provision.ECR { return benchkit.CountingECR{Inner: ecrIn(r), Counts: w.ecrCounts[r]} }
	w.prov = &provision.Provisioner{
		SM: smIn(home), ECR: ecrCounted(home), Region: home,
		SMFor:                 smIn,
		ECRFor:                ecrCounted,
		AllowedReplicaRegions: []string{west, sydney, extra},
		ReplicaWait:           o.wait,
		Providers:             providers.All(), RotationLambdaARN: testenv.FakeRotationLambdaARN, Logger: logger,
		Standins:       pinned.NewStandins(w.hubURL),
		RotatorRoleARN: testenv.RotatorRoleARN, ProvisionerRoleARN: testenv.ProvisionerRoleARN, OwnerKey: provision.StaticOwnerKey([]byte(testenv.OwnerKey)),
		Now: w.clk.Now, Sleep: w.clk.Sleep,
	}
	return w
}

// sm is a real SDK client of region, signing as the provisioner's role.
func (w *world) sm(region string) *secretsmanager.Client { return w.cl.SecretsManagerIn(region) }

// attacker is a real SDK client of region signing as someone who is neither function role.
func (w *world) attacker(region string) *secretsmanager.Client {
	cfg := testenv.AWSConfig()
	cfg.Region = region
	cfg.Credentials = credentials.NewStaticCredentialsProvider(attackerKey, "attacker-secret-key", "")
	return secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) { o.BaseEndpoint = aws.String(w.cl.URL()) })
}

func (w *world) props(prefix string, replicas ...string) map[string]any {
	p := map[string]any{
		"ServiceToken":         "arn:aws:lambda:us-east-1:123456789012:function:provisioner",
		"EcrRepositoryPrefix":  prefix,
		"UpstreamRegistry":     "docker-hub",
		"UpstreamRegistryUrl":  w.hubURL,
		"SourceSecretArn":      w.sourceARN,
		"RecoveryWindowInDays": "0",
	}
	if replicas != nil {
		p["ReplicaRegions"] = toAny(replicas)
	}
	return p
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func (w *world) do(typ, physID string, props, old map[string]any) (provision.Result, error) {
	return w.prov.Handle(w.ctx, provision.Request{Type: typ, StackID: w.stackID, LogicalID: "Cache", PhysicalID: physID, Properties: props, OldProperties: old})
}

func (w *world) mustDo(typ, physID string, props, old map[string]any) provision.Result {
	w.t.Helper()
	res, err := w.do(typ, physID, props, old)
	if err != nil {
		w.t.Fatalf("%s: %v", typ, err)
	}
	return res
}

// secret describes name in region (nil when there is none). Any request also lets the cluster
// apply the replication events that are due.
func (w *world) secret(region, name string) *secretsmanager.DescribeSecretOutput {
	w.t.Helper()
	out, err := w.sm(region).DescribeSecret(w.ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
	var nf *smtypes.ResourceNotFoundException
	if errors.As(err, &nf) {
		return nil
	}
	if err != nil {
		w.t.Fatal(err)
	}
	return out
}

func (w *world) rule(region, prefix string) *ecremu.Rule {
	for _, r := range w.ecr.Region(region).Rules() {
		if r.EcrRepositoryPrefix == prefix {
			return &r
		}
	}
	return nil
}

func (w *world) tokens(secretName string) int {
	n := 0
	prefix := ptcsecret.LabelPrefix(ptcsecret.Key(home, testenv.AccountID, secretName))
	for _, tk := range w.hub.Tokens() {
		if strings.HasPrefix(tk.Label, prefix) {
			n++
		}
	}
	return n
}

// assertSet checks the whole set in every Region it should span: the primary at home, a replica
// in each of replicas holding the primary's AWSCURRENT version, the protecting policy and the
// description, and one rule per Region reading that Region's copy.
func (w *world) assertSet(res provision.Result, prefix string, replicas []string, description string) {
	w.t.Helper()
	name := res.Data["SecretName"]
	primary := w.secret(home, name)
	if primary == nil {
		w.t.Fatalf("no primary secret %s", name)
	}
	policy, err := provision.ProtectingPolicy(testenv.RotatorRoleARN, testenv.ProvisionerRoleARN)
	if err != nil {
		w.t.Fatal(err)
	}
	current := testenv.VersionWith(primary.VersionIdsToStages, "AWSCURRENT")
	if want := strings.Join(append([]string{home}, replicas...), ","); res.Data["Regions"] != want {
		w.t.Errorf("Data Regions = %q, want %q", res.Data["Regions"], want)
	}
	var arns []string
	for _, r := range append([]string{home}, replicas...) {
		d := w.secret(r, name)
		if d == nil {
			w.t.Errorf("%s: no secret %s", r, name)
			continue
		}
		wantARN := strings.Replace(aws.ToString(primary.ARN), ":"+home+":", ":"+r+":", 1)
		if aws.ToString(d.ARN) != wantARN {
			w.t.Errorf("%s: secret ARN %s, want %s", r, aws.ToString(d.ARN), wantARN)
		}
		if r != home {
			arns = append(arns, aws.ToString(d.ARN))
			if aws.ToString(d.PrimaryRegion) != home {
				w.t.Errorf("%s: replica names primary Region %q, want %s", r, aws.ToString(d.PrimaryRegion), home)
			}
			if got := testenv.VersionWith(d.VersionIdsToStages, "AWSCURRENT"); got != current {
				w.t.Errorf("%s: replica AWSCURRENT is %q, the primary's %q", r, got, current)
			}
			if d.KmsKeyId != nil && aws.ToString(d.KmsKeyId) != localsm.DefaultReplicaKMSKey {
				w.t.Errorf("%s: replica under key %s: ECR reads only aws/secretsmanager", r, aws.ToString(d.KmsKeyId))
			}
		}
		if description != "" && aws.ToString(d.Description) != description {
			w.t.Errorf("%s: description %q, want %q", r, aws.ToString(d.Description), description)
		}
		pol, err := w.sm(r).GetResourcePolicy(w.ctx, &secretsmanager.GetResourcePolicyInput{SecretId: d.ARN})
		if err != nil {
			w.t.Fatal(err)
		}
		if !jsonEqual(aws.ToString(pol.ResourcePolicy), policy) {
			w.t.Errorf("%s: the secret does not carry the protecting policy: %s", r, aws.ToString(pol.ResourcePolicy))
		}
		rule := w.rule(r, prefix)
		if rule == nil {
			w.t.Errorf("%s: no rule %s", r, prefix)
		} else if rule.CredentialARN != aws.ToString(d.ARN) {
			w.t.Errorf("%s: rule reads %s, want its own Region's copy %s", r, rule.CredentialARN, aws.ToString(d.ARN))
		}
		if !slices.Contains(w.ecr.Region(r).Calls(), "ValidatePullThroughCacheRule") {
			w.t.Errorf("%s: the rule was never validated", r)
		}
	}
	if got := res.Data["ReplicaSecretArns"]; got != strings.Join(arns, ",") {
		w.t.Errorf("Data ReplicaSecretArns = %q, want %q", got, strings.Join(arns, ","))
	}
	if got := replicaList(primary); !slices.Equal(got, replicas) {
		w.t.Errorf("primary replicates to %v, want %v", got, replicas)
	}
}

// assertGone checks that nothing of the set is left in any Region (the clock is moved past any
// pending replication first, so a queued copy cannot bring a replica back afterwards).
func (w *world) assertGone(prefix, name string) {
	w.t.Helper()
	_ = w.clk.Sleep(w.ctx, time.Hour)
	for _, r := range allRegions {
		if d := w.secret(r, name); d != nil && d.DeletedDate == nil {
			w.t.Errorf("%s: secret %s is left behind", r, name)
		}
		if w.rule(r, prefix) != nil {
			w.t.Errorf("%s: rule %s is left behind", r, prefix)
		}
	}
	if n := w.tokens(name); n != 0 {
		w.t.Errorf("%d upstream tokens are left behind", n)
	}
}

// assertNoLeak scans the logs for the planted password and every token the hub minted.
func (w *world) assertNoLeak(errs ...error) {
	w.t.Helper()
	planted := []string{hubPassword}
	for _, tk := range w.hub.Tokens() {
		planted = append(planted, tk.Secret)
	}
	text := w.logs.String()
	for _, err := range errs {
		if err != nil {
			text += err.Error()
		}
	}
	for _, s := range planted {
		if s != "" && strings.Contains(text, s) {
			w.t.Errorf("a secret value reached the logs or an error")
		}
	}
}

func replicaList(d *secretsmanager.DescribeSecretOutput) []string {
	var out []string
	for _, s := range d.ReplicationStatus {
		out = append(out, aws.ToString(s.Region))
	}
	return out
}

func jsonEqual(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return string(xb) == string(yb)
}

// calls are the Secrets Manager and ECR calls each Region has served so far.
func (w *world) calls() map[string][2][]string {
	out := map[string][2][]string{}
	for _, r := range allRegions {
		out[r] = [2][]string{w.cl.Cluster.Region(r).Calls(), w.ecr.Region(r).Calls()}
	}
	return out
}

// since are the calls each Region served after mark (an earlier calls()).
func (w *world) since(mark map[string][2][]string) map[string][2][]string {
	out := map[string][2][]string{}
	for r, c := range w.calls() {
		out[r] = [2][]string{c[0][len(mark[r][0]):], c[1][len(mark[r][1]):]}
	}
	return out
}

// One set over three Regions, through its whole life: Create with two replicas, an Update that
// adds a Region, drops one and changes the Description, and Delete (twice: it is idempotent).
func TestManyRegionsCreateUpdateDelete(t *testing.T) {
	w := newWorld(t, worldOptions{})
	props := w.props("hub-multi", west, sydney)
	props["Description"] = "Docker Hub for every Region"
	res := w.mustDo("Create", "", props, nil)
	w.assertSet(res, "hub-multi", []string{west, sydney}, "Docker Hub for every Region")

	newProps := w.props("hub-multi", west, extra)
	newProps["Description"] = "Docker Hub, moved from Sydney to Frankfurt"
	res2 := w.mustDo("Update", res.PhysicalID, newProps, props)
	if res2.PhysicalID != res.PhysicalID {
		t.Fatalf("Update replaced the set (%s -> %s): Regions change in place", res.PhysicalID, res2.PhysicalID)
	}
	w.assertSet(res2, "hub-multi", []string{west, extra}, "Docker Hub, moved from Sydney to Frankfurt")
	if d := w.secret(sydney, res.Data["SecretName"]); d != nil {
		t.Errorf("the replica in %s outlived its Region's removal", sydney)
	}
	if w.rule(sydney, "hub-multi") != nil {
		t.Errorf("the rule in %s outlived its Region's removal", sydney)
	}
	if res2.Data["SecretArn"] != res.Data["SecretArn"] {
		t.Errorf("SecretArn changed: %s -> %s", res.Data["SecretArn"], res2.Data["SecretArn"])
	}

	for i := range 2 {
		if _, err := w.do("Delete", res.PhysicalID, newProps, nil); err != nil {
			t.Fatalf("Delete #%d: %v", i+1, err)
		}
		w.assertGone("hub-multi", res.Data["SecretName"])
	}
	w.assertNoLeak()
}

// A rotation runs in the primary only; its new version reaches every replica, and each Region's
// rule then validates with it.
func TestManyRegionsRotationReachesEveryReplica(t *testing.T) {
	w := newWorld(t, worldOptions{})
	res := w.mustDo("Create", "", w.props("hub-rot", west, sydney), nil)
	name := res.Data["SecretName"]
	before := testenv.VersionWith(w.secret(home, name).VersionIdsToStages, "AWSCURRENT")
	if _, err := w.sm(home).RotateSecret(w.ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String(res.Data["SecretArn"])}); err != nil {
		t.Fatal(err)
	}
	after := testenv.VersionWith(w.secret(home, name).VersionIdsToStages, "AWSCURRENT")
	if after == before {
		t.Fatal("the rotation did not move AWSCURRENT")
	}
	for _, r := range []string{west, sydney} {
		if got := testenv.VersionWith(w.secret(r, name).VersionIdsToStages, "AWSCURRENT"); got != after {
			t.Errorf("%s: replica AWSCURRENT %q after the rotation, want %q", r, got, after)
		}
		v, err := w.ecrIn(r).ValidatePullThroughCacheRule(w.ctx, &ecr.ValidatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("hub-rot")})
		if err != nil || !v.IsValid {
			t.Errorf("%s: the rule does not validate after the rotation: %v", r, err)
		}
	}
}

// With replication lagging behind, Create waits (on the injected clock) until every replica
// holds the value and the protecting policy, then makes their rules; nothing is made in a
// replica Region before its replica is complete.
func TestManyRegionsCreateWaitsForLaggingReplicas(t *testing.T) {
	w := newWorld(t, worldOptions{lag: 20 * time.Second})
	start := w.clk.Now()
	res := w.mustDo("Create", "", w.props("hub-lag", west, sydney), nil)
	waited := w.clk.Now().Sub(start)
	if waited < 20*time.Second {
		t.Errorf("Create returned after %s of (fake) waiting; replication lags 20s", waited)
	}
	t.Logf("Create waited %s of fake time for 20 s replication lag", waited)
	w.assertSet(res, "hub-lag", []string{west, sydney}, "")
	if !strings.Contains(w.logs.String(), "waiting for replicas") {
		t.Error("the wait is not logged")
	}
}

// Replication slower than the wait budget: Create fails naming every Region still behind, and
// what this Create made is gone from every Region.
func TestManyRegionsCreateTimesOutNamingTheRegions(t *testing.T) {
	w := newWorld(t, worldOptions{lag: 10 * time.Minute, wait: 30 * time.Second})
	_, err := w.do("Create", "", w.props("hub-slow", west, sydney), nil)
	if err == nil {
		t.Fatal("Create succeeded although replication lags past the wait budget")
	}
	for _, want := range []string{`ReplicaRegions "eu-west-1"`, `ReplicaRegions "ap-southeast-2"`, "does not exist yet", "everything this request created was removed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q: %v", want, err)
		}
	}
	w.assertGone("hub-slow", ptcsecret.Prefix+"hub-slow")
	w.assertNoLeak(err)
}

// A Region that never replicates (its ReplicationStatus turns Failed): Create answers FAILED
// naming that Region and Secrets Manager's message, and removes everything in every Region;
// once the Region heals, the same Create succeeds.
func TestManyRegionsFailedReplicationNamesTheRegion(t *testing.T) {
	w := newWorld(t, worldOptions{})
	w.cl.Cluster.FailReplication(sydney)
	props := w.props("hub-fail", west, sydney)
	_, err := w.do("Create", "", props, nil)
	if err == nil {
		t.Fatal("Create succeeded although replication to ap-southeast-2 fails")
	}
	for _, want := range []string{`ReplicaRegions "ap-southeast-2"`, "could not replicate", "Replication failed", "everything this request created was removed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), `"eu-west-1"`) {
		t.Errorf("error blames eu-west-1, which replicated: %v", err)
	}
	w.assertGone("hub-fail", ptcsecret.Prefix+"hub-fail")
	w.assertNoLeak(err)

	w.cl.Cluster.HealReplication(sydney)
	res := w.mustDo("Create", "", props, nil)
	w.assertSet(res, "hub-fail", []string{west, sydney}, "")
}

// An Update that died halfway — the new Region's replica made, its rule not (ECR failed) — is
// resumed by the next Update, which makes only what is missing.
func TestManyRegionsHalfMadeUpdateResumes(t *testing.T) {
	w := newWorld(t, worldOptions{})
	props := w.props("hub-resume", west)
	res := w.mustDo("Create", "", props, nil)
	newProps := w.props("hub-resume", west, sydney)

	w.ecrHook = func(op, region string) error {
		if op == "CreatePullThroughCacheRule" && region == sydney {
			return &ecremu.Error{Type: "ServerException", Message: "injected: ECR is down in " + region, Status: 500}
		}
		return nil
	}
	_, err := w.do("Update", res.PhysicalID, newProps, props)
	if err == nil || !strings.Contains(err.Error(), `ReplicaRegions "ap-southeast-2"`) {
		t.Fatalf("Update with ECR down in ap-southeast-2: want an error naming the Region, got %v", err)
	}
	name := res.Data["SecretName"]
	if w.secret(sydney, name) == nil || w.rule(sydney, "hub-resume") != nil {
		t.Fatal("the failed Update should have left the replica in ap-southeast-2 without its rule")
	}

	w.ecrHook = nil
	mark := w.calls()
	res2 := w.mustDo("Update", res.PhysicalID, newProps, props)
	w.assertSet(res2, "hub-resume", []string{west, sydney}, "")
	got := w.since(mark)
	if slices.Contains(got[home][0], "ReplicateSecretToRegions") {
		t.Errorf("the resumed Update replicated again: %v", got[home][0])
	}
	if n := count(got[sydney][1], "CreatePullThroughCacheRule"); n != 1 {
		t.Errorf("the resumed Update made %d rules in ap-southeast-2, want 1", n)
	}
	if n := count(got[west][1], "CreatePullThroughCacheRule"); n != 0 {
		t.Errorf("the resumed Update made %d rules in eu-west-1, which had its rule", n)
	}
}

// The attacker names a Region the deployer does not allow (or the home Region, or another
// partition's): the request is refused naming the field and value, before a single call in any
// Region.
func TestManyRegionsRefusesRegionsOutsideTheAllowList(t *testing.T) {
	w := newWorld(t, worldOptions{})
	for _, tc := range []struct {
		regions any
		want    string
	}{
		{[]any{outside}, `ReplicaRegions "sa-east-1" is not allowed by the deployer (AllowedReplicaRegions: eu-west-1, ap-southeast-2, eu-central-1)`},
		{[]any{west, home}, `ReplicaRegions "us-east-1" is the stack's own Region`},
		{"eu-west-1,cn-north-1", `ReplicaRegions "cn-north-1" is in partition aws-cn`},
		{[]any{west, west}, `ReplicaRegions "eu-west-1" is listed twice`},
		{[]any{"eu-west-1; DROP"}, `ReplicaRegions "eu-west-1; DROP" is not a Region name`},
		{[]any{7}, `ReplicaRegions[0] must be a string`},
	} {
		props := w.props("hub-evil")
		props["ReplicaRegions"] = tc.regions
		mark := w.calls()
		_, err := w.do("Create", "", props, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ReplicaRegions %v: want an error containing %q, got %v", tc.regions, tc.want, err)
		}
		for r, c := range w.since(mark) {
			if len(c[0])+len(c[1]) > 0 {
				t.Errorf("ReplicaRegions %v: the refused request still called %s: %v %v", tc.regions, r, c[0], c[1])
			}
		}
	}
	// An Update may not add one either, and leaves the set as it was.
	props := w.props("hub-evil", west)
	res := w.mustDo("Create", "", props, nil)
	evil := w.props("hub-evil", west, outside)
	if _, err := w.do("Update", res.PhysicalID, evil, props); err == nil || !strings.Contains(err.Error(), `ReplicaRegions "sa-east-1" is not allowed`) {
		t.Errorf("Update adding sa-east-1: want a refusal, got %v", err)
	}
	if d := w.secret(outside, res.Data["SecretName"]); d != nil {
		t.Error("a replica was made in sa-east-1")
	}
	// With no allow-list at all, no Region is allowed.
	w.prov.AllowedReplicaRegions = nil
	if _, err := w.do("Create", "", w.props("hub-none", west), nil); err == nil || !strings.Contains(err.Error(), "AllowedReplicaRegions parameter is empty") {
		t.Errorf("no allow-list: want a refusal saying so, got %v", err)
	}
}

// Someone else's secret of the same name in a replica Region — even one carrying a copy of our
// ptc:* tags and proof — is not our replica: Create refuses naming the Region, makes nothing,
// and leaves it as it was. Someone else's rule of the prefix in a replica Region likewise.
func TestManyRegionsRefusesWhatIsNotOurs(t *testing.T) {
	w := newWorld(t, worldOptions{})
	// A set of ours to copy tags from, in another name.
	real := w.mustDo("Create", "", w.props("hub-real"), nil)
	forged := append([]smtypes.Tag(nil), w.secret(home, real.Data["SecretName"]).Tags...)
	name := ptcsecret.Prefix + "hub-squat"
	squat, err := w.sm(west).CreateSecret(w.ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String(name), SecretString: aws.String(`{"username":"squatter","accessToken":"squatter-token-123"}`), Tags: forged,
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.do("Create", "", w.props("hub-squat", west), nil)
	if err == nil || !strings.Contains(err.Error(), `ReplicaRegions "eu-west-1": a secret named `+name+` already exists in eu-west-1 and is not a replica`) {
		t.Fatalf("Create over a squatted name in eu-west-1: want a refusal naming the Region, got %v", err)
	}
	if d := w.secret(home, name); d != nil {
		t.Error("a primary was made although its replica Region is taken")
	}
	if d := w.secret(west, name); d == nil || aws.ToString(d.ARN) != aws.ToString(squat.ARN) || d.PrimaryRegion != nil && aws.ToString(d.PrimaryRegion) != west {
		t.Errorf("the squatter's secret was changed: %+v", d)
	}

	// Someone else's rule of the prefix in ap-southeast-2.
	if _, err := w.ecrIn(sydney).CreatePullThroughCacheRule(w.ctx, &ecr.CreatePullThroughCacheRuleInput{
		EcrRepositoryPrefix: aws.String("hub-theirs"), UpstreamRegistryUrl: aws.String("public.ecr.aws"), UpstreamRegistry: "ecr-public",
	}); err != nil {
		t.Fatal(err)
	}
	_, err = w.do("Create", "", w.props("hub-theirs", sydney), nil)
	if err == nil || !strings.Contains(err.Error(), `ReplicaRegions "ap-southeast-2": a pull-through cache rule for EcrRepositoryPrefix "hub-theirs" already exists in ap-southeast-2`) {
		t.Fatalf("Create over someone else's rule in ap-southeast-2: want a refusal naming the Region, got %v", err)
	}
	if r := w.rule(sydney, "hub-theirs"); r == nil || r.UpstreamRegistryURL != "public.ecr.aws" {
		t.Errorf("someone else's rule in ap-southeast-2 was changed: %+v", r)
	}
	if w.secret(home, ptcsecret.Prefix+"hub-theirs") != nil || w.rule(home, "hub-theirs") != nil {
		t.Error("Create made things at home although a replica Region's prefix is taken")
	}
	w.assertNoLeak()
}

// A rule of the prefix in a replica Region that someone swapped for one reading another secret is
// not ours: neither Update (removing that Region) nor Delete touches it; ours go everywhere else.
func TestManyRegionsLeavesSwappedRulesAlone(t *testing.T) {
	w := newWorld(t, worldOptions{})
	props := w.props("hub-swap", west, sydney)
	res := w.mustDo("Create", "", props, nil)
	swap := func(region string) {
		if _, err := w.ecrIn(region).DeletePullThroughCacheRule(w.ctx, &ecr.DeletePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("hub-swap")}); err != nil {
			t.Fatal(err)
		}
		if _, err := w.ecrIn(region).CreatePullThroughCacheRule(w.ctx, &ecr.CreatePullThroughCacheRuleInput{
			EcrRepositoryPrefix: aws.String("hub-swap"), UpstreamRegistryUrl: aws.String("public.ecr.aws"), UpstreamRegistry: "ecr-public",
		}); err != nil {
			t.Fatal(err)
		}
	}
	swap(sydney)
	newProps := w.props("hub-swap", west)
	w.mustDo("Update", res.PhysicalID, newProps, props)
	if r := w.rule(sydney, "hub-swap"); r == nil || r.UpstreamRegistryURL != "public.ecr.aws" {
		t.Errorf("Update removed or changed someone else's rule in ap-southeast-2: %+v", r)
	}
	if w.secret(sydney, res.Data["SecretName"]) != nil {
		t.Error("the replica in ap-southeast-2 outlived its Region's removal")
	}
	swap(west)
	w.mustDo("Delete", res.PhysicalID, newProps, nil)
	if r := w.rule(west, "hub-swap"); r == nil || r.UpstreamRegistryURL != "public.ecr.aws" {
		t.Errorf("Delete removed or changed someone else's rule in eu-west-1: %+v", r)
	}
	if w.secret(home, res.Data["SecretName"]) != nil || w.secret(west, res.Data["SecretName"]) != nil || w.rule(home, "hub-swap") != nil {
		t.Error("Delete left our secret, replica or home rule behind")
	}
}

// The protecting policy reaches the replicas, where StopReplicationToReplica is called: nobody
// but the provisioner's role may detach a replica from its primary (and so from rotation).
func TestManyRegionsReplicasCannotBeDetached(t *testing.T) {
	w := newWorld(t, worldOptions{})
	res := w.mustDo("Create", "", w.props("hub-attach", west), nil)
	_, err := w.attacker(west).StopReplicationToReplica(w.ctx, &secretsmanager.StopReplicationToReplicaInput{SecretId: aws.String(res.Data["SecretName"])})
	if err == nil || !strings.Contains(err.Error(), "AccessDenied") {
		t.Fatalf("someone else detached the replica in eu-west-1: %v", err)
	}
	if d := w.secret(west, res.Data["SecretName"]); d == nil || aws.ToString(d.PrimaryRegion) != home {
		t.Error("the replica is no longer attached to its primary")
	}
}

// The calls one three-Region set costs, per Region and service (the provisioner's own; "served"
// adds what the emulators saw from ECR's reads of the secret and the rotator's testSecret), for Create, an Update that adds
// a Region, drops one and changes the Description, and Delete (printed with -v; BENCHMARKS.md and
// the README quote them). What is asserted is the shape, not the numbers: in a replica Region
// the provisioner only reads Secrets Manager (replicas are written by Secrets Manager itself,
// from the primary), and it calls nothing at all in a Region the set does not span.
func TestManyRegionsCallCounts(t *testing.T) {
	w := newWorld(t, worldOptions{})
	props := w.props("hub-count", west, sydney)
	newProps := w.props("hub-count", west, extra)
	newProps["Description"] = "moved from Sydney to Frankfurt"
	var res provision.Result
	for _, step := range []struct {
		name string
		do   func()
		span []string
	}{
		{"Create (home + 2 replicas)", func() { res = w.mustDo("Create", "", props, nil) }, []string{home, west, sydney}},
		{"Update (+eu-central-1, -ap-southeast-2, Description)", func() { w.mustDo("Update", res.PhysicalID, newProps, props) }, []string{home, west, sydney, extra}},
		{"Delete", func() { w.mustDo("Delete", res.PhysicalID, newProps, nil) }, []string{home, west, extra}},
	} {
		mark := w.calls()
		for _, r := range allRegions {
			w.smCounts[r].Reset()
			w.ecrCounts[r].Reset()
		}
		step.do()
		served := w.since(mark)
		var line []string
		for _, r := range allRegions {
			sm, e := w.smCounts[r], w.ecrCounts[r]
			if !slices.Contains(step.span, r) && sm.Total()+e.Total() > 0 {
				t.Errorf("%s: called %s, which the set does not span: %s %s", step.name, r, sm, e)
			}
			if !slices.Contains(step.span, r) {
				continue
			}
			line = append(line, fmt.Sprintf("%s SM %d ECR %d (served: SM %d, ECR %d)", r, sm.Total(), e.Total(), len(served[r][0]), len(served[r][1])))
			if r == home {
				continue
			}
			for op := range sm.Snapshot() {
				if op != "DescribeSecret" && op != "GetResourcePolicy" {
					t.Errorf("%s: called %s on Secrets Manager in replica Region %s; replicas are only read", step.name, op, r)
				}
			}
		}
		t.Logf("%s: %s", step.name, strings.Join(line, "; "))
		for _, r := range step.span {
			t.Logf("  %-14s SM  %s", r, w.smCounts[r])
			t.Logf("  %-14s ECR %s", r, w.ecrCounts[r])
		}
	}
}

// lostPolicyPut is the home Region's Secrets Manager with the first PutResourcePolicy lost on
// the way (answered, never applied): the replicas then hold the value but never the policy.
type lostPolicyPut struct {
	provision.SecretsManager
	lost bool
}

func (l *lostPolicyPut) PutResourcePolicy(ctx context.Context, in *secretsmanager.PutResourcePolicyInput, o ...func(*secretsmanager.Options)) (*secretsmanager.PutResourcePolicyOutput, error) {
	if !l.lost {
		l.lost = true
		return &secretsmanager.PutResourcePolicyOutput{ARN: in.SecretId}, nil
	}
	return l.SecretsManager.PutResourcePolicy(ctx, in, o...)
}

// A replica that holds the value but not the protecting policy is not taken as done: halfway
// through the wait the policy is put on the primary again, and the rules are made only once every
// replica carries it.
func TestManyRegionsCreatePutsALostPolicyAgain(t *testing.T) {
	w := newWorld(t, worldOptions{wait: 40 * time.Second})
	lossy := &lostPolicyPut{SecretsManager: w.prov.SM}
	w.prov.SM = lossy
	res := w.mustDo("Create", "", w.props("hub-lost", west, sydney), nil)
	if !lossy.lost {
		t.Fatal("the test lost no put")
	}
	w.assertSet(res, "hub-lost", []string{west, sydney}, "")
	if !strings.Contains(w.logs.String(), "put it on the primary again") {
		t.Error("the second put is not logged")
	}
}

// Someone with the provisioner's rights removed the policy behind the stack's back; Secrets
// Manager removed it from the replicas too. The next Update puts it back and waits until every
// replica carries it again.
func TestManyRegionsUpdateRestoresThePolicyEverywhere(t *testing.T) {
	w := newWorld(t, worldOptions{lag: 5 * time.Second})
	props := w.props("hub-drift", west, sydney)
	res := w.mustDo("Create", "", props, nil)
	if _, err := w.sm(home).DeleteResourcePolicy(w.ctx, &secretsmanager.DeleteResourcePolicyInput{SecretId: aws.String(res.Data["SecretArn"])}); err != nil {
		t.Fatal(err)
	}
	_ = w.clk.Sleep(w.ctx, time.Minute)
	if pol, err := w.sm(west).GetResourcePolicy(w.ctx, &secretsmanager.GetResourcePolicyInput{SecretId: aws.String(res.Data["SecretName"])}); err != nil || pol.ResourcePolicy != nil {
		t.Fatalf("the removal did not reach the replica: %v %v", pol, err)
	}
	res2 := w.mustDo("Update", res.PhysicalID, props, props)
	w.assertSet(res2, "hub-drift", []string{west, sydney}, "")
}

// An Update adding a Region that does not replicate fails naming it; while it still fails, the
// next Update tries that Region afresh (Secrets Manager keeps a Failed replica until it is
// removed) and fails the same way; once it heals, an Update finishes the set.
func TestManyRegionsUpdateRetriesAFailedRegion(t *testing.T) {
	w := newWorld(t, worldOptions{})
	props := w.props("hub-retry", west)
	res := w.mustDo("Create", "", props, nil)
	newProps := w.props("hub-retry", west, sydney)
	w.cl.Cluster.FailReplication(sydney)
	for i := range 2 {
		mark := w.calls()
		_, err := w.do("Update", res.PhysicalID, newProps, props)
		if err == nil || !strings.Contains(err.Error(), `ReplicaRegions "ap-southeast-2": Secrets Manager could not replicate`) {
			t.Fatalf("Update #%d with ap-southeast-2 failing: want an error naming it, got %v", i+1, err)
		}
		if i == 1 {
			got := w.since(mark)[home][0]
			if count(got, "RemoveRegionsFromReplication") != 1 || count(got, "ReplicateSecretToRegions") != 1 {
				t.Errorf("the second Update did not remove and re-add the Failed Region: %v", got)
			}
		}
		if w.rule(sydney, "hub-retry") != nil {
			t.Error("a rule was made in a Region whose replica failed")
		}
	}
	w.cl.Cluster.HealReplication(sydney)
	res2 := w.mustDo("Update", res.PhysicalID, newProps, props)
	w.assertSet(res2, "hub-retry", []string{west, sydney}, "")
}

// A Create that made everything in three Regions but never answered gets a Delete with an id
// CloudFormation made up; Delete finds the set by its properties and, since the proof is ours,
// removes it from every Region.
func TestManyRegionsDeleteAfterAnUnansweredCreate(t *testing.T) {
	w := newWorld(t, worldOptions{})
	props := w.props("hub-lostanswer", west, sydney)
	res := w.mustDo("Create", "", props, nil)
	w.mustDo("Delete", "ptc-credentials-made-up-id-7", props, nil)
	w.assertGone("hub-lostanswer", res.Data["SecretName"])
}

// A set whose answer would not fit CloudFormation's 4096 bytes (every Region adds its replica's
// ARN to ReplicaSecretArns) is refused before anything is made, rather than made and then
// reported FAILED.
func TestManyRegionsRefusesASetWhoseAnswerWouldNotFit(t *testing.T) {
	w := newWorld(t, worldOptions{})
	many := []string{west, sydney, extra, "eu-west-2", "eu-west-3", "eu-north-1", "ap-northeast-1", "ap-south-1", "ca-central-1", "us-west-2"}
	w.prov.AllowedReplicaRegions = many
	props := w.props("hub-big", many...)
	props["SecretName"] = ptcsecret.Prefix + strings.Repeat("n", 300)
	mark := w.calls()
	_, err := w.do("Create", "", props, nil)
	if err == nil || !strings.Contains(err.Error(), "ReplicaRegions: with 10 replica Regions the answer to CloudFormation would be about") {
		t.Fatalf("want a refusal saying the answer would not fit, got %v", err)
	}
	for r, c := range w.since(mark) {
		if len(c[0])+len(c[1]) > 0 {
			t.Errorf("the refused request still called %s: %v %v", r, c[0], c[1])
		}
	}
}

// A Delete whose properties name a Region outside the allow-list (forged, or the list shrank)
// does not look there: the role may not act there, and nothing of ours can be there.
func TestManyRegionsDeleteDoesNotLookOutsideTheAllowList(t *testing.T) {
	w := newWorld(t, worldOptions{})
	props := w.props("hub-del", west)
	res := w.mustDo("Create", "", props, nil)
	forged := w.props("hub-del", west, outside)
	mark := w.calls()
	w.mustDo("Delete", res.PhysicalID, forged, nil)
	if c := w.since(mark)[outside]; len(c[0])+len(c[1]) > 0 {
		t.Errorf("Delete called %s, outside the allow-list: %v %v", outside, c[0], c[1])
	}
	w.assertGone("hub-del", res.Data["SecretName"])
}

// lostReplicate answers ReplicateSecretToRegions without doing it, as a lost write would look.
type lostReplicate struct{ provision.SecretsManager }

func (lostReplicate) ReplicateSecretToRegions(_ context.Context, in *secretsmanager.ReplicateSecretToRegionsInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.ReplicateSecretToRegionsOutput, error) {
	return &secretsmanager.ReplicateSecretToRegionsOutput{ARN: in.SecretId}, nil
}

// A Region the primary never lists is waited on like a slow one (a read may lag the write), and
// named when the wait runs out; nothing is made there.
func TestManyRegionsUpdateNamesARegionThatNeverAppears(t *testing.T) {
	w := newWorld(t, worldOptions{wait: 20 * time.Second})
	props := w.props("hub-never", west)
	res := w.mustDo("Create", "", props, nil)
	w.prov.SM = lostReplicate{w.prov.SM}
	_, err := w.do("Update", res.PhysicalID, w.props("hub-never", west, sydney), props)
	if err == nil || !strings.Contains(err.Error(), `ReplicaRegions "ap-southeast-2": the replica of `+res.Data["SecretName"]+` is not in the primary's ReplicationStatus`) {
		t.Fatalf("want an error naming ap-southeast-2, got %v", err)
	}
	if w.rule(sydney, "hub-never") != nil || w.secret(sydney, res.Data["SecretName"]) != nil {
		t.Error("something was made in ap-southeast-2")
	}
}

// replicaPolicyRefused is a replica Region's Secrets Manager refusing to read a replica's
// resource policy, as moto 5.2.1 does (localsm's deviation replica-policy-read-refused). AWS
// may do the same; the provisioner must not fail every multi-Region Create over it.
type replicaPolicyRefused struct{ provision.SecretsManager }

func (replicaPolicyRefused) GetResourcePolicy(context.Context, *secretsmanager.GetResourcePolicyInput, ...func(*secretsmanager.Options)) (*secretsmanager.GetResourcePolicyOutput, error) {
	return nil, &smtypes.InvalidParameterException{Message: aws.String("Operation not permitted on a replica secret. Call must be made in primary secret's region.")}
}

// Where a replica's policy cannot be read, Create still makes the whole set (the policy is
// checked on the primary; Secrets Manager copies it) and says so in a warning.
func TestManyRegionsCreateWhereReplicaPoliciesCannotBeRead(t *testing.T) {
	w := newWorld(t, worldOptions{})
	smFor := w.prov.SMFor
	w.prov.SMFor = func(r string) provision.SecretsManager { return replicaPolicyRefused{smFor(r)} }
	res := w.mustDo("Create", "", w.props("hub-unreadable", west, sydney), nil)
	w.assertSet(res, "hub-unreadable", []string{west, sydney}, "")
	if !strings.Contains(w.logs.String(), "relying on Secrets Manager replicating the primary's") {
		t.Error("the unreadable replica policy is not logged")
	}
}
