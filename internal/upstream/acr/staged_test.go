package acr_test

import (
	"testing"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/registries"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/upstreamtest"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
)

// TestConformanceStaged runs the shared rotation suite in staged mode: the source secret holds
// the next password a person generated for the ACR token (the slot the previous one does not
// use), and the rotator verifies — waiting out replication on the fake clock — and promotes it.
func TestConformanceStaged(t *testing.T) {
	clk := &clock{t: t0}
	sl := &sleeper{clock: clk}
	upstreamtest.RunStaged(t, moto, registries.ACR, upstreamtest.Options{
		Emulator: registries.Options{Now: clk.Now, ReplicationDelay: 10 * time.Second},
		Provider: func(p upstream.Provider) upstream.Provider {
			inner := p.New
			p.New = func(source []byte, opts upstream.Options) (upstream.Upstream, error) {
				opts.Now, opts.Sleep = clk.Now, sl.Sleep
				return inner(source, opts)
			}
			return p // registries.Staged's provider: staged mode is wired in already
		},
	})
}
