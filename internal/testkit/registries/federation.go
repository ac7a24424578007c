package registries

import (
	"net/http/httptest"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/ptc-credentials/ptc-credentials/internal/pinned"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/stsemu"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
	"github.com/ptc-credentials/ptc-credentials/internal/webidentity"
)

// The AWS side of federated registries: the functions' role, the access key its session signs
// with, and the Region.
const (
	FederationRole      = "arn:aws:iam::123456789012:role/ptc-credentials-RotatorRole"
	FederationAccessKey = "AKIDFEDERATIONROLE"
	FederationRegion    = "eu-west-1"
	federationSecretKey = "federation-role-secret-key"
)

// startSTS starts the STS emulator of a federated registry and returns its closer.
func (e *Emulator) startSTS() func() {
	if e.Options.STS != nil {
		e.STS, e.STSURL = e.Options.STS, e.Options.STSURL
		return func() {}
	}
	e.STS = stsemu.New(stsemu.Options{Region: FederationRegion, Now: e.Options.Now,
		Credentials: map[string]string{FederationAccessKey: federationSecretKey}, Roles: map[string]string{FederationAccessKey: FederationRole}})
	srv := httptest.NewServer(e.STS)
	e.STSURL = srv.URL
	e.WebIdentity = &webidentity.STS{API: sts.New(sts.Options{Region: FederationRegion, BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider(FederationAccessKey, federationSecretKey, "")})}
	return srv.Close
}

// federate gives e its own copy of the descriptor whose provider hands every upstream the web
// identity source and the emulator's URL as the stand-in for the pinned hosts, unless the
// caller set them: the harnesses build upstreams from e.Provider and need to know nothing of
// federation.
func (e *Emulator) federate() {
	d := *e.Descriptor
	inner := d.Provider.New
	wid, url := e.WebIdentity, e.URL
	d.Provider.New = func(source []byte, opts upstream.Options) (upstream.Upstream, error) {
		if opts.WebIdentity == nil {
			opts.WebIdentity = wid
		}
		if opts.Standins.Empty() {
			opts.Standins = pinned.NewStandins(url)
		}
		return inner(source, opts)
	}
	e.Descriptor = &d
}

// trustedRoles are the role ARNs the federated upstream trusts (Options.TrustedRoles).
func (e *Emulator) trustedRoles() []string {
	if len(e.Options.TrustedRoles) > 0 {
		return e.Options.TrustedRoles
	}
	return []string{FederationRole}
}
