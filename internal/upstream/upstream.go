// Package upstream defines what every upstream registry implements so that the rotation engine
// and the provisioner can stay registry-agnostic: mint a labelled token, find tokens by label,
// revoke one, and prove a credential can log in to the registry.
//
// One package per registry lives below this one (dockerhub, acr, gitlab, ghcr); the providers
// package maps an ECR UpstreamRegistry value to its constructor.
package upstream

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/kit"
	"github.com/ptc-credentials/ptc-credentials/internal/pinned"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/registryauth"
	"github.com/ptc-credentials/ptc-credentials/internal/webidentity"
)

// Credential is the username/token pair a registry login uses; it is exactly the managed
// secret's value.
type Credential = ptcsecret.Value

// Token describes one upstream token without its secret part.
type Token struct {
	// ID is the upstream's own identifier (a UUID on Docker Hub, a number on GitLab).
	ID string
	// Label is the name the token was minted with (see ptcsecret.Label).
	Label string
	// ExpiresAt is zero when the token does not expire or the upstream does not say.
	ExpiresAt time.Time
}

// MintRequest says which secret version a new token is for.
type MintRequest struct {
	// SecretName is the managed secret's name (not its ARN).
	SecretName string
	// VersionID is the secret version the token will be stored in.
	VersionID string
	// Label is ptcsecret.Label(SecretName, VersionID); upstreams with labels name the token so.
	Label string
	// CurrentStages are the staging labels on the AWSCURRENT version, empty when the secret does
	// not exist yet. Upstreams without labels (ACR) read their bookkeeping labels from here.
	CurrentStages []string
}

// Minted is a fresh credential. Credential.AccessToken is secret: never log it.
type Minted struct {
	Credential Credential
	// Token describes what was minted, for logs and for undoing a failed create.
	Token Token
	// Stages are extra staging labels to put on the new version together with AWSPENDING
	// (ACR records its password slot this way).
	Stages []string
}

// Verification is what a successful registry login learned.
type Verification struct {
	// ExpiresAt is when the verified token expires, zero when unknown or never.
	ExpiresAt time.Time
	// PullsRemaining and PullLimit are the credential's pull budget as the registry reported it
	// (Docker Hub's ratelimit-remaining / ratelimit-limit), nil when it reported none: an
	// unlimited plan, or a registry without such headers. Nothing is emitted then.
	PullsRemaining, PullLimit *int
	// PullWindow is the window the budget is counted over, zero when not reported.
	PullWindow time.Duration
}

// Upstream is one registry's token API plus its registry login check.
type Upstream interface {
	// Registry returns the ECR UpstreamRegistry value, e.g. "docker-hub".
	Registry() string
	// Mint creates a new token labelled req.Label and returns its credential.
	Mint(ctx context.Context, req MintRequest) (Minted, error)
	// Tokens lists the tokens whose label starts with labelPrefix. Upstreams that cannot label
	// tokens return nil: nothing of theirs needs revoking.
	Tokens(ctx context.Context, labelPrefix string) ([]Token, error)
	// Revoke deletes a token. A token that is already gone is not an error.
	Revoke(ctx context.Context, t Token) error
	// Verify proves cred can obtain a pull token from the registry ECR will pull from,
	// retrying within ctx where the upstream is eventually consistent.
	Verify(ctx context.Context, cred Credential) (Verification, error)
}

// Retirer is implemented by upstreams whose credentials carry no label to list them by (ACR's
// password slots). RetireAll makes every credential the upstream handed out stop working; the
// provisioner calls it when the resource is deleted, after revoking labelled tokens.
type Retirer interface {
	RetireAll(ctx context.Context) error
}

// RotationBounded is implemented by upstreams whose credentials live a fixed time the source
// secret sets (Chainguard's pull tokens), so that the provisioner can refuse a rotation schedule
// that lets AWSCURRENT lapse.
type RotationBounded interface {
	// MaxRotationInterval is the longest interval between rotations that keeps AWSPREVIOUS live
	// until its successor replaces it and leaves a retry before AWSCURRENT lapses: half the
	// lifetime.
	MaxRotationInterval() time.Duration
}

// Provider describes one registry kind: how to build its Upstream from the source secret, and
// the facts about it the rotation engine needs without building one.
type Provider struct {
	// Registry is the ECR UpstreamRegistry value.
	Registry string
	// New builds the upstream from the source secret's JSON.
	New func(source []byte, opts Options) (Upstream, error)
	// FixedUsername reports whether every credential minted carries the same username, so
	// setSecret can refuse a pending value whose identity changed (not so on GitLab, where each
	// token has its own bot user).
	FixedUsername bool
	// DefaultRegistryURL is the registry the rule pulls from when none is given; empty when
	// there is no default (ACR: every registry has its own host).
	DefaultRegistryURL string
}

// Options are the dependencies every upstream takes; zero values mean the defaults.
type Options struct {
	// HTTPClient makes every call; nil means a client with a 30 s timeout.
	HTTPClient *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives progress records; nil discards them. Never give it a secret.
	Logger *slog.Logger
	// RegistryURL is the registry the rule pulls from (the ptc:registry-url tag); empty means
	// the upstream's default.
	RegistryURL string
	// Sleep waits between retries; nil means a timer that stops when ctx ends. Tests make it
	// advance a fake clock instead.
	Sleep func(ctx context.Context, d time.Duration) error
	// Standins are the loopback endpoints that may stand in for the hosts an upstream pins
	// (pinned.Client); the zero value, the deployed functions' state, allows none.
	Standins pinned.Standins
	// WebIdentity gives federated upstreams (ACR without a client secret, Chainguard) the
	// function role's web identity token; nil means no STS client, and federated mode fails
	// with an error saying so. Upstreams wrap it in a webidentity.Cache of their own.
	WebIdentity webidentity.Source
}

// Wait sleeps d or until ctx ends, with the injected Sleep when there is one.
func (o Options) Wait(ctx context.Context, d time.Duration) error {
	if o.Sleep != nil {
		return o.Sleep(ctx, d)
	}
	return kit.Sleep(ctx, d)
}

// Client returns the HTTP client to use: HTTPClient (or the default) made to follow no redirect,
// at CheckRedirect and at its transport (kit.Client). Every call an upstream makes carries a
// credential, and a redirect would hand it to the other host.
func (o Options) Client() *http.Client {
	if o.HTTPClient != nil {
		return kit.Client(o.HTTPClient, 0)
	}
	return defaultClient
}

// Clock returns the clock to use.
func (o Options) Clock() func() time.Time {
	if o.Now != nil {
		return o.Now
	}
	return time.Now
}

// Log returns the logger to use.
func (o Options) Log() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.New(slog.DiscardHandler)
}

var defaultClient = kit.Client(nil, 30*time.Second)

// LoginRegistry is the registry an upstream checks logins at: the ptc:registry-url tag
// (Options.RegistryURL) when set, else def. upstreamName starts the error.
func (o Options) LoginRegistry(upstreamName, def string) (string, error) {
	reg := o.RegistryURL
	if reg == "" {
		reg = def
	}
	if _, err := registryauth.ParseRegistry(reg); err != nil {
		return "", fmt.Errorf("%s: tag %s: %w", upstreamName, ptcsecret.TagRegistryURL, err)
	}
	return reg, nil
}
