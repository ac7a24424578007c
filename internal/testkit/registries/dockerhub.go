package registries

import (
	"net/http"
	"strings"

	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/dockerhubemu"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/dockerhub"
)

// HubUser is the Docker Hub account whose password mints the tokens.
const HubUser = "ptc-demo"

// HubPullLimit is HubUser's pull limit per 6 hours, a personal account's.
const HubPullLimit = 200

// DockerHub mints a personal access token per version, labelled for it, and deletes it when it
// is two generations old.
var DockerHub = &Descriptor{
	Name:     ptcsecret.UpstreamDockerHub,
	Title:    "Docker Hub",
	Short:    "hub",
	Prefix:   "docker-hub",
	Emulates: "Docker Hub",
	Provider: dockerhub.Provider,
	Can:      Capabilities{Mints: true, Labels: true, Revokes: true, SharedSource: true},

	SourceWhat: "username and password of Docker Hub user " + HubUser,
	RevokedHow: "deleted",

	NewServer: func(e *Emulator) http.Handler {
		e.SourceSecret = randomSecret("PLANTED-hub-pw-", 24)
		// A personal account: 200 pulls per 6 hours (Docker docs, "Docker Hub pull usage and
		// limits"), which testSecret reports as PullsRemaining.
		e.Hub = dockerhubemu.New(dockerhubemu.Options{Now: e.Options.Now, PullLimits: map[string]int{HubUser: HubPullLimit}},
			dockerhubemu.Account{Username: HubUser, Password: e.SourceSecret})
		e.Recorder = &e.Hub.Recorder
		e.CheckRepository = dockerhub.DefaultCheckRepository
		return e.Hub
	},
	SourceFor: func(e *Emulator, _ int) map[string]any {
		return map[string]any{"username": HubUser, "password": e.SourceSecret, "apiUrl": e.URL}
	},
	WrongSource: func(e *Emulator, wrong string) map[string]any {
		return map[string]any{"username": HubUser, "password": wrong, "apiUrl": e.URL}
	},
	Credentials: func(e *Emulator, key string) []Credential {
		var out []Credential
		for _, t := range e.Hub.Tokens() {
			if ofSecret(key, t.Label) {
				// Docker Hub deletes a revoked token: every stored one is held.
				out = append(out, Credential{Name: t.Label, Version: versionOf(key, t.Label), Username: t.Owner, Secret: t.Secret, Held: true})
			}
		}
		return out
	},
	Describe: describeLabelled,
	Planted:  func(e *Emulator) []string { return append([]string{e.SourceSecret}, e.Hub.Issued()...) },
	IsAPI: func(p string) bool {
		return strings.HasPrefix(p, "/v2/users/") || strings.HasPrefix(p, "/v2/access-tokens") || strings.HasPrefix(p, "/v2/orgs/") || p == "/v2/auth/token"
	},
}

// describeLabelled names the held token labelled for v: registries with labels.
func describeLabelled(e *Emulator, key string, v Version) string {
	if l, ok := e.Labelled(key)[v.ID]; ok {
		return l
	}
	return "(no labelled token!)"
}
