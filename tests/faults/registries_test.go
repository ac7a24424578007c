package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/registryauth"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/acremu"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/dockerhubemu"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/ghcremu"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/gitlabemu"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/rotationtest"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/acr"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/dockerhub"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/ghcr"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/gitlab"
)

// Identities the emulators know. Distinctive, so a leak into a log or an error is unmistakable.
const (
	hubUser         = "ptc-fault-user"
	hubPassword     = "PLANTED-fault-hub-password-4e1d"
	glOwner         = "olivia"
	glOwnerToken    = "glpat-PLANTED-fault-owner-8a2f"
	glGroup         = "acme"
	glRepo          = "acme/platform/app"
	acrTenant       = "0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5"
	acrClient       = "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9"
	acrClientSecret = "PLANTED-fault-acr-client-secret~7w"
	acrSub          = "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"
	acrRG           = "ptc-rg"
	acrRegistry     = "ptcreg"
	acrToken        = "ptc-pull"
	ghUser          = "Octo-Cat"
)

// Registries are the four upstreams the rotation scenario covers.
var Registries = []string{ptcsecret.UpstreamDockerHub, ptcsecret.UpstreamACR, ptcsecret.UpstreamGHCR, ptcsecret.UpstreamGitLab}

// shortName is the service name calls to a registry's emulator are labelled with.
var shortName = map[string]string{
	ptcsecret.UpstreamDockerHub: "hub", ptcsecret.UpstreamACR: "acr",
	ptcsecret.UpstreamGHCR: "ghcr", ptcsecret.UpstreamGitLab: "gitlab",
}

// regFixture is one managed secret of one upstream, set up as rotationtest does it, with its
// own emulator (so cases can run in parallel).
type regFixture struct {
	t    testing.TB
	name string
	url  string
	repo string // repository the login checks ask a pull scope for
	h    *rotationtest.Harness

	hub *dockerhubemu.Server
	gl  *gitlabemu.Server
	az  *acremu.Server
	gh  *ghcremu.Server
	// pats are the GHCR tokens a person created, in order.
	pats []ghcremu.Token
}

func newRegFixture(t testing.TB, inj *Injector, sm smServer, name string) *regFixture {
	t.Helper()
	f := &regFixture{t: t, name: name}
	var src map[string]any
	var prov upstream.Provider
	var srv *httptest.Server
	switch name {
	case ptcsecret.UpstreamDockerHub:
		f.hub = dockerhubemu.New(dockerhubemu.Options{}, dockerhubemu.Account{Username: hubUser, Password: hubPassword})
		srv = httptest.NewServer(f.hub)
		src = map[string]any{"username": hubUser, "password": hubPassword, "apiUrl": srv.URL}
		prov, f.repo = dockerhub.Provider, dockerhub.DefaultCheckRepository
	case ptcsecret.UpstreamACR:
		f.az = acremu.New(acremu.Options{
			TenantID: acrTenant, ClientID: acrClient, ClientSecret: acrClientSecret,
			SubscriptionID: acrSub, ResourceGroup: acrRG, Registry: acrRegistry,
		}, acrToken)
		srv = httptest.NewServer(f.az)
		src = map[string]any{
			"tenantId": acrTenant, "clientId": acrClient, "clientSecret": acrClientSecret,
			"tokenId": f.az.TokenID(acrToken), "authorityUrl": srv.URL, "managementUrl": srv.URL,
		}
		prov, f.repo = acr.Provider, "hello-world"
	case ptcsecret.UpstreamGHCR:
		f.gh = ghcremu.New(ghcremu.Options{})
		srv = httptest.NewServer(f.gh)
		f.url = srv.URL
		first := f.newPAT()
		src = map[string]any{"username": ghUser, "token": first.Value, "apiUrl": srv.URL}
		prov, f.repo = ghcr.Provider, strings.ToLower(ghUser)+"/"+ghcr.DefaultCheckImage
	case ptcsecret.UpstreamGitLab:
		f.gl = gitlabemu.New(gitlabemu.Options{})
		f.gl.AddUser(gitlabemu.User{Username: glOwner, Token: glOwnerToken})
		f.gl.AddGroup(gitlabemu.Group{ID: 11, Path: glGroup, Premium: true, Members: map[string]int{glOwner: gitlabemu.Owner}})
		f.gl.AddProject(gitlabemu.Project{ID: 31, Path: glRepo})
		srv = httptest.NewServer(f.gl)
		src = map[string]any{"token": glOwnerToken, "groupId": glGroup, "checkRepository": glRepo, "apiUrl": srv.URL}
		prov, f.repo = gitlab.Provider, glRepo
	default:
		t.Fatalf("unknown registry %q", name)
	}
	t.Cleanup(srv.Close)
	f.url = srv.URL
	inj.Name(srv.URL, shortName[name])
	f.h = rotationtest.New(t, sm, rotationtest.Config{Provider: withInstantSleep(prov), SourceJSON: mustJSON(src), RegistryURL: srv.URL})
	return f
}

