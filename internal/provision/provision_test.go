package provision_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/ptc-credentials/ptc-credentials/internal/provision"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/registryauth"
	"github.com/ptc-credentials/ptc-credentials/internal/rotation"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/dockerhubemu"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/ecremu"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/rotationtest"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/providers"
)

var moto *testenv.Moto

func TestMain(m *testing.M) { os.Exit(testenv.RunWithMoto(m, &moto)) }

const (
	hubUser     = "ptc-prov-user"
	hubPassword = "PLANTED-prov-password-91c2"
)

// faultySM fails the named operations once each (a real call is not made), over moto plus the
// rotation invoker.
type faultySM struct {
	*testenv.RotatingSecretsManager
	mu   sync.Mutex
	fail map[string]error
	// sourceARN is the source secret: "GetSource" fails only its GetSecretValue.
	sourceARN string
}

func (f *faultySM) take(op string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err, ok := f.fail[op]; ok {
		delete(f.fail, op)
		return err
	}
	return nil
}

func (f *faultySM) CreateSecret(ctx context.Context, in *secretsmanager.CreateSecretInput, o ...func(*secretsmanager.Options)) (*secretsmanager.CreateSecretOutput, error) {
	if err := f.take("CreateSecret"); err != nil {
		return nil, err
	}
	return f.RotatingSecretsManager.CreateSecret(ctx, in, o...)
}

func (f *faultySM) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, o ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	if aws.ToString(in.SecretId) == f.sourceARN {
		if err := f.take("GetSource"); err != nil {
			return nil, err
		}
	}
	return f.RotatingSecretsManager.GetSecretValue(ctx, in, o...)
}

func (f *faultySM) RotateSecret(ctx context.Context, in *secretsmanager.RotateSecretInput, o ...func(*secretsmanager.Options)) (*secretsmanager.RotateSecretOutput, error) {
	if err := f.take("RotateSecret"); err != nil {
		return nil, err
	}
	return f.RotatingSecretsManager.RotateSecret(ctx, in, o...)
}

func (f *faultySM) DeleteSecret(ctx context.Context, in *secretsmanager.DeleteSecretInput, o ...func(*secretsmanager.Options)) (*secretsmanager.DeleteSecretOutput, error) {
	if err := f.take("DeleteSecret"); err != nil {
		return nil, err
	}
	return f.RotatingSecretsManager.DeleteSecret(ctx, in, o...)
}

