package rotation_test

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/ptc-credentials/ptc-credentials/internal/pinned"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/rotation"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/rotationtest"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/dockerhub"
)

// TestSourceBindingRefusesAnotherTeamsSecret plays someone who may create and tag
// ecr-pullthroughcache/ secrets but not write another team's source secret: a managed secret of
// theirs names the victim's source in ptc:source-secret. The rotator must refuse before it
// mints, name the field to set, mint nothing with the victim's credential and store nothing.
func TestSourceBindingRefusesAnotherTeamsSecret(t *testing.T) {
	victim := newFixture(t, fixtureOpts{}) // its source allows only the victim's managed secret
	before := len(victim.hub.Tokens())

	attacker := rotationtest.New(t, moto, rotationtest.Config{Provider: dockerhub.Provider, SourceJSON: `{}`, RegistryURL: victim.hubURL, NoSetup: true, Standins: pinned.NewStandins(victim.hubURL)})
	tags := []smtypes.Tag{
		{Key: aws.String(ptcsecret.TagUpstream), Value: aws.String(ptcsecret.UpstreamDockerHub)},
		{Key: aws.String(ptcsecret.TagSourceSecret), Value: aws.String(victim.SourceARN)},
		{Key: aws.String(ptcsecret.TagRegistryURL), Value: aws.String(victim.hubURL)},
	}
	attacker.ARN = attacker.CreateManaged(rotationtest.NewID(), `{"username":"attacker","accessToken":"attacker-own-token"}`, tags)
	token := attacker.Begin()
	err := attacker.Step(rotation.CreateSecret, token)
	if err == nil {
		t.Fatal("createSecret minted with another team's source secret")
	}
	for _, want := range []string{upstream.BindingField, attacker.Name, victim.SourceARN} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not name %s", err, want)
		}
	}
	if after := len(victim.hub.Tokens()); after != before {
		t.Errorf("the victim's Docker Hub account has %d tokens, had %d: one was minted with its password", after, before)
	}
	if _, gerr := attacker.SM.GetSecretValue(attacker.Ctx, &secretsmanager.GetSecretValueInput{
		SecretId: aws.String(attacker.ARN), VersionId: aws.String(token),
	}); gerr == nil {
		t.Error("the attacker's pending version holds a value")
	}
	// The victim's own rotation still works with the same source.
	victim.Rotate()
	attacker.AssertNoLeak()
}
