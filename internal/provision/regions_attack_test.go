package provision_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/ptc-credentials/ptc-credentials/internal/provision"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
)

// Review attacks on the multi-Region set (issue 16): what someone who is not the resource's own
// stack can reach in a replica Region.

// squatFirst is the home Region's Secrets Manager with a squatter who wins the race: between
// Create's look at the replica Regions (free) and its CreateSecret, someone creates a secret of
// the managed name in eu-west-1.
type squatFirst struct {
	provision.SecretsManager
	squat func(name string)
}

func (s squatFirst) CreateSecret(ctx context.Context, in *secretsmanager.CreateSecretInput, o ...func(*secretsmanager.Options)) (*secretsmanager.CreateSecretOutput, error) {
	s.squat(aws.ToString(in.Name))
	return s.SecretsManager.CreateSecret(ctx, in, o...)
}

// A squatter who creates the name in a replica Region after Create's check and before its
// CreateSecret makes that Region's replication fail: Create fails naming the Region, its undo
// removes the replica Region (which deletes only a real replica) and the primary, and the
// squatter's secret keeps its ARN and value. Nothing of ours is left in any Region.
func TestAttackSquatRacingCreateIsLeftAloneAndNothingLeaks(t *testing.T) {
	w := newWorld(t, worldOptions{})
	const squatValue = `{"username":"squatter","accessToken":"squatter-token-racing"}`
	var squatARN string
	w.prov.SM = squatFirst{SecretsManager: w.prov.SM, squat: func(name string) {
		out, err := w.attacker(west).CreateSecret(w.ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(squatValue)})
		if err != nil {
			t.Fatalf("the squatter could not create %s in %s: %v", name, west, err)
		}
		squatARN = aws.ToString(out.ARN)
	}}
	props := w.props("hub-race", west, sydney)
	_, err := w.do("Create", "", props, nil)
	t.Logf("Create: %v", err)
	if err == nil || !strings.Contains(err.Error(), `ReplicaRegions "eu-west-1"`) {
		t.Fatalf("Create racing a squatter in eu-west-1: want a failure naming eu-west-1, got %v", err)
	}
	name := ptcsecret.Prefix + "hub-race"
	d := w.secret(west, name)
	if d == nil || aws.ToString(d.ARN) != squatARN || aws.ToString(d.PrimaryRegion) != "" && aws.ToString(d.PrimaryRegion) != west {
		t.Fatalf("the squatter's secret in eu-west-1 was replaced or adopted: %+v", d)
	}
	v, gerr := w.attacker(west).GetSecretValue(w.ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(squatARN)})
	if gerr != nil || aws.ToString(v.SecretString) != squatValue {
		t.Errorf("the squatter's value was changed (err %v)", gerr)
	}
	// Everything else of the set is gone: the primary, the Sydney replica, every rule, the token.
	for _, r := range []string{home, sydney} {
		if d := w.secret(r, name); d != nil && d.DeletedDate == nil {
			t.Errorf("%s: secret %s left behind", r, name)
		}
	}
	for _, r := range allRegions {
		if w.rule(r, "hub-race") != nil {
			t.Errorf("%s: rule left behind", r)
		}
	}
	if n := w.tokens(name); n != 0 {
		t.Errorf("%d upstream tokens left behind", n)
	}
	// CloudFormation's Delete for the failed Create leaves the squatter's secret alone too.
	w.mustDo("Delete", "failed-create-race", props, nil)
	if d := w.secret(west, name); d == nil || aws.ToString(d.ARN) != squatARN {
		t.Error("the Delete after the failed Create removed the squatter's secret")
	}
	w.assertNoLeak(err)
}

// Another stack (same provisioner, so cfnauth lets its requests through) names our secret,
// prefix and replica Regions in every request type it can send. None of them touches anything
// of ours in any Region.
func TestAttackAnotherStackCannotReachOurReplicaRegions(t *testing.T) {
	w := newWorld(t, worldOptions{})
	props := w.props("hub-victim", west, sydney)
	res := w.mustDo("Create", "", props, nil)
	otherStack := "arn:aws:cloudformation:us-east-1:123456789012:stack/evil/11111111-2222-3333-4444-555555555555"
	as := func(typ, physID string, p, old map[string]any) error {
		_, err := w.prov.Handle(w.ctx, provision.Request{Type: typ, StackID: otherStack, LogicalID: "Cache", PhysicalID: physID, Properties: p, OldProperties: old})
		return err
	}
	evil := w.props("hub-victim", west, sydney, extra)
	evil["SecretName"] = res.Data["SecretName"]
	if err := as("Create", "", evil, nil); err == nil {
		t.Error("another stack's Create over our secret succeeded")
	}
	if err := as("Update", res.PhysicalID, evil, props); err == nil {
		t.Error("another stack's Update of our set succeeded")
	}
	if err := as("Delete", res.PhysicalID, props, nil); err != nil {
		t.Errorf("another stack's Delete should answer success and leave the set alone: %v", err)
	}
	if err := as("Delete", "failed-create-evil", evil, nil); err != nil {
		t.Errorf("another stack's Delete by properties should answer success and leave the set alone: %v", err)
	}
	w.assertSet(res, "hub-victim", []string{west, sydney}, "")
	if w.secret(extra, res.Data["SecretName"]) != nil || w.rule(extra, "hub-victim") != nil {
		t.Error("another stack's request made something in eu-central-1")
	}
}

// Someone who may call Secrets Manager on the managed prefix, but is neither function role,
// cannot copy the token to another Region, drop a Region, or move the secret to another key:
// the protecting policy denies each on the primary. The set stays whole.
func TestAttackOthersCannotChangeWhereTheTokenIsCopied(t *testing.T) {
	w := newWorld(t, worldOptions{})
	res := w.mustDo("Create", "", w.props("hub-copy", west), nil)
	arn := aws.String(res.Data["SecretArn"])
	atk := w.attacker(home)
	for what, call := range map[string]func() error{
		"ReplicateSecretToRegions (sa-east-1)": func() error {
			_, err := atk.ReplicateSecretToRegions(w.ctx, &secretsmanager.ReplicateSecretToRegionsInput{SecretId: arn, AddReplicaRegions: []smtypes.ReplicaRegionType{{Region: aws.String(outside)}}})
			return err
		},
		"RemoveRegionsFromReplication (eu-west-1)": func() error {
			_, err := atk.RemoveRegionsFromReplication(w.ctx, &secretsmanager.RemoveRegionsFromReplicationInput{SecretId: arn, RemoveReplicaRegions: []string{west}})
			return err
		},
		"UpdateSecret (KmsKeyId)": func() error {
			_, err := atk.UpdateSecret(w.ctx, &secretsmanager.UpdateSecretInput{SecretId: arn, KmsKeyId: aws.String("alias/attacker")})
			return err
		},
		"DeleteResourcePolicy": func() error {
			_, err := atk.DeleteResourcePolicy(w.ctx, &secretsmanager.DeleteResourcePolicyInput{SecretId: arn})
			return err
		},
	} {
		if err := call(); err == nil || !strings.Contains(err.Error(), "AccessDenied") {
			t.Errorf("someone else's %s on our primary: want AccessDenied, got %v", what, err)
		}
	}
	if d := w.secret(outside, res.Data["SecretName"]); d != nil {
		t.Error("the token was copied to sa-east-1")
	}
	w.assertSet(res, "hub-copy", []string{west}, "")
}
