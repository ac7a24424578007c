package localcloud

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/registries"
)

// Registry is one emulated upstream registry as a rule uses it: its descriptor (name, title,
// prefix, capabilities, …) and its running emulator.
type Registry struct {
	*registries.Descriptor
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

// Registry returns the emulated registry with ECR UpstreamRegistry value name.
func (c *Cloud) Registry(name string) (Registry, bool) {
	for _, r := range c.registries {
		if r.Name == name {
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

// startRegistries starts every registry's emulator on a loopback listener of the cloud.
func (c *Cloud) startRegistries(opts Options) error {
	for _, d := range registries.All() {
		e, err := d.Start(registries.Options{ReplicationDelay: opts.ACRReplicationDelay, Serve: c.serve})
		if err != nil {
			return err
		}
		c.registries = append(c.registries, Registry{Descriptor: d, Emulator: e, URL: e.URL, CheckRepository: e.CheckRepository, Source: e.Source(0)})
	}
	return nil
}

// checkRepoFor maps a rule's UpstreamRegistry to the repository ECR's login check asks for.
func (c *Cloud) checkRepoFor(upstreamRegistry string) string {
	if r, ok := c.Registry(upstreamRegistry); ok {
		return r.CheckRepository
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
