package acr

import (
	"fmt"
	"net/url"

	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
)

// NewStagedVerifier builds the verify-only upstream for a staged ACR token password (staged
// mode, internal/upstream/staged): Verify as in minting mode, retried while a new password
// replicates, with no Entra ID or ARM behind it. The staged username is the ACR token's name;
// the source's own fields are "loginServer" (else the rule's registry) and "checkRepository".
func NewStagedVerifier(fields []byte, opts upstream.Options) (*ACR, error) {
	var f struct {
		LoginServer     string `json:"loginServer"`
		CheckRepository string `json:"checkRepository"`
	}
	if err := upstream.DecodeSource(fields, ptcsecret.UpstreamACR, &f); err != nil {
		return nil, err
	}
	if f.CheckRepository == "" {
		f.CheckRepository = DefaultCheckRepository
	}
	if !repoRE.MatchString(f.CheckRepository) {
		return nil, fmt.Errorf(errPrefix + `field "checkRepository" must be a repository name in lower case`)
	}
	// The login server, when given, must be an ACR host, and the rule's registry must then be
	// it; without one, the rule's registry must be an ACR host. The login check reaches that
	// host alone.
	hosts := RegistryHosts
	if f.LoginServer != "" {
		login, err := opts.CheckURL(errPrefix+`field "loginServer"`, f.LoginServer, RegistryHosts)
		if err != nil {
			return nil, err
		}
		u, _ := url.Parse(login)
		hosts = LoginHosts(u.Hostname())
	}
	reg, err := opts.LoginRegistry(hosts, f.LoginServer, "")
	if err != nil {
		return nil, err
	}
	return &ACR{src: Source{LoginServer: f.LoginServer, CheckRepository: f.CheckRepository}, registry: reg, loginHosts: LoginHosts(loginHost(reg)), opts: opts}, nil
}
