// Package pinning plays the attacker of finding H2 (docs/security.md) against every upstream:
// someone who can set a managed secret's ptc:registry-url tag, a source URL field, or answer as
// a registry, tries to make the rotator send a fresh token or a minting credential to a host of
// theirs. The attacker's host is a loopback server that the stand-ins do not list — only the
// honest emulator is listed (pinned.Standins) — so it is refused exactly as a real foreign host
// would be, and the tests can count what reached it.
package pinning

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/ptc-credentials/ptc-credentials/internal/pinned"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/rotation"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/registries"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/rotationtest"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/upstreamtest"
)

var moto *testenv.Moto

func TestMain(m *testing.M) { os.Exit(testenv.RunWithMoto(m, &moto)) }

// attacker is a host the functions must never reach: it answers everything with 200 and a
// token (the most helpful answer for an attack) and counts what it received.
type attacker struct {
	*httptest.Server
	hits atomic.Int32
}

func newAttacker(t *testing.T) *attacker {
	a := &attacker{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"token":"attacker-token","access_token":"attacker-token","login":"x"}`))
	}))
	t.Cleanup(a.Close)
	return a
}

// mustGetNothing fails the test if the attacker's host received any request.
func (a *attacker) mustGetNothing(t *testing.T) {
	t.Helper()
	if n := a.hits.Load(); n != 0 {
		t.Fatalf("the attacker's host received %d requests (a credential went with them)", n)
	}
}

// unchanged checks the victim after the attack: AWSCURRENT is the same version with the same
// value and still logs in, and the registry minted or revoked nothing.
type unchanged struct {
	id    string
	value ptcsecret.Value
	creds []string
}

func snapshot(f *upstreamtest.Fixture) unchanged {
	id, v := f.Current()
	return unchanged{id: id, value: v, creds: f.E.Fingerprints("")}
}

func (u unchanged) check(t *testing.T, f *upstreamtest.Fixture) {
	t.Helper()
	id, v := f.Current()
	if id != u.id || v != u.value {
		t.Errorf("AWSCURRENT changed: %s -> %s", u.id, id)
	}
	if got := f.E.Fingerprints(""); strings.Join(got, ",") != strings.Join(u.creds, ",") {
		t.Errorf("the registry's credentials changed:\nbefore %v\nafter  %v", u.creds, got)
	}
	f.CurrentLogsIn("after the attack")
}

func retag(t *testing.T, f *upstreamtest.Fixture, key, value string) {
	t.Helper()
	if _, err := f.SM.TagResource(f.Ctx, &secretsmanager.TagResourceInput{
		SecretId: aws.String(f.ARN), Tags: []smtypes.Tag{{Key: aws.String(key), Value: aws.String(value)}},
	}); err != nil {
		t.Fatal(err)
	}
}

// (a) Whoever may tag the managed secret points ptc:registry-url at their host, so that
// testSecret's login check would send the new token there. The guard refuses before any step
// reads the source secret, naming the tag and the registry's hosts.
func TestRegistryTagNamingAnotherHostIsRefusedAtTheGuard(t *testing.T) {
	for _, d := range registries.All() {
		t.Run(d.Name, func(t *testing.T) {
			f := upstreamtest.New(t, moto, d, upstreamtest.Options{})
			evil := newAttacker(t)
			token := f.Begin()
			before := snapshot(f)
			retag(t, f, ptcsecret.TagRegistryURL, evil.URL)
			for _, step := range []rotation.Step{rotation.CreateSecret, rotation.TestSecret} {
				err := f.Step(step, token)
				if err == nil {
					t.Fatalf("%s ran with ptc:registry-url on another host", step)
				}
				for _, want := range []string{"tag " + ptcsecret.TagRegistryURL, d.Provider.RegistryHosts.String()} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("%s: refusal %q does not name %q", step, err, want)
					}
				}
				if strings.Contains(err.Error(), f.SourceARN) {
					t.Errorf("%s: refused only after the source secret was read (%q); the guard must refuse first", step, err)
				}
			}
			evil.mustGetNothing(t)
			before.check(t, f)
		})
	}
}

// sourceURLFields are the source secret fields that name an upstream host, per registry.
var sourceURLFields = map[string][]string{
	ptcsecret.UpstreamDockerHub: {"apiUrl"},
	ptcsecret.UpstreamGHCR:      {"apiUrl"},
	ptcsecret.UpstreamGitLab:    {"apiUrl"},
	ptcsecret.UpstreamACR:       {"authorityUrl", "managementUrl", "loginServer"},
}

// (c) A source secret field naming another host (a source edited by mistake, or by someone who
// may write it but should not reach the token API's credential): refused before any call,
// naming the field.
func TestSourceURLNamingAnotherHostIsRefusedBeforeAnyCall(t *testing.T) {
	for _, d := range registries.All() {
		if len(sourceURLFields[d.Name]) == 0 {
			t.Errorf("%s: list its source URL fields in sourceURLFields", d.Name)
		}
		for _, field := range sourceURLFields[d.Name] {
			t.Run(d.Name+"/"+field, func(t *testing.T) {
				f := upstreamtest.New(t, moto, d, upstreamtest.Options{})
				evil := newAttacker(t)
				var src map[string]any
				if err := json.Unmarshal([]byte(f.E.Source(0)), &src); err != nil {
					t.Fatal(err)
				}
				src[field] = evil.URL
				doc, _ := json.Marshal(src)
				f.PutSource(string(doc))
				token := f.Begin()
				before := snapshot(f)
				f.E.ResetCalls()
				err := f.Step(rotation.CreateSecret, token)
				if err == nil || !strings.Contains(err.Error(), `field "`+field+`"`) || !strings.Contains(err.Error(), pinned.ErrNotPinned.Error()) {
					t.Fatalf("createSecret with %s on another host: %v; want a refusal naming the field", field, err)
				}
				if calls := f.E.Calls(); len(calls) != 0 {
					t.Errorf("the upstream was called before the refusal: %v", calls)
				}
				evil.mustGetNothing(t)
				before.check(t, f)
			})
		}
	}
}

var realmRE = regexp.MustCompile(`realm="[^"]*"`)

