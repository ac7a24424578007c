package chainguard

import (
	"context"
	"encoding/base64"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
)

// A staged pull token's expiry is its JWT's exp, since cgr.dev reports none; a refused login
// reports no expiry at all.
func TestStagedVerifierReportsTheTokensOwnExpiry(t *testing.T) {
	exp := time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)
	claims := base64.RawURLEncoding.EncodeToString([]byte(`{"exp":` + strconv.FormatInt(exp.Unix(), 10) + `}`))
	jwt := "eyJhbGciOiJFUzI1NiJ9." + claims + ".c2ln"
	ok := StagedVerifier{Login: func(context.Context, upstream.Credential) (upstream.Verification, error) {
		return upstream.Verification{}, nil
	}}
	v, err := ok.Verify(context.Background(), upstream.Credential{Username: "id", AccessToken: jwt})
	if err != nil || !v.ExpiresAt.Equal(exp) {
		t.Fatalf("Verify = %v, %v; want expiry %v", v.ExpiresAt, err, exp)
	}
	refused := errors.New("login refused")
	bad := StagedVerifier{Login: func(context.Context, upstream.Credential) (upstream.Verification, error) {
		return upstream.Verification{}, refused
	}}
	if v, err := bad.Verify(context.Background(), upstream.Credential{Username: "id", AccessToken: jwt}); !errors.Is(err, refused) || !v.ExpiresAt.IsZero() {
		t.Fatalf("refused login: %v, %v", v, err)
	}
}

// Chainguard is always federated; the assumable identity is what FederatedBindings key on.
func TestFederatedIdentityIsTheAssumableIdentity(t *testing.T) {
	c := &Chainguard{src: Source{Identity: "aaaa/bbbb"}}
	if id, fed := c.FederatedIdentity(); id != "aaaa/bbbb" || !fed {
		t.Fatalf("FederatedIdentity = %q, %v", id, fed)
	}
}