// newPAT is a person creating a classic PAT with read:packages in GitHub's settings.
func (f *regFixture) newPAT() ghcremu.Token {
	tok := ghcremu.Token{
		Value: "ghp_PLANTED" + strings.ReplaceAll(rotationtest.NewID(), "-", "")[:29], User: ghUser,
		Scopes: []string{"read:packages"}, ExpiresAt: time.Now().Add(60 * 24 * time.Hour).UTC().Truncate(time.Second),
	}
	f.gh.AddToken(tok)
	f.pats = append(f.pats, tok)
	return tok
}

// stage is what a GHCR owner does before a rotation: put a new PAT into the source secret.
// Other upstreams mint their own tokens and need nothing.
func (f *regFixture) stage() {
	f.t.Helper()
	if f.gh == nil {
		return
	}
	tok := f.newPAT()
	doc := mustJSON(map[string]any{"username": ghUser, "token": tok.Value, "apiUrl": f.url})
	if err := putSource(f.h, doc); err != nil {
		f.t.Fatal(err)
	}
	f.h.Cfg.SourceJSON = doc
}

// loginErr checks a credential with the OCI handshake directly against the emulator, with a
// fault-free client.
func (f *regFixture) loginErr(v ptcsecret.Value) error {
	return registryauth.Check(context.Background(), nil, registryauth.Target{Registry: f.url, Repository: f.repo},
		registryauth.Credential{Username: v.Username, Password: v.AccessToken})
}

// upstreamVersions returns the secret versions that live upstream tokens are labelled for; a
// token with this secret's label prefix that names no version fails the test.
func (f *regFixture) upstreamVersions() []string {
	var out []string
	add := func(label string) {
		if !strings.HasPrefix(label, ptcsecret.LabelPrefix(f.h.Key)) {
			return
		}
		v, ok := ptcsecret.VersionFromLabel(f.h.Key, label)
		if !ok {
			f.t.Errorf("upstream token label %q is this secret's but names no version", label)
			return
		}
		out = append(out, v)
	}
	switch {
	case f.hub != nil:
		for _, t := range f.hub.Tokens() {
			add(t.Label)
		}
	case f.gl != nil:
		for _, t := range f.gl.Tokens() {
			if !t.Revoked {
				add(t.Name)
			}
		}
	}
	slices.Sort(out)
	return out
}

// acrPasswords returns the values of the ACR token's set password slots.
func (f *regFixture) acrPasswords() []string {
	var out []string
	for _, p := range f.az.Passwords(acrToken) {
		if p.Value != "" {
			out = append(out, p.Value)
		}
	}
	return out
}

// planted are every secret value the case handled, for leak scans.
func (f *regFixture) planted() []string {
	out := []string{hubPassword, glOwnerToken, acrClientSecret}
	switch {
	case f.hub != nil:
		for _, t := range f.hub.Tokens() {
			out = append(out, t.Secret)
		}
	case f.gl != nil:
		for _, t := range f.gl.Tokens() {
			out = append(out, t.Secret)
		}
	case f.az != nil:
		out = append(out, f.az.Issued()...)
	case f.gh != nil:
		for _, t := range f.pats {
			out = append(out, t.Value)
		}
		out = append(out, f.gh.RegistryTokens()...)
	}
	return out
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprint(err))
	}
	return string(b)
}
