package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/ptc-credentials/ptc-credentials/internal/rotation"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/benchkit"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
)

// TestLocalSMAgreesWithMoto: the benchmarks report the rotator against localsm (sm=local) as "the
// rotator's own cost", which is honest only if the rotator makes the same calls and ends in the
// same state against both. Three rotations per registry (the third revokes a token), warm and
// cold. (localsm's answers themselves are held to moto's by localsm's conformance test.)
func TestLocalSMAgreesWithMoto(t *testing.T) {
	ctx := testenv.Context(t)
	for _, name := range benchkit.Registries {
		for _, warm := range []bool{true, false} {
			t.Run(name+map[bool]string{true: "/warm", false: "/cold"}[warm], func(t *testing.T) {
				type outcome struct {
					calls    map[string]int
					upstream int
					layout   []string
				}
				var got []outcome
				for _, be := range backends() {
					reg, err := benchkit.NewRegistry(name, benchkit.RegistryOptions{})
					if err != nil {
						t.Fatal(err)
					}
					defer reg.Close()
					m, err := benchkit.Setup(ctx, be, reg, 0, "")
					if err != nil {
						t.Fatalf("%s: %v", be.Name(), err)
					}
					counts := &benchkit.Counts{}
					newEnv := func() *rotation.Rotator {
						return benchkit.NewRotator(benchkit.CountingSM{Inner: be.SM(), Counts: counts}, reg.Standins())
					}
					var tokens []string
					for i := range 3 {
						token := benchkit.NewID()
						if err := be.Begin(ctx, m.ARN, token); err != nil {
							t.Fatalf("%s: %v", be.Name(), err)
						}
						if i == 2 {
							counts.Reset()
							reg.Meter.Reset()
						}
						if err := benchkit.RunSteps(ctx, m.ARN, token, warm, newEnv); err != nil {
							t.Fatalf("%s rotation %d: %v", be.Name(), i+1, err)
						}
						tokens = append(tokens, token)
					}
					if cur, err := benchkit.CurrentVersion(ctx, be, m.ARN); err != nil || cur != tokens[2] {
						t.Fatalf("%s: AWSCURRENT is %s (%v), want %s", be.Name(), cur, err, tokens[2])
					}
					got = append(got, outcome{counts.Snapshot(), reg.Meter.Total(), stageLayout(t, ctx, be, m.ARN, tokens)})
				}
				moto, local := got[0], got[1]
				if !mapsEqual(moto.calls, local.calls) || moto.upstream != local.upstream {
					t.Errorf("moto: SM %v, %d upstream calls; localsm: SM %v, %d upstream calls", moto.calls, moto.upstream, local.calls, local.upstream)
				}
				if !slices.Equal(moto.layout, local.layout) {
					t.Errorf("stage layout after three rotations: moto %v, localsm %v", moto.layout, local.layout)
				}
			})
		}
	}
}

// stageLayout describes the labels of the three rotations' versions (by index) and of any other
// listed version, so moto and localsm can be compared without their ids.
func stageLayout(t *testing.T, ctx context.Context, be benchkit.Backend, arn string, tokens []string) []string {
	t.Helper()
	d, err := be.SM().DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for id, st := range d.VersionIdsToStages {
		if len(st) == 0 {
			continue // moto lists deprecated versions; AWS and localsm do not
		}
		st = slices.Clone(st)
		slices.Sort(st)
		who := "other"
		if i := slices.Index(tokens, id); i >= 0 {
			who = "rotation" + string(rune('1'+i))
		}
		out = append(out, who+"="+strings.Join(st, "+"))
	}
	slices.Sort(out)
	return out
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestRateLimiterAndFaults checks the wrappers the scale simulation relies on.
func TestRateLimiterAndFaults(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	api := func(*http.Request) benchkit.Class { return benchkit.ClassAPI }
	m := &benchkit.Meter{Classify: api, Next: &benchkit.RateLimiter{Next: ok, Classify: api, Requests: 3, Window: time.Hour}}
	var codes []int
	var retryAfter string
	for range 5 {
		rec := httptest.NewRecorder()
		m.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/x", nil))
		codes = append(codes, rec.Code)
		if rec.Code == http.StatusTooManyRequests {
			retryAfter = rec.Header().Get("Retry-After")
		}
	}
	if !slices.Equal(codes, []int{200, 200, 200, 429, 429}) || retryAfter == "" {
		t.Fatalf("codes %v, Retry-After %q", codes, retryAfter)
	}
	if s := m.Snapshot(); s[benchkit.KeyRateLimited] != 2 || s[benchkit.KeyAPIAccepted] != 3 || s[benchkit.KeyAPI] != 5 {
		t.Fatalf("meter %v", s)
	}

	served := 0
	count := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { served++; w.WriteHeader(http.StatusOK) })
	f := &benchkit.Meter{Classify: api, Next: &benchkit.FaultInjector{Next: count, Fraction: 0.05, LostFraction: 0.5, Seed: 7}}
	for range 4000 {
		f.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/x", nil))
	}
	s := f.Snapshot()
	if s[benchkit.KeyInjected5xx] < 150 || s[benchkit.KeyInjected5xx] > 250 || s[benchkit.KeyLostResponse] == 0 || served != 4000-s[benchkit.KeyInjected5xx]+s[benchkit.KeyLostResponse] {
		t.Fatalf("faults %v, served %d", s, served)
	}
}

func TestPackageOf(t *testing.T) {
	for sym, want := range map[string]string{
		"github.com/aws/aws-sdk-go-v2/service/secretsmanager.(*Client).GetSecretValue": "github.com/aws/aws-sdk-go-v2/service/secretsmanager",
		"type:*net/http.Client":                 "net/http",
		"go:itab.*os.File,io.Reader":            "os",
		"runtime.mallocgc":                      "runtime",
		"go:func.*":                             "",
		"type:map[string]int":                   "",
		"gopkg.in/yaml%2ev3.(*parser).parse":    "gopkg.in/yaml%2ev3",
		"slices.Sort[go.shape.[]string,string]": "slices",
	} {
		if got := benchkit.PackageOf(sym); got != want {
			t.Errorf("benchkit.PackageOf(%q) = %q, want %q", sym, got, want)
		}
	}
}

func TestSummarize(t *testing.T) {
	s := benchkit.Summarize([]float64{5, 1, 4, 2, 3})
	if s.Median != 3 || s.Min != 1 || s.Max != 5 || s.N != 5 {
		t.Fatalf("%+v", s)
	}
	if s := benchkit.Summarize([]float64{1, 2, 3, 4}); s.Median != 2.5 {
		t.Fatalf("even median %+v", s)
	}
}
