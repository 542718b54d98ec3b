package reports

import (
	"fmt"
	"time"

	"github.com/punchcard/punchcard/protocol"
	pledger "github.com/punchcard/punchcard/protocol/ledger"
)

// Report names.
const (
	ReportActivity  = "activity"  // redemptions, discount, order value, AOV, points per period and group
	ReportConflicts = "conflicts" // conflicts per period and kind
	ReportBalances  = "balances"  // liabilities now: gift cards, points, budgets
	// ReportDistribution: codes distributed in the range per campaign and
	// distribution, and how many of them were redeemed (distribution.go).
	ReportDistribution = "distribution"
	// ReportAOV: per period, orders of known customers with and without
	// a reward and their average value (aov.go).
	ReportAOV = "aov"
)

// Periods a report is cut into, in the tenant's time zone.
const (
	ByDay   = "day"
	ByWeek  = "week" // ISO weeks, Monday to Sunday
	ByMonth = "month"
)

// MaxPeriods bounds the periods of one report per unit: a year of days,
// about three years of weeks, ten years of months.
var MaxPeriods = map[string]int{ByDay: 366, ByWeek: 160, ByMonth: 120}

// DateLayout is the layout of from and to: local dates in the tenant's
// time zone.
const DateLayout = "2006-01-02"

// Query is a parsed report request. From and To are local dates, both
// included; Buckets cut [From 00:00, To+1 00:00) at local midnights.
type Query struct {
	Report   string
	From, To time.Time // local midnight of the first day and of the day after the last
	By       string
	Group    string
	Loc      *time.Location
	Buckets  []pledger.Bucket
	Labels   []string // each bucket's period: its first day (of the week or month too)
}

// ParseQuery checks a report request and cuts its range into buckets in
// loc. Errors: report_unknown for name; invalid_input on from, to, by or
// group (a date not YYYY-MM-DD, to before from, an unknown unit or
// group); report_range_too_long beyond MaxPeriods.
func ParseQuery(name, from, to, by, group string, loc *time.Location) (Query, error) {
	q := Query{Report: name, By: by, Group: group, Loc: loc}
	switch name {
	case ReportActivity, ReportConflicts, ReportBalances, ReportDistribution, ReportAOV:
	default:
		return q, protocol.Errorf(protocol.CodeReportUnknown, "unknown report %q (activity, conflicts, balances, distribution, aov)", clip(name))
	}
	if q.By == "" {
		q.By = ByDay
	}
	if _, ok := MaxPeriods[q.By]; !ok {
		return q, protocol.FieldError("by", "by must be day, week or month, not %q", clip(by))
	}
	switch group {
	case pledger.GroupNone, pledger.GroupCampaign, pledger.GroupStore, pledger.GroupTill:
	default:
		return q, protocol.FieldError("group", "group must be campaign, store or till, not %q", clip(group))
	}
	if name != ReportActivity && group != "" {
		return q, protocol.FieldError("group", "only the activity report has groups")
	}
	if name == ReportBalances {
		return q, nil // a report of now: no range
	}
	f, err := parseDate("from", from, loc)
	if err != nil {
		return q, err
	}
	t, err := parseDate("to", to, loc)
	if err != nil {
		return q, err
	}
	if t.Before(f) {
		return q, protocol.FieldError("to", "to (%s) is before from (%s)", to, from)
	}
	q.From, q.To = f, addDays(t, 1)
	if name == ReportDistribution { // no periods: one figure per campaign and distribution over the range
		if t.Sub(f) > MaxExportDays*24*time.Hour {
			return q, protocol.Errorf(protocol.CodeReportRangeTooLong, "the distribution report covers at most %d days", MaxExportDays)
		}
		return q, nil
	}
	for start := f; start.Before(q.To); {
		if len(q.Buckets) == MaxPeriods[q.By] {
			return q, protocol.Errorf(protocol.CodeReportRangeTooLong, "more than %d %ss from %s to %s", MaxPeriods[q.By], q.By, from, to)
		}
		period := periodStart(start, q.By)
		end := periodEnd(period, q.By)
		if end.After(q.To) {
			end = q.To
		}
		q.Buckets = append(q.Buckets, pledger.Bucket{Start: start, End: end})
		q.Labels = append(q.Labels, period.Format(DateLayout))
		start = end
	}
	return q, nil
}

func parseDate(field, s string, loc *time.Location) (time.Time, error) {
	if s == "" {
		return time.Time{}, protocol.FieldError(field, "%s is required (a date, YYYY-MM-DD)", field)
	}
	d, err := time.ParseInLocation(DateLayout, s, loc)
	if err != nil || d.Year() < 2000 || d.Year() > 2999 {
		return time.Time{}, protocol.FieldError(field, "%s must be a date from 2000 to 2999, YYYY-MM-DD, not %q", field, clip(s))
	}
	return d, nil
}

// addDays is the local midnight n days after the local midnight d: a
// day of 23 or 25 hours across a DST change.
func addDays(d time.Time, n int) time.Time {
	return time.Date(d.Year(), d.Month(), d.Day()+n, 0, 0, 0, 0, d.Location())
}

// periodStart is the first local midnight of the period holding the
// local midnight d.
func periodStart(d time.Time, by string) time.Time {
	switch by {
	case ByWeek:
		return addDays(d, -((int(d.Weekday()) + 6) % 7))
	case ByMonth:
		return time.Date(d.Year(), d.Month(), 1, 0, 0, 0, 0, d.Location())
	}
	return d
}

func periodEnd(p time.Time, by string) time.Time {
	switch by {
	case ByWeek:
		return addDays(p, 7)
	case ByMonth:
		return time.Date(p.Year(), p.Month()+1, 1, 0, 0, 0, 0, p.Location())
	}
	return addDays(p, 1)
}

// clip keeps an echoed input short in an error message.
func clip(s string) string {
	if len(s) > 40 {
		return fmt.Sprintf("%.40s…", s)
	}
	return s
}
