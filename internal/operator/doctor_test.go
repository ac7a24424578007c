package operator_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/ptc-credentials/ptc-credentials/internal/operator"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/rotation"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/registries"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
)

// doctor runs the doctor and returns its output and verdict.
func (w *world) doctor(target, image string) (string, bool) {
	w.t.Helper()
	w.out.Reset()
	ok, err := operator.Doctor(w.ctx, w.env(), target, image)
	if err != nil {
		w.t.Fatal(err)
	}
	return w.out.String(), ok
}

func wantLines(t *testing.T, out string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(out, l) {
			t.Errorf("output lacks %q:\n%s", l, out)
		}
	}
}

// TestDoctorHandMadeSecretWithAccessTokenKey: the public sample's "access-token" key (and an
// extra key) is named with the fix, ECR's validation fails, and no value is printed.
func TestDoctorHandMadeSecretWithAccessTokenKey(t *testing.T) {
	w := newWorld(t, moto)
	prefix := unique(t, "hand")
	planted := "PLANTED-doctor-token-5d1c0a"
	arn := w.secret(ptcsecret.Prefix+prefix, `{"username":"`+registries.HubUser+`","access-token":"`+planted+`","registry":"docker.io"}`, nil)
	w.rule(prefix, arn)
	out, ok := w.doctor(prefix, "")
	if ok {
		t.Errorf("doctor passed a secret with the wrong key:\n%s", out)
	}
	wantLines(t, out,
		"✔ rule: "+prefix+" → docker-hub",
		"✔ credential ARN: "+ptcsecret.Prefix+prefix+", in this account and Region",
		"✔ secret: "+ptcsecret.Prefix+prefix+" exists, hand-made",
		"✔ encryption key: the default aws/secretsmanager key",
		`✘ secret value: key "access-token" where ECR expects "accessToken"; extra key "registry"; no key "accessToken"`,
		`fix: rename "access-token" to "accessToken"; remove "registry"`,
		"– upstream login: no usable credential",
		"✘ ECR validation: InvalidSecretFormat",
		"– rotation: off: a hand-made secret; ptc adopt "+prefix,
	)
	// The same diagnosis by secret name, and by ARN.
	byName, _ := w.doctor(ptcsecret.Prefix+prefix, "")
	byARN, _ := w.doctor(arn, "")
	if byName != out || byARN != out {
		t.Errorf("doctor by secret differs from doctor by prefix:\n%s\n---\n%s", byName, byARN)
	}
	w.assertNoLeak(planted)
}

// TestDoctorDockerHubOfficialImageWithoutLibrary: a working credential and an image pulled as
// "alpine": the login passes (for library/alpine) and the image path check names library/.
func TestDoctorDockerHubOfficialImageWithoutLibrary(t *testing.T) {
	w := newWorld(t, moto)
	prefix := unique(t, "lib")
	w.rule(prefix, w.secret(ptcsecret.Prefix+prefix, w.hubValue(), nil))
	out, ok := w.doctor(prefix, "alpine:3.20")
	if ok {
		t.Errorf("doctor passed an official image without library/:\n%s", out)
	}
	wantLines(t, out,
		`✘ image path: "alpine" is a Docker Hub official image: its upstream path is "library/alpine"`,
		"fix: pull 123456789012.dkr.ecr.us-east-1.amazonaws.com/"+prefix+"/library/alpine:3.20",
		"✔ upstream login: "+w.hub.URL+` gave username "`+registries.HubUser+`" a pull token for library/alpine`,
		"✔ ECR validation: IsValid",
	)
	// The right path, given as the ECR path, passes everything but rotation (hand-made: skipped).
	out, ok = w.doctor(prefix, prefix+"/library/alpine:3.20")
	if !ok {
		t.Errorf("doctor failed a good rule:\n%s", out)
	}
	wantLines(t, out, "✔ image path: pull it as 123456789012.dkr.ecr.us-east-1.amazonaws.com/"+prefix+"/library/alpine:3.20", "no problem found")
	w.assertNoLeak()
}

