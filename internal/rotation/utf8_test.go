package rotation_test

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/rotation"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/rotationtest"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
)

// describeOnly answers DescribeSecret with a managed secret carrying the given ptc:upstream tag;
// the guards refuse the tag before any other call.
type describeOnly struct {
	rotation.SecretsManager
	upstreamTag string
}

func (d describeOnly) DescribeSecret(context.Context, *secretsmanager.DescribeSecretInput, ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error) {
	return &secretsmanager.DescribeSecretOutput{
		ARN:  aws.String("arn:aws:secretsmanager:eu-west-1:123456789012:secret:ecr-pullthroughcache/utf8-AbCdEf"),
		Name: aws.String("ecr-pullthroughcache/utf8"),
		Tags: []smtypes.Tag{{Key: aws.String(ptcsecret.TagUpstream), Value: aws.String(d.upstreamTag)}},
	}, nil
}

// TestRefusedValuesAreQuotedAsWholeCharacters: a step error quotes the bad Step or ptc:upstream
// value cut to size; the cut must not split a character (Go's %q would show the half character
// as a \x escape that is not what the event or the tag held). "a" then two-byte characters puts
// every even limit (40, 60) inside a character.
func TestRefusedValuesAreQuotedAsWholeCharacters(t *testing.T) {
	bad := "a" + strings.Repeat("é", 100)
	r := &rotation.Rotator{
		SM:        describeOnly{upstreamTag: bad},
		Providers: map[string]upstream.Provider{"docker-hub": {Registry: "docker-hub"}},
	}
	for name, ev := range map[string]rotation.Event{
		"Step":         {Step: rotation.Step(bad), SecretID: "x", ClientRequestToken: rotationtest.NewID()},
		"ptc:upstream": {Step: rotation.CreateSecret, SecretID: "ecr-pullthroughcache/utf8", ClientRequestToken: rotationtest.NewID()},
	} {
		t.Run(name, func(t *testing.T) {
			err := r.Handle(context.Background(), ev)
			if err == nil {
				t.Fatal("Handle accepted the bad value")
			}
			quoted := regexp.MustCompile(`"a(?:[^"\\]|\\.)*"`).FindString(err.Error())
			got, uerr := strconv.Unquote(quoted)
			if uerr != nil {
				t.Fatalf("the bad value is not quoted in %q", err.Error())
			}
			if !utf8.ValidString(got) || !strings.HasSuffix(got, "…") || !strings.HasPrefix(bad, strings.TrimSuffix(got, "…")) {
				t.Fatalf("quoted %q: not whole characters of the value, then …", got)
			}
		})
	}
}
