package ledger_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/ledger"
)

// A till's first grant of a campaign is sized from what is left of the
// budget (AllowancePolicy.FirstShare) where the budget is ample, and at
// the minimum where it is not; a till's later grants follow its own pace.
// Fails on the code before FirstShare (every first grant was the minimum).
func TestFirstGrantShare(t *testing.T) {
	ctx := context.Background()
	const minC, maxC, minA, maxA = ledger.DefaultAllowanceMinCount, ledger.DefaultAllowanceMaxCount,
		ledger.DefaultAllowanceMinAmount, ledger.DefaultAllowanceMaxAmount
	for _, tc := range []struct {
		name                  string
		maxCount, maxDisc     int64
		share                 int64 // AllowancePolicy.FirstShare (0: the default)
		wantCount, wantAmount int64
	}{
		{"Scarce", 100, 0, 0, minC, -1},
		{"BelowMinTimesShare", minC*ledger.DefaultAllowanceFirstShare - 1, 0, 0, minC, -1},
		{"Share", 20_000_000, 0, 0, 200, -1},
		{"Ample", 1_000_000_000, 0, 0, maxC, -1},
		{"Off", 1_000_000_000, 0, -1, minC, -1},
		{"OwnShare", 1_000, 0, 10, 100, -1},
		{"AmountScarce", 0, 1_000_000, 0, -1, minA},
		{"AmountShare", 0, 2_000_000_000, 0, -1, 20_000},
		{"AmountAmple", 0, 1 << 50, 0, -1, maxA},
		{"Both", 30_000_000, 1 << 50, 0, 300, maxA},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &ledger.MemFacts{}
			f.SetCampaign(tenant, "c", ledger.CampaignFacts{MaxCount: tc.maxCount, MaxDiscount: tc.maxDisc, Currency: "EUR"})
			l, err := ledger.Open(ctx, filepath.Join(t.TempDir(), "hub.db"), ledger.Options{Facts: f, Policy: ledger.AllowancePolicy{FirstShare: tc.share}})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			a, err := l.GrantAllowanceFor(ctx, tenant, "till-1", "c", "r1")
			if err != nil {
				t.Fatal(err)
			}
			if a.Count != tc.wantCount || a.Amount != tc.wantAmount || a.Grant != 1 {
				t.Fatalf("first grant = %+v, want count %d, amount %d, grant 1", a, tc.wantCount, tc.wantAmount)
			}
			// The till's second request, with no sale since: its own pace
			// sizes it (the minimum), and it holds more than that.
			if b, err := l.GrantAllowanceFor(ctx, tenant, "till-1", "c", "r2"); err != nil || b.Grant != 0 {
				t.Fatalf("second grant = %+v, %v; want none", b, err)
			}
		})
	}
}

// First grants never escrow more than is left, however many tills ask:
// 40 tills' first grants of a budget of 10 × Min × share take their
// shares while they last, then the budget's last units, then nothing.
func TestFirstGrantShareBudgetHolds(t *testing.T) {
	ctx := context.Background()
	const share = 100
	const budget = 10 * ledger.DefaultAllowanceMinCount * share // 5,000: the first grants are 50, 49, 49 ...
	f := &ledger.MemFacts{}
	f.SetCampaign(tenant, "c", ledger.CampaignFacts{MaxCount: budget, Currency: "EUR"})
	l, err := ledger.Open(ctx, filepath.Join(t.TempDir(), "hub.db"), ledger.Options{Facts: f, Policy: ledger.AllowancePolicy{FirstShare: share}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var sum, prev int64
	for i := range 400 {
		a, err := l.GrantAllowance(ctx, tenant, protocol.AgentID(fmt.Sprintf("till-%03d", i)), "c")
		if protocol.ErrorCode(err) == protocol.CodeBudgetExhausted {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		left := budget - sum
		if want := min(left, max(ledger.DefaultAllowanceMinCount, left/share)); a.Count != want {
			t.Fatalf("till %d: first grant %d with %d left, want %d", i, a.Count, left, want)
		}
		if i > 0 && a.Count > prev {
			t.Fatalf("till %d: first grant %d after %d: a share of less left is not more", i, a.Count, prev)
		}
		sum, prev = sum+a.Count, a.Count
	}
	b, err := l.Campaign(ctx, tenant, "c")
	if err != nil {
		t.Fatal(err)
	}
	if b.ReservedCount != budget || sum != budget {
		t.Fatalf("escrowed %d (granted %d), want the whole budget %d and no more", b.ReservedCount, sum, budget)
	}
}

// A till's later grants follow its pace, not the share: a till granted
// the maximum first and then selling 30 an hour is topped up to its
// pace's target only once it holds less than that.
func TestFirstGrantThenPace(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: t0}
	f := &ledger.MemFacts{}
	f.SetCampaign(tenant, "c", ledger.CampaignFacts{MaxCount: 1_000_000_000, Currency: "EUR"})
	l, err := ledger.Open(ctx, filepath.Join(t.TempDir(), "hub.db"), ledger.Options{Facts: f, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	a, err := l.GrantAllowance(ctx, tenant, "till-1", "c")
	if err != nil || a.Count != ledger.DefaultAllowanceMaxCount {
		t.Fatalf("first grant = %+v, %v; want %d", a, err, ledger.DefaultAllowanceMaxCount)
	}
	// 480 sales: 20 left; pace 480 an hour → target 500 (the maximum).
	var batch []protocol.Redemption
	for i := uint64(1); i <= 480; i++ {
		batch = append(batch, red("till-1", i, func(r *protocol.Redemption) { r.Campaign = "c" }))
	}
	if _, cs, err := l.ApplyBatch(ctx, tenant, "till-1", batch); err != nil || len(cs) != 0 {
		t.Fatal(cs, err)
	}
	c.Add(time.Minute)
	if a, err = l.GrantAllowance(ctx, tenant, "till-1", "c"); err != nil || a.Count != 480 || a.Grant != 2 {
		t.Fatalf("second grant = %+v, %v; want 480 (to the pace's target 500), grant 2", a, err)
	}
	// Two hours later with no sale: the pace is 0, the target the
	// minimum, and the till holds 500: nothing.
	c.Add(2 * time.Hour)
	if a, err = l.GrantAllowance(ctx, tenant, "till-1", "c"); err != nil || a.Count != 0 {
		t.Fatalf("third grant = %+v, %v; want none", a, err)
	}
}
