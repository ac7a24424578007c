package registries

import (
	"net/http"
	"regexp"
	"strings"

	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/chainguardemu"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/chainguard"
)

// The Chainguard organization the source secrets name, and its assumable identity for the
// functions' role.
const (
	ChainguardGroup      = "0123456789abcdef0123456789abcdef01234567"
	ChainguardIdentity   = ChainguardGroup + "/a55e55ab1e1d0000"
	ChainguardRepository = "acme.com/static"
	// chainguardStranger is an identity no role may assume: the refused source.
	chainguardStranger = ChainguardGroup + "/dddddddddddddddd"
)

// Chainguard mints a pull token per version — a static identity named with the version's label
// and bound to registry.pull — with no stored secret: the functions' role exchanges its web
// identity token at Chainguard's STS. Revoking deletes the identity.
var Chainguard = &Descriptor{
	Name:      ptcsecret.UpstreamChainguard,
	Title:     "Chainguard",
	Short:     "cg",
	Prefix:    "chainguard",
	Emulates:  "Chainguard (STS, IAM, cgr.dev) and AWS STS",
	Provider:  chainguard.Provider,
	Can:       Capabilities{Mints: true, Labels: true, Revokes: true, SharedSource: true},
	Federated: true,

	SourceWhat: "no secret: assumable identity " + ChainguardIdentity + " trusts role " + FederationRole,
	RevokedHow: "deleted",

	NewServer: func(e *Emulator) http.Handler {
		// One assumable identity for every trusted role: a subject pattern, as docs/deploy.md
		// registers it for both function roles.
		as := chainguardemu.Assumable{ID: ChainguardIdentity, Issuer: e.STSURL, Capabilities: chainguardemu.MinterCapabilities}
		if roles := e.trustedRoles(); len(roles) == 1 {
			as.Subject = roles[0]
		} else {
			quoted := make([]string, len(roles))
			for i, r := range roles {
				quoted[i] = regexp.QuoteMeta(r)
			}
			as.SubjectPattern = strings.Join(quoted, "|")
		}
		e.Chainguard = chainguardemu.New(chainguardemu.Options{Now: e.Options.Now, Group: ChainguardGroup, Assumable: []chainguardemu.Assumable{as}})
		e.Recorder = &e.Chainguard.Recorder
		e.CheckRepository = ChainguardRepository
		return e.Chainguard
	},
	SourceFor:   func(e *Emulator, _ int) map[string]any { return chainguardSource(e, ChainguardIdentity) },
	WrongSource: func(e *Emulator, _ string) map[string]any { return chainguardSource(e, chainguardStranger) },
	Credentials: func(e *Emulator, key string) []Credential {
		var out []Credential
		for _, id := range e.Chainguard.Identities() {
			if ofSecret(key, id.Name) {
				// The JWT is known only to the secret holding it: Holds checks it against the
				// identity's keys instead.
				out = append(out, Credential{Name: id.Name, Version: versionOf(key, id.Name), Username: id.ID, Held: e.Chainguard.Bound(id.ID)})
			}
		}
		return out
	},
	Describe: describeLabelled,
	Holds: func(e *Emulator, c Credential, v ptcsecret.Value) bool {
		return c.Username == v.Username && e.Chainguard.Accepts(c.Username, v.AccessToken)
	},
	Planted: func(e *Emulator) []string { return append(e.Chainguard.Issued(), e.STS.Tokens()...) },
	IsAPI:   func(p string) bool { return strings.HasPrefix(p, "/iam/") || strings.HasPrefix(p, "/sts/") },
}

func chainguardSource(e *Emulator, identity string) map[string]any {
	return map[string]any{"group": ChainguardGroup, "identity": identity, "checkRepository": ChainguardRepository,
		"issuerUrl": e.URL, "apiUrl": e.URL, "tokenLifetimeHours": 720}
}
