package registries

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/acremu"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/acr"
)

// The Azure identities the ACR source secrets name. Names only: the client secret is random per
// Start.
const (
	ACRTenantID       = "0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5"
	ACRClientID       = "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9"
	ACRSubscriptionID = "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"
	ACRResourceGroup  = "ptc-demo-rg"
	ACRRegistry       = "ptcdemo"
	// ACRToken is the ACR token (two password slots) behind managed secret 0; managed secret n
	// > 0 gets its own, ACRTokenFor(n).
	ACRToken = "ptc-pull"
)

// ACRTokenFor is the ACR token behind managed secret n: one token must back one managed secret.
func ACRTokenFor(n int) string {
	if n == 0 {
		return ACRToken
	}
	return fmt.Sprintf("%s-%d", ACRToken, n)
}

// ACR regenerates the password slot of its ACR token that AWSCURRENT does not use, recording the
// slot as a staging label on the version, and waits for the password to replicate.
var ACR = &Descriptor{
	Name:     ptcsecret.UpstreamACR,
	Title:    "Azure Container Registry",
	Short:    "acr",
	Prefix:   "acr",
	Emulates: "Azure (Entra ID, ARM, ACR)",
	Provider: acr.Provider,
	Can:      Capabilities{Mints: true, Slots: true, Revokes: true, Replicates: true},
	Stages:   []string{acr.StagePassword1, acr.StagePassword2},

	SourceWhat:      "service principal " + ACRClientID + " and ACR token " + ACRToken + " of registry " + ACRRegistry,
	RevokedHow:      "slot regenerated",
	DeleteNote:      "both password slots of ACR token " + ACRToken + " regenerated and forgotten",
	ReplicationNote: "like ACR, the emulator refuses a new password for %s while it replicates; the functions wait it out",

	NewServer: func(e *Emulator) http.Handler {
		e.SourceSecret = randomSecret("PLANTED-acr-sp~", 32)
		e.ACR = acremu.New(acremu.Options{
			Now: e.Options.Now, TenantID: ACRTenantID, ClientID: ACRClientID, ClientSecret: e.SourceSecret,
			SubscriptionID: ACRSubscriptionID, ResourceGroup: ACRResourceGroup, Registry: ACRRegistry,
			ReplicationDelay: e.Options.ReplicationDelay,
		}, ACRToken)
		e.Recorder = &e.ACR.Recorder
		e.CheckRepository = acr.DefaultCheckRepository
		return e.ACR
	},
	SourceFor: func(e *Emulator, n int) map[string]any {
		if n > 0 {
			e.ACR.AddToken(ACRTokenFor(n))
		}
		return acrSource(e, e.SourceSecret, n)
	},
	WrongSource: func(e *Emulator, wrong string) map[string]any { return acrSource(e, wrong, 0) },
	Credentials: func(e *Emulator, _ string) []Credential {
		// A password slot cannot say which secret it is for: these are managed secret 0's.
		var out []Credential
		slots := e.ACR.Passwords(ACRToken)
		for _, name := range []string{acr.Password1, acr.Password2} {
			if p := slots[name]; p.Value != "" {
				out = append(out, Credential{Name: ACRToken + "/" + name, Username: ACRToken, Secret: p.Value, Held: true})
			}
		}
		return out
	},
	Describe: func(_ *Emulator, _ string, v Version) string {
		for _, st := range v.Stages {
			switch st {
			case acr.StagePassword1:
				return ACRToken + "/" + acr.Password1
			case acr.StagePassword2:
				return ACRToken + "/" + acr.Password2
			}
		}
		return "(no slot label!)"
	},
	Planted: func(e *Emulator) []string { return append([]string{e.SourceSecret}, e.ACR.Issued()...) },
	IsAPI: func(p string) bool {
		return strings.HasPrefix(p, "/subscriptions/") || strings.HasSuffix(p, "/oauth2/v2.0/token")
	},
}

func acrSource(e *Emulator, clientSecret string, n int) map[string]any {
	return map[string]any{
		"tenantId": ACRTenantID, "clientId": ACRClientID, "clientSecret": clientSecret,
		"tokenId": e.ACR.TokenID(ACRTokenFor(n)), "authorityUrl": e.URL, "managementUrl": e.URL,
	}
}

// ACRFederated is ACR in federated mode: the app registration has no client secret, only a
// federated credential for the functions' role on the emulated AWS account's issuer, and the
// source secret says "federated": true.
var ACRFederated = func() *Descriptor {
	d := *ACR
	d.Title = "Azure Container Registry (federated)"
	d.Federated = true
	d.SourceWhat = "no secret: app " + ACRClientID + " trusts role " + FederationRole + "; ACR token " + ACRToken + " of registry " + ACRRegistry
	d.NewServer = func(e *Emulator) http.Handler {
		// One federated credential per trusted role (docs/deploy.md: one per function role).
		var fedCreds []acremu.FederatedCredential
		for _, role := range e.trustedRoles() {
			fedCreds = append(fedCreds, acremu.FederatedCredential{Issuer: e.STSURL, Subject: role, Audience: acr.DefaultAssertionAudience})
		}
		e.ACR = acremu.New(acremu.Options{
			Now: e.Options.Now, TenantID: ACRTenantID, ClientID: ACRClientID,
			SubscriptionID: ACRSubscriptionID, ResourceGroup: ACRResourceGroup, Registry: ACRRegistry,
			ReplicationDelay:     e.Options.ReplicationDelay,
			FederatedCredentials: fedCreds,
		}, ACRToken)
		e.Recorder = &e.ACR.Recorder
		e.CheckRepository = acr.DefaultCheckRepository
		return e.ACR
	}
	d.SourceFor = func(e *Emulator, n int) map[string]any {
		if n > 0 {
			e.ACR.AddToken(ACRTokenFor(n))
		}
		return acrFederatedSource(e, ACRClientID, n)
	}
	// Another app registration, which trusts nobody.
	d.WrongSource = func(e *Emulator, _ string) map[string]any {
		return acrFederatedSource(e, "00000000-0000-4000-8000-000000000000", 0)
	}
	d.Planted = func(e *Emulator) []string { return append(e.ACR.Issued(), e.STS.Tokens()...) }
	return &d
}()

func acrFederatedSource(e *Emulator, clientID string, n int) map[string]any {
	m := acrSource(e, "", n)
	delete(m, "clientSecret")
	m["clientId"], m["federated"] = clientID, true
	return m
}
