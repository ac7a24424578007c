package dockerhub_test

import (
	"os"
	"testing"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/registries"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/upstreamtest"
)

var moto *testenv.Moto

func TestMain(m *testing.M) { os.Exit(testenv.RunWithMoto(m, &moto)) }

// TestConformance runs the shared rotation suite against the Docker Hub emulator and moto.
func TestConformance(t *testing.T) {
	upstreamtest.Run(t, moto, registries.DockerHub, upstreamtest.Options{})
}
