package dockerhub_test

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/ptc-credentials/ptc-credentials/internal/metrics"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/emukit"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/registries"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/upstreamtest"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/dockerhub"
)

var moto *testenv.Moto

func TestMain(m *testing.M) { os.Exit(testenv.RunWithMoto(m, &moto)) }

// TestConformance runs the shared rotation suite against the Docker Hub emulator and moto. The
// emulated account has a personal account's pull limit, so every testSecret also reports the
// pull budget: read with a manifest HEAD (never a GET, which would spend a pull) and emitted as
// PullsRemaining for the secret.
func TestConformance(t *testing.T) {
	upstreamtest.Run(t, moto, registries.DockerHub, upstreamtest.Options{
		AfterRotation: func(f *upstreamtest.Fixture, r upstreamtest.Rotation) {
			checkPullProbe(f, r.Calls)
			found := false
			for _, line := range strings.Split(f.EMF.String(), "\n") {
				var rec map[string]any
				if json.Unmarshal([]byte(line), &rec) == nil && rec[metrics.PullsRemaining] == float64(registries.HubPullLimit) && rec[metrics.SecretDimension] == f.Name {
					found = true
				}
			}
			if !found {
				f.T.Errorf("no PullsRemaining=%d record for %s", registries.HubPullLimit, f.Name)
			}
		},
		AfterTestSecretOnly: func(f *upstreamtest.Fixture, calls []emukit.Call) { checkPullProbe(f, calls) },
	})
}

func checkPullProbe(f *upstreamtest.Fixture, calls []emukit.Call) {
	f.T.Helper()
	heads := 0
	for _, c := range calls {
		if strings.Contains(c.Path, "/manifests/") {
			if c.Method != "HEAD" || c.Path != "/v2/"+dockerhub.PullProbeRepository+"/manifests/"+dockerhub.PullProbeReference {
				f.T.Errorf("manifest request %s %s: the pull-budget probe must be a HEAD of %s", c.Method, c.Path, dockerhub.PullProbeRepository)
			}
			heads++
		}
	}
	if heads == 0 {
		f.T.Errorf("testSecret read no pull budget: calls %+v", calls)
	}
}

// TestUpstreamCallsPerRotation counts what one full warm rotation asks of Docker Hub: session,
// list, create (createSecret); GET /v2/, one token request for both pull scopes, the probe's
// manifest HEAD (testSecret: the login check and the pull budget share one handshake); list and
// the delete of the token two generations old (finishSecret; the first rotation has none).
func TestUpstreamCallsPerRotation(t *testing.T) {
	f := upstreamtest.New(t, moto, registries.DockerHub, upstreamtest.Options{})
	for i, want := range []int{7, 8} {
		f.E.ResetCalls()
		f.Rotate()
		calls := f.E.Calls()
		var lines []string
		registry := 0
		for _, c := range calls {
			lines = append(lines, fmt.Sprintf("%s %s -> %d", c.Method, c.Path, c.Status))
			if c.Path == "/v2/" || c.Path == "/token" || strings.Contains(c.Path, "/manifests/") {
				registry++
			}
		}
		t.Logf("rotation %d: %d upstream calls:\n  %s", i+1, len(calls), strings.Join(lines, "\n  "))
		if len(calls) != want || registry != 3 {
			t.Errorf("rotation %d made %d upstream calls (%d to the registry), want %d (3)", i+1, len(calls), registry, want)
		}
	}
}
