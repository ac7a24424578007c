package registries

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/acr"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/providers"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/staged"
)

// StagedLifetime is the expiry a person states ("expiresAt") for a token they stage, where the
// registry does not tell one itself.
const StagedLifetime = 60 * 24 * time.Hour

// madeCredential is one credential a person made for staged mode, with how to ask the emulator
// whether it still holds it.
type madeCredential struct {
	Credential
	held func() bool
}

// Staged returns d in staged mode (internal/upstream/staged): the source secret holds the next
// token a person made — here made in the emulator the way that person would (through the
// registry's own token API with the account's minting credential, as a UI or their own
// provisioning does; a new classic PAT on GitHub; the other password slot of the ACR token) —
// and the rotator verifies and promotes it, minting and revoking nothing. The descriptor runs
// the product's provider with staged mode wired in (providers.WithStaged).
//
// ACR has two password slots per token and staged mode must keep the token (its name is the
// username), so a person staging the next password regenerates the slot the previous version
// does not use: the credential two generations old stops working — Can.Revokes, by the person.
func Staged(d *Descriptor) *Descriptor {
	s := *d
	s.minting = d
	s.Title = d.Title + " (staged)"
	s.Provider = providers.WithStaged(d.Provider)
	s.Can = Capabilities{Revokes: d.Name == ptcsecret.UpstreamACR}
	s.Stages = nil
	s.SourceWhat = "the next token a person made for " + d.Title + " (staged mode)"
	s.NoRevocation = "staged tokens belong to whoever made them; the rotator never revokes one"
	s.StagedHow = "a person made %s and staged it"
	s.SourceFor = func(e *Emulator, n int) map[string]any {
		_, fields := personMakes(e, n)
		return fields
	}
	s.Stage = func(e *Emulator, n int) (Credential, map[string]any) { return personMakes(e, n) }
	s.WrongSource = func(e *Emulator, wrong string) map[string]any {
		f := stagedFields(e, stagedUsername(e), "PLANTED-"+wrong)
		delete(f, "expiresAt")
		return f
	}
	s.Credentials = func(e *Emulator, _ string) []Credential {
		e.mu.Lock()
		made := append([]madeCredential(nil), e.made...)
		e.mu.Unlock()
		var out []Credential
		for _, m := range made {
			c := m.Credential
			c.Held = m.held()
			out = append(out, c)
		}
		return out
	}
	s.Describe = func(e *Emulator, key string, v Version) string {
		for _, c := range s.Credentials(e, key) {
			if c.Secret == v.Value.AccessToken && c.Held {
				return c.Name
			}
		}
		return "(no credential a person made!)"
	}
	if d.Name == ptcsecret.UpstreamGHCR {
		// Every PAT of the emulator is one a person made (the first one too, by NewServer).
		s.Credentials, s.Describe = d.Credentials, d.Describe
	}
	return &s
}

// stagedUsername is the registry login name of the staged tokens.
func stagedUsername(e *Emulator) string {
	switch e.Name {
	case ptcsecret.UpstreamDockerHub:
		return HubUser
	case ptcsecret.UpstreamGHCR:
		return GHCRUser
	case ptcsecret.UpstreamACR:
		return ACRToken
	}
	return "ptc-staged" // GitLab reads no username
}

// stagedFields is a staged source secret holding username and token.
func stagedFields(e *Emulator, username, token string) map[string]any {
	f := map[string]any{staged.ModeField: staged.Mode, "username": username, "token": token,
		"expiresAt": e.now().Add(StagedLifetime).UTC().Format(time.RFC3339)}
	switch e.Name {
	case ptcsecret.UpstreamGHCR:
		f["apiUrl"] = e.URL
		delete(f, "expiresAt") // GitHub tells the expiry itself
	case ptcsecret.UpstreamGitLab, ptcsecret.UpstreamACR:
		f["checkRepository"] = e.CheckRepository
	}
	return f
}

