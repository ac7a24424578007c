package localcloud

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"

	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
)

// Through the real provisioner bootstrap: the secret it creates carries the protecting policy,
// which the local Secrets Manager enforces. Another team's principal may not retag its
// configuration, write its value, move its labels or lift the policy; the rotator (a real
// rotation) still can, and ECR still reads it.
func TestManagedSecretResistsAnotherTeam(t *testing.T) {
	c := startCloud(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	reg, ok := c.Registry("docker-hub")
	if !ok {
		t.Fatal("no docker-hub registry in the local cloud")
	}
	src, err := c.SM.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(SourcePrefix + "guarded"), SecretString: aws.String(reg.Source)})
	if err != nil {
		t.Fatal(err)
	}
	created, err := c.CustomResourceFor(ctx, "Guarded", "Create", "", map[string]any{
		"EcrRepositoryPrefix": "guarded", "UpstreamRegistry": reg.Name, "UpstreamRegistryUrl": reg.URL,
		"SourceSecretArn": aws.ToString(src.ARN), "RecoveryWindowInDays": "0",
	})
	if err != nil || created.Status != "SUCCESS" {
		t.Fatalf("Create: %v %s %s", err, created.Status, created.Reason)
	}
	name := aws.String(created.Data["SecretName"])
	pol, err := c.SM.GetResourcePolicy(ctx, &secretsmanager.GetResourcePolicyInput{SecretId: name})
	if err != nil || !strings.Contains(aws.ToString(pol.ResourcePolicy), "PtcTagsOnlyByTheFunctions") {
		t.Fatalf("the created secret has no protecting policy: %v %q", err, aws.ToString(pol.ResourcePolicy))
	}
	before, err := c.SM.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: name})
	if err != nil {
		t.Fatal(err)
	}
	denied := func(what string, err error) {
		t.Helper()
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDeniedException" {
			t.Errorf("%s by another team: %v, want AccessDeniedException", what, err)
		}
	}
	o := c.OtherTeamSM
	_, err = o.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: name, Tags: []smtypes.Tag{{Key: aws.String(ptcsecret.TagSourceSecret), Value: aws.String("arn:aws:secretsmanager:us-east-1:123456789012:secret:ptc-source/attacker-AbCdEf")}}})
	denied("TagResource ptc:source-secret", err)
	_, err = o.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: name, Tags: []smtypes.Tag{{Key: aws.String(ptcsecret.TagManagedBy), Value: aws.String("arn:aws:cloudformation:us-east-1:123456789012:stack/attacker/1/X")}}})
	denied("TagResource ptc:managed-by", err)
	_, err = o.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: name, SecretString: aws.String(`{"username":"evil","accessToken":"PLANTED-attacker"}`)})
	denied("PutSecretValue", err)
	cur := ""
	for id, st := range before.VersionIdsToStages {
		for _, s := range st {
			if s == "AWSCURRENT" {
				cur = id
			}
		}
	}
	_, err = o.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{SecretId: name, VersionStage: aws.String("AWSPENDING"), MoveToVersionId: aws.String(cur)})
	denied("UpdateSecretVersionStage", err)
	_, err = o.DeleteResourcePolicy(ctx, &secretsmanager.DeleteResourcePolicyInput{SecretId: name})
	denied("DeleteResourcePolicy", err)

	after, err := c.SM.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: name})
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Tags) != len(before.Tags) || len(after.VersionIdsToStages) != len(before.VersionIdsToStages) {
		t.Fatalf("a refused call changed the secret: %v -> %v", before, after)
	}

	// The rotator, signing as its role, still rotates (after Create's own test run).
	if err := c.SecretsManager.WaitRotation(ctx, aws.ToString(before.ARN)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SM.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: name}); err != nil {
		t.Fatal(err)
	}
	if err := c.SecretsManager.WaitRotation(ctx, aws.ToString(before.ARN)); err != nil {
		t.Fatalf("rotation under the policy: %v", err)
	}
	rotated, _ := c.SM.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: name})
	for id, st := range rotated.VersionIdsToStages {
		for _, s := range st {
			if s == "AWSCURRENT" && id == cur {
				t.Fatal("the rotation did not promote a new version")
			}
		}
	}
	deleted, err := c.CustomResourceFor(ctx, "Guarded", "Delete", created.PhysicalResourceID, map[string]any{
		"EcrRepositoryPrefix": "guarded", "UpstreamRegistry": reg.Name, "UpstreamRegistryUrl": reg.URL,
		"SourceSecretArn": aws.ToString(src.ARN), "RecoveryWindowInDays": "0",
	})
	if err != nil || deleted.Status != "SUCCESS" {
		t.Fatalf("Delete: %v %s %s", err, deleted.Status, deleted.Reason)
	}
	if n := c.Leaks(c.Transcript()); n != 0 {
		t.Fatalf("%d secret values in the transcript", n)
	}
}
