package rules

import (
	"slices"
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// earn computes the points the order earns in every eligible points
// program of the tenant, into ev.d.Earnings. Earning needs a customer
// account (Customer.ID); it is computed on the lines' amounts after
// discounts, and payments (gift cards, points) do not change it.
func (ev *evaluator) earn() {
	req := ev.req
	if req.NoEarn || req.Customer == nil || req.Customer.ID == "" {
		return
	}
	for _, cc := range ev.cat.programs[req.Tenant] {
		if !ev.autoEligible(cc) {
			continue
		}
		pp := cc.c.Reward.Points
		mult := ev.multiplier(cc)
		for j := range pp.Earn {
			rule := &pp.Earn[j]
			if rule.On == EarnEvent {
				continue
			}
			var milli int64
			clear(ev.scratch)
			lines := req.Order.Lines
			switch rule.On {
			case EarnSpend:
				for _, i := range ev.lines(cc.points.earn[j]).idx {
					v := mulDiv(ev.left[i], rule.MilliPoints, rule.PerAmount)
					ev.scratch[i] = v
					milli = satAdd(milli, v)
				}
			case EarnItem:
				for _, i := range ev.lines(cc.points.earn[j]).idx {
					v := mulDiv(lines[i].Quantity, rule.MilliPoints, 1)
					ev.scratch[i] = v
					milli = satAdd(milli, v)
				}
			case EarnOrder:
				if ev.d.Subtotal < rule.MinSubtotal {
					continue
				}
				milli = rule.MilliPoints
			}
			e, ok := ev.earning(cc, rule, milli, mult)
			if !ok {
				continue
			}
			if rule.On != EarnOrder {
				lp := ev.tmp
				clear(lp)
				allocate(e.Points, milli, ev.scratch, lp)
				n := 0
				for _, p := range lp {
					if p > 0 {
						n++
					}
				}
				e.Lines = ev.linePoints(n)
				for i, p := range lp {
					if p > 0 {
						e.Lines = append(e.Lines, LinePoints{Line: i, Points: p})
					}
				}
			}
			ev.addEarning(e)
			ev.d.PointsEarned += e.Points
		}
	}
}

func satAdd(a, b int64) int64 {
	if s, ok := protocol.AddMinor(a, b); ok {
		return s
	}
	return MaxPoints * 1000
}

// earning turns a rule's milli-points into whole points: multiplier, floor,
// then the per-order and per-period caps.
func (ev *evaluator) earning(cc *compiled, rule *EarnRule, milli, mult int64) (Earning, bool) {
	pts := mulDiv(milli, mult, 10000*1000)
	pts = min(pts, MaxPoints)
	e := Earning{Campaign: cc.c.ID, Rule: rule.ID}
	if rule.MaxPoints > 0 && pts > rule.MaxPoints {
		pts, e.Capped = rule.MaxPoints, true
	}
	if rule.PeriodCap > 0 {
		room := rule.PeriodCap - ev.req.Earned[EarnKey{cc.c.ID, rule.ID}]
		if pts > room {
			pts, e.Capped = max(room, 0), true
		}
	}
	if pts <= 0 {
		return e, false
	}
	e.Points = pts
	e.ExpiresAt = ExpiresAt(cc.c.Reward.Points.Expiry, ev.req.Now, ev.loc)
	return e, true
}

// multiplier is the customer's tier rate times the highest matching time
// multiplier, in basis points.
func (ev *evaluator) multiplier(cc *compiled) int64 {
	pp := cc.c.Reward.Points
	tier := int64(10000)
	if cu := ev.req.Customer; cu != nil {
		for _, t := range pp.TierRates {
			if t.Tier == cu.Tier {
				tier = t.MultiplierBP
			}
		}
	}
	timeBP := int64(10000)
	for i := range cc.points.mults {
		if cc.points.mults[i].match(ev.weekday, ev.minute) {
			timeBP = max(timeBP, pp.Multipliers[i].MultiplierBP)
		}
	}
	return mulDiv(tier, timeBP, 10000)
}

// EventRequest asks what a custom event (newsletter sign-up, review) earns.
type EventRequest struct {
	Tenant   protocol.TenantID
	Customer *protocol.Customer // needs an ID
	Store    Store
	Now      time.Time
	Event    string
	Earned   map[EarnKey]int64 // already earned in the current period, per capped rule
}

// EarnForEvent returns the points a custom event earns in every eligible
// points program of the tenant, with tier and time multipliers and caps
// applied. It returns CodeCustomerRequired without a customer ID and a
// CodeInvalidInput error for a bad store or time.
func EarnForEvent(cat *Catalog, req EventRequest) ([]Earning, error) {
	if req.Customer == nil || req.Customer.ID == "" {
		return nil, protocol.NewError(protocol.CodeCustomerRequired)
	}
	if req.Event == "" {
		return nil, protocol.FieldError("event", "event is required")
	}
	if req.Now.IsZero() {
		return nil, protocol.FieldError("now", "the time of the event is required")
	}
	r := Request{Tenant: req.Tenant, Customer: req.Customer, Store: req.Store, Now: req.Now, Earned: req.Earned}
	ev := evaluator{cat: cat, req: &r, event: true}
	loc, err := cat.location(req.Store)
	if err != nil {
		return nil, err
	}
	ev.loc = loc
	local := req.Now.In(loc)
	ev.weekday, ev.minute = local.Weekday(), local.Hour()*60+local.Minute()
	var out []Earning
	for _, cc := range cat.auto[req.Tenant] {
		if cc.points == nil {
			continue
		}
		if code, _ := ev.eligible(cc, nil); code != "" {
			continue
		}
		mult := ev.multiplier(cc)
		for j := range cc.c.Reward.Points.Earn {
			rule := &cc.c.Reward.Points.Earn[j]
			if rule.On != EarnEvent || rule.Event != req.Event {
				continue
			}
			if e, ok := ev.earning(cc, rule, rule.MilliPoints, mult); ok {
				out = append(out, e)
			}
		}
	}
	return out, nil
}

// PeriodStart is the first instant of the period holding t, in loc: the
// caller sums what a customer earned since then for Request.Earned. Weeks
// start on Monday.
func PeriodStart(p Period, t time.Time, loc *time.Location) time.Time {
	l := t.In(loc)
	y, m, d := l.Date()
	switch p {
	case PeriodDay:
		return time.Date(y, m, d, 0, 0, 0, 0, loc)
	case PeriodWeek:
		back := (int(l.Weekday()) + 6) % 7
		return time.Date(y, m, d-back, 0, 0, 0, 0, loc)
	case PeriodMonth:
		return time.Date(y, m, 1, 0, 0, 0, 0, loc)
	case PeriodQuarter:
		return time.Date(y, quarterStart(m), 1, 0, 0, 0, 0, loc)
	default:
		return time.Date(y, 1, 1, 0, 0, 0, 0, loc)
	}
}

func quarterStart(m time.Month) time.Month { return (m-1)/3*3 + 1 }

// ExpiresAt is when points earned at earnedAt expire under e: the first
// instant they are no longer valid, computed on the store's calendar (loc).
// Zero means never.
//
//   - fixed: e.At.
//   - rolling: the start of the day after the same date Months later (the
//     day clamped to the month's end: 31 January + 1 month is valid through
//     28 or 29 February).
//   - bucketed: the end of the month, quarter or year the points were earned
//     in, Years later (earned in Q1 2026, two years: valid until 1 April 2028
//     00:00 local).
func ExpiresAt(e Expiry, earnedAt time.Time, loc *time.Location) time.Time {
	l := earnedAt.In(loc)
	y, m, d := l.Date()
	switch e.Kind {
	case ExpiryFixed:
		return e.At
	case ExpiryRolling:
		ty, tm := y, m+time.Month(e.Months)
		first := time.Date(ty, tm, 1, 0, 0, 0, 0, loc) // normalizes the month
		last := time.Date(first.Year(), first.Month()+1, 0, 0, 0, 0, 0, loc).Day()
		return time.Date(first.Year(), first.Month(), min(d, last)+1, 0, 0, 0, 0, loc)
	case ExpiryBucketed:
		switch e.Bucket {
		case PeriodMonth:
			return time.Date(y+e.Years, m+1, 1, 0, 0, 0, 0, loc)
		case PeriodQuarter:
			return time.Date(y+e.Years, quarterStart(m)+3, 1, 0, 0, 0, 0, loc)
		default:
			return time.Date(y+e.Years+1, 1, 1, 0, 0, 0, 0, loc)
		}
	}
	return time.Time{}
}

// LineQuantity is a number of units of one order line (a refund).
type LineQuantity struct {
	Line     int   `json:"line" cbor:"1,keyasint"`
	Quantity int64 `json:"quantity" cbor:"2,keyasint"`
}

// RefundPoints is how many of the points an order earned a refund takes
// back. prior lists the units of earlier refunds of the same order, so that
// several partial refunds together take back exactly what one refund of all
// those units would. Each line's share of an earning is taken back in
// proportion to the units returned, rounded up (a customer keeps no points
// for goods given back); points not tied to lines (order rules) go back with
// the last unit of the order. It never takes back more than was earned. It
// returns a CodeInvalidInput error for a refund line outside the order or
// more units than the line holds (counting prior refunds).
func RefundPoints(order protocol.Order, earned []Earning, prior, refund []LineQuantity) (int64, error) {
	before := make([]int64, len(order.Lines))
	if err := addRefunds(order, before, prior, "prior"); err != nil {
		return 0, err
	}
	after := append([]int64(nil), before...)
	if err := addRefunds(order, after, refund, "refund"); err != nil {
		return 0, err
	}
	return takeBack(order, earned, after) - takeBack(order, earned, before), nil
}

func addRefunds(order protocol.Order, back []int64, refund []LineQuantity, path string) error {
	for i, r := range refund {
		if r.Line < 0 || r.Line >= len(order.Lines) {
			return protocol.FieldError(idx(path, i)+".line", "line %d is not in the order", r.Line)
		}
		if r.Quantity <= 0 {
			return protocol.FieldError(idx(path, i)+".quantity", "quantity must be positive")
		}
		back[r.Line] += r.Quantity
		if back[r.Line] > order.Lines[r.Line].Quantity {
			return protocol.FieldError(idx(path, i)+".quantity", "more units refunded than line %d holds", r.Line)
		}
	}
	return nil
}

// takeBack is the points to take back once back[i] units of each line are
// refunded in total.
func takeBack(order protocol.Order, earned []Earning, back []int64) int64 {
	full := true
	for i, l := range order.Lines {
		if back[i] < l.Quantity {
			full = false
			break
		}
	}
	var total int64
	for _, e := range earned {
		if full {
			total += e.Points
			continue
		}
		var take int64
		for _, lp := range e.Lines {
			if lp.Line < 0 || lp.Line >= len(order.Lines) || back[lp.Line] == 0 || lp.Points <= 0 {
				continue
			}
			q := order.Lines[lp.Line].Quantity
			// ceil(points * back / q), exact in 128 bits
			t := protocol.MulDivCeil(lp.Points, back[lp.Line], q)
			take += min(t, lp.Points)
		}
		total += min(take, e.Points)
	}
	return total
}

// PointsLot is points earned together, expiring together: the unit a
// ledger keeps so that expiry and burning follow the rules.
type PointsLot struct {
	Points    int64     `json:"points" cbor:"1,keyasint"`
	ExpiresAt time.Time `json:"expires_at,omitzero" cbor:"2,keyasint,omitzero"` // zero = never
}

// expired reports whether the lot is gone at now: ExpiresAt is the first
// instant the points are no longer valid.
func (l PointsLot) expired(now time.Time) bool {
	return !l.ExpiresAt.IsZero() && !now.Before(l.ExpiresAt)
}

// SpendablePoints is the sum of the lots not expired at now: what the
// caller passes as Request.Points.
func SpendablePoints(lots []PointsLot, now time.Time) int64 {
	var n int64
	for _, l := range lots {
		if l.Points > 0 && !l.expired(now) {
			n += l.Points
		}
	}
	return n
}

// BurnPoints takes n points from the lots that expire first (never-expiring
// lots last, ties in the given order), so a customer never loses points to
// expiry that they could have spent. It returns the lots left (expired and
// emptied lots dropped, order kept) or CodeInsufficientPts.
func BurnPoints(lots []PointsLot, n int64, now time.Time) ([]PointsLot, error) {
	if n < 0 {
		return nil, protocol.FieldError("points", "points to burn must not be negative")
	}
	if SpendablePoints(lots, now) < n {
		return nil, protocol.NewError(protocol.CodeInsufficientPts)
	}
	live := make([]int, 0, len(lots))
	for i, l := range lots {
		if l.Points > 0 && !l.expired(now) {
			live = append(live, i)
		}
	}
	order := slices.Clone(live)
	slices.SortStableFunc(order, func(a, b int) int {
		ea, eb := lots[a].ExpiresAt, lots[b].ExpiresAt
		switch {
		case ea.IsZero() && eb.IsZero():
			return 0
		case ea.IsZero():
			return 1
		case eb.IsZero():
			return -1
		}
		return ea.Compare(eb)
	})
	left := make([]int64, len(lots))
	for _, i := range live {
		left[i] = lots[i].Points
	}
	for _, i := range order {
		if n == 0 {
			break
		}
		take := min(n, left[i])
		left[i] -= take
		n -= take
	}
	out := make([]PointsLot, 0, len(live))
	for _, i := range live {
		if left[i] > 0 {
			out = append(out, PointsLot{Points: left[i], ExpiresAt: lots[i].ExpiresAt})
		}
	}
	return out, nil
}

// Location is the time zone decisions in store s use (s.Location, or its
// TimeZone loaded once and cached): callers compute PeriodStart with it.
// It returns a CodeInvalidInput error naming store.time_zone.
func (cat *Catalog) Location(s Store) (*time.Location, error) { return cat.location(s) }