// personMakes is a person making the next token for managed secret n and staging it.
func personMakes(e *Emulator, n int) (Credential, map[string]any) {
	e.mu.Lock()
	count := len(e.made) + 1
	e.mu.Unlock()
	var m madeCredential
	switch e.Name {
	case ptcsecret.UpstreamGHCR:
		pat := newPAT(e) // counts itself as staged
		idx := len(e.GHCR.Tokens())
		m = madeCredential{Credential: patCredential(idx, pat), held: func() bool {
			for _, t := range e.GHCR.Tokens() {
				if t.Value == pat.Value {
					return !t.Revoked
				}
			}
			return false
		}}
	case ptcsecret.UpstreamACR:
		m = acrPersonMakes(e, count)
	default:
		m = mintAsPerson(e, n, count)
		e.noteStaged()
	}
	e.mu.Lock()
	e.made = append(e.made, m)
	e.mu.Unlock()
	return m.Credential, stagedFields(e, m.Username, m.Secret)
}

// mintAsPerson makes a labelled token through the registry's own token API with the account's
// minting credential (what the registry's UI does), by the product's minting-mode upstream.
func mintAsPerson(e *Emulator, n, count int) madeCredential {
	src, err := json.Marshal(e.SourceForMinting(n))
	if err != nil {
		panic(err)
	}
	up, err := e.Descriptor.mintProvider().New(src, upstream.Options{RegistryURL: e.URL, Now: e.Options.Now, Standins: e.Standins()})
	if err != nil {
		panic(fmt.Sprintf("%s: the person's token cannot be made: %v", e.Title, err))
	}
	label := fmt.Sprintf("made-by-a-person-%d", count)
	minted, err := up.Mint(context.Background(), upstream.MintRequest{SecretName: "made by a person", VersionID: fmt.Sprint(count), Label: label})
	if err != nil {
		panic(fmt.Sprintf("%s: the person's token cannot be made: %v", e.Title, err))
	}
	c := Credential{Name: label, Username: minted.Credential.Username, Secret: minted.Credential.AccessToken}
	if e.Name == ptcsecret.UpstreamGitLab {
		c.Username = stagedUsername(e)
	}
	secret := c.Secret
	return madeCredential{Credential: c, held: func() bool {
		switch e.Name {
		case ptcsecret.UpstreamDockerHub:
			for _, t := range e.Hub.Tokens() {
				if t.Secret == secret {
					return true
				}
			}
		case ptcsecret.UpstreamGitLab:
			for _, t := range e.GitLab.Tokens() {
				if t.Secret == secret {
					return !t.Revoked
				}
			}
		}
		return false
	}}
}

// acrPersonMakes regenerates the ACR token's slot the previous staged password does not use
// (password1 first), as a person does in the Azure portal.
func acrPersonMakes(e *Emulator, count int) madeCredential {
	src, err := json.Marshal(e.SourceForMinting(0))
	if err != nil {
		panic(err)
	}
	up, err := acr.Provider.New(src, upstream.Options{RegistryURL: e.URL, Now: e.Options.Now, Standins: e.Standins()})
	if err != nil {
		panic(fmt.Sprintf("ACR: the person's password cannot be made: %v", err))
	}
	// The slot in use by the last staged password is "current" to the person.
	cur := []string{acr.StagePassword2}
	if count%2 == 0 {
		cur = []string{acr.StagePassword1}
	}
	minted, err := up.Mint(context.Background(), upstream.MintRequest{SecretName: "made by a person", Label: "person", CurrentStages: cur})
	if err != nil {
		panic(fmt.Sprintf("ACR: the person's password cannot be made: %v", err))
	}
	slot := acr.Password1
	if count%2 == 0 {
		slot = acr.Password2
	}
	secret := minted.Credential.AccessToken
	return madeCredential{
		Credential: Credential{Name: fmt.Sprintf("%s/%s #%d", ACRToken, slot, count), Username: minted.Credential.Username, Secret: secret},
		held:       func() bool { return e.ACR.Passwords(ACRToken)[slot].Value == secret },
	}
}

// SourceForMinting is the minting-mode source secret fields of managed secret n: what the
// account's owner holds, with which a person makes tokens for staged mode.
func (e *Emulator) SourceForMinting(n int) map[string]any {
	if e.Descriptor.minting != nil {
		return e.Descriptor.minting.SourceFor(e, n)
	}
	return e.SourceFor(e, n)
}

// mintProvider is the minting-mode provider of a staged descriptor (the descriptor's own for
// one that is not staged).
func (d *Descriptor) mintProvider() upstream.Provider {
	if d.minting != nil {
		return d.minting.Provider
	}
	return d.Provider
}
