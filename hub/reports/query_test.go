package reports_test

import (
	"errors"
	"testing"
	"time"

	"github.com/punchcard/punchcard/hub/reports"
	"github.com/punchcard/punchcard/protocol"
)

func mustLoc(t testing.TB, name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// TestParseQueryBuckets: periods start at local midnights, the first and
// the last are clipped to the range, a day across a DST change has 23 or
// 25 hours, weeks start on Monday.
func TestParseQueryBuckets(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	for _, tc := range []struct {
		name, from, to, by string
		n                  int
		labels             []string
		hours              []float64
	}{
		{"DaysAcrossDST", "2026-10-24", "2026-10-26", "day", 3, []string{"2026-10-24", "2026-10-25", "2026-10-26"}, []float64{24, 25, 24}},
		{"SpringDay", "2026-03-29", "2026-03-29", "day", 1, []string{"2026-03-29"}, []float64{23}},
		{"WeeksClipped", "2026-10-21", "2026-11-03", "week", 3, []string{"2026-10-19", "2026-10-26", "2026-11-02"}, []float64{5*24 + 1, 7 * 24, 2 * 24}},
		{"MonthsClipped", "2026-10-15", "2026-12-31", "month", 3, []string{"2026-10-01", "2026-11-01", "2026-12-01"}, []float64{17*24 + 1, 30 * 24, 31 * 24}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := reports.ParseQuery(reports.ReportActivity, tc.from, tc.to, tc.by, "", berlin)
			if err != nil {
				t.Fatal(err)
			}
			if len(q.Buckets) != tc.n {
				t.Fatalf("%d buckets, want %d: %v", len(q.Buckets), tc.n, q.Buckets)
			}
			for i, b := range q.Buckets {
				if q.Labels[i] != tc.labels[i] {
					t.Errorf("label %d %s, want %s", i, q.Labels[i], tc.labels[i])
				}
				if h := b.End.Sub(b.Start).Hours(); h != tc.hours[i] {
					t.Errorf("bucket %d %s..%s: %v hours, want %v", i, b.Start, b.End, h, tc.hours[i])
				}
				if l := b.Start.In(berlin); l.Hour() != 0 || l.Minute() != 0 {
					t.Errorf("bucket %d starts at %s", i, l)
				}
				if i > 0 && !q.Buckets[i-1].End.Equal(b.Start) {
					t.Errorf("gap before bucket %d", i)
				}
			}
		})
	}
}

// TestParseQueryErrors is the bad-input table: each answer has its stable
// code and field.
func TestParseQueryErrors(t *testing.T) {
	utc := time.UTC
	for _, tc := range []struct {
		name, report, from, to, by, group string
		code                              protocol.Code
		field                             string
	}{
		{"ErrUnknownReport", "profit", "2026-10-01", "2026-10-31", "day", "", protocol.CodeReportUnknown, ""},
		{"ErrFromMissing", "activity", "", "2026-10-31", "day", "", protocol.CodeInvalidInput, "from"},
		{"ErrToMissing", "activity", "2026-10-01", "", "day", "", protocol.CodeInvalidInput, "to"},
		{"ErrFromNotADate", "activity", "2026-13-01", "2026-10-31", "day", "", protocol.CodeInvalidInput, "from"},
		{"ErrFromDay32", "activity", "2026-01-32", "2026-10-31", "day", "", protocol.CodeInvalidInput, "from"},
		{"ErrFromTimestamp", "activity", "2026-10-01T00:00:00Z", "2026-10-31", "day", "", protocol.CodeInvalidInput, "from"},
		{"ErrToNotADate", "activity", "2026-10-01", "tomorrow", "day", "", protocol.CodeInvalidInput, "to"},
		{"ErrYear1999", "activity", "1999-12-31", "2000-01-02", "day", "", protocol.CodeInvalidInput, "from"},
		{"ErrFromAfterTo", "activity", "2026-10-31", "2026-10-01", "day", "", protocol.CodeInvalidInput, "to"},
		{"ErrBy", "activity", "2026-10-01", "2026-10-31", "hour", "", protocol.CodeInvalidInput, "by"},
		{"ErrGroup", "activity", "2026-10-01", "2026-10-31", "day", "customer", protocol.CodeInvalidInput, "group"},
		{"ErrGroupOnConflicts", "conflicts", "2026-10-01", "2026-10-31", "day", "store", protocol.CodeInvalidInput, "group"},
		{"ErrDaysTooLong", "activity", "2025-01-01", "2026-01-02", "day", "", protocol.CodeReportRangeTooLong, ""},
		{"ErrWeeksTooLong", "activity", "2020-01-01", "2026-01-01", "week", "", protocol.CodeReportRangeTooLong, ""},
		{"ErrMonthsTooLong", "activity", "2010-01-01", "2026-01-01", "month", "", protocol.CodeReportRangeTooLong, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := reports.ParseQuery(tc.report, tc.from, tc.to, tc.by, tc.group, utc)
			var pe *protocol.Error
			if !errors.As(err, &pe) || pe.Code != tc.code || pe.Field != tc.field {
				t.Fatalf("got %v, want %s on %q", err, tc.code, tc.field)
			}
		})
	}
	t.Run("OKLongestDays", func(t *testing.T) {
		if _, err := reports.ParseQuery("activity", "2024-01-01", "2024-12-31", "day", "", utc); err != nil {
			t.Fatal(err) // 366 days of a leap year
		}
	})
}

// FuzzParseQuery: any input gives a query whose buckets tile its range
// at local midnights, or a public error; never a panic.
func FuzzParseQuery(f *testing.F) {
	for _, s := range [][5]string{
		{"activity", "2026-10-01", "2026-10-31", "day", "campaign"}, {"activity", "2026-10-21", "2027-03-30", "week", ""},
		{"conflicts", "2026-01-01", "2026-12-31", "month", ""}, {"balances", "", "", "", ""}, {"activity", "2026-02-29", "x", "", ""},
		{"activity", "2026-10-31", "2026-10-01", "day", "till"}, {"nope", "", "", "", ""},
	} {
		for _, tz := range []string{"UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu"} {
			f.Add(s[0], s[1], s[2], s[3], s[4], tz)
		}
	}
	zones := map[string]*time.Location{}
	f.Fuzz(func(t *testing.T, name, from, to, by, group, tz string) {
		loc, ok := zones[tz]
		if !ok {
			var err error
			if loc, err = time.LoadLocation(tz); err != nil || tz == "" || tz == "Local" {
				loc = time.UTC
			}
			zones[tz] = loc
		}
		q, err := reports.ParseQuery(name, from, to, by, group, loc)
		if err != nil {
			if pe := protocol.PublicError(err); pe.Code == protocol.CodeInternal {
				t.Fatalf("not a public error: %v", err)
			}
			return
		}
		if name == reports.ReportBalances {
			return
		}
		if len(q.Buckets) == 0 || len(q.Buckets) != len(q.Labels) || len(q.Buckets) > reports.MaxPeriods[q.By] {
			t.Fatalf("%d buckets, %d labels", len(q.Buckets), len(q.Labels))
		}
		if !q.Buckets[0].Start.Equal(q.From) || !q.Buckets[len(q.Buckets)-1].End.Equal(q.To) {
			t.Fatalf("buckets do not cover %s..%s", q.From, q.To)
		}
		for i, b := range q.Buckets {
			if !b.Start.Before(b.End) || i > 0 && !q.Buckets[i-1].End.Equal(b.Start) {
				t.Fatalf("bucket %d %v", i, b)
			}
		}
	})
}
