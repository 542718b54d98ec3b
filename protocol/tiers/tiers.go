// Package tiers is a tenant's tier programme (issue 12, "tiers with a
// life"): ordered tiers a customer earns by the points they earn, or the
// money they spend, in a rolling window (the last N days) or a calendar
// period (month, quarter, year) of the programme's time zone. An upgrade
// happens at once, in the transaction of the fact that qualifies; a tier
// is kept until its validity ends (the end of the period after the one it
// was reached in; N days for a rolling window) plus a grace period, and
// is then reviewed: kept (and extended) while the customer still
// qualifies, else lowered to what they qualify for. The hub's ledger
// applies it (store/ledger/tiers.go); the tills only read the tier it
// decided, from their snapshot or a token.
//
// Days are civil days of the programme's time zone, so windows and
// validity follow the local calendar across DST changes.
package tiers

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// Measure is what qualifies.
type Measure string

// Measures.
const (
	MeasurePoints Measure = "points" // points earned (net of rolled-back earns)
	MeasureSpend  Measure = "spend"  // order totals, minor units, of the customer's sales with an earn
)

// Window kinds.
const (
	WindowRolling  = "rolling"  // the last Days days, today included
	WindowCalendar = "calendar" // the current Period: month, quarter or year
)

// Limits of a programme.
const (
	MaxTiers     = 16
	MaxNameLen   = 64
	MaxDays      = 3660
	MaxGraceDays = 366
)

// Level is one tier: reached when the measure over the window is at least
// Min.
type Level struct {
	Name string `json:"name"`
	Min  int64  `json:"min"`
}

// Window is where the measure is summed.
type Window struct {
	Kind   string `json:"kind"`             // WindowRolling or WindowCalendar
	Days   int    `json:"days,omitempty"`   // rolling: the window's length in days
	Period string `json:"period,omitempty"` // calendar: "month", "quarter" or "year"
}

