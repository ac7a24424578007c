package e2e

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/ptc-credentials/ptc-credentials/internal/awsenv"
	"github.com/ptc-credentials/ptc-credentials/internal/pinned"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/registryauth"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/cfnemu"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/dockerhubemu"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/ecremu"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/localcloud"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/registries"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/rotationtest"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
)

// presignedSig is the signature part of the ResponseURL, a credential in real life: planted,
// distinctive, so a leak scan can find it anywhere.
const presignedSig = "PLANTED-e2e-presigned-signature-77c0"

// world is one test's set of servers: the Docker Hub emulator (the registries descriptor's), the
// ECR pull-through cache emulator and CloudFormation's response bucket, all in the test process,
// plus a source secret in the shared moto_server.
type world struct {
	t   *testing.T
	ctx context.Context
	sm  *secretsmanager.Client

	reg    *registries.Emulator
	hub    *dockerhubemu.Server
	hubURL string
	ecrSrv *ecremu.Server
	ecrURL string
	ecr    *ecr.Client
	cfn    *localcloud.ResponseBucket
	cfnURL string
	// cfnAPI is CloudFormation's API: the provisioner asks it whether each request is real.
	cfnAPI    *cfnemu.Server
	cfnAPIURL string

	sourceARN string
	stackID   string

	fns          []*lambdaFn
	invocations  []invocation
	mu           sync.Mutex
	tokenSecrets map[string]bool // every token secret seen, revoked ones included
	ownerKeyARN  string
}

// newWorld starts the servers. wrapHub, when set, stands in front of the Docker Hub emulator
// (the timeout test makes it hang).
func newWorld(t *testing.T, wrapHub func(http.Handler) http.Handler) *world {
	t.Helper()
	w := &world{t: t, ctx: testenv.Context(t), sm: moto.SecretsManager(), tokenSecrets: map[string]bool{}}
	w.reg = registries.DockerHub.MustStart(t, registries.Options{Wrap: wrapHub})
	w.hub, w.hubURL = w.reg.Hub, w.reg.URL

	// ECR's ValidatePullThroughCacheRule logs in upstream with the secret's current value, as the
	// real service does; the emulator reads the secret from moto.
	w.ecrSrv = ecremu.New(ecremu.Options{
		SecretsManager: w.sm,
		Verify: func(ctx context.Context, _, registryURL string, cred ptcsecret.Value) error {
			return registryauth.Check(ctx, nil, registryauth.Target{Registry: registryURL, Repository: w.reg.CheckRepository},
				registryauth.Credential{Username: cred.Username, Password: cred.AccessToken})
		},
	})
	ecrSrv := httptest.NewServer(w.ecrSrv)
	t.Cleanup(ecrSrv.Close)
	w.ecrURL = ecrSrv.URL
	w.ecr = ecr.NewFromConfig(testenv.AWSConfig(), func(o *ecr.Options) { o.BaseEndpoint = aws.String(ecrSrv.URL) })

	w.cfn = &localcloud.ResponseBucket{}
	cfnSrv := httptest.NewServer(w.cfn)
	t.Cleanup(cfnSrv.Close)
	w.cfnURL = cfnSrv.URL
	w.cfnAPI = cfnemu.New(cfnemu.Options{Region: testenv.Region, Credentials: map[string]string{"AKIDE2ETEST": "e2e-test-secret-key"}})
	cfnAPISrv := httptest.NewServer(w.cfnAPI)
	t.Cleanup(cfnAPISrv.Close)
	w.cfnAPIURL = cfnAPISrv.URL

	id := rotationtest.NewID()
	src, err := w.sm.CreateSecret(w.ctx, &secretsmanager.CreateSecretInput{
		Name:         aws.String("ptc-source/e2e-" + id[:8]),
		SecretString: aws.String(w.reg.Source(0)),
	})
	if err != nil {
		t.Fatal(err)
	}
	w.sourceARN = aws.ToString(src.ARN)
	// The ownership-proof key, as the template's OwnerKeySecret holds it.
	key, err := w.sm.CreateSecret(w.ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String("ptc-credentials/e2e-" + id[:8] + "/owner-key"), SecretString: aws.String(testenv.OwnerKey),
	})
	if err != nil {
		t.Fatal(err)
	}
	w.ownerKeyARN = aws.ToString(key.ARN)
	w.stackID = "arn:aws:cloudformation:us-east-1:" + testenv.AccountID + ":stack/ptc-e2e/" + id
	return w
}

