package e2e

import (
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"
)

// BenchmarkColdStart measures, for each bootstrap, a cold start under aws-lambda-rie: from
// starting the RIE process to the answer of the first invocation (RIE starts the runtime only
// when that invocation arrives). Each iteration starts a fresh RIE and bootstrap. The first event
// is one each function rejects before any network call (a rotation event without Step; a
// custom-resource request without ResponseURL), so the figure is process start, Go runtime and
// SDK configuration, Runtime API handshake and one trivial invocation — no AWS round trip.
//
// Reported: median/min/max of that wall time ("start-to-answer"), and of the runtime's own init
// as RIE logs it ("INIT REPORT(durationMs: …)": the bootstrap's start until its first
// /runtime/invocation/next — the "ready for the first event" of docs/design.md §9). Nothing is
// asserted. Run 20 cold starts of each with:
//
//	go test -run '^$' -bench ColdStart -benchtime 20x ./tests/e2e/
func BenchmarkColdStart(b *testing.B) {
	events := map[string]string{
		fnRotator:     `{"SecretId":"ecr-pullthroughcache/cold","ClientRequestToken":"00000000-0000-0000-0000-000000000000"}`,
		fnProvisioner: `{"RequestType":"Create","StackId":"arn:aws:cloudformation:us-east-1:123456789012:stack/cold/1","RequestId":"cold","LogicalResourceId":"Cache"}`,
	}
	for _, fn := range []string{fnRotator, fnProvisioner} {
		b.Run(fn, func(b *testing.B) {
			var total, initd []time.Duration
			for range b.N {
				b.StopTimer()
				env := baseEnv(b, fn)
				b.StartTimer()
				f := startFunction(b, fn, env)
				inv := f.invoke(b, []byte(events[fn]))
				b.StopTimer()
				if inv.Status != http.StatusOK {
					b.Fatalf("first invocation answered %d %s", inv.Status, inv.Body)
				}
				total = append(total, inv.Answered.Sub(f.Started))
				if d, ok := runtimeInit(f.out.String()); ok {
					initd = append(initd, d)
				}
				f.Stop()
				b.StartTimer()
			}
			report(b, "start-to-answer", total)
			report(b, "runtime-init", initd)
		})
	}
}

// initReportRE reads RIE's "INIT REPORT(durationMs: 9.37)" log line. (The "Init Duration" of its
// REPORT line is not used: this RIE measures there only the asynchronous hand-off of Init.)
var initReportRE = regexp.MustCompile(`INIT REPORT\(durationMs: ([0-9.]+)\)`)

func runtimeInit(out string) (time.Duration, bool) {
	m := initReportRE.FindStringSubmatch(out)
	if m == nil {
		return 0, false
	}
	ms, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, false
	}
	return time.Duration(ms * float64(time.Millisecond)), true
}

func report(b *testing.B, what string, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	b.ReportMetric(ms(med), what+"-median-ms")
	b.ReportMetric(ms(s[0]), what+"-min-ms")
	b.ReportMetric(ms(s[len(s)-1]), what+"-max-ms")
	b.Logf("%s over %d cold starts: median %.1f ms, min %.1f ms, max %.1f ms", what, len(s), ms(med), ms(s[0]), ms(s[len(s)-1]))
}
