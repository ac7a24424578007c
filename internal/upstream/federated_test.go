package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// federatedFake is an upstream whose source names a federated identity, as ACR in federated
// mode and Chainguard do.
type federatedFake struct {
	Upstream
	identity  string
	federated bool
}

func (f federatedFake) FederatedIdentity() (string, bool) { return f.identity, f.federated }

func federatedProvider() map[string]Provider {
	return map[string]Provider{"chainguard": {Registry: "chainguard", New: func(doc []byte, _ Options) (Upstream, error) {
		var s struct {
			Identity  string `json:"identity"`
			Federated *bool  `json:"federated"`
		}
		if err := json.Unmarshal(doc, &s); err != nil {
			return nil, err
		}
		return federatedFake{identity: s.Identity, federated: s.Federated == nil || *s.Federated}, nil
	}}}
}

// Team B's stack role is trusted by team A's Chainguard identity; team B writes a source secret
// of its own that names A's identity and binds B's managed secret. With the deployer's
// FederatedBindings set, only A's secret may use A's identity; without them, nothing limits it
// (one team per stack, docs/security.md).
func TestFederatedBindingsKeepAnIdentityToItsTeam(t *testing.T) {
	const victimIdentity = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/1111111111111111"
	bindings, err := ParseFederatedBindings(" " + victimIdentity + "=ecr-pullthroughcache/team-a/cgr, ecr-pullthroughcache/shared/ ; other=ecr-pullthroughcache/x")
	if err != nil {
		t.Fatal(err)
	}
	doc := `{"identity":"` + victimIdentity + `","allowedSecrets":["ecr-pullthroughcache/team-b/cgr","ecr-pullthroughcache/team-a/cgr","ecr-pullthroughcache/shared/"]}`
	build := func(forSecret string, b FederatedBindings) error {
		_, err := FromSource(context.Background(), &fakeSM{value: aws.String(doc)}, SourceRequest{
			Name: "source secret", Registry: "chainguard", ARN: "arn:aws:secretsmanager:us-east-1:123456789012:secret:ptc-source/b-AbCdEf",
			Providers: federatedProvider(), ForSecret: forSecret, Options: Options{FederatedBindings: b},
		})
		return err
	}
	err = build("ecr-pullthroughcache/team-b/cgr", bindings)
	if !errors.Is(err, ErrUnusableSource) || !strings.Contains(err.Error(), "FederatedBindings") || !strings.Contains(err.Error(), victimIdentity) {
		t.Fatalf("team B's secret with team A's identity: %v; want a refusal naming FederatedBindings and the identity", err)
	}
	for _, ok := range []string{"ecr-pullthroughcache/team-a/cgr", "ecr-pullthroughcache/shared/cgr"} {
		if err := build(ok, bindings); err != nil {
			t.Errorf("%s, bound to the identity: %v", ok, err)
		}
	}
	if err := build("ecr-pullthroughcache/team-b/cgr", nil); err != nil {
		t.Errorf("no bindings set (a one-team stack): %v", err)
	}
	// RevokeOnly (Delete) takes back what was minted even after a binding was withdrawn.
	if _, err := FromSource(context.Background(), &fakeSM{value: aws.String(doc)}, SourceRequest{
		Name: "source secret", Registry: "chainguard", ARN: "arn:x", Providers: federatedProvider(), RevokeOnly: true,
		Options: Options{FederatedBindings: bindings},
	}); err != nil {
		t.Errorf("RevokeOnly: %v", err)
	}
	// A source that is not in federated mode (ACR with a client secret) is not limited.
	plain := `{"identity":"x","federated":false,"allowedSecrets":["ecr-pullthroughcache/team-b/cgr"]}`
	if _, err := FromSource(context.Background(), &fakeSM{value: aws.String(plain)}, SourceRequest{
		Name: "source secret", Registry: "chainguard", ARN: "arn:x", Providers: federatedProvider(), ForSecret: "ecr-pullthroughcache/team-b/cgr",
		Options: Options{FederatedBindings: bindings},
	}); err != nil {
		t.Errorf("a source not in federated mode: %v", err)
	}
}

func TestParseFederatedBindingsNamesTheEntry(t *testing.T) {
	if b, err := ParseFederatedBindings("  "); b != nil || err != nil {
		t.Errorf("empty: %v %v", b, err)
	}
	for _, bad := range []string{"no-equals", "=ecr-pullthroughcache/x", "id=team-a/cgr", "id="} {
		if _, err := ParseFederatedBindings(bad); err == nil || !strings.Contains(err.Error(), FederatedBindingsVar) || !strings.Contains(err.Error(), "entry 1") {
			t.Errorf("ParseFederatedBindings(%q) = %v; want an error naming %s entry 1", bad, err, FederatedBindingsVar)
		}
	}
}
