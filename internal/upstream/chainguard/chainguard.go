// Package chainguard mints Chainguard pull tokens for the chainguard pull-through cache rule
// (upstream URL exactly cgr.dev) with no stored secret at all.
//
// A Chainguard pull token is a static IAM identity in a group (organization or folder) bound
// to the role registry.pull: its registry username is the identity's id, its password a JWT
// whose issuer and subject the identity names and whose signature its registered public keys
// (issuer_keys, a JWKS) verify, until the identity's expiration.
//
// To create one, the function's IAM role proves itself with its web identity token
// (sts:GetWebIdentityToken, audience https://issuer.enforce.dev) at Chainguard's STS
// (POST https://issuer.enforce.dev/sts/exchange with identity = an assumable identity whose
// claim_match names the AWS account's outbound federation issuer and the role's ARN) and gets a
// Chainguard token for the IAM API (https://console-api.enforce.dev). Mint then:
//
//  1. generates a throw-away P-256 key;
//  2. creates the static identity named with the version's label (ptcsecret.Label), issuer
//     PullTokenIssuer, subject the label, issuer_keys the key's public JWKS and expiration
//     now + tokenLifetimeHours (POST /iam/v1/identities/{group});
//  3. binds it to registry.pull (GET /iam/v1/roles?name=registry.pull, POST
//     /iam/v1/rolebindings/{group}); if that fails the identity is deleted again;
//  4. signs the JWT (ES256) and forgets the key.
//
// Tokens lists the group's identities whose names carry the label prefix (GET
// /iam/v1/identities?uidp.children_of={group}); Revoke deletes one (DELETE
// /iam/v1/identities/{id}); Verify is the OCI token handshake at cgr.dev with
// Basic <identity id>:<JWT> and reports the JWT's expiry.
//
// # Source secret
//
// It holds nothing secret:
//
//	{
//	  "group": "<UIDP of the organization or folder the pull tokens live in>",
//	  "identity": "<UIDP of the assumable identity the function role assumes>",
//	  "checkRepository": "<org>/<image> the tokens can pull, for the login check",
//	  "tokenLifetimeHours": 720,               // optional: 1..720 (the API caps static identities at 30 days)
//	  "issuerUrl": "https://issuer.enforce.dev",    // optional
//	  "apiUrl": "https://console-api.enforce.dev"  // optional
//	}
//
// The assumable identity needs identity.create, identity.list, identity.delete,
// role_bindings.create and roles.list in the group (docs/deploy.md has the custom role).
// Every host is pinned (issuer.enforce.dev, console-api.enforce.dev, cgr.dev).
//
// Rotate at least twice per token lifetime, so that AWSPREVIOUS is still live when AWSCURRENT
// replaces it and a failed rotation has a retry before the current token lapses.
package chainguard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/kit"
	"github.com/ptc-credentials/ptc-credentials/internal/pinned"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/registryauth"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/httpapi"
	"github.com/ptc-credentials/ptc-credentials/internal/webidentity"
)

// Registry is ECR's UpstreamRegistry value for Chainguard.
const Registry = ptcsecret.UpstreamChainguard

// Endpoints, audiences and names of the Chainguard service.
const (
	DefaultIssuerURL   = "https://issuer.enforce.dev"
	DefaultAPIURL      = "https://console-api.enforce.dev"
	DefaultRegistryURL = "cgr.dev"
	// IssuerAudience is the audience of the AWS web identity token Chainguard's STS accepts,
	// and of a pull token's JWT.
	IssuerAudience = "https://issuer.enforce.dev"
	// APIAudience is the audience of the Chainguard token the IAM API accepts.
	APIAudience = "https://console-api.enforce.dev"
	// PullRole is the role pull tokens are bound to.
	PullRole = "registry.pull"
	// PullTokenIssuer is the issuer a pull token's static identity names: a static identity's
	// keys are registered on it, so its issuer need not be reachable.
	PullTokenIssuer = "https://pulltoken.issuer.chainguard.dev"
	// DefaultLifetimeHours and MaxLifetimeHours bound tokenLifetimeHours (30 days).
	DefaultLifetimeHours = 720
	MaxLifetimeHours     = 720
)

