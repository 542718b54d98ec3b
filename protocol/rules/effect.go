package rules

import (
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
// line). It commits nothing. standalone evaluates on the initial order
// and wants only the verdict (code and message, the same as a full
// computation's): ev.scratch and ev.qty are then not to be read.
func (ev *evaluator) effect(cc *compiled, left []int64, shipLeft int64, standalone bool) (lineTotal, ship int64, code protocol.Code, msg string) {
	r := &cc.c.Reward
	// The lines start clear, except for a standalone verdict of an
	// order-level reward, which writes nothing (the unit-level cases clear
	// them then).
	if !standalone {
		clear(ev.scratchQty) // ev.scratch and ev.qty
	}
	ev.touch = 0
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

	switch r.Kind {
	case RewardPercentOff, RewardAmountOff, RewardSpendTiers, RewardQuantityTiers:
		idx := ev.lines(cc.target).idx
		if len(idx) == 0 {
			return 0, 0, protocol.CodeNoMatchingItems, msgNoMatchingItems
		}
		var sum, units int64
		for _, i := range idx {
			sum += base(int(i))
			units += lines[i].Quantity
		}
		var d int64
		switch r.Kind {
		case RewardPercentOff:
			d = percentOf(sum, protocol.BasisPoints(r.PercentBP))
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
				if ev.quiet {
					return 0, 0, protocol.CodeMinimumNotMet, ""
				}
				return 0, 0, protocol.CodeMinimumNotMet, "the basket has not reached the first tier (" + itoa64(r.Tiers[0].Min) + ")"
			}
			tier := r.Tiers[t]
			switch {
			case tier.PercentBP > 0:
				d = percentOf(sum, protocol.BasisPoints(tier.PercentBP))
			case r.Kind == RewardQuantityTiers: // amount off each unit
				if standalone {
					// Only the verdict is wanted: finishIdx gives something
					// (at most the cap, which is positive) when a line does.
					for _, i := range idx {
						off, ok := protocol.MulMinor(tier.Amount, lines[i].Quantity)
						if !ok {
							off = math.MaxInt64
						}
						if min(off, ev.initial[i]) > 0 {
							return 1, 0, "", ""
						}
					}
					return 0, 0, protocol.CodeNoEffect, msgNoEffect
				}
				for _, i := range idx {
					off, ok := protocol.MulMinor(tier.Amount, lines[i].Quantity)
					if !ok {
						off = math.MaxInt64
					}
					ev.scratch[i] = min(off, base(int(i)), left[i])
					ev.qty[i] = lines[i].Quantity
				}
				return ev.finishIdx(r.MaxDiscount, left, idx)
			default:
				d = min(tier.Amount, sum)
			}
		}
		if r.MaxDiscount > 0 {
			d = min(d, r.MaxDiscount)
		}
		if d <= 0 {
			return 0, 0, protocol.CodeNoEffect, msgNoEffect
		}
		if standalone {
			// Only the verdict is wanted: d is at most sum, the lines'
			// initial amounts, so allocate spreads all of it and
			// finishIdx, clamping to those amounts, keeps it.
			return d, 0, "", ""
		}
		if !useInitial && d <= sum {
			return ev.spreadLeft(d, sum, left, idx)
		}
		w := ev.tmp
		for _, i := range idx {
			ev.qty[i] = lines[i].Quantity
			w[i] = base(int(i))
		}
		allocateIdx(d, sum, idx, w, ev.scratch)
		return ev.finishIdx(0, left, idx)

	case RewardFixedPrice:
		ev.clearStandalone(standalone)
		ls := ev.lines(cc.target)
		if len(ls.idx) == 0 {
			return 0, 0, protocol.CodeNoMatchingItems, msgNoMatchingItems
		}
		k := int64(math.MaxInt64)
		if r.MaxQuantity > 0 {
			k = r.MaxQuantity
		}
		// Units already at or below the fixed price gain nothing; pick among
		// the others.
		refs := ev.units[:0]
		for _, i := range ev.byPrice(ls, r.Pick) {
			if p := unit(int(i)); p > r.Amount {
				refs = append(refs, unitRef{line: int(i), price: p, avail: lines[i].Quantity})
			}
		}
		ev.units = refs
		ev.pickUnits(refs, k, r.Pick, -1, useInitial)
		for _, u := range refs {
			if q := ev.qty[u.line]; q > 0 {
				ev.scratch[u.line] = min(q*(u.price-r.Amount), left[u.line])
			}
		}
		return ev.finishUnits(r.MaxDiscount, left, refs)

	case RewardFreeItem:
		ev.clearStandalone(standalone)
		ls := ev.lines(cc.target)
		if len(ls.idx) == 0 {
			return 0, 0, protocol.CodeNoMatchingItems, msgNoMatchingItems
		}
		refs := ev.units[:0]
		for _, i := range ev.byPrice(ls, r.Pick) {
			refs = append(refs, unitRef{line: int(i), price: unit(int(i)), avail: lines[i].Quantity})
		}
		ev.units = refs
		k := r.Get
		if k == 0 {
			k = 1
		}
		ev.pickUnits(refs, k, r.Pick, -1, useInitial)
		ev.unitDiscounts(refs, getBP(r), left)
		return ev.finishUnits(r.MaxDiscount, left, refs)

	case RewardBuyXGetY:
		ev.clearStandalone(standalone)
		buy := ev.lines(cc.target)
		get := buy
		if cc.get != cc.target {
			get = ev.lines(cc.get)
		}
		refs := ev.units[:0]
		var b, g, x int64
		for _, i := range ev.priceOrder(r.Pick) {
			inBuy, inGet := buy.has(i), get.has(i)
			q := lines[i].Quantity
			switch {
			case inBuy && inGet:
				x += q
				refs = append(refs, unitRef{line: int(i), price: unit(int(i)), avail: q, class: 1})
			case inBuy:
				b += q
			case inGet:
				g += q
				refs = append(refs, unitRef{line: int(i), price: unit(int(i)), avail: q})
			}
		}
		ev.units = refs
		if b+g+x == 0 {
			return 0, 0, protocol.CodeNoMatchingItems, msgNoMatchingItems
		}
		n := min((b+x)/r.Buy, (g+x)/r.Get, (b+g+x)/(r.Buy+r.Get))
		if r.MaxApplications > 0 {
			n = min(n, r.MaxApplications)
		}
		if n == 0 {
			if ev.quiet {
				return 0, 0, protocol.CodeMinimumNotMet, ""
			}
			return 0, 0, protocol.CodeMinimumNotMet, "buy " + itoa64(r.Buy) + " to get " + itoa64(r.Get)
		}
		// Units matching both sides may be rewarded only while enough
		// remain to count as bought.
		xcap := x - max(0, n*r.Buy-b)
		ev.pickUnits(refs, n*r.Get, r.Pick, xcap, useInitial)
		ev.unitDiscounts(refs, getBP(r), left)
		return ev.finishUnits(r.MaxDiscount, left, refs)

	case RewardBundle:
		ev.clearStandalone(standalone)
		// Per bundle item (Validate bounds them): its lines and units.
		items := ev.buf.items[:0]
		for _, m := range cc.bundle {
			items = append(items, ev.lines(m))
		}
		ev.buf.items = items
		units := grow(ev.buf.itemUnits, len(items))
		ev.buf.itemUnits = units
		refs := ev.units[:0]
		// Lines in pick order, each counted for its first matching item,
		// then grouped by item (stable): each item's units come in pick
		// order.
	lineLoop:
		for _, i := range ev.priceOrder(r.Pick) {
			for j := range items {
				if items[j].has(i) {
					refs = append(refs, unitRef{line: int(i), price: unit(int(i)), avail: lines[i].Quantity, class: j})
					units[j] += lines[i].Quantity
					continue lineLoop
				}
			}
		}
		ev.units = refs
		if len(refs) == 0 {
			return 0, 0, protocol.CodeNoMatchingItems, msgNoMatchingItems
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
		refs = ev.groupByClass(refs, len(cc.bundle))
		var value int64
		for start := 0; start < len(refs); {
			end := start
			for end < len(refs) && refs[end].class == refs[start].class {
				end++
			}
			ev.pickUnits(refs[start:end], n*r.Bundle[refs[start].class].Quantity, r.Pick, -1, useInitial)
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
		allocate(d, value, weights, ev.scratch)
		return ev.finishUnits(0, left, refs)

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
	return 0, 0, protocol.CodeNoEffect, msgNoEffect
}

// spreadLeft is allocateIdx then finishIdx for an order-level discount d
// (0 < d <= sum) spread over the lines idx in proportion to what is left
// on them (sum): the weights are the amounts left, so no line's part
// exceeds its amount and the clamp of finishIdx changes nothing; one pass
// fewer and no copy of the weights.
func (ev *evaluator) spreadLeft(d, sum int64, left []int64, idx []int32) (int64, int64, protocol.Code, string) {
	out := ev.scratch
	var given int64
	for _, i := range idx {
		if w := left[i]; w > 0 {
			s := mulDiv(d, w, sum)
			out[i] = s
			given += s
		}
	}
	for _, i := range idx {
		if given >= d {
			break
		}
		if w := left[i]; w > 0 && out[i] < w {
			out[i]++
			given++
		}
	}
	lines := ev.req.Order.Lines
	var total int64
	for _, i := range idx {
		if v := out[i]; v > 0 {
			ev.qty[i] = lines[i].Quantity
			ev.touch |= 1 << uint(i) // lines past 64 are not tracked (touchOK)
			total += v
		}
	}
	return ev.finishTotal(0, total)
}

// clearStandalone zeroes ev.scratch and ev.qty for a case of effect that
// writes them when effect did not (standalone).
func (ev *evaluator) clearStandalone(standalone bool) {
	if standalone {
		clear(ev.scratchQty)
	}
}

// groupByClass orders refs by class (0 to n-1), keeping their order
// within a class (a stable counting sort), in place.
func (ev *evaluator) groupByClass(refs []unitRef, n int) []unitRef {
	var start [MaxSmallList + 1]int
	for _, u := range refs {
		start[u.class+1]++
	}
	for j := 1; j <= n; j++ {
		start[j] += start[j-1]
	}
	out := grow(ev.buf.units2, len(refs))
	ev.buf.units2 = out
	for _, u := range refs {
		out[start[u.class]] = u
		start[u.class]++
	}
	copy(refs, out)
	return refs
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
			ev.scratch[u.line] = min(percentOf(q*u.price, bp), left[u.line])
		}
	}
}

// finishIdx applies the reward's cap to the per-line discounts, clamps
// each to what is left on its line, and sums them: the lines are idx, the
// only ones the reward wrote (the others' discounts are 0 and stay so).
func (ev *evaluator) finishIdx(maxDiscount int64, left []int64, idx []int32) (int64, int64, protocol.Code, string) {
	var total int64
	for _, i := range idx {
		v := max(0, min(ev.scratch[i], left[i]))
		ev.scratch[i] = v
		if v == 0 {
			ev.qty[i] = 0
		} else {
			ev.touch |= 1 << uint(i) // lines past 64 are not tracked (touchOK)
		}
		total += v
	}
	return ev.finishTotal(maxDiscount, total)
}

// finishUnits is finishIdx for a unit-level reward, which wrote only the
// lines of refs.
func (ev *evaluator) finishUnits(maxDiscount int64, left []int64, refs []unitRef) (int64, int64, protocol.Code, string) {
	var total int64
	for _, u := range refs {
		i := u.line
		v := max(0, min(ev.scratch[i], left[i]))
		ev.scratch[i] = v
		if v == 0 {
			ev.qty[i] = 0
		} else {
			ev.touch |= 1 << uint(i) // lines past 64 are not tracked (touchOK)
		}
		total += v
	}
	return ev.finishTotal(maxDiscount, total)
}

func (ev *evaluator) finishTotal(maxDiscount, total int64) (int64, int64, protocol.Code, string) {
	if maxDiscount > 0 && total > maxDiscount {
		ev.shrink(total, maxDiscount)
		total = maxDiscount
	}
	if total <= 0 {
		return 0, 0, protocol.CodeNoEffect, msgNoEffect
	}
	return total, 0, "", ""
}

// pickUnits chooses k units among refs, cheapest or most expensive first
// (ties by line), adding them to ev.qty. Units of class 1 count against
// xcap when xcap >= 0. sorted says refs are in that order already (built
// from byPrice or priceOrder with the lines' unit prices); otherwise they
// are sorted here, cheaply, for they come nearly in order.
func (ev *evaluator) pickUnits(refs []unitRef, k int64, pick Pick, xcap int64, sorted bool) {
	if !sorted {
		sortUnits(refs, pick == PickMostExpensive)
	}
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

// unitsBefore is pickUnits' order: by price (descending when desc), then
// by line.
func unitsBefore(a, b *unitRef, desc bool) bool {
	if a.price != b.price {
		return (a.price < b.price) != desc
	}
	return a.line < b.line
}

// sortUnits sorts refs in pickUnits' order: an insertion sort for the
// usual few, nearly ordered units, a general sort beyond.
func sortUnits(refs []unitRef, desc bool) {
	if len(refs) > 32 {
		slices.SortFunc(refs, func(a, b unitRef) int {
			if unitsBefore(&a, &b, desc) {
				return -1
			}
			if unitsBefore(&b, &a, desc) {
				return 1
			}
			return 0
		})
		return
	}
	for i := 1; i < len(refs); i++ {
		for j := i; j > 0 && unitsBefore(&refs[j], &refs[j-1], desc); j-- {
			refs[j], refs[j-1] = refs[j-1], refs[j]
		}
	}
}

// allocate spreads total over the lines in proportion to weight[i] (whose
// sum is sum, at least total): each line gets the floor of its share, and
// the units left over go one each to the first lines with room, so no line
// gets more than its weight and the parts add up exactly.
func allocate(total, sum int64, weight []int64, out []int64) {
	if total <= 0 || sum <= 0 {
		return
	}
	total = min(total, sum)
	out = out[:len(weight)]
	var given int64
	for i, w := range weight {
		if w <= 0 {
			continue
		}
		s := mulDiv(total, w, sum)
		out[i] += s
		given += s
	}
	for i, w := range weight {
		if given >= total {
			break
		}
		if w > 0 && out[i] < w {
			out[i]++
			given++
		}
	}
}

// percentOf is protocol.PercentOf: when amount*bp fits in 64 bits (the
// usual case), dividing by the constant 10000 compiles to a multiply,
// not a 128-bit division.
func percentOf(amount int64, bp protocol.BasisPoints) int64 {
	if amount >= 0 && amount <= math.MaxInt64/10000 && bp >= 0 && bp <= 10000 {
		return amount * int64(bp) / 10000
	}
	return protocol.PercentOf(amount, bp)
}

// allocateIdx is allocate over the lines idx (in line order) only: the
// other lines' weights count as 0 and are not read.
func allocateIdx(total, sum int64, idx []int32, weight []int64, out []int64) {
	if total <= 0 || sum <= 0 {
		return
	}
	total = min(total, sum)
	var given int64
	for _, i := range idx {
		w := weight[i]
		if w <= 0 {
			continue
		}
		s := mulDiv(total, w, sum)
		out[i] += s
		given += s
	}
	for _, i := range idx {
		if given >= total {
			break
		}
		if w := weight[i]; w > 0 && out[i] < w {
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
	allocate(limit, total, w, v)
	for i := range v {
		if v[i] == 0 {
			qty[i] = 0
		}
	}
}

// shrink is shrink on ev.scratch and ev.qty, over the touched lines only
// when they are known (the others' discounts are 0).
func (ev *evaluator) shrink(total, limit int64) {
	if !ev.touchOK {
		shrink(ev.scratch, ev.qty, ev.tmp, total, limit)
		return
	}
	v, qty, w := ev.scratch, ev.qty, ev.tmp
	for t := ev.touch; t != 0; t &= t - 1 {
		i := bits.TrailingZeros64(t)
		w[i], v[i] = v[i], 0
	}
	// allocate over the touched lines, in line order.
	if limit > 0 && total > 0 {
		limit = min(limit, total)
		var given int64
		for t := ev.touch; t != 0; t &= t - 1 {
			i := bits.TrailingZeros64(t)
			if w[i] <= 0 {
				continue
			}
			s := mulDiv(limit, w[i], total)
			v[i] += s
			given += s
		}
		for t := ev.touch; t != 0 && given < limit; t &= t - 1 {
			i := bits.TrailingZeros64(t)
			if w[i] > 0 && v[i] < w[i] {
				v[i]++
				given++
			}
		}
	}
	for t := ev.touch; t != 0; t &= t - 1 {
		if i := bits.TrailingZeros64(t); v[i] == 0 {
			qty[i] = 0
		}
	}
}

// mulDiv is floor(a*b/c) for non-negative a, b and positive c, with a
// 128-bit intermediate; it saturates at math.MaxInt64 (protocol.MulDiv).
// Small operands (the usual amounts) divide inline.
func mulDiv(a, b, c int64) int64 {
	if uint64(a|b) < 1<<31 && c > 0 {
		return a * b / c
	}
	return protocol.MulDiv(a, b, c)
}
