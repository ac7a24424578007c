package ecremu

import (
	"net/http"
	"slices"
	"strings"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/emukit"
)

// Regions is ECR in several Regions behind one endpoint: one Server per Region, each with its
// own rules, routed by the SigV4 credential scope's Region (real SDK clients for different
// Regions differ only in the Region they sign for). Each Region's ECR reads secrets through
// the Secrets Manager client its Options give it — one of its own Region — and accepts only a
// CredentialArn in its own Region, as ECR does. Create it with NewRegions.
type Regions struct {
	order   []string
	servers map[string]*Server
}

// NewRegions returns an empty ECR in each of regions (the first is the home Region, which
// serves requests whose Region cannot be read). opts, when not nil, gives each Region's Options
// (its SecretsManager should be a client of that Region); the Region field is overridden.
func NewRegions(regions []string, opts func(region string) Options) *Regions {
	rs := &Regions{order: slices.Clone(regions), servers: map[string]*Server{}}
	if len(rs.order) == 0 {
		rs.order = []string{DefaultRegion}
	}
	for _, r := range rs.order {
		var o Options
		if opts != nil {
			o = opts(r)
		}
		o.Region = r
		rs.servers[r] = New(o)
	}
	return rs
}

// Region returns that Region's ECR (nil for a Region it does not have).
func (rs *Regions) Region(name string) *Server { return rs.servers[name] }

// Names returns the Regions, home first.
func (rs *Regions) Names() []string { return slices.Clone(rs.order) }

// ServeHTTP routes a request to the ECR of its SigV4 credential scope's Region; a Region it
// does not have is answered as AWS answers a credential scoped to a Region it does not serve.
func (rs *Regions) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	region := emukit.SigV4Region(r)
	if region == "" {
		rs.servers[rs.order[0]].ServeHTTP(w, r)
		return
	}
	s := rs.servers[region]
	if s == nil {
		writeError(w, errf("InvalidSignatureException", http.StatusForbidden,
			"Credential should be scoped to a valid region. The emulator serves %s, not %s.", strings.Join(rs.order, ", "), region))
		return
	}
	s.ServeHTTP(w, r)
}
