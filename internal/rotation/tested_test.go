package rotation_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/rotation"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
)

func (f *fixture) tag(key string) string {
	f.t.Helper()
	d, err := f.sm.DescribeSecret(f.ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(f.arn)})
	if err != nil {
		f.t.Fatal(err)
	}
	for _, t := range d.Tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value)
		}
	}
	return ""
}

// A direct invoke (anyone with lambda:InvokeFunction, or a buggy caller) that runs createSecret
// and then finishSecret, skipping testSecret, must not promote the untested token.
func TestFinishSecretRefusesAVersionTestSecretNeverPassed(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	oldID, oldVal := f.current()
	token := newID()
	if err := testenv.BeginRotation(f.ctx, f.sm, f.arn, token, true); err != nil {
		t.Fatal(err)
	}
	for _, s := range []rotation.Step{rotation.CreateSecret, rotation.SetSecret} {
		if err := f.step(s, token); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	err := f.step(rotation.FinishSecret, token)
	if err == nil {
		t.Fatal("finishSecret promoted a version testSecret never passed")
	}
	if !strings.Contains(err.Error(), ptcsecret.TagTestedVersion) || !strings.Contains(err.Error(), "AWSCURRENT still works") {
		t.Errorf("error %q does not name the mark and the state", err)
	}
	if id, v := f.current(); id != oldID || v != oldVal {
		t.Fatalf("AWSCURRENT moved to %s", id)
	}
	f.mustLogIn(oldVal, "AWSCURRENT after the refused finish")

	// Secrets Manager's retry of the whole rotation tests the version, and then it is promoted.
	for _, s := range []rotation.Step{rotation.CreateSecret, rotation.SetSecret, rotation.TestSecret, rotation.FinishSecret} {
		if err := f.step(s, token); err != nil {
			t.Fatalf("retry %s: %v", s, err)
		}
	}
	if id, _ := f.current(); id != token {
		t.Fatalf("AWSCURRENT is %s after the retried rotation, want %s", id, token)
	}
	f.assertNoLeak()
}

// The mark is made by one invocation and read by another (finishSecret often runs in a fresh
// Lambda environment), and it names exactly the version that passed: a mark left by an earlier
// version does not let a later one through.
func TestTestedMarkSurvivesEnvironmentsAndNamesOneVersion(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	first := f.rotate()
	if got := f.tag(ptcsecret.TagTestedVersion); got != first {
		t.Fatalf("after a rotation the mark is %q, want %q", got, first)
	}
	if got := f.tag(ptcsecret.TagTestedUsername); got != hubUser {
		t.Errorf("tested username tag = %q, want %q", got, hubUser)
	}
	second := newID()
	if err := testenv.BeginRotation(f.ctx, f.sm, f.arn, second, true); err != nil {
		t.Fatal(err)
	}
	if err := f.step(rotation.CreateSecret, second); err != nil {
		t.Fatal(err)
	}
	if err := f.step(rotation.FinishSecret, second); err == nil {
		t.Fatal("the mark of the previous version let an untested one through")
	}
	if id, _ := f.current(); id != first {
		t.Fatalf("AWSCURRENT moved to %s", id)
	}
	// testSecret in one environment, finishSecret in another.
	if err := f.stepWith(f.rotator(), rotation.TestSecret, second); err != nil {
		t.Fatal(err)
	}
	if err := f.stepWith(f.rotator(), rotation.FinishSecret, second); err != nil {
		t.Fatal(err)
	}
	if id, _ := f.current(); id != second {
		t.Fatalf("AWSCURRENT is %s, want %s", id, second)
	}
}

// setSecret compares identities from the mark when the current version is the one testSecret
// proved, and still refuses a changed username.
func TestSetSecretReadsTheCurrentUsernameFromTheMark(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	f.rotate() // the current version now carries the mark
	token := newID()
	if err := testenv.BeginRotation(f.ctx, f.sm, f.arn, token, true); err != nil {
		t.Fatal(err)
	}
	if err := f.step(rotation.CreateSecret, token); err != nil {
		t.Fatal(err)
	}
	counting := &countingGets{SecretsManager: f.sm}
	r := f.rotator()
	r.SM = counting
	if err := f.stepWith(r, rotation.SetSecret, token); err != nil {
		t.Fatal(err)
	}
	if counting.gets != 1 { // the pending value only
		t.Errorf("setSecret made %d GetSecretValue calls, want 1 (pending; the current username comes from the mark)", counting.gets)
	}

	// Once testSecret has marked the pending version (live, not current), the mark no longer
	// speaks for the current version: setSecret reads the current value again.
	if err := f.step(rotation.TestSecret, token); err != nil {
		t.Fatal(err)
	}
	counting.gets = 0
	r = f.rotator()
	r.SM = counting
	if err := f.stepWith(r, rotation.SetSecret, token); err != nil {
		t.Fatal(err)
	}
	if counting.gets != 2 {
		t.Errorf("setSecret after the pending version was marked made %d GetSecretValue calls, want 2 (pending and current)", counting.gets)
	}
	if err := f.step(rotation.FinishSecret, token); err != nil {
		t.Fatal(err)
	}

	// A mark naming another username (the source now logs in as someone else) is refused.
	token = newID()
	if err := testenv.BeginRotation(f.ctx, f.sm, f.arn, token, true); err != nil {
		t.Fatal(err)
	}
	if err := f.step(rotation.CreateSecret, token); err != nil {
		t.Fatal(err)
	}
	if _, err := f.sm.TagResource(f.ctx, &secretsmanager.TagResourceInput{SecretId: aws.String(f.arn),
		Tags: []types.Tag{{Key: aws.String(ptcsecret.TagTestedUsername), Value: aws.String("someone-else")}}}); err != nil {
		t.Fatal(err)
	}
	if err := f.step(rotation.SetSecret, token); err == nil || !strings.Contains(err.Error(), "someone-else") {
		t.Fatalf("setSecret with a changed identity: %v", err)
	}
}

type countingGets struct {
	rotation.SecretsManager
	gets int
}

func (c *countingGets) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, o ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	c.gets++
	return c.SecretsManager.GetSecretValue(ctx, in, o...)
}