type env struct {
	t         *testing.T
	ctx       context.Context
	sm        *secretsmanager.Client
	fsm       *faultySM
	ecrSrv    *ecremu.Server
	ecr       *ecr.Client
	hub       *dockerhubemu.Server
	hubURL    string
	logs      *rotationtest.SyncBuffer
	prov      *provision.Provisioner
	sourceARN string
	stackID   string
	errs      []error
	verifyErr error // makes ECR's ValidatePullThroughCacheRule fail its login
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, ctx: testenv.Context(t), sm: moto.SecretsManager(), logs: &rotationtest.SyncBuffer{}}
	e.hub = dockerhubemu.New(dockerhubemu.Options{}, dockerhubemu.Account{Username: hubUser, Password: hubPassword})
	hubSrv := httptest.NewServer(e.hub)
	t.Cleanup(hubSrv.Close)
	e.hubURL = hubSrv.URL
	logger := slog.New(slog.NewJSONHandler(e.logs, nil))

	rot := &rotation.Rotator{SM: e.sm, Providers: providers.All(), Logger: logger}
	e.fsm = &faultySM{fail: map[string]error{}, RotatingSecretsManager: &testenv.RotatingSecretsManager{
		Client: e.sm,
		Invoke: func(ctx context.Context, step, secretID, token string) error {
			return rot.Handle(ctx, rotation.Event{Step: rotation.Step(step), SecretID: secretID, ClientRequestToken: token})
		},
	}}
	e.ecrSrv = ecremu.New(ecremu.Options{
		SecretsManager: e.sm,
		Verify: func(ctx context.Context, reg, url string, cred ptcsecret.Value) error {
			if e.verifyErr != nil {
				return e.verifyErr
			}
			return registryauth.Check(ctx, nil, registryauth.Target{Registry: url, Repository: "library/alpine"}, registryauth.Credential{Username: cred.Username, Password: cred.AccessToken})
		},
	})
	ecrSrv := httptest.NewServer(e.ecrSrv)
	t.Cleanup(ecrSrv.Close)
	e.ecr = ecr.NewFromConfig(testenv.AWSConfig(), func(o *ecr.Options) {
		o.BaseEndpoint = aws.String(ecrSrv.URL)
		o.RetryMaxAttempts = 1
	})
	id := rotationtest.NewID()
	src, err := e.sm.CreateSecret(e.ctx, &secretsmanager.CreateSecretInput{
		Name:         aws.String("ptc-source/prov-" + id[:8]),
		SecretString: aws.String(`{"username":"` + hubUser + `","password":"` + hubPassword + `","apiUrl":"` + hubSrv.URL + `","allowedSecrets":["ecr-pullthroughcache/"]}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	e.sourceARN = aws.ToString(src.ARN)
	e.fsm.sourceARN = e.sourceARN
	e.stackID = "arn:aws:cloudformation:us-east-1:123456789012:stack/ptc-test/" + id
	e.prov = &provision.Provisioner{
		SM: e.fsm, ECR: e.ecr, Providers: providers.All(), RotationLambdaARN: testenv.FakeRotationLambdaARN, Logger: logger,
	}
	return e
}

func (e *env) props(prefix string) map[string]any {
	return map[string]any{
		"ServiceToken":         "arn:aws:lambda:us-east-1:123456789012:function:provisioner",
		"EcrRepositoryPrefix":  prefix,
		"UpstreamRegistry":     "docker-hub",
		"UpstreamRegistryUrl":  e.hubURL,
		"SourceSecretArn":      e.sourceARN,
		"RotationSchedule":     "rate(30 days)",
		"RecoveryWindowInDays": "0",
		"Tags":                 []any{map[string]any{"Key": "team", "Value": "platform"}},
	}
}

func (e *env) do(typ, physID string, props, old map[string]any) (provision.Result, error) {
	res, err := e.prov.Handle(e.ctx, provision.Request{Type: typ, StackID: e.stackID, LogicalID: "Cache", PhysicalID: physID, Properties: props, OldProperties: old})
	if err != nil {
		e.errs = append(e.errs, err)
	}
	return res, err
}

func (e *env) mustDo(typ, physID string, props, old map[string]any) provision.Result {
	e.t.Helper()
	res, err := e.do(typ, physID, props, old)
	if err != nil {
		e.t.Fatalf("%s: %v", typ, err)
	}
	return res
}

func (e *env) secret(name string) *secretsmanager.DescribeSecretOutput {
	out, err := e.sm.DescribeSecret(e.ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
	var nf *smtypes.ResourceNotFoundException
	if errors.As(err, &nf) {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func (e *env) rule(prefix string) *ecremu.Rule {
	for _, r := range e.ecrSrv.Rules() {
		if r.EcrRepositoryPrefix == prefix {
			return &r
		}
	}
	return nil
}

func (e *env) tokens(secretName string) []dockerhubemu.Token {
	key := ptcsecret.Key(testenv.Region, testenv.AccountID, secretName)
	var out []dockerhubemu.Token
	for _, t := range e.hub.Tokens() {
		if strings.HasPrefix(t.Label, ptcsecret.LabelPrefix(key)) {
			out = append(out, t)
		}
	}
	return out
}

func (e *env) current(name string) ptcsecret.Value {
	e.t.Helper()
	d := e.secret(name)
	id := testenv.VersionWith(d.VersionIdsToStages, "AWSCURRENT")
	s, err := testenv.ValueOf(e.ctx, e.sm, name, id)
	if err != nil {
		e.t.Fatal(err)
	}
	v, err := ptcsecret.Parse(s)
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

func (e *env) mustLogIn(v ptcsecret.Value) {
	e.t.Helper()
	if err := registryauth.Check(e.ctx, nil, registryauth.Target{Registry: e.hubURL, Repository: "library/alpine"}, registryauth.Credential{Username: v.Username, Password: v.AccessToken}); err != nil {
		e.t.Fatalf("AWSCURRENT does not log in: %v", err)
	}
}

func (e *env) assertGone(prefix, name string) {
	e.t.Helper()
	if s := e.secret(name); s != nil && s.DeletedDate == nil {
		e.t.Errorf("secret %s is left behind", name)
	}
	if e.rule(prefix) != nil {
		e.t.Errorf("rule %s is left behind", prefix)
	}
	if n := len(e.tokens(name)); n != 0 {
		e.t.Errorf("%d upstream tokens are left behind", n)
	}
}

func (e *env) assertNoLeak(extra ...string) {
	e.t.Helper()
	planted := append([]string{hubPassword}, extra...)
	for _, tk := range e.hub.Tokens() {
		planted = append(planted, tk.Secret)
	}
	var text strings.Builder
	text.WriteString(e.logs.String())
	for _, err := range e.errs {
		text.WriteString(err.Error())
	}
	for _, f := range e.fsm.Failures() {
		text.WriteString(f.Error())
	}
	for _, p := range planted {
		if strings.Contains(text.String(), p) {
			e.t.Errorf("a planted secret (starts %q) leaked into logs or errors", p[:6])
		}
	}
}

func newPrefix() string { return "hub" + strings.ReplaceAll(rotationtest.NewID(), "-", "")[:8] }

func TestCreateRotateUpdateDelete(t *testing.T) {
	e := newEnv(t)
	prefix := newPrefix()
	name := ptcsecret.Prefix + prefix
	res := e.mustDo("Create", "", e.props(prefix), nil)

	if res.PhysicalID != provision.PhysicalID(prefix, name) {
		t.Fatalf("physical id %q", res.PhysicalID)
	}
	wantURI := "123456789012.dkr.ecr.us-east-1.amazonaws.com/" + prefix
	if res.Data["RepositoryUriPrefix"] != wantURI || res.Data["SecretName"] != name || res.Data["EcrRepositoryPrefix"] != prefix || res.Data["UpstreamRegistryUrl"] != e.hubURL || !strings.Contains(res.Data["SecretArn"], ":secret:"+name) {
		t.Fatalf("data %v", res.Data)
	}
	sec := e.secret(name)
	tags := map[string]string{}
	for _, tg := range sec.Tags {
		tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	if tags[ptcsecret.TagUpstream] != "docker-hub" || tags[ptcsecret.TagSourceSecret] != e.sourceARN || tags[ptcsecret.TagManagedBy] != e.stackID+"/Cache" || tags[ptcsecret.TagRegistryURL] != e.hubURL || tags["team"] != "platform" {
		t.Fatalf("tags %v", tags)
	}
	if sec.KmsKeyId != nil {
		t.Fatalf("secret uses key %s; ECR needs the default aws/secretsmanager key", aws.ToString(sec.KmsKeyId))
	}
	if !aws.ToBool(sec.RotationEnabled) || aws.ToString(sec.RotationLambdaARN) != testenv.FakeRotationLambdaARN {
		t.Fatalf("rotation not enabled: %v %s", aws.ToBool(sec.RotationEnabled), aws.ToString(sec.RotationLambdaARN))
	}
	r := e.rule(prefix)
	if r == nil || r.CredentialARN != res.Data["SecretArn"] || r.UpstreamRegistry != "docker-hub" {
		t.Fatalf("rule %+v", r)
	}
	if f := e.fsm.Failures(); len(f) != 0 {
		t.Fatalf("the testSecret Secrets Manager ran on enabling rotation failed: %v", f)
	}
	if n := len(e.tokens(name)); n != 1 {
		t.Fatalf("want the first token only, have %d", n)
	}
	first := e.current(name)
	e.mustLogIn(first)

	// The rotator finds the provisioner's first token by its label and keeps one generation.
	for range 2 {
		if _, err := e.fsm.RotateSecret(e.ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String(name), RotationLambdaARN: aws.String(testenv.FakeRotationLambdaARN)}); err != nil {
			t.Fatal(err)
		}
	}
	if f := e.fsm.Failures(); len(f) != 0 {
		t.Fatalf("rotations of the provisioned secret failed: %v", f)
	}
	if n := len(e.tokens(name)); n != 2 {
		t.Fatalf("after two rotations want current and previous tokens, have %d", n)
	}
	e.mustLogIn(e.current(name))

	// In-place update: new source secret, schedule and tags.
	src2, err := e.sm.CreateSecret(e.ctx, &secretsmanager.CreateSecretInput{
		Name:         aws.String("ptc-source/prov2-" + prefix),
		SecretString: aws.String(`{"username":"` + hubUser + `","password":"` + hubPassword + `","apiUrl":"` + e.hubURL + `","tokenLifetimeDays":30,"allowedSecrets":["ecr-pullthroughcache/"]}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	before := e.current(name)
	newProps := e.props(prefix)
	newProps["SourceSecretArn"] = aws.ToString(src2.ARN)
	newProps["RotationSchedule"] = "rate(14 days)"
	newProps["Tags"] = []any{map[string]any{"Key": "owner", "Value": "sre"}}
	upd := e.mustDo("Update", res.PhysicalID, newProps, e.props(prefix))
	if upd.PhysicalID != res.PhysicalID {
		t.Fatalf("in-place update changed the physical id to %q", upd.PhysicalID)
	}
	tags = map[string]string{}
	for _, tg := range e.secret(name).Tags {
		tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	if tags["owner"] != "sre" || tags["team"] != "" || tags[ptcsecret.TagSourceSecret] != aws.ToString(src2.ARN) {
		t.Fatalf("tags after update %v", tags)
	}
	// The rotator's facts are not this resource's configuration: Update keeps them (the tested
	// mark in particular, which the next finishSecret needs).
	if tags[ptcsecret.TagTestedVersion] == "" {
		t.Fatalf("Update removed the rotator's %s tag: %v", ptcsecret.TagTestedVersion, tags)
	}
	if after := e.current(name); after.AccessToken == before.AccessToken {
		t.Fatal("a new source secret did not trigger a rotation")
	}
	if f := e.fsm.Failures(); len(f) != 0 {
		t.Fatalf("rotation after the source change failed: %v", f)
	}

	// Delete removes everything, and a second Delete is a no-op success.
	e.mustDo("Delete", res.PhysicalID, newProps, nil)
	e.assertGone(prefix, name)
	e.mustDo("Delete", res.PhysicalID, newProps, nil)
	e.assertNoLeak()
}

func TestCreateFailureAtEachStepLeavesNothing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		inject func(e *env)
		want   string
	}{
		{"source secret unreadable", func(e *env) { e.fsm.fail["GetSource"] = errors.New("AccessDeniedException: injected") }, "reading SourceSecretArn"},
		{"mint fails", func(e *env) { e.hub.Inject("POST", "/v2/access-tokens", 500, 1) }, "minting the first docker-hub token"},
		{"first token cannot log in", func(e *env) { e.hub.Inject("GET", "/token", 401, 1) }, "the first docker-hub token cannot log in"},
		{"CreateSecret fails", func(e *env) { e.fsm.fail["CreateSecret"] = errors.New("LimitExceededException: injected") }, "creating secret"},
		{"CreatePullThroughCacheRule fails", func(e *env) { e.ecrSrv.FailNext("CreatePullThroughCacheRule", "LimitExceededException", 400) }, "creating the pull-through cache rule"},
		{"ECR validation fails", func(e *env) { e.verifyErr = errors.New("upstream login refused") }, "ECR could not use the new credential"},
		{"RotateSecret fails", func(e *env) { e.fsm.fail["RotateSecret"] = errors.New("InvalidRequestException: injected") }, "turning on rotation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			prefix := newPrefix()
			tc.inject(e)
			_, err := e.do("Create", "", e.props(prefix), nil)
			if err == nil {
				t.Fatal("Create succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "everything this request created was removed") {
				t.Fatalf("error %q does not say %q and that it was undone", err, tc.want)
			}
			e.assertGone(prefix, ptcsecret.Prefix+prefix)
			// CloudFormation follows a failed Create with a Delete of the id the FAILED answer
			// carried, which owns nothing.
			e.mustDo("Delete", "failed-create-"+rotationtest.NewID(), e.props(prefix), nil)
			e.assertNoLeak()
		})
	}
}

func TestForeignRuleOrSecretIsNeverAdopted(t *testing.T) {
	e := newEnv(t)
	prefix := newPrefix()
	// Someone else's secret and rule with our prefix.
	foreign, err := e.sm.CreateSecret(e.ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String(ptcsecret.Prefix + "foreign-" + prefix), SecretString: aws.String(`{"username":"x","accessToken":"PLANTED-foreign-value"}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.ecr.CreatePullThroughCacheRule(e.ctx, &ecr.CreatePullThroughCacheRuleInput{
		EcrRepositoryPrefix: aws.String(prefix), UpstreamRegistryUrl: aws.String("registry-1.docker.io"),
		UpstreamRegistry: ecrtypes.UpstreamRegistryDockerHub, CredentialArn: foreign.ARN,
	}); err != nil {
		t.Fatal(err)
	}
	_, err = e.do("Create", "", e.props(prefix), nil)
	if err == nil || !strings.Contains(err.Error(), "already exists") || !strings.Contains(err.Error(), "not managed by this resource") {
		t.Fatalf("Create with a taken prefix: %v", err)
	}
	if r := e.rule(prefix); r == nil || r.CredentialARN != aws.ToString(foreign.ARN) {
		t.Fatalf("the existing rule was changed or removed: %+v", r)
	}
	if s := e.secret(ptcsecret.Prefix + prefix); s != nil {
		t.Fatal("a secret was left behind")
	}
	if n := len(e.tokens(ptcsecret.Prefix + prefix)); n != 0 {
		t.Fatal("a token was left behind")
	}

	// A secret with our name that someone else made.
	prefix2 := newPrefix()
	if _, err := e.sm.CreateSecret(e.ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String(ptcsecret.Prefix + prefix2), SecretString: aws.String(`{"username":"x","accessToken":"PLANTED-foreign-value"}`),
	}); err != nil {
		t.Fatal(err)
	}
	_, err = e.do("Create", "", e.props(prefix2), nil)
	if err == nil || !strings.Contains(err.Error(), "not managed by ptc-credentials") {
		t.Fatalf("Create over a foreign secret: %v", err)
	}
	if s := e.secret(ptcsecret.Prefix + prefix2); s == nil || s.DeletedDate != nil {
		t.Fatal("the foreign secret was deleted")
	}
	// A Delete from another owner leaves our resources alone.
	prefix3 := newPrefix()
	res := e.mustDo("Create", "", e.props(prefix3), nil)
	other := *e
	other.stackID = strings.Replace(e.stackID, "ptc-test", "other-stack", 1)
	if _, err := other.do("Delete", res.PhysicalID, e.props(prefix3), nil); err != nil {
		t.Fatal(err)
	}
	if e.secret(ptcsecret.Prefix+prefix3) == nil || e.rule(prefix3) == nil || len(e.tokens(ptcsecret.Prefix+prefix3)) != 1 {
		t.Fatal("another owner's Delete touched our resources")
	}
	e.assertNoLeak("PLANTED-foreign-value")
}

func TestReplacementUpdateThenDeleteOld(t *testing.T) {
	e := newEnv(t)
	oldPrefix, newPfx := newPrefix(), newPrefix()
	oldRes := e.mustDo("Create", "", e.props(oldPrefix), nil)
	newRes := e.mustDo("Update", oldRes.PhysicalID, e.props(newPfx), e.props(oldPrefix))
	if newRes.PhysicalID == oldRes.PhysicalID || newRes.PhysicalID != provision.PhysicalID(newPfx, ptcsecret.Prefix+newPfx) {
		t.Fatalf("replacement returned %q", newRes.PhysicalID)
	}
	if e.rule(oldPrefix) == nil || e.rule(newPfx) == nil {
		t.Fatal("both sets must exist until CloudFormation deletes the old one")
	}
	// CloudFormation's cleanup: Delete of the old id with the old properties.
	e.mustDo("Delete", oldRes.PhysicalID, e.props(oldPrefix), nil)
	e.assertGone(oldPrefix, ptcsecret.Prefix+oldPrefix)
	if e.rule(newPfx) == nil || len(e.tokens(ptcsecret.Prefix+newPfx)) != 1 {
		t.Fatal("deleting the old set touched the new one")
	}
	e.mustLogIn(e.current(ptcsecret.Prefix + newPfx))

	// A change that needs replacement but keeps the prefix cannot be done safely.
	p := e.props(newPfx)
	p["UpstreamRepositoryPrefix"] = "library"
	_, err := e.do("Update", newRes.PhysicalID, p, e.props(newPfx))
	if err == nil || !strings.Contains(err.Error(), "UpstreamRepositoryPrefix") || !strings.Contains(err.Error(), "change EcrRepositoryPrefix") {
		t.Fatalf("same-prefix replacement: %v", err)
	}
	if e.rule(newPfx) == nil {
		t.Fatal("a refused update removed the rule")
	}
	e.assertNoLeak()
}

func TestDeleteRetriedAfterUpstreamFailureFinishesTheJob(t *testing.T) {
	e := newEnv(t)
	prefix := newPrefix()
	name := ptcsecret.Prefix + prefix
	res := e.mustDo("Create", "", e.props(prefix), nil)
	e.hub.Inject("DELETE", "/v2/access-tokens/", 500, 100)
	_, err := e.do("Delete", res.PhysicalID, e.props(prefix), nil)
	if err == nil || !strings.Contains(err.Error(), "revoking docker-hub token") {
		t.Fatalf("Delete with the token API down: %v", err)
	}
	if e.secret(name) == nil {
		t.Fatal("the secret was deleted before its tokens were revoked")
	}
	e.hub.ClearFaults()
	e.mustDo("Delete", res.PhysicalID, e.props(prefix), nil)
	e.assertGone(prefix, name)

	// A recovery window keeps the secret scheduled for deletion instead.
	prefix2 := newPrefix()
	p := e.props(prefix2)
	p["RecoveryWindowInDays"] = "7"
	res2 := e.mustDo("Create", "", p, nil)
	e.mustDo("Delete", res2.PhysicalID, p, nil)
	if s := e.secret(ptcsecret.Prefix + prefix2); s == nil || s.DeletedDate == nil {
		t.Fatal("with RecoveryWindowInDays 7 the secret should be scheduled for deletion")
	}
	// CloudFormation repeats a Delete whose answer it lost: a secret already scheduled for
	// deletion is done, not an error (Secrets Manager refuses a second DeleteSecret with
	// InvalidRequestException).
	if _, err := e.do("Delete", res2.PhysicalID, p, nil); err != nil {
		t.Fatalf("the repeated Delete of a secret scheduled for deletion: %v", err)
	}
	e.assertNoLeak()
}

func TestBadPropertiesAreNamed(t *testing.T) {
	valid := func() map[string]any {
		return map[string]any{
			"EcrRepositoryPrefix": "docker-hub", "UpstreamRegistry": "docker-hub",
			"SourceSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:ptc-source/hub-AbCdEf",
		}
	}
	if p, err := provision.ParseProperties(valid(), providers.All()); err != nil || p.SecretName != "ecr-pullthroughcache/docker-hub" || p.UpstreamRegistryURL != "registry-1.docker.io" || p.RotationSchedule != "rate(30 days)" || p.RecoveryWindowInDays != 7 {
		t.Fatalf("defaults: %+v %v", p, err)
	}
	for _, tc := range []struct {
		key  string
		val  any
		want string
	}{
		{"EcrRepositoryPrefix", "", "EcrRepositoryPrefix is required"},
		{"EcrRepositoryPrefix", "a", "EcrRepositoryPrefix \"a\": use 2 to 30"},
		{"EcrRepositoryPrefix", "Docker-Hub", "EcrRepositoryPrefix \"Docker-Hub\""},
		{"EcrRepositoryPrefix", strings.Repeat("a", 31), "use 2 to 30"},
		{"UpstreamRegistry", "", "UpstreamRegistry is required"},
		{"UpstreamRegistry", "quay", "needs no managed credential here"},
		{"UpstreamRegistry", "nexus", "UpstreamRegistry \"nexus\" is not supported"},
		{"UpstreamRegistryUrl", "http://registry.example.com", "plain http is accepted only for loopback"},
		{"UpstreamRegistryUrl", "https://example.com/v2/x", "a registry is a host"},
		{"UpstreamRepositoryPrefix", "UPPER", "UpstreamRepositoryPrefix \"UPPER\""},
		{"SourceSecretArn", "", "SourceSecretArn is required"},
		{"SourceSecretArn", "ptc-source/hub", "is not a Secrets Manager secret ARN"},
		{"SourceSecretArn", "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/src-AbCdEf", "must not be under"},
		{"SecretName", "my-secret", "must start with \"ecr-pullthroughcache/\""},
		{"SecretName", "ecr-pullthroughcache/bad name", "use only letters"},
		{"RotationSchedule", "rate(2 hours)", "at most every 4 hours"},
		{"RotationSchedule", "rate(0 days)", "must be positive"},
		{"RotationSchedule", "every day", "use rate(N days)"},
		{"RotationSchedule", "cron(0 * * * ? *)", "fires every 1 hours"},
		{"RotationSchedule", "cron(0 0,2 * * ? *)", "fires every 2 hours"},
		{"RotationSchedule", "cron(0 12 * *)", "six fields"},
		{"RotationSchedule", "cron(0 12 * * * *)", "exactly one of day-of-month and day-of-week must be ?"},
		{"RecoveryWindowInDays", "3", "use 0 (delete at once) or 7 to 30"},
		{"RecoveryWindowInDays", "soon", "must be a whole number"},
		{"Tags", []any{map[string]any{"Key": "ptc:upstream", "Value": "x"}}, "is reserved"},
		{"Tags", "team=platform", "Tags must be a list"},
		{"Colour", "blue", "Colour is not a property of Custom::PullThroughCache"},
	} {
		t.Run(tc.key+"="+fmt.Sprint(tc.val), func(t *testing.T) {
			raw := valid()
			if tc.val == "" {
				delete(raw, tc.key)
			} else {
				raw[tc.key] = tc.val
			}
			_, err := provision.ParseProperties(raw, providers.All())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	raw := valid()
	raw["UpstreamRegistry"] = "azure-container-registry"
	if _, err := provision.ParseProperties(raw, providers.All()); err == nil || !strings.Contains(err.Error(), "UpstreamRegistryUrl is required for azure-container-registry") && !strings.Contains(err.Error(), "not supported") {
		t.Fatalf("ACR without a URL: %v", err)
	}
	for _, ok := range []string{"rate(1 day)", "rate(4 hours)", "rate(90 days)", "cron(0 16 1,15 * ? *)", "cron(0 0/6 * * ? *)", "cron(0 8 ? * MON *)"} {
		if err := provision.ValidateSchedule(ok); err != nil {
			t.Errorf("%s refused: %v", ok, err)
		}
	}
	// Several problems are reported together.
	_, err := provision.ParseProperties(map[string]any{}, providers.All())
	for _, w := range []string{"EcrRepositoryPrefix is required", "UpstreamRegistry is required", "SourceSecretArn is required"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("empty properties: %v lacks %q", err, w)
		}
	}
}

func TestPhysicalIDAndOwner(t *testing.T) {
	id := provision.PhysicalID("docker-hub/x", "ecr-pullthroughcache/docker-hub")
	p, n, ok := provision.ParsePhysicalID(id)
	if !ok || p != "docker-hub/x" || n != "ecr-pullthroughcache/docker-hub" {
		t.Fatalf("round trip %q -> %q %q %v", id, p, n, ok)
	}
	for _, bad := range []string{"", "failed-create-1234", "ptc:x", "ptc::ecr-pullthroughcache/x", "ptc:x:other/name"} {
		if _, _, ok := provision.ParsePhysicalID(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
	long := provision.ManagedBy("arn:aws:cloudformation:us-east-1:123456789012:stack/"+strings.Repeat("s", 128)+"/guid", strings.Repeat("L", 200))
	if len(long) > 256 || !strings.HasPrefix(long, "sha256:") {
		t.Fatalf("long owner %q", long)
	}
	if !slices.Contains([]string{"arn:aws:cloudformation:us-east-1:1:stack/s/g/Cache"}, provision.ManagedBy("arn:aws:cloudformation:us-east-1:1:stack/s/g", "Cache")) {
		t.Fatal("short owner is not stack id/logical id")
	}
}
