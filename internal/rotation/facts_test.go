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

	"github.com/ptc-credentials/ptc-credentials/internal/logging"
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
		if k := aws.ToString(t.Key); k == rotation.TagLastRotation || k == rotation.TagExpiresAt || k == rotation.TagLastError {
			out[k] = aws.ToString(t.Value)
		}
	}
	return out
}

// TestFactsRecordedAfterRotation: a rotation whose four steps share an environment records
// when it finished, that it went well, and the expiry Docker Hub gave the minted token.
func TestFactsRecordedAfterRotation(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	r := f.Rotator()
	token := f.Begin()
	for _, step := range rotationtest.Steps {
		if err := f.StepWith(r, step, token); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	facts := f.factTags()
	when, outcome, _ := strings.Cut(facts[rotation.TagLastRotation], " ")
	if _, err := time.Parse(time.RFC3339, when); err != nil || outcome != rotation.OutcomeOK {
		t.Errorf("%s = %q, want \"<RFC3339> ok\"", rotation.TagLastRotation, facts[rotation.TagLastRotation])
	}
	exp, err := time.Parse(time.RFC3339, facts[rotation.TagExpiresAt])
	if err != nil {
		t.Fatalf("%s = %q, want the minted token's RFC3339 expiry", rotation.TagExpiresAt, facts[rotation.TagExpiresAt])
	}
	if tok := f.tokens()[token]; !tok.ExpiresAt.IsZero() && !tok.ExpiresAt.Truncate(time.Second).Equal(exp) {
		t.Errorf("%s = %s, the token expires at %s", rotation.TagExpiresAt, exp, tok.ExpiresAt)
	}
	if facts[rotation.TagLastError] != "none" {
		t.Errorf("%s = %q after a good rotation, want none", rotation.TagLastError, facts[rotation.TagLastError])
	}
	// Four environments: the expiry seen at createSecret is not known at finishSecret.
	token = f.Begin()
	for _, step := range rotationtest.Steps {
		if err := f.Step(step, token); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	if got := f.factTags()[rotation.TagExpiresAt]; got != "unknown" {
		t.Errorf("cold finishSecret: %s = %q, want unknown (not the previous token's expiry)", rotation.TagExpiresAt, got)
	}
}

// leakyMintUpstream fails minting with an error that quotes the source password: the bug the
// rotator's redaction exists for. The tag it records must not carry it.
type leakyMintUpstream struct{ upstream.Upstream }

func (leakyMintUpstream) Mint(context.Context, upstream.MintRequest) (upstream.Minted, error) {
	return upstream.Minted{}, fmt.Errorf("careless upstream: login as %q refused {\"detail\": \"bad\"}", hubPassword)
}

// TestFactsRecordFailedStepRedacted: a failed step records "failed <step>" and a short error
// that is a valid tag value and carries no secret, even when the upstream's error quotes one.
func TestFactsRecordFailedStepRedacted(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
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
	token := f.Begin()
	if err := f.StepWith(r, rotation.CreateSecret, token); err == nil {
		t.Fatal("createSecret passed with a failing mint")
	}
	facts := f.factTags()
	if !strings.HasSuffix(facts[rotation.TagLastRotation], " failed createSecret") {
		t.Errorf("%s = %q, want \"<RFC3339> failed createSecret\"", rotation.TagLastRotation, facts[rotation.TagLastRotation])
	}
	msg := facts[rotation.TagLastError]
	if !strings.Contains(msg, "careless upstream") || !strings.Contains(msg, "REDACTED") {
		t.Errorf("%s = %q, want the redacted error", rotation.TagLastError, msg)
	}
	if !tagValueRE.MatchString(msg) || utf8.RuneCountInString(msg) > 256 {
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
}

// noTagSM refuses TagResource, as an older rotator role without the grant would.
type noTagSM struct{ rotation.SecretsManager }

func (noTagSM) TagResource(context.Context, *secretsmanager.TagResourceInput, ...func(*secretsmanager.Options)) (*secretsmanager.TagResourceOutput, error) {
	return nil, errors.New("AccessDeniedException: not authorized to perform secretsmanager:TagResource")
}

// TestFactsFailureNeverFailsTheRotation: a TagResource that fails is logged and counted; the
// rotation still promotes its token.
func TestFactsFailureNeverFailsTheRotation(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	r := f.Rotator()
	r.SM = noTagSM{r.SM}
	token := f.Begin()
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
