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
	"strings"
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
	// PullsUnlimited: the registry answered the budget probe without any rate-limit header,
	// which is how Docker Hub says the plan has no pull limit (Docker Business, the plan SSO
	// requires). Not the same as a probe that failed, which reports nothing at all.
	PullsUnlimited bool
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
	// RegistryHosts are the hosts the rule may pull from (UpstreamRegistryUrl, the
	// ptc:registry-url tag): the engines refuse any other before reading the source secret.
	// An upstream may narrow them further once it has read its source (ACR: the source's
	// loginServer alone).
	RegistryHosts pinned.Hosts
	// RegistryRule, when set, is why RegistryHosts is what it is, for the refusal (GitLab: ECR
	// supports GitLab.com only).
	RegistryRule string
}

// CheckRegistryURL refuses a registry URL (field names the tag or property it came from) that
// is not one of p.RegistryHosts or a listed stand-in; "" is the provider's default and passes.
func (p Provider) CheckRegistryURL(field, raw string, standins pinned.Standins) error {
	if raw == "" {
		return nil
	}
	if _, err := pinned.CheckURL(field, raw, p.RegistryHosts, standins); err != nil {
		if p.RegistryRule != "" {
			return fmt.Errorf("%w (%s)", err, p.RegistryRule)
		}
		return err
	}
	return nil
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
	// RegistryURLField is how the caller's user knows RegistryURL, for errors: "tag
	// ptc:registry-url" (the default) or "property UpstreamRegistryUrl".
	RegistryURLField string
	// Sleep waits between retries; nil means a timer that stops when ctx ends. Tests make it
	// advance a fake clock instead.
	Sleep func(ctx context.Context, d time.Duration) error
	// Standins are the loopback endpoints (emulators) that may stand in for the upstream's
	// pinned hosts; the zero value, the deployed functions' state, allows none. The functions
	// read them from awsenv.LoopbackStandinsVar; in-process tests set them directly.
	Standins pinned.Standins
	// WebIdentity gives federated upstreams (ACR without a client secret, Chainguard) the
	// function role's web identity token; nil means no STS client, and federated mode fails
	// with an error saying so. Upstreams wrap it in a webidentity.Cache of their own.
	WebIdentity webidentity.Source
	// FederatedBindings, set by the deployer, limits which managed secrets may use which
	// federated identity (FederatedBindingsVar); nil limits nothing. FromSource checks it.
	FederatedBindings FederatedBindings
}

// Wait sleeps d or until ctx ends, with the injected Sleep when there is one.
func (o Options) Wait(ctx context.Context, d time.Duration) error {
	if o.Sleep != nil {
		return o.Sleep(ctx, d)
	}
	return kit.Sleep(ctx, d)
}

// Client returns the HTTP client for calls to hosts: HTTPClient (nil: a client with a 30 s
// timeout) whose transport refuses every request to another host than hosts or a stand-in
// (pinned.Transport), inside a client that follows no redirect, at CheckRedirect and at its
// transport (kit.Client), so that a redirect is still reported as one. Every call an upstream
// makes carries a credential: a redirect, or a URL an answer named (a token realm, a
// pagination link, a long-running operation), must not hand it to another host.
func (o Options) Client(hosts pinned.Hosts) *http.Client {
	base := o.HTTPClient
	if base == nil {
		base = &http.Client{Timeout: defaultTimeout}
	}
	return kit.Client(pinned.Client(base, hosts, o.Standins), 0)
}

// CheckURL checks a configured base URL (field names the source field) against hosts and the
// stand-ins, and returns it without a trailing slash.
func (o Options) CheckURL(field, raw string, hosts pinned.Hosts) (string, error) {
	u, err := pinned.CheckURL(field, raw, hosts, o.Standins)
	if err != nil {
		return "", err
	}
	return strings.TrimRight(u.String(), "/"), nil
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

const defaultTimeout = 30 * time.Second

// LoginRegistry is the registry an upstream checks logins at: the ptc:registry-url tag
// (Options.RegistryURL) when set, else def. Either must be one of hosts (or a stand-in); the
// error names the tag (or Options.RegistryURLField) and the allowed hosts, and rule, when set,
// says why.
func (o Options) LoginRegistry(hosts pinned.Hosts, def, rule string) (string, error) {
	reg, field := o.RegistryURL, o.RegistryURLField
	if field == "" {
		field = "tag " + ptcsecret.TagRegistryURL
	}
	if reg == "" {
		reg = def
	}
	if _, err := pinned.CheckURL(field, reg, hosts, o.Standins); err != nil {
		if rule != "" {
			return "", fmt.Errorf("%s: %w (%s)", hosts.Upstream, err, rule)
		}
		return "", fmt.Errorf("%s: %w", hosts.Upstream, err)
	}
	if _, err := registryauth.ParseRegistry(reg); err != nil {
		return "", fmt.Errorf("%s: %s: %w", hosts.Upstream, field, err)
	}
	return reg, nil
}
