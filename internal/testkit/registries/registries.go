// Package registries describes each emulated upstream registry once, for every part of the test
// kit that needs one: the demo's local cloud, the benchmarks, the fault-injection tests, the
// end-to-end tests and the upstream conformance suite. A Descriptor says what a registry is and
// can do and how to start its emulator with an account the upstream can mint from; the Emulator
// it starts answers the questions those callers ask (the source secret for a managed secret,
// which credential a version holds, which credentials are still held, does this one log in),
// so that none of them has to branch on a registry's name.
//
// Adding a registry to the test kit is one file here (see dockerhub.go) and one line in All.
package registries

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/pinned"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/registryauth"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/acremu"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/chainguardemu"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/dockerhubemu"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/emukit"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/ghcremu"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/gitlabemu"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/stsemu"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
	"github.com/ptc-credentials/ptc-credentials/internal/webidentity"
)

// All returns every registry the real functions are run against (the demo's local cloud, the
// benchmarks), in the order they report them.
func All() []*Descriptor { return []*Descriptor{DockerHub, ACR, GHCR, GitLab} }

// Federated returns the registries minted through IAM outbound identity federation. They run
// in-process (conformance suite, fault matrix) with an emulated STS; the local cloud's real
// functions need the loopback stand-in list for their pinned hosts first (see the issue's
// hand-over notes), so All leaves them out for now.
func Federated() []*Descriptor { return []*Descriptor{Chainguard} }

// ByName returns the registry whose ECR UpstreamRegistry value is name.
func ByName(name string) (*Descriptor, bool) {
	for _, d := range append(All(), Federated()...) {
		if d.Name == name {
			return d, true
		}
	}
	return nil, false
}

// Names returns the ECR UpstreamRegistry value of every registry, in All's order.
func Names() []string {
	var out []string
	for _, d := range All() {
		out = append(out, d.Name)
	}
	return out
}

// Capabilities are what a registry can and cannot do. Callers branch on them, never on a name.
type Capabilities struct {
	// Mints: the rotator creates every credential itself. False for GHCR, where a person stages
	// the next one in the source secret (Descriptor.Stage) and the rotator verifies it.
	Mints bool
	// Labels: credentials carry the ptc- label of their version (ptcsecret.Label), so they are
	// listed and revoked by label (Docker Hub, GitLab).
	Labels bool
	// Slots: the credential is one of a fixed number of password slots, recorded as a custom
	// staging label on its version (ACR; Descriptor.Stages).
	Slots bool
	// Revokes: a credential two generations old stops working, and deleting the resource makes
	// every credential of the secret stop working. False for GHCR: PATs belong to a person.
	Revokes bool
	// KeepsRevoked: the emulator keeps revoked credentials on record (GitLab), so Credentials
	// lists them with Held false instead of forgetting them.
	KeepsRevoked bool
	// SharedSource: one source secret can mint for any number of managed secrets (one account
	// minting many tokens). False where each managed secret needs its own (an ACR token, a PAT).
	SharedSource bool
	// Replicates: a new credential is refused for a while after it is made (ACR's password
	// replication, Options.ReplicationDelay); the rotator waits it out.
	Replicates bool
}

