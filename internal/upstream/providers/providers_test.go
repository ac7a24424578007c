package providers

import (
	"testing"

	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
)

func TestEveryCredentialedRegistryIsWired(t *testing.T) {
	all := All()
	for reg, fixed := range map[string]bool{
		ptcsecret.UpstreamDockerHub:  true,  // the account or organization name
		ptcsecret.UpstreamACR:        true,  // the ACR token's name
		ptcsecret.UpstreamGitLab:     false, // each access token has its own bot user
		ptcsecret.UpstreamGHCR:       false, // a person may stage another account's PAT
		ptcsecret.UpstreamChainguard: false, // each pull token is its own identity
	} {
		p, ok := all[reg]
		if !ok {
			t.Errorf("%s is not wired", reg)
			continue
		}
		if p.Registry != reg || p.New == nil {
			t.Errorf("%s: descriptor %+v", reg, p)
		}
		if p.FixedUsername != fixed {
			t.Errorf("%s: FixedUsername = %v, want %v", reg, p.FixedUsername, fixed)
		}
		if reg != ptcsecret.UpstreamACR && p.DefaultRegistryURL == "" {
			t.Errorf("%s has no default registry", reg)
		}
	}
	if len(all) != 5 {
		t.Errorf("%d providers, want 5", len(all))
	}
	if all[ptcsecret.UpstreamACR].DefaultRegistryURL != "" {
		t.Error("ACR registries have no common host; UpstreamRegistryUrl must be required")
	}
}

// TestLoginHosts: a login check may reach the registry and its token realm — Docker Hub's
// auth.docker.io, GitLab.com's gitlab.com — and nothing else.
func TestLoginHosts(t *testing.T) {
	all := All()
	for reg, hosts := range map[string][]string{
		ptcsecret.UpstreamDockerHub: {"registry-1.docker.io", "auth.docker.io"},
		ptcsecret.UpstreamGitLab:    {"registry.gitlab.com", "gitlab.com"},
		ptcsecret.UpstreamGHCR:      {"ghcr.io"},
	} {
		h := LoginHosts(all[reg])
		for _, name := range hosts {
			if !h.Allows(name) {
				t.Errorf("%s: login hosts %s refuse %s", reg, h, name)
			}
		}
		for _, name := range []string{"evil.example", "hub.docker.com"} {
			if h.Allows(name) {
				t.Errorf("%s: login hosts %s allow %s", reg, h, name)
			}
		}
	}
}
