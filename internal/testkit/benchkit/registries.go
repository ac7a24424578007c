package benchkit

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/acremu"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/dockerhubemu"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/ghcremu"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/gitlabemu"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/acr"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/dockerhub"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/ghcr"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/gitlab"
)

// Registries are the four upstreams, in the order the benchmarks report them.
var Registries = []string{ptcsecret.UpstreamDockerHub, ptcsecret.UpstreamACR, ptcsecret.UpstreamGHCR, ptcsecret.UpstreamGitLab}

// Identities the emulators know. The values are distinctive but not secret: nothing here
// reaches a real registry.
const (
	hubUser         = "ptc-bench"
	hubPassword     = "bench-hub-password-5b1e"
	glOwner         = "olivia"
	glOwnerToken    = "glpat-bench-owner-0c4d"
	glGroup         = "acme"
	glRepo          = "acme/platform/app"
	acrTenant       = "0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5"
	acrClient       = "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9"
	acrClientSecret = "bench-acr-client-secret-77"
	acrSub          = "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"
	acrRG           = "ptc-rg"
	acrRegistry     = "ptcreg"
	ghUser          = "octo-cat"
)

// RegistryOptions shape the emulator's behaviour for the scale simulation.
type RegistryOptions struct {
	// RateLimit is token-API requests per second; zero means no limit.
	RateLimit int
	// FaultFraction of requests are answered 503; LostFraction of those after the emulator
	// served them. Seed seeds the draws.
	FaultFraction, LostFraction float64
	Seed                        uint64
}

// Registry is one upstream's emulator behind a Meter (and, when asked, a rate limit and fault
// injection), and how to make source secrets for it.
type Registry struct {
	// Name is the ptc:upstream value.
	Name string
	// Provider is the upstream's descriptor.
	Provider upstream.Provider
	// URL serves both the token API and the registry.
	URL string
	// Meter counts every request the upstream code made.
	Meter *Meter
	// SharedSource is true when every managed secret can use one source secret (one account
	// minting many tokens); false when each needs its own (an ACR token, a person's PAT).
	SharedSource bool

	// Hub, GitLab, ACR and GHCR are the emulator (one is set), for checks after a run.
	Hub    *dockerhubemu.Server
	GitLab *gitlabemu.Server
	ACR    *acremu.Server
	GHCR   *ghcremu.Server

	srv       *httptest.Server
	newSource func(i int) string
	off       atomic.Bool
}

