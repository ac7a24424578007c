// Package jwtkit is the JSON Web Token code the emulators share: sign a token (RS256, ES256,
// ES384) as an issuer does, publish keys as a JWKS, and verify a token against a JWKS the way a
// relying party does (signature, then iss, sub, aud, exp, nbf and iat) — each refusal a
// distinct error, so that tests can show which check refused a token.
//
// It is test code: the emulators of AWS STS (the issuer), Microsoft Entra ID and Chainguard
// (relying parties) use it, and it is checked itself in jwtkit_test.go. Only the standard
// library's crypto is used.
package jwtkit

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"time"
)

// The refusals Verify reports, matched with errors.Is.
var (
	ErrMalformed  = errors.New("not a compact JWS with a JSON header and claims")
	ErrAlgorithm  = errors.New("signing algorithm not accepted")
	ErrUnknownKey = errors.New("no key of the issuer's JWKS has the token's kid")
	ErrSignature  = errors.New("signature does not verify")
	ErrIssuer     = errors.New("iss is not the expected issuer")
	ErrSubject    = errors.New("sub is not the expected subject")
	ErrAudience   = errors.New("aud does not contain the expected audience")
	ErrExpired    = errors.New("token expired")
	ErrNotYet     = errors.New("token not valid yet")
	ErrLifetime   = errors.New("token lifetime is longer than accepted")
)

// Key is a signing key with its JWKS id.
type Key struct {
	ID     string
	Alg    string // RS256, ES256 or ES384
	Signer crypto.Signer
}

// NewKey generates a key for alg (RS256: 2048-bit RSA; ES256: P-256; ES384: P-384).
func NewKey(alg, id string) (Key, error) {
	var s crypto.Signer
	var err error
	switch alg {
	case "RS256":
		s, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ES256":
		s, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ES384":
		s, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	default:
		return Key{}, fmt.Errorf("%w: %s", ErrAlgorithm, alg)
	}
	if err != nil {
		return Key{}, err
	}
	return Key{ID: id, Alg: alg, Signer: s}, nil
}