// TestDoctorFindsEachBreakage: a missing rule, a wrong token, a value that is not JSON, a
// customer managed key and a managed secret with rotation off are each a ✘ with its fix.
func TestDoctorFindsEachBreakage(t *testing.T) {
	w := newWorld(t, moto)
	out, ok := w.doctor("no-such-prefix", "")
	if ok || !strings.Contains(out, `✘ rule: no pull-through cache rule with prefix "no-such-prefix"`) {
		t.Errorf("missing rule:\n%s", out)
	}

	wrong := unique(t, "wrong")
	planted := "PLANTED-wrong-token-9e8d7c"
	w.rule(wrong, w.secret(ptcsecret.Prefix+wrong, `{"username":"`+registries.HubUser+`","accessToken":"`+planted+`"}`, map[string]string{
		ptcsecret.TagUpstream: "docker-hub", ptcsecret.TagSourceSecret: "arn:aws:secretsmanager:us-east-1:123456789012:secret:ptc-source/x-AbCdEf"}))
	out, ok = w.doctor(wrong, "library/nginx")
	if ok {
		t.Errorf("wrong token passed:\n%s", out)
	}
	wantLines(t, out, "✘ upstream login: login check at "+w.hub.URL+": the registry refused the credential", "fix: the token is wrong, expired or revoked: rotate (ptc rotate "+ptcsecret.Prefix+wrong+")",
		"✘ rotation: off for a managed secret")

	notJSON := unique(t, "notjson")
	w.rule(notJSON, w.secret(ptcsecret.Prefix+notJSON, "username="+registries.HubUser+" token="+planted, nil))
	out, _ = w.doctor(notJSON, "")
	wantLines(t, out, "✘ secret value: the value is not a JSON object")

	cmk := unique(t, "cmk")
	in := &secretsmanager.CreateSecretInput{Name: aws.String(ptcsecret.Prefix + cmk), SecretString: aws.String(w.hubValue()), KmsKeyId: aws.String("alias/team-key")}
	o, err := w.sm.CreateSecret(w.ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	w.rule(cmk, aws.ToString(o.ARN))
	out, _ = w.doctor(cmk, "")
	wantLines(t, out, "✘ encryption key: the secret uses customer managed key alias/team-key", "--kms-key-id alias/aws/secretsmanager")
	w.assertNoLeak(planted)
}

// rewriteECR stands for a rule whose CredentialArn ECR holds differently from the secret the
// test made (another Region or account): ECR's own checks refuse to create such a rule, but a
// rule can outlive a secret moved or re-created elsewhere.
type rewriteECR struct {
	operator.ECR
	arn string
}

func (r rewriteECR) DescribePullThroughCacheRules(ctx context.Context, in *ecr.DescribePullThroughCacheRulesInput, o ...func(*ecr.Options)) (*ecr.DescribePullThroughCacheRulesOutput, error) {
	out, err := r.ECR.DescribePullThroughCacheRules(ctx, in, o...)
	if err == nil {
		for i := range out.PullThroughCacheRules {
			out.PullThroughCacheRules[i].CredentialArn = aws.String(r.arn)
		}
	}
	return out, err
}

// TestDoctorCredentialOfAnotherRegionOrAccount: a credential ARN in another Region or account,
// or outside ecr-pullthroughcache/, stops the doctor at check 2 with the fix.
func TestDoctorCredentialOfAnotherRegionOrAccount(t *testing.T) {
	w := newWorld(t, moto)
	prefix := unique(t, "arn")
	w.rule(prefix, w.secret(ptcsecret.Prefix+prefix, w.hubValue(), nil))
	for arn, want := range map[string]string{
		"arn:aws:secretsmanager:eu-west-1:123456789012:secret:ecr-pullthroughcache/x-AbCdEf": "✘ credential ARN: the secret is in eu-west-1, the rule in us-east-1",
		"arn:aws:secretsmanager:us-east-1:210987654321:secret:ecr-pullthroughcache/x-AbCdEf": "✘ credential ARN: the secret is in account 210987654321, the registry is 123456789012",
		"arn:aws:secretsmanager:us-east-1:123456789012:secret:team/x-AbCdEf":                 "✘ credential ARN: secret team/x is not under ecr-pullthroughcache/",
	} {
		env := w.env()
		env.ECR = rewriteECR{ECR: w.ecr, arn: arn}
		w.out.Reset()
		ok, err := operator.Doctor(w.ctx, env, prefix, "")
		out := w.out.String()
		if err != nil || ok || !strings.Contains(out, want) || strings.Contains(out, "✔ secret:") {
			t.Errorf("credential %s: ok=%v err=%v, want %q and no later check:\n%s", arn, ok, err, want, out)
		}
	}
}

// TestDoctorNeverShowsAKeyThatLooksLikeAValue: a token pasted as a key name (a broken edit of
// the JSON) is reported without being shown.
func TestDoctorNeverShowsAKeyThatLooksLikeAValue(t *testing.T) {
	w := newWorld(t, moto)
	prefix := unique(t, "keyval")
	planted := "ghp_PLANTEDkeyname0123456789abcdefABCD"
	long := "PLANTED-a-very-long-key-that-is-really-a-password-0f9e"
	w.rule(prefix, w.secret(ptcsecret.Prefix+prefix, `{"username":"u","`+planted+`":"","`+long+`":1}`, nil))
	out, ok := w.doctor(prefix, "")
	if ok || !strings.Contains(out, "(a key not shown: it does not look like a name and may be a value)") {
		t.Errorf("doctor:\n%s", out)
	}
	w.assertNoLeak(planted, long)
}

// TestDoctorStuckRotation: a pending version older than StuckAfter is a ✘ naming the version,
// since when, and the error the rotator recorded.
func TestDoctorStuckRotation(t *testing.T) {
	w := newWorld(t, moto)
	prefix := unique(t, "stuck")
	arn := w.secret(ptcsecret.Prefix+prefix, w.hubValue(), map[string]string{
		ptcsecret.TagUpstream: "docker-hub", ptcsecret.TagSourceSecret: "arn:aws:secretsmanager:us-east-1:123456789012:secret:ptc-source/x-AbCdEf",
		rotation.TagLastFailure: "2026-12-02T10:00:00Z testSecret", rotation.TagLastError: "the pending token cannot log in: HTTP 401"})
	w.enableRotation(arn)
	w.rule(prefix, arn)
	if err := testenv.BeginRotation(w.ctx, w.sm, arn, "22222222-3333-4444-8555-666666666666", true); err != nil {
		t.Fatal(err)
	}
	out, ok := w.doctor(prefix, "")
	if ok {
		t.Errorf("doctor passed a stuck rotation:\n%s", out)
	}
	wantLines(t, out, "✘ rotation: version 22222222-3333-4444-8555-666666666666 has been AWSPENDING since 20",
		"the rotator's last error: the pending token cannot log in: HTTP 401", "fix: read the rotator's log for version 22222222")
}

// TestDoctorRotatorGone: rotation is on but its function was deleted (its stack went): every
// rotation fails, and the doctor says so with the fix.
func TestDoctorRotatorGone(t *testing.T) {
	w := newWorld(t, moto)
	prefix := unique(t, "gone")
	arn := w.secret(ptcsecret.Prefix+prefix, w.hubValue(), map[string]string{
		ptcsecret.TagUpstream: "docker-hub", ptcsecret.TagSourceSecret: "arn:aws:secretsmanager:us-east-1:123456789012:secret:ptc-source/x-AbCdEf"})
	w.enableRotation(arn)
	w.rule(prefix, arn)
	out, ok := w.doctor(prefix, "")
	if !ok || !strings.Contains(out, "the function exists") {
		t.Errorf("doctor with the rotator present:\n%s", out)
	}
	w.lambda.Delete("ptc-rotator-under-test")
	out, ok = w.doctor(prefix, "")
	if ok {
		t.Errorf("doctor passed a rotation whose function is gone:\n%s", out)
	}
	wantLines(t, out, "✘ rotation: on, but the rotation function "+testenv.FakeRotationLambdaARN+" does not exist: every rotation fails",
		"--rotation-lambda-arn <the stack's RotatorArn output>")
}

// TestDoctorLoginOnlyToPinnedHosts plays a rule whose upstream URL names a host that is not
// Docker Hub's: the doctor's login check refuses it before sending anything — ✘ with the hosts
// a docker-hub credential may go to — and that host receives no request, so a working
// credential is never handed to it.
func TestDoctorLoginOnlyToPinnedHosts(t *testing.T) {
	w := newWorld(t, moto)
	var mu sync.Mutex
	var got []string
	attacker := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.Path)
		mu.Unlock()
		rw.Header().Set("WWW-Authenticate", `Basic realm="give me your token"`)
		rw.WriteHeader(http.StatusUnauthorized)
	}))
	defer attacker.Close()
	// Real ECR pulls docker-hub only from registry-1.docker.io, so its validation never reaches
	// such a host either; the emulator's plays that here.
	w.ecrVerify = func(context.Context, string, string, ptcsecret.Value) error {
		return errors.New("the upstream URL is not Docker Hub's")
	}
	prefix := unique(t, "pin")
	arn := w.secret(ptcsecret.Prefix+prefix, w.hubValue(), nil)
	if _, err := w.ecr.CreatePullThroughCacheRule(w.ctx, &ecr.CreatePullThroughCacheRuleInput{
		EcrRepositoryPrefix: aws.String(prefix), UpstreamRegistry: ecrtypes.UpstreamRegistryDockerHub,
		UpstreamRegistryUrl: aws.String(attacker.URL), CredentialArn: aws.String(arn),
	}); err != nil {
		t.Fatal(err)
	}
	out, ok := w.doctor(prefix, "")
	if ok {
		t.Errorf("doctor passed a rule whose upstream URL is not a pinned host:\n%s", out)
	}
	wantLines(t, out, "✘ upstream login: the rule's upstream URL", "registry-1.docker.io", "the credential was not sent")
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 0 {
		t.Errorf("the unpinned host received %v", got)
	}
	w.assertNoLeak(w.hub.SourceSecret)
}
