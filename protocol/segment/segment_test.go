package segment_test

import (
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/segment"
)

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	l, err := time.LoadLocation(name)
	if err != nil {
		t.Skip("no zone data:", err)
	}
	return l
}

// spendOf is a purchase history with purchases (at, value), answered the
// way the ledger does (sum of values at or after each window's start).
func spendOf(q segment.Query, ps map[time.Time]int64, stores map[protocol.StoreID]time.Time) segment.History {
	var h segment.History
	for at := range ps {
		if at.After(h.Last) {
			h.Last = at
		}
	}
	for _, s := range q.SpendSince {
		var v int64
		for at, x := range ps {
			if !at.Before(s) {
				v += x
			}
		}
		h.Spend = append(h.Spend, v)
	}
	h.Stores = stores
	return h
}

func TestOf(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	nyc := mustLoc(t, "America/New_York")
	big := segment.Definition{ID: "big", Rules: []segment.Rule{{Kind: segment.KindSpend, MinSpend: 100000, Days: 365}}}
	bigBerlin := segment.Definition{ID: "big", TimeZone: "Europe/Berlin", Rules: big.Rules}
	store := segment.Definition{ID: "s1", Rules: []segment.Rule{{Kind: segment.KindStore, Store: "s1"}}}
	store30 := segment.Definition{ID: "s1r", Rules: []segment.Rule{{Kind: segment.KindStore, Store: "s1", Days: 30}}}
	bday := segment.Definition{ID: "bday", TimeZone: "America/New_York", Rules: []segment.Rule{{Kind: segment.KindBirthdayMonth}}}
	lapsed := segment.Definition{ID: "lapsed", Rules: []segment.Rule{{Kind: segment.KindLapsed, Days: 90}}}
	lapsedBerlin := segment.Definition{ID: "lapsed", TimeZone: "Europe/Berlin", Rules: lapsed.Rules}
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		def    segment.Definition
		now    time.Time
		ps     map[time.Time]int64
		stores map[protocol.StoreID]time.Time
		attrs  map[string]string
		in     bool
	}{
		{"SpendOK", big, now, map[time.Time]int64{now.AddDate(0, -1, 0): 60000, now.AddDate(0, -6, 0): 40000}, nil, nil, true},
		{"SpendShort", big, now, map[time.Time]int64{now.AddDate(0, -1, 0): 99999}, nil, nil, false},
		{"SpendOldOutside", big, now, map[time.Time]int64{now.AddDate(0, -1, 0): 60000, now.AddDate(-1, 0, -1): 40000}, nil, nil, false},
		// the window starts at local midnight 364 days before today:
		// 2025-12-02 00:00 UTC is in, a microsecond before is out.
		{"SpendFirstInstantUTC", big, now, map[time.Time]int64{time.Date(2025, 12, 2, 0, 0, 0, 0, time.UTC): 100000}, nil, nil, true},
		{"SpendBeforeWindowUTC", big, now, map[time.Time]int64{time.Date(2025, 12, 1, 23, 59, 59, 999999000, time.UTC): 100000}, nil, nil, false},
		// in Berlin (UTC+1 in December) the window starts at 2025-12-01 23:00 UTC
		{"SpendFirstInstantBerlin", bigBerlin, now, map[time.Time]int64{time.Date(2025, 12, 1, 23, 0, 0, 0, time.UTC): 100000}, nil, nil, true},
		{"SpendBeforeWindowBerlin", bigBerlin, now, map[time.Time]int64{time.Date(2025, 12, 1, 22, 59, 59, 0, time.UTC): 100000}, nil, nil, false},
		{"StoreEver", store, now, map[time.Time]int64{now.AddDate(-3, 0, 0): 1}, map[protocol.StoreID]time.Time{"s1": now.AddDate(-3, 0, 0)}, nil, true},
		{"StoreOther", store, now, map[time.Time]int64{now: 1}, map[protocol.StoreID]time.Time{"s2": now}, nil, false},
		{"StoreWindowIn", store30, now, nil, map[protocol.StoreID]time.Time{"s1": now.AddDate(0, 0, -29)}, nil, true},
		{"StoreWindowOut", store30, now, nil, map[protocol.StoreID]time.Time{"s1": now.AddDate(0, 0, -31)}, nil, false},
		{"BirthdayThisMonth", bday, now, nil, nil, map[string]string{"birthday": "1990-12-24"}, true},
		{"BirthdayMMDD", bday, now, nil, nil, map[string]string{"birthday": "12-24"}, true},
		{"BirthdayOtherMonth", bday, now, nil, nil, map[string]string{"birthday": "1990-11-24"}, false},
		{"BirthdayNone", bday, now, nil, nil, nil, false},
		{"BirthdayBad", bday, now, nil, nil, map[string]string{"birthday": "24/12/1990"}, false},
		// 2026-12-01 03:00 UTC is still November 30 in New York
		{"BirthdayZoneBoundary", bday, time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC), nil, nil, map[string]string{"birthday": "1990-12-24"}, false},
		{"BirthdayZoneBoundaryNov", bday, time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC), nil, nil, map[string]string{"birthday": "1990-11-02"}, true},
		{"LapsedYes", lapsed, now, map[time.Time]int64{now.AddDate(0, 0, -90): 1}, nil, nil, true},
		{"LapsedNo", lapsed, now, map[time.Time]int64{now.AddDate(0, 0, -89): 1}, nil, nil, false},
		{"LapsedNeverBought", lapsed, now, nil, nil, nil, false},
		// Berlin: the 90-day window (today and 89 days before) starts
		// 2026-09-03 00:00 CEST = 2026-09-02 22:00 UTC
		{"LapsedBerlinEdgeIn", lapsedBerlin, now, map[time.Time]int64{time.Date(2026, 9, 2, 22, 0, 0, 0, time.UTC): 1}, nil, nil, false},
		{"LapsedBerlinEdgeOut", lapsedBerlin, now, map[time.Time]int64{time.Date(2026, 9, 2, 21, 59, 0, 0, time.UTC): 1}, nil, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.def.Validate(); err != nil {
				t.Fatal(err)
			}
			defs := []segment.Definition{tc.def}
			q := segment.Need(defs, tc.now)
			got := segment.Of(defs, q, spendOf(q, tc.ps, tc.stores), tc.attrs, tc.now)
			if in := len(got) == 1; in != tc.in {
				t.Fatalf("in = %v (%v), want %v", in, got, tc.in)
			}
		})
	}
	_ = nyc
	_ = berlin
}

