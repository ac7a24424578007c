// Package dockerhub mints Docker Hub access tokens for the docker-hub pull-through cache rule.
//
// It starts a Hub API session with the account password (POST /v2/auth/token; with two-factor
// authentication the older /v2/users/login + /v2/users/2fa-login and an RFC 6238 code), then
// creates personal access tokens — or organization access tokens when the
// source secret names an organization — labelled with the secret version they belong to, so they
// can be found and revoked later without extra state. Docker Hub refuses to let a session that
// was itself started from a personal access token manage tokens, and organizations that enforce
// SSO refuse passwords: such accounts need staged mode, and the errors say so (session.go).
// testSecret also reads the credential's pull budget (pulls.go).
package dockerhub

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/pinned"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/totp"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/httpapi"
)

// Defaults for the source secret's optional fields.
const (
	DefaultAPIURL          = "https://hub.docker.com"
	DefaultRegistry        = "registry-1.docker.io"
	DefaultScope           = "repo:public_read"
	DefaultLifetimeDays    = 90
	DefaultCheckRepository = "library/alpine"
	DefaultOrgResourcePath = "*/*/public"
	maxLabelLen            = 100
	pageSize               = 100
	// MaxLifetimeDays is the longest tokenLifetimeDays accepted: Docker Hub's UI caps a custom
	// token expiry at one year, and 365 days is within a year whatever the date.
	MaxLifetimeDays = 365
)

// The hosts Docker Hub's credentials may go to (internal/pinned): the password and the Hub
// session only to the Hub API, the minted token only to the registry and its token realm (the
// realm the /v2/ challenge of registry-1.docker.io names).
var (
	// RegistryHosts is the registry ECR pulls from (UpstreamRegistryUrl).
	RegistryHosts = pinned.Hosts{Upstream: ptcsecret.UpstreamDockerHub, Exact: []string{"registry-1.docker.io"}}
	// RealmHosts is the registry's token service.
	RealmHosts = pinned.Hosts{Upstream: ptcsecret.UpstreamDockerHub, Exact: []string{"auth.docker.io"}}
	// APIHosts is the Hub API (login, access tokens): the source's "apiUrl".
	APIHosts = pinned.Hosts{Upstream: ptcsecret.UpstreamDockerHub, Exact: []string{"hub.docker.com"}}
)

// validScopes are the personal access token scopes Docker Hub documents.
var validScopes = map[string]bool{"repo:public_read": true, "repo:read": true, "repo:write": true, "repo:admin": true}

// Source is the source secret's JSON for docker-hub.
type Source struct {
	// Username is the Docker Hub account that owns the tokens.
	Username string `json:"username"`
	// Password is the account password; a personal access token cannot mint tokens.
	Password string `json:"password"`
	// TOTPSecret is the base32 two-factor secret, needed when the account has 2FA.
	TOTPSecret string `json:"totpSecret,omitempty"`
	// Organization, when set, mints organization access tokens; the registry username is then
	// the organization name.
	Organization string `json:"organization,omitempty"`
	// Scope is the personal access token scope (default repo:public_read).
	Scope string `json:"scope,omitempty"`
	// OrgResourcePath is the repository path organization tokens may pull (default */*/public).
	OrgResourcePath string `json:"orgResourcePath,omitempty"`
	// TokenLifetimeDays sets expires_at; 0 means the default (90), -1 means no expiry.
	TokenLifetimeDays int `json:"tokenLifetimeDays,omitempty"`
	// APIURL is https://hub.docker.com, the default and the only host allowed (APIHosts); it
	// exists for the test kit's emulators (pinned stand-ins).
	APIURL string `json:"apiUrl,omitempty"`
	// CheckRepository is the repository the login check asks a pull scope for.
	CheckRepository string `json:"checkRepository,omitempty"`
}

