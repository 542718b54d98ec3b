package oldrules

import (
	"cmp"
	"math"
	"math/bits"
	"slices"

	"github.com/punchcard/punchcard/protocol"
)

// unitRef is a run of equally priced units of one line that a unit-level
// reward may land on. Rewards never expand quantities into single units:
// the cost is linear in lines, whatever the quantities.
type unitRef struct {
	line  int
	price int64 // value of one unit on the chosen base
	avail int64 // units
	class int   // buy_x_get_y: 1 = also a "buy" unit; bundle: item index
}

// effect computes what cc gives on the amounts in left (the lines) and
// shipLeft, into ev.scratch (minor units per line) and ev.qty (units per
// line). It commits nothing. standalone evaluates on the initial order.
func (ev *evaluator) effect(cc *compiled, left []int64, shipLeft int64, standalone bool) (lineTotal, ship int64, code protocol.Code, msg string) {
	clear(ev.scratch)
	clear(ev.qty)
	r := &cc.c.Reward
	lines := ev.req.Order.Lines
	useInitial := standalone || cc.initial
	base := func(i int) int64 {
		if useInitial {
			return ev.initial[i]
		}
		return left[i]
	}
	unit := func(i int) int64 {
		if useInitial {
			return lines[i].UnitPrice
		}
		return left[i] / lines[i].Quantity
	}

	// Match the target once per line; every loop below reads the mask.
	in := ev.in
	if r.Kind != RewardBundle && r.Kind != RewardFreeShipping {
		for i := range lines {
			in[i] = cc.target.match(ev.lsku[i], ev.lcat[i])
		}
	}

	switch r.Kind {
	case RewardPercentOff, RewardAmountOff, RewardSpendTiers, RewardQuantityTiers:
		var sum, units int64
		matched := false
		for i := range lines {
			if in[i] {
				matched = true
				sum += base(i)
				units += lines[i].Quantity
			}
		}
		if !matched {
			return 0, 0, protocol.CodeNoMatchingItems, protocol.CodeNoMatchingItems.Message()
		}
		var d int64
		switch r.Kind {
		case RewardPercentOff:
			d = protocol.PercentOf(sum, protocol.BasisPoints(r.PercentBP))
		case RewardAmountOff:
			d = min(r.Amount, sum)
		case RewardSpendTiers, RewardQuantityTiers:
			measure := sum
			if r.Kind == RewardQuantityTiers {
				measure = units
			}
			t := -1
			for j := range r.Tiers {
				if r.Tiers[j].Min <= measure {
					t = j
				}
			}
			if t < 0 {
				return 0, 0, protocol.CodeMinimumNotMet, "the basket has not reached the first tier (" + itoa64(r.Tiers[0].Min) + ")"
			}
			tier := r.Tiers[t]
			switch {
			case tier.PercentBP > 0:
				d = protocol.PercentOf(sum, protocol.BasisPoints(tier.PercentBP))
			case r.Kind == RewardQuantityTiers: // amount off each unit
				for i := range lines {
					if in[i] {
						off, ok := protocol.MulMinor(tier.Amount, lines[i].Quantity)
						if !ok {
							off = math.MaxInt64
						}
						ev.scratch[i] = min(off, base(i), left[i])
						ev.qty[i] = lines[i].Quantity
					}
				}
				return ev.finishLines(r.MaxDiscount, left)
			default:
				d = min(tier.Amount, sum)
			}
		}
		if r.MaxDiscount > 0 {
			d = min(d, r.MaxDiscount)
		}
		if d <= 0 {
			return 0, 0, protocol.CodeNoEffect, protocol.CodeNoEffect.Message()
		}
		for i := range lines {
			if in[i] {
				ev.qty[i] = lines[i].Quantity
			}
		}
		allocate(d, sum, func(i int) int64 {
			if ev.qty[i] == 0 {
				return 0
			}
			return base(i)
		}, ev.scratch)
		return ev.finishLines(0, left)

	case RewardFixedPrice:
		refs := ev.units[:0]
		for i := range lines {
			if in[i] {
				refs = append(refs, unitRef{line: i, price: unit(i), avail: lines[i].Quantity})
			}
		}
		ev.units = refs
		if len(refs) == 0 {
			return 0, 0, protocol.CodeNoMatchingItems, protocol.CodeNoMatchingItems.Message()
		}
		k := int64(math.MaxInt64)
		if r.MaxQuantity > 0 {
			k = r.MaxQuantity
		}
		// Units already at or below the fixed price gain nothing; pick among
		// the others.
		kept := refs[:0]
		for _, u := range refs {
			if u.price > r.Amount {
				kept = append(kept, u)
			}
		}
		ev.pickUnits(kept, k, r.Pick, -1)
		for _, u := range kept {
			if q := ev.qty[u.line]; q > 0 {
				ev.scratch[u.line] = min(q*(u.price-r.Amount), left[u.line])
			}
		}
		return ev.finishLines(r.MaxDiscount, left)

	case RewardFreeItem:
		refs := ev.units[:0]
		for i := range lines {
			if in[i] {
				refs = append(refs, unitRef{line: i, price: unit(i), avail: lines[i].Quantity})
			}
		}
		ev.units = refs
		if len(refs) == 0 {
			return 0, 0, protocol.CodeNoMatchingItems, protocol.CodeNoMatchingItems.Message()
		}
		k := r.Get
		if k == 0 {
			k = 1
		}
		ev.pickUnits(refs, k, r.Pick, -1)
		ev.unitDiscounts(refs, getBP(r), left)
		return ev.finishLines(r.MaxDiscount, left)

	case RewardBuyXGetY:
		refs := ev.units[:0]
		var b, g, x int64
		for i := range lines {
			inBuy, inGet := in[i], in[i]
			if cc.get != cc.target {
				inGet = cc.get.match(ev.lsku[i], ev.lcat[i])
			}
			q := lines[i].Quantity
			switch {
			case inBuy && inGet:
				x += q
				refs = append(refs, unitRef{line: i, price: unit(i), avail: q, class: 1})
			case inBuy:
				b += q
			case inGet:
				g += q
				refs = append(refs, unitRef{line: i, price: unit(i), avail: q})
			}
		}
		ev.units = refs
		if b+g+x == 0 {
			return 0, 0, protocol.CodeNoMatchingItems, protocol.CodeNoMatchingItems.Message()
		}
		n := min((b+x)/r.Buy, (g+x)/r.Get, (b+g+x)/(r.Buy+r.Get))
		if r.MaxApplications > 0 {
			n = min(n, r.MaxApplications)
		}
		if n == 0 {
			return 0, 0, protocol.CodeMinimumNotMet, "buy " + itoa64(r.Buy) + " to get " + itoa64(r.Get)
		}
		// Units matching both sides may be rewarded only while enough
		// remain to count as bought.
		xcap := x - max(0, n*r.Buy-b)
		ev.pickUnits(refs, n*r.Get, r.Pick, xcap)
		ev.unitDiscounts(refs, getBP(r), left)
		return ev.finishLines(r.MaxDiscount, left)

	case RewardBundle:
		refs := ev.units[:0]
		var units [MaxSmallList]int64 // per bundle item; Validate bounds the items
	lineLoop:
		for i := range lines {
			for j, m := range cc.bundle {
				if m.match(ev.lsku[i], ev.lcat[i]) {
					refs = append(refs, unitRef{line: i, price: unit(i), avail: lines[i].Quantity, class: j})
					units[j] += lines[i].Quantity
					continue lineLoop
				}
			}
		}
		ev.units = refs
		if len(refs) == 0 {
			return 0, 0, protocol.CodeNoMatchingItems, protocol.CodeNoMatchingItems.Message()
		}
		n := int64(math.MaxInt64)
		for j, it := range r.Bundle {
			n = min(n, units[j]/it.Quantity)
		}
		if r.MaxApplications > 0 {
			n = min(n, r.MaxApplications)
		}
		if n == 0 {
			return 0, 0, protocol.CodeMinimumNotMet, "the basket does not hold a complete bundle"
		}
		// Pick each item's units within its own class.
		slices.SortStableFunc(refs, func(a, b unitRef) int { return cmp.Compare(a.class, b.class) })
		var value int64
		for start := 0; start < len(refs); {
			end := start
			for end < len(refs) && refs[end].class == refs[start].class {
				end++
			}
			ev.pickUnits(refs[start:end], n*r.Bundle[refs[start].class].Quantity, r.Pick, -1)
			start = end
		}
		for _, u := range refs {
			if q := ev.qty[u.line]; q > 0 {
				v := min(q*u.price, left[u.line])
				ev.scratch[u.line] = v // the chosen units' value, for now
				value += v
			}
		}
		price, ok := protocol.MulMinor(n, r.Amount)
		if !ok || price >= value {
			clear(ev.scratch)
			return 0, 0, protocol.CodeNoEffect, "the bundle price is not below the items' price"
		}
		d := value - price
		weights := ev.tmp
		copy(weights, ev.scratch)
		clear(ev.scratch)
		allocate(d, value, func(i int) int64 { return weights[i] }, ev.scratch)
		return ev.finishLines(0, left)

	case RewardFreeShipping:
		s := shipLeft
		if useInitial {
			s = min(ev.req.Order.Shipping, shipLeft)
		}
		if r.MaxDiscount > 0 {
			s = min(s, r.MaxDiscount)
		}
		if s <= 0 {
			return 0, 0, protocol.CodeNoEffect, "there is no shipping to take off"
		}
		return 0, s, "", ""
	}
	return 0, 0, protocol.CodeNoEffect, protocol.CodeNoEffect.Message()
}

