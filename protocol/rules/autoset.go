package rules

import (
	"cmp"
	"math/bits"
	"slices"
)

// autoSet is one tenant's automatic discounts (points programs left out)
// in the evaluator's selection order (selOrder), with their pairwise
// stacking precomputed: whether two campaigns combine depends on the two
// campaigns only, so the catalog decides it once for every pair, and an
// evaluation tests a candidate against every automatic campaign it
// already accepted with a few word-wide ANDs instead of comparing names.
type autoSet struct {
	list  []*compiled
	words int // uint64 words per row of clash
	// clash row j has bit i set when list[j], once accepted, refuses
	// list[i] (compatible(list[j], list[i]) is false and neither is a
	// payment): accepting list[j] ORs its row into what is refused. nil
	// above maxClashMatrix campaigns: the evaluator then compares pairs as
	// it does for redeemables.
	clash []uint64
	// normal and exclusive have a bit for each plain campaign (no allow
	// or forbid list) of that mode: what a plain redeemable of the other
	// mode refuses.
	normal, exclusive []uint64
	// gates are list's first eligibility checks, packed: collect reads
	// them, not the campaigns, for the many that fail or need nothing
	// more.
	gates []autoGate
	// byApply is list's indexes in the application order (applyKey),
	// applyPos their positions in it.
	byApply, applyPos []int32
}

// autoGate is what collect needs of an automatic campaign before
// autoEligible: its currency, whether any other check applies, and the
// candidate it becomes.
type autoGate struct {
	cur  int32 // Catalog.currencies index
	more bool  // not active, or dates, stores, regions, hours, customer, limits or basket conditions: see autoEligible
	cc   int32 // index in Catalog.list
	key  int64 // selKey
	// What autoClash.combinable reads.
	mode  stackMode
	plain bool
	pay   bool // a payment (phasePayment)
}

// maxClashMatrix bounds the automatic campaigns of one tenant for which
// the pairwise matrix is built: n²/8 bytes, 512 KiB at 2,048.
const maxClashMatrix = 2048

func newAutoSet(list []*compiled) *autoSet {
	s := &autoSet{list: list, words: (len(list) + 63) / 64}
	s.gates = make([]autoGate, len(list))
	s.byApply = make([]int32, len(list))
	for i, cc := range list {
		cc.selIdx, cc.inSel = int32(i), true
		s.gates[i] = autoGate{cur: cc.cur, cc: cc.idx, key: cc.selKey, mode: cc.mode, plain: cc.plain, pay: cc.phase == phasePayment,
			more: !cc.active || cc.dated || cc.where || cc.customer || cc.c.Limits.PerCustomer > 0 || cc.basket}
		s.byApply[i] = int32(i)
	}
	slices.SortFunc(s.byApply, func(a, b int32) int { return cmp.Compare(list[a].applyKey, list[b].applyKey) })
	s.applyPos = make([]int32, len(list))
	for pos, i := range s.byApply {
		s.applyPos[i] = int32(pos)
	}
	if len(list) > maxClashMatrix {
		return s
	}
	s.clash = make([]uint64, len(list)*s.words)
	s.normal, s.exclusive = make([]uint64, s.words), make([]uint64, s.words)
	for i, cc := range list {
		if !cc.plain || cc.phase == phasePayment {
			continue
		}
		switch cc.mode {
		case modeNormal:
			s.normal[i/64] |= 1 << (i % 64)
		case modeExclusive:
			s.exclusive[i/64] |= 1 << (i % 64)
		}
	}
	for i, cd := range list {
		if cd.phase == phasePayment {
			continue // a payment is never refused for its stacking
		}
		for j, a := range list {
			if a.phase == phasePayment {
				continue
			}
			if !compatibleFast(a, cd) {
				s.clash[j*s.words+i/64] |= 1 << (i % 64)
			}
		}
	}
	return s
}

// row is the clash row of the campaign at index i: what it refuses.
func (s *autoSet) row(i int32) []uint64 {
	return s.clash[int(i)*s.words : (int(i)+1)*s.words]
}

// compatibleFast is compatible, without comparing names when neither
// campaign has an allow or forbid list.
func compatibleFast(a, b *compiled) bool {
	if a.plain && b.plain {
		// No lists: only a normal campaign next to an exclusive one is
		// refused (an exclusive one names nothing it allows).
		return !(a.mode == modeExclusive && b.mode == modeNormal || a.mode == modeNormal && b.mode == modeExclusive)
	}
	return compatible(a, b)
}

// autoClash is what the candidates accepted so far refuse of the
// automatic ones: an evaluation's state, in the scratch.
type autoClash struct {
	set     *autoSet
	bits    []uint64 // the accepted automatic campaigns
	refused []uint64 // what they refuse of the automatic ones (their clash rows)
	applied []uint64 // the same, by position in the application order
	dup     []uint64 // automatic campaigns a redeemable already brought
	plain   []uint64 // what the accepted plain redeemables refuse
	red     []cand   // accepted redeemables, payments left out
	odd     []cand   // those of them with stacking lists
	allRed  []cand   // accepted redeemables, payments included
	oddAuto []cand   // accepted automatic campaigns with stacking lists
}

func (ev *evaluator) newAutoClash() *autoClash {
	b := ev.buf
	w := ev.set.words
	b.autoBits = grow(b.autoBits, 5*w)
	ac := &b.clash
	*ac = autoClash{set: ev.set, bits: b.autoBits[:w:w], dup: b.autoBits[w : 2*w : 2*w], plain: b.autoBits[2*w : 3*w : 3*w],
		applied: b.autoBits[3*w : 4*w : 4*w], refused: b.autoBits[4*w:],
		red: b.red[:0], odd: b.odd[:0], allRed: b.allRed[:0], oddAuto: b.oddAuto[:0]}
	return ac
}