// ParseSource reads and checks the source secret. Errors name the field, never its value.
func ParseSource(raw []byte) (Source, error) {
	var s Source
	if err := upstream.DecodeSource(raw, ptcsecret.UpstreamDockerHub, &s); err != nil {
		return Source{}, err
	}
	switch {
	case strings.TrimSpace(s.Username) == "":
		return Source{}, errors.New(`docker-hub source secret: field "username" is required (the Docker Hub account name)`)
	case s.Password == "":
		return Source{}, errors.New(`docker-hub source secret: field "password" is required (the account password; a personal access token cannot mint tokens)`)
	case strings.HasPrefix(s.Password, "dckr_pat_"):
		return Source{}, fmt.Errorf(`docker-hub source secret: field "password" holds a personal access token (dckr_pat_…); Docker Hub lets only a password session create tokens: store the account password, or use staged mode if the account's organization enforces SSO (see %s)`, ModesDoc)
	case strings.HasPrefix(s.Password, "dckr_oat_"):
		return Source{}, fmt.Errorf(`docker-hub source secret: field "password" holds an organization access token (dckr_oat_…), which cannot create tokens: store the password of an owner of the organization, or use staged mode (see %s)`, ModesDoc)
	}
	if s.TOTPSecret != "" {
		if _, err := totp.DecodeSecret(s.TOTPSecret); err != nil {
			return Source{}, fmt.Errorf("docker-hub source secret: field \"totpSecret\": %v", err)
		}
	}
	if s.Scope == "" {
		s.Scope = DefaultScope
	}
	if !validScopes[s.Scope] {
		return Source{}, errors.New(`docker-hub source secret: field "scope" is not a Docker Hub token scope; use one of repo:public_read, repo:read, repo:write, repo:admin`)
	}
	if s.OrgResourcePath == "" {
		s.OrgResourcePath = DefaultOrgResourcePath
	}
	switch {
	case s.TokenLifetimeDays == 0:
		s.TokenLifetimeDays = DefaultLifetimeDays
	case s.TokenLifetimeDays < -1 || s.TokenLifetimeDays > MaxLifetimeDays:
		kind := "personal"
		if s.Organization != "" {
			kind = "organization"
		}
		return Source{}, fmt.Errorf("docker-hub source secret: field \"tokenLifetimeDays\" is %d; Docker Hub caps a %s access token's expiry at one year: use 1..%d days, or -1 for tokens that never expire", s.TokenLifetimeDays, kind, MaxLifetimeDays)
	}
	if s.APIURL == "" {
		s.APIURL = DefaultAPIURL
	}
	if _, err := httpapi.BaseURL(`docker-hub source secret: field "apiUrl"`, s.APIURL); err != nil {
		return Source{}, err
	}
	if s.CheckRepository == "" {
		s.CheckRepository = DefaultCheckRepository
	}
	return s, nil
}

// DockerHub is the docker-hub upstream.
type DockerHub struct {
	src      Source
	api      string
	registry string
	api2     *httpapi.Caller
	opts     upstream.Options
	session  string // Hub API JWT, reused within the process
}

var _ upstream.Upstream = (*DockerHub)(nil)

// New builds the upstream from the source secret's JSON.
func New(source []byte, opts upstream.Options) (*DockerHub, error) {
	src, err := ParseSource(source)
	if err != nil {
		return nil, err
	}
	api, err := opts.CheckURL(`docker-hub source secret: field "apiUrl"`, src.APIURL, APIHosts)
	if err != nil {
		return nil, err
	}
	reg, err := opts.LoginRegistry(RegistryHosts, DefaultRegistry, "")
	if err != nil {
		return nil, err
	}
	return &DockerHub{
		src:      src,
		api:      api,
		registry: reg,
		opts:     opts,
		api2:     &httpapi.Caller{Service: "Docker Hub", Client: opts.Client(APIHosts), Now: opts.Clock(), Sleep: opts.Sleep},
	}, nil
}

// Registry implements upstream.Upstream.
func (d *DockerHub) Registry() string { return ptcsecret.UpstreamDockerHub }

// Provider describes docker-hub to the rotation engine and the provisioner.
var Provider = upstream.Provider{
	Registry:           ptcsecret.UpstreamDockerHub,
	New:                func(source []byte, opts upstream.Options) (upstream.Upstream, error) { return New(source, opts) },
	FixedUsername:      true, // every token logs in as the account (or the organization)
	DefaultRegistryURL: DefaultRegistry,
	RegistryHosts:      RegistryHosts,
}

// Username is the registry login name of the tokens this upstream mints.
func (d *DockerHub) Username() string {
	if d.src.Organization != "" {
		return d.src.Organization
	}
	return d.src.Username
}

