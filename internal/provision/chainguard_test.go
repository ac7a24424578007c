package provision_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/ptc-credentials/ptc-credentials/internal/provision"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/rotation"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/ecremu"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/registries"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/rotationtest"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
)

// TestChainguardCreateRotateDelete: the custom resource for chainguard, whose source secret
// holds no secret, refuses a schedule longer than half the pull tokens' lifetime, then creates the secret with a pull token minted through the role's web identity
// token, the rotator rotates it twice keeping one generation, ECR validates the rule, and
// Delete removes the secret, the rule and every identity ever minted for it — leaving another
// secret's identity alone. Nothing the emulators issued appears in logs or errors.
func TestChainguardCreateRotateDelete(t *testing.T) {
	ctx := testenv.Context(t)
	sm := moto.SecretsManager()
	cg := registries.Chainguard.MustStart(t, registries.Options{})
	provs := map[string]upstream.Provider{ptcsecret.UpstreamChainguard: cg.Provider}
	logs := &rotationtest.SyncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, nil))
	rot := &rotation.Rotator{SM: sm, Providers: provs, Logger: logger, Standins: cg.Standins()}
	rsm := &testenv.RotatingSecretsManager{Client: sm, Invoke: func(ctx context.Context, step, id, token string) error {
		return rot.Handle(ctx, rotation.Event{Step: rotation.Step(step), SecretID: id, ClientRequestToken: token})
	}}
	ecrSrv := ecremu.New(ecremu.Options{SecretsManager: sm, Verify: func(ctx context.Context, _, _ string, cred ptcsecret.Value) error {
		return cg.Login(ctx, cred)
	}})
	hs := httptest.NewServer(ecrSrv)
	t.Cleanup(hs.Close)
	ecrc := ecr.NewFromConfig(testenv.AWSConfig(), func(o *ecr.Options) { o.BaseEndpoint = aws.String(hs.URL); o.RetryMaxAttempts = 1 })
	id := rotationtest.NewID()
	src, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("ptc-source/cg-" + id[:8]), SecretString: aws.String(cg.Source(0))})
	if err != nil {
		t.Fatal(err)
	}
	p := &provision.Provisioner{SM: rsm, ECR: ecrc, Providers: provs, RotationLambdaARN: testenv.FakeRotationLambdaARN, Logger: logger,
		RotatorRoleARN: testenv.RotatorRoleARN, ProvisionerRoleARN: testenv.ProvisionerRoleARN, OwnerKey: provision.StaticOwnerKey([]byte(testenv.OwnerKey)),
		Standins: cg.Standins()}
	prefix := "cg" + strings.ReplaceAll(id, "-", "")[:8]
	name := ptcsecret.Prefix + prefix
	props := map[string]any{
		"ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:provisioner", "EcrRepositoryPrefix": prefix,
		"UpstreamRegistry": "chainguard", "UpstreamRegistryUrl": cg.URL, "SourceSecretArn": aws.ToString(src.ARN),
		"RotationSchedule": "rate(7 days)", "RecoveryWindowInDays": "0",
	}
	stack := "arn:aws:cloudformation:us-east-1:123456789012:stack/ptc-test/" + id
	var errs []error
	do := func(typ, phys string) provision.Result {
		t.Helper()
		res, err := p.Handle(ctx, provision.Request{Type: typ, StackID: stack, LogicalID: "Chainguard", PhysicalID: phys, Properties: props})
		if err != nil {
			errs = append(errs, err)
			t.Fatalf("%s: %v", typ, err)
		}
		return res
	}
	key := ptcsecret.Key(testenv.Region, testenv.AccountID, name)
	mine := func() []string {
		var out []string
		for _, c := range cg.Held(key) {
			out = append(out, c.Username)
		}
		return out
	}
	// Another secret's pull token in the same group: Delete must not touch it.
	other, err := cg.Provider.New([]byte(cg.Source(0)), upstream.Options{RegistryURL: cg.URL})
	if err != nil {
		t.Fatal(err)
	}
	otherKey := ptcsecret.Key(testenv.Region, testenv.AccountID, ptcsecret.Prefix+"someone-else")
	if _, err := other.Mint(ctx, upstream.MintRequest{Label: ptcsecret.Label(otherKey, "v1")}); err != nil {
		t.Fatal(err)
	}

	// A schedule that lets a pull token lapse before the next rotation is refused before
	// anything is minted.
	props["RotationSchedule"] = "rate(16 days)"
	_, err = p.Handle(ctx, provision.Request{Type: "Create", StackID: stack, LogicalID: "Chainguard", Properties: props})
	if err == nil || !strings.Contains(err.Error(), "RotationSchedule") || !strings.Contains(err.Error(), "at most every 360h0m0s") {
		t.Fatalf("rate(16 days) with 720-hour pull tokens: %v", err)
	}
	errs = append(errs, err)
	if n := len(mine()); n != 0 {
		t.Fatalf("the refused Create minted %d pull tokens", n)
	}
	props["RotationSchedule"] = "rate(15 days)"

	res := do("Create", "")
	if n := len(mine()); n != 1 {
		t.Fatalf("after Create %d pull tokens, want 1", n)
	}
	for range 2 {
		if _, err := rsm.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String(name), RotationLambdaARN: aws.String(testenv.FakeRotationLambdaARN)}); err != nil {
			t.Fatal(err)
		}
	}
	if f := rsm.Failures(); len(f) != 0 {
		t.Fatalf("rotations failed: %v", f)
	}
	if n := len(mine()); n != 2 {
		t.Fatalf("after two rotations %d pull tokens, want current and previous", n)
	}
	if _, err := ecrc.ValidatePullThroughCacheRule(ctx, &ecr.ValidatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String(prefix)}); err != nil {
		t.Fatalf("ECR cannot validate the rule: %v", err)
	}
	do("Delete", res.PhysicalID)
	if ids := mine(); len(ids) != 0 {
		t.Fatalf("Delete left pull tokens %v", ids)
	}
	if n := len(cg.Held(otherKey)); n != 1 {
		t.Errorf("Delete touched another secret's pull token (%d left)", n)
	}
	if got := len(cg.Chainguard.Deleted()); got != 3 {
		t.Errorf("%d identities deleted, want 3 (the first, and one per rotation)", got)
	}
	text := logs.String()
	for _, e := range errs {
		text += e.Error()
	}
	for _, s := range cg.PlantedSecrets() {
		if strings.Contains(text, s) {
			t.Errorf("an issued token (%.10s…) leaked", s)
		}
	}
	if strings.Contains(text, "eyJ") {
		t.Error("a JWT appears in the logs")
	}
}
