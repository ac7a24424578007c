package upstream

import (
	"fmt"
	"strings"

	"github.com/ptc-credentials/ptc-credentials/internal/kit"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
)

// FederatedBindingsVar names the environment variable both functions read the deployer's
// federated bindings from (template parameter FederatedBindings).
const FederatedBindingsVar = "FEDERATED_BINDINGS"

// Federated is implemented by upstreams whose source secret names a vendor identity that trusts
// the function role itself (outbound identity federation: Chainguard's assumable identity, an
// Entra app with a federated credential). The vendor sees only the role, so any managed secret
// the rotator serves could name any identity that trusts it; FederatedBindings, set by the
// deployer, says which managed secrets may use which identity.
type Federated interface {
	// FederatedIdentity returns the vendor identity the source names ("<tenantId>/<clientId>"
	// for Entra, the assumable identity's UIDP for Chainguard) and whether the source is in
	// federated mode at all.
	FederatedIdentity() (string, bool)
}

// FederatedBindings maps a vendor identity to the managed secrets that may use it (names, or
// prefixes ending in "/"). nil means the deployer set none: every managed secret may use every
// identity that trusts the role — right for a stack that serves one team (docs/security.md).
type FederatedBindings map[string]Binding

// ParseFederatedBindings reads "identity=secret[,secret...];identity=..." (whitespace around
// entries ignored). An empty string is nil. Errors name the entry by position, never guess.
func ParseFederatedBindings(v string) (FederatedBindings, error) {
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	out := FederatedBindings{}
	for i, entry := range strings.Split(v, ";") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		id, list, ok := strings.Cut(entry, "=")
		id = strings.TrimSpace(id)
		if !ok || id == "" {
			return nil, fmt.Errorf("%s entry %d: give identity=managed-secret[,managed-secret...]", FederatedBindingsVar, i+1)
		}
		for _, s := range strings.Split(list, ",") {
			s = strings.TrimSpace(s)
			if !strings.HasPrefix(s, ptcsecret.Prefix) {
				return nil, fmt.Errorf("%s entry %d (%s): each managed secret must start with %q", FederatedBindingsVar, i+1, kit.Truncate(id, 80), ptcsecret.Prefix)
			}
			out[id] = append(out[id], s)
		}
	}
	return out, nil
}

// Allows reports whether managed secret name may use identity: always when no bindings are
// set, else only when the identity's list allows the name.
func (f FederatedBindings) Allows(identity, name string) bool {
	if f == nil {
		return true
	}
	return f[identity].Allows(name)
}

// checkFederated refuses a federated source whose identity the deployer did not bind to the
// managed secret.
func checkFederated(up Upstream, req SourceRequest) error {
	fed, ok := up.(Federated)
	if !ok {
		return nil
	}
	id, federated := fed.FederatedIdentity()
	if !federated || req.Options.FederatedBindings.Allows(id, req.ForSecret) {
		return nil
	}
	return unusable{fmt.Errorf("%s %s names federated identity %s, which the stack's FederatedBindings parameter does not bind to managed secret %s: the identity trusts this stack's role, not one team, so the deployer must list %s=%s there (docs/security.md)",
		req.Name, req.ARN, kit.Truncate(id, 120), kit.Truncate(req.ForSecret, 512), kit.Truncate(id, 120), kit.Truncate(req.ForSecret, 512))}
}
