package registries

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/dockerhubemu"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/dockerhub"
)

// HubSSOOrg is the Docker Hub organization that enforces single sign-on, and HubSSOOwner its
// owner, whose password Docker Hub refuses (SSO is a Docker Business feature).
const (
	HubSSOOrg   = "ptc-demo-sso"
	HubSSOOwner = "ptc-demo-owner"
)

// DockerHubSSO is Docker Hub in staged mode for an organization that enforces SSO, where
// nothing can mint (no password session; a PAT-derived session may not create tokens): the
// owner signs in with SSO in the web UI and makes an organization access token, and the source
// secret holds it with the organization as username. Docker Business has no pull rate limit
// (Docker docs, "Docker Hub usage and limits"), so the emulator sends no ratelimit headers for
// the organization, as Docker Hub sends none for a paid plan.
var DockerHubSSO = func() *Descriptor {
	d := Staged(DockerHub)
	d.Title = "Docker Hub (staged, SSO org)"
	d.SourceWhat = "the next organization access token of " + HubSSOOrg + " (SSO enforced), made by its owner"
	d.StagedHow = "the owner signed in with SSO and made organization access token %s"
	d.DeleteNote = "the organization access tokens stay with " + HubSSOOrg + ": its owner made them and deletes them"
	d.NewServer = func(e *Emulator) http.Handler {
		e.SourceSecret = randomSecret("PLANTED-hub-sso-pw-", 24)
		e.Hub = dockerhubemu.New(dockerhubemu.Options{Now: e.Options.Now},
			dockerhubemu.Account{Username: HubSSOOwner, Password: e.SourceSecret, Orgs: []string{HubSSOOrg}, SSOEnforced: true})
		e.Recorder = &e.Hub.Recorder
		e.CheckRepository = dockerhub.DefaultCheckRepository
		return e.Hub
	}
	d.SourceFor = func(e *Emulator, _ int) map[string]any { return ownerMakesOAT(e) }
	d.Stage = func(e *Emulator, _ int) (Credential, map[string]any) {
		f := ownerMakesOAT(e)
		e.mu.Lock()
		c := e.made[len(e.made)-1].Credential
		e.mu.Unlock()
		return c, f
	}
	d.WrongSource = func(e *Emulator, wrong string) map[string]any {
		f := stagedFields(e, HubSSOOrg, "PLANTED-"+wrong)
		delete(f, "expiresAt")
		return f
	}
	return d
}()

// ownerMakesOAT is the organization's owner signing in with SSO and creating the next
// organization access token through the Hub API, as the Admin Console does; it records the
// token as one a person made and returns the staged source secret fields holding it.
func ownerMakesOAT(e *Emulator) map[string]any {
	sess, ok := e.Hub.SSOSession(HubSSOOwner)
	if !ok {
		panic("Docker Hub: the organization's owner has no account")
	}
	e.mu.Lock()
	count := len(e.made) + 1
	e.mu.Unlock()
	label := fmt.Sprintf("made-by-the-owner-%d", count)
	expires := e.now().Add(StagedLifetime).UTC()
	body, _ := json.Marshal(map[string]any{"label": label, "description": "staged for ptc-credentials",
		"resources":  []map[string]any{{"type": "TYPE_REPO", "path": "*/*/public", "scopes": []string{"scope-image-pull"}}},
		"expires_at": expires.Format(time.RFC3339)})
	req, _ := http.NewRequest(http.MethodPost, e.URL+"/v2/orgs/"+HubSSOOrg+"/access-tokens", bytes.NewReader(body))
	req.Header.Set("Authorization", sess)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(fmt.Sprintf("Docker Hub: the owner's organization access token cannot be made: %v", err))
	}
	defer resp.Body.Close()
	var out struct{ Token string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusCreated || out.Token == "" {
		panic(fmt.Sprintf("Docker Hub: the owner's organization access token cannot be made: HTTP %d", resp.StatusCode))
	}
	secret := out.Token
	m := madeCredential{Credential: Credential{Name: label, Username: HubSSOOrg, Secret: secret}, held: func() bool {
		for _, t := range e.Hub.Tokens() {
			if t.Secret == secret && t.Org {
				return true
			}
		}
		return false
	}}
	e.noteStaged()
	e.mu.Lock()
	e.made = append(e.made, m)
	e.mu.Unlock()
	f := stagedFields(e, HubSSOOrg, secret)
	f["expiresAt"] = expires.Format(time.RFC3339)
	return f
}
