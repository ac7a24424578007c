package provision_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/ptc-credentials/ptc-credentials/internal/provision"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
)

// asOtherStack is e seen from another stack in the same account: the same services and
// provisioner, but requests carry a different StackID and so a different owner
// (ManagedBy(stackID, "Cache")). It is how the tests below play an attacker who controls a
// stack of their own and knows the victim's physical id.
func (e *env) asOtherStack() *env {
	other := *e
	other.stackID = strings.Replace(e.stackID, "ptc-test", "attacker-stack", 1)
	return &other
}

// snapshot is what the tests below compare to prove a victim's secret was not changed: its
// tags, its rotation settings and which version holds AWSCURRENT. No secret value is kept.
type snapshot struct {
	tags     map[string]string
	rotation bool
	lambda   string
	schedule string
	current  string
}

// snap reads the snapshot of secret name.
func (e *env) snap(name string) snapshot {
	e.t.Helper()
	d := e.secret(name)
	if d == nil {
		e.t.Fatalf("secret %s is gone", name)
	}
	s := snapshot{tags: map[string]string{}, rotation: aws.ToBool(d.RotationEnabled), lambda: aws.ToString(d.RotationLambdaARN),
		current: testenv.VersionWith(d.VersionIdsToStages, "AWSCURRENT")}
	if d.RotationRules != nil {
		s.schedule = aws.ToString(d.RotationRules.ScheduleExpression)
	}
	for _, t := range d.Tags {
		s.tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return s
}

// equal compares snapshots field by field (maps are not comparable with ==).
func (s snapshot) equal(o snapshot) bool {
	if s.rotation != o.rotation || s.lambda != o.lambda || s.schedule != o.schedule || s.current != o.current || len(s.tags) != len(o.tags) {
		return false
	}
	for k, v := range s.tags {
		if o.tags[k] != v {
			return false
		}
	}
	return true
}

// Guard: Update's checkOwner. Another stack that sends an in-place Update for our physical id
// (new source secret, schedule and tags: everything Update can change in place) is refused, and
// our secret keeps its tags, rotation and current value.
func TestUpdateFromAnotherOwnerIsRefusedAndChangesNothing(t *testing.T) {
	e := newEnv(t)
	prefix := newPrefix()
	name := ptcsecret.Prefix + prefix
	res := e.mustDo("Create", "", e.props(prefix), nil)
	before := e.snap(name)
	tokensBefore := len(e.tokens(name))

	// The attacker's own source secret, which they would like our secret to rotate from.
	evil, err := e.sm.CreateSecret(e.ctx, &secretsmanager.CreateSecretInput{
		Name:         aws.String("ptc-source/attacker-" + prefix),
		SecretString: aws.String(`{"username":"` + hubUser + `","password":"` + hubPassword + `","apiUrl":"` + e.hubURL + `"}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	props := e.props(prefix)
	props["SourceSecretArn"] = aws.ToString(evil.ARN)
	props["RotationSchedule"] = "rate(7 days)"
	props["Tags"] = []any{map[string]any{"Key": "team", "Value": "attacker"}}

	_, err = e.asOtherStack().do("Update", res.PhysicalID, props, e.props(prefix))
	// Errorf, not Fatalf: when the refusal is missing, the checks below show what it let through.
	if err == nil {
		t.Error("an Update from another stack was accepted")
	} else if !strings.Contains(err.Error(), "not by this resource") {
		t.Errorf("refusal does not say the secret belongs to someone else: %v", err)
	}
	if after := e.snap(name); !after.equal(before) {
		t.Errorf("another stack's Update changed our secret:\nbefore %+v\nafter  %+v", before, after)
	}
	if n := len(e.tokens(name)); n != tokensBefore {
		t.Errorf("another stack's Update minted or revoked tokens: %d before, %d after", tokensBefore, n)
	}
	if f := e.fsm.Failures(); len(f) != 0 {
		t.Errorf("a rotation ran: %v", f)
	}
	e.assertNoLeak()
}

// Guard: Delete leaves alone a rule for our prefix that reads another secret. Someone has
// repointed the rule at their own ecr-pullthroughcache/ secret; our Delete removes our secret
// but not their rule.
func TestDeleteLeavesARuleThatReadsAnotherSecret(t *testing.T) {
	e := newEnv(t)
	prefix := newPrefix()
	name := ptcsecret.Prefix + prefix
	res := e.mustDo("Create", "", e.props(prefix), nil)

	theirs, err := e.sm.CreateSecret(e.ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String(ptcsecret.Prefix + "theirs-" + prefix), SecretString: aws.String(`{"username":"x","accessToken":"PLANTED-their-value"}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.ecr.DeletePullThroughCacheRule(e.ctx, &ecr.DeletePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String(prefix)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ecr.CreatePullThroughCacheRule(e.ctx, &ecr.CreatePullThroughCacheRuleInput{
		EcrRepositoryPrefix: aws.String(prefix), UpstreamRegistryUrl: aws.String("registry-1.docker.io"),
		UpstreamRegistry: ecrtypes.UpstreamRegistryDockerHub, CredentialArn: theirs.ARN,
	}); err != nil {
		t.Fatal(err)
	}

	e.mustDo("Delete", res.PhysicalID, e.props(prefix), nil)
	if r := e.rule(prefix); r == nil || r.CredentialARN != aws.ToString(theirs.ARN) {
		t.Fatalf("our Delete removed or changed a rule that reads another secret: %+v", r)
	}
	if s := e.secret(name); s != nil && s.DeletedDate == nil {
		t.Fatal("our own secret was not deleted")
	}
	if s := e.secret(aws.ToString(theirs.Name)); s == nil || s.DeletedDate != nil {
		t.Fatal("the other secret was deleted")
	}
	if !strings.Contains(e.logs.String(), "uses another secret") {
		t.Fatal("the log does not say the rule was left alone")
	}
	e.assertNoLeak("PLANTED-their-value")
}

// racingSM is the provisioner's Secrets Manager with a hook run just before CreateSecret: it
// lets a test create a secret of the same name in the gap between Create's check that the name
// is free and its CreateSecret, the race the undo must survive.
type racingSM struct {
	provision.SecretsManager
	beforeCreate func(ctx context.Context, in *secretsmanager.CreateSecretInput)
}

func (r *racingSM) CreateSecret(ctx context.Context, in *secretsmanager.CreateSecretInput, o ...func(*secretsmanager.Options)) (*secretsmanager.CreateSecretOutput, error) {
	if r.beforeCreate != nil {
		r.beforeCreate(ctx, in)
	}
	return r.SecretsManager.CreateSecret(ctx, in, o...)
}

// Guard: Create's undo deletes only the secret holding this attempt's version and owned by
// this resource. Someone creates a secret with our name after Create checked the name was free;
// our CreateSecret is refused (ResourceExistsException), the undo runs, and their secret must
// survive — whether it carries another owner's tag, or, as a concurrent attempt of the same
// resource would, our own owner tag with another version, or (an attacker who saw our
// ClientRequestToken) our version id under another owner's tag. The last two cases each defend
// one of the undo's two checks alone.
func TestCreateUndoNeverDeletesASecretItDidNotCreate(t *testing.T) {
	for _, tc := range []struct {
		name        string
		tags        func(e *env) []smtypes.Tag
		sameVersion bool
	}{
		{"someone else's secret", func(e *env) []smtypes.Tag { return nil }, false},
		{"ours by tag but another version", func(e *env) []smtypes.Tag {
			return []smtypes.Tag{{Key: aws.String(ptcsecret.TagManagedBy), Value: aws.String(provision.ManagedBy(e.stackID, "Cache"))}}
		}, false},
		{"our version id under another owner", func(e *env) []smtypes.Tag {
			return []smtypes.Tag{{Key: aws.String(ptcsecret.TagManagedBy), Value: aws.String(provision.ManagedBy(e.asOtherStack().stackID, "Cache"))}}
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			prefix := newPrefix()
			name := ptcsecret.Prefix + prefix
			var raced bool
			e.prov.SM = &racingSM{SecretsManager: e.fsm, beforeCreate: func(ctx context.Context, in *secretsmanager.CreateSecretInput) {
				if aws.ToString(in.Name) != name || raced {
					return
				}
				raced = true
				racer := &secretsmanager.CreateSecretInput{
					Name: in.Name, SecretString: aws.String(`{"username":"x","accessToken":"PLANTED-racer-value"}`), Tags: tc.tags(e),
				}
				if tc.sameVersion {
					racer.ClientRequestToken = in.ClientRequestToken
				}
				if _, err := e.sm.CreateSecret(ctx, racer); err != nil {
					t.Errorf("planting the racing secret: %v", err)
				}
			}}
			_, err := e.do("Create", "", e.props(prefix), nil)
			if err == nil {
				t.Fatal("Create succeeded over a secret created in the race")
			}
			var exists *smtypes.ResourceExistsException
			if !raced || !errors.As(err, &exists) {
				t.Fatalf("the Create did not fail on CreateSecret as planned: %v", err)
			}
			if s := e.secret(name); s == nil || s.DeletedDate != nil {
				t.Fatal("Create's undo deleted a secret it did not create")
			}
			if e.rule(prefix) != nil {
				t.Fatal("a rule was left behind")
			}
			if n := len(e.tokens(name)); n != 0 {
				t.Fatalf("%d tokens were left behind", n)
			}
			e.assertNoLeak("PLANTED-racer-value")
		})
	}
}

// Overlaps tells cfnauth which physical ids name part of the same set: a replacement changes
// both the prefix and the secret name (Update insists), so the real old id never overlaps the
// new one, while an alias of the live set always does.
func TestOverlaps(t *testing.T) {
	live := provision.PhysicalID("hub2", "ecr-pullthroughcache/hub2")
	for _, tc := range []struct {
		id   string
		want bool
	}{
		{provision.PhysicalID("hub", "ecr-pullthroughcache/hub"), false},
		{provision.PhysicalID("zzz", "ecr-pullthroughcache/hub2"), true},
		{provision.PhysicalID("hub2", "ecr-pullthroughcache/other"), true},
		{live, true},
		{"failed-create-0b1c", false},
	} {
		if got := provision.Overlaps(tc.id, live); got != tc.want {
			t.Errorf("Overlaps(%q, live) = %v, want %v", tc.id, got, tc.want)
		}
	}
}