func getBP(r *Reward) protocol.BasisPoints {
	if r.GetPercentBP == 0 {
		return 10000
	}
	return protocol.BasisPoints(r.GetPercentBP)
}

// unitDiscounts turns the picked units of each line into that line's
// discount: bp of their value, rounded down once per line.
func (ev *evaluator) unitDiscounts(refs []unitRef, bp protocol.BasisPoints, left []int64) {
	for _, u := range refs {
		if q := ev.qty[u.line]; q > 0 {
			ev.scratch[u.line] = min(protocol.PercentOf(q*u.price, bp), left[u.line])
		}
	}
}

// finishLines applies the reward's cap to the per-line discounts, clamps
// each to what is left on its line, and sums them.
func (ev *evaluator) finishLines(maxDiscount int64, left []int64) (int64, int64, protocol.Code, string) {
	var total int64
	for i, v := range ev.scratch {
		v = max(0, min(v, left[i]))
		ev.scratch[i] = v
		if v == 0 {
			ev.qty[i] = 0
		}
		total += v
	}
	if maxDiscount > 0 && total > maxDiscount {
		shrink(ev.scratch, ev.qty, ev.tmp, total, maxDiscount)
		total = maxDiscount
	}
	if total <= 0 {
		return 0, 0, protocol.CodeNoEffect, protocol.CodeNoEffect.Message()
	}
	return total, 0, "", ""
}