// Hosts are the hosts this upstream sends credentials to.
var Hosts = pinned.Hosts{Upstream: Registry, Exact: []string{"issuer.enforce.dev", "console-api.enforce.dev", "cgr.dev"}}

// Source is the source secret's JSON for chainguard.
type Source struct {
	// Group is the UIDP of the group the pull tokens are created in.
	Group string `json:"group"`
	// Identity is the UIDP of the assumable identity the function's role exchanges its web
	// identity token for.
	Identity string `json:"identity"`
	// CheckRepository is a repository the pull tokens may pull, for the login check.
	CheckRepository string `json:"checkRepository"`
	// TokenLifetimeHours is each pull token's lifetime; 0 means 720.
	TokenLifetimeHours int `json:"tokenLifetimeHours,omitempty"`
	// IssuerURL overrides https://issuer.enforce.dev.
	IssuerURL string `json:"issuerUrl,omitempty"`
	// APIURL overrides https://console-api.enforce.dev.
	APIURL string `json:"apiUrl,omitempty"`
}

var (
	uidpRE = regexp.MustCompile(`^[0-9a-f]{40}(/[0-9a-f]{16})*$`)
	repoRE = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)+$`)
)

const errPrefix = "chainguard source secret: "

// ParseSource reads and checks the source secret. Errors name the field, never its value.
func ParseSource(raw []byte) (Source, error) {
	var s Source
	if err := upstream.DecodeSource(raw, Registry, &s); err != nil {
		return Source{}, err
	}
	switch {
	case !uidpRE.MatchString(s.Group):
		return Source{}, errors.New(errPrefix + `field "group" must be the UIDP of the organization or folder the pull tokens live in (chainctl iam organizations list -o json: its "id")`)
	case !uidpRE.MatchString(s.Identity) || !strings.Contains(s.Identity, "/"):
		return Source{}, errors.New(errPrefix + `field "identity" must be the UIDP of the assumable identity for this function's role (chainctl iam identities create prints it)`)
	case !repoRE.MatchString(s.CheckRepository):
		return Source{}, errors.New(errPrefix + `field "checkRepository" is required: a repository the pull tokens can pull, e.g. <org>/static`)
	}
	switch {
	case s.TokenLifetimeHours == 0:
		s.TokenLifetimeHours = DefaultLifetimeHours
	case s.TokenLifetimeHours < 1 || s.TokenLifetimeHours > MaxLifetimeHours:
		return Source{}, fmt.Errorf(errPrefix+`field "tokenLifetimeHours" is %d; use 1..%d (Chainguard caps a pull token's static identity at 30 days)`, s.TokenLifetimeHours, MaxLifetimeHours)
	}
	if s.IssuerURL == "" {
		s.IssuerURL = DefaultIssuerURL
	}
	if s.APIURL == "" {
		s.APIURL = DefaultAPIURL
	}
	return s, nil
}

// Chainguard is the chainguard upstream.
type Chainguard struct {
	src      Source
	issuer   string
	api      string
	registry string
	client   *http.Client
	sts      *httpapi.Caller
	iam      *httpapi.Caller
	wid      *webidentity.Cache
	opts     upstream.Options

	mu       sync.Mutex
	token    string // Chainguard token for the IAM API, reused within the upstream
	expires  time.Time
	pullRole string
}

var _ upstream.Upstream = (*Chainguard)(nil)

