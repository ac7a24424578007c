package provision_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/ptc-credentials/ptc-credentials/internal/pinned"
	"github.com/ptc-credentials/ptc-credentials/internal/provision"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/providers"
)

func baseProps() map[string]any {
	return map[string]any{
		"EcrRepositoryPrefix": "hub",
		"UpstreamRegistry":    "docker-hub",
		"SourceSecretArn":     "arn:aws:secretsmanager:us-east-1:123456789012:secret:ptc-source/hub-AbCdEf",
	}
}

// ReplicaRegions arrives as CloudFormation sends it — a list, or one comma-separated string (a
// !Join, or a CommaDelimitedList parameter rendered as text; an empty one is [""]) — and every
// problem names the field and the value.
func TestReplicaRegionsProperty(t *testing.T) {
	for _, tc := range []struct {
		in      any
		want    []string
		wantErr string
	}{
		{nil, nil, ""},
		{[]any{"eu-west-1", "ap-southeast-2"}, []string{"eu-west-1", "ap-southeast-2"}, ""},
		{"eu-west-1, ap-southeast-2", []string{"eu-west-1", "ap-southeast-2"}, ""},
		{[]any{""}, nil, ""},
		{"", nil, ""},
		{[]any{"us-gov-west-1", "cn-north-1", "eusc-de-east-1"}, []string{"us-gov-west-1", "cn-north-1", "eusc-de-east-1"}, ""},
		{[]any{"eu-west-1", "eu-west-1"}, nil, `ReplicaRegions "eu-west-1" is listed twice`},
		{[]any{"EU-WEST-1"}, nil, `ReplicaRegions "EU-WEST-1" is not a Region name`},
		{[]any{"eu-west"}, nil, `ReplicaRegions "eu-west" is not a Region name`},
		{[]any{"eu-west-1", 3}, nil, "ReplicaRegions[1] must be a string"},
		{map[string]any{"Region": "eu-west-1"}, nil, "ReplicaRegions must be a list of Region names"},
	} {
		raw := baseProps()
		if tc.in != nil {
			raw["ReplicaRegions"] = tc.in
		}
		p, err := provision.ParseProperties(raw, providers.All(), pinned.Standins{})
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("ReplicaRegions %#v: %v", tc.in, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("ReplicaRegions %#v: want an error containing %q, got %v", tc.in, tc.wantErr, err)
		case tc.wantErr == "" && !slices.Equal(p.ReplicaRegions, tc.want):
			t.Errorf("ReplicaRegions %#v = %q, want %q", tc.in, p.ReplicaRegions, tc.want)
		}
	}
}

// Description is Secrets Manager's, at most 2048 characters (not bytes); empty means the default.
func TestDescriptionProperty(t *testing.T) {
	raw := baseProps()
	p, err := provision.ParseProperties(raw, providers.All(), pinned.Standins{})
	if err != nil {
		t.Fatal(err)
	}
	if d := p.SecretDescription(); !strings.Contains(d, "hub") || !strings.Contains(d, "docker-hub") {
		t.Errorf("default description %q names neither the prefix nor the upstream", d)
	}
	raw["Description"] = strings.Repeat("é", 2048)
	if p, err := provision.ParseProperties(raw, providers.All(), pinned.Standins{}); err != nil || p.SecretDescription() != raw["Description"] {
		t.Errorf("a 2048-character Description: %v", err)
	}
	raw["Description"] = strings.Repeat("a", 2049)
	if _, err := provision.ParseProperties(raw, providers.All(), pinned.Standins{}); err == nil || !strings.Contains(err.Error(), "Description is 2049 characters long") {
		t.Errorf("a 2049-character Description: want a refusal naming the field, got %v", err)
	}
}

// The allow-list is read once at cold start; a typo there is an error, not "allow nothing".
func TestParseAllowedRegions(t *testing.T) {
	got, err := provision.ParseAllowedRegions(" eu-west-1,ap-southeast-2,,eu-west-1 ")
	if err != nil || !slices.Equal(got, []string{"eu-west-1", "ap-southeast-2"}) {
		t.Errorf("ParseAllowedRegions = %q, %v", got, err)
	}
	if got, err := provision.ParseAllowedRegions(""); err != nil || got != nil {
		t.Errorf(`ParseAllowedRegions("") = %q, %v; want none`, got, err)
	}
	if _, err := provision.ParseAllowedRegions("eu-west-1,eu-wets"); err == nil || !strings.Contains(err.Error(), provision.AllowedReplicaRegionsVar) || !strings.Contains(err.Error(), "eu-wets") {
		t.Errorf("a typo in the allow-list: want an error naming the variable and the value, got %v", err)
	}
}

func TestPartitionOf(t *testing.T) {
	for region, want := range map[string]string{
		"us-east-1": "aws", "eu-west-1": "aws", "cn-north-1": "aws-cn", "us-gov-west-1": "aws-us-gov",
		"us-iso-east-1": "aws-iso", "us-isob-east-1": "aws-iso-b", "eusc-de-east-1": "aws-eusc",
	} {
		if got := provision.PartitionOf(region); got != want {
			t.Errorf("PartitionOf(%s) = %s, want %s", region, got, want)
		}
	}
}