// Descriptor is one upstream registry as the test kit knows it. The values are the package
// variables DockerHub, ACR, GHCR and GitLab; nothing else in the test kit holds per-registry
// knowledge.
type Descriptor struct {
	// Name is ECR's UpstreamRegistry value and the ptc:upstream tag, e.g. "docker-hub".
	Name string
	// Title is how people call it, e.g. "Docker Hub".
	Title string
	// Short names its emulator in call logs, e.g. "hub" (tests/faults' "hub:POST /v2/…").
	Short string
	// Prefix is the ECR repository prefix the demo gives its rule.
	Prefix string
	// Emulates lists what the one emulator plays, e.g. "GitHub (API, ghcr.io)".
	Emulates string
	// Org is the upstream organization whose tokens the credentials are, where the registry
	// caps them per organization (Docker Hub organization access tokens); "" otherwise.
	Org string
	// Provider is the product's upstream descriptor.
	Provider upstream.Provider
	// Can says what the registry can and cannot do.
	Can Capabilities
	// Stages are the custom staging labels the upstream records on versions (ACR's slot
	// labels); each may sit on one version at most.
	Stages []string

	// SourceWhat says what the source secret holds, never its value (demo narrative).
	SourceWhat string
	// RevokedHow says how a credential two generations old was invalidated, e.g. "deleted".
	RevokedHow string
	// NoRevocation says why nothing is ever revoked (registries that cannot revoke).
	NoRevocation string
	// DeleteNote says what deleting the resource does to credentials that carry no label.
	DeleteNote string
	// StagedHow says how a person staged credential %s (registries that cannot mint).
	StagedHow string
	// ReplicationNote explains the replication delay %s (registries that replicate).
	ReplicationNote string

	// NewServer creates the emulator with the account the source secrets use, sets e.SourceSecret
	// to the minting credential and e's typed emulator field, and returns the handler to serve.
	NewServer func(e *Emulator) http.Handler
	// SourceFor returns the source secret fields for managed secret n (0 is the first), making
	// in the emulator what a person makes for it (an ACR token, a GHCR PAT). Called once per n.
	SourceFor func(e *Emulator, n int) map[string]any
	// WrongSource returns source secret fields whose minting credential is wrong, a value the
	// registry does not know.
	WrongSource func(e *Emulator, wrong string) map[string]any
	// Stage is what a person does before a rotation where the registry cannot mint: create the
	// next credential for managed secret n. It returns the credential and the source secret
	// fields holding it. Nil for registries that mint.
	Stage func(e *Emulator, n int) (Credential, map[string]any)
	// Credentials lists every credential the emulator has on record for the managed secret
	// whose ptcsecret.Key is key; key "" lists every credential of the emulator. Registries
	// without labels cannot tell secrets apart and list every credential of the first managed
	// secret's account.
	Credentials func(e *Emulator, key string) []Credential
	// Describe names the credential version v of the secret with key holds (a token label, an
	// ACR token/slot, "PAT #n"), never its value; when the registry has no such credential on
	// record it says so in parentheses, e.g. "(no labelled token!)".
	Describe func(e *Emulator, key string, v Version) string
	// Planted returns every secret value the emulator knows: the source credential and every
	// credential it issued, revoked ones included. Leak scans look for each.
	Planted func(e *Emulator) []string
	// IsAPI reports whether a request path is the registry's token or identity API rather than
	// its OCI registry (the login check).
	IsAPI func(path string) bool

	// minting is the minting-mode descriptor a Staged one derives from (nil otherwise).
	minting *Descriptor
	// Holds reports whether credential c on record is the one value v holds; nil means c.Secret
	// equals v.AccessToken. Registries that never see the secret they verify (Chainguard's pull
	// token JWT, signed by a key only the upstream had) check it cryptographically instead.
	Holds func(e *Emulator, c Credential, v ptcsecret.Value) bool
	// Federated: the upstream mints with the function role's web identity token, so Start also
	// runs an AWS STS emulator (Emulator.STS) and hands every upstream built from Provider a
	// web identity source for it, and the emulator's URL as a stand-in for the pinned hosts.
	Federated bool
}

// Credential is one credential the emulator has on record. Secret is secret: never print it.
type Credential struct {
	// Name is how the registry names it: the token label, "<ACR token>/password1", "PAT #2".
	Name string
	// Version is the secret version its label names ("" where the registry cannot label).
	Version string
	// Username and Secret are what logs in with it.
	Username, Secret string
	// Held reports whether the registry still holds it (stored, not revoked, in its slot).
	Held bool
}

// Value is the credential as the managed secret stores it.
func (c Credential) Value() ptcsecret.Value {
	return ptcsecret.Value{Username: c.Username, AccessToken: c.Secret}
}

// Fingerprint identifies the credential by name, state and a hash of its secret, so two
// snapshots can be compared and printed without showing a secret.
func (c Credential) Fingerprint() string {
	h := sha256.Sum256([]byte(c.Secret))
	return fmt.Sprintf("%s[held=%v #%s]", c.Name, c.Held, hex.EncodeToString(h[:4]))
}

// Version is one version of a managed secret, as Describe and CheckAtRest read it.
type Version struct {
	// ID is the version id.
	ID string
	// Stages are its staging labels (ACR's slot label among them).
	Stages []string
	// Value is what it stores. Value.AccessToken is secret: never print it.
	Value ptcsecret.Value
}