// New builds the upstream from the source secret's JSON.
func New(source []byte, opts upstream.Options) (*Chainguard, error) {
	src, err := ParseSource(source)
	if err != nil {
		return nil, err
	}
	iss, err := pinned.CheckURL(errPrefix+`field "issuerUrl"`, src.IssuerURL, Hosts, opts.Standins)
	if err != nil {
		return nil, err
	}
	api, err := pinned.CheckURL(errPrefix+`field "apiUrl"`, src.APIURL, Hosts, opts.Standins)
	if err != nil {
		return nil, err
	}
	reg := opts.RegistryURL
	if reg == "" {
		reg = DefaultRegistryURL
	}
	regURL, err := pinned.CheckURL("chainguard: tag "+ptcsecret.TagRegistryURL+" (the rule's upstream URL must be exactly cgr.dev)", reg, Hosts, opts.Standins)
	if err != nil {
		return nil, err
	}
	if opts.Standins.Empty() && regURL.Host != "cgr.dev" {
		return nil, fmt.Errorf("chainguard: tag %s is %s; ECR accepts only cgr.dev for Chainguard", ptcsecret.TagRegistryURL, regURL.Host)
	}
	client := opts.Client(Hosts) // pinned inside the no-redirect client
	return &Chainguard{
		src: src, issuer: iss.String(), api: api.String(), registry: regURL.String(), client: client, opts: opts,
		wid: webidentity.NewCache(opts.WebIdentity, opts.Clock()),
		sts: &httpapi.Caller{Service: "Chainguard STS", Client: client, Now: opts.Clock(), Sleep: opts.Wait},
		iam: &httpapi.Caller{Service: "Chainguard IAM", Client: client, Now: opts.Clock(), Sleep: opts.Wait},
	}, nil
}

// Provider describes chainguard to the rotation engine and the provisioner.
var Provider = upstream.Provider{
	Registry: Registry,
	New:      func(source []byte, opts upstream.Options) (upstream.Upstream, error) { return New(source, opts) },
	// Each pull token is its own identity, with its own id as username.
	FixedUsername:      false,
	DefaultRegistryURL: DefaultRegistryURL,
	RegistryHosts:      RegistryHosts,
	RegistryRule:       "ECR accepts only cgr.dev for Chainguard",
}

// RegistryHosts is the one registry ECR accepts for Chainguard (UpstreamRegistryUrl).
var RegistryHosts = pinned.Hosts{Upstream: Registry, Exact: []string{"cgr.dev"}}

// Registry implements upstream.Upstream.
func (c *Chainguard) Registry() string { return Registry }

// FederatedIdentity implements upstream.Federated: the assumable identity that trusts the
// function role (Chainguard is always federated).
func (c *Chainguard) FederatedIdentity() (string, bool) { return c.src.Identity, true }

// MaxRotationInterval implements upstream.RotationBounded: half the pull tokens' lifetime.
func (c *Chainguard) MaxRotationInterval() time.Duration {
	return time.Duration(c.src.TokenLifetimeHours) * time.Hour / 2
}

var _ upstream.RotationBounded = (*Chainguard)(nil)

// Retries reports how many API calls were retried.
func (c *Chainguard) Retries() int { return c.sts.Retries + c.iam.Retries }

// apiToken returns a Chainguard token for the IAM API, exchanging the role's web identity
// token for it when the one this upstream holds is missing or about to expire.
func (c *Chainguard) apiToken(ctx context.Context) (string, error) {
	now := c.opts.Clock()()
	c.mu.Lock()
	tok, exp := c.token, c.expires
	c.mu.Unlock()
	if tok != "" && now.Before(exp.Add(-time.Minute)) {
		return tok, nil
	}
	awsTok, err := c.wid.Token(ctx, webidentity.Request{Audience: IssuerAudience, Algorithm: webidentity.RS256, Duration: webidentity.DefaultDuration})
	if err != nil {
		return "", fmt.Errorf("chainguard: %w", err)
	}
	var out struct {
		Token  string `json:"token"`
		Expiry string `json:"expiry"`
	}
	_, err = c.sts.Do(ctx, "exchange the role's web identity token for identity "+c.src.Identity, httpapi.Request{
		Method: http.MethodPost, URL: c.issuer + "/sts/exchange",
		Header: http.Header{"Authorization": {"Bearer " + awsTok.JWT}},
		Form:   url.Values{"aud": {APIAudience}, "identity": {c.src.Identity}},
	}, &out)
	if err != nil {
		c.wid.Drop()
		if httpapi.IsStatus(err, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound) {
			return "", fmt.Errorf(`%w: check field "identity": the assumable identity must match issuer = this AWS account's outbound identity federation issuer URL, subject = this function's role ARN, audience %s (docs/deploy.md, chainctl iam identities create)`, err, IssuerAudience)
		}
		return "", err
	}
	if out.Token == "" {
		return "", errors.New("Chainguard STS: exchange: the answer carried no token")
	}
	exp, perr := time.Parse(time.RFC3339, out.Expiry)
	if perr != nil {
		exp = now.Add(10 * time.Minute) // unknown lifetime: reuse briefly
	}
	c.mu.Lock()
	c.token, c.expires = out.Token, exp
	c.mu.Unlock()
	return out.Token, nil
}

