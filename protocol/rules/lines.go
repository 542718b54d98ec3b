package rules

import (
	"math/bits"
	"slices"
)

// lineSet is the order lines one matcher selects, worked out once per
// evaluation: hundreds of campaigns share a few dozen distinct targets,
// and each is read several times (eligibility, the candidate on its own,
// its application, points). It holds offsets into the scratch's masks
// and idx, no pointers, so that writing it costs no write barrier.
type lineSet struct {
	stamp    uint32 // scratch.gen when computed; stale otherwise
	mask     int32  // offset of the per-line mask in masks
	idx, n   int32  // the lines, in line order: idx[idx:idx+n]
	asc, dsc int32  // the lines by unit price (byPrice): offsets in idx, -1 until built
}

// lset is a lineSet as read: id is the matcher's.
type lset struct {
	id   int32
	mask []bool  // per line
	idx  []int32 // the selected lines, in line order
}

// lines returns m's lines on this order.
func (ev *evaluator) lines(m *matcher) lset {
	b := ev.buf
	ls := &b.sets[m.id]
	nl := int32(len(ev.lsku))
	if ls.stamp == b.gen {
		return lset{m.id, b.masks[ls.mask : ls.mask+nl : ls.mask+nl], b.idx[ls.idx : ls.idx+ls.n : ls.idx+ls.n]}
	}
	start := int32(len(b.masks))
	b.masks = slices.Grow(b.masks, int(nl))[:start+nl]
	mask := b.masks[start : start+nl : start+nl]
	istart := int32(len(b.idx))
	if nl <= 64 {
		// Test each of the order's distinct symbols once, not each line.
		if !ev.symsReady {
			ev.orderSyms()
		}
		var in uint64
		if m.all {
			in = 1<<nl - 1
		} else {
			for _, e := range b.skuSyms {
				if m.skus.has(e.sym) {
					in |= e.lines
				}
			}
			for _, e := range b.catSyms {
				if m.cats.has(e.sym) {
					in |= e.lines
				}
			}
		}
		if len(m.excl) > 0 {
			for _, e := range b.skuSyms {
				if m.excl.has(e.sym) {
					in &^= e.lines
				}
			}
		}
		for i := range nl {
			mask[i] = in>>i&1 != 0
		}
		for ; in != 0; in &= in - 1 {
			b.idx = append(b.idx, int32(bits.TrailingZeros64(in)))
		}
	} else {
		for i := range nl {
			mask[i] = m.match(ev.lsku[i], ev.lcat[i])
			if mask[i] {
				b.idx = append(b.idx, i)
			}
		}
	}
	n := int32(len(b.idx)) - istart
	*ls = lineSet{stamp: b.gen, mask: start, idx: istart, n: n, asc: -1, dsc: -1}
	return lset{m.id, mask, b.idx[istart : istart+n : istart+n]}
}

// byPrice returns l's lines in pickUnits' order for pick, with the lines'
// unit prices.
func (ev *evaluator) byPrice(l lset, pick Pick) []int32 {
	b := ev.buf
	ls := &b.sets[l.id]
	p := &ls.asc
	if pick == PickMostExpensive {
		p = &ls.dsc
	}
	if *p < 0 {
		all := ev.priceOrder(pick)
		start := int32(len(b.idx))
		for _, i := range all {
			if l.mask[i] {
				b.idx = append(b.idx, i)
			}
		}
		*p = start
	}
	return b.idx[*p : *p+ls.n : *p+ls.n]
}

// symLines is one of the order's SKU or category symbols and the lines
// (a bit each) that hold it.
type symLines struct {
	sym   int32
	lines uint64
}

// orderSyms lists the order's distinct SKU and category symbols (of an
// order of at most 64 lines) that some campaign names.
func (ev *evaluator) orderSyms() {
	b := ev.buf
	b.skuSyms, b.catSyms = b.skuSyms[:0], b.catSyms[:0]
	add := func(l []symLines, sym int32, i int) []symLines {
		if sym < 0 {
			return l
		}
		for k := range l {
			if l[k].sym == sym {
				l[k].lines |= 1 << i
				return l
			}
		}
		return append(l, symLines{sym, 1 << i})
	}
	for i := range ev.lsku {
		b.skuSyms = add(b.skuSyms, ev.lsku[i], i)
		b.catSyms = add(b.catSyms, ev.lcat[i], i)
	}
	ev.symsReady = true
}

// priceOrder is every line in pickUnits' order for pick with the lines'
// unit prices (cheapest or most expensive first, ties by line).
func (ev *evaluator) priceOrder(pick Pick) []int32 {
	desc := pick == PickMostExpensive
	p := &ev.asc
	if desc {
		p = &ev.desc
	}
	if *p != nil {
		return *p
	}
	b := ev.buf
	nl := len(ev.lsku)
	start := len(b.idx)
	for i := range nl {
		b.idx = append(b.idx, int32(i))
	}
	o := b.idx[start:len(b.idx):len(b.idx)]
	lines := ev.req.Order.Lines
	before := func(x, y int32) bool { // x goes before y
		px, py := lines[x].UnitPrice, lines[y].UnitPrice
		if px != py {
			return (px < py) != desc
		}
		return x < y
	}
	if len(o) <= 32 {
		for i := 1; i < len(o); i++ {
			for j := i; j > 0 && before(o[j], o[j-1]); j-- {
				o[j], o[j-1] = o[j-1], o[j]
			}
		}
	} else {
		slices.SortFunc(o, func(x, y int32) int {
			if before(x, y) {
				return -1
			}
			if before(y, x) {
				return 1
			}
			return 0
		})
	}
	*p = o
	return o
}

// newGen starts an evaluation's memo of line sets for a catalog of n
// matchers.
func (b *scratch) newGen(n int32) {
	if cap(b.sets) < int(n) {
		b.sets = make([]lineSet, n)
	}
	b.sets = b.sets[:n]
	b.gen++
	if b.gen == 0 { // wrapped: no stamp may look current
		clear(b.sets[:cap(b.sets)])
		b.gen = 1
	}
	b.masks = b.masks[:0]
	b.idx = b.idx[:0]
}
