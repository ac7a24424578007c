// Package ghcr is the github-container-registry upstream. It does not mint anything, because
// GitHub has no API that creates a personal access token of any kind, and GitHub Packages accept
// only classic PATs: a person creates the next classic PAT with read:packages and puts it into
// the source secret; rotation stages exactly that token, proves it still works and reports when
// it expires, then promotes it. Nothing is revoked either — the token belongs to the person.
//
// Verify asks api.github.com who the token belongs to (GET /user), which also returns its classic
// scopes (X-OAuth-Scopes) and its expiry (GitHub-Authentication-Token-Expiration), and then logs
// in at ghcr.io with the registry's own token handshake.
package ghcr

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/kit"
	"github.com/ptc-credentials/ptc-credentials/internal/pinned"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/registryauth"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/httpapi"
)

// Defaults for the source secret's optional fields and the registry.
const (
	DefaultAPIURL   = "https://api.github.com"
	DefaultRegistry = "ghcr.io"
	// DefaultCheckImage is the image, in the username's own namespace, that the login check asks
	// a pull scope for when checkRepository is not set.
	DefaultCheckImage = "ptc-credentials-check"
)

// The hosts a GHCR token may go to (internal/pinned). ECR pulls from ghcr.io, whose /v2/
// challenge names its own token realm (https://ghcr.io/token); the token's owner, scopes and
// expiry are read from api.github.com. GitHub Enterprise Server is not an ECR upstream.
var (
	// RegistryHosts is the registry and its token realm.
	RegistryHosts = pinned.Hosts{Upstream: ptcsecret.UpstreamGHCR, Exact: []string{"ghcr.io"}}
	// APIHosts is GitHub's REST API: the source's "apiUrl".
	APIHosts = pinned.Hosts{Upstream: ptcsecret.UpstreamGHCR, Exact: []string{"api.github.com"}}
)

// Header names GitHub's REST API answers with.
const (
	HeaderScopes     = "X-OAuth-Scopes"
	HeaderExpiration = "GitHub-Authentication-Token-Expiration"
)

// Prefixes of GitHub tokens that cannot pull packages for a pull-through cache: fine-grained PATs
// are not accepted by GitHub Packages, and installation (Actions) tokens last an hour.
const (
	fineGrainedPrefix  = "github_pat_"
	installationPrefix = "ghs_"
)

// Source is the source secret's JSON for github-container-registry.
type Source struct {
	// Username is the GitHub login that owns Token; it becomes the registry username.
	Username string `json:"username"`
	// Token is the next classic personal access token with read:packages, put here by a person.
	Token string `json:"token"`
	// APIURL is https://api.github.com, the default and the only host allowed (APIHosts); it
	// exists for the test kit's emulators (pinned stand-ins).
	APIURL string `json:"apiUrl,omitempty"`
	// CheckRepository is the "<owner>/<image>" the login check asks a pull scope for; default
	// "<lower-case username>/ptc-credentials-check". Set it to an image the rule really pulls.
	CheckRepository string `json:"checkRepository,omitempty"`
}

// ParseSource reads and checks the source secret. Errors name the field, never its value.
func ParseSource(raw []byte) (Source, error) {
	var s Source
	if err := upstream.DecodeSource(raw, ptcsecret.UpstreamGHCR, &s); err != nil {
		return Source{}, err
	}
	switch {
	case strings.TrimSpace(s.Username) == "":
		return Source{}, errors.New(`github-container-registry source secret: field "username" is required (the GitHub login that owns the token)`)
	case strings.TrimSpace(s.Token) == "":
		return Source{}, errors.New(`github-container-registry source secret: field "token" is required (a classic personal access token with read:packages)`)
	case strings.TrimSpace(s.Token) != s.Token:
		return Source{}, errors.New(`github-container-registry source secret: field "token" has leading or trailing white space; paste the token alone`)
	}
	if err := tokenKind(s.Token); err != nil {
		return Source{}, fmt.Errorf(`github-container-registry source secret: field "token": %w`, err)
	}
	if s.APIURL == "" {
		s.APIURL = DefaultAPIURL
	}
	if _, err := httpapi.BaseURL(`github-container-registry source secret: field "apiUrl"`, s.APIURL); err != nil {
		return Source{}, err
	}
	s.APIURL = strings.TrimRight(strings.TrimSpace(s.APIURL), "/")
	if s.CheckRepository == "" {
		s.CheckRepository = strings.ToLower(strings.TrimSpace(s.Username)) + "/" + DefaultCheckImage
	}
	if err := checkRepository(s.CheckRepository); err != nil {
		return Source{}, fmt.Errorf(`github-container-registry source secret: field "checkRepository": %w`, err)
	}
	return s, nil
}

