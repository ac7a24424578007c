//lint:file-ignore ST1005 these are Secrets Manager's InvalidParameterException messages, which the emulator sends as the API error's Message (via errParam): AWS writes them as capitalised sentences ending in a period, as checkValue's in store.go are.

package localsm

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// rules is a secret's rotation schedule, as RotateSecret set it.
type rules struct {
	days     *int64 // AutomaticallyAfterDays
	schedule string // ScheduleExpression
	duration string // Duration, e.g. "3h"

	every time.Duration // rate interval (days or rate())
	cron  *cronSpec
}

type cronSpec struct {
	minute int
	hours  []int // sorted
}

var (
	rateRE     = regexp.MustCompile(`^rate\((\d+) (hour|hours|day|days)\)$`)
	cronRE     = regexp.MustCompile(`^cron\((.+)\)$`)
	durationRE = regexp.MustCompile(`^([0-9]+)h$`)
)

// minInterval is the shortest rotation interval Secrets Manager accepts.
const minInterval = 4 * time.Hour

// parseRules validates RotationRules as the RotateSecret API reference describes them:
// AutomaticallyAfterDays 1–1000 or a ScheduleExpression rate(N hours|days) / cron(...) no more
// often than every four hours, never both; Duration "<N>h". The cron check is approximate: it
// looks at the minutes and hours fields only (day fields are trusted).
func parseRules(in *rulesJSON) (*rules, error) {
	r := &rules{}
	switch {
	case in.AutomaticallyAfterDays != nil && in.ScheduleExpression != nil:
		return nil, errors.New("RotationRules can't include both AutomaticallyAfterDays and ScheduleExpression.")
	case in.AutomaticallyAfterDays != nil:
		d := *in.AutomaticallyAfterDays
		if d < 1 || d > 1000 {
			return nil, fmt.Errorf("RotationRules.AutomaticallyAfterDays must be within 1-1000, got %d.", d)
		}
		r.days, r.every = &d, time.Duration(d)*24*time.Hour
	case in.ScheduleExpression != nil:
		if err := r.parseSchedule(*in.ScheduleExpression); err != nil {
			return nil, err
		}
	default:
		return nil, errors.New("RotationRules must set AutomaticallyAfterDays or ScheduleExpression.")
	}
	if in.Duration != nil {
		m := durationRE.FindStringSubmatch(*in.Duration)
		if m == nil {
			return nil, fmt.Errorf("RotationRules.Duration %q must be a number of hours such as 3h.", *in.Duration)
		}
		h, _ := strconv.Atoi(m[1])
		if h < 1 || h > 24 || (r.every > 0 && time.Duration(h)*time.Hour > r.every) {
			return nil, fmt.Errorf("RotationRules.Duration %q must be 1h-24h and not extend into the next rotation window.", *in.Duration)
		}
		r.duration = *in.Duration
	}
	return r, nil
}

