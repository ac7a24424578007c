package localcloud

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/registryauth"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/acremu"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/dockerhubemu"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/ghcremu"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/gitlabemu"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/ghcr"
)

// The accounts a person would have set up in each registry before deploying. Names only: every
// password and token is random per Start, so a leak scan knows exactly what to look for.
const (
	HubUser = "ptc-demo"

	ACRTenantID       = "0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5"
	ACRClientID       = "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9"
	ACRSubscriptionID = "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"
	ACRResourceGroup  = "ptc-demo-rg"
	ACRRegistry       = "ptcdemo"
	ACRToken          = "ptc-pull"
	ACRCheckRepo      = "hello-world"

	GHCRUser = "Octo-Demo"

	GitLabOwner   = "olivia"
	GitLabGroup   = "acme"
	GitLabProject = "acme/app"
)

// ghcrCheckRepo is the image the GHCR login check asks for: the upstream's default, in the
// user's own (lower-cased) namespace.
const ghcrCheckRepo = "octo-demo/" + ghcr.DefaultCheckImage

// Registry is one emulated upstream registry as a rule uses it.
type Registry struct {
	// Name is ECR's UpstreamRegistry value, e.g. "docker-hub".
	Name string
	// Title is how people call it, e.g. "Docker Hub".
	Title string
	// Prefix is the ECR repository prefix the demo gives its rule.
	Prefix string
	// URL is the emulator: the rule's UpstreamRegistryUrl and the source secret's API URL.
	URL string
	// CheckRepository is a repository the managed credential may pull, for login checks.
	CheckRepository string
	// Source is the first source secret JSON, with the minting credential. Secret: never print.
	Source string
	// Labelled reports whether the registry's tokens carry ptc- labels (and so are listed and
	// revoked by label): Docker Hub and GitLab. ACR regenerates one of two password slots;
	// GHCR mints nothing.
	Labelled bool
}

// Registries returns the four emulated registries in demo order.
func (c *Cloud) Registries() []Registry { return append([]Registry(nil), c.registries...) }

// Registry returns the emulated registry with ECR UpstreamRegistry value name.
func (c *Cloud) Registry(name string) (Registry, bool) {
	for _, r := range c.registries {
		if r.Name == name {
			return r, true
		}
	}
	return Registry{}, false
}

// randomSecret returns prefix plus n random hex digits.
func randomSecret(prefix string, n int) string {
	b := make([]byte, (n+1)/2)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)[:n]
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // maps of strings always encode
	}
	return string(b)
}

// newEmulators creates the four registry emulators with their accounts; their URLs are filled
// in by Start once they listen.
func (c *Cloud) newEmulators(opts Options) {
	c.hubPassword = randomSecret("hub-pw-", 24)
	c.Hub = dockerhubemu.New(dockerhubemu.Options{}, dockerhubemu.Account{Username: HubUser, Password: c.hubPassword})

	c.acrClientSecret = randomSecret("acr-sp~", 32)
	c.ACR = acremu.New(acremu.Options{
		TenantID: ACRTenantID, ClientID: ACRClientID, ClientSecret: c.acrClientSecret,
		SubscriptionID: ACRSubscriptionID, ResourceGroup: ACRResourceGroup, Registry: ACRRegistry,
		ReplicationDelay: opts.ACRReplicationDelay,
	}, ACRToken)

	c.GHCR = ghcremu.New(ghcremu.Options{})

	c.gitlabOwnerToken = randomSecret("glpat-", 20)
	c.GitLab = gitlabemu.New(gitlabemu.Options{})
	c.GitLab.AddUser(gitlabemu.User{Username: GitLabOwner, Token: c.gitlabOwnerToken})
	c.GitLab.AddGroup(gitlabemu.Group{ID: 11, Path: GitLabGroup, Premium: true, Members: map[string]int{GitLabOwner: gitlabemu.Owner}})
	c.GitLab.AddProject(gitlabemu.Project{ID: 31, Path: GitLabProject})
}

// describeRegistries fills c.registries once the emulators listen.
func (c *Cloud) describeRegistries() {
	first := c.NewGHCRPAT()
	c.registries = []Registry{
		{Name: ptcsecret.UpstreamDockerHub, Title: "Docker Hub", Prefix: "docker-hub", URL: c.HubURL,
			CheckRepository: "library/alpine", Labelled: true,
			Source: mustJSON(map[string]string{"username": HubUser, "password": c.hubPassword, "apiUrl": c.HubURL})},
		{Name: ptcsecret.UpstreamACR, Title: "Azure Container Registry", Prefix: "acr", URL: c.ACRURL,
			CheckRepository: ACRCheckRepo,
			Source: mustJSON(map[string]string{"tenantId": ACRTenantID, "clientId": ACRClientID, "clientSecret": c.acrClientSecret,
				"tokenId": c.ACR.TokenID(ACRToken), "authorityUrl": c.ACRURL, "managementUrl": c.ACRURL})},
		{Name: ptcsecret.UpstreamGHCR, Title: "GitHub Container Registry", Prefix: "ghcr", URL: c.GHCRURL,
			CheckRepository: ghcrCheckRepo, Source: c.GHCRSource(first)},
		{Name: ptcsecret.UpstreamGitLab, Title: "GitLab", Prefix: "gitlab", URL: c.GitLabURL,
			CheckRepository: GitLabProject, Labelled: true,
			Source: mustJSON(map[string]string{"token": c.gitlabOwnerToken, "apiUrl": c.GitLabURL, "groupId": GitLabGroup, "checkRepository": GitLabProject})},
	}
}

// NewGHCRPAT does what a person does before a GHCR rotation: create a classic personal access
// token with read:packages (90 days) in GitHub's settings. It returns the token value (secret).
func (c *Cloud) NewGHCRPAT() string {
	pat := "ghp_" + randomSecret("", 36)
	c.GHCR.AddToken(ghcremu.Token{Value: pat, User: GHCRUser, Scopes: []string{"read:packages"},
		ExpiresAt: time.Now().Add(90 * 24 * time.Hour).UTC().Truncate(time.Second)})
	c.noteSecret(pat)
	return pat
}

// GHCRSource is the GHCR source secret JSON holding pat.
func (c *Cloud) GHCRSource(pat string) string {
	return mustJSON(map[string]string{"username": GHCRUser, "token": pat, "apiUrl": c.GHCRURL})
}

// checkRepoFor maps a rule's UpstreamRegistry to the repository ECR's login check asks for.
func (c *Cloud) checkRepoFor(upstreamRegistry string) string {
	if r, ok := c.Registry(upstreamRegistry); ok {
		return r.CheckRepository
	}
	return "library/alpine"
}

// Login runs the registry's OCI token handshake with cred against registry r, as ECR does when
// it pulls. nil: the registry accepted it; errors.Is(err, registryauth.ErrBadCredentials): it
// refused it.
func (c *Cloud) Login(ctx context.Context, r Registry, cred ptcsecret.Value) error {
	if err := registryauth.Check(ctx, nil, registryauth.Target{Registry: r.URL, Repository: r.CheckRepository},
		registryauth.Credential{Username: cred.Username, Password: cred.AccessToken}); err != nil {
		return fmt.Errorf("logging in to %s: %w", r.Title, err)
	}
	return nil
}
