package localsm_test

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/ptc-credentials/ptc-credentials/internal/provision"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/localsm"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
)

// clientAs is a client whose requests are signed with access key id keyID.
func clientAs(endpoint, keyID string) *secretsmanager.Client {
	cfg := testenv.AWSConfig()
	cfg.Credentials = credentials.NewStaticCredentialsProvider(keyID, "test-secret-key", "")
	return secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.RetryMaxAttempts = 1
	})
}

func TestResourcePolicyCallsFollowTheAPIReference(t *testing.T) {
	e := start(t, localsm.Options{})
	out, err := e.sm.CreateSecret(e.ctx, &secretsmanager.CreateSecretInput{Name: aws.String("p/one"), SecretString: aws.String("v")})
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.sm.GetResourcePolicy(e.ctx, &secretsmanager.GetResourcePolicyInput{SecretId: aws.String("p/one")})
	if err != nil || got.ResourcePolicy != nil || aws.ToString(got.ARN) != aws.ToString(out.ARN) || aws.ToString(got.Name) != "p/one" {
		t.Fatalf("GetResourcePolicy of a secret with none: %+v, %v", got, err)
	}
	deny := `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"secretsmanager:PutSecretValue","Resource":"*"}]}`
	if _, err := e.sm.PutResourcePolicy(e.ctx, &secretsmanager.PutResourcePolicyInput{SecretId: out.ARN, ResourcePolicy: aws.String(deny), BlockPublicPolicy: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	got, _ = e.sm.GetResourcePolicy(e.ctx, &secretsmanager.GetResourcePolicyInput{SecretId: aws.String("p/one")})
	if aws.ToString(got.ResourcePolicy) != deny {
		t.Fatalf("GetResourcePolicy = %q", aws.ToString(got.ResourcePolicy))
	}
	public := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"secretsmanager:GetSecretValue","Resource":"*"}]}`
	_, err = e.sm.PutResourcePolicy(e.ctx, &secretsmanager.PutResourcePolicyInput{SecretId: out.ARN, ResourcePolicy: aws.String(public), BlockPublicPolicy: aws.Bool(true)})
	wantCode(t, "public policy with BlockPublicPolicy", err, "PublicPolicyException")
	_, err = e.sm.PutResourcePolicy(e.ctx, &secretsmanager.PutResourcePolicyInput{SecretId: out.ARN, ResourcePolicy: aws.String(`{"Statement":`)})
	wantCode(t, "malformed policy", err, "MalformedPolicyDocumentException")
	_, err = e.sm.PutResourcePolicy(e.ctx, &secretsmanager.PutResourcePolicyInput{SecretId: out.ARN, ResourcePolicy: aws.String(strings.Repeat(" ", localsm.MaxPolicyLength+1))})
	wantCode(t, "policy over the length limit", err, "InvalidParameterException")
	_, err = e.sm.PutResourcePolicy(e.ctx, &secretsmanager.PutResourcePolicyInput{SecretId: aws.String("p/none"), ResourcePolicy: aws.String(deny)})
	wantCode(t, "policy on a missing secret", err, "ResourceNotFoundException")

	for doc, check := range map[string]string{
		public: "BROAD_ACCESS",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"secretsmanager:*","Resource":"*"}]}`:                                                                   "LOCKOUT",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Maybe","Principal":"*","Action":"secretsmanager:*","Resource":"*"}]}`:                                                                  "SYNTAX",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"secretsmanager:*","Resource":"*"}]}`:                                                                                   "SYNTAX",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"secretsmanager:PutSecretValue","Resource":"*","Condition":{"StringSorta":{"aws:PrincipalArn":"x"}}}]}`: "SYNTAX",
	} {
		v, err := e.sm.ValidateResourcePolicy(e.ctx, &secretsmanager.ValidateResourcePolicyInput{ResourcePolicy: aws.String(doc)})
		if err != nil {
			t.Fatal(err)
		}
		if v.PolicyValidationPassed || len(v.ValidationErrors) == 0 || aws.ToString(v.ValidationErrors[0].CheckName) != check {
			t.Errorf("ValidateResourcePolicy(%s) = %v %+v, want a %s failure", doc, v.PolicyValidationPassed, v.ValidationErrors, check)
		}
	}
	v, err := e.sm.ValidateResourcePolicy(e.ctx, &secretsmanager.ValidateResourcePolicyInput{SecretId: out.ARN, ResourcePolicy: aws.String(deny)})
	if err != nil || !v.PolicyValidationPassed || len(v.ValidationErrors) != 0 {
		t.Fatalf("ValidateResourcePolicy of a sound policy: %+v %v", v, err)
	}
	if _, err := e.sm.DeleteResourcePolicy(e.ctx, &secretsmanager.DeleteResourcePolicyInput{SecretId: aws.String("p/one")}); err != nil {
		t.Fatal(err)
	}
	got, _ = e.sm.GetResourcePolicy(e.ctx, &secretsmanager.GetResourcePolicyInput{SecretId: aws.String("p/one")})
	if got.ResourcePolicy != nil {
		t.Fatal("DeleteResourcePolicy left the policy")
	}
}