// Fault is one injected failure of the emulator (emukit.Recorder.Inject): the next Times
// requests with Method (empty: any) whose path starts with Prefix answer Status.
type Fault struct {
	// Method is the HTTP method to fail (empty: any); Prefix starts the paths to fail.
	Method, Prefix string
	// Status is the answer; Times how many requests get it.
	Status, Times int
}

// Options configure Start. The zero value is an emulator on the real clock behind its own
// httptest server.
type Options struct {
	// Now is the emulator's clock (token lifetimes, replication); nil means time.Now.
	Now func() time.Time
	// ReplicationDelay is how long a new credential is refused (registries that replicate).
	ReplicationDelay time.Duration
	// Faults are injected before the emulator serves its first request.
	Faults []Fault
	// Wrap stands in front of the emulator (a meter, a rate limit, a hang); nil: nothing.
	Wrap func(http.Handler) http.Handler
	// Serve serves the handler and returns its base URL; nil means an httptest server that
	// Emulator.Close stops.
	Serve func(http.Handler) (string, error)
	// Source edits every source secret the emulator hands out: each field replaces the one of
	// that name, a nil value removes it (e.g. GitLab's projectId instead of groupId).
	Source map[string]any
	// STS and STSURL are a running AWS STS emulator (and issuer) a federated registry trusts
	// instead of starting its own: the local cloud's, which the real functions call. Emulator's
	// WebIdentity stays nil then (the caller's functions sign their own requests).
	STS    *stsemu.Server
	STSURL string
	// TrustedRoles are the IAM role ARNs a federated registry trusts (an Entra federated
	// credential each; one Chainguard assumable identity with a subject pattern); nil means
	// FederationRole.
	TrustedRoles []string
}

// Emulator is one running registry emulator with its account. Create it with Start.
type Emulator struct {
	// Descriptor is the registry it plays.
	*Descriptor
	// Recorder is the emulator's request log and fault injection (every emulator embeds one).
	*emukit.Recorder
	// URL serves the token API and the registry; it is the rule's UpstreamRegistryUrl.
	URL string
	// CheckRepository is a repository every managed credential may pull, for login checks.
	CheckRepository string
	// SourceSecret is the minting credential of the first source secret (password, client
	// secret, owner token, first PAT). Secret: never print.
	SourceSecret string

	// The emulator itself: the one of its registry is set, for checks only it can make.
	Hub    *dockerhubemu.Server // Docker Hub
	ACR    *acremu.Server       // Azure (Entra ID, ARM, ACR)
	GHCR   *ghcremu.Server      // GitHub (API, ghcr.io)
	GitLab *gitlabemu.Server    // GitLab (API, registry)
	// Chainguard (STS, IAM API, cgr.dev).
	Chainguard *chainguardemu.Server

	// STS is the AWS STS emulator and issuer of federated registries, WebIdentity a source of
	// the function role's tokens from it (through the real SDK client), STSURL its URL.
	STS         *stsemu.Server
	WebIdentity webidentity.Source
	STSURL      string

	// Options are the options it was started with.
	Options Options

	mu      sync.Mutex
	sources map[int]map[string]any
	staged  int              // credentials made by SourceFor and Stage on registries that cannot mint
	made    []madeCredential // credentials a person made for staged mode (staged.go)
	close   func()
}

// Start creates the registry's emulator with its account, applies the options and serves it.
func (d *Descriptor) Start(opts Options) (*Emulator, error) {
	e := &Emulator{Descriptor: d, Options: opts, sources: map[int]map[string]any{}, close: func() {}}
	closeSTS := func() {}
	if d.Federated {
		closeSTS = e.startSTS()
	}
	var h http.Handler = d.NewServer(e)
	for _, f := range opts.Faults {
		e.Inject(f.Method, f.Prefix, f.Status, f.Times)
	}
	if opts.Wrap != nil {
		h = opts.Wrap(h)
	}
	if opts.Serve != nil {
		u, err := opts.Serve(h)
		if err != nil {
			closeSTS()
			return nil, fmt.Errorf("serving the %s emulator: %w", d.Title, err)
		}
		e.URL = u
		e.close = closeSTS
	} else {
		srv := httptest.NewServer(h)
		e.URL, e.close = srv.URL, func() { srv.Close(); closeSTS() }
	}
	if d.Federated {
		e.federate()
	}
	return e, nil
}

