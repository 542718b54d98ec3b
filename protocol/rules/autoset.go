package rules

// autoSet is one tenant's automatic discounts (points programs left out)
// in the evaluator's selection order (selOrder), with their pairwise
// stacking precomputed: whether two campaigns combine depends on the two
// campaigns only, so the catalog decides it once for every pair, and an
// evaluation tests a candidate against every automatic campaign it
// already accepted with a few word-wide ANDs instead of comparing names.
type autoSet struct {
	list  []*compiled
	words int // uint64 words per row of clash
	// clash row i has bit j set when list[j], once accepted, refuses
	// list[i] (compatible(list[j], list[i]) is false and list[j] is not a
	// payment). nil above maxClashMatrix campaigns: the evaluator then
	// compares pairs as it does for redeemables.
	clash []uint64
}

// maxClashMatrix bounds the automatic campaigns of one tenant for which
// the pairwise matrix is built: n²/8 bytes, 512 KiB at 2,048.
const maxClashMatrix = 2048

func newAutoSet(list []*compiled) *autoSet {
	s := &autoSet{list: list, words: (len(list) + 63) / 64}
	for i, cc := range list {
		cc.selIdx = int32(i)
	}
	if len(list) > maxClashMatrix {
		return s
	}
	s.clash = make([]uint64, len(list)*s.words)
	for i, cd := range list {
		if cd.phase == phasePayment {
			continue // a payment is never refused for its stacking
		}
		row := s.clash[i*s.words : (i+1)*s.words]
		for j, a := range list {
			if a.phase == phasePayment {
				continue
			}
			if !compatibleFast(a, cd) {
				row[j/64] |= 1 << (j % 64)
			}
		}
	}
	return s
}

// row is the clash row of the campaign at index i.
func (s *autoSet) row(i int32) []uint64 {
	return s.clash[int(i)*s.words : (int(i)+1)*s.words]
}

// compatibleFast is compatible, without comparing names when neither
// campaign has an allow or forbid list.
func compatibleFast(a, b *compiled) bool {
	if a.plain && b.plain {
		// No lists: only a normal campaign next to an exclusive one is
		// refused (an exclusive one names nothing it allows).
		return !(a.mode == StackExclusive && b.mode == StackNormal || a.mode == StackNormal && b.mode == StackExclusive)
	}
	return compatible(a, b)
}