// The protecting policy, enforced: a principal of the account that is neither function role is
// refused every call the policy governs, with an explicit deny; the roles are not; a caller
// localsm cannot name is not judged.
func TestProtectingPolicyIsEnforced(t *testing.T) {
	e := start(t, localsm.Options{Principals: map[string]string{
		"AKIDROTATOR": testenv.RotatorRoleARN, "AKIDPROVISIONER": testenv.ProvisionerRoleARN, "AKIDOTHER": testenv.OtherTeamRoleARN,
	}})
	prov, rot, other := clientAs(e.url, "AKIDPROVISIONER"), clientAs(e.url, "AKIDROTATOR"), clientAs(e.url, "AKIDOTHER")
	name := aws.String("ecr-pullthroughcache/victim")
	out, err := prov.CreateSecret(e.ctx, &secretsmanager.CreateSecretInput{Name: name, ClientRequestToken: aws.String(tok(1)), SecretString: aws.String(`{"username":"u","accessToken":"PLANTED-1"}`),
		Tags: []smtypes.Tag{{Key: aws.String("ptc:source-secret"), Value: aws.String("arn:aws:secretsmanager:us-east-1:123456789012:secret:ptc-source/victim-AbCdEf")}}})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := provision.ProtectingPolicy(testenv.RotatorRoleARN, testenv.ProvisionerRoleARN)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := prov.PutResourcePolicy(e.ctx, &secretsmanager.PutResourcePolicyInput{SecretId: out.ARN, ResourcePolicy: aws.String(doc), BlockPublicPolicy: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	before, _ := e.sm.DescribeSecret(e.ctx, &secretsmanager.DescribeSecretInput{SecretId: name})

	_, err = other.TagResource(e.ctx, &secretsmanager.TagResourceInput{SecretId: name, Tags: []smtypes.Tag{{Key: aws.String("ptc:source-secret"), Value: aws.String("arn:aws:secretsmanager:us-east-1:123456789012:secret:ptc-source/attacker-AbCdEf")}}})
	wantCode(t, "another team retags ptc:source-secret", err, "AccessDeniedException")
	_, err = other.UntagResource(e.ctx, &secretsmanager.UntagResourceInput{SecretId: name, TagKeys: []string{"ptc:owner-mac"}})
	wantCode(t, "another team untags ptc:owner-mac", err, "AccessDeniedException")
	_, err = other.PutSecretValue(e.ctx, &secretsmanager.PutSecretValueInput{SecretId: name, ClientRequestToken: aws.String(tok(2)), SecretString: aws.String(`{"username":"u","accessToken":"PLANTED-evil"}`)})
	wantCode(t, "another team puts a value", err, "AccessDeniedException")
	_, err = other.UpdateSecretVersionStage(e.ctx, &secretsmanager.UpdateSecretVersionStageInput{SecretId: name, VersionStage: aws.String("AWSCURRENT"), MoveToVersionId: aws.String(tok(1))})
	wantCode(t, "another team moves a label", err, "AccessDeniedException")
	_, err = other.DeleteResourcePolicy(e.ctx, &secretsmanager.DeleteResourcePolicyInput{SecretId: name})
	wantCode(t, "another team lifts the policy", err, "AccessDeniedException")
	_, err = rot.PutResourcePolicy(e.ctx, &secretsmanager.PutResourcePolicyInput{SecretId: name, ResourcePolicy: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"secretsmanager:DeleteSecret","Resource":"*"}]}`)})
	wantCode(t, "the rotator replaces the policy", err, "AccessDeniedException")

	after, _ := e.sm.DescribeSecret(e.ctx, &secretsmanager.DescribeSecretInput{SecretId: name})
	if len(after.Tags) != len(before.Tags) || aws.ToString(after.Tags[0].Value) != aws.ToString(before.Tags[0].Value) || len(after.VersionIdsToStages) != 1 {
		t.Fatalf("a refused call changed the secret: %+v -> %+v", before, after)
	}

	// What the policy leaves to IAM: other tags, reading, and the function roles' jobs.
	_, err = other.TagResource(e.ctx, &secretsmanager.TagResourceInput{SecretId: name, Tags: []smtypes.Tag{{Key: aws.String("team"), Value: aws.String("x")}}})
	wantCode(t, "another team's own tag", err, "ok")
	_, err = other.GetSecretValue(e.ctx, &secretsmanager.GetSecretValueInput{SecretId: name, VersionStage: aws.String("AWSCURRENT")})
	wantCode(t, "reading (ECR's job)", err, "ok")
	_, err = rot.PutSecretValue(e.ctx, &secretsmanager.PutSecretValueInput{SecretId: name, ClientRequestToken: aws.String(tok(3)), SecretString: aws.String(`{"username":"u","accessToken":"PLANTED-3"}`), VersionStages: []string{"AWSPENDING"}})
	wantCode(t, "the rotator puts a pending value", err, "ok")
	_, err = rot.UpdateSecretVersionStage(e.ctx, &secretsmanager.UpdateSecretVersionStageInput{SecretId: name, VersionStage: aws.String("AWSCURRENT"), MoveToVersionId: aws.String(tok(3)), RemoveFromVersionId: aws.String(tok(1))})
	wantCode(t, "the rotator promotes", err, "ok")
	_, err = prov.TagResource(e.ctx, &secretsmanager.TagResourceInput{SecretId: name, Tags: []smtypes.Tag{{Key: aws.String("ptc:registry-url"), Value: aws.String("registry-1.docker.io")}}})
	wantCode(t, "the provisioner sets a ptc: tag", err, "ok")
	// An unmapped key (an administrator outside the story) is not judged.
	_, err = e.sm.TagResource(e.ctx, &secretsmanager.TagResourceInput{SecretId: name, Tags: []smtypes.Tag{{Key: aws.String("ptc:upstream"), Value: aws.String("docker-hub")}}})
	wantCode(t, "unmapped caller", err, "ok")
}
