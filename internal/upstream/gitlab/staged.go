package gitlab

import (
	"fmt"

	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/httpapi"
)

// NewStagedVerifier builds the verify-only upstream for a staged GitLab token (staged mode,
// internal/upstream/staged): Verify as in minting mode — the registry login and, with
// "checkRepository", the pull right its token grants — with no token API behind it. The staged
// source's only own field is "checkRepository".
func NewStagedVerifier(fields []byte, opts upstream.Options) (*GitLab, error) {
	var f struct {
		CheckRepository string `json:"checkRepository"`
	}
	if err := upstream.DecodeSource(fields, ptcsecret.UpstreamGitLab, &f); err != nil {
		return nil, err
	}
	if f.CheckRepository != "" && !repoRE.MatchString(f.CheckRepository) {
		return nil, fmt.Errorf(errPrefix + `field "checkRepository" must be a project path in lower case, e.g. "acme/platform/app"`)
	}
	reg, err := opts.LoginRegistry(RegistryHosts, DefaultRegistry, RegistryRule)
	if err != nil {
		return nil, err
	}
	return &GitLab{
		src:      Source{Kind: "groups", CheckRepository: f.CheckRepository},
		registry: reg,
		opts:     opts,
		api:      &httpapi.Caller{Service: "GitLab", Client: opts.Client(APIHosts), Now: opts.Clock(), Sleep: opts.Sleep},
	}, nil
}
