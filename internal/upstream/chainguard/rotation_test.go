package chainguard_test

import (
	"os"
	"strings"
	"testing"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/registries"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/upstreamtest"
)

var moto *testenv.Moto

func TestMain(m *testing.M) { os.Exit(testenv.RunWithMoto(m, &moto)) }

// TestConformance runs the shared rotation suite (full rotation, every step twice, a crash
// between minting and PutSecretValue, overlap and revocation, testSecret only, a refused source)
// against the Chainguard and STS emulators and moto: the rotator mints pull tokens with nothing
// stored but the role's trust. The leak scan covers web identity tokens, Chainguard tokens and
// registry tokens; the extra check below covers pull token JWTs and key material in the logs.
func TestConformance(t *testing.T) {
	upstreamtest.Run(t, moto, registries.Chainguard, upstreamtest.Options{
		AfterRotation: func(f *upstreamtest.Fixture, r upstreamtest.Rotation) {
			logs := f.Logs.String()
			for _, marker := range []string{"eyJ", `"d":`, "PRIVATE KEY"} {
				if strings.Contains(logs, marker) {
					f.T.Errorf("the logs hold %q: a JWT or key material", marker)
				}
			}
			if n := len(f.E.STS.Issued()); n == 0 {
				f.T.Error("no web identity token was asked for: the rotation did not federate")
			}
		},
	})
}