// Retries reports how many API calls were retried (429 or transient), for logs and benchmarks.
func (d *DockerHub) Retries() int { return d.api2.Retries }

// authed makes a call with the Hub session, logging in first when there is none. A 401 means
// the session expired (a warm Lambda keeps it across invocations): httpapi.DoWithSession logs
// in again and repeats the call once.
func (d *DockerHub) authed(ctx context.Context, op string, req httpapi.Request, out any) (httpapi.Response, error) {
	resp, err := d.api2.DoWithSession(ctx, httpapi.Session{
		Token: d.login,
		Drop:  func() { d.session = "" },
		Refreshing: func() {
			d.opts.Log().InfoContext(ctx, "Docker Hub session expired; logging in again", "op", op)
		},
	}, op, req, out)
	return resp, patSessionError(err)
}

func (d *DockerHub) tokensPath() string {
	if d.src.Organization != "" {
		return d.api + "/v2/orgs/" + url.PathEscape(d.src.Organization) + "/access-tokens"
	}
	return d.api + "/v2/access-tokens"
}

type tokenJSON struct {
	UUID       string `json:"uuid"`
	ID         string `json:"id"`
	TokenLabel string `json:"token_label"`
	Label      string `json:"label"`
	Token      string `json:"token"`
	IsActive   *bool  `json:"is_active"`
	ExpiresAt  string `json:"expires_at"`
}

func (t tokenJSON) describe() upstream.Token {
	out := upstream.Token{ID: t.UUID, Label: t.TokenLabel}
	if out.ID == "" {
		out.ID = t.ID
	}
	if out.Label == "" {
		out.Label = t.Label
	}
	if ts, err := time.Parse(time.RFC3339, t.ExpiresAt); err == nil {
		out.ExpiresAt = ts
	}
	return out
}

// Mint implements upstream.Upstream.
func (d *DockerHub) Mint(ctx context.Context, req upstream.MintRequest) (upstream.Minted, error) {
	if len(req.Label) > maxLabelLen || req.Label == "" {
		return upstream.Minted{}, fmt.Errorf("docker-hub: token label must be 1..%d characters, got %d", maxLabelLen, len(req.Label))
	}
	held := -1 // organization tokens still counting towards the cap; -1 when not listed
	if d.src.Organization != "" {
		n, err := d.pruneExpired(ctx, req)
		if err != nil {
			return upstream.Minted{}, err
		}
		held = n
	}
	body := map[string]any{}
	var expires time.Time
	if d.src.TokenLifetimeDays > 0 {
		expires = d.opts.Clock()().UTC().Add(time.Duration(d.src.TokenLifetimeDays) * 24 * time.Hour).Truncate(time.Second)
		body["expires_at"] = expires.Format(time.RFC3339)
	}
	if d.src.Organization != "" {
		body["label"] = req.Label
		body["description"] = "ECR pull-through cache credential for " + req.SecretName + ", managed by ptc-credentials"
		body["resources"] = []map[string]any{{"type": "TYPE_REPO", "path": d.src.OrgResourcePath, "scopes": []string{"scope-image-pull"}}}
	} else {
		body["token_label"] = req.Label
		body["scopes"] = []string{d.src.Scope}
	}
	var out tokenJSON
	if _, err := d.authed(ctx, "create access token", httpapi.Request{Method: http.MethodPost, URL: d.tokensPath(), JSON: body}, &out); err != nil {
		// A 429 is rate limiting, which httpapi already waited out; only a refusal that names a
		// limit on an organization is the token cap.
		if d.src.Organization != "" && httpapi.IsStatus(err, http.StatusBadRequest, http.StatusForbidden) && isCapRefusal(err) {
			count := ""
			if held >= 0 {
				count = fmt.Sprintf(" %s holds %d organization access tokens;", d.src.Organization, held)
			}
			return upstream.Minted{}, fmt.Errorf("%w: the organization access token cap is reached:%s Docker Hub allows 10 (Team) or 100 (Business), and expired and inactive tokens count until deleted (this secret's expired ones already were): delete unused tokens of %s in the Admin Console", err, count, d.src.Organization)
		}
		return upstream.Minted{}, err
	}
	if out.Token == "" {
		//lint:ignore ST1005 Docker Hub is a proper noun
		return upstream.Minted{}, errors.New("Docker Hub: create access token: the answer carried no token")
	}
	tok := out.describe()
	if tok.Label == "" {
		tok.Label = req.Label
	}
	if tok.ExpiresAt.IsZero() {
		tok.ExpiresAt = expires
	}
	return upstream.Minted{
		Credential: upstream.Credential{Username: d.Username(), AccessToken: out.Token},
		Token:      tok,
	}, nil
}