// TestSinceDST: a window across a DST change follows the calendar.
func TestSinceDST(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	now := time.Date(2026, 3, 30, 10, 0, 0, 0, berlin) // the day after the change to CEST
	got := segment.Since(now, 2, berlin)
	if want := time.Date(2026, 3, 29, 0, 0, 0, 0, berlin); !got.Equal(want) || got.UTC().Hour() != 23 {
		t.Fatalf("Since = %v, want %v (23:00 UTC, before the change)", got.UTC(), want.UTC())
	}
}

func TestMultipleSegments(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	defs := []segment.Definition{
		{ID: "vip", Rules: []segment.Rule{{Kind: segment.KindSpend, MinSpend: 1000, Days: 30}}},
		{ID: "downtown", Rules: []segment.Rule{{Kind: segment.KindStore, Store: "dt"}}},
		{ID: "vip-downtown", Rules: []segment.Rule{{Kind: segment.KindSpend, MinSpend: 1000, Days: 30}, {Kind: segment.KindStore, Store: "dt"}}},
		{ID: "lapsed", Rules: []segment.Rule{{Kind: segment.KindLapsed, Days: 90}}},
	}
	q := segment.Need(defs, now)
	if len(q.SpendSince) != 1 || len(q.Stores) != 1 {
		t.Fatalf("Need = %+v: one window and one store", q)
	}
	h := segment.History{Last: now, Spend: []int64{1500}, Stores: map[protocol.StoreID]time.Time{"dt": now}}
	got := segment.Of(defs, q, h, nil, now)
	if want := []string{"downtown", "vip", "vip-downtown"}; len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("Of = %v, want %v", got, want)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		def   segment.Definition
		field string
	}{
		{"ErrID", segment.Definition{ID: "", Rules: []segment.Rule{{Kind: segment.KindLapsed, Days: 1}}}, "id"},
		{"ErrNoRules", segment.Definition{ID: "x"}, "rules"},
		{"ErrKind", segment.Definition{ID: "x", Rules: []segment.Rule{{Kind: "vibes"}}}, "rules[0].kind"},
		{"ErrSpend", segment.Definition{ID: "x", Rules: []segment.Rule{{Kind: segment.KindSpend, Days: 30}}}, "rules[0].min_spend"},
		{"ErrDays", segment.Definition{ID: "x", Rules: []segment.Rule{{Kind: segment.KindLapsed}}}, "rules[0].days"},
		{"ErrDaysBig", segment.Definition{ID: "x", Rules: []segment.Rule{{Kind: segment.KindSpend, MinSpend: 1, Days: segment.MaxDays + 1}}}, "rules[0].days"},
		{"ErrStore", segment.Definition{ID: "x", Rules: []segment.Rule{{Kind: segment.KindStore}}}, "rules[0].store"},
		{"ErrZone", segment.Definition{ID: "x", TimeZone: "Mars/Olympus", Rules: []segment.Rule{{Kind: segment.KindLapsed, Days: 1}}}, "time_zone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.def.Validate()
			var pe *protocol.Error
			if err == nil || !asErr(err, &pe) || pe.Code != protocol.CodeInvalidInput || pe.Field != tc.field {
				t.Fatalf("Validate = %v, want invalid_input on %s", err, tc.field)
			}
		})
	}
}

func asErr(err error, pe **protocol.Error) bool {
	e, ok := err.(*protocol.Error)
	*pe = e
	return ok
}
