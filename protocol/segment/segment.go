// Package segment computes a customer's segments from behaviour: a
// tenant's segment definitions (rules over the customer's purchase history
// and attributes) and what the hub's ledger keeps of that history
// (ledger_011: per-customer daily spend buckets, last purchase, stores).
// It is pure: the hub's ledger answers the History a definition asks for
// (Need), and Of decides, so that the decision on each fact, the periodic
// run and the online eligibility all compute a segment one way.
package segment

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// Kind is what a rule looks at. Values are stored and travel in JSON;
// never rename.
type Kind string

// Rule kinds.
const (
	// KindSpend: spent at least MinSpend (minor units) in the last Days
	// days, today included (the window starts at local midnight of the
	// definition's time zone, Days-1 days ago).
	KindSpend Kind = "spend"
	// KindStore: bought in Store, ever (Days 0) or in the last Days days.
	KindStore Kind = "store"
	// KindBirthdayMonth: the customer attribute Attribute (default
	// "birthday", "YYYY-MM-DD" or "MM-DD") falls in the current month of
	// the definition's time zone.
	KindBirthdayMonth Kind = "birthday_month"
	// KindLapsed: bought before, but nothing in the last Days days. A
	// customer who never bought is not lapsed.
	KindLapsed Kind = "lapsed"
)

// Limits of a definition from the outside.
const (
	MaxRules     = 8
	MaxDays      = 3660 // ten years of daily buckets at most
	MaxIDLen     = 64   // as rules.MaxStringLen: a campaign names it
	MaxTenantDef = 200  // definitions per tenant
)

// DefaultAttribute is the attribute a birthday rule reads when it names none.
const DefaultAttribute = "birthday"

// Rule is one condition of a definition.
type Rule struct {
	Kind      Kind             `json:"kind"`
	MinSpend  int64            `json:"min_spend,omitempty"` // minor units (KindSpend)
	Days      int              `json:"days,omitempty"`      // window in days (KindSpend, KindLapsed; KindStore optional)
	Store     protocol.StoreID `json:"store,omitempty"`     // KindStore
	Attribute string           `json:"attribute,omitempty"` // KindBirthdayMonth; default DefaultAttribute
}

// Definition is a tenant's segment: a customer is in it when every rule
// holds. A customer may be in several segments.
type Definition struct {
	ID       string `json:"id"`
	Name     string `json:"name,omitempty"`
	TimeZone string `json:"time_zone,omitempty"` // IANA; "" = UTC; day and month boundaries
	Rules    []Rule `json:"rules"`
}

// Validate checks a definition from the outside; errors are
// CodeInvalidInput naming the field.
func (d Definition) Validate() error {
	if err := protocol.ValidateID("id", d.ID); err != nil || d.ID == "" {
		return protocol.FieldError("id", "a segment id is 1 to %d letters, digits, '-', '_' or '.'", MaxIDLen)
	}
	if len(d.ID) > MaxIDLen {
		return protocol.FieldError("id", "a segment id has at most %d bytes", MaxIDLen)
	}
	if len(d.Name) > 200 {
		return protocol.FieldError("name", "a name has at most 200 bytes")
	}
	if _, err := d.Location(); err != nil {
		return protocol.FieldError("time_zone", "unknown time zone %q", d.TimeZone)
	}
	if len(d.Rules) == 0 || len(d.Rules) > MaxRules {
		return protocol.FieldError("rules", "a segment has 1 to %d rules", MaxRules)
	}
	for i, r := range d.Rules {
		p := "rules[" + strconv.Itoa(i) + "]"
		days := func(need bool) error {
			if r.Days < 0 || r.Days > MaxDays || (need && r.Days == 0) {
				return protocol.FieldError(p+".days", "days must be 1 to %d", MaxDays)
			}
			return nil
		}
		switch r.Kind {
		case KindSpend:
			if r.MinSpend <= 0 || r.MinSpend > protocol.MaxAmount {
				return protocol.FieldError(p+".min_spend", "min_spend must be positive")
			}
			if err := days(true); err != nil {
				return err
			}
		case KindStore:
			if r.Store == "" || protocol.ValidateID(p+".store", string(r.Store)) != nil {
				return protocol.FieldError(p+".store", "a store rule names a store")
			}
			if err := days(false); err != nil {
				return err
			}
		case KindLapsed:
			if err := days(true); err != nil {
				return err
			}
		case KindBirthdayMonth:
			if len(r.Attribute) > 64 {
				return protocol.FieldError(p+".attribute", "an attribute key has at most 64 bytes")
			}
		default:
			return protocol.FieldError(p+".kind", "unknown rule kind %q (spend, store, birthday_month, lapsed)", r.Kind)
		}
	}
	return nil
}

