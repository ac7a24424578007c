package dockerhub

import (
	"context"

	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
)

// StagedVerifier verifies a staged Docker Hub token — a personal or organization access token a
// person made, the only way for an organization that enforces SSO — exactly as the minting
// upstream's Verify does: one handshake at the registry that proves the login and reads the
// credential's pull budget, so a staged token reports PullsRemaining too.
type StagedVerifier struct {
	opts            upstream.Options
	registry        string
	checkRepository string
}

// NewStagedVerifier builds the verifier from a staged source's other fields ("checkRepository",
// optional, default library/alpine) and the rule's registry, which must be Docker Hub's.
func NewStagedVerifier(fields []byte, opts upstream.Options) (*StagedVerifier, error) {
	var f struct {
		CheckRepository string `json:"checkRepository"`
	}
	if err := upstream.DecodeSource(fields, ptcsecret.UpstreamDockerHub, &f); err != nil {
		return nil, err
	}
	if f.CheckRepository == "" {
		f.CheckRepository = DefaultCheckRepository
	}
	reg, err := opts.LoginRegistry(RegistryHosts, DefaultRegistry, "")
	if err != nil {
		return nil, err
	}
	return &StagedVerifier{opts: opts, registry: reg, checkRepository: f.CheckRepository}, nil
}

// Verify proves cred at the registry and reports its pull budget (pulls.go); a budget that
// cannot be read is a warning, never a failed check.
func (s *StagedVerifier) Verify(ctx context.Context, cred upstream.Credential) (upstream.Verification, error) {
	return verifyWithBudget(ctx, s.opts, s.registry, s.checkRepository, cred)
}
