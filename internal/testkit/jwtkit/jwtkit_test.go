package jwtkit

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

func claims(aud any, iat, exp time.Time) map[string]any {
	return map[string]any{"iss": "https://issuer.example", "sub": "role", "aud": aud, "iat": iat.Unix(), "exp": exp.Unix(), "jti": "j1"}
}

// TestSignVerifyEachAlgorithm: a token signed with each algorithm verifies against the key set
// and its claims come back.
func TestSignVerifyEachAlgorithm(t *testing.T) {
	for _, alg := range []string{"RS256", "ES256", "ES384"} {
		k := MustKey(alg, "k-"+alg)
		tok, err := Sign(k, claims("aud-1", t0, t0.Add(5*time.Minute)))
		if err != nil {
			t.Fatal(err)
		}
		c, err := Verify(tok, KeySet(k), Expect{Issuer: "https://issuer.example", Subject: "role", Audience: "aud-1", Now: t0.Add(time.Minute)})
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		if c.Subject != "role" || c.ID != "j1" || !c.Expiry.Equal(t0.Add(5*time.Minute)) {
			t.Errorf("%s: claims %+v", alg, c)
		}
	}
}

// TestVerifyRefusesEach plays every forgery Verify must catch, one check at a time.
func TestVerifyRefusesEach(t *testing.T) {
	k, other := MustKey("ES384", "k1"), MustKey("ES384", "k1")
	good := Expect{Issuer: "https://issuer.example", Subject: "role", Audience: "aud-1", Now: t0.Add(time.Minute), MaxLifetime: time.Hour}
	sign := func(k Key, c map[string]any) string {
		s, err := Sign(k, c)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	tok := sign(k, claims([]string{"aud-1", "aud-2"}, t0, t0.Add(5*time.Minute)))
	if _, err := Verify(tok, KeySet(k), good); err != nil {
		t.Fatalf("list audience: %v", err)
	}
	resigned := sign(other, claims("aud-1", t0, t0.Add(5*time.Minute))) // same kid, another key
	parts := strings.Split(tok, ".")
	tampered := parts[0] + "." + strings.Split(sign(k, map[string]any{"iss": "https://issuer.example", "sub": "admin", "aud": "aud-1", "exp": t0.Add(time.Hour).Unix()}), ".")[1] + "." + parts[2]
	cases := []struct {
		name  string
		tok   string
		keys  JWKS
		want  func(Expect) Expect
		error error
	}{
		{"re-signed by another key", resigned, KeySet(k), nil, ErrSignature},
		{"claims swapped under the signature", tampered, KeySet(k), nil, ErrSignature},
		{"unknown kid", tok, KeySet(MustKey("ES384", "k2")), nil, ErrUnknownKey},
		{"algorithm not accepted", tok, KeySet(k), func(e Expect) Expect { e.Algorithms = []string{"RS256"}; return e }, ErrAlgorithm},
		{"wrong issuer", tok, KeySet(k), func(e Expect) Expect { e.Issuer = "https://other"; return e }, ErrIssuer},
		{"another subject", tok, KeySet(k), func(e Expect) Expect { e.Subject = "other-role"; return e }, ErrSubject},
		{"wrong audience", tok, KeySet(k), func(e Expect) Expect { e.Audience = "api://AzureADTokenExchange"; return e }, ErrAudience},
		{"expired", tok, KeySet(k), func(e Expect) Expect { e.Now = t0.Add(5 * time.Minute); return e }, ErrExpired},
		{"issued in the future", tok, KeySet(k), func(e Expect) Expect { e.Now = t0.Add(-time.Minute); return e }, ErrNotYet},
		{"too long-lived", tok, KeySet(k), func(e Expect) Expect { e.MaxLifetime = time.Minute; return e }, ErrLifetime},
		{"not a JWS", "a.b", KeySet(k), nil, ErrMalformed},
	}
	for _, c := range cases {
		want := good
		if c.want != nil {
			want = c.want(want)
		}
		if _, err := Verify(c.tok, c.keys, want); !errors.Is(err, c.error) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.error)
		}
	}
}
