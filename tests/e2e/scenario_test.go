package e2e

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/ptc-credentials/ptc-credentials/internal/provision"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/registryauth"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/registries"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/rotationtest"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
)

func newPrefix() string { return "e2e" + strings.ReplaceAll(rotationtest.NewID(), "-", "")[:8] }

// TestProvisionRotateDelete is the life of one Custom::PullThroughCache, every step through the
// real bootstraps under aws-lambda-rie: Create, the testSecret Secrets Manager runs when rotation
// is turned on, two full rotations, Delete.
func TestProvisionRotateDelete(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	prov := w.start(fnProvisioner, nil)
	rot := w.start(fnRotator, nil)
	prefix := newPrefix()
	name := ptcsecret.Prefix + prefix
	props := w.props(prefix)

	// --- Create ---
	created, inv := w.customResource(prov, "Create", "", props)
	if created.Status != "SUCCESS" {
		t.Fatalf("Create answered %s: %s\noutput:\n%s", created.Status, created.Reason, prov.out.String())
	}
	// Wrap returns nil once CloudFormation has its answer, so Lambda records no function error.
	if inv.Status != http.StatusOK || strings.TrimSpace(string(inv.Body)) != "null" {
		t.Errorf("Create invocation answered %d %s, want 200 null", inv.Status, inv.Body)
	}
	if created.Method != http.MethodPut || created.Query.Get("X-Amz-Signature") != presignedSig {
		t.Errorf("answer sent as %s to a URL without the pre-signed query", created.Method)
	}
	if created.PhysicalResourceID != provision.PhysicalID(prefix, name) || created.StackID != w.stackID || created.LogicalResourceID != "Cache" {
		t.Errorf("answer ids: physical %q stack %q logical %q", created.PhysicalResourceID, created.StackID, created.LogicalResourceID)
	}
	secretARN := created.Data["SecretArn"]
	wantURI := testenv.AccountID + ".dkr.ecr." + testenv.Region + ".amazonaws.com/" + prefix
	if !strings.Contains(secretARN, ":secret:"+name) || created.Data["SecretName"] != name ||
		created.Data["RepositoryUriPrefix"] != wantURI || created.Data["UpstreamRegistryUrl"] != w.hubURL {
		t.Fatalf("Create Data %v", created.Data)
	}

	sec := w.describe(name)
	if sec == nil || aws.ToString(sec.ARN) != secretARN {
		t.Fatalf("secret %s not in moto under %s", name, secretARN)
	}
	tags := map[string]string{}
	for _, tg := range sec.Tags {
		tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	if tags[ptcsecret.TagUpstream] != w.reg.Name || tags[ptcsecret.TagSourceSecret] != w.sourceARN ||
		tags[ptcsecret.TagManagedBy] != w.stackID+"/Cache" || tags[ptcsecret.TagRegistryURL] != w.hubURL || tags["team"] != "platform" {
		t.Errorf("tags %v", tags)
	}
	if sec.KmsKeyId != nil {
		t.Errorf("secret encrypted with %s; ECR needs the default aws/secretsmanager key", aws.ToString(sec.KmsKeyId))
	}
	// RotationEnabled is not checked here: moto 5.2.1 sets it only for AutomaticallyAfterDays,
	// and the provisioner (rightly) sends a ScheduleExpression (see motoEnableRotation).
	if aws.ToString(sec.RotationLambdaARN) != rotatorARN {
		t.Errorf("rotation function %q, want %q", aws.ToString(sec.RotationLambdaARN), rotatorARN)
	}
	rules := w.ecrSrv.Rules()
	if len(rules) != 1 || rules[0].EcrRepositoryPrefix != prefix || rules[0].CredentialARN != secretARN ||
		rules[0].UpstreamRegistry != w.reg.Name || rules[0].UpstreamRegistryURL != w.hubURL {
		t.Fatalf("ECR rules %+v", rules)
	}
	valid, err := w.ecr.ValidatePullThroughCacheRule(w.ctx, &ecr.ValidatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String(prefix)})
	if err != nil || !valid.IsValid {
		t.Fatalf("ValidatePullThroughCacheRule: %v, failure %q", err, aws.ToString(valid.Failure))
	}
	if n := len(w.tokens(name)); n != 1 {
		t.Fatalf("after Create %d tokens, want the first one only", n)
	}
	w.noteTokens()

	// --- The testSecret Secrets Manager runs on RotateSecret(RotateImmediately=false) ---
	// moto staged it (a pending copy of the current value) but its Lambda backend ran nothing;
	// send the rotator the event Secrets Manager sends, then drop the copy as Secrets Manager does.
	d := w.describe(name)
	pending := testenv.VersionWith(d.VersionIdsToStages, "AWSPENDING")
	if pending == "" || slices.Contains(d.VersionIdsToStages[pending], "AWSCURRENT") {
		t.Fatalf("RotateSecret(RotateImmediately=false) staged no separate pending version: %v", d.VersionIdsToStages)
	}
	w.motoEnableRotation(secretARN, pending)
	w.mustSucceed(rot, "testSecret after Create", rotationEvent("testSecret", secretARN, pending, rotationtest.NewID()))
	if _, err := w.sm.UpdateSecretVersionStage(w.ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String(secretARN), VersionStage: aws.String("AWSPENDING"), RemoveFromVersionId: aws.String(pending),
	}); err != nil {
		t.Fatal(err)
	}
	if n := len(w.tokens(name)); n != 1 {
		t.Fatalf("testSecret of the pending copy minted: %d tokens", n)
	}
	firstID, first := w.valueAt(name, "AWSCURRENT")
	if first.Username != registries.HubUser {
		t.Errorf("AWSCURRENT username %q", first.Username)
	}
	if err := w.login(first); err != nil {
		t.Fatalf("the first token does not log in: %v", err)
	}

	// --- Rotation 1 ---
	v1 := w.rotate(rot, secretARN)
	stages := w.describe(name).VersionIdsToStages
	if !slices.Contains(stages[v1], "AWSCURRENT") || !slices.Contains(stages[firstID], "AWSPREVIOUS") {
		t.Fatalf("after rotation 1 stages %v (new %s, first %s)", stages, v1, firstID)
	}
	_, second := w.valueAt(name, "AWSCURRENT")
	if second.AccessToken == first.AccessToken {
		t.Fatal("rotation 1 left the token unchanged")
	}
	if err := w.login(second); err != nil {
		t.Fatalf("AWSCURRENT after rotation 1 does not log in: %v", err)
	}
	if err := w.login(first); err != nil {
		t.Fatalf("AWSPREVIOUS must keep working for one generation: %v", err)
	}
	if n := len(w.tokens(name)); n != 2 {
		t.Fatalf("after rotation 1 %d tokens, want current and previous", n)
	}

	// --- Rotation 2: the first token is two generations old now ---
	v2 := w.rotate(rot, secretARN)
	stages = w.describe(name).VersionIdsToStages
	if !slices.Contains(stages[v2], "AWSCURRENT") || !slices.Contains(stages[v1], "AWSPREVIOUS") {
		t.Fatalf("after rotation 2 stages %v", stages)
	}
	_, third := w.valueAt(name, "AWSCURRENT")
	if err := w.login(third); err != nil {
		t.Fatalf("AWSCURRENT after rotation 2 does not log in: %v", err)
	}
	if err := w.login(second); err != nil {
		t.Fatalf("AWSPREVIOUS after rotation 2 does not log in: %v", err)
	}
	if err := w.login(first); !errors.Is(err, registryauth.ErrBadCredentials) {
		t.Fatalf("the first token still logs in after two rotations (err %v)", err)
	}
	for _, tk := range w.tokens(name) {
		if tk.Secret == first.AccessToken {
			t.Fatalf("the first token %s is still stored upstream", tk.Name)
		}
	}
	if n := len(w.tokens(name)); n != 2 {
		t.Fatalf("after rotation 2 %d tokens, want current and previous", n)
	}

	// --- Delete ---
	deleted, _ := w.customResource(prov, "Delete", created.PhysicalResourceID, props)
	if deleted.Status != "SUCCESS" || deleted.PhysicalResourceID != created.PhysicalResourceID {
		t.Fatalf("Delete answered %s %q: %s", deleted.Status, deleted.PhysicalResourceID, deleted.Reason)
	}
	if s := w.describe(secretARN); s != nil {
		t.Errorf("secret still in moto after Delete with RecoveryWindowInDays 0 (deleted date %v)", s.DeletedDate)
	}
	if rules := w.ecrSrv.Rules(); len(rules) != 0 {
		t.Errorf("rules left behind: %+v", rules)
	}
	if n := len(w.tokens(name)); n != 0 {
		t.Errorf("%d upstream tokens left behind", n)
	}
	for _, v := range []ptcsecret.Value{second, third} {
		if err := w.login(v); !errors.Is(err, registryauth.ErrBadCredentials) {
			t.Errorf("a token of the deleted secret still logs in (err %v)", err)
		}
	}

	// Both functions logged JSON through the RIE, the rotator its EMF metrics too (the
	// provisioner emits only ProvisionFailed), and nothing secret.
	for _, f := range []*lambdaFn{prov, rot} {
		if out := f.out.String(); !strings.Contains(out, `"level":"INFO"`) {
			t.Errorf("%s output has no JSON log record:\n%s", f.name, out)
		}
	}
	if out := rot.out.String(); !strings.Contains(out, `"_aws":{"CloudWatchMetrics"`) {
		t.Errorf("rotator output has no EMF line:\n%s", out)
	}
	w.assertNoLeak()
	if n := len(w.tokenSecrets); n != 3 {
		t.Errorf("the leak scan covered %d tokens, want the 3 minted", n)
	}
}
