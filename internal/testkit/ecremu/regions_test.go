package ecremu

import (
	"errors"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/localsm"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
)

func ecrClientIn(endpoint, region string) *ecr.Client {
	return ecr.NewFromConfig(aws.Config{
		Region:      region,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "test-secret-key", ""),
		Retryer:     func() aws.Retryer { return aws.NopRetryer{} },
	}, func(o *ecr.Options) { o.BaseEndpoint = aws.String(endpoint) })
}

// TestRegionsReadTheirOwnReplica: one ECR per Region, each reading secrets through a Secrets
// Manager client of its own Region, accepts a rule only with that Region's ARN of the secret,
// and validates it against the replica there.
func TestRegionsReadTheirOwnReplica(t *testing.T) {
	regions := []string{"us-east-1", "eu-west-1"}
	sm := testenv.StartLocalSMCluster(t, localsm.ClusterOptions{Regions: regions})
	good := ptcsecret.Value{Username: "octo", AccessToken: "dckr_pat_REGIONS_CANARY"}
	ver := &fakeVerify{accept: good}
	rs := NewRegions(regions, func(region string) Options {
		return Options{SecretsManager: sm.SecretsManagerIn(region), Verify: ver.Verify}
	})
	hs := httptest.NewServer(rs)
	t.Cleanup(hs.Close)
	c := ctx(t)

	doc, err := good.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	created, err := sm.SecretsManagerIn("us-east-1").CreateSecret(c, &secretsmanager.CreateSecretInput{
		Name: aws.String("ecr-pullthroughcache/docker-hub"), SecretString: aws.String(string(doc)),
		AddReplicaRegions: []smtypes.ReplicaRegionType{{Region: aws.String("eu-west-1")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	arnIn := map[string]string{"us-east-1": aws.ToString(created.ARN), "eu-west-1": strings.Replace(aws.ToString(created.ARN), ":us-east-1:", ":eu-west-1:", 1)}
	for _, r := range regions {
		cl := ecrClientIn(hs.URL, r)
		other := arnIn[regions[(slices.Index(regions, r)+1)%2]]
		_, err := cl.CreatePullThroughCacheRule(c, &ecr.CreatePullThroughCacheRuleInput{
			EcrRepositoryPrefix: aws.String("docker-hub"), UpstreamRegistryUrl: aws.String("registry-1.docker.io"),
			UpstreamRegistry: types.UpstreamRegistryDockerHub, CredentialArn: aws.String(other),
		})
		var ipe *types.InvalidParameterException
		if !errors.As(err, &ipe) {
			t.Errorf("%s: a rule with another Region's ARN: %v, want InvalidParameterException", r, err)
		}
		if _, err := cl.CreatePullThroughCacheRule(c, &ecr.CreatePullThroughCacheRuleInput{
			EcrRepositoryPrefix: aws.String("docker-hub"), UpstreamRegistryUrl: aws.String("registry-1.docker.io"),
			UpstreamRegistry: types.UpstreamRegistryDockerHub, CredentialArn: aws.String(arnIn[r]),
		}); err != nil {
			t.Fatalf("%s: CreatePullThroughCacheRule: %v", r, err)
		}
		v, err := cl.ValidatePullThroughCacheRule(c, &ecr.ValidatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("docker-hub")})
		if err != nil || !v.IsValid {
			t.Errorf("%s: ValidatePullThroughCacheRule: %v %+v", r, err, v)
		}
		if rules := rs.Region(r).Rules(); len(rules) != 1 || rules[0].CredentialARN != arnIn[r] {
			t.Errorf("%s: rules %+v", r, rules)
		}
		if got := sm.Cluster.Region(r).Calls(); !slices.Contains(got, "GetSecretValue") {
			t.Errorf("%s: ECR did not read the secret in its own Region (calls there: %v)", r, got)
		}
	}
	// A Region the emulator does not serve.
	_, err = ecrClientIn(hs.URL, "ap-south-1").DescribePullThroughCacheRules(c, &ecr.DescribePullThroughCacheRulesInput{})
	if err == nil || !strings.Contains(err.Error(), "InvalidSignatureException") {
		t.Errorf("a Region outside the emulator: %v", err)
	}
	if names := rs.Names(); !slices.Equal(names, regions) || rs.Region("ap-south-1") != nil {
		t.Errorf("Names = %v", names)
	}
}
