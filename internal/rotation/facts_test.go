package rotation_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/ptc-credentials/ptc-credentials/internal/logging"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/rotation"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/rotationtest"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/dockerhub"
)

// tagValueRE is Secrets Manager's pattern for a tag value (TagResource API reference).
var tagValueRE = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$`)

func (f *fixture) factTags() map[string]string {
	f.t.Helper()
	d, err := f.sm.DescribeSecret(f.ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(f.arn)})
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string]string{}
	for _, t := range d.Tags {
		if k := aws.ToString(t.Key); strings.HasPrefix(k, ptcsecret.RotatorTagPrefix) {
			out[k] = aws.ToString(t.Value)
		}
	}
	return out
}

// TestMarkCarriesTheMintedExpiry: a rotation whose steps share an environment puts the expiry
// Docker Hub gave the minted token into testSecret's mark, for ptc status; one whose steps ran
// in four environments says "unknown" rather than leave the previous token's expiry.
func TestMarkCarriesTheMintedExpiry(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	r := f.Rotator()
	token := f.Begin()
	for _, step := range rotationtest.Steps {
		if err := f.StepWith(r, step, token); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	facts := f.factTags()
	exp, err := time.Parse(time.RFC3339, facts[ptcsecret.TagTestedExpiry])
	if err != nil {
		t.Fatalf("%s = %q, want the minted token's RFC3339 expiry", ptcsecret.TagTestedExpiry, facts[ptcsecret.TagTestedExpiry])
	}
	if tok := f.tokens()[token]; tok.ExpiresAt.IsZero() || !tok.ExpiresAt.Truncate(time.Second).Equal(exp) {
		t.Errorf("%s = %s, the token expires at %s", ptcsecret.TagTestedExpiry, exp, tok.ExpiresAt)
	}
	if _, ok := facts[rotation.TagLastFailure]; ok {
		t.Errorf("a good rotation wrote %s: %v", rotation.TagLastFailure, facts)
	}
	token = f.Begin()
	for _, step := range rotationtest.Steps {
		if err := f.Step(step, token); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	if got := f.factTags()[ptcsecret.TagTestedExpiry]; got != "unknown" {
		t.Errorf("cold rotation: %s = %q, want unknown (not the previous token's expiry)", ptcsecret.TagTestedExpiry, got)
	}
}

// leakyMintUpstream fails minting with an error that quotes the source password: the bug the
// rotator's redaction exists for. The tag it records must not carry it.
type leakyMintUpstream struct{ upstream.Upstream }

func (leakyMintUpstream) Mint(context.Context, upstream.MintRequest) (upstream.Minted, error) {
	return upstream.Minted{}, fmt.Errorf("careless upstream: login as %q refused {\"detail\": \"bad\"}", hubPassword)
}

// leakyRotator is a rotator whose upstream fails createSecret with leakyMintUpstream, under
// the redacting logger the function uses.
func (f *fixture) leakyRotator() *rotation.Rotator {
	r := f.Rotator()
	secrets := &logging.Secrets{}
	r.Logger = slog.New(logging.Redacting(slog.NewJSONHandler(f.Logs, nil), secrets))
	r.Secrets = secrets
	prov := dockerhub.Provider
	inner := prov.New
	prov.New = func(src []byte, o upstream.Options) (upstream.Upstream, error) {
		up, err := inner(src, o)
		if err != nil {
			return nil, err
		}
		return leakyMintUpstream{up}, nil
	}
	r.Providers = map[string]upstream.Provider{prov.Registry: prov}
	return r
}

// TestFactsRecordFailedStepRedactedAndClearIt: a failed step records "<time> <step>" and a short
// error that is a valid tag value and carries no secret, even when the upstream's error quotes
// one; the next promotion clears both.
func TestFactsRecordFailedStepRedactedAndClearIt(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	token := f.Begin()
	if err := f.StepWith(f.leakyRotator(), rotation.CreateSecret, token); err == nil {
		t.Fatal("createSecret passed with a failing mint")
	}
	facts := f.factTags()
	when, step, _ := strings.Cut(facts[rotation.TagLastFailure], " ")
	if _, err := time.Parse(time.RFC3339, when); err != nil || step != "createSecret" {
		t.Errorf("%s = %q, want \"<RFC3339> createSecret\"", rotation.TagLastFailure, facts[rotation.TagLastFailure])
	}
	msg := facts[rotation.TagLastError]
	if !strings.Contains(msg, "careless upstream") || !strings.Contains(msg, "REDACTED") {
		t.Errorf("%s = %q, want the redacted error", rotation.TagLastError, msg)
	}
	if !tagValueRE.MatchString(msg) || utf8.RuneCountInString(msg) > 256 || !ptcsecret.TagValueOK(msg) {
		t.Errorf("%s = %q is not a valid tag value", rotation.TagLastError, msg)
	}
	for k, v := range facts {
		if strings.Contains(v, hubPassword) {
			t.Errorf("tag %s carries the source password", k)
		}
	}
	if strings.Contains(f.logsText(), hubPassword) {
		t.Error("the source password reached the log")
	}
	// Secrets Manager retries the rotation; this time it works, and the failure is cleared.
	r := f.Rotator()
	for _, step := range rotationtest.Steps {
		if err := f.StepWith(r, step, token); err != nil {
			t.Fatalf("retry %s: %v", step, err)
		}
	}
	facts = f.factTags()
	if facts[rotation.TagLastFailure] != "none" || facts[rotation.TagLastError] != "none" {
		t.Errorf("after a promotion the failure is not cleared: %v", facts)
	}
}

// noFactsSM refuses TagResource of the facts keys (a role that lost the grant, a throttle).
type noFactsSM struct{ rotation.SecretsManager }

func (s noFactsSM) TagResource(ctx context.Context, in *secretsmanager.TagResourceInput, o ...func(*secretsmanager.Options)) (*secretsmanager.TagResourceOutput, error) {
	for _, t := range in.Tags {
		if k := aws.ToString(t.Key); k == rotation.TagLastFailure || k == rotation.TagLastError {
			return nil, errors.New("ThrottlingException: rate exceeded")
		}
	}
	return s.SecretsManager.TagResource(ctx, in, o...)
}

// TestFactsFailureNeverChangesTheOutcome: when the facts cannot be tagged, the failed step
// still reports its own error and the clearing promotion still promotes; both are logged and
// counted.
func TestFactsFailureNeverChangesTheOutcome(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	token := f.Begin()
	leaky := f.leakyRotator()
	if err := f.StepWith(leaky, rotation.CreateSecret, token); err == nil || !strings.Contains(err.Error(), "careless upstream") {
		t.Fatalf("createSecret: %v, want the mint's error", err)
	}
	r := f.Rotator()
	r.SM = noFactsSM{r.SM}
	if _, err := f.sm.TagResource(f.ctx, &secretsmanager.TagResourceInput{SecretId: aws.String(f.arn), Tags: []smtypes.Tag{
		{Key: aws.String(rotation.TagLastFailure), Value: aws.String("2026-12-01T00:00:00Z createSecret")}}}); err != nil {
		t.Fatal(err)
	}
	for _, step := range rotationtest.Steps {
		if err := f.StepWith(r, step, token); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	f.AssertStages(token, "AWSCURRENT")
	if !strings.Contains(f.emfText(), rotation.FactsNotRecorded) {
		t.Errorf("no %s metric:\n%s", rotation.FactsNotRecorded, f.emfText())
	}
	if !strings.Contains(f.logsText(), "could not record the rotation's facts") {
		t.Errorf("the failed TagResource was not logged:\n%s", f.logsText())
	}
}

// TestTagValue: any text becomes a valid tag value of at most 256 characters.
func TestTagValue(t *testing.T) {
	for in, want := range map[string]string{
		"plain: a/b=c+d-e@f_g.h":                    "plain: a/b=c+d-e@f_g.h",
		`login as "x" refused {"detail": "bad"}`:    "login as x refused detail : bad",
		"tab\tand\nnewline (parens) [REDACTED] ünï": "tab and newline parens REDACTED ünï",
		"":                         "",
		"!!!":                      "",
		strings.Repeat("ab", 300):  strings.Repeat("ab", 128),
		"  leading and trailing  ": "leading and trailing",
	} {
		got := rotation.TagValue(in)
		if got != want {
			t.Errorf("TagValue(%.40q) = %q, want %q", in, got, want)
		}
		if !tagValueRE.MatchString(got) || utf8.RuneCountInString(got) > 256 {
			t.Errorf("TagValue(%.40q) = %q is not a valid tag value", in, got)
		}
	}
}
