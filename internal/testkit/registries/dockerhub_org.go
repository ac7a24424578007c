package registries

import (
	"net/http"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/dockerhubemu"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/dockerhub"
)

// HubOrg is the Docker Hub Team organization whose access tokens the DockerHubOrg row mints,
// HubOrgOwner its owner (whose password mints), and HubOrgTokenCap the Team plan's cap on
// organization access tokens (Docker docs, "Organization access tokens": 10 for Team, 100 for
// Business; expired and inactive ones count until deleted).
const (
	HubOrg         = "ptc-demo-team"
	HubOrgOwner    = "ptc-demo-admin"
	HubOrgTokenCap = 10
)

// DockerHubOrg is Docker Hub in minting mode for an organization: the owner's password mints
// one organization access token per version (the source secret's organization field), labelled
// for it, and the rotator deletes it when it is two generations old. The organization's token
// cap is what makes one credential for many Regions (ReplicaRegions) matter: every managed
// secret holds up to three tokens at a rotation's peak, so a Team organization runs out at four
// secrets.
var DockerHubOrg = func() *Descriptor {
	d := *DockerHub
	d.Title = "Docker Hub (organization)"
	d.Org = HubOrg
	d.SourceWhat = "username and password of " + HubOrgOwner + ", owner of Docker Hub organization " + HubOrg
	d.NewServer = func(e *Emulator) http.Handler {
		e.SourceSecret = randomSecret("PLANTED-hub-org-pw-", 24)
		// A Team organization: no pull rate limit (paid plans have none; Docker docs, "Docker
		// Hub usage and limits"), 10 organization access tokens.
		e.Hub = dockerhubemu.New(dockerhubemu.Options{Now: e.Options.Now, OrgTokenCap: HubOrgTokenCap},
			dockerhubemu.Account{Username: HubOrgOwner, Password: e.SourceSecret, Orgs: []string{HubOrg}})
		e.Recorder = &e.Hub.Recorder
		e.CheckRepository = dockerhub.DefaultCheckRepository
		return e.Hub
	}
	d.SourceFor = func(e *Emulator, _ int) map[string]any {
		return map[string]any{"username": HubOrgOwner, "password": e.SourceSecret, "organization": HubOrg, "apiUrl": e.URL}
	}
	d.WrongSource = func(e *Emulator, wrong string) map[string]any {
		return map[string]any{"username": HubOrgOwner, "password": wrong, "organization": HubOrg, "apiUrl": e.URL}
	}
	d.Credentials = func(e *Emulator, key string) []Credential {
		var out []Credential
		for _, t := range e.Hub.Tokens() {
			if t.Org && t.Owner == HubOrg && ofSecret(key, t.Label) {
				out = append(out, Credential{Name: t.Label, Version: versionOf(key, t.Label), Username: t.Owner, Secret: t.Secret, Held: true})
			}
		}
		return out
	}
	return &d
}()

// OrgTokens is how many organization access tokens the emulator's organization holds now
// (Descriptor.Org), expired ones included; -1 for a registry without one.
func (e *Emulator) OrgTokens() int {
	if e.Org == "" || e.Hub == nil {
		return -1
	}
	n := 0
	for _, t := range e.Hub.Tokens() {
		if t.Org && t.Owner == e.Org {
			n++
		}
	}
	return n
}

// PeakOrgTokens is the most organization access tokens the organization ever held at once;
// -1 for a registry without one.
func (e *Emulator) PeakOrgTokens() int {
	if e.Org == "" || e.Hub == nil {
		return -1
	}
	return e.Hub.PeakTokens(e.Org)
}
