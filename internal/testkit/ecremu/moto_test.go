package ecremu

import (
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
)

func TestValidateWithMotoSecretsManager(t *testing.T) {
	t.Parallel()
	endpoint := testenv.StartMotoT(t).Endpoint
	sm := secretsmanager.NewFromConfig(aws.Config{
		Region:      DefaultRegion,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "test-secret-key", ""),
	}, func(o *secretsmanager.Options) { o.BaseEndpoint = aws.String(endpoint) })
	c := ctx(t)

	const token = "dckr_pat_MOTO_CANARY"
	good := ptcsecret.Value{Username: "octo", AccessToken: token}
	doc, err := good.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	created, err := sm.CreateSecret(c, &secretsmanager.CreateSecretInput{Name: aws.String("ecr-pullthroughcache/docker-hub"), SecretString: aws.String(doc)})
	if err != nil {
		t.Fatalf("moto CreateSecret: %v", err)
	}
	arn := aws.ToString(created.ARN)

	ver := &fakeVerify{accept: good}
	e := start(t, Options{SecretsManager: sm, Verify: ver.Verify})

	// A rule on a secret moto does not have is refused at create, as ECR refuses it.
	_, err = e.ecr.CreatePullThroughCacheRule(c, &ecr.CreatePullThroughCacheRuleInput{
		EcrRepositoryPrefix: aws.String("docker-hub"), UpstreamRegistryUrl: aws.String("registry-1.docker.io"),
		UpstreamRegistry: types.UpstreamRegistryDockerHub, CredentialArn: aws.String(strings.Replace(arn, "docker-hub", "no-such", 1)),
	})
	var snf *types.SecretNotFoundException
	if !errors.As(err, &snf) {
		t.Fatalf("create on a missing moto secret: %v, want SecretNotFoundException", err)
	}

	if _, err := e.ecr.CreatePullThroughCacheRule(c, &ecr.CreatePullThroughCacheRuleInput{
		EcrRepositoryPrefix: aws.String("docker-hub"), UpstreamRegistryUrl: aws.String("registry-1.docker.io"),
		UpstreamRegistry: types.UpstreamRegistryDockerHub, CredentialArn: aws.String(arn),
	}); err != nil {
		t.Fatalf("create: %v", err)
	}
	validate := func() *ecr.ValidatePullThroughCacheRuleOutput {
		t.Helper()
		out, err := e.ecr.ValidatePullThroughCacheRule(c, &ecr.ValidatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("docker-hub")})
		if err != nil {
			t.Fatalf("validate: %v", err)
		}
		if strings.Contains(aws.ToString(out.Failure), token) {
			t.Fatalf("failure leaks the token: %q", aws.ToString(out.Failure))
		}
		return out
	}

	if out := validate(); !out.IsValid {
		t.Fatalf("validate with the moto secret: failure %q", aws.ToString(out.Failure))
	}
	if calls := ver.recorded(); len(calls) != 1 || calls[0].Cred != good {
		t.Fatalf("the login check did not get moto's AWSCURRENT value: %v", calls)
	}

	// A new AWSCURRENT value with an extra key: ECR's syntax check fails.
	if _, err := sm.PutSecretValue(c, &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(arn), SecretString: aws.String(`{"username":"octo","accessToken":"` + token + `","expires":"soon"}`),
	}); err != nil {
		t.Fatal(err)
	}
	if out := validate(); out.IsValid || !strings.Contains(aws.ToString(out.Failure), `unexpected field(s) ["expires"]`) {
		t.Errorf("validate with an extra key: isValid=%v failure=%q", out.IsValid, aws.ToString(out.Failure))
	}

	// The secret is gone: not an API error, an invalid verdict naming the cause.
	if _, err := sm.DeleteSecret(c, &secretsmanager.DeleteSecretInput{SecretId: aws.String(arn), ForceDeleteWithoutRecovery: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	if out := validate(); out.IsValid || !strings.Contains(aws.ToString(out.Failure), "SecretNotFoundException") {
		t.Errorf("validate after delete: isValid=%v failure=%q", out.IsValid, aws.ToString(out.Failure))
	}
	if n := len(ver.recorded()); n != 1 {
		t.Errorf("login check ran %d times; only the first (valid) secret should reach it", n)
	}
}