// call makes one IAM API call with the Chainguard token.
func (c *Chainguard) call(ctx context.Context, op string, req httpapi.Request, out any) error {
	tok, err := c.apiToken(ctx)
	if err != nil {
		return err
	}
	req.Header = http.Header{"Authorization": {"Bearer " + tok}}
	_, err = c.iam.Do(ctx, op, req, out)
	if httpapi.IsStatus(err, http.StatusForbidden) {
		return fmt.Errorf(`%w: the assumable identity of field "identity" lacks a capability in group %s; bind it the role with identity.create, identity.list, identity.delete, role_bindings.create and roles.list (docs/deploy.md)`, err, c.src.Group)
	}
	return err
}

func (c *Chainguard) pullRoleID(ctx context.Context) (string, error) {
	c.mu.Lock()
	id := c.pullRole
	c.mu.Unlock()
	if id != "" {
		return id, nil
	}
	var out struct {
		Items []struct{ ID, Name string } `json:"items"`
	}
	if err := c.call(ctx, "find role "+PullRole, httpapi.Request{Method: http.MethodGet, URL: c.api + "/iam/v1/roles?name=" + url.QueryEscape(PullRole)}, &out); err != nil {
		return "", err
	}
	for _, r := range out.Items {
		if r.Name == PullRole && r.ID != "" {
			c.mu.Lock()
			c.pullRole = r.ID
			c.mu.Unlock()
			return r.ID, nil
		}
	}
	return "", fmt.Errorf("Chainguard IAM: no role named %s is visible to the assumable identity", PullRole)
}

type identityJSON struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Static *struct {
		Expiration string `json:"expiration"`
	} `json:"static"`
}

func (i identityJSON) describe() upstream.Token {
	t := upstream.Token{ID: i.ID, Label: i.Name}
	if i.Static != nil {
		t.ExpiresAt, _ = time.Parse(time.RFC3339, i.Static.Expiration)
	}
	return t
}

func (c *Chainguard) identityURL(id string) string {
	return c.api + "/iam/v1/identities/" + id // UIDPs are hex and "/": nothing to escape
}

