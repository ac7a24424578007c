package registries

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/ghcremu"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/ghcr"
)

// GHCRUser is the GitHub account whose classic PATs a person stages.
const GHCRUser = "Octo-Demo"

// GHCRPATLifetime is how long the PATs a person creates last (GitHub's 90-day default).
const GHCRPATLifetime = 90 * 24 * time.Hour

// GHCR mints nothing: GitHub has no API that creates personal access tokens. A person creates
// the next classic PAT and puts it into the source secret (Stage); the rotator verifies and
// promotes it, and never revokes one.
var GHCR = &Descriptor{
	Name:     ptcsecret.UpstreamGHCR,
	Title:    "GitHub Container Registry",
	Short:    "ghcr",
	Prefix:   "ghcr",
	Emulates: "GitHub (API, ghcr.io)",
	Provider: ghcr.Provider,
	Can:      Capabilities{},

	SourceWhat:   "classic PAT #1 (read:packages) of GitHub user " + GHCRUser,
	NoRevocation: "GitHub PATs belong to their owner; the rotator never revokes one",
	DeleteNote:   "nothing revoked: the PATs belong to " + GHCRUser + " (delete them in GitHub's settings)",
	StagedHow:    "a person created classic %s in GitHub",

	NewServer: func(e *Emulator) http.Handler {
		e.GHCR = ghcremu.New(ghcremu.Options{Now: e.Options.Now})
		e.Recorder = &e.GHCR.Recorder
		e.CheckRepository = strings.ToLower(GHCRUser) + "/" + ghcr.DefaultCheckImage
		e.SourceSecret = newPAT(e).Value // PAT #1, the first source secret's
		return e.GHCR
	},
	SourceFor: func(e *Emulator, n int) map[string]any {
		if n == 0 {
			return ghcrSource(e, e.SourceSecret)
		}
		return ghcrSource(e, newPAT(e).Value)
	},
	WrongSource: func(e *Emulator, wrong string) map[string]any { return ghcrSource(e, "ghp_"+wrong) },
	Stage: func(e *Emulator, _ int) (Credential, map[string]any) {
		pat := newPAT(e)
		return patCredential(len(e.GHCR.Tokens()), pat), ghcrSource(e, pat.Value)
	},
	Credentials: func(e *Emulator, _ string) []Credential {
		// A PAT cannot say which secret it is for: these are every PAT of the emulator.
		var out []Credential
		for i, t := range e.GHCR.Tokens() {
			out = append(out, patCredential(i+1, t))
		}
		return out
	},
	Describe: func(e *Emulator, _ string, v Version) string {
		for i, t := range e.GHCR.Tokens() {
			if t.Value == v.Value.AccessToken {
				return patCredential(i+1, t).Name
			}
		}
		return "(an unknown PAT!)"
	},
	Planted: func(e *Emulator) []string {
		var out []string
		for _, t := range e.GHCR.Tokens() {
			out = append(out, t.Value)
		}
		return append(out, e.GHCR.RegistryTokens()...)
	},
	IsAPI: func(p string) bool { return p == "/user" },
}

// newPAT is a person creating a classic PAT with read:packages in GitHub's settings.
func newPAT(e *Emulator) ghcremu.Token {
	t := ghcremu.Token{
		Value: randomSecret("ghp_PLANTED", 29), User: GHCRUser, Scopes: []string{"read:packages"},
		ExpiresAt: e.now().Add(GHCRPATLifetime).UTC().Truncate(time.Second),
	}
	e.GHCR.AddToken(t)
	e.noteStaged()
	return t
}

// patCredential is PAT number n (in the order a person created them).
func patCredential(n int, t ghcremu.Token) Credential {
	return Credential{Name: fmt.Sprintf("PAT #%d", n), Username: t.User, Secret: t.Value, Held: !t.Revoked}
}

func ghcrSource(e *Emulator, token string) map[string]any {
	return map[string]any{"username": GHCRUser, "token": token, "apiUrl": e.URL}
}
