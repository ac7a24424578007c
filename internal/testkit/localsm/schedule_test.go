package localsm

import (
	"testing"
	"time"
)

func TestParseRules(t *testing.T) {
	days := func(n int64) *int64 { return &n }
	str := func(s string) *string { return &s }
	base := time.Date(2026, 3, 1, 10, 30, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		in       rulesJSON
		ok       bool
		next     time.Time // zero: not checked
		wantDays int64     // AutomaticallyAfterDays DescribeSecret shows; 0: none
	}{
		{name: "days", in: rulesJSON{AutomaticallyAfterDays: days(30)}, ok: true, next: base.AddDate(0, 0, 30), wantDays: 30},
		{name: "days 1000", in: rulesJSON{AutomaticallyAfterDays: days(1000)}, ok: true, wantDays: 1000},
		{name: "days 0", in: rulesJSON{AutomaticallyAfterDays: days(0)}},
		{name: "days 1001", in: rulesJSON{AutomaticallyAfterDays: days(1001)}},
		{name: "both", in: rulesJSON{AutomaticallyAfterDays: days(1), ScheduleExpression: str("rate(1 day)")}},
		{name: "neither", in: rulesJSON{Duration: str("2h")}},
		{name: "rate days", in: rulesJSON{ScheduleExpression: str("rate(30 days)")}, ok: true, next: base.AddDate(0, 0, 30), wantDays: 30},
		{name: "rate 1 day", in: rulesJSON{ScheduleExpression: str("rate(1 day)")}, ok: true, wantDays: 1},
		{name: "rate 4 hours", in: rulesJSON{ScheduleExpression: str("rate(4 hours)")}, ok: true, next: base.Add(4 * time.Hour)},
		{name: "rate 3 hours", in: rulesJSON{ScheduleExpression: str("rate(3 hours)")}},
		{name: "rate 1001 days", in: rulesJSON{ScheduleExpression: str("rate(1001 days)")}},
		{name: "rate minutes", in: rulesJSON{ScheduleExpression: str("rate(300 minutes)")}},
		{name: "cron daily", in: rulesJSON{ScheduleExpression: str("cron(0 16 * * ? *)")}, ok: true, next: time.Date(2026, 3, 1, 16, 0, 0, 0, time.UTC)},
		{name: "cron every 6 hours", in: rulesJSON{ScheduleExpression: str("cron(15 */6 * * ? *)")}, ok: true, next: time.Date(2026, 3, 1, 12, 15, 0, 0, time.UTC)},
		{name: "cron tomorrow", in: rulesJSON{ScheduleExpression: str("cron(0 8 ? * MON *)")}, ok: true, next: time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)},
		{name: "cron list 4 apart", in: rulesJSON{ScheduleExpression: str("cron(0 0,4,8,12,16,20 * * ? *)")}, ok: true},
		{name: "cron every hour", in: rulesJSON{ScheduleExpression: str("cron(0 * * * ? *)")}},
		{name: "cron 23 and 1", in: rulesJSON{ScheduleExpression: str("cron(0 1,23 * * ? *)")}},
		{name: "cron every minute", in: rulesJSON{ScheduleExpression: str("cron(* 1 * * ? *)")}},
		{name: "cron both day fields", in: rulesJSON{ScheduleExpression: str("cron(0 1 * * * *)")}},
		{name: "cron five fields", in: rulesJSON{ScheduleExpression: str("cron(0 1 * * ?)")}},
		{name: "cron bad hour", in: rulesJSON{ScheduleExpression: str("cron(0 25 * * ? *)")}},
		{name: "garbage", in: rulesJSON{ScheduleExpression: str("every day")}},
		{name: "duration", in: rulesJSON{ScheduleExpression: str("rate(10 days)"), Duration: str("3h")}, ok: true, wantDays: 10},
		{name: "duration longer than rate", in: rulesJSON{ScheduleExpression: str("rate(4 hours)"), Duration: str("5h")}},
		{name: "duration not hours", in: rulesJSON{AutomaticallyAfterDays: days(1), Duration: str("30m")}},
		{name: "duration 25h", in: rulesJSON{AutomaticallyAfterDays: days(2), Duration: str("25h")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := parseRules(&tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("parseRules: err %v, want ok=%v", err, tc.ok)
			}
			if err != nil {
				return
			}
			if !tc.next.IsZero() && !r.next(base).Equal(tc.next) {
				t.Errorf("next = %v, want %v", r.next(base), tc.next)
			}
			got := r.render()
			if d := got.AutomaticallyAfterDays; (d == nil) != (tc.wantDays == 0) || (d != nil && *d != tc.wantDays) {
				t.Errorf("rendered AutomaticallyAfterDays = %v, want %d", d, tc.wantDays)
			}
			if (got.ScheduleExpression != nil) != (tc.in.ScheduleExpression != nil) {
				t.Errorf("rendered ScheduleExpression = %v", got.ScheduleExpression)
			}
		})
	}
}
