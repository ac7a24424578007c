package provision_test

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/ptc-credentials/ptc-credentials/internal/provision"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/rotationtest"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/dockerhub"
)

// TestStagedSourceCreateAndDelete: a Custom::PullThroughCache whose source secret is in staged
// mode stores the token a person made as the first version (nothing minted), ECR validates it,
// rotation is turned on, and Delete removes the secret and the rule but leaves the person's
// token alone — staged tokens belong to whoever made them.
func TestStagedSourceCreateAndDelete(t *testing.T) {
	e := newEnv(t)
	hub, err := dockerhub.New([]byte(`{"username":"`+hubUser+`","password":"`+hubPassword+`","apiUrl":"`+e.hubURL+`"}`), upstream.Options{RegistryURL: e.hubURL, Standins: e.prov.Standins})
	if err != nil {
		t.Fatal(err)
	}
	made, err := hub.Mint(e.ctx, upstream.MintRequest{SecretName: "a person", VersionID: "1", Label: "made-by-a-person"})
	if err != nil {
		t.Fatal(err)
	}
	pat := made.Credential.AccessToken
	src, err := e.sm.CreateSecret(e.ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String("ptc-source/staged-" + rotationtest.NewID()[:8]),
		SecretString: aws.String(`{"mode":"staged","username":"` + hubUser + `","token":"` + pat +
			`","expiresAt":"2099-01-01","allowedSecrets":["ecr-pullthroughcache/"]}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	prefix := newPrefix()
	name := ptcsecret.Prefix + prefix
	props := e.props(prefix)
	props["SourceSecretArn"] = aws.ToString(src.ARN)
	res := e.mustDo("Create", "", props, nil)
	if res.PhysicalID != provision.PhysicalID(prefix, name) {
		t.Fatalf("physical id %q", res.PhysicalID)
	}
	if cur := e.current(name); cur.AccessToken != pat || cur.Username != hubUser {
		t.Fatalf("AWSCURRENT is not the staged token (username %q)", cur.Username)
	}
	if n := len(e.hub.Tokens()); n != 1 {
		t.Fatalf("%d tokens on Docker Hub after Create, want only the person's", n)
	}
	if !strings.Contains(e.logs.String(), "staged mode: taking the token") {
		t.Error("the log does not say the token was staged")
	}
	// props ask for rate(30 days): too rare for the expiry alarm to page in time.
	if !strings.Contains(e.logs.String(), "less often than weekly") {
		t.Error("no warning that rate(30 days) is too rare a check for a staged token")
	}
	e.mustDo("Delete", res.PhysicalID, props, nil)
	if s := e.secret(name); s != nil && s.DeletedDate == nil {
		t.Error("the secret is left behind")
	}
	if e.rule(prefix) != nil {
		t.Error("the rule is left behind")
	}
	if toks := e.hub.Tokens(); len(toks) != 1 || toks[0].Secret != pat {
		t.Fatal("Delete revoked the person's staged token")
	}
	e.assertNoLeak(pat)
}
