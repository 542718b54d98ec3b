package rules

import (
	"math"
	"math/bits"

	"github.com/punchcard/punchcard/protocol"
)

// verdict is effect's verdict for cc on the initial order (effect with
// standalone set: its code and message) worked out without computing the
// discount's spread over the lines: most candidates of a large catalog are
// checked on their own once and applied rarely, and for unit-level
// rewards the full computation builds, sorts and spreads per-unit lists
// only to learn whether anything is left. ok is false when it cannot tell
// (effect then decides). Each case follows effect's own steps on the
// initial amounts (base and unit are the initial line totals and unit
// prices), stopping at the first line that gives something: a positive
// discount on a line stays positive through finishUnits and its cap
// (Validate: caps are positive or absent), so the verdict is "".
// TestStandaloneVerdict checks it against effect on random catalogs.
func (ev *evaluator) verdict(cc *compiled) (code protocol.Code, msg string, ok bool) {
	r := &cc.c.Reward
	lines := ev.req.Order.Lines
	switch r.Kind {
	case RewardFixedPrice:
		ls := ev.lines(cc.target)
		if len(ls.idx) == 0 {
			return protocol.CodeNoMatchingItems, msgNoMatchingItems, true
		}
		// pickUnits takes units in byPrice order among the lines priced
		// above the fixed price; the first such line gets at least one
		// unit (k >= 1), worth (price - fixed) > 0 each, within its
		// initial total (price*quantity).
		k := int64(math.MaxInt64)
		if r.MaxQuantity > 0 {
			k = r.MaxQuantity
		}
		for _, i := range ls.idx { // any line will do: the first picked gives
			if p := lines[i].UnitPrice; p > r.Amount {
				take := min(lines[i].Quantity, k)
				if take > 0 && min(take*(p-r.Amount), ev.initial[i]) > 0 {
					return "", "", true
				}
				return "", "", false // not reached for valid orders; let effect say
			}
		}
		return protocol.CodeNoEffect, msgNoEffect, true

	case RewardFreeItem:
		ls := ev.lines(cc.target)
		if len(ls.idx) == 0 {
			return protocol.CodeNoMatchingItems, msgNoMatchingItems, true
		}
		k := r.Get
		if k == 0 {
			k = 1
		}
		bp := getBP(r)
		for _, i := range ev.byPrice(ls, r.Pick) {
			if k <= 0 {
				break
			}
			take := min(lines[i].Quantity, k)
			if take <= 0 {
				continue
			}
			k -= take
			if min(percentOf(take*lines[i].UnitPrice, bp), ev.initial[i]) > 0 {
				return "", "", true
			}
		}
		return protocol.CodeNoEffect, msgNoEffect, true

	case RewardBuyXGetY:
		return ev.verdictBuyXGetY(cc)

	case RewardBundle:
		return ev.verdictBundle(cc)
	}
	return "", "", false
}

// verdictBuyXGetY is effect's buy_x_get_y case on the initial order,
// without the unit list: the same counts, then pickUnits' walk over the
// rewarded lines in price order.
func (ev *evaluator) verdictBuyXGetY(cc *compiled) (protocol.Code, string, bool) {
	r := &cc.c.Reward
	lines := ev.req.Order.Lines
	buy := ev.lines(cc.target)
	get := buy
	if cc.get != cc.target {
		get = ev.lines(cc.get)
	}
	var b, g, x int64
	for _, i := range buy.idx {
		if get.has(i) {
			x += lines[i].Quantity
		} else {
			b += lines[i].Quantity
		}
	}
	for _, i := range get.idx {
		if !buy.has(i) {
			g += lines[i].Quantity
		}
	}
	if b+g+x == 0 {
		return protocol.CodeNoMatchingItems, msgNoMatchingItems, true
	}
	n := min((b+x)/r.Buy, (g+x)/r.Get, (b+g+x)/(r.Buy+r.Get))
	if r.MaxApplications > 0 {
		n = min(n, r.MaxApplications)
	}
	if n == 0 {
		if ev.quiet {
			return protocol.CodeMinimumNotMet, "", true
		}
		return protocol.CodeMinimumNotMet, "buy " + itoa64(r.Buy) + " to get " + itoa64(r.Get), true
	}
	xcap := x - max(0, n*r.Buy-b)
	k := n * r.Get
	bp := getBP(r)
	for _, i := range ev.byPrice(get, r.Pick) {
		if k <= 0 {
			break
		}
		take := min(lines[i].Quantity, k)
		if buy.has(i) { // class 1
			take = min(take, xcap)
			xcap -= take
		}
		if take <= 0 {
			continue
		}
		k -= take
		if min(percentOf(take*lines[i].UnitPrice, bp), ev.initial[i]) > 0 {
			return "", "", true
		}
	}
	return protocol.CodeNoEffect, msgNoEffect, true
}

// verdictBundle is effect's bundle case on the initial order: each line
// counts for its first matching item; each item's units are picked in
// price order; the bundle gives something when its price is below the
// picked units' value (allocate then spreads the difference, all of it,
// within the lines' initial totals).
func (ev *evaluator) verdictBundle(cc *compiled) (protocol.Code, string, bool) {
	r := &cc.c.Reward
	lines := ev.req.Order.Lines
	nb := len(cc.bundle)
	if nb > MaxSmallList || len(lines) > 64 {
		return "", "", false
	}
	// Each line's item: the first that matches it (own[j] are item j's).
	var own [MaxSmallList]uint64
	var units, want [MaxSmallList]int64
	var seen uint64
	for j, m := range cc.bundle {
		l := ev.lines(m)
		own[j] = l.bits &^ seen
		seen |= l.bits
		for t := own[j]; t != 0; t &= t - 1 {
			units[j] += lines[bits.TrailingZeros64(t)].Quantity
		}
	}
	if seen == 0 {
		return protocol.CodeNoMatchingItems, msgNoMatchingItems, true
	}
	n := int64(math.MaxInt64)
	for j, it := range r.Bundle {
		n = min(n, units[j]/it.Quantity)
	}
	if r.MaxApplications > 0 {
		n = min(n, r.MaxApplications)
	}
	if n == 0 {
		return protocol.CodeMinimumNotMet, "the basket does not hold a complete bundle", true
	}
	for j, it := range r.Bundle {
		want[j] = n * it.Quantity
	}
	// Each item's units in price order: the lines in price order, each
	// to its item.
	var value int64
	for _, i := range ev.priceOrder(r.Pick) {
		if seen>>uint(i)&1 == 0 {
			continue
		}
		j := 0
		for own[j]>>uint(i)&1 == 0 {
			j++
		}
		if take := min(lines[i].Quantity, want[j]); take > 0 {
			want[j] -= take
			value += min(take*lines[i].UnitPrice, ev.initial[i])
		}
	}
	price, ok := protocol.MulMinor(n, r.Amount)
	if !ok || price >= value {
		return protocol.CodeNoEffect, "the bundle price is not below the items' price", true
	}
	return "", "", true
}
