package rules_test

import (
	"math"
	"reflect"
	"sync"
	"testing"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/rules"
)

// TestProperties evaluates many random catalogs and requests and checks
// the invariants (checkInvariants), determinism, and that the order of the
// request's redeemables changes nothing but the order of the results.
func TestProperties(t *testing.T) {
	store := berlin(t)
	rounds := 300
	if testing.Short() {
		rounds = 50
	}
	for seed := range uint64(rounds) {
		g := newGen(seed)
		cs := g.campaigns("acme", 40)
		cat, err := rules.NewCatalog(cs)
		if err != nil {
			t.Fatal(err)
		}
		for range 10 {
			req := g.request(cs, 1+g.r.IntN(8), g.r.IntN(8), store)
			d := rules.Evaluate(cat, req)
			checkInvariants(t, cat, req, d)
			if again := rules.Evaluate(cat, req); !reflect.DeepEqual(d, again) {
				t.Fatalf("seed %d: same input, different output", seed)
			}
			perm := g.r.Perm(len(req.Redeemables))
			shuffled := req
			shuffled.Redeemables = make([]rules.Redeemable, len(perm))
			for to, from := range perm {
				shuffled.Redeemables[to] = req.Redeemables[from]
			}
			sd := rules.Evaluate(cat, shuffled)
			if d.Discount != sd.Discount || d.ShippingDiscount != sd.ShippingDiscount || d.Paid != sd.Paid ||
				d.PointsEarned != sd.PointsEarned || !reflect.DeepEqual(d.LineTotals, sd.LineTotals) {
				t.Fatalf("seed %d: reordering redeemables changed the totals: %+v vs %+v", seed, d, sd)
			}
			for to, from := range perm {
				a, b := d.Results[from], sd.Results[to]
				a.Index, b.Index = 0, 0
				if !reflect.DeepEqual(a, b) && !identicalRedeemables(req.Redeemables, from) {
					t.Fatalf("seed %d: result of redeemable %d changed with the order:\n%+v\n%+v", seed, from, a, b)
				}
			}
			if !reflect.DeepEqual(d.Results[len(req.Redeemables):], sd.Results[len(req.Redeemables):]) {
				t.Fatalf("seed %d: automatic results changed with the order", seed)
			}
		}
	}
}

// identicalRedeemables reports whether another redeemable equals the i-th:
// between identical twins which one is refused as a duplicate may follow
// the request order, and nothing else can tell them apart.
func identicalRedeemables(rs []rules.Redeemable, i int) bool {
	for j := range rs {
		if j != i && rs[j] == rs[i] {
			return true
		}
	}
	return false
}

// TestPercentRoundingNeverAbove: on odd amounts a percent discount is the
// exact share rounded down, never up.
func TestPercentRoundingNeverAbove(t *testing.T) {
	store := berlin(t)
	g := newGen(42)
	for range 2000 {
		bp := 1 + g.r.Int64N(10000)
		c := rules.Campaign{Schema: 1, ID: "p", Tenant: "acme", Status: rules.StatusActive, Currency: "EUR",
			Reward: rules.Reward{Kind: rules.RewardPercentOff, PercentBP: bp}}
		cat, err := rules.NewCatalog([]rules.Campaign{c})
		if err != nil {
			t.Fatal(err)
		}
		req := g.request([]rules.Campaign{c}, 1+g.r.IntN(6), 1, store)
		req.Budgets = nil
		d := rules.Evaluate(cat, req)
		checkInvariants(t, cat, req, d)
		exact := d.Subtotal * bp // fits: small orders
		if d.Discount*10000 > exact || (d.Discount+1)*10000 <= exact {
			t.Fatalf("%d bp of %d: discount %d, want floor(%d/10000)", bp, d.Subtotal, d.Discount, exact)
		}
	}
}

// TestTotalNeverAboveOrder piles up to 30 joint rewards of every kind on
// one order.
func TestTotalNeverAboveOrder(t *testing.T) {
	store := berlin(t)
	g := newGen(7)
	cs := g.campaigns("acme", 200)
	var all []rules.Campaign
	for _, c := range cs {
		if c.Reward.Kind == rules.RewardPoints {
			continue
		}
		c.Stacking = rules.Stacking{Mode: rules.StackJoint}
		c.Status = rules.StatusActive
		c.Currency = "EUR"
		c.Eligibility = rules.Eligibility{}
		if c.Reward.Kind != rules.RewardGiftCard {
			all = append(all, c)
		}
	}
	cat, err := rules.NewCatalog(all)
	if err != nil {
		t.Fatal(err)
	}
	maxApplied := 0
	for range 200 {
		req := g.request(all, 1+g.r.IntN(5), rules.MaxRedeemables, store)
		d := rules.Evaluate(cat, req)
		checkInvariants(t, cat, req, d)
		if d.Error != nil { // 30 redeemables are allowed
			t.Fatal(d.Error)
		}
		applied := 0
		for _, r := range d.Results {
			if r.Applied {
				applied++
			}
		}
		maxApplied = max(maxApplied, applied)
	}
	if maxApplied < 10 {
		t.Errorf("at most %d rewards applied together; the test does not stack enough", maxApplied)
	}
}

// TestConcurrentEvaluate: the agent and the hub share one catalog between
// request goroutines (run with -race).
func TestConcurrentEvaluate(t *testing.T) {
	for _, file := range caseFiles(t) {
		cat, _, cases := loadCaseFile(t, file)
		want := make([]rules.Decision, len(cases))
		for i, c := range cases {
			c.Request.Store.Location = nil // resolve through the catalog's cache
			want[i] = rules.Evaluate(cat, c.Request)
		}
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for i, c := range cases {
					if got := rules.Evaluate(cat, c.Request); !reflect.DeepEqual(got, want[i]) {
						t.Errorf("%s: concurrent decision differs", c.Name)
					}
				}
			})
		}
		wg.Wait()
	}
}

// TestPercentOfFast: the engine's percentOf is protocol.PercentOf, on its
// fast path and around its edges.
func TestPercentOfFast(t *testing.T) {
	g := newGen(9)
	amounts := []int64{0, 1, 9999, 10000, 10001, math.MaxInt64 / 10000, math.MaxInt64/10000 + 1, math.MaxInt64, -1, math.MinInt64}
	bps := []protocol.BasisPoints{0, 1, 5000, 9999, 10000, 10001, -1}
	for range 10000 {
		amounts = append(amounts, g.r.Int64N(math.MaxInt64/10000+2))
	}
	for _, a := range amounts {
		for _, bp := range bps {
			if got, want := rules.PercentOfForTest(a, bp), protocol.PercentOf(a, bp); got != want {
				t.Fatalf("percentOf(%d, %d) = %d, want %d", a, bp, got, want)
			}
		}
	}
}
