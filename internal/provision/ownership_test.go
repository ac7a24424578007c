package provision_test

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/ptc-credentials/ptc-credentials/internal/provision"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/localsm"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
)

func tagOf(d *secretsmanager.DescribeSecretOutput, key string) string {
	for _, t := range d.Tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value)
		}
	}
	return ""
}

func (e *env) policy(name string) string {
	e.t.Helper()
	out, err := e.sm.GetResourcePolicy(e.ctx, &secretsmanager.GetResourcePolicyInput{SecretId: aws.String(name)})
	if err != nil {
		e.t.Fatal(err)
	}
	return aws.ToString(out.ResourcePolicy)
}

func wantPolicy(t *testing.T) string {
	t.Helper()
	p, err := provision.ProtectingPolicy(testenv.RotatorRoleARN, testenv.ProvisionerRoleARN)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// M1: another team retags the victim's secret to name its own stack, and copies the proof of a
// secret its stack really owns. An honest Create in the attacker's stack must not adopt the
// victim's secret or rule, and deleting the attacker's resource removes nothing of the
// victim's. (moto does not enforce resource policies, which is what lets the retag happen here:
// the policy is the first wall, this test is the second.)
func TestRetaggedVictimSecretIsNeverAdopted(t *testing.T) {
	e := newEnv(t)
	victimPrefix := newPrefix()
	victimName := ptcsecret.Prefix + victimPrefix
	e.mustDo("Create", "", e.props(victimPrefix), nil)

	attacker := e.asOtherStack()
	attackerOwner := provision.ManagedBy(attacker.stackID, "Cache")
	// The attacker's stack owns a set of its own, whose proof it can read and copy.
	own := attacker.mustDo("Create", "", e.props(newPrefix()), nil)
	_, ownName, _ := provision.ParsePhysicalID(own.PhysicalID)
	copied := tagOf(e.secret(ownName), ptcsecret.TagOwnerMAC)
	if copied == "" {
		t.Fatal("the attacker's own secret has no proof to copy")
	}
	if _, err := e.sm.TagResource(e.ctx, &secretsmanager.TagResourceInput{SecretId: aws.String(victimName), Tags: []smtypes.Tag{
		{Key: aws.String(ptcsecret.TagManagedBy), Value: aws.String(attackerOwner)},
		{Key: aws.String(ptcsecret.TagOwnerMAC), Value: aws.String(copied)},
	}}); err != nil {
		t.Fatal(err)
	}
	before := e.snap(victimName)
	tokensBefore := len(e.tokens(victimName))

	// The attacker's honest Create for the victim's prefix and name.
	_, err := attacker.do("Create", "", e.props(victimPrefix), nil)
	if err == nil || !strings.Contains(err.Error(), ptcsecret.TagOwnerMAC) {
		t.Fatalf("Create adopted (or refused for another reason) a retagged secret: %v", err)
	}
	// The attacker's stack is deleted, naming the victim's set.
	if _, err := attacker.do("Delete", provision.PhysicalID(victimPrefix, victimName), e.props(victimPrefix), nil); err != nil {
		t.Fatal(err)
	}
	if d := e.secret(victimName); d == nil || d.DeletedDate != nil {
		t.Fatal("the attacker's Delete deleted the victim's secret")
	}
	if e.rule(victimPrefix) == nil {
		t.Fatal("the attacker's Delete removed the victim's rule")
	}
	if n := len(e.tokens(victimName)); n != tokensBefore {
		t.Fatalf("the victim's tokens changed: %d before, %d after", tokensBefore, n)
	}
	if after := e.snap(victimName); !after.equal(before) {
		t.Fatalf("the victim's secret changed:\nbefore %+v\nafter  %+v", before, after)
	}
	e.assertNoLeak()
}

// A proof is bound to its secret's name: the same owner's proof on another name does not
// verify, and changing one character of the owner breaks it.
func TestOwnerMACBindsOwnerAndName(t *testing.T) {
	key := []byte(testenv.OwnerKey)
	a := provision.OwnerMAC(key, "us-east-1", "123456789012", "ecr-pullthroughcache/a", "stack/A")
	for name, other := range map[string]string{
		"other name":    provision.OwnerMAC(key, "us-east-1", "123456789012", "ecr-pullthroughcache/b", "stack/A"),
		"other owner":   provision.OwnerMAC(key, "us-east-1", "123456789012", "ecr-pullthroughcache/a", "stack/B"),
		"other Region":  provision.OwnerMAC(key, "eu-west-1", "123456789012", "ecr-pullthroughcache/a", "stack/A"),
		"other account": provision.OwnerMAC(key, "us-east-1", "210987654321", "ecr-pullthroughcache/a", "stack/A"),
		"other key":     provision.OwnerMAC([]byte("another key of the same length, 64 characters long, padding.."), "us-east-1", "123456789012", "ecr-pullthroughcache/a", "stack/A"),
	} {
		if other == a {
			t.Errorf("%s: same proof %s", name, a)
		}
	}
	if a != provision.OwnerMAC(key, "us-east-1", "123456789012", "ecr-pullthroughcache/a", "stack/A") {
		t.Error("the proof is not deterministic")
	}
}

// Create gives the secret the protecting policy; Update re-applies it when it drifted; a secret
// of the release before proofs (owner tag, no proof, no policy) is upgraded by its next Update;
// a secret with a policy but its proof stripped is not taken for such a legacy secret.
func TestPolicyAndProofAtCreateAndAfterDriftOrUpgrade(t *testing.T) {
	e := newEnv(t)
	prefix := newPrefix()
	name := ptcsecret.Prefix + prefix
	res := e.mustDo("Create", "", e.props(prefix), nil)
	want := wantPolicy(t)
	if got := e.policy(name); got != want {
		t.Fatalf("Create put policy %s, want %s", got, want)
	}
	mac := tagOf(e.secret(name), ptcsecret.TagOwnerMAC)
	if mac != provision.OwnerMAC([]byte(testenv.OwnerKey), testenv.Region, testenv.AccountID, name, provision.ManagedBy(e.stackID, "Cache")) {
		t.Fatalf("Create tagged proof %q", mac)
	}

	// Drift: someone replaced the policy (moto enforces nothing).
	if _, err := e.sm.PutResourcePolicy(e.ctx, &secretsmanager.PutResourcePolicyInput{SecretId: aws.String(name),
		ResourcePolicy: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"secretsmanager:DeleteSecret","Resource":"*"}]}`)}); err != nil {
		t.Fatal(err)
	}
	e.mustDo("Update", res.PhysicalID, e.props(prefix), e.props(prefix))
	if got := e.policy(name); got != want {
		t.Fatalf("Update left drifted policy %s", got)
	}

	// Stripped proof with the policy still on: refused, not mistaken for legacy.
	if _, err := e.sm.UntagResource(e.ctx, &secretsmanager.UntagResourceInput{SecretId: aws.String(name), TagKeys: []string{ptcsecret.TagOwnerMAC}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.do("Update", res.PhysicalID, e.props(prefix), e.props(prefix)); err == nil || !strings.Contains(err.Error(), "proof was removed") {
		t.Fatalf("Update of a protected secret without its proof: %v", err)
	}

	// Legacy: no proof and no policy, as the release before made it.
	if _, err := e.sm.DeleteResourcePolicy(e.ctx, &secretsmanager.DeleteResourcePolicyInput{SecretId: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
	e.mustDo("Update", res.PhysicalID, e.props(prefix), e.props(prefix))
	if got := e.policy(name); got != want {
		t.Fatalf("Update did not protect a legacy secret: %s", got)
	}
	if got := tagOf(e.secret(name), ptcsecret.TagOwnerMAC); got != mac {
		t.Fatalf("Update did not add the proof to a legacy secret: %q", got)
	}
	e.mustDo("Delete", res.PhysicalID, e.props(prefix), nil)
	e.assertGone(prefix, name)
}

// The real policy document, evaluated: a principal that is neither function role may not touch
// the ptc:* tags, the value or the policy; the roles may do their jobs; ECR's reads and other
// teams' own tags are untouched.
func TestProtectingPolicyDeniesEveryoneButTheFunctions(t *testing.T) {
	doc := wantPolicy(t)
	if len(doc) > provision.MaxPolicyLength {
		t.Fatalf("policy is %d characters, over %d", len(doc), provision.MaxPolicyLength)
	}
	if errs := localsm.ValidatePolicy(doc); len(errs) != 0 {
		t.Fatalf("ValidateResourcePolicy's checks fail: %+v", errs)
	}
	arn := "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/x-AbCdEf"
	ecrRole := "arn:aws:iam::123456789012:role/aws-service-role/pullthroughcache.ecr.amazonaws.com/AWSServiceRoleForECRPullThroughCache"
	for _, c := range []struct {
		who, action string
		tags        []string
		denied      bool
	}{
		{testenv.OtherTeamRoleARN, "TagResource", []string{ptcsecret.TagSourceSecret}, true},
		{testenv.OtherTeamRoleARN, "TagResource", []string{"team", ptcsecret.TagManagedBy}, true},
		{testenv.OtherTeamRoleARN, "UntagResource", []string{ptcsecret.TagOwnerMAC}, true},
		{testenv.OtherTeamRoleARN, "TagResource", []string{"team"}, false},
		{testenv.OtherTeamRoleARN, "PutSecretValue", nil, true},
		{testenv.OtherTeamRoleARN, "UpdateSecretVersionStage", nil, true},
		{testenv.OtherTeamRoleARN, "CancelRotateSecret", nil, true},
		{testenv.OtherTeamRoleARN, "UpdateSecret", nil, true},
		{testenv.OtherTeamRoleARN, "ReplicateSecretToRegions", nil, true},
		{testenv.OtherTeamRoleARN, "RemoveRegionsFromReplication", nil, true},
		{testenv.OtherTeamRoleARN, "PutResourcePolicy", nil, true},
		{testenv.OtherTeamRoleARN, "DeleteResourcePolicy", nil, true},
		{testenv.OtherTeamRoleARN, "RotateSecret", nil, false},
		{testenv.OtherTeamRoleARN, "DeleteSecret", nil, false},
		{ecrRole, "GetSecretValue", nil, false},
		{ecrRole, "DescribeSecret", nil, false},
		{testenv.RotatorRoleARN, "PutSecretValue", nil, false},
		{testenv.RotatorRoleARN, "UpdateSecretVersionStage", nil, false},
		{testenv.RotatorRoleARN, "PutResourcePolicy", nil, true},
		{testenv.ProvisionerRoleARN, "TagResource", []string{ptcsecret.TagSourceSecret}, false},
		{testenv.ProvisionerRoleARN, "PutResourcePolicy", nil, false},
		{testenv.ProvisionerRoleARN, "UpdateSecretVersionStage", nil, false},
	} {
		denied, sid, err := localsm.Denies(doc, localsm.PolicyRequest{Action: "secretsmanager:" + c.action, PrincipalARN: c.who, ResourceARN: arn, TagKeys: c.tags})
		if err != nil {
			t.Fatal(err)
		}
		if denied != c.denied {
			t.Errorf("%s %s %v: denied=%v (%s), want %v", c.who, c.action, c.tags, denied, sid, c.denied)
		}
	}
}

// Without both role ARNs or the key the provisioner makes nothing (it could neither protect nor
// prove what it made).
func TestCreateNeedsRolesAndKey(t *testing.T) {
	e := newEnv(t)
	prefix := newPrefix()
	p := *e.prov
	p.ProvisionerRoleARN = ""
	e.prov = &p
	if _, err := e.do("Create", "", e.props(prefix), nil); err == nil || !strings.Contains(err.Error(), "PROVISIONER_ROLE_ARN") {
		t.Fatalf("Create without PROVISIONER_ROLE_ARN: %v", err)
	}
	p.ProvisionerRoleARN, p.OwnerKey = testenv.ProvisionerRoleARN, nil
	if _, err := e.do("Create", "", e.props(prefix), nil); err == nil || !strings.Contains(err.Error(), "OWNER_KEY_SECRET_ARN") {
		t.Fatalf("Create without an owner key: %v", err)
	}
	if e.secret(ptcsecret.Prefix+prefix) != nil || len(e.tokens(ptcsecret.Prefix+prefix)) != 0 {
		t.Fatal("a refused Create left a secret or a token")
	}
	e.errs = nil
}
