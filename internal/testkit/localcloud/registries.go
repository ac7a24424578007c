package localcloud

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/registries"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
)

// Registry is one emulated upstream registry as a rule uses it: its descriptor (name, title,
// prefix, capabilities, …) and its running emulator.
type Registry struct {
	*registries.Descriptor
	// Key names the demo row and is what RunScenario and -registries select it by: the ECR
	// UpstreamRegistry value, with "-staged" or "-federated" for a second mode of a registry
	// (e.g. "docker-hub-staged").
	Key string
	// Prefix is the ECR repository prefix the row's rule gets (unique per row).
	Prefix string
	// Schedule is the rule's RotationSchedule.
	Schedule string
	// ReplicaRegions are the Regions the row's secret is replicated to, each with a rule of its
	// own (the ReplicaRegions property); nil: the home Region only.
	ReplicaRegions []string
	// Rotations is how many rotations the row runs when ScenarioOptions leaves it open (0: 2).
	Rotations int
	// Emulator is the running emulator, with the account the source secret uses.
	Emulator *registries.Emulator
	// URL is the emulator: the rule's UpstreamRegistryUrl and the source secret's API URL.
	URL string
	// CheckRepository is a repository the managed credential may pull, for login checks.
	CheckRepository string
	// Source is the first source secret JSON, with the minting credential. Secret: never print.
	Source string
}

// Registries returns the emulated registries in demo order.
func (c *Cloud) Registries() []Registry { return append([]Registry(nil), c.registries...) }

// Registry returns the emulated registry whose Key is name (the first row of an ECR
// UpstreamRegistry value is keyed by it: "docker-hub" is Docker Hub in minting mode).
func (c *Cloud) Registry(name string) (Registry, bool) {
	for _, r := range c.registries {
		if r.Key == name {
			return r, true
		}
	}
	return Registry{}, false
}

// randomSecret returns prefix plus n random hex digits.
func randomSecret(prefix string, n int) string {
	b := make([]byte, (n+1)/2)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)[:n]
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// Rows are the demo's rows in order: every registry of registries.All in its own mode, each
// followed by its second mode where the demo shows one (Docker Hub staged for an organization
// that enforces SSO, ACR federated), then the federated registries (Chainguard). Key and Prefix
// tell the rows of one registry apart; a registry added to registries.All gets its row here
// with no change.
func Rows() []Row {
	second := map[string]Row{
		// Weekly: the provisioner asks staged sources to be checked at least weekly, so that the
		// TokenDaysToExpiry alarm pages before the staged token lapses. (The prefix avoids the
		// word "staged": the provisioner treats every value of a staged source as secret.)
		registries.DockerHub.Name: {Descriptor: registries.DockerHubSSO, Key: registries.DockerHub.Name + "-staged", Prefix: registries.DockerHub.Prefix + "-sso", Schedule: "rate(7 days)"},
		registries.ACR.Name:       {Descriptor: registries.ACRFederated, Key: registries.ACR.Name + "-federated", Prefix: registries.ACR.Prefix + "-federated"},
	}
	var rows []Row
	for _, d := range registries.All() {
		rows = append(rows, Row{Descriptor: d, Key: d.Name, Prefix: d.Prefix})
		if r, ok := second[d.Name]; ok {
			rows = append(rows, r)
		}
	}
	for _, d := range registries.Federated() {
		// Chainguard's pull tokens live 30 days: rotate at least twice per lifetime.
		rows = append(rows, Row{Descriptor: d, Key: d.Name, Prefix: d.Prefix, Schedule: "rate(14 days)"})
	}
	// One Docker Hub organization credential serving rules in three Regions, rotated once: the
	// organization's token cap (10 on Team) is what one resource per Region would exhaust.
	rows = append(rows, Row{Descriptor: registries.DockerHubOrg, Key: registries.DockerHub.Name + "-org-3-regions",
		Prefix: registries.DockerHub.Prefix + "-org", ReplicaRegions: ReplicaRegions, Rotations: 1})
	return rows
}

// Row is one demo row: a registry in one mode, its Key and its rule's ECR repository prefix.
type Row struct {
	Descriptor  *registries.Descriptor
	Key, Prefix string
	// Schedule is the rule's RotationSchedule; empty means rate(30 days).
	Schedule string
	// ReplicaRegions and Rotations are Registry's.
	ReplicaRegions []string
	Rotations      int
}

// startRegistries starts every row's emulator on a loopback listener of the cloud; the
// federated ones trust the cloud's STS emulator (the functions' issuer) and both function roles.
func (c *Cloud) startRegistries(opts Options) error {
	for _, row := range Rows() {
		e, err := row.Descriptor.Start(registries.Options{ReplicationDelay: opts.ACRReplicationDelay, Serve: c.serve,
			STS: c.STS, STSURL: c.STSURL, TrustedRoles: []string{testenv.RotatorRoleARN, testenv.ProvisionerRoleARN}})
		if err != nil {
			return err
		}
		if row.Schedule == "" {
			row.Schedule = "rate(30 days)"
		}
		d := *e.Descriptor
		// Here the upstream trusts both function roles, not the in-process harnesses' one.
		d.SourceWhat = strings.ReplaceAll(d.SourceWhat, "role "+registries.FederationRole, "both function roles")
		d.Emulates = strings.TrimSuffix(d.Emulates, " and AWS STS") // the cloud's own STS is listed apart
		c.registries = append(c.registries, Registry{Descriptor: &d, Key: row.Key, Prefix: row.Prefix, Schedule: row.Schedule,
			ReplicaRegions: row.ReplicaRegions, Rotations: row.Rotations, Emulator: e, URL: e.URL,
			CheckRepository: e.CheckRepository, Source: e.Source(0)})
	}
	return nil
}

// checkRepoFor maps a rule's UpstreamRegistry to the repository ECR's login check asks for.
func (c *Cloud) checkRepoFor(upstreamRegistry string) string {
	for _, r := range c.registries {
		if r.Name == upstreamRegistry {
			return r.CheckRepository // every row of a registry checks the same repository
		}
	}
	return "library/alpine"
}

// Login runs the registry's OCI token handshake with cred against registry r, as ECR does when
// it pulls. nil: the registry accepted it; errors.Is(err, registryauth.ErrBadCredentials): it
// refused it.
func (c *Cloud) Login(ctx context.Context, r Registry, cred ptcsecret.Value) error {
	if err := r.Emulator.Login(ctx, cred); err != nil {
		return fmt.Errorf("logging in to %s: %w", r.Title, err)
	}
	return nil
}
