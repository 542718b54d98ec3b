package tiers_test

import (
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/tiers"
)

func prog(kind string, days int, period string) tiers.Program {
	return tiers.Program{Tiers: []tiers.Level{{Name: "silver", Min: 100}, {Name: "gold", Min: 300}}, Measure: tiers.MeasurePoints,
		Window: tiers.Window{Kind: kind, Days: days, Period: period}, GraceDays: 7, TimeZone: "Europe/Berlin"}
}

// TestWindows pins the windows and validity in civil days of the
// programme's zone, on both sides of the 2026 DST changes in Berlin
// (Mar 29, Oct 25).
func TestWindows(t *testing.T) {
	ber, _ := time.LoadLocation("Europe/Berlin")
	at := func(y int, m time.Month, d, h int) time.Time { return time.Date(y, m, d, h, 0, 0, 0, ber) }
	cases := []struct {
		name                      string
		p                         tiers.Program
		now                       time.Time
		start, until, review, prv time.Time
	}{
		{"rolling_over_autumn_change", prog(tiers.WindowRolling, 30, ""), at(2026, 11, 10, 9),
			at(2026, 10, 12, 0), at(2026, 12, 10, 0), at(2026, 12, 17, 0), at(2026, 10, 12, 0)},
		{"rolling_over_spring_change", prog(tiers.WindowRolling, 7, ""), at(2026, 4, 2, 1),
			at(2026, 3, 27, 0), at(2026, 4, 9, 0), at(2026, 4, 16, 0), at(2026, 3, 27, 0)},
		{"quarter", prog(tiers.WindowCalendar, 0, "quarter"), at(2026, 3, 29, 3),
			at(2026, 1, 1, 0), at(2026, 7, 1, 0), at(2026, 7, 8, 0), at(2025, 10, 1, 0)},
		{"month", prog(tiers.WindowCalendar, 0, "month"), at(2026, 10, 25, 2),
			at(2026, 10, 1, 0), at(2026, 12, 1, 0), at(2026, 12, 8, 0), at(2026, 9, 1, 0)},
		{"year", prog(tiers.WindowCalendar, 0, "year"), at(2026, 12, 31, 23),
			at(2026, 1, 1, 0), at(2028, 1, 1, 0), at(2028, 1, 8, 0), at(2025, 1, 1, 0)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.p.Validate(); err != nil {
				t.Fatal(err)
			}
			if got := tc.p.WindowStart(tc.now); !got.Equal(tc.start) {
				t.Errorf("window start %s, want %s", got, tc.start)
			}
			until := tc.p.ValidUntil(tc.now)
			if !until.Equal(tc.until) {
				t.Errorf("valid until %s, want %s", until, tc.until)
			}
			if got := tc.p.Review(until); !got.Equal(tc.review) {
				t.Errorf("review %s, want %s", got, tc.review)
			}
			if got, _ := tc.p.PreviousWindow(tc.now); !got.Equal(tc.prv) {
				t.Errorf("previous window from %s, want %s", got, tc.prv)
			}
		})
	}
}

func TestQualify(t *testing.T) {
	p := prog(tiers.WindowRolling, 365, "")
	for total, want := range map[int64]string{0: "", 99: "", 100: "silver", 299: "silver", 300: "gold", 1 << 40: "gold"} {
		if got := p.Qualify(total); got != want {
			t.Errorf("Qualify(%d) = %q, want %q", total, got, want)
		}
	}
	if p.Rank("gold") != 2 || p.Rank("silver") != 1 || p.Rank("") != 0 || p.Rank("bronze") != 0 {
		t.Error("ranks")
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct{ body, field string }{
		{`{`, ""},
		{`{"tiers":[{"name":"a","min":0}],"measure":"points","window":{"kind":"rolling","days":1}}`, "tiers[0].min"},
		{`{"tiers":[{"name":"a","min":1},{"name":"a","min":2}],"measure":"points","window":{"kind":"rolling","days":1}}`, "tiers[1].name"},
		{`{"tiers":[{"name":"a","min":1}],"measure":"points","window":{"kind":"rolling","days":0}}`, "window.days"},
		{`{"tiers":[{"name":"a","min":1}],"measure":"points","window":{"kind":"rolling","days":5,"period":"year"}}`, "window.period"},
		{`{"tiers":[{"name":"a","min":1}],"measure":"points","window":{"kind":"weekly"}}`, "window.kind"},
		{`{"tiers":[{"name":"a","min":1}],"measure":"spend","window":{"kind":"calendar","period":"year"},"grace_days":-1}`, "grace_days"},
	} {
		_, err := tiers.Decode([]byte(tc.body))
		var pe *protocol.Error
		if !asErr(err, &pe) || pe.Code != protocol.CodeInvalidInput || pe.Field != tc.field {
			t.Errorf("%s: %v, want invalid_input on %q", tc.body, err, tc.field)
		}
	}
}

func asErr(err error, pe **protocol.Error) bool {
	e, ok := err.(*protocol.Error)
	*pe = e
	return ok
}

// FuzzDecode: a posted programme never panics; one that decodes valid
// gives windows that never run backwards.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"tiers":[{"name":"silver","min":100},{"name":"gold","min":300}],"measure":"points","window":{"kind":"rolling","days":365},"grace_days":30,"time_zone":"Europe/Berlin"}`))
	f.Add([]byte(`{"tiers":[{"name":"vip","min":100000}],"measure":"spend","window":{"kind":"calendar","period":"quarter"}}`))
	f.Add([]byte(`{"tiers":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := tiers.Decode(b)
		if err != nil {
			return
		}
		now := time.Date(2026, 10, 25, 2, 30, 0, 0, time.UTC)
		if s := p.WindowStart(now); s.After(now) {
			t.Fatalf("window starts after now: %s", s)
		}
		if u := p.ValidUntil(now); !u.After(now) || p.Review(u).Before(u) {
			t.Fatalf("validity %s, review %s", u, p.Review(u))
		}
	})
}