// realmTo makes the emulator's /v2/ challenge name realm while on is set: the answer a
// compromised registry, or anyone on its path, would give to collect the Basic credential.
func realmTo(realm string, on *atomic.Bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if on.Load() && strings.TrimRight(r.URL.Path, "/") == "/v2" {
				w = &headerRewriter{ResponseWriter: w, rewrite: func(h http.Header) {
					if v := h.Get("WWW-Authenticate"); v != "" {
						h.Set("WWW-Authenticate", realmRE.ReplaceAllString(v, `realm="`+realm+`"`))
					}
				}}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// headerRewriter edits the headers of an answer just before they are sent.
type headerRewriter struct {
	http.ResponseWriter
	rewrite func(http.Header)
	done    bool
}

func (w *headerRewriter) WriteHeader(code int) {
	if !w.done {
		w.done = true
		w.rewrite(w.Header())
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *headerRewriter) Write(b []byte) (int, error) {
	if !w.done {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// (d) The registry's /v2/ challenge names a token realm on the attacker's host. go-containerregistry
// would send the Basic credential (the fresh token) there — it refuses only private IP literals,
// and "localhost" is a name — and the attacker's 200 with a token would pass the check
// silently. The pinned transport refuses the realm: testSecret fails, nothing reaches the
// attacker, AWSCURRENT stays.
func TestRealmOnAnotherHostGetsNoCredential(t *testing.T) {
	for _, d := range registries.All() {
		t.Run(d.Name, func(t *testing.T) {
			evil := newAttacker(t)
			port := evil.URL[strings.LastIndex(evil.URL, ":")+1:]
			var on atomic.Bool
			f := upstreamtest.New(t, moto, d, upstreamtest.Options{Emulator: registries.Options{Wrap: realmTo("http://localhost:"+port+"/token", &on)}})
			f.StageNext() // registries that cannot mint: a person staged the next token
			token := f.Begin()
			r := f.Rotator()
			for _, step := range []rotation.Step{rotation.CreateSecret, rotation.SetSecret} {
				if err := f.StepWith(r, step, token); err != nil {
					t.Fatalf("%s: %v", step, err)
				}
			}
			before := snapshot(f)
			on.Store(true)
			err := f.StepWith(r, rotation.TestSecret, token)
			on.Store(false)
			if err == nil {
				t.Fatal("testSecret passed with the token realm on the attacker's host")
			}
			if !strings.Contains(err.Error(), "localhost:"+port) || !strings.Contains(err.Error(), "sends credentials only to") {
				t.Errorf("error %q does not say which host was refused and why", err)
			}
			evil.mustGetNothing(t)
			before.check(t, f)
		})
	}
}

// (e) Answers that name the next URL to call: ARM's long-running generateCredentials
// (Location) and GitLab's keyset pagination (Link). Pointed at the attacker's host they must
// carry no bearer token or PRIVATE-TOKEN there (pollURL and nextPage refuse another host, and
// under them the pinned transport would too: see the acr and gitlab packages'
// ...AtTheTransport tests).
func TestNextURLOnAnotherHostGetsNoCredential(t *testing.T) {
	for _, tc := range []struct {
		d       *registries.Descriptor
		rewrite func(evil string) func(http.Handler) http.Handler
		// refused: the step fails, naming the other host (ACR cannot finish the operation);
		// otherwise the rotation either completes without following the link (GitLab lists
		// what the first page held) or fails naming the host, and AWSCURRENT logs in.
		refused bool
	}{
		{d: registries.ACR, refused: true, rewrite: func(evil string) func(http.Handler) http.Handler {
			return func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/generateCredentials") {
						w.Header().Set("Location", evil+"/subscriptions/x/providers/Microsoft.ContainerRegistry/locations/eastus/operationResults/1")
						w.Header().Set("Retry-After", "0")
						w.WriteHeader(http.StatusAccepted)
						return
					}
					next.ServeHTTP(w, r)
				})
			}
		}},
		{d: registries.GitLab, rewrite: func(evil string) func(http.Handler) http.Handler {
			return func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/access_tokens") {
						w = &headerRewriter{ResponseWriter: w, rewrite: func(h http.Header) {
							h.Del("X-Next-Page")
							h.Set("Link", `<`+evil+r.URL.Path+`?page=2&per_page=100>; rel="next"`)
						}}
					}
					next.ServeHTTP(w, r)
				})
			}
		}},
	} {
		t.Run(tc.d.Name, func(t *testing.T) {
			evil := newAttacker(t)
			var on atomic.Bool
			rewrite := tc.rewrite(evil.URL)
			wrap := func(next http.Handler) http.Handler {
				bad := rewrite(next)
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if on.Load() {
						bad.ServeHTTP(w, r)
						return
					}
					next.ServeHTTP(w, r)
				})
			}
			f := upstreamtest.New(t, moto, tc.d, upstreamtest.Options{Emulator: registries.Options{Wrap: wrap}})
			token := f.Begin()
			before := snapshot(f)
			on.Store(true)
			r := f.Rotator()
			var err error
			for _, step := range rotationtest.Steps {
				if err = f.StepWith(r, step, token); err != nil {
					break
				}
			}
			on.Store(false)
			evil.mustGetNothing(t)
			evilHost := strings.TrimPrefix(evil.URL, "http://")
			if tc.refused {
				if err == nil || !strings.Contains(err.Error(), evilHost) {
					t.Fatalf("rotation: %v; want a refusal naming the other host", err)
				}
				before.check(t, f)
				return
			}
			if err != nil && !strings.Contains(err.Error(), evilHost) {
				t.Fatalf("rotation: %v", err)
			}
			f.CurrentLogsIn("after the rotation")
		})
	}
}