// pickUnits chooses k units among refs, cheapest or most expensive first
// (ties by line), adding them to ev.qty. Units of class 1 count against
// xcap when xcap >= 0.
func (ev *evaluator) pickUnits(refs []unitRef, k int64, pick Pick, xcap int64) {
	slices.SortFunc(refs, func(a, b unitRef) int {
		c := cmp.Compare(a.price, b.price)
		if pick == PickMostExpensive {
			c = -c
		}
		if c != 0 {
			return c
		}
		return cmp.Compare(a.line, b.line)
	})
	for _, u := range refs {
		if k <= 0 {
			return
		}
		take := min(u.avail, k)
		if xcap >= 0 && u.class == 1 {
			take = min(take, xcap)
			xcap -= take
		}
		if take <= 0 {
			continue
		}
		ev.qty[u.line] += take
		k -= take
	}
}

// allocate spreads total over the lines in proportion to weight(i) (whose
// sum is sum, at least total): each line gets the floor of its share, and
// the units left over go one each to the first lines with room, so no line
// gets more than its weight and the parts add up exactly.
func allocate(total, sum int64, weight func(int) int64, out []int64) {
	if total <= 0 || sum <= 0 {
		return
	}
	total = min(total, sum)
	var given int64
	for i := range out {
		w := weight(i)
		if w <= 0 {
			continue
		}
		s := mulDiv(total, w, sum)
		out[i] += s
		given += s
	}
	for i := range out {
		if given >= total {
			break
		}
		if w := weight(i); w > 0 && out[i] < w {
			out[i]++
			given++
		}
	}
}

// shrink scales the per-line discounts in v (summing to total) down to sum
// to limit, keeping their proportions (rounded down, remainder to the first
// lines). w is scratch space as long as v.
func shrink(v, qty, w []int64, total, limit int64) {
	copy(w, v)
	clear(v)
	allocate(limit, total, func(i int) int64 { return w[i] }, v)
	for i := range v {
		if v[i] == 0 {
			qty[i] = 0
		}
	}
}

// mulDiv is floor(a*b/c) for non-negative a, b and positive c, with a
// 128-bit intermediate; it saturates at math.MaxInt64.
func mulDiv(a, b, c int64) int64 {
	if a <= 0 || b <= 0 || c <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi >= uint64(c) {
		return math.MaxInt64
	}
	q, _ := bits.Div64(hi, lo, uint64(c))
	if q > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(q)
}