func (r *rules) parseSchedule(expr string) error {
	r.schedule = expr
	if len(expr) < 1 || len(expr) > 256 {
		return errors.New("RotationRules.ScheduleExpression must be 1-256 characters long.")
	}
	if m := rateRE.FindStringSubmatch(expr); m != nil {
		n, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil || n < 1 {
			return fmt.Errorf("RotationRules.ScheduleExpression %q: the rate must be a positive number.", expr)
		}
		unit := time.Hour
		if strings.HasPrefix(m[2], "day") {
			if n > 1000 {
				return fmt.Errorf("RotationRules.ScheduleExpression %q: the rate can be at most 1000 days.", expr)
			}
			unit = 24 * time.Hour
		}
		if n > 24000 {
			return fmt.Errorf("RotationRules.ScheduleExpression %q: the rate can be at most 1000 days.", expr)
		}
		r.every = time.Duration(n) * unit
		if r.every < minInterval {
			return fmt.Errorf("RotationRules.ScheduleExpression %q: Secrets Manager rotates at most every four hours.", expr)
		}
		return nil
	}
	m := cronRE.FindStringSubmatch(expr)
	if m == nil {
		return fmt.Errorf("RotationRules.ScheduleExpression %q must be rate(N hours|days) or cron(minutes hours day-of-month month day-of-week year).", expr)
	}
	f := strings.Fields(m[1])
	if len(f) != 6 {
		return fmt.Errorf("RotationRules.ScheduleExpression %q: a cron expression has six fields, got %d.", expr, len(f))
	}
	minute, err := strconv.Atoi(f[0])
	if err != nil || minute < 0 || minute > 59 {
		return fmt.Errorf("RotationRules.ScheduleExpression %q: the minutes field must be one value 0-59 (Secrets Manager rotates at most every four hours).", expr)
	}
	if (f[2] == "?") == (f[4] == "?") {
		return fmt.Errorf("RotationRules.ScheduleExpression %q: exactly one of day-of-month and day-of-week must be ?.", expr)
	}
	hours, err := cronHours(f[1])
	if err != nil {
		return fmt.Errorf("RotationRules.ScheduleExpression %q: %v", expr, err)
	}
	gaps := make([]int, 0, len(hours))
	for i := 1; i < len(hours); i++ {
		gaps = append(gaps, hours[i]-hours[i-1])
	}
	if everyDay := (f[2] == "*" || f[2] == "?") && (f[4] == "*" || f[4] == "?"); everyDay {
		gaps = append(gaps, 24-hours[len(hours)-1]+hours[0])
	}
	if len(gaps) > 0 && slices.Min(gaps) < int(minInterval/time.Hour) {
		return fmt.Errorf("RotationRules.ScheduleExpression %q: Secrets Manager rotates at most every four hours.", expr)
	}
	r.cron = &cronSpec{minute: minute, hours: hours}
	return nil
}

// cronHours expands a cron hours field (*, N, A-B, */S, A/S, A-B/S and comma lists).
func cronHours(field string) ([]int, error) {
	set := map[int]bool{}
	for item := range strings.SplitSeq(field, ",") {
		rng, stepText, hasStep := strings.Cut(item, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepText)
			if err != nil || n < 1 {
				return nil, fmt.Errorf("bad step %q in the hours field", item)
			}
			step = n
		}
		lo, hi := 0, 23
		switch {
		case rng == "*":
		case strings.Contains(rng, "-"):
			a, b, _ := strings.Cut(rng, "-")
			var err1, err2 error
			lo, err1 = strconv.Atoi(a)
			hi, err2 = strconv.Atoi(b)
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("bad range %q in the hours field", item)
			}
		default:
			n, err := strconv.Atoi(rng)
			if err != nil {
				return nil, fmt.Errorf("bad value %q in the hours field", item)
			}
			lo = n
			if !hasStep {
				hi = n
			}
		}
		if lo < 0 || hi > 23 || lo > hi {
			return nil, fmt.Errorf("hours must be 0-23, got %q", item)
		}
		for h := lo; h <= hi; h += step {
			set[h] = true
		}
	}
	out := make([]int, 0, len(set))
	for h := range set {
		out = append(out, h)
	}
	slices.Sort(out)
	return out, nil
}

// next is roughly when the schedule fires after t (cron: the next matching hour and minute,
// any day). Zero when there is no schedule.
func (r *rules) next(t time.Time) time.Time {
	switch {
	case r == nil:
		return time.Time{}
	case r.cron != nil:
		t = t.UTC()
		base := time.Date(t.Year(), t.Month(), t.Day(), 0, r.cron.minute, 0, 0, time.UTC)
		for day := 0; day < 2; day++ {
			for _, h := range r.cron.hours {
				c := base.AddDate(0, 0, day).Add(time.Duration(h) * time.Hour)
				if c.After(t) {
					return c
				}
			}
		}
		return time.Time{}
	default:
		return t.Add(r.every)
	}
}

// render is RotationRules as DescribeSecret shows them. AutomaticallyAfterDays is also
// derived from a rate in days ("In DescribeSecret and ListSecrets, this value is calculated
// from the rotation schedule").
func (r *rules) render() *rulesJSON {
	if r == nil {
		return nil
	}
	out := &rulesJSON{AutomaticallyAfterDays: r.days}
	if r.schedule != "" {
		s := r.schedule
		out.ScheduleExpression = &s
		if r.cron == nil && r.every%(24*time.Hour) == 0 {
			d := int64(r.every / (24 * time.Hour))
			out.AutomaticallyAfterDays = &d
		}
	}
	if r.duration != "" {
		d := r.duration
		out.Duration = &d
	}
	return out
}
