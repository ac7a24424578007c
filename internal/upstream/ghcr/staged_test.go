package ghcr_test

import (
	"testing"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/registries"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/upstreamtest"
)

// TestConformanceStaged runs the shared rotation suite in staged mode: the source secret holds
// the next token a person made, and the rotator verifies, promotes and reports it.
func TestConformanceStaged(t *testing.T) {
	upstreamtest.RunStaged(t, moto, registries.GHCR, upstreamtest.Options{})
}
