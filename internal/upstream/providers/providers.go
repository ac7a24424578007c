// Package providers lists every upstream registry this project can manage, keyed by ECR's
// UpstreamRegistry value. It is the one place a new registry is wired in.
package providers

import (
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/acr"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/chainguard"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/dockerhub"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/ghcr"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/gitlab"
)

// All returns a fresh map of every supported provider.
func All() map[string]upstream.Provider {
	m := map[string]upstream.Provider{}
	for _, p := range []upstream.Provider{
		acr.Provider,
		chainguard.Provider,
		dockerhub.Provider,
		ghcr.Provider,
		gitlab.Provider,
	} {
		m[p.Registry] = p
	}
	return m
}
