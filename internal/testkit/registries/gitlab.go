package registries

import (
	"net/http"
	"strings"

	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/gitlabemu"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/gitlab"
)

// The GitLab account the GitLab source secrets use: olivia owns the Premium group acme, whose
// subgroup acme/platform holds the private project the login checks pull from.
const (
	GitLabOwner     = "olivia"
	GitLabGroup     = "acme"
	GitLabGroupID   = 11
	GitLabProject   = "acme/platform/app"
	GitLabProjectID = 31
)

// GitLab mints a group access token per version, named with its label, and revokes it when it
// is two generations old (GitLab keeps revoked tokens on record).
var GitLab = &Descriptor{
	Name:     ptcsecret.UpstreamGitLab,
	Title:    "GitLab",
	Short:    "gitlab",
	Prefix:   "gitlab",
	Emulates: "GitLab (API, registry)",
	Provider: gitlab.Provider,
	Can:      Capabilities{Mints: true, Labels: true, Revokes: true, KeepsRevoked: true, SharedSource: true},

	SourceWhat: "api token of " + GitLabOwner + ", Owner of group " + GitLabGroup,
	RevokedHow: "revoked",

	NewServer: func(e *Emulator) http.Handler {
		e.SourceSecret = randomSecret("glpat-PLANTED-", 20)
		e.GitLab = gitlabemu.New(gitlabemu.Options{Now: e.Options.Now})
		e.GitLab.AddUser(gitlabemu.User{Username: GitLabOwner, Token: e.SourceSecret})
		e.GitLab.AddGroup(gitlabemu.Group{ID: GitLabGroupID, Path: GitLabGroup, Premium: true, Members: map[string]int{GitLabOwner: gitlabemu.Owner}})
		e.GitLab.AddProject(gitlabemu.Project{ID: GitLabProjectID, Path: GitLabProject})
		e.Recorder = &e.GitLab.Recorder
		e.CheckRepository = GitLabProject
		return e.GitLab
	},
	SourceFor: func(e *Emulator, _ int) map[string]any { return gitlabSource(e, e.SourceSecret) },
	WrongSource: func(e *Emulator, wrong string) map[string]any {
		return gitlabSource(e, "glpat-"+wrong)
	},
	Credentials: func(e *Emulator, key string) []Credential {
		var out []Credential
		for _, t := range e.GitLab.Tokens() {
			if ofSecret(key, t.Name) {
				out = append(out, Credential{Name: t.Name, Version: versionOf(key, t.Name), Username: t.Name, Secret: t.Secret, Held: !t.Revoked})
			}
		}
		return out
	},
	Describe: describeLabelled,
	Planted: func(e *Emulator) []string {
		out := []string{e.SourceSecret}
		for _, t := range e.GitLab.Tokens() {
			out = append(out, t.Secret)
		}
		return out
	},
	IsAPI: func(p string) bool { return strings.HasPrefix(p, "/api/") },
}

func gitlabSource(e *Emulator, token string) map[string]any {
	return map[string]any{"token": token, "apiUrl": e.URL, "groupId": GitLabGroup, "checkRepository": GitLabProject}
}
