package faults

import (
	"testing"

	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/registries"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/rotationtest"
)

// Registries are the upstreams the rotation scenario covers.
var Registries = append(registries.Names(), registries.Chainguard.Name)

// regFixture is one managed secret of one upstream, set up as rotationtest does it, with its
// own emulator (so cases can run in parallel).
type regFixture struct {
	t testing.TB
	h *rotationtest.Harness
	e *registries.Emulator
}

func newRegFixture(t testing.TB, inj *Injector, sm smServer, name string) *regFixture {
	t.Helper()
	d, ok := registries.ByName(name)
	if !ok {
		t.Fatalf("unknown registry %q", name)
	}
	e := d.MustStart(t, registries.Options{})
	inj.Name(e.URL, d.Short)
	h := rotationtest.New(t, sm, rotationtest.Config{Provider: withInstantSleep(e.Provider), SourceJSON: e.Source(0), RegistryURL: e.URL, Standins: e.Standins()})
	return &regFixture{t: t, h: h, e: e}
}

// stage is what a person does before a rotation where the registry cannot mint (GHCR): put a
// new credential into the source secret. Registries that mint their own need nothing.
func (f *regFixture) stage() {
	f.t.Helper()
	_, doc, ok := f.e.StageNext(0)
	if !ok {
		return
	}
	if err := putSource(f.h, doc); err != nil {
		f.t.Fatal(err)
	}
	f.h.Cfg.SourceJSON = doc
}

// loginErr checks a credential with the OCI handshake directly against the emulator, with a
// fault-free client.
func (f *regFixture) loginErr(v ptcsecret.Value) error { return f.e.Login(f.h.Ctx, v) }

// version reads one version of the managed secret as the registry checks see it.
func (f *regFixture) version(id string) registries.Version {
	return registries.Version{ID: id, Stages: f.h.Stages()[id], Value: f.h.Value(id)}
}

// planted are every secret value the case handled, for leak scans.
func (f *regFixture) planted() []string { return f.e.PlantedSecrets() }
