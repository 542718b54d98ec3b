package rules

import (
	"cmp"
	"slices"
)

// lineSet is the order lines one matcher selects, worked out once per
// evaluation: hundreds of campaigns share a few dozen distinct targets,
// and each is read several times (eligibility, the candidate on its own,
// its application, points).
type lineSet struct {
	stamp uint32 // scratch.gen when computed; stale otherwise
	mask  []bool // per line
	idx   []int32
	// asc and desc are idx by unit price, cheapest or most expensive
	// first, ties by line: pickUnits' order when prices are the lines'
	// unit prices. Built on first use (nil until then).
	asc, desc []int32
}

// lines returns m's lines on this order.
func (ev *evaluator) lines(m *matcher) *lineSet {
	b := ev.buf
	ls := &b.sets[m.id]
	if ls.stamp == b.gen {
		return ls
	}
	nl := len(ev.lsku)
	start := len(b.masks)
	b.masks = slices.Grow(b.masks, nl)[:start+nl]
	mask := b.masks[start : start+nl : start+nl]
	istart := len(b.idx)
	for i := range nl {
		mask[i] = m.match(ev.lsku[i], ev.lcat[i])
		if mask[i] {
			b.idx = append(b.idx, int32(i))
		}
	}
	*ls = lineSet{stamp: b.gen, mask: mask, idx: b.idx[istart:len(b.idx):len(b.idx)]}
	return ls
}

// byPrice returns ls's lines in pickUnits' order for pick, with the lines'
// unit prices.
func (ev *evaluator) byPrice(ls *lineSet, pick Pick) []int32 {
	p := &ls.asc
	if pick == PickMostExpensive {
		p = &ls.desc
	}
	if *p == nil {
		all := ev.priceOrder(pick)
		b := ev.buf
		start := len(b.idx)
		for _, i := range all {
			if ls.mask[i] {
				b.idx = append(b.idx, i)
			}
		}
		*p = b.idx[start:len(b.idx):len(b.idx)]
	}
	return *p
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
	slices.SortFunc(o, func(x, y int32) int {
		c := cmp.Compare(lines[x].UnitPrice, lines[y].UnitPrice)
		if desc {
			c = -c
		}
		if c != 0 {
			return c
		}
		return cmp.Compare(x, y)
	})
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
