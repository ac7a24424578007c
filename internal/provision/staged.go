package provision

import (
	"log/slog"
	"regexp"
	"strconv"

	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/staged"
)

// StagedMaxScheduleDays is the longest rotation interval that keeps the TokenDaysToExpiry alarm
// (under 14 days) able to page at least a week before a staged token lapses: the metric is
// emitted only when a rotation runs.
const StagedMaxScheduleDays = 7

var rateDays = regexp.MustCompile(`^rate\(([0-9]+) days?\)$`)

// warnStagedSchedule logs a warning when the source is in staged mode and the schedule rotates
// less often than StagedMaxScheduleDays (rate(N days) only; a cron schedule is not judged).
func warnStagedSchedule(log *slog.Logger, up upstream.Upstream, schedule string) {
	if _, ok := up.(*staged.Staged); !ok {
		return
	}
	m := rateDays.FindStringSubmatch(schedule)
	if m == nil {
		return
	}
	if n, err := strconv.Atoi(m[1]); err == nil && n > StagedMaxScheduleDays {
		log.Warn("staged mode: the RotationSchedule checks the staged token less often than weekly, so the TokenDaysToExpiry alarm may not page before it lapses; use rate(7 days) or less",
			"schedule", schedule, "max_days", StagedMaxScheduleDays)
	}
}
