package operator_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/operator"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/rotation"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
)

// TestStatusReportsEveryRule: against moto and the emulators, status tells a healthy managed
// credential (facts recorded by the rotator, days to expiry), a hand-made secret with a wrong
// key (ECR's validation fails), a rotation stuck with a pending version (since when) and a
// failed last rotation apart — in the table and in JSON — and is unhealthy overall.
func TestStatusReportsEveryRule(t *testing.T) {
	w := newWorld(t, moto)
	good, hand, stuck, failed := unique(t, "good"), unique(t, "hand"), unique(t, "stuck"), unique(t, "failed")
	exp := w.now.Add(40*24*time.Hour + time.Hour).UTC().Truncate(time.Second)
	managed := func(extra map[string]string) map[string]string {
		m := map[string]string{ptcsecret.TagUpstream: ptcsecret.UpstreamDockerHub, ptcsecret.TagSourceSecret: "arn:aws:secretsmanager:us-east-1:123456789012:secret:ptc-source/hub-AbCdEf",
			ptcsecret.TagRegistryURL: w.hub.URL}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	goodARN := w.secret(ptcsecret.Prefix+good, w.hubValue(), managed(map[string]string{
		rotation.TagLastFailure: "none", rotation.TagLastError: "none", operator.TagPullsRemaining: "98",
	}))
	w.enableRotation(goodARN)
	w.markTested(goodARN, exp)
	w.rule(good, goodARN)
	w.rule(hand, w.secret(ptcsecret.Prefix+hand, `{"username":"`+"ptc-demo"+`","access-token":"`+w.hub.SourceSecret+`"}`, nil))
	stuckARN := w.secret(ptcsecret.Prefix+stuck, w.hubValue(), managed(nil))
	w.rule(stuck, stuckARN)
	if err := testenv.BeginRotation(w.ctx, w.sm, stuckARN, "11111111-2222-4333-8444-555555555555", true); err != nil {
		t.Fatal(err)
	}
	failedARN := w.secret(ptcsecret.Prefix+failed, w.hubValue(), managed(map[string]string{
		rotation.TagLastFailure: w.now.UTC().Format(time.RFC3339) + " createSecret", rotation.TagLastError: "minting a docker-hub token: HTTP 401",
	}))
	w.enableRotation(failedARN)
	w.rule(failed, failedARN)

	rep, err := operator.Status(w.ctx, w.env())
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]operator.RuleStatus{}
	for _, r := range rep.Rules {
		by[r.Prefix] = r
	}
	g := by[good]
	if !g.Healthy() || !g.Managed || g.Valid == nil || !*g.Valid || g.DaysToExpiry == nil || *g.DaysToExpiry != 40 || g.LastOutcome != "ok" || g.PullsRemaining != "98" {
		t.Errorf("good rule: %+v", g)
	}
	h := by[hand]
	if h.Healthy() || h.Managed || h.Valid == nil || *h.Valid || !strings.Contains(h.ValidationFailure, "access-token") {
		t.Errorf("hand-made rule with access-token: %+v", h)
	}
	s := by[stuck]
	if s.Healthy() || s.PendingVersion != "11111111-2222-4333-8444-555555555555" || s.PendingSince == nil || !strings.Contains(strings.Join(s.Problems, " "), "stuck") {
		t.Errorf("stuck rule: %+v", s)
	}
	f := by[failed]
	if f.Healthy() || f.LastOutcome != "failed" || !strings.Contains(strings.Join(f.Problems, " "), "failed at createSecret (") || !strings.Contains(strings.Join(f.Problems, " "), "): minting a docker-hub token") {
		t.Errorf("failed rule: %+v", f)
	}
	if rep.Unhealthy < 3 {
		t.Errorf("unhealthy = %d, want at least 3", rep.Unhealthy)
	}

	env := w.env()
	if err := operator.WriteStatusTable(env, rep); err != nil {
		t.Fatal(err)
	}
	table := w.out.String()
	for _, want := range []string{"PREFIX", good, "managed", "hand-made", "40d", "INVALID", "✘ " + hand + ": ECR's validation failed", "98"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	if !strings.Contains(w.errw.String(), "pull-through cache rules in us-east-1") {
		t.Errorf("no progress on stderr: %q", w.errw.String())
	}
	w.out.Reset()
	if err := operator.WriteStatusJSON(env, rep); err != nil {
		t.Fatal(err)
	}
	var back operator.StatusReport
	if err := json.Unmarshal([]byte(w.out.String()), &back); err != nil || len(back.Rules) != len(rep.Rules) || back.Unhealthy != rep.Unhealthy {
		t.Errorf("JSON does not round-trip (%v):\n%s", err, w.out.String())
	}
	w.assertNoLeak()
}

// TestStatusPaginates: more rules than one DescribePullThroughCacheRules page are all listed.
func TestStatusPaginates(t *testing.T) {
	w := newWorld(t, testenv.StartLocalSMT(t))
	arn := w.secret(ptcsecret.Prefix+"paged", w.hubValue(), nil)
	for i := range 120 {
		w.rule("paged-"+string(rune('a'+i/26))+string(rune('a'+i%26)), arn)
	}
	rep, err := operator.Status(w.ctx, w.env())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rules) != 120 || rep.Unhealthy != 0 {
		t.Errorf("%d rules, %d unhealthy; want 120 healthy", len(rep.Rules), rep.Unhealthy)
	}
}
