package chainguard

import (
	"context"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
)

// StagedVerifier verifies a staged Chainguard pull token (what `chainctl auth pull-token`
// prints: the identity id as username, a JWT as token) with login, the registry's OCI
// handshake at cgr.dev, and adds the token's own expiry — its JWT's exp claim — which cgr.dev
// does not report. The claim is read, not trusted: the registry has just checked the signature.
type StagedVerifier struct {
	Login func(ctx context.Context, cred upstream.Credential) (upstream.Verification, error)
}

// Verify implements staged.Verifier.
func (s StagedVerifier) Verify(ctx context.Context, cred upstream.Credential) (upstream.Verification, error) {
	v, err := s.Login(ctx, cred)
	if err != nil {
		return v, err
	}
	if v.ExpiresAt.IsZero() {
		v.ExpiresAt = expiryOf(cred.AccessToken)
	}
	return v, nil
}

// ExpiryOf is the exp claim of a pull token's JWT, zero when it has none.
func ExpiryOf(jwt string) time.Time { return expiryOf(jwt) }
