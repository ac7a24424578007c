package provision_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/ptc-credentials/ptc-credentials/internal/pinned"
	"github.com/ptc-credentials/ptc-credentials/internal/provision"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/providers"
)

// countingHost is a host of the attacker's: it answers everything helpfully and counts.
func countingHost(t *testing.T) (*httptest.Server, *atomic.Int32) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = w.Write([]byte(`{"token":"attacker"}`))
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// (H2, provisioner) A stack owner sets UpstreamRegistryUrl to a host of theirs so that Create's
// login check sends the first token there. The property is refused before anything is minted,
// verified or created, naming the property and Docker Hub's registry host; the attacker's host
// receives nothing.
func TestCreateRefusesAnUpstreamRegistryUrlOnAnotherHost(t *testing.T) {
	e := newEnv(t)
	evil, hits := countingHost(t)
	before := len(e.hub.Tokens())
	prefix := newPrefix()
	props := e.props(prefix)
	props["UpstreamRegistryUrl"] = evil.URL
	_, err := e.do("Create", "", props, nil)
	if err == nil {
		t.Fatal("Create accepted an UpstreamRegistryUrl on another host")
	}
	for _, want := range []string{"UpstreamRegistryUrl", "registry-1.docker.io"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not name %s", err, want)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the attacker's host received %d requests", n)
	}
	if after := len(e.hub.Tokens()); after != before {
		t.Errorf("%d tokens minted before the refusal", after-before)
	}
	e.assertGone(prefix, ptcsecret.Prefix+prefix)
}

// The GitLab rule of ECR: pull through cache only for GitLab.com. A self-managed registry is
// refused as a property error with that reason, before the source secret is read.
func TestUpstreamRegistryUrlMustBeTheRegistrysPinnedHost(t *testing.T) {
	base := map[string]any{"EcrRepositoryPrefix": "cache", "SourceSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:ptc-source/x-AbCdEf"}
	for _, tc := range []struct{ registry, url, want string }{
		{"gitlab-container-registry", "registry.gitlab.example.com", "only for GitLab.com"},
		{"docker-hub", "docker.example.com", "registry-1.docker.io"},
		{"github-container-registry", "ghcr.example.com", "ghcr.io"},
		{"azure-container-registry", "myreg.azurecr.io.evil.example", "*.azurecr.io"},
		{"docker-hub", "http://127.0.0.1:5000", "registry-1.docker.io"}, // loopback, but not a listed stand-in
	} {
		raw := map[string]any{"UpstreamRegistry": tc.registry, "UpstreamRegistryUrl": tc.url}
		for k, v := range base {
			raw[k] = v
		}
		_, err := provision.ParseProperties(raw, providers.All(), pinned.Standins{})
		if err == nil || !strings.Contains(err.Error(), "UpstreamRegistryUrl") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %s: %v; want a refusal naming the property and %q", tc.registry, tc.url, err, tc.want)
		}
	}
	for registry, url := range map[string]string{"gitlab-container-registry": "registry.gitlab.com", "azure-container-registry": "myreg.azurecr.us", "docker-hub": "https://registry-1.docker.io"} {
		raw := map[string]any{"UpstreamRegistry": registry, "UpstreamRegistryUrl": url}
		for k, v := range base {
			raw[k] = v
		}
		if _, err := provision.ParseProperties(raw, providers.All(), pinned.Standins{}); err != nil {
			t.Errorf("%s %s refused: %v", registry, url, err)
		}
	}
}

// Delete revokes without a login check, so it ignores the registry tag: a tag someone pointed
// at another host since Create can neither block the revocation nor be called.
func TestDeleteIgnoresARetaggedRegistry(t *testing.T) {
	e := newEnv(t)
	evil, hits := countingHost(t)
	prefix := newPrefix()
	props := e.props(prefix)
	before := len(e.hub.Tokens())
	res := e.mustDo("Create", "", props, nil)
	if _, err := e.sm.TagResource(e.ctx, &secretsmanager.TagResourceInput{SecretId: aws.String(ptcsecret.Prefix + prefix),
		Tags: []smtypes.Tag{{Key: aws.String(ptcsecret.TagRegistryURL), Value: aws.String(evil.URL)}}}); err != nil {
		t.Fatal(err)
	}
	e.mustDo("Delete", res.PhysicalID, props, nil)
	if n := hits.Load(); n != 0 {
		t.Errorf("the attacker's host received %d requests", n)
	}
	e.assertGone(prefix, ptcsecret.Prefix+prefix)
	if after := len(e.hub.Tokens()); after != before {
		t.Errorf("%d tokens left after Delete, %d before Create: the revocation did not run", after, before)
	}
}
