package rotation_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ptc-credentials/ptc-credentials/internal/metrics"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/dockerhubemu"
)

// pullRecords returns the EMF records carrying PullsRemaining.
func pullRecords(t *testing.T, emf string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(emf, "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil {
			if _, ok := rec[metrics.PullsRemaining]; ok {
				out = append(out, rec)
			}
		}
	}
	return out
}

// TestPullsRemainingEmitted: testSecret emits the pending credential's remaining pulls, as
// Docker Hub's manifest HEAD reports them, with [Upstream] and [Upstream, Secret] dimensions,
// and logs them; the probe is a HEAD, so it spends none of the budget.
func TestPullsRemainingEmitted(t *testing.T) {
	f := newFixture(t, fixtureOpts{hub: dockerhubemu.Options{PullLimits: map[string]int{hubUser: 200}}})
	f.rotate()
	recs := pullRecords(t, f.emfText())
	if len(recs) == 0 {
		t.Fatalf("no PullsRemaining record in %s", f.emfText())
	}
	for _, rec := range recs {
		dims, _ := json.Marshal(rec["_aws"].(map[string]any)["CloudWatchMetrics"].([]any)[0].(map[string]any)["Dimensions"])
		if rec[metrics.PullsRemaining] != float64(200) || rec["Upstream"] != ptcsecret.UpstreamDockerHub || rec[metrics.SecretDimension] != f.name ||
			rec["pull_limit"] != float64(200) || rec["pull_window_seconds"] != float64(21600) || string(dims) != `[["Upstream"],["Upstream","Secret"]]` {
			t.Errorf("record %v (dimensions %s)", rec, dims)
		}
	}
	if !strings.Contains(f.logsText(), `"pulls_remaining":200`) || !strings.Contains(f.logsText(), `"pull_limit":200`) {
		t.Errorf("the budget was not logged: %s", f.logsText())
	}
	if left, _ := f.hub.PullsLeft(hubUser); left != 200 {
		t.Errorf("%d pulls left after the rotation, want 200 (a HEAD is not a pull)", left)
	}
	// ptc status and doctor read the budget from the tested mark.
	if got := f.tag(ptcsecret.TagTestedPulls); got != "200" {
		t.Errorf("tag %s = %q, want 200", ptcsecret.TagTestedPulls, got)
	}
	f.assertNoLeak()
}

// TestPullsRemainingAbsentWhenNotReported: an account without a pull limit (a paid plan; the
// registry sends no ratelimit headers) emits no PullsRemaining and logs no budget.
func TestPullsRemainingAbsentWhenNotReported(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	f.rotate()
	if recs := pullRecords(t, f.emfText()); len(recs) != 0 {
		t.Errorf("PullsRemaining emitted without a reported budget: %v", recs)
	}
	if strings.Contains(f.logsText(), "pulls_remaining") {
		t.Errorf("a budget was logged")
	}
	// No rate-limit header at all is Docker's way of saying "no limit": recorded as such, with
	// no metric (nothing to alarm on).
	if got := f.tag(ptcsecret.TagTestedPulls); got != "unlimited" {
		t.Errorf("tag %s = %q for an account without a pull limit, want unlimited", ptcsecret.TagTestedPulls, got)
	}
	if !strings.Contains(f.emfText(), `"RotationSucceeded":1`) {
		t.Errorf("the rotation did not succeed")
	}
}
