package rules

// A Buffer holds the memory of decisions for reuse: Buffer.Evaluate
// decides like Evaluate, but the Decision's slices (Results, their Lines,
// LineTotals, Earnings and their Lines) live in the Buffer and are
// overwritten by its next Evaluate. A caller that is done with each
// decision before it makes the next one (a benchmark, a fleet of simulated
// tills, a re-derivation that keeps only totals) then allocates nothing
// per decision once the Buffer has grown, and the garbage collector, which
// otherwise scans the whole catalog for every few hundred decisions'
// worth of garbage, stays out of the loop.
//
// The zero Buffer is ready to use. A Buffer is not safe for concurrent
// use; Evaluate (the function) is.
type Buffer struct {
	results    []Result
	lines      []LineDiscount
	totals     []int64
	earnings   []Earning
	linePoints []LinePoints
}

// Evaluate is Evaluate(cat, req) with its output in b: the same decision,
// deep-equal, valid until b's next Evaluate.
func (b *Buffer) Evaluate(cat *Catalog, req Request) Decision {
	s := scratchPool.Get().(*scratch)
	defer s.release()
	s.req = req // see Evaluate
	ev := evaluator{cat: cat, req: &s.req, buf: s, out: b}
	if cat != nil {
		ev.list = cat.list
	}
	b.linePoints = b.linePoints[:0]
	return ev.run()
}

// outResults is Evaluate's copy of the results out of the scratch: into a
// new slice, or into the Buffer's. Never nil, as make gives.
func (ev *evaluator) outResults(src []Result) []Result {
	if ev.out == nil {
		out := make([]Result, len(src))
		copy(out, src)
		return out
	}
	if ev.out.results == nil {
		ev.out.results = make([]Result, 0, max(len(src), 4))
	}
	ev.out.results = append(ev.out.results[:0], src...)
	return ev.out.results
}

// outLines is the block of the applied results' lines, of the exact
// length; never nil.
func (ev *evaluator) outLines(src []LineDiscount) []LineDiscount {
	if ev.out == nil {
		block := make([]LineDiscount, len(src))
		copy(block, src)
		return block
	}
	if ev.out.lines == nil {
		ev.out.lines = make([]LineDiscount, 0, max(len(src), 16))
	}
	ev.out.lines = append(ev.out.lines[:0], src...)
	return ev.out.lines
}

// outTotals is a copy of the lines' amounts left (nil for no lines, as
// append to nil gives).
func (ev *evaluator) outTotals(src []int64) []int64 {
	if ev.out == nil || len(src) == 0 {
		return append([]int64(nil), src...)
	}
	ev.out.totals = append(ev.out.totals[:0], src...)
	return ev.out.totals
}

// addEarning appends e to the decision's earnings (nil until the first).
func (ev *evaluator) addEarning(e Earning) {
	if ev.d.Earnings == nil && ev.out != nil {
		if ev.out.earnings == nil {
			ev.out.earnings = make([]Earning, 0, 4)
		}
		ev.d.Earnings = ev.out.earnings[:0]
	}
	ev.d.Earnings = append(ev.d.Earnings, e)
	if ev.out != nil {
		ev.out.earnings = ev.d.Earnings
	}
}

// linePoints is room for n LinePoints of one earning: its own slice, or a
// part of the Buffer's block (length 0, capacity n).
func (ev *evaluator) linePoints(n int) []LinePoints {
	if ev.out == nil {
		return make([]LinePoints, 0, n)
	}
	lp := ev.out.linePoints
	if lp == nil || cap(lp)-len(lp) < n {
		// A new block: the earlier earnings keep the old one.
		lp = make([]LinePoints, 0, max(2*cap(lp), n, 16))
	}
	ev.out.linePoints = lp[:len(lp)+n]
	return lp[len(lp) : len(lp) : len(lp)+n]
}