// MustKey is NewKey for tests and emulator set-up.
func MustKey(alg, id string) Key {
	k, err := NewKey(alg, id)
	if err != nil {
		panic(err)
	}
	return k
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func hashFor(alg string) (crypto.Hash, int) {
	switch alg {
	case "RS256":
		return crypto.SHA256, 0
	case "ES256":
		return crypto.SHA256, 32
	case "ES384":
		return crypto.SHA384, 48
	}
	return 0, 0
}

func digest(h crypto.Hash, data []byte) []byte {
	if h == crypto.SHA384 {
		s := sha512.Sum384(data)
		return s[:]
	}
	s := sha256.Sum256(data)
	return s[:]
}

// Sign returns the compact JWS of claims signed with k (header alg, kid, typ JWT).
func Sign(k Key, claims any) (string, error) {
	h, size := hashFor(k.Alg)
	if h == 0 {
		return "", fmt.Errorf("%w: %s", ErrAlgorithm, k.Alg)
	}
	hdr, _ := json.Marshal(map[string]string{"alg": k.Alg, "kid": k.ID, "typ": "JWT"})
	body, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	input := b64(hdr) + "." + b64(body)
	d := digest(h, []byte(input))
	var sig []byte
	switch s := k.Signer.(type) {
	case *rsa.PrivateKey:
		sig, err = rsa.SignPKCS1v15(rand.Reader, s, h, d)
	case *ecdsa.PrivateKey:
		var r, ss *big.Int
		r, ss, err = ecdsa.Sign(rand.Reader, s, d)
		if err == nil {
			sig = make([]byte, 2*size)
			r.FillBytes(sig[:size])
			ss.FillBytes(sig[size:])
		}
	default:
		err = fmt.Errorf("unsupported signer %T", k.Signer)
	}
	if err != nil {
		return "", err
	}
	return input + "." + b64(sig), nil
}

// JWK is one public key as a JWKS publishes it.
type JWK struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg,omitempty"`
	Use string `json:"use,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
}

// JWKS is a key set document.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// Public returns k's public half as a JWK.
func (k Key) Public() JWK {
	switch p := k.Signer.Public().(type) {
	case *rsa.PublicKey:
		return JWK{Kty: "RSA", Kid: k.ID, Alg: k.Alg, Use: "sig", N: b64(p.N.Bytes()), E: b64(big.NewInt(int64(p.E)).Bytes())}
	case *ecdsa.PublicKey:
		raw, err := p.Bytes() // 0x04 || X || Y, each coordinate the curve's size
		if err != nil {
			return JWK{}
		}
		size := (len(raw) - 1) / 2
		return JWK{Kty: "EC", Kid: k.ID, Alg: k.Alg, Use: "sig", Crv: p.Curve.Params().Name, X: b64(raw[1 : 1+size]), Y: b64(raw[1+size:])}
	}
	return JWK{}
}

// KeySet publishes the public halves of keys.
func KeySet(keys ...Key) JWKS {
	var s JWKS
	for _, k := range keys {
		s.Keys = append(s.Keys, k.Public())
	}
	return s
}

// Claims are the registered claims Verify checks, plus everything else raw.
type Claims struct {
	Issuer    string
	Subject   string
	Audience  []string
	Expiry    time.Time
	IssuedAt  time.Time
	NotBefore time.Time
	ID        string
	// Raw is the whole claims object.
	Raw map[string]json.RawMessage
}

// Expect is what a relying party requires of a token.
type Expect struct {
	Issuer   string
	Subject  string // empty: any
	Audience string
	// Algorithms accepted; empty: RS256, ES256 and ES384.
	Algorithms []string
	// MaxLifetime refuses a token whose exp-iat is longer; zero: no limit.
	MaxLifetime time.Duration
	// Now is the verification time.
	Now time.Time
	// Leeway is the clock skew tolerated on exp, nbf and iat.
	Leeway time.Duration
}

// Parse decodes a token without verifying it: its header's alg and kid, and its claims.
func Parse(token string) (alg, kid string, c Claims, err error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", "", Claims{}, ErrMalformed
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	cb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	if err1 != nil || err2 != nil {
		return "", "", Claims{}, ErrMalformed
	}
	var hdr struct{ Alg, Kid string }
	if json.Unmarshal(hb, &hdr) != nil {
		return "", "", Claims{}, ErrMalformed
	}
	if json.Unmarshal(cb, &c.Raw) != nil {
		return "", "", Claims{}, ErrMalformed
	}
	str := func(k string) string {
		var s string
		_ = json.Unmarshal(c.Raw[k], &s)
		return s
	}
	num := func(k string) time.Time {
		var f float64
		if json.Unmarshal(c.Raw[k], &f) != nil || f == 0 {
			return time.Time{}
		}
		return time.Unix(int64(f), 0).UTC()
	}
	c.Issuer, c.Subject, c.ID = str("iss"), str("sub"), str("jti")
	if a := str("aud"); a != "" {
		c.Audience = []string{a}
	} else {
		_ = json.Unmarshal(c.Raw["aud"], &c.Audience)
	}
	c.Expiry, c.IssuedAt, c.NotBefore = num("exp"), num("iat"), num("nbf")
	return hdr.Alg, hdr.Kid, c, nil
}

// Verify checks token against keys and want, in the order a relying party does: algorithm,
// key, signature, then the claims. The first failed check is returned (errors.Is one of the
// Err values above).
func Verify(token string, keys JWKS, want Expect) (Claims, error) {
	alg, kid, c, err := Parse(token)
	if err != nil {
		return Claims{}, err
	}
	accepted := want.Algorithms
	if len(accepted) == 0 {
		accepted = []string{"RS256", "ES256", "ES384"}
	}
	if !slices.Contains(accepted, alg) {
		return c, fmt.Errorf("%w: %q", ErrAlgorithm, alg)
	}
	var jwk *JWK
	for i := range keys.Keys {
		if keys.Keys[i].Kid == kid {
			jwk = &keys.Keys[i]
		}
	}
	if jwk == nil {
		return c, fmt.Errorf("%w (kid %q)", ErrUnknownKey, kid)
	}
	i := strings.LastIndexByte(token, '.')
	sig, err := base64.RawURLEncoding.DecodeString(token[i+1:])
	if err != nil {
		return c, ErrMalformed
	}
	if err := verifySig(alg, *jwk, []byte(token[:i]), sig); err != nil {
		return c, err
	}
	now := want.Now
	if now.IsZero() {
		now = time.Now()
	}
	switch {
	case c.Issuer != want.Issuer:
		return c, fmt.Errorf("%w (%q)", ErrIssuer, c.Issuer)
	case want.Subject != "" && c.Subject != want.Subject:
		return c, fmt.Errorf("%w (%q)", ErrSubject, c.Subject)
	case !slices.Contains(c.Audience, want.Audience):
		return c, fmt.Errorf("%w (%q)", ErrAudience, c.Audience)
	case c.Expiry.IsZero() || !now.Before(c.Expiry.Add(want.Leeway)):
		return c, ErrExpired
	case !c.NotBefore.IsZero() && now.Add(want.Leeway).Before(c.NotBefore):
		return c, ErrNotYet
	case !c.IssuedAt.IsZero() && now.Add(want.Leeway).Before(c.IssuedAt):
		return c, ErrNotYet
	case want.MaxLifetime > 0 && !c.IssuedAt.IsZero() && c.Expiry.Sub(c.IssuedAt) > want.MaxLifetime:
		return c, ErrLifetime
	}
	return c, nil
}

func verifySig(alg string, k JWK, input, sig []byte) error {
	h, size := hashFor(alg)
	d := digest(h, input)
	dec := func(s string) *big.Int {
		b, _ := base64.RawURLEncoding.DecodeString(s)
		return new(big.Int).SetBytes(b)
	}
	switch {
	case alg == "RS256" && k.Kty == "RSA":
		pub := &rsa.PublicKey{N: dec(k.N), E: int(dec(k.E).Int64())}
		if pub.N.Sign() == 0 || rsa.VerifyPKCS1v15(pub, h, d, sig) != nil {
			return ErrSignature
		}
		return nil
	case strings.HasPrefix(alg, "ES") && k.Kty == "EC":
		curve := map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384()}[k.Crv]
		if curve == nil || curve.Params().BitSize/8 != size || len(sig) != 2*size {
			return ErrSignature
		}
		x, _ := base64.RawURLEncoding.DecodeString(k.X)
		y, _ := base64.RawURLEncoding.DecodeString(k.Y)
		if len(x) != size || len(y) != size {
			return ErrSignature
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, append(append([]byte{4}, x...), y...))
		if err != nil || !ecdsa.VerifyASN1(pub, d, asn1Sig(sig[:size], sig[size:])) {
			return ErrSignature
		}
		return nil
	}
	return fmt.Errorf("%w: key %q is %s, token says %s", ErrSignature, k.Kid, k.Kty, alg)
}

// asn1Sig encodes a JWS (r, s) pair as the ASN.1 signature ecdsa.VerifyASN1 takes.
func asn1Sig(r, s []byte) []byte {
	b, _ := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(r), new(big.Int).SetBytes(s)})
	return b
}

// Discover fetches an issuer's key set as a relying party does: GET
// <issuer>/.well-known/openid-configuration, check its "issuer" is the issuer, then GET its
// jwks_uri.
func Discover(ctx context.Context, client *http.Client, issuer string) (JWKS, error) {
	var cfg struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := getJSON(ctx, client, strings.TrimRight(issuer, "/")+"/.well-known/openid-configuration", &cfg); err != nil {
		return JWKS{}, err
	}
	if cfg.Issuer != issuer || cfg.JWKSURI == "" {
		return JWKS{}, fmt.Errorf("openid-configuration of %s names issuer %q and jwks_uri %q", issuer, cfg.Issuer, cfg.JWKSURI)
	}
	var ks JWKS
	if err := getJSON(ctx, client, cfg.JWKSURI, &ks); err != nil {
		return JWKS{}, err
	}
	return ks, nil
}

func getJSON(ctx context.Context, client *http.Client, u string, out any) error {
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return json.Unmarshal(b, out)
}