// NewRegistry starts the emulator of registry name.
func NewRegistry(name string, o RegistryOptions) (*Registry, error) {
	r := &Registry{Name: name}
	var h http.Handler
	var classify Classifier
	switch name {
	case ptcsecret.UpstreamDockerHub:
		// The Docker Hub emulator has a rate limit of its own (Options.RateLimit) with the
		// same fixed-window rule as RateLimiter; RateLimiter is used for all four instead, so
		// setup can switch it off (Limits) and all four are limited identically.
		r.Hub = dockerhubemu.New(dockerhubemu.Options{}, dockerhubemu.Account{Username: hubUser, Password: hubPassword})
		h, classify, r.Provider, r.SharedSource = r.Hub, classifyHub, dockerhub.Provider, true
		r.newSource = func(int) string {
			return mustJSON(map[string]any{"username": hubUser, "password": hubPassword, "apiUrl": r.URL})
		}
	case ptcsecret.UpstreamGitLab:
		r.GitLab = gitlabemu.New(gitlabemu.Options{})
		r.GitLab.AddUser(gitlabemu.User{Username: glOwner, Token: glOwnerToken})
		r.GitLab.AddGroup(gitlabemu.Group{ID: 11, Path: glGroup, Premium: true, Members: map[string]int{glOwner: gitlabemu.Owner}})
		r.GitLab.AddProject(gitlabemu.Project{ID: 31, Path: glRepo})
		h, classify, r.Provider, r.SharedSource = r.GitLab, classifyGitLab, gitlab.Provider, true
		r.newSource = func(int) string {
			return mustJSON(map[string]any{"token": glOwnerToken, "groupId": glGroup, "checkRepository": glRepo, "apiUrl": r.URL})
		}
	case ptcsecret.UpstreamACR:
		r.ACR = acremu.New(acremu.Options{
			TenantID: acrTenant, ClientID: acrClient, ClientSecret: acrClientSecret,
			SubscriptionID: acrSub, ResourceGroup: acrRG, Registry: acrRegistry,
		})
		h, classify, r.Provider = r.ACR, classifyACR, acr.Provider
		// Each managed secret is one ACR token (two password slots), so one source each.
		r.newSource = func(i int) string {
			tok := fmt.Sprintf("ptc-pull-%d", i)
			r.ACR.AddToken(tok)
			return mustJSON(map[string]any{
				"tenantId": acrTenant, "clientId": acrClient, "clientSecret": acrClientSecret,
				"tokenId": r.ACR.TokenID(tok), "authorityUrl": r.URL, "managementUrl": r.URL,
			})
		}
	case ptcsecret.UpstreamGHCR:
		r.GHCR = ghcremu.New(ghcremu.Options{})
		h, classify, r.Provider = r.GHCR, classifyGHCR, ghcr.Provider
		// Each managed secret holds a person's classic PAT; nothing is minted, so every
		// rotation re-verifies the PAT the person staged (the case ghcr's tests call
		// TestStagedTokenAlreadyCurrentIsReverified): same calls as after staging a new one.
		r.newSource = func(i int) string {
			pat := fmt.Sprintf("ghp_bench%031d", i)
			r.GHCR.AddToken(ghcremu.Token{Value: pat, User: ghUser, Scopes: []string{"read:packages"}, ExpiresAt: time.Now().Add(90 * 24 * time.Hour).UTC().Truncate(time.Second)})
			return mustJSON(map[string]any{"username": ghUser, "token": pat, "apiUrl": r.URL})
		}
	default:
		return nil, fmt.Errorf("unknown registry %q", name)
	}
	if o.RateLimit > 0 {
		h = &RateLimiter{Next: h, Classify: classify, Requests: o.RateLimit, Window: time.Second, Off: &r.off}
	}
	if o.FaultFraction > 0 {
		h = &FaultInjector{Next: h, Fraction: o.FaultFraction, LostFraction: o.LostFraction, Seed: o.Seed, Off: &r.off}
	}
	r.Meter = &Meter{Next: h, Classify: classify}
	r.srv = httptest.NewServer(r.Meter)
	r.URL = r.srv.URL
	return r, nil
}

// Source returns the source secret JSON for managed secret number i.
func (r *Registry) Source(i int) string { return r.newSource(i) }

// Limits turns the rate limit and fault injection on or off (they start on); setup and checks
// run with them off so that only the rotations pay for them.
func (r *Registry) Limits(on bool) { r.off.Store(!on) }

// Close stops the emulator.
func (r *Registry) Close() { r.srv.Close() }

func classifyHub(r *http.Request) Class {
	p := r.URL.Path
	if strings.HasPrefix(p, "/v2/users/") || strings.HasPrefix(p, "/v2/access-tokens") || strings.HasPrefix(p, "/v2/orgs/") || p == "/v2/auth/token" {
		return ClassAPI
	}
	return ClassRegistry
}

func classifyGitLab(r *http.Request) Class {
	if strings.HasPrefix(r.URL.Path, "/api/v4/") {
		return ClassAPI
	}
	return ClassRegistry
}

func classifyACR(r *http.Request) Class {
	p := r.URL.Path
	if strings.HasPrefix(p, "/subscriptions/") || strings.HasSuffix(p, "/oauth2/v2.0/token") {
		return ClassAPI
	}
	return ClassRegistry
}

func classifyGHCR(r *http.Request) Class {
	if r.URL.Path == "/user" {
		return ClassAPI
	}
	return ClassRegistry
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
