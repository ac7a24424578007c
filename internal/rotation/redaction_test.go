package rotation_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/ptc-credentials/ptc-credentials/internal/logging"
	"github.com/ptc-credentials/ptc-credentials/internal/rotation"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/rotationtest"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/dockerhub"
)

// carelessUpstream is an upstream with the bug the safety net exists for: it logs the source
// password while minting and the credential it verifies. (A token logged inside the very call
// that mints it cannot be caught: the rotator learns it only when Mint returns.)
type carelessUpstream struct {
	upstream.Upstream
	log *slog.Logger
}

func (c carelessUpstream) Mint(ctx context.Context, req upstream.MintRequest) (upstream.Minted, error) {
	m, err := c.Upstream.Mint(ctx, req)
	c.log.Info("careless debug line", "password", hubPassword, "err", "login as "+hubPassword)
	return m, err
}

func (c carelessUpstream) Verify(ctx context.Context, cred upstream.Credential) (upstream.Verification, error) {
	c.log.Info("careless verify line", "token", cred.AccessToken, "detail", "checking "+cred.AccessToken)
	return c.Upstream.Verify(ctx, cred)
}

// TestRedactionNetCatchesACarelessLogLine: with the rotator's Secrets under its logger, a log
// line that quotes the source password or the minted token (which no code of ours writes, but
// an upstream could) reaches the log redacted, in every step of a whole rotation.
func TestRedactionNetCatchesACarelessLogLine(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	var buf rotationtest.SyncBuffer
	secrets := &logging.Secrets{}
	r := f.Rotator()
	r.Logger = slog.New(logging.Redacting(slog.NewJSONHandler(&buf, nil), secrets))
	r.Secrets = secrets
	prov := dockerhub.Provider
	inner := prov.New
	prov.New = func(src []byte, o upstream.Options) (upstream.Upstream, error) {
		up, err := inner(src, o)
		if err != nil {
			return nil, err
		}
		return carelessUpstream{Upstream: up, log: o.Log()}, nil
	}
	r.Providers = map[string]upstream.Provider{prov.Registry: prov}
	token := f.Begin()
	for _, step := range []rotation.Step{rotation.CreateSecret, rotation.SetSecret, rotation.TestSecret, rotation.FinishSecret} {
		if err := f.StepWith(r, step, token); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	out := buf.String()
	if !strings.Contains(out, "careless debug line") || !strings.Contains(out, "careless verify line") || !strings.Contains(out, "[REDACTED]") {
		t.Fatalf("the careless line is missing or unredacted:\n%s", out)
	}
	minted := f.Value(token).AccessToken
	for what, v := range map[string]string{"the source password": hubPassword, "the minted token": minted} {
		if v != "" && strings.Contains(out, v) {
			t.Errorf("%s reached the log", what)
		}
	}
}