// holds applies Descriptor.Holds, or compares the secret.
func (e *Emulator) holds(c Credential, v ptcsecret.Value) bool {
	if e.Holds != nil {
		return e.Holds(e, c, v)
	}
	return c.Secret == v.AccessToken
}

// HoldsValue reports whether credential c on record is the one v holds (Descriptor.Holds).
func (e *Emulator) HoldsValue(c Credential, v ptcsecret.Value) bool { return e.holds(c, v) }

// MustStart is Start for tests: it fails t on error and stops the emulator when t ends.
func (d *Descriptor) MustStart(t interface {
	Helper()
	Fatal(...any)
	Cleanup(func())
}, opts Options) *Emulator {
	t.Helper()
	e, err := d.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

// Standins lists the emulator's endpoint as the one loopback server that may stand in for the
// registry's pinned hosts (upstream.Options.Standins; awsenv.LoopbackStandinsVar for a
// bootstrap). The emulator serves the registry, its token realm and its API on that one URL.
func (e *Emulator) Standins() pinned.Standins { return pinned.NewStandins(e.URL) }

// Close stops the emulator's server when Start made it (Options.Serve unset).
func (e *Emulator) Close() { e.close() }

// now is the emulator's clock.
func (e *Emulator) now() time.Time {
	if e.Options.Now != nil {
		return e.Options.Now()
	}
	return time.Now()
}

// Source returns the source secret JSON for managed secret n (0 is the first), creating in the
// emulator what it needs the first time. Secret: never print.
func (e *Emulator) Source(n int) string {
	e.mu.Lock()
	fields, ok := e.sources[n]
	e.mu.Unlock()
	if !ok {
		fields = e.SourceFor(e, n)
		e.mu.Lock()
		if prev, again := e.sources[n]; again {
			fields = prev
		} else {
			e.sources[n] = fields
		}
		e.mu.Unlock()
	}
	return e.encode(fields)
}

// WrongSourceJSON is a source secret like managed secret 0's whose minting credential is wrong.
func (e *Emulator) WrongSourceJSON(wrong string) string { return e.encode(e.WrongSource(e, wrong)) }

// StageNext is what a person does before a rotation of managed secret n where the registry
// cannot mint: create the next credential. It returns the credential and the source secret JSON
// holding it; ok is false for registries that mint (nothing to stage).
func (e *Emulator) StageNext(n int) (c Credential, source string, ok bool) {
	if e.Stage == nil {
		return Credential{}, "", false
	}
	c, fields := e.Stage(e, n)
	return c, e.encode(fields), true
}

// encode applies Options.Source to fields and returns the JSON. Every source of the test world
// allows every managed secret (its upstream.BindingField lists the whole prefix); a test of the
// binding sets the field, or removes it with nil, through Options.Source.
func (e *Emulator) encode(fields map[string]any) string {
	m := map[string]any{upstream.BindingField: []string{ptcsecret.Prefix}}
	for k, v := range fields {
		m[k] = v
	}
	for k, v := range e.Options.Source {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err) // strings, numbers and lists always encode
	}
	return string(b)
}

// Login runs the registry's OCI token handshake with cred, as ECR does when it pulls. nil: the
// registry accepted it; errors.Is(err, registryauth.ErrBadCredentials): it refused it.
func (e *Emulator) Login(ctx context.Context, cred ptcsecret.Value) error {
	return registryauth.Check(ctx, nil, registryauth.Target{Registry: e.URL, Repository: e.CheckRepository},
		registryauth.Credential{Username: cred.Username, Password: cred.AccessToken})
}

// Held returns the credentials the registry still holds for the managed secret with key.
func (e *Emulator) Held(key string) []Credential {
	var out []Credential
	for _, c := range e.Credentials(e, key) {
		if c.Held {
			out = append(out, c)
		}
	}
	return out
}

// Labelled returns the label of every held credential labelled for the secret with key, by
// version id (registries without labels: none).
func (e *Emulator) Labelled(key string) map[string]string {
	out := map[string]string{}
	for _, c := range e.Held(key) {
		if c.Version != "" {
			out[c.Version] = c.Name
		}
	}
	return out
}

