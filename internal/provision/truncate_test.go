package provision_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ptc-credentials/ptc-credentials/internal/pinned"
	"github.com/ptc-credentials/ptc-credentials/internal/provision"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/providers"
)

// TestLongValuesAreCutOnACharacterBoundary feeds every message that quotes a cut-down input a
// value whose limit falls inside a two-byte character: the quoted text must end with the
// ellipsis right after the last whole character, never with half of one (which %q shows as
// \xc3, and which turns into U+FFFD in CloudFormation's Reason or breaks a JSON consumer).
func TestLongValuesAreCutOnACharacterBoundary(t *testing.T) {
	// over returns n-1 ASCII bytes and then "é", so that byte n-1 starts a character and byte n
	// is its second half.
	over := func(n int) (in, kept string) {
		kept = strings.Repeat("a", n-1)
		return kept + "é" + strings.Repeat("b", 10), kept
	}
	valid := func() map[string]any {
		return map[string]any{
			"EcrRepositoryPrefix": "docker-hub", "UpstreamRegistry": "docker-hub",
			"SourceSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:ptc-source/hub-AbCdEf",
		}
	}
	check := func(t *testing.T, err error, kept string) {
		t.Helper()
		if err == nil {
			t.Fatal("accepted")
		}
		msg := err.Error()
		if want := fmt.Sprintf("%q", kept+"…"); !strings.Contains(msg, want) {
			t.Fatalf("the message does not quote the input cut before the split character (%s…): %s", kept[:8], msg)
		}
		if strings.Contains(msg, `\x`) || !utf8.ValidString(msg) {
			t.Fatalf("the message carries half a character: %s", msg)
		}
	}

	t.Run("SourceSecretArn", func(t *testing.T) {
		raw := valid()
		in, kept := over(120)
		raw["SourceSecretArn"] = in
		_, err := provision.ParseProperties(raw, providers.All(), pinned.Standins{})
		check(t, err, kept)
	})
	t.Run("RecoveryWindowInDays", func(t *testing.T) {
		raw := valid()
		in, kept := over(20)
		raw["RecoveryWindowInDays"] = in
		_, err := provision.ParseProperties(raw, providers.All(), pinned.Standins{})
		check(t, err, kept)
	})
	p := &provision.Provisioner{Providers: providers.All(), RotationLambdaARN: "arn:aws:lambda:us-east-1:123456789012:function:rotator"}
	t.Run("StackId", func(t *testing.T) {
		in, kept := over(200)
		_, err := p.Create(context.Background(), provision.Request{Type: "Create", StackID: in, LogicalID: "Cache", Properties: valid()})
		check(t, err, kept)
	})
	t.Run("PhysicalResourceId", func(t *testing.T) {
		in, kept := over(200)
		_, err := p.Update(context.Background(), provision.Request{
			Type: "Update", StackID: "arn:aws:cloudformation:us-east-1:123456789012:stack/s/guid", LogicalID: "Cache",
			PhysicalID: in, Properties: valid(), OldProperties: valid(),
		})
		check(t, err, kept)
	})
}

// ECR's validation failure may carry an upstream's message of any length and script; the
// Create error keeps its first 500 bytes, cut on a character boundary.
func TestECRFailureIsCutOnACharacterBoundary(t *testing.T) {
	e := newEnv(t)
	lead := "UpstreamAuthenticationFailed: authentication to the upstream registry " + e.hubURL + " failed: "
	kept := lead + strings.Repeat("a", 499-len(lead))
	e.verifyErr = errors.New(kept[len(lead):] + "é" + strings.Repeat("b", 10))
	_, err := e.do("Create", "", e.props(newPrefix()), nil)
	if err == nil {
		t.Fatal("Create succeeded")
	}
	if msg := err.Error(); !strings.Contains(msg, "ECR could not use the new credential: "+kept+"… ") || !utf8.ValidString(msg) {
		t.Fatalf("the failure is not cut before the split character: %q", msg)
	}
}
