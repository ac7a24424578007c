package localcloud

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/ptc-credentials/ptc-credentials/internal/provision"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/registries"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
)

func startCloud(t *testing.T) *Cloud {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("aws-lambda-rie runs only on Linux")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := Start(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// TestScenarioEveryRegistry runs the demo's scenario for each registry through the real
// bootstraps and checks what it reports against what the emulators hold, then that nothing
// secret reached any output, then that Close stops everything.
func TestScenarioEveryRegistry(t *testing.T) {
	c := startCloud(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var said bytes.Buffer
	var results []Result

	var keys []string
	for _, reg := range c.Registries() {
		keys = append(keys, reg.Key)
		t.Run(reg.Key, func(t *testing.T) {
			r := c.RunScenario(ctx, &said, reg.Key, ScenarioOptions{Rotations: 2})
			results = append(results, r)
			checkResult(t, c, reg, r)
			// Docker Hub's personal account has a pull limit, which testSecret read and the
			// rotator tagged; a Business organization reports no limit; the other registries none.
			switch {
			case reg.Key == registries.DockerHub.Name:
				if n, err := strconv.Atoi(r.PullsLeft); err != nil || n <= 0 || n > registries.HubPullLimit {
					t.Errorf("pulls left %q, want a count up to %d", r.PullsLeft, registries.HubPullLimit)
				}
			case reg.Key == "docker-hub-staged":
				// A Business organization (SSO needs one) has no pull limit: Docker Hub sends no
				// rate-limit header, which the rotator records as such.
				if r.PullsLeft != "unlimited" {
					t.Errorf("pulls left %q for the SSO organization, want unlimited", r.PullsLeft)
				}
			case reg.Name != registries.DockerHub.Name && r.PullsLeft != "":
				t.Errorf("pulls left %q on a registry that reports no pull budget", r.PullsLeft)
			}
			if len(reg.ReplicaRegions) > 0 {
				checkRegions(t, c, reg, r)
			}
		})
	}
	// Every mode of every registry: five registries, Docker Hub staged and ACR federated beside
	// their other mode.
	if want := []string{"docker-hub", "docker-hub-staged", "azure-container-registry", "azure-container-registry-federated",
		"github-container-registry", "gitlab-container-registry", "chainguard", "docker-hub-org-3-regions"}; !slices.Equal(keys, want) {
		t.Errorf("rows %v, want %v", keys, want)
	}

	t.Run("update regions", func(t *testing.T) { updateRegions(ctx, t, c) })

	// Nothing secret in the narrative, the functions' output, the Invoke answers or
	// CloudFormation's answers; and the scan would have seen one.
	text := said.String() + c.Transcript()
	if n := c.Leaks(text); n != 0 {
		t.Errorf("%d secret values leaked into the output", n)
	}
	secrets := c.Secrets()
	planted := []string{c.presignedSig}
	for _, r := range c.Registries() {
		if !r.Federated {
			planted = append(planted, r.Emulator.SourceSecret)
		}
	}
	for _, s := range planted {
		if s == "" || !slices.Contains(secrets, s) {
			t.Error("a source credential is missing from Secrets")
		}
	}
	// The federated rows stored no secret: the web identity tokens the functions got from STS
	// are what the scan must know instead.
	tokens := c.STS.Tokens()
	if len(tokens) == 0 {
		t.Error("the functions got no web identity token from the cloud's STS")
	}
	for _, tok := range tokens {
		if !slices.Contains(secrets, tok) {
			t.Error("a web identity token is missing from Secrets")
		}
	}
	subjects := map[string]bool{}
	for _, is := range c.STS.Issued() {
		subjects[is.Subject] = true
	}
	if !subjects[testenv.RotatorRoleARN] || !subjects[testenv.ProvisionerRoleARN] {
		t.Errorf("web identity tokens went to %v, want both function roles", subjects)
	}
	// No private key and no JWT anywhere (Chainguard's throw-away keys, pull-token JWTs, web
	// identity tokens), and the scan sees one.
	if m := c.KeyMaterial(text); len(m) != 0 {
		t.Errorf("the output holds key material or a JWT: %v", m)
	}
	if len(c.KeyMaterial("-----BEGIN EC PRIVATE KEY-----")) == 0 || len(c.KeyMaterial(`{"kty":"EC","d":"x"}`)) == 0 || len(c.KeyMaterial(tokens[0])) == 0 {
		t.Error("KeyMaterial misses a private key or a JWT")
	}
	if len(secrets) < 15 {
		t.Errorf("Secrets knows %d values; the scenarios minted more than that", len(secrets))
	}
	if c.Leaks("x "+planted[1]+" y") != 1 {
		t.Error("Leaks does not find a planted value")
	}
	for _, want := range []string{`"level":"INFO"`, `"CloudWatchMetrics"`} {
		if !strings.Contains(c.Rotator.Output(), want) {
			t.Errorf("rotator output lacks %s", want)
		}
	}

	// A request the provisioner refuses still gets exactly one answer: FAILED, naming the property.
	t.Run("bad request", func(t *testing.T) {
		before := len(c.Answers())
		a, err := c.CustomResource(ctx, "Create", "", map[string]any{"EcrRepositoryPrefix": "x", "UpstreamRegistry": "docker-hub"})
		if err != nil {
			t.Fatal(err)
		}
		if a.Status != "FAILED" || !strings.Contains(a.Reason, "SourceSecretArn") || a.LogicalResourceID != DefaultLogicalID {
			t.Errorf("answer %s %q (logical %q)", a.Status, a.Reason, a.LogicalResourceID)
		}
		if n := len(c.Answers()) - before; n != 1 {
			t.Errorf("CloudFormation received %d answers", n)
		}
	})

	var table bytes.Buffer
	WriteSummary(&table, results)
	if lines := strings.Split(strings.TrimSpace(table.String()), "\n"); len(lines) < 2+len(results) ||
		!strings.HasPrefix(lines[0], "registry") || !strings.Contains(lines[2], "Docker Hub") ||
		!strings.Contains(strings.Join(strings.Fields(table.String()), " "), "serves rules in 3 Regions (us-east-1, eu-west-1, ap-southeast-2)") {
		t.Errorf("summary table:\n%s", table.String())
	}
	if t.Failed() {
		t.Logf("narrative:\n%s", said.String())
	}

	// Close stops the functions and every server, and may be called again.
	c.Close()
	for _, f := range []*Function{c.Rotator, c.Provisioner} {
		select {
		case <-f.Exited():
		default:
			t.Errorf("%s's aws-lambda-rie still runs after Close", f.Name)
		}
		if conn, err := net.DialTimeout("tcp", f.Addr, time.Second); err == nil {
			conn.Close()
			t.Errorf("%s's Invoke address %s still accepts connections after Close", f.Name, f.Addr)
		}
	}
	urls := []string{c.SecretsManagerURL, c.ECRURL, c.cfnURL, c.STSURL}
	for _, r := range c.Registries() {
		urls = append(urls, r.URL)
	}
	for _, u := range urls {
		if resp, err := http.Get(u); err == nil {
			resp.Body.Close()
			t.Errorf("%s still answers after Close", u)
		}
	}
	c.Close()
}

// checkResult compares what the scenario reported with what the emulators hold.
func checkResult(t *testing.T, c *Cloud, reg Registry, r Result) {
	t.Helper()
	for _, s := range r.Steps {
		if s.Err != nil {
			t.Errorf("step %s: %v", s.Name, s.Err)
		}
	}
	if !r.OK() {
		return
	}
	name := ptcsecret.Prefix + reg.Prefix
	if r.Created.Status != "SUCCESS" || r.Created.Method != http.MethodPut || r.Created.PhysicalResourceID != provision.PhysicalID(reg.Prefix, name) ||
		r.Created.StackID != c.StackID || r.Created.Query.Get("X-Amz-Signature") != c.presignedSig {
		t.Errorf("Create answer %s %s physical %q stack %q", r.Created.Method, r.Created.Status, r.Created.PhysicalResourceID, r.Created.StackID)
	}
	// The provisioner returns nothing once CloudFormation has its answer: Lambda's JSON null.
	if inv := r.Created.Invocation; inv.Status != http.StatusOK || strings.TrimSpace(string(inv.Body)) != "null" {
		t.Errorf("Create Invoke answered %d %s", inv.Status, inv.Body)
	}
	if got, want := r.Created.Data["RepositoryUriPrefix"], AccountID+".dkr.ecr."+Region+".amazonaws.com/"+reg.Prefix; got != want {
		t.Errorf("RepositoryUriPrefix %q, want %q", got, want)
	}
	if len(r.Versions) != 3 || len(r.Rotations) != 2 {
		t.Fatalf("%d versions and %d rotations, want 3 and 2", len(r.Versions), len(r.Rotations))
	}
	for i, rot := range r.Rotations {
		var steps []string
		for _, s := range rot.Steps {
			steps = append(steps, s.Step)
		}
		if !rot.Immediately || !rot.Done || rot.Err != "" || !rot.Promoted || rot.VersionID != r.Versions[i+1] ||
			!slices.Equal(steps, []string{"createSecret", "setSecret", "testSecret", "finishSecret"}) {
			t.Errorf("rotation %d: %+v", i+1, rot)
		}
	}
	if !r.Valid || r.ValidateFailure != "" {
		t.Errorf("ValidatePullThroughCacheRule: valid %v, failure %q", r.Valid, r.ValidateFailure)
	}
	if r.Deleted.Status != "SUCCESS" || r.Deleted.PhysicalResourceID != r.Created.PhysicalResourceID || !r.RuleGone || !r.SecretGone {
		t.Errorf("Delete: %s %q rule gone %v secret gone %v", r.Deleted.Status, r.Deleted.PhysicalResourceID, r.RuleGone, r.SecretGone)
	}
	for _, rule := range c.ECRServer.Rules() {
		if rule.EcrRepositoryPrefix == reg.Prefix {
			t.Errorf("ECR still has rule %s", reg.Prefix)
		}
	}
	_, err := c.SM.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
	if err == nil {
		t.Errorf("secret %s still exists", name)
	}

	// What the registry holds, by what it can do.
	key := ptcsecret.Key(Region, AccountID, name)
	creds := reg.Emulator.Credentials(reg.Emulator, key)
	if reg.Can.Revokes {
		if want := []string{"v1 (" + reg.RevokedHow + ")"}; !slices.Equal(r.Revoked, want) {
			t.Errorf("revoked %v, want %v: the first token only, which the second rotation retired", r.Revoked, want)
		}
		if len(r.StillLogIn) != 0 {
			t.Errorf("after Delete %v still log in", r.StillLogIn)
		}
	} else {
		if len(r.Revoked) != 0 {
			t.Errorf("revoked %v: the rotator must never revoke a %s credential", r.Revoked, reg.Title)
		}
		for _, c := range creds {
			if !c.Held {
				t.Errorf("%s credential %s was revoked", reg.Title, c.Name)
			}
		}
	}
	if reg.Can.Labels {
		n := 0
		for _, c := range creds {
			if c.Version == "" {
				continue
			}
			n++
			if c.Held {
				t.Errorf("%s still holds %s", reg.Title, c.Name)
			}
		}
		if reg.Can.KeepsRevoked && n != len(r.Versions) {
			t.Errorf("%s holds %d tokens of the secret, want the %d minted", reg.Title, n, len(r.Versions))
		}
	}
	// What AWSCURRENT holds after two rotations: each version its own credential; on a slot
	// registry the slot v1 used again (they alternate); where a person stages credentials, the
	// last one staged.
	if len(r.Described) != 3 || r.Current != r.Described[2] || !strings.HasPrefix(r.Current, "v3 ") {
		t.Fatalf("described %q, current %q", r.Described, r.Current)
	}
	what := func(i int) string { return strings.TrimPrefix(r.Described[i], fmt.Sprintf("v%d ", i+1)) }
	if what(0) == what(1) || what(1) == what(2) || strings.HasPrefix(what(2), "(") {
		t.Errorf("versions hold %q", r.Described)
	}
	switch {
	case reg.Can.Slots:
		if what(2) != what(0) {
			t.Errorf("current %q, want v3 in the slot v1 used (%q)", r.Current, r.Described[0])
		}
	case !reg.Can.Mints:
		if len(r.Staged) != 2 || what(2) != r.Staged[1] || what(1) != r.Staged[0] {
			t.Errorf("versions hold %q, want the credentials a person staged %q", r.Described, r.Staged)
		}
	}
}

// checkRegions checks a replicated row against the emulators of every Region: one secret served
// rules in each, the rotations ran only in the primary's Region, the replicas caught up after
// each, and the organization never held more than three tokens (one secret's peak).
func checkRegions(t *testing.T, c *Cloud, reg Registry, r Result) {
	t.Helper()
	if want := append([]string{Region}, reg.ReplicaRegions...); !slices.Equal(r.Regions, want) {
		t.Errorf("regions %v, want %v", r.Regions, want)
	}
	if len(r.ReplicaWaits) != len(r.Rotations) {
		t.Errorf("%d replica waits for %d rotations", len(r.ReplicaWaits), len(r.Rotations))
	}
	if r.PeakOrgTokens < 1 || r.PeakOrgTokens > 3 {
		t.Errorf("the organization held at most %d tokens at once, want 1..3 (one secret for every Region)", r.PeakOrgTokens)
	}
	for _, region := range reg.ReplicaRegions {
		ecrCalls := c.ECRServers.Region(region).Calls()
		for _, op := range []string{"CreatePullThroughCacheRule", "ValidatePullThroughCacheRule", "DeletePullThroughCacheRule"} {
			if !slices.Contains(ecrCalls, op) {
				t.Errorf("ECR in %s got no %s: %v", region, op, ecrCalls)
			}
		}
		// Rotation stays in the primary: nothing wrote a version in a replica Region.
		for _, op := range c.SecretsManagers.Region(region).Calls() {
			if op == "PutSecretValue" || op == "UpdateSecretVersionStage" || op == "RotateSecret" {
				t.Errorf("Secrets Manager in %s got %s: replicas are written only by replication", region, op)
			}
		}
	}
}

// updateRegions moves a replicated set from one replica Region to the other and changes its
// Description, in place, through the real provisioner bootstrap: the new Region gets a replica
// and a rule reading it, the old one loses both, the primary keeps its rule; then Delete leaves
// nothing in any Region.
func updateRegions(ctx context.Context, t *testing.T, c *Cloud) {
	reg, ok := c.Registry("docker-hub-org-3-regions")
	if !ok {
		t.Fatal("no three-Region row")
	}
	src, err := c.SM.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(SourcePrefix + "update-regions"), SecretString: aws.String(reg.Emulator.Source(2))})
	if err != nil {
		t.Fatal(err)
	}
	dublin, sydney := ReplicaRegions[0], ReplicaRegions[1]
	props := map[string]any{"EcrRepositoryPrefix": "moving", "UpstreamRegistry": reg.Name, "UpstreamRegistryUrl": reg.URL,
		"SourceSecretArn": aws.ToString(src.ARN), "RecoveryWindowInDays": "0", "ReplicaRegions": []any{dublin}, "Description": "first"}
	created, err := c.CustomResourceFor(ctx, "MovingCache", "Create", "", props)
	if err != nil || created.Status != "SUCCESS" {
		t.Fatalf("Create: %v %s %s", err, created.Status, created.Reason)
	}
	if err := c.SecretsManager.WaitRotation(ctx, created.Data["SecretArn"]); err != nil {
		t.Fatal(err)
	}
	moved := maps(props)
	moved["ReplicaRegions"], moved["Description"] = []any{sydney}, "second"
	updated, err := c.UpdateFor(ctx, "MovingCache", created.PhysicalResourceID, moved, props)
	if err != nil || updated.Status != "SUCCESS" || updated.PhysicalResourceID != created.PhysicalResourceID {
		t.Fatalf("Update: %v %s %s (physical id %s -> %s)", err, updated.Status, updated.Reason, created.PhysicalResourceID, updated.PhysicalResourceID)
	}
	if got, want := updated.Data["Regions"], Region+","+sydney; got != want {
		t.Errorf("Data.Regions after the Update = %q, want %q", got, want)
	}
	arn := created.Data["SecretArn"]
	d, err := c.SM.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(d.Description) != "second" || len(d.ReplicationStatus) != 1 || aws.ToString(d.ReplicationStatus[0].Region) != sydney {
		t.Errorf("after the Update the primary says description %q, replication %v", aws.ToString(d.Description), d.ReplicationStatus)
	}
	for region, want := range map[string]bool{Region: true, dublin: false, sydney: true} {
		out, err := c.ECRIn(region).DescribePullThroughCacheRules(ctx, &ecr.DescribePullThroughCacheRulesInput{EcrRepositoryPrefixes: []string{"moving"}})
		switch {
		case want && (err != nil || len(out.PullThroughCacheRules) != 1):
			t.Errorf("no rule in %s after the Update: %v", region, err)
		case want && aws.ToString(out.PullThroughCacheRules[0].CredentialArn) != replicaARN(arn, region):
			t.Errorf("the rule in %s reads %s, not its Region's copy", region, aws.ToString(out.PullThroughCacheRules[0].CredentialArn))
		case !want && err == nil:
			t.Errorf("the rule in %s is still there after its Region was removed", region)
		}
	}
	if _, err := c.SMIn(dublin).DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(replicaARN(arn, dublin))}); err == nil {
		t.Errorf("the replica in %s is still there after its Region was removed", dublin)
	}
	deleted, err := c.CustomResourceFor(ctx, "MovingCache", "Delete", created.PhysicalResourceID, moved)
	if err != nil || deleted.Status != "SUCCESS" {
		t.Fatalf("Delete: %v %s %s", err, deleted.Status, deleted.Reason)
	}
	for _, region := range c.Regions {
		if _, err := c.SMIn(region).DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(replicaARN(arn, region))}); err == nil {
			t.Errorf("the secret is still there in %s after Delete", region)
		}
		if _, err := c.ECRIn(region).DescribePullThroughCacheRules(ctx, &ecr.DescribePullThroughCacheRulesInput{EcrRepositoryPrefixes: []string{"moving"}}); err == nil {
			t.Errorf("the rule is still there in %s after Delete", region)
		}
	}
}