// Location is the definition's time zone.
func (d Definition) Location() (*time.Location, error) {
	if d.TimeZone == "" {
		return time.UTC, nil
	}
	return time.LoadLocation(d.TimeZone)
}

// Since is the first instant of a window of days days ending now, today
// included: local midnight, days-1 days before today, in loc. It follows
// the calendar (a DST day is 23 or 25 hours).
func Since(now time.Time, days int, loc *time.Location) time.Time {
	l := now.In(loc)
	return time.Date(l.Year(), l.Month(), l.Day()-(days-1), 0, 0, 0, 0, loc)
}

// Query is what the definitions need of one customer's history: the
// spend since each instant, and for each store its last purchase.
type Query struct {
	SpendSince []time.Time
	Stores     []protocol.StoreID
}

// History is the ledger's answer to a Query.
type History struct {
	Last   time.Time                      // last purchase; zero: none
	Spend  []int64                        // per Query.SpendSince
	Stores map[protocol.StoreID]time.Time // last purchase in each store asked; missing: never
}

// Need is the Query that Of needs for defs at now.
func Need(defs []Definition, now time.Time) Query {
	var q Query
	for _, d := range defs {
		loc, err := d.Location()
		if err != nil {
			continue
		}
		for _, r := range d.Rules {
			switch r.Kind {
			case KindSpend:
				if s := Since(now, r.Days, loc); !slices.ContainsFunc(q.SpendSince, s.Equal) {
					q.SpendSince = append(q.SpendSince, s)
				}
			case KindStore:
				if !slices.Contains(q.Stores, r.Store) {
					q.Stores = append(q.Stores, r.Store)
				}
			}
		}
	}
	return q
}

// Of returns the IDs of the definitions the customer is in at now, sorted:
// h answers Need(defs, now); attrs are the customer's attributes.
func Of(defs []Definition, q Query, h History, attrs map[string]string, now time.Time) []string {
	var out []string
	for _, d := range defs {
		loc, err := d.Location()
		if err != nil {
			continue
		}
		in := true
		for _, r := range d.Rules {
			if !holds(r, q, h, attrs, now, loc) {
				in = false
				break
			}
		}
		if in {
			out = append(out, d.ID)
		}
	}
	slices.Sort(out)
	return out
}

func holds(r Rule, q Query, h History, attrs map[string]string, now time.Time, loc *time.Location) bool {
	switch r.Kind {
	case KindSpend:
		s := Since(now, r.Days, loc)
		i := slices.IndexFunc(q.SpendSince, s.Equal)
		return i >= 0 && i < len(h.Spend) && h.Spend[i] >= r.MinSpend
	case KindStore:
		at, ok := h.Stores[r.Store]
		return ok && (r.Days == 0 || !at.Before(Since(now, r.Days, loc)))
	case KindLapsed:
		return !h.Last.IsZero() && h.Last.Before(Since(now, r.Days, loc))
	case KindBirthdayMonth:
		key := r.Attribute
		if key == "" {
			key = DefaultAttribute
		}
		m, ok := birthMonth(attrs[key])
		return ok && m == now.In(loc).Month()
	}
	return false
}

// birthMonth reads the month of "YYYY-MM-DD" or "MM-DD".
func birthMonth(v string) (time.Month, bool) {
	parts := strings.Split(v, "-")
	var ms string
	switch len(parts) {
	case 3:
		ms = parts[1]
	case 2:
		ms = parts[0]
	default:
		return 0, false
	}
	m, err := strconv.Atoi(ms)
	if err != nil || m < 1 || m > 12 {
		return 0, false
	}
	return time.Month(m), true
}

// String is for logs.
func (r Rule) String() string {
	return fmt.Sprintf("%s(%d,%d,%s)", r.Kind, r.MinSpend, r.Days, r.Store)
}

// Update is one customer's segments as a periodic run computed them.
type Update struct {
	Customer protocol.CustomerID
	Segments []string
}

// Purchase is one order of a customer as the hub's purchase history keeps
// it: the first fact of a sale or an online basket that named the customer.
type Purchase struct {
	Store    protocol.StoreID      `json:"store"`
	Txn      string                `json:"txn"`
	At       time.Time             `json:"at"`
	Value    int64                 `json:"value"` // order subtotal, minor units
	Currency protocol.Currency     `json:"currency,omitempty"`
	Fact     protocol.RedemptionID `json:"fact"`
}