// Program is a tenant's tier programme. Tiers are ordered from the lowest
// to the highest, by strictly increasing Min.
type Program struct {
	Tiers     []Level   `json:"tiers"`
	Measure   Measure   `json:"measure"`
	Window    Window    `json:"window"`
	GraceDays int       `json:"grace_days,omitempty"`
	TimeZone  string    `json:"time_zone,omitempty"` // IANA name; "" = UTC
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// Validate checks p. Reason codes: invalid_input (with the field).
func (p *Program) Validate() error {
	if len(p.Tiers) == 0 {
		return protocol.FieldError("tiers", "at least one tier is needed")
	}
	if len(p.Tiers) > MaxTiers {
		return protocol.FieldError("tiers", "at most %d tiers", MaxTiers)
	}
	seen := map[string]bool{}
	for i, t := range p.Tiers {
		f := fmt.Sprintf("tiers[%d]", i)
		if t.Name == "" || len(t.Name) > MaxNameLen {
			return protocol.FieldError(f+".name", "a tier needs a name of 1 to %d bytes", MaxNameLen)
		}
		if seen[t.Name] {
			return protocol.FieldError(f+".name", "tier %q is listed twice", t.Name)
		}
		seen[t.Name] = true
		if t.Min <= 0 {
			return protocol.FieldError(f+".min", "min must be positive")
		}
		if i > 0 && t.Min <= p.Tiers[i-1].Min {
			return protocol.FieldError(f+".min", "tiers go from the lowest to the highest: min must grow")
		}
	}
	switch p.Measure {
	case MeasurePoints, MeasureSpend:
	default:
		return protocol.FieldError("measure", "measure must be %q or %q", MeasurePoints, MeasureSpend)
	}
	switch p.Window.Kind {
	case WindowRolling:
		if p.Window.Days < 1 || p.Window.Days > MaxDays {
			return protocol.FieldError("window.days", "a rolling window is 1 to %d days", MaxDays)
		}
		if p.Window.Period != "" {
			return protocol.FieldError("window.period", "a rolling window has no period")
		}
	case WindowCalendar:
		switch p.Window.Period {
		case "month", "quarter", "year":
		default:
			return protocol.FieldError("window.period", "period must be month, quarter or year")
		}
		if p.Window.Days != 0 {
			return protocol.FieldError("window.days", "a calendar window has no days")
		}
	default:
		return protocol.FieldError("window.kind", "window kind must be %q or %q", WindowRolling, WindowCalendar)
	}
	if p.GraceDays < 0 || p.GraceDays > MaxGraceDays {
		return protocol.FieldError("grace_days", "grace is 0 to %d days", MaxGraceDays)
	}
	if _, err := p.Location(); err != nil {
		return protocol.FieldError("time_zone", "unknown time zone %q", p.TimeZone)
	}
	return nil
}

// Location is the programme's time zone.
func (p *Program) Location() (*time.Location, error) {
	if p.TimeZone == "" {
		return time.UTC, nil
	}
	return time.LoadLocation(p.TimeZone)
}

func (p *Program) loc() *time.Location {
	l, err := p.Location()
	if err != nil {
		return time.UTC
	}
	return l
}

// Decode parses a stored or posted programme (JSON) and validates it.
// Reason codes: invalid_input.
func Decode(b []byte) (Program, error) {
	var p Program
	if err := json.Unmarshal(b, &p); err != nil {
		return Program{}, protocol.FieldError("", "malformed tier programme: %v", err)
	}
	return p, p.Validate()
}

// Rank is the position of tier name in the programme: 0 for no tier (or a
// tier it does not know), 1 for the lowest.
func (p *Program) Rank(name string) int {
	for i, t := range p.Tiers {
		if t.Name == name {
			return i + 1
		}
	}
	return 0
}

// Qualify is the highest tier a measure of total reaches ("" for none).
func (p *Program) Qualify(total int64) string {
	name := ""
	for _, t := range p.Tiers {
		if total >= t.Min {
			name = t.Name
		}
	}
	return name
}

// day is the civil midnight of t in loc.
func day(t time.Time, loc *time.Location) time.Time {
	y, m, d := t.In(loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, loc)
}

// periodStart is the first instant of the calendar period holding t.
func (p *Program) periodStart(t time.Time) time.Time {
	loc := p.loc()
	y, m, _ := t.In(loc).Date()
	switch p.Window.Period {
	case "year":
		m = time.January
	case "quarter":
		m = time.Month((int(m)-1)/3*3 + 1)
	}
	return time.Date(y, m, 1, 0, 0, 0, 0, loc)
}

func (p *Program) periodLen() int {
	switch p.Window.Period {
	case "year":
		return 12
	case "quarter":
		return 3
	}
	return 1
}

// WindowStart is the first instant counted at now: the civil midnight
// Days−1 days before today (rolling), or the current period's start.
func (p *Program) WindowStart(now time.Time) time.Time {
	if p.Window.Kind == WindowRolling {
		return day(now, p.loc()).AddDate(0, 0, -(p.Window.Days - 1))
	}
	return p.periodStart(now)
}

// PreviousWindow is the last complete calendar period before now's
// ([from, to)); for a rolling window, the same as the current one.
func (p *Program) PreviousWindow(now time.Time) (from, to time.Time) {
	if p.Window.Kind == WindowRolling {
		return p.WindowStart(now), now
	}
	to = p.periodStart(now)
	return to.AddDate(0, -p.periodLen(), 0), to
}

// ValidUntil is when a tier reached (or confirmed) at t ends: the end of
// the calendar period after t's, or Days civil days after t's day
// (rolling). The review that may lower it runs GraceDays later (Review).
func (p *Program) ValidUntil(t time.Time) time.Time {
	if p.Window.Kind == WindowRolling {
		return day(t, p.loc()).AddDate(0, 0, p.Window.Days)
	}
	return p.periodStart(t).AddDate(0, 2*p.periodLen(), 0)
}

// Review is when a tier valid until until is reviewed: GraceDays civil
// days later.
func (p *Program) Review(until time.Time) time.Time {
	return until.In(p.loc()).AddDate(0, 0, p.GraceDays)
}

// State is a customer's current tier: since when, valid until when, and
// when it is reviewed (ValidUntil plus the grace period).
type State struct {
	Tier       string    `json:"tier,omitempty"`
	Since      time.Time `json:"since,omitzero"`
	ValidUntil time.Time `json:"valid_until,omitzero"`
	ReviewAt   time.Time `json:"review_at,omitzero"`
}

// Change is one entry of a customer's tier history.
type Change struct {
	At     time.Time `json:"at"`
	From   string    `json:"from"`
	To     string    `json:"to"`
	Reason string    `json:"reason"`         // "upgrade" or "downgrade"
	Fact   string    `json:"fact,omitempty"` // agent/seq of the fact that upgraded
}