// Fingerprints renders every credential on record for the secret with key, without secrets,
// in a stable order: equal before and after means nothing was minted, revoked or changed.
func (e *Emulator) Fingerprints(key string) []string {
	var out []string
	for _, c := range e.Credentials(e, key) {
		out = append(out, c.Fingerprint())
	}
	slices.Sort(out)
	return out
}

// DescribeVersion names the credential version v of the secret with key holds (see
// Descriptor.Describe).
func (e *Emulator) DescribeVersion(key string, v Version) string { return e.Describe(e, key, v) }

// PlantedSecrets returns every secret value the emulator knows (see Descriptor.Planted).
func (e *Emulator) PlantedSecrets() []string { return e.Planted(e) }

// Staged is how many credentials a person made in the emulator through Source and StageNext
// (registries that cannot mint).
func (e *Emulator) Staged() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.staged
}

func (e *Emulator) noteStaged() {
	e.mu.Lock()
	e.staged++
	e.mu.Unlock()
}

// CheckAtRest returns what is wrong with the credentials the registry holds for the secret with
// key after a finished rotation (none: nil). current and previous are the AWSCURRENT and
// AWSPREVIOUS versions. Both must be held, holding their values; a registry that revokes holds
// nothing else for the secret, each credential once; one that cannot revoke has revoked
// nothing, and (when it cannot mint either) holds exactly the credentials a person made.
func (e *Emulator) CheckAtRest(key string, current, previous Version) []string {
	var problems []string
	all := e.Credentials(e, key)
	held := map[string]Credential{}
	for _, c := range all {
		if c.Held {
			held[c.Name] = c
		}
	}
	for _, v := range []struct {
		stage string
		v     Version
	}{{ptcsecret.StageCurrent, current}, {ptcsecret.StagePrevious, previous}} {
		name := e.Describe(e, key, v.v)
		c, ok := held[name]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("%s %s: %s holds no credential %s", v.stage, v.v.ID, e.Title, name))
		case !e.holds(c, v.v.Value):
			problems = append(problems, fmt.Sprintf("%s %s: %s's credential %s does not hold its value", v.stage, v.v.ID, e.Title, name))
		}
	}
	if e.Can.Revokes {
		seen := map[string]bool{}
		for _, c := range all {
			if !c.Held {
				continue
			}
			if e.Can.Labels {
				if strings.HasPrefix(c.Name, ptcsecret.LabelPrefix(key)) && c.Version == "" {
					problems = append(problems, fmt.Sprintf("%s token label %q is this secret's but names no version", e.Title, c.Name))
				} else if c.Version != current.ID && c.Version != previous.ID {
					problems = append(problems, fmt.Sprintf("%s token of version %s is left over (current %s, previous %s)", e.Title, c.Version, current.ID, previous.ID))
				}
			}
			if !e.holds(c, current.Value) && !e.holds(c, previous.Value) {
				problems = append(problems, fmt.Sprintf("%s credential %s is neither AWSCURRENT's nor AWSPREVIOUS's", e.Title, c.Name))
			}
			id := c.Secret
			if e.Can.Labels {
				id = c.Version
			}
			if seen[id] {
				problems = append(problems, fmt.Sprintf("%s holds two credentials like %s (same version or value)", e.Title, c.Name))
			}
			seen[id] = true
		}
	} else {
		for _, c := range all {
			if !c.Held {
				problems = append(problems, fmt.Sprintf("%s credential %s was revoked: the rotator must never revoke one", e.Title, c.Name))
			}
		}
		if !e.Can.Mints && len(all) != e.Staged() {
			problems = append(problems, fmt.Sprintf("%s has %d credentials, a person made %d", e.Title, len(all), e.Staged()))
		}
	}
	return problems
}

// randomSecret returns prefix plus n random hex digits: distinctive values, different on every
// Start, so a leak scan knows exactly what to look for.
func randomSecret(prefix string, n int) string {
	b := make([]byte, (n+1)/2)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)[:n]
}

// versionOf returns the version a label names for the secret with key ("" when none).
func versionOf(key, label string) string {
	if key == "" {
		return ""
	}
	v, _ := ptcsecret.VersionFromLabel(key, label)
	return v
}

// ofSecret reports whether label belongs to the secret with key (key "": every label).
func ofSecret(key, label string) bool {
	return key == "" || strings.HasPrefix(label, ptcsecret.LabelPrefix(key))
}
