// Package webidentity obtains the signed JSON Web Tokens that AWS IAM outbound identity
// federation issues to the function's role (sts:GetWebIdentityToken), for every upstream that
// accepts one in place of a stored secret (Microsoft Entra ID for ACR, Chainguard).
//
// A token proves "this AWS role" to whoever trusts the account's issuer for the token's
// audience, for at most its lifetime: it is a credential. Nothing here logs it, puts it in an
// error or keeps it beyond its expiry. Cache reuses a token for the same request inside one
// invocation (each upstream builds its own Cache), so a rotation step that talks to the vendor
// several times asks STS once.
package webidentity

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
)

// The signing algorithms STS offers.
const (
	RS256 = "RS256"
	ES384 = "ES384"
)

// Token lifetimes STS accepts (DurationSeconds), and the one used when a request names none.
const (
	MinDuration     = 60 * time.Second
	MaxDuration     = time.Hour
	DefaultDuration = 5 * time.Minute
)

// ReuseMargin is how long before its expiry a cached token is no longer handed out: the vendor
// must still accept it when it arrives there.
const ReuseMargin = time.Minute

// EnableCommand is what a person runs, once per account, to turn outbound federation on.
const EnableCommand = "aws iam enable-outbound-web-identity-federation"

// Request says what token an upstream needs.
type Request struct {
	// Audience is the token's aud claim: the vendor's expected audience, e.g.
	// "api://AzureADTokenExchange".
	Audience string
	// Algorithm is RS256 or ES384; empty means RS256 (every vendor verifies it).
	Algorithm string
	// Duration is the token's lifetime; zero means DefaultDuration.
	Duration time.Duration
}

func (r Request) normalized() (Request, error) {
	if strings.TrimSpace(r.Audience) == "" {
		return r, errors.New("web identity token: an audience is required")
	}
	if r.Algorithm == "" {
		r.Algorithm = RS256
	}
	if r.Algorithm != RS256 && r.Algorithm != ES384 {
		return r, fmt.Errorf("web identity token: signing algorithm %q is not RS256 or ES384", r.Algorithm)
	}
	if r.Duration == 0 {
		r.Duration = DefaultDuration
	}
	if r.Duration < MinDuration || r.Duration > MaxDuration {
		return r, fmt.Errorf("web identity token: duration %s is outside %s..%s", r.Duration, MinDuration, MaxDuration)
	}
	return r, nil
}

// Token is a signed web identity token. JWT is a credential: never log it.
type Token struct {
	JWT     string
	Expires time.Time
}

// String keeps the token out of every %v and log line.
func (t Token) String() string { return "[web identity token]" }

// GoString keeps the token out of %#v.
func (t Token) GoString() string { return t.String() }

// Source hands out web identity tokens of the function's role.
type Source interface {
	// Token returns a token for req. Its errors never contain a token.
	Token(ctx context.Context, req Request) (Token, error)
}

// API is the one STS call STS makes; *sts.Client has it.
type API interface {
	GetWebIdentityToken(ctx context.Context, in *sts.GetWebIdentityTokenInput, optFns ...func(*sts.Options)) (*sts.GetWebIdentityTokenOutput, error)
}

// STS is the Source that asks AWS STS (a regional endpoint: the global one does not offer the
// call). It does not cache; wrap it in a Cache.
type STS struct {
	API API
}

// Token implements Source.
func (s *STS) Token(ctx context.Context, req Request) (Token, error) {
	if s == nil || s.API == nil {
		return Token{}, errors.New("web identity token: no STS client is configured (federated mode needs the function's role and sts:GetWebIdentityToken)")
	}
	req, err := req.normalized()
	if err != nil {
		return Token{}, err
	}
	out, err := s.API.GetWebIdentityToken(ctx, &sts.GetWebIdentityTokenInput{
		Audience:         []string{req.Audience},
		SigningAlgorithm: aws.String(req.Algorithm),
		DurationSeconds:  aws.Int32(int32(req.Duration / time.Second)),
	})
	if err != nil {
		return Token{}, explain(req, err)
	}
	if out == nil || aws.ToString(out.WebIdentityToken) == "" {
		return Token{}, errors.New("AWS STS GetWebIdentityToken: the answer carried no WebIdentityToken")
	}
	t := Token{JWT: aws.ToString(out.WebIdentityToken)}
	if out.Expiration != nil {
		t.Expires = *out.Expiration
	}
	return t, nil
}

// explain names the fix for the refusals a person can act on. STS's own messages name no token.
func explain(req Request, err error) error {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return fmt.Errorf("AWS STS GetWebIdentityToken: %w", err)
	}
	switch ae.ErrorCode() {
	case "OutboundWebIdentityFederationDisabledException":
		return fmt.Errorf("AWS STS GetWebIdentityToken: outbound identity federation is not enabled in this account: run `%s` once in this account (docs/deploy.md): %w", EnableCommand, err)
	case "AccessDenied", "AccessDeniedException":
		return fmt.Errorf("AWS STS GetWebIdentityToken: the function's role may not get a token for audience %q lasting %s: check the template's FederationAudiences and the role's sts:GetWebIdentityToken statement: %w", req.Audience, req.Duration, err)
	}
	return fmt.Errorf("AWS STS GetWebIdentityToken: %w", err)
}

// Cache reuses the tokens of Inner per request until ReuseMargin before their expiry. One
// upstream builds one Cache, so tokens live no longer than the upstream (one invocation).
type Cache struct {
	Inner Source
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu     sync.Mutex
	tokens map[Request]Token
}

// NewCache wraps inner; now nil means time.Now.
func NewCache(inner Source, now func() time.Time) *Cache { return &Cache{Inner: inner, Now: now} }

// Token implements Source.
func (c *Cache) Token(ctx context.Context, req Request) (Token, error) {
	if c == nil || c.Inner == nil {
		return (*STS)(nil).Token(ctx, req)
	}
	req, err := req.normalized()
	if err != nil {
		return Token{}, err
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	c.mu.Lock()
	t, ok := c.tokens[req]
	c.mu.Unlock()
	if ok && now().Before(t.Expires.Add(-ReuseMargin)) {
		return t, nil
	}
	t, err = c.Inner.Token(ctx, req)
	if err != nil {
		return Token{}, err
	}
	if t.Expires.IsZero() {
		t.Expires = now().Add(req.Duration) // STS always says; an answer that does not is used once
	}
	c.mu.Lock()
	if c.tokens == nil {
		c.tokens = map[Request]Token{}
	}
	c.tokens[req] = t
	c.mu.Unlock()
	return t, nil
}

// Drop forgets every cached token, for an upstream whose vendor refused one.
func (c *Cache) Drop() {
	c.mu.Lock()
	c.tokens = nil
	c.mu.Unlock()
}
