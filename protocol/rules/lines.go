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
	mask     int32  // offset of the per-line mask in masks (orders past 64 lines)
	idx, n   int32  // the lines, in line order: idx[idx:idx+n]
	asc, dsc int32  // the lines by unit price (byPrice): offsets in idx, -1 until built
	bits     uint64 // the lines, a bit each (orders of at most 64 lines)
}

// lset is a lineSet as read: id is the matcher's.
type lset struct {
	id   int32
	bits uint64  // the selected lines, when mask is nil (at most 64 lines)
	mask []bool  // per line, past 64 lines
	idx  []int32 // the selected lines, in line order
}

// has reports whether line i is selected.
func (l *lset) has(i int32) bool {
	if l.mask == nil {
		return l.bits>>uint(i)&1 != 0
	}
	return l.mask[i]
}

// lines returns m's lines on this order.
func (ev *evaluator) lines(m *matcher) lset {
	b := ev.buf
	ls := &b.sets[m.id]
	nl := int32(len(ev.lsku))
	if ls.stamp == b.gen {
		l := lset{id: m.id, bits: ls.bits, idx: b.idx[ls.idx : ls.idx+ls.n : ls.idx+ls.n]}
		if nl > 64 {
			l.mask = b.masks[ls.mask : ls.mask+nl : ls.mask+nl]
		}
		return l
	}
	istart := int32(len(b.idx))
	var in uint64
	var mask []bool
	start := int32(len(b.masks))
	if nl <= 64 {
		// Test each of the order's distinct symbols once, not each line.
		if !ev.symsReady {
			ev.orderSyms()
		}
		if m.all {
			in = 1<<nl - 1
		} else if b.symTable && len(m.skus)+len(m.cats) <= len(b.skuSyms)+len(b.catSyms) {
			// Look the target's few symbols up in the order's table.
			for _, s := range m.skus {
				in |= b.symLines(s).sku
			}
			for _, s := range m.cats {
				in |= b.symLines(s).cat
			}
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
		if len(m.excl) == 0 || in == 0 {
			// nothing to take out
		} else if b.symTable && len(m.excl) <= len(b.skuSyms) {
			for _, s := range m.excl {
				in &^= b.symLines(s).sku
			}
		} else {
			for _, e := range b.skuSyms {
				if m.excl.has(e.sym) {
					in &^= e.lines
				}
			}
		}
		for t := in; t != 0; t &= t - 1 {
			b.idx = append(b.idx, int32(bits.TrailingZeros64(t)))
		}
	} else {
		b.masks = slices.Grow(b.masks, int(nl))[:start+nl]
		mask = b.masks[start : start+nl : start+nl]
		for i := range nl {
			mask[i] = m.match(ev.lsku[i], ev.lcat[i])
			if mask[i] {
				b.idx = append(b.idx, i)
			}
		}
	}
	n := int32(len(b.idx)) - istart
	*ls = lineSet{stamp: b.gen, mask: start, idx: istart, n: n, asc: -1, dsc: -1, bits: in}
	return lset{id: m.id, bits: in, mask: mask, idx: b.idx[istart : istart+n : istart+n]}
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
		var all []int32
		if len(l.idx) > 16 {
			all = ev.priceOrder(pick) // before start: it may append to b.idx
		}
		start := int32(len(b.idx))
		if all == nil {
			// A few lines: sort them (stable, from line order) rather
			// than filter every line of the order.
			b.idx = append(b.idx, l.idx...)
			o := b.idx[start:]
			lines := ev.req.Order.Lines
			desc := pick == PickMostExpensive
			for i := 1; i < len(o); i++ {
				for j := i; j > 0; j-- {
					pj, pk := lines[o[j]].UnitPrice, lines[o[j-1]].UnitPrice
					if pj == pk || (pj < pk) == desc {
						break
					}
					o[j], o[j-1] = o[j-1], o[j]
				}
			}
		} else {
			for _, i := range all {
				if l.has(i) {
					b.idx = append(b.idx, i)
				}
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
	skus, cats := b.skuSyms[:0], b.catSyms[:0]
	for i := range ev.lsku {
		skus = addSym(skus, ev.lsku[i], i)
		cats = addSym(cats, ev.lcat[i], i)
	}
	b.skuSyms, b.catSyms = skus, cats
	ev.symsReady = true
	// The same by symbol, for targets that name fewer symbols than the
	// order holds (the usual case): a lookup each instead of a scan.
	n := len(ev.cat.syms)
	b.symTable = n <= maxSymTable
	if !b.symTable {
		return
	}
	if len(b.symTab) < n {
		b.symTab = make([]symEntry, n) // gen 0: stale (newGen never uses 0)
	}
	for _, e := range skus {
		b.symEntry(e.sym).sku = e.lines
	}
	for _, e := range cats {
		b.symEntry(e.sym).cat = e.lines
	}
}

// maxSymTable bounds the catalogs (by distinct SKUs and categories) for
// which an evaluation keeps a table of the order's lines by symbol: 24
// bytes a symbol in every pooled scratch (1.5 MiB at the bound).
const maxSymTable = 1 << 16

// symEntry is the order's lines holding one symbol as a SKU and as a
// category: valid when gen is scratch.gen (zero otherwise).
type symEntry struct {
	sku, cat uint64
	gen      uint32
}

// symLines is the order's lines holding symbol s (catalog symbols only).
func (b *scratch) symLines(s int32) symEntry {
	if e := b.symTab[s]; e.gen == b.gen {
		return e
	}
	return symEntry{}
}

// symEntry is s's entry for this evaluation, cleared if stale.
func (b *scratch) symEntry(s int32) *symEntry {
	e := &b.symTab[s]
	if e.gen != b.gen {
		*e = symEntry{gen: b.gen}
	}
	return e
}

func addSym(l []symLines, sym int32, i int) []symLines {
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

// priceOrder is every line in pickUnits' order for pick with the lines'
// unit prices (cheapest or most expensive first, ties by line).
func (ev *evaluator) priceOrder(pick Pick) []int32 {
	if pick != PickMostExpensive {
		if ev.asc == nil {
			ev.asc = ev.sortByPrice()
		}
		return ev.asc
	}
	if ev.desc == nil {
		// The cheapest-first order reversed, each run of equal prices
		// kept in line order.
		asc := ev.priceOrder(PickCheapest)
		b := ev.buf
		start := len(b.idx)
		lines := ev.req.Order.Lines
		for end := len(asc); end > 0; {
			from := end - 1
			for from > 0 && lines[asc[from-1]].UnitPrice == lines[asc[end-1]].UnitPrice {
				from--
			}
			b.idx = append(b.idx, asc[from:end]...)
			end = from
		}
		ev.desc = b.idx[start:len(b.idx):len(b.idx)]
	}
	return ev.desc
}

// sortByPrice lists the lines cheapest first, ties by line.
func (ev *evaluator) sortByPrice() []int32 {
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
		return px < py || px == py && x < y
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
		clear(b.symTab)
		b.gen = 1
	}
	b.masks = b.masks[:0]
	b.idx = b.idx[:0]
}