// start runs a function under RIE wired to this world's servers, the way template.yaml wires it
// in AWS: endpoints through the SDK's own AWS_ENDPOINT_URL_<SERVICE> variables.
func (w *world) start(fn string, extra map[string]string) *lambdaFn {
	w.t.Helper()
	env := baseEnv(w.t, fn)
	env["AWS_ENDPOINT_URL_SECRETS_MANAGER"] = moto.Endpoint
	env["AWS_ENDPOINT_URL_ECR"] = w.ecrURL
	env["LOG_LEVEL"] = "DEBUG"
	// The one emulator switch: the registry emulator stands in for Docker Hub's pinned hosts.
	env[awsenv.LoopbackStandinsVar] = w.reg.Standins().String()
	if fn == fnProvisioner {
		env["ROTATION_LAMBDA_ARN"] = rotatorARN
		env["ROTATOR_ROLE_ARN"] = testenv.RotatorRoleARN
		env["PROVISIONER_ROLE_ARN"] = testenv.ProvisionerRoleARN
		env["OWNER_KEY_SECRET_ARN"] = w.ownerKeyARN
		env["AWS_ENDPOINT_URL_CLOUDFORMATION"] = w.cfnAPIURL
		// ... and the response bucket, a loopback server here, for CloudFormation's.
		env[awsenv.LoopbackStandinsVar] = pinned.NewStandins(w.reg.URL, w.cfnURL).String()
	}
	for k, v := range extra {
		env[k] = v
	}
	f := startFunction(w.t, fn, env)
	w.fns = append(w.fns, f)
	return f
}

// props are the ResourceProperties of a Custom::PullThroughCache, as CloudFormation sends them:
// every scalar a string, ServiceToken included.
func (w *world) props(prefix string) map[string]any {
	return map[string]any{
		"ServiceToken":         "arn:aws:lambda:us-east-1:" + testenv.AccountID + ":function:ptc-provisioner",
		"EcrRepositoryPrefix":  prefix,
		"UpstreamRegistry":     w.reg.Name,
		"UpstreamRegistryUrl":  w.hubURL,
		"SourceSecretArn":      w.sourceARN,
		"RotationSchedule":     "rate(30 days)",
		"RecoveryWindowInDays": "0",
		"Tags":                 []any{map[string]any{"Key": "team", "Value": "platform"}},
	}
}

// cfnEvent is a custom-resource request exactly as CloudFormation sends it to the function
// (field names of the Lambda event; the ResponseURL shaped like the pre-signed S3 URL).
func (w *world) cfnEvent(requestType, physicalID string, props map[string]any) map[string]any {
	reqID := rotationtest.NewID()
	ev := map[string]any{
		"RequestType":  requestType,
		"ServiceToken": props["ServiceToken"],
		"ResponseURL": w.cfnURL + "/" + url.PathEscape(w.stackID+"|Cache|"+reqID) +
			"?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20260101T000000Z&X-Amz-SignedHeaders=host&X-Amz-Expires=7200" +
			"&X-Amz-Credential=AKIAEXAMPLE%2F20260101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=" + presignedSig,
		"StackId":            w.stackID,
		"RequestId":          reqID,
		"LogicalResourceId":  "Cache",
		"ResourceType":       "Custom::PullThroughCache",
		"ResourceProperties": props,
	}
	if physicalID != "" {
		ev["PhysicalResourceId"] = physicalID
	}
	// CloudFormation shows the resource in progress while it waits for the answer.
	w.cfnAPI.Begin(w.stackID, "Cache", "Custom::PullThroughCache", requestType, physicalID)
	return ev
}