// tokenKind refuses the GitHub token kinds that cannot serve a pull-through cache, by prefix
// alone, before any call: the message must say what to create instead.
func tokenKind(token string) error {
	switch {
	case strings.HasPrefix(token, fineGrainedPrefix):
		return errors.New("this is a fine-grained personal access token, which GitHub Packages do not accept; create a classic PAT with read:packages")
	case strings.HasPrefix(token, installationPrefix):
		return errors.New("this is a GitHub App installation or Actions token, which expires within hours; create a classic PAT with read:packages")
	}
	return nil
}

// checkRepository accepts "<owner>/<image>[/<more>]" in the lower-case form OCI names require.
func checkRepository(repo string) error {
	owner, image, ok := strings.Cut(repo, "/")
	if !ok || owner == "" || image == "" {
		return errors.New(`must be "<owner>/<image>"`)
	}
	for _, c := range repo {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.ContainsRune("._-/", c)) {
			return errors.New(`must be "<owner>/<image>" in lower case (letters, digits, ".", "_", "-", "/")`)
		}
	}
	return nil
}

// GHCR is the github-container-registry upstream.
type GHCR struct {
	src      Source
	registry string
	api      *httpapi.Caller
	opts     upstream.Options
}

var _ upstream.Upstream = (*GHCR)(nil)

// New builds the upstream from the source secret's JSON.
func New(source []byte, opts upstream.Options) (*GHCR, error) {
	src, err := ParseSource(source)
	if err != nil {
		return nil, err
	}
	if src.APIURL, err = opts.CheckURL(`github-container-registry source secret: field "apiUrl"`, src.APIURL, APIHosts); err != nil {
		return nil, err
	}
	reg, err := opts.LoginRegistry(RegistryHosts, DefaultRegistry, "")
	if err != nil {
		return nil, err
	}
	return &GHCR{
		src:      src,
		registry: reg,
		opts:     opts,
		api:      &httpapi.Caller{Service: "GitHub", Client: opts.Client(APIHosts), Now: opts.Clock(), Sleep: opts.Sleep},
	}, nil
}

// Provider describes github-container-registry to the rotation engine and the provisioner.
var Provider = upstream.Provider{
	Registry: ptcsecret.UpstreamGHCR,
	New:      func(source []byte, opts upstream.Options) (upstream.Upstream, error) { return New(source, opts) },
	// A person may stage a token of another account (the owner left): the username may change,
	// and Verify checks that it is the token's owner.
	FixedUsername:      false,
	DefaultRegistryURL: DefaultRegistry,
	RegistryHosts:      RegistryHosts,
}

// Registry implements upstream.Upstream.
func (g *GHCR) Registry() string { return ptcsecret.UpstreamGHCR }

// Retries reports how many API calls were retried (429 or transient), for logs and benchmarks.
func (g *GHCR) Retries() int { return g.api.Retries }

// Mint implements upstream.Upstream without minting: it returns the token a person put into the
// source secret. When that is the token already current, the rotation simply re-verifies it.
func (g *GHCR) Mint(_ context.Context, req upstream.MintRequest) (upstream.Minted, error) {
	g.opts.Log().Info("GHCR tokens cannot be minted; staging the token a person put in the source secret",
		"username", g.src.Username, "token_label", req.Label)
	return upstream.Minted{
		Credential: upstream.Credential{Username: g.src.Username, AccessToken: g.src.Token},
		Token:      upstream.Token{Label: req.Label},
	}, nil
}

// Tokens implements upstream.Upstream: nothing was minted, so nothing is ours to revoke.
func (g *GHCR) Tokens(context.Context, string) ([]upstream.Token, error) { return nil, nil }

// Revoke implements upstream.Upstream as a no-op: the token belongs to the person who made it.
func (g *GHCR) Revoke(context.Context, upstream.Token) error { return nil }