// Mint implements upstream.Upstream: a new static identity bound to registry.pull, named with
// the version's label, and the JWT that logs in as it.
func (c *Chainguard) Mint(ctx context.Context, req upstream.MintRequest) (upstream.Minted, error) {
	role, err := c.pullRoleID(ctx)
	if err != nil {
		return upstream.Minted{}, err
	}
	key, err := newPullKey()
	if err != nil {
		return upstream.Minted{}, err
	}
	now := c.opts.Clock()().UTC().Truncate(time.Second)
	exp := now.Add(time.Duration(c.src.TokenLifetimeHours) * time.Hour)
	var ident identityJSON
	err = c.call(ctx, "create pull token identity "+req.Label, httpapi.Request{Method: http.MethodPost, URL: c.identityURL(c.src.Group), JSON: map[string]any{
		"name":        req.Label,
		"description": kit.Truncate("ptc-credentials pull token for "+req.SecretName+" version "+req.VersionID, 250),
		"static": map[string]any{
			"issuer": PullTokenIssuer, "subject": req.Label, "issuerKeys": key.jwks(), "expiration": exp.Format(time.RFC3339),
		},
	}}, &ident)
	if err != nil {
		return upstream.Minted{}, err
	}
	if !strings.HasPrefix(ident.ID, c.src.Group+"/") {
		return upstream.Minted{}, fmt.Errorf("Chainguard IAM: create pull token identity %s: the answer named an identity outside group %s", req.Label, c.src.Group)
	}
	err = c.call(ctx, "bind pull token identity "+req.Label+" to "+PullRole, httpapi.Request{Method: http.MethodPost, URL: c.api + "/iam/v1/rolebindings/" + c.src.Group,
		JSON: map[string]any{"identity": ident.ID, "role": role}}, nil)
	if err != nil {
		if rerr := c.Revoke(ctx, ident.describe()); rerr != nil {
			c.opts.Log().WarnContext(ctx, "could not delete the unbound pull token identity; the next attempt revokes it by its label", "label", req.Label, "error", rerr.Error())
		}
		return upstream.Minted{}, err
	}
	jwt, err := key.sign(map[string]any{"iss": PullTokenIssuer, "sub": req.Label, "aud": IssuerAudience, "iat": now.Unix(), "exp": exp.Unix()})
	if err != nil {
		return upstream.Minted{}, err
	}
	c.opts.Log().InfoContext(ctx, "created Chainguard pull token", "identity", ident.ID, "label", req.Label, "expires_at", exp.Format(time.RFC3339))
	return upstream.Minted{
		Credential: upstream.Credential{Username: ident.ID, AccessToken: jwt},
		Token:      upstream.Token{ID: ident.ID, Label: req.Label, ExpiresAt: exp},
	}, nil
}

// Tokens implements upstream.Upstream: the group's identities whose name starts with
// labelPrefix.
func (c *Chainguard) Tokens(ctx context.Context, labelPrefix string) ([]upstream.Token, error) {
	var out struct {
		Items []identityJSON `json:"items"`
	}
	if err := c.call(ctx, "list identities", httpapi.Request{Method: http.MethodGet, URL: c.api + "/iam/v1/identities?uidp.children_of=" + url.QueryEscape(c.src.Group)}, &out); err != nil {
		return nil, err
	}
	var toks []upstream.Token
	for _, i := range out.Items {
		if i.Static != nil && strings.HasPrefix(i.Name, labelPrefix) && strings.HasPrefix(i.ID, c.src.Group+"/") {
			toks = append(toks, i.describe())
		}
	}
	return toks, nil
}

// Revoke implements upstream.Upstream: delete the identity; one already gone is not an error.
func (c *Chainguard) Revoke(ctx context.Context, t upstream.Token) error {
	if !strings.HasPrefix(t.ID, c.src.Group+"/") || !uidpRE.MatchString(t.ID) {
		return fmt.Errorf("chainguard: refusing to delete identity %q: not an identity of group %s", kit.Truncate(t.ID, 80), c.src.Group)
	}
	err := c.call(ctx, "delete pull token identity "+t.Label, httpapi.Request{Method: http.MethodDelete, URL: c.identityURL(t.ID)}, nil)
	if httpapi.IsStatus(err, http.StatusNotFound) {
		return nil
	}
	return err
}

// Verify implements upstream.Upstream: the OCI token handshake at cgr.dev with the pull token,
// and its JWT's expiry.
func (c *Chainguard) Verify(ctx context.Context, cred upstream.Credential) (upstream.Verification, error) {
	err := registryauth.Check(ctx, c.client, registryauth.Target{Registry: c.registry, Repository: c.src.CheckRepository},
		registryauth.Credential{Username: cred.Username, Password: cred.AccessToken})
	if err != nil {
		return upstream.Verification{}, err
	}
	return upstream.Verification{ExpiresAt: expiryOf(cred.AccessToken)}, nil
}