// isCapRefusal reports whether a refused create names a limit or quota (the organization token
// cap), as opposed to, say, a bad field.
func isCapRefusal(err error) bool {
	var se *httpapi.StatusError
	if !errors.As(err, &se) {
		return false
	}
	m := strings.ToLower(se.Message)
	return strings.Contains(m, "limit") || strings.Contains(m, "quota") || strings.Contains(m, "maximum")
}

// pruneExpired deletes this secret's expired organization tokens before a mint: Docker Hub
// counts them towards the organization's cap until they are deleted, and an expired token logs
// in nowhere, so no version's credential is lost. It returns how many tokens the organization
// still holds.
func (d *DockerHub) pruneExpired(ctx context.Context, req upstream.MintRequest) (int, error) {
	prefix, ok := strings.CutSuffix(req.Label, req.VersionID)
	if !ok || req.VersionID == "" || !strings.HasPrefix(prefix, "ptc-") {
		prefix = "" // not a label of ours: delete nothing
	}
	all, err := d.Tokens(ctx, "")
	if err != nil {
		return 0, err
	}
	now := d.opts.Clock()()
	held := len(all)
	for _, t := range all {
		if prefix == "" || !strings.HasPrefix(t.Label, prefix) || t.ExpiresAt.IsZero() || now.Before(t.ExpiresAt) {
			continue
		}
		if err := d.Revoke(ctx, t); err != nil {
			return 0, fmt.Errorf("deleting expired token %s before minting (expired tokens count towards the organization's cap): %w", t.Label, err)
		}
		held--
		d.opts.Log().InfoContext(ctx, "deleted an expired organization access token of this secret before minting", "token_label", t.Label, "token_id", t.ID, "expired_at", t.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return held, nil
}

// Tokens implements upstream.Upstream, following pages until the list ends.
func (d *DockerHub) Tokens(ctx context.Context, labelPrefix string) ([]upstream.Token, error) {
	var found []upstream.Token
	for page := 1; page <= 100; page++ {
		var out struct {
			Next    *string     `json:"next"`
			Results []tokenJSON `json:"results"`
		}
		u := d.tokensPath() + "?page=" + strconv.Itoa(page) + "&page_size=" + strconv.Itoa(pageSize)
		if _, err := d.authed(ctx, "list access tokens", httpapi.Request{Method: http.MethodGet, URL: u}, &out); err != nil {
			return nil, err
		}
		for _, t := range out.Results {
			tok := t.describe()
			if strings.HasPrefix(tok.Label, labelPrefix) {
				found = append(found, tok)
			}
		}
		if out.Next == nil || *out.Next == "" || len(out.Results) == 0 {
			return found, nil
		}
	}
	return found, nil
}

// Revoke implements upstream.Upstream. Deleting (not just deactivating) frees the organization
// token cap, which counts deactivated and expired tokens too.
func (d *DockerHub) Revoke(ctx context.Context, t upstream.Token) error {
	if t.ID == "" {
		return errors.New("docker-hub: revoke: token has no id")
	}
	_, err := d.authed(ctx, "delete access token "+t.Label, httpapi.Request{Method: http.MethodDelete, URL: d.tokensPath() + "/" + url.PathEscape(t.ID)}, nil)
	if httpapi.IsStatus(err, http.StatusNotFound) {
		return nil
	}
	return err
}

// Verify implements upstream.Upstream: one handshake at the registry — GET /v2/, one token
// request for checkRepository and the pull probe, a manifest HEAD — that proves the credential
// and reads its pull budget (pulls.go), which never fails the check.
func (d *DockerHub) Verify(ctx context.Context, cred upstream.Credential) (upstream.Verification, error) {
	return verifyWithBudget(ctx, d.opts, d.registry, d.src.CheckRepository, cred)
}