// accept records the accepted candidate cd (campaign c).
func (ac *autoClash) accept(ev *evaluator, cd cand, c *compiled) {
	if cd.index < 0 {
		setBit(ac.bits, c.selIdx)
		setBit(ac.applied, ac.set.applyPos[c.selIdx])
		orInto(ac.refused, ac.set.row(c.selIdx))
		if !c.plain && c.phase != phasePayment {
			ac.oddAuto = append(ac.oddAuto, cd)
			ev.buf.oddAuto = ac.oddAuto
		}
		return
	}
	ac.allRed = append(ac.allRed, cd)
	ev.buf.allRed = ac.allRed
	if c.inSel {
		setBit(ac.dup, c.selIdx)
	}
	if c.phase == phasePayment {
		return
	}
	ac.red = append(ac.red, cd)
	ev.buf.red = ac.red
	switch {
	case !c.plain:
		ac.odd = append(ac.odd, cd)
		ev.buf.odd = ac.odd
	case c.mode == modeNormal:
		orInto(ac.plain, ac.set.exclusive)
	case c.mode == modeExclusive:
		orInto(ac.plain, ac.set.normal)
	}
}

// combinable is evaluator.combinable's verdict for the automatic campaign
// c, whose refusal nobody reads.
func (ac *autoClash) combinable(ev *evaluator, si int32, exclusive int) bool {
	g := &ac.set.gates[si]
	i, w := uint32(si)/64, uint64(1)<<(uint32(si)%64)
	if ac.dup[i]&w != 0 { // automatic campaigns are never gift cards
		return false
	}
	if g.pay {
		return true
	}
	if g.mode == modeExclusive && exclusive >= MaxExclusive {
		return false
	}
	if g.plain {
		if ac.plain[i]&w != 0 {
			return false
		}
		for _, a := range ac.odd {
			if !compatible(ev.list[a.cc], ac.set.list[si]) {
				return false
			}
		}
	} else {
		for _, a := range ac.red {
			if !compatibleFast(ev.list[a.cc], ac.set.list[si]) {
				return false
			}
		}
	}
	return ac.refused[i]&w == 0
}

// clashes reports that an accepted automatic campaign refuses the one at
// index si: combinable's last check and its commonest refusal, one bit,
// inlined into the selection loop, which tests it first (combinable's
// checks are a conjunction; their order changes nothing).
func (ac *autoClash) clashes(si int32) bool {
	return ac.refused[uint32(si)/64]&(1<<(uint32(si)%64)) != 0
}

func setBit(b []uint64, i int32) { b[uint32(i)/64] |= 1 << (uint32(i) % 64) }

func hasBit(b []uint64, i int32) bool { return b[uint32(i)/64]&(1<<(uint32(i)%64)) != 0 }

func orInto(dst, src []uint64) {
	for i, v := range src {
		dst[i] |= v
	}
}

// clears reports that evaluator.combinable certainly accepts the
// redeemable cd (campaign c): nothing accepted has its code or campaign,
// nothing accepted refuses it. When it cannot tell, combinable decides,
// with its reasons.
func (ac *autoClash) clears(ev *evaluator, cd cand, c *compiled, exclusive int) bool {
	r := ev.red(cd)
	for _, a := range ac.allRed {
		ar := ev.red(a)
		if a.cc == cd.cc || r.Code != "" && ar.Kind == r.Kind && ar.Code == r.Code {
			return false
		}
	}
	if c.inSel && hasBit(ac.bits, c.selIdx) {
		return false
	}
	if c.phase == phasePayment {
		return true
	}
	if c.mode == modeExclusive && exclusive >= MaxExclusive || !c.plain {
		return false
	}
	for _, a := range ac.red {
		if !compatibleFast(ev.list[a.cc], c) {
			return false
		}
	}
	var refused []uint64 // the plain automatic campaigns of the mode c refuses
	switch c.mode {
	case modeNormal:
		refused = ac.set.exclusive
	case modeExclusive:
		refused = ac.set.normal
	}
	for k, w := range refused {
		if w&ac.bits[k] != 0 {
			return false
		}
	}
	for _, a := range ac.oddAuto {
		if !compatible(ev.list[a.cc], c) {
			return false
		}
	}
	return true
}

// applyOrder lists the accepted candidates in the application order: the
// redeemables sorted, merged with the automatic campaigns taken in the
// catalog's order (byApply). A redeemable goes first on an equal key (its
// own campaign), as tiebreak says.
func (ac *autoClash) applyOrder(ev *evaluator, accepted []cand) []cand {
	red := ac.allRed
	for k := range red {
		red[k].key = ev.list[red[k].cc].applyKey
	}
	slices.SortFunc(red, func(a, b cand) int {
		if a.key != b.key {
			return cmp.Compare(a.key, b.key)
		}
		return ev.tiebreak(a, b)
	})
	out := accepted[:0]
	list := ac.set.list
	for k, word := range ac.applied {
		for ; word != 0; word &= word - 1 {
			cc := list[ac.set.byApply[k*64+bits.TrailingZeros64(word)]]
			for len(red) > 0 && red[0].key <= cc.applyKey {
				out = append(out, red[0])
				red = red[1:]
			}
			out = append(out, cand{cc: cc.idx, index: -1, key: cc.applyKey})
		}
	}
	return append(out, red...)
}