// Verify implements upstream.Upstream: the token is a classic PAT of cred.Username with
// read:packages (GET /user), and ghcr.io hands it a pull token. The expiry GitHub announces is
// returned for the rotation engine to log, measure and warn about.
func (g *GHCR) Verify(ctx context.Context, cred upstream.Credential) (upstream.Verification, error) {
	if err := tokenKind(cred.AccessToken); err != nil {
		return upstream.Verification{}, fmt.Errorf("github-container-registry: the token of %q: %w", cred.Username, err)
	}
	var who struct {
		Login string `json:"login"`
	}
	resp, err := g.api.Do(ctx, "check the token (GET /user)", httpapi.Request{
		Method: http.MethodGet, URL: g.src.APIURL + "/user",
		Header: http.Header{
			"Authorization":        {"Bearer " + cred.AccessToken},
			"User-Agent":           {"ptc-credentials"},
			"X-Github-Api-Version": {"2022-11-28"},
		},
	}, &who)
	if err != nil {
		return upstream.Verification{}, explainAPIError(cred.Username, err)
	}
	if who.Login != "" && !strings.EqualFold(who.Login, cred.Username) {
		return upstream.Verification{}, fmt.Errorf("github-container-registry: the token belongs to GitHub user %q, not %q; set the source secret's \"username\" to the token's owner", who.Login, cred.Username)
	}
	scopes, isClassic := resp.Header[http.CanonicalHeaderKey(HeaderScopes)]
	if !isClassic {
		return upstream.Verification{}, fmt.Errorf("github-container-registry: GitHub reports no OAuth scopes for the token of %q, so it is not a classic personal access token; create a classic PAT with read:packages", cred.Username)
	}
	if !hasPackagesRead(scopes) {
		return upstream.Verification{}, fmt.Errorf("github-container-registry: the token of %q lacks read:packages (its scopes: %s); create a classic PAT with read:packages", cred.Username, describeScopes(scopes))
	}
	var v upstream.Verification
	switch raw := strings.TrimSpace(resp.Header.Get(HeaderExpiration)); {
	case raw == "":
		g.opts.Log().Info("GitHub announces no expiry for the token: it never expires", "username", cred.Username)
	default:
		exp, err := ParseExpiration(raw)
		if err != nil {
			// The token works; an unreadable date must not block the rotation.
			g.opts.Log().Warn("could not read the token expiry GitHub announced", "username", cred.Username, "header", HeaderExpiration, "value", kit.Truncate(raw, 60))
		} else {
			v.ExpiresAt = exp
		}
	}
	if err := registryauth.Check(ctx, g.opts.Client(RegistryHosts), registryauth.Target{Registry: g.registry, Repository: g.src.CheckRepository},
		registryauth.Credential{Username: cred.Username, Password: cred.AccessToken}); err != nil {
		if errors.Is(err, registryauth.ErrBadCredentials) {
			return upstream.Verification{}, fmt.Errorf("github-container-registry: %s refused a pull of %s with the token of %q, which GitHub's API accepts: check that the account may pull that image (source secret field \"checkRepository\") and that an organization's SAML SSO has authorized the token: %w", g.registry, g.src.CheckRepository, cred.Username, err)
		}
		return upstream.Verification{}, err
	}
	return v, nil
}

// explainAPIError turns the /user error answers into what to do about them.
func explainAPIError(user string, err error) error {
	var se *httpapi.StatusError
	if !errors.As(err, &se) {
		return fmt.Errorf("github-container-registry: could not check the token of %q: %w", user, err)
	}
	switch {
	case se.StatusCode == http.StatusUnauthorized:
		return fmt.Errorf("github-container-registry: GitHub refused the token of %q (expired or revoked?); put a new classic PAT with read:packages into the source secret: %w", user, err)
	case se.StatusCode == http.StatusForbidden:
		return fmt.Errorf("github-container-registry: GitHub answered 403 for the token of %q (rate limit, or a token blocked by an organization policy); see GitHub's message: %w", user, err)
	case se.StatusCode == http.StatusTooManyRequests || se.StatusCode >= 500:
		return fmt.Errorf("github-container-registry: GitHub's API is unavailable; the rotation will be retried: %w", err)
	}
	return fmt.Errorf("github-container-registry: could not check the token of %q: %w", user, err)
}

// hasPackagesRead reports whether a classic token's scopes allow pulling packages; write
// implies read.
func hasPackagesRead(headerValues []string) bool {
	for _, h := range headerValues {
		for _, s := range strings.Split(h, ",") {
			switch strings.TrimSpace(s) {
			case "read:packages", "write:packages":
				return true
			}
		}
	}
	return false
}

// describeScopes renders the scope list for a message; scope names are not secret.
func describeScopes(headerValues []string) string {
	var out []string
	for _, h := range headerValues {
		for _, s := range strings.Split(h, ",") {
			if s = strings.TrimSpace(s); s != "" && !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return kit.Truncate(strings.Join(out, ", "), 200)
}

// ParseExpiration reads GitHub-Authentication-Token-Expiration: "2026-01-02 03:04:05 UTC", or
// with a numeric offset ("2023-04-26 20:23:26 +0200"), which GitHub sends for some tokens
// (go-github issue 2649). RFC 3339 is accepted too.
func ParseExpiration(v string) (time.Time, error) {
	v = strings.TrimSpace(v)
	if t, err := time.Parse("2006-01-02 15:04:05 -0700", v); err == nil {
		return t.UTC(), nil
	}
	for _, zone := range []string{" UTC", " GMT", " Z"} {
		if rest, ok := strings.CutSuffix(v, zone); ok {
			if t, err := time.ParseInLocation(time.DateTime, rest, time.UTC); err == nil {
				return t, nil
			}
		}
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, fmt.Errorf("%s: %q is not a date like \"2026-01-02 03:04:05 UTC\"", HeaderExpiration, kit.Truncate(v, 60))
}