// customResource sends one request through the provisioner and returns the one answer
// CloudFormation received for it (failing unless there is exactly one).
func (w *world) customResource(prov *lambdaFn, requestType, physicalID string, props map[string]any) (localcloud.Answer, invocation) {
	w.t.Helper()
	ev := w.cfnEvent(requestType, physicalID, props)
	inv := w.invoke(prov, ev)
	puts := w.cfn.ForRequest(ev["RequestId"].(string))
	if len(puts) != 1 {
		w.t.Fatalf("%s: CloudFormation got %d answers, want exactly one; RIE answered %d %s\noutput:\n%s", requestType, len(puts), inv.Status, inv.Body, prov.out.String())
	}
	w.cfnAPI.End(w.stackID, "Cache", requestType, physicalID, puts[0].Status == "SUCCESS", puts[0].PhysicalResourceID)
	return puts[0], inv
}

// invoke is lambdaFn.invoke, remembered for the leak scan.
func (w *world) invoke(f *lambdaFn, event any) invocation {
	w.t.Helper()
	inv := f.invoke(w.t, event)
	w.mu.Lock()
	w.invocations = append(w.invocations, inv)
	w.mu.Unlock()
	return inv
}

// rotationEvent is the event Secrets Manager sends the rotation function for one step.
func rotationEvent(step, secretID, token, rotationToken string) map[string]string {
	return map[string]string{"Step": step, "SecretId": secretID, "ClientRequestToken": token, "RotationToken": rotationToken}
}

// rotate runs one full rotation as Secrets Manager does: stage an empty AWSPENDING version, then
// invoke the rotator with the four steps in order, stopping at the first failure.
//
// The staging uses testenv.BeginRotation, i.e. RotateSecret with testenv.FakeRotationLambdaARN, a
// function moto does not have: moto stages the pending version and only then fails the lookup.
// RotateSecret with the real (registered) rotator ARN would not do: with RotateImmediately=true
// moto's simple Lambda backend "runs" the four steps as no-ops and then moves AWSCURRENT onto the
// still empty pending version itself; with RotateImmediately=false it stages a copy of the
// current value, which createSecret rightly leaves alone. The price: moto now records the fake
// ARN as the secret's rotation function, which only a later Update would notice.
func (w *world) rotate(rot *lambdaFn, secretARN string) string {
	w.t.Helper()
	token := rotationtest.NewID()
	if err := testenv.BeginRotation(w.ctx, w.sm, secretARN, token, true); err != nil {
		w.t.Fatalf("staging the pending version: %v", err)
	}
	rotationToken := rotationtest.NewID()
	for _, step := range []string{"createSecret", "setSecret", "testSecret", "finishSecret"} {
		w.mustSucceed(rot, step, rotationEvent(step, secretARN, token, rotationToken))
	}
	w.noteTokens()
	return token
}

// motoEnableRotation repeats, in moto's dialect, the RotateSecret the provisioner made when it
// turned rotation on. moto 5.2.1 (secretsmanager/models.py rotate_secret) marks rotation enabled
// only when RotationRules has AutomaticallyAfterDays and ignores ScheduleExpression, which the
// provisioner sends (rate(30 days) here); the rotator then rightly refuses the secret ("does not
// have rotation enabled"). Same function, same pending version id, same RotateImmediately=false,
// the schedule as days: afterwards moto holds what Secrets Manager holds after the provisioner's
// own call, and moto again "runs" testSecret as a no-op.
func (w *world) motoEnableRotation(secretARN, pendingVersion string) {
	w.t.Helper()
	if _, err := w.sm.RotateSecret(w.ctx, &secretsmanager.RotateSecretInput{
		SecretId:           aws.String(secretARN),
		ClientRequestToken: aws.String(pendingVersion),
		RotationLambdaARN:  aws.String(rotatorARN),
		RotationRules:      &smtypes.RotationRulesType{AutomaticallyAfterDays: aws.Int64(30)},
		RotateImmediately:  aws.Bool(false),
	}); err != nil {
		w.t.Fatalf("enabling rotation in moto's dialect: %v", err)
	}
	if d := w.describe(secretARN); !aws.ToBool(d.RotationEnabled) || !slices.Contains(d.VersionIdsToStages[pendingVersion], "AWSPENDING") {
		w.t.Fatalf("moto did not enable rotation: enabled %v, stages %v", aws.ToBool(d.RotationEnabled), d.VersionIdsToStages)
	}
}

