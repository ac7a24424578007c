package benchkit

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/pinned"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/registries"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
)

// Registries are the upstreams, in the order the benchmarks report them.
var Registries = registries.Names()

// RegistryOptions shape the emulator's behaviour for the scale simulation.
type RegistryOptions struct {
	// RateLimit is token-API requests per second; zero means no limit.
	RateLimit int
	// FaultFraction of requests are answered 503; LostFraction of those after the emulator
	// served them. Seed seeds the draws.
	FaultFraction, LostFraction float64
	Seed                        uint64
}

// Registry is one upstream's emulator behind a Meter (and, when asked, a rate limit and fault
// injection), and how to make source secrets for it.
type Registry struct {
	// Name is the ptc:upstream value.
	Name string
	// Provider is the upstream's descriptor.
	Provider upstream.Provider
	// URL serves both the token API and the registry.
	URL string
	// Meter counts every request the upstream code made.
	Meter *Meter
	// SharedSource is true when every managed secret can use one source secret (one account
	// minting many tokens); false when each needs its own (an ACR token, a person's PAT).
	SharedSource bool
	// Emulator is the registry's emulator, for checks after a run.
	Emulator *registries.Emulator

	off atomic.Bool
}

// NewRegistry starts the emulator of registry name.
func NewRegistry(name string, o RegistryOptions) (*Registry, error) {
	d, ok := registries.ByName(name)
	if !ok {
		return nil, fmt.Errorf("unknown registry %q", name)
	}
	r := &Registry{Name: name, Provider: d.Provider, SharedSource: d.Can.SharedSource}
	classify := func(req *http.Request) Class {
		if d.IsAPI(req.URL.Path) {
			return ClassAPI
		}
		return ClassRegistry
	}
	// The Docker Hub emulator has a rate limit of its own (Options.RateLimit) with the same
	// fixed-window rule as RateLimiter; RateLimiter is used for every registry instead, so setup
	// can switch it off (Limits) and all are limited identically.
	wrap := func(h http.Handler) http.Handler {
		if o.RateLimit > 0 {
			h = &RateLimiter{Next: h, Classify: classify, Requests: o.RateLimit, Window: time.Second, Off: &r.off}
		}
		if o.FaultFraction > 0 {
			h = &FaultInjector{Next: h, Fraction: o.FaultFraction, LostFraction: o.LostFraction, Seed: o.Seed, Off: &r.off}
		}
		r.Meter = &Meter{Next: h, Classify: classify}
		return r.Meter
	}
	e, err := d.Start(registries.Options{Wrap: wrap})
	if err != nil {
		return nil, err
	}
	r.Emulator, r.URL = e, e.URL
	return r, nil
}

// Standins is the registry's emulator as the one stand-in for its pinned hosts.
func (r *Registry) Standins() pinned.Standins { return pinned.NewStandins(r.URL) }

// Standins lists every registry's emulator as a stand-in, for a rotator that serves them all.
func Standins(regs ...*Registry) pinned.Standins {
	var urls []string
	for _, r := range regs {
		urls = append(urls, r.URL)
	}
	return pinned.NewStandins(urls...)
}

// Source returns the source secret JSON for managed secret number i (each managed secret of a
// registry without SharedSource gets its own ACR token or PAT).
func (r *Registry) Source(i int) string { return r.Emulator.Source(i) }

// Limits turns the rate limit and fault injection on or off (they start on); setup and checks
// run with them off so that only the rotations pay for them.
func (r *Registry) Limits(on bool) { r.off.Store(!on) }

// Close stops the emulator.
func (r *Registry) Close() { r.Emulator.Close() }
