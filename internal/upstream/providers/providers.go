// Package providers lists every upstream registry this project can manage, keyed by ECR's
// UpstreamRegistry value. It is the one place a new registry is wired in, with how it is
// verified in staged mode (internal/upstream/staged).
package providers

import (
	"github.com/ptc-credentials/ptc-credentials/internal/pinned"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/acr"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/chainguard"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/dockerhub"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/ghcr"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/gitlab"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/staged"
)

// All returns a fresh map of every supported provider. Each runs staged mode when its source
// secret says "mode": "staged", and its own mode otherwise.
func All() map[string]upstream.Provider {
	m := map[string]upstream.Provider{}
	for _, p := range []upstream.Provider{
		acr.Provider,
		chainguard.Provider,
		dockerhub.Provider,
		ghcr.Provider,
		gitlab.Provider,
	} {
		m[p.Registry] = WithStaged(p)
	}
	return m
}

// StagedVerifiers are how each registry verifies a staged token: its own Verify on a
// verify-only upstream, or (Chainguard) the registry's OCI token handshake.
var StagedVerifiers = map[string]staged.NewVerifier{
	ptcsecret.UpstreamACR: func(s staged.Source, o upstream.Options) (staged.Verifier, error) {
		return acr.NewStagedVerifier(s.Fields, o)
	},
	// A staged Docker Hub personal or organization access token (an SSO-enforced organization's
	// only way) is verified as a minted one is, and reports its pull budget.
	ptcsecret.UpstreamDockerHub: func(s staged.Source, o upstream.Options) (staged.Verifier, error) {
		return dockerhub.NewStagedVerifier(s.Fields, o)
	},
	// A staged Chainguard pull token (chainctl auth pull-token) logs in at cgr.dev, whose token
	// endpoint is on the same host; its expiry is its JWT's own.
	ptcsecret.UpstreamChainguard: func(s staged.Source, o upstream.Options) (staged.Verifier, error) {
		v, err := staged.OCI(chainguard.Registry, chainguard.RegistryHosts, chainguard.RegistryHosts, chainguard.DefaultRegistryURL, "")(s, o)
		if err != nil {
			return nil, err
		}
		return chainguard.StagedVerifier{Login: v.Verify}, nil
	},
	ptcsecret.UpstreamGHCR: func(s staged.Source, o upstream.Options) (staged.Verifier, error) {
		return ghcr.NewStagedVerifier(s.Username, s.Token, s.Fields, o)
	},
	ptcsecret.UpstreamGitLab: func(s staged.Source, o upstream.Options) (staged.Verifier, error) {
		return gitlab.NewStagedVerifier(s.Fields, o)
	},
}

// realmHosts are the token realms that are not on a registry host: Docker Hub's
// auth.docker.io, GitLab.com's gitlab.com/jwt/auth. The other registries answer tokens on the
// registry's own host.
var realmHosts = map[string]pinned.Hosts{
	ptcsecret.UpstreamDockerHub: dockerhub.RealmHosts,
	ptcsecret.UpstreamGitLab:    gitlab.RealmHosts,
}

// LoginHosts are the hosts a login check at p's registry may send the credential to: the
// registry hosts and the registry's token realm, the ones p's own Verify pins.
func LoginHosts(p upstream.Provider) pinned.Hosts {
	if r, ok := realmHosts[p.Registry]; ok {
		return p.RegistryHosts.Union(r)
	}
	return p.RegistryHosts
}

// WithStaged returns p with staged mode (staged.Wrap) when StagedVerifiers knows p's registry,
// else p unchanged.
func WithStaged(p upstream.Provider) upstream.Provider {
	nv, ok := StagedVerifiers[p.Registry]
	if !ok {
		return p
	}
	return staged.Wrap(p, nv)
}
