package chainguard

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// pullKey is the throw-away P-256 key one pull token's JWT is signed with. Its private half
// lives only as long as Mint: the identity holds the public JWKS, the secret holds the JWT, and
// nothing can sign another token for that identity.
type pullKey struct {
	kid string
	key *ecdsa.PrivateKey
}

func newPullKey() (pullKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return pullKey{}, fmt.Errorf("generating the pull token's key: %w", err)
	}
	pub, err := k.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		return pullKey{}, err
	}
	sum := sha256.Sum256(pub)
	return pullKey{kid: b64(sum[:12]), key: k}, nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// jwks is the public key set the static identity registers (its issuer_keys).
func (p pullKey) jwks() string {
	pub, _ := p.key.PublicKey.Bytes()
	doc, _ := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": p.kid,
		"x": b64(pub[1:33]), "y": b64(pub[33:65]),
	}}})
	return string(doc)
}

// sign returns the compact ES256 JWS of claims.
func (p pullKey) sign(claims map[string]any) (string, error) {
	hdr, _ := json.Marshal(map[string]string{"alg": "ES256", "kid": p.kid, "typ": "JWT"})
	body, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	input := b64(hdr) + "." + b64(body)
	d := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, p.key, d[:])
	if err != nil {
		return "", fmt.Errorf("signing the pull token: %w", err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + b64(sig), nil
}

// expiryOf reads the exp claim of a JWT without verifying it (the credential is our own; the
// registry verifies it). Zero when there is none.
func expiryOf(jwt string) time.Time {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return time.Time{}
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}
	}
	var c struct {
		Exp float64 `json:"exp"`
	}
	if json.Unmarshal(b, &c) != nil || c.Exp <= 0 {
		return time.Time{}
	}
	return time.Unix(int64(c.Exp), 0).UTC()
}
