package rules_test

import (
	"testing"

	"github.com/punchcard/punchcard/protocol/rules"
)

// TestStandaloneVerdict pins the evaluator's shortcut for a candidate's
// check on its own (standalone.go) to the full computation it replaces:
// on random catalogs and orders, with cheap and free lines and tiny
// percentages mixed in so that rounding down to nothing happens, every
// campaign's verdict is effect's, code and message.
func TestStandaloneVerdict(t *testing.T) {
	store := berlin(t)
	rounds := 400
	if testing.Short() {
		rounds = 60
	}
	decided := 0
	for seed := range uint64(rounds) {
		g := newGen(seed)
		cs := g.campaigns("acme", 60)
		for i := range cs {
			r := &cs[i].Reward
			switch g.r.IntN(4) {
			case 0:
				if r.GetPercentBP != 0 {
					r.GetPercentBP = 1 + g.r.Int64N(3)
				}
			case 1:
				if r.Kind == rules.RewardFixedPrice {
					r.MaxQuantity = g.r.Int64N(2)
				}
			}
		}
		cat, err := rules.NewCatalog(cs)
		if err != nil {
			t.Fatal(err)
		}
		for range 10 {
			req := g.request(cs, g.r.IntN(12), 0, store)
			for i := range req.Order.Lines {
				switch g.r.IntN(5) {
				case 0:
					req.Order.Lines[i].UnitPrice = g.r.Int64N(3)
				case 1:
					req.Order.Lines[i].UnitPrice = 1000 + g.r.Int64N(3) // around fixed prices
				}
			}
			diff, n := rules.StandaloneVerdictsForTest(cat, req)
			if diff != "" {
				t.Fatalf("seed %d: %s", seed, diff)
			}
			decided += n
		}
	}
	if decided == 0 {
		t.Fatal("the shortcut decided nothing")
	}
	t.Logf("%d verdicts compared", decided)
}