func (w *world) mustSucceed(f *lambdaFn, what string, event any) invocation {
	w.t.Helper()
	inv := f.mustSucceed(w.t, what, event)
	w.mu.Lock()
	w.invocations = append(w.invocations, inv)
	w.mu.Unlock()
	return inv
}

// noteTokens remembers every token the Docker Hub emulator issued so far (revoked ones too),
// for the leak scan and its coverage check.
func (w *world) noteTokens() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.reg.PlantedSecrets() {
		if s != w.reg.SourceSecret {
			w.tokenSecrets[s] = true
		}
	}
}

// tokens returns the tokens the registry still holds labelled for secretName.
func (w *world) tokens(secretName string) []registries.Credential {
	return w.reg.Held(ptcsecret.Key(testenv.Region, testenv.AccountID, secretName))
}

// describe returns the secret, or nil when moto has no such secret.
func (w *world) describe(id string) *secretsmanager.DescribeSecretOutput {
	w.t.Helper()
	out, err := w.sm.DescribeSecret(w.ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)})
	var nf *smtypes.ResourceNotFoundException
	if errors.As(err, &nf) {
		return nil
	}
	if err != nil {
		w.t.Fatal(err)
	}
	return out
}

// valueAt reads the version carrying stage (naming the version: see testenv.ValueOf).
func (w *world) valueAt(secretID, stage string) (string, ptcsecret.Value) {
	w.t.Helper()
	d := w.describe(secretID)
	if d == nil {
		w.t.Fatalf("secret %s is gone", secretID)
	}
	id := testenv.VersionWith(d.VersionIdsToStages, stage)
	if id == "" {
		w.t.Fatalf("no version of %s is %s: %v", secretID, stage, d.VersionIdsToStages)
	}
	s, err := testenv.ValueOf(w.ctx, w.sm, secretID, id)
	if err != nil {
		w.t.Fatal(err)
	}
	v, err := ptcsecret.Parse(s)
	if err != nil {
		w.t.Fatalf("%s of %s: %v", stage, secretID, err)
	}
	return id, v
}

// login runs the registry's token handshake with v, as ECR does when it pulls.
func (w *world) login(v ptcsecret.Value) error { return w.reg.Login(w.ctx, v) }

// assertNoLeak scans every RIE output, invoke answer and CloudFormation PUT for the hub password,
// every token issued and the ResponseURL signature.
func (w *world) assertNoLeak() {
	w.t.Helper()
	w.noteTokens()
	var text strings.Builder
	for _, f := range w.fns {
		text.WriteString(f.out.String())
	}
	w.mu.Lock()
	for _, inv := range w.invocations {
		text.Write(inv.Body)
	}
	planted := []string{w.reg.SourceSecret, presignedSig}
	for s := range w.tokenSecrets {
		planted = append(planted, s)
	}
	w.mu.Unlock()
	for _, p := range w.cfn.All() {
		text.WriteString(p.Body)
	}
	for _, p := range planted {
		if p != "" && strings.Contains(text.String(), p) {
			w.t.Errorf("a planted secret (starts %q) leaked into RIE output, an invoke answer or a CloudFormation answer", p[:min(6, len(p))])
		}
	}
}
