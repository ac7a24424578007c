package operator_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/ptc-credentials/ptc-credentials/internal/operator"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/registryauth"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/ecremu"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/lambdaemu"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/registries"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
)

var moto *testenv.Moto

func TestMain(m *testing.M) { os.Exit(testenv.RunWithMoto(m, &moto)) }

// world is one test's cloud: Secrets Manager (moto or localsm), the ECR pull-through cache
// emulator reading its secrets, and the Docker Hub emulator ECR's validation logs in to.
type world struct {
	t   testing.TB
	ctx context.Context
	sm  *secretsmanager.Client
	ecr *ecr.Client
	hub *registries.Emulator
	// lambda has the rotation functions the tests name (testenv.FakeRotationLambdaARN's
	// function and the rotator of the rotating Secrets Manager).
	lambda    *lambdaemu.Server
	lambdaAPI *lambda.Client
	// out and errw capture what the commands print.
	out, errw syncBuf
	now       time.Time
	slept     time.Duration
	// ecrVerify, when set, is how the ECR emulator's validation logs in instead of the
	// registry emulator.
	ecrVerify func(ctx context.Context, upstreamRegistry, url string, cred ptcsecret.Value) error
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuf) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Reset()
}

func newWorld(t testing.TB, srv testenv.SecretsManagerServer) *world {
	t.Helper()
	w := &world{t: t, ctx: testenv.Context(t), sm: srv.SecretsManager(), hub: registries.DockerHub.MustStart(t, registries.Options{}),
		now: time.Now().Add(time.Hour)}
	emu := ecremu.New(ecremu.Options{
		SecretsManager: w.sm,
		Verify: func(ctx context.Context, upstreamRegistry, url string, cred ptcsecret.Value) error {
			if w.ecrVerify != nil {
				return w.ecrVerify(ctx, upstreamRegistry, url, cred)
			}
			return registryauth.Check(ctx, nil, registryauth.Target{Registry: url, Repository: w.hub.CheckRepository},
				registryauth.Credential{Username: cred.Username, Password: cred.AccessToken})
		},
		MaxRules: 1000,
	})
	hs := httptest.NewServer(emu)
	t.Cleanup(hs.Close)
	w.ecr = ecr.NewFromConfig(testenv.AWSConfig(), func(o *ecr.Options) { o.BaseEndpoint = aws.String(hs.URL) })
	w.lambda = lambdaemu.New(testenv.Region, testenv.AccountID, "ptc-rotator-under-test", "ptc-rotator")
	ls := httptest.NewServer(w.lambda)
	t.Cleanup(ls.Close)
	w.lambdaAPI = lambda.NewFromConfig(testenv.AWSConfig(), func(o *lambda.Options) { o.BaseEndpoint = aws.String(ls.URL) })
	if r, ok := srv.(*rotatingSM); ok {
		r.rot.Standins = w.hub.Standins() // the rotator may reach this world's registry emulator
	}
	return w
}

func (w *world) env() *operator.Env {
	return &operator.Env{
		ECR: w.ecr, SM: w.sm, Lambda: w.lambdaAPI, Region: testenv.Region, Out: &w.out, Err: &w.errw, Standins: w.hub.Standins(),
		Now: func() time.Time { return w.now.Add(w.slept) },
		Sleep: func(_ context.Context, d time.Duration) error {
			w.slept += d
			time.Sleep(20 * time.Millisecond) // let an asynchronous rotation make progress
			return nil
		},
	}
}

// secret creates a secret and returns its ARN.
func (w *world) secret(name, value string, tags map[string]string) string {
	w.t.Helper()
	in := &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)}
	for k, v := range tags {
		in.Tags = append(in.Tags, smtypes.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	out, err := w.sm.CreateSecret(w.ctx, in)
	if err != nil {
		w.t.Fatal(err)
	}
	return aws.ToString(out.ARN)
}

// enableRotation turns rotation on the way the provisioner does (RotateSecret with
// RotateImmediately=false) and drops the tested copy, as Secrets Manager does after testSecret.
func (w *world) enableRotation(arn string) {
	w.t.Helper()
	token := newID()
	if err := testenv.BeginRotation(w.ctx, w.sm, arn, token, false); err != nil {
		w.t.Fatal(err)
	}
	if _, err := w.sm.UpdateSecretVersionStage(w.ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String(arn), VersionStage: aws.String("AWSPENDING"), RemoveFromVersionId: aws.String(token),
	}); err != nil {
		w.t.Fatal(err)
	}
}

// markTested puts testSecret's mark on the current version, as the rotator leaves it after a
// rotation, with the token's expiry.
func (w *world) markTested(arn string, expires time.Time) {
	w.t.Helper()
	d, err := w.sm.DescribeSecret(w.ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)})
	if err != nil {
		w.t.Fatal(err)
	}
	current := ""
	for id, st := range d.VersionIdsToStages {
		for _, s := range st {
			if s == ptcsecret.StageCurrent {
				current = id
			}
		}
	}
	if _, err := w.sm.TagResource(w.ctx, &secretsmanager.TagResourceInput{SecretId: aws.String(arn), Tags: []smtypes.Tag{
		{Key: aws.String(ptcsecret.TagTestedVersion), Value: aws.String(current)},
		{Key: aws.String(ptcsecret.TagTestedExpiry), Value: aws.String(expires.UTC().Format(time.RFC3339))},
	}}); err != nil {
		w.t.Fatal(err)
	}
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	x := hex.EncodeToString(b)
	return x[:8] + "-" + x[8:12] + "-4" + x[13:16] + "-8" + x[17:20] + "-" + x[20:]
}

// rule creates a Docker Hub pull-through cache rule with the credential.
func (w *world) rule(prefix, credentialARN string) {
	w.t.Helper()
	if _, err := w.ecr.CreatePullThroughCacheRule(w.ctx, &ecr.CreatePullThroughCacheRuleInput{
		EcrRepositoryPrefix: aws.String(prefix), UpstreamRegistry: ecrtypes.UpstreamRegistryDockerHub,
		UpstreamRegistryUrl: aws.String(w.hub.URL), CredentialArn: aws.String(credentialARN),
	}); err != nil {
		w.t.Fatal(err)
	}
}

// hubValue is a secret value that logs in to the Docker Hub emulator (its account password).
func (w *world) hubValue() string {
	return `{"username":"` + registries.HubUser + `","accessToken":"` + w.hub.SourceSecret + `"}`
}

// unique makes names unique within the shared moto.
func unique(t *testing.T, s string) string {
	r := strings.NewReplacer("/", "-", "_", "-")
	n := strings.ToLower(r.Replace(t.Name()))
	if len(n) > 18 {
		n = n[len(n)-18:]
	}
	return strings.Trim(n, "-") + "-" + s
}

// assertNoLeak scans everything the commands printed for the planted values.
func (w *world) assertNoLeak(planted ...string) {
	w.t.Helper()
	all := w.out.String() + w.errw.String()
	for _, p := range append(planted, w.hub.PlantedSecrets()...) {
		if len(p) >= 6 && strings.Contains(all, p) {
			w.t.Errorf("a planted secret (%d chars, starts %q) appears in the output", len(p), p[:4])
		}
	}
}
