package operator

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
)

// The tested mark gives AWSCURRENT's expiry when it names AWSCURRENT, or the dropped copy of it
// that turning rotation on tested (a just-created rule); not when it names a pending version
// that is still in flight — that one is not the token ECR uses.
func TestReadFactsTakesTheExpiryOnlyFromAMarkThatSpeaksForCurrent(t *testing.T) {
	exp := "2027-01-02T03:04:05Z"
	describe := func(tested string, stages map[string][]string) *secretsmanager.DescribeSecretOutput {
		return &secretsmanager.DescribeSecretOutput{VersionIdsToStages: stages, Tags: []smtypes.Tag{
			{Key: aws.String(ptcsecret.TagTestedVersion), Value: aws.String(tested)},
			{Key: aws.String(ptcsecret.TagTestedExpiry), Value: aws.String(exp)},
		}}
	}
	want, _ := time.Parse(time.RFC3339, exp)
	for _, tc := range []struct {
		name        string
		d           *secretsmanager.DescribeSecretOutput
		expires, ok bool
	}{
		{"mark on AWSCURRENT", describe("v1", map[string][]string{"v1": {"AWSCURRENT"}}), true, true},
		{"mark on the dropped test copy", describe("x1", map[string][]string{"v1": {"AWSCURRENT"}}), true, false},
		{"mark on the dropped copy, listed without labels (moto)", describe("x1", map[string][]string{"v1": {"AWSCURRENT"}, "x1": {}}), true, false},
		{"mark on a pending version", describe("v2", map[string][]string{"v1": {"AWSCURRENT"}, "v2": {"AWSPENDING"}}), false, false},
		{"mark on AWSPREVIOUS", describe("v0", map[string][]string{"v1": {"AWSCURRENT"}, "v0": {"AWSPREVIOUS"}}), false, false},
	} {
		f := readFacts(tc.d)
		if got := f.expires != nil && f.expires.Equal(want); got != tc.expires || f.ok != tc.ok {
			t.Errorf("%s: expires %v ok %v; want expiry %v ok %v", tc.name, f.expires, f.ok, tc.expires, tc.ok)
		}
	}
}
