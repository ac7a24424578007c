package rotation

import (
	"github.com/ptc-credentials/ptc-credentials/internal/metrics"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
)

// reportPullBudget logs the pending credential's pull budget and emits PullsRemaining (per
// upstream, and per secret) when the upstream reported one (Docker Hub's ratelimit headers);
// an upstream that reports nothing emits nothing. The template alarms when it is low: ECR
// pulls through this credential, so a spent budget means failed pulls until the window rolls.
func (r *Rotator) reportPullBudget(st *stepState, v upstream.Verification) {
	if v.PullsUnlimited {
		st.log.Info("the pending credential has no pull limit (the registry reported none)")
		return
	}
	if v.PullsRemaining == nil {
		return
	}
	props := map[string]any{"secret": st.name}
	attrs := []any{"pulls_remaining", *v.PullsRemaining}
	if v.PullLimit != nil {
		props["pull_limit"] = *v.PullLimit
		attrs = append(attrs, "pull_limit", *v.PullLimit)
	}
	if v.PullWindow > 0 {
		props["pull_window_seconds"] = int(v.PullWindow.Seconds())
		attrs = append(attrs, "pull_window_seconds", int(v.PullWindow.Seconds()))
	}
	r.Metrics.EmitPerSecret(metrics.PullsRemaining, float64(*v.PullsRemaining), metrics.Count, st.upstream, st.name, props)
	st.log.Info("pull budget of the pending credential", attrs...)
}
