package ledger_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/ledger"
)

// TestAllowanceTotals: the summed allowances a campaign's escrow check
// reads (ledger_allowance_totals, kept by triggers) equal the sum over its
// tills' rows after grants, uses, an overrun, returns and online
// redemptions, as Campaign and Figures answer them; the grants stop, and
// an online redemption is refused, exactly at the budget. Verify (at
// cleanup) recomputes the totals too.
func TestAllowanceTotals(t *testing.T) {
	ctx := context.Background()
	l, _ := MustOpen(t)
	campaigns := []protocol.CampaignID{"budget100", "money"}
	check := func(step string) {
		t.Helper()
		fig, err := l.Figures(ctx, tenant, ledger.FiguresQuery{Campaigns: campaigns})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range campaigns {
			var n, a int64
			if err := l.DB().QueryRowContext(ctx, `SELECT COALESCE(SUM(MAX(0, granted_count - returned_count - used_count)), 0),
				COALESCE(SUM(MAX(0, granted_amount - returned_amount - used_amount)), 0)
				FROM ledger_allowances WHERE tenant = ? AND campaign = ?`, string(tenant), string(c)).Scan(&n, &a); err != nil {
				t.Fatal(err)
			}
			b, err := l.Campaign(ctx, tenant, c)
			if err != nil {
				t.Fatal(err)
			}
			if b.ReservedCount != n || b.ReservedAmount != a {
				t.Errorf("%s: %s: Campaign reserved %d/%d, the tills' rows sum to %d/%d", step, c, b.ReservedCount, b.ReservedAmount, n, a)
			}
			if f := fig.Campaigns[c]; f.ReservedCount != n || f.ReservedAmount != a {
				t.Errorf("%s: %s: Figures reserved %d/%d, the tills' rows sum to %d/%d", step, c, f.ReservedCount, f.ReservedAmount, n, a)
			}
		}
	}
	agent := func(i int) protocol.AgentID { return protocol.AgentID(fmt.Sprintf("till-%02d", i)) }
	seqs := map[protocol.AgentID]uint64{}
	use := func(i int, campaign protocol.CampaignID, n int, discount int64) {
		t.Helper()
		a := agent(i)
		var batch []protocol.Redemption
		for range n {
			seqs[a]++
			batch = append(batch, red(a, seqs[a], func(r *protocol.Redemption) { r.Campaign, r.Discount = campaign, discount }))
		}
		if _, _, err := l.ApplyBatch(ctx, tenant, a, batch); err != nil {
			t.Fatal(err)
		}
	}
	check("empty")
	for i := range 8 {
		for _, c := range campaigns {
			if _, err := l.GrantAllowance(ctx, tenant, agent(i), c); err != nil && protocol.ErrorCode(err) != protocol.CodeBudgetExhausted {
				t.Fatal(err)
			}
		}
	}
	check("granted")
	use(0, "budget100", 3, 100)
	use(1, "budget100", 7, 100) // past its 5: outstanding -2, counted as 0
	use(2, "money", 2, 20_00)
	use(3, "budget100", 1, 100)
	check("used")
	for _, i := range []int{3, 4} {
		if _, err := l.ReturnAllowance(ctx, protocol.Allowance{Tenant: tenant, Agent: agent(i), Campaign: "budget100", Count: 2}); err != nil {
			t.Fatal(err)
		}
	}
	check("returned")
	// More tills ask until the budget is gone: used + held is the budget.
	for i := 8; ; i++ {
		_, err := l.GrantAllowance(ctx, tenant, agent(i), "budget100")
		if protocol.ErrorCode(err) == protocol.CodeBudgetExhausted {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if i > 100 {
			t.Fatal("grants never stopped")
		}
	}
	check("exhausted")
	b, err := l.Campaign(ctx, tenant, "budget100")
	if err != nil {
		t.Fatal(err)
	}
	if b.Count+b.ReservedCount != 100 {
		t.Fatalf("used %d + held %d, want the budget of 100", b.Count, b.ReservedCount)
	}
	// The hub's own redemption finds nothing left until a till gives back.
	online := protocol.Redemption{Kind: protocol.KindRedeem, Tenant: tenant, Store: "web", Campaign: "budget100", Currency: "EUR", Discount: 1}
	if _, err := l.Redeem(ctx, online); protocol.ErrorCode(err) != protocol.CodeBudgetExhausted {
		t.Fatalf("online redemption with the budget held: %v, want %s", err, protocol.CodeBudgetExhausted)
	}
	if _, err := l.ReturnAllowance(ctx, protocol.Allowance{Tenant: tenant, Agent: agent(5), Campaign: "budget100", Count: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Redeem(ctx, online); err != nil {
		t.Fatalf("online redemption of the returned one: %v", err)
	}
	if _, err := l.Redeem(ctx, online); protocol.ErrorCode(err) != protocol.CodeBudgetExhausted {
		t.Fatalf("a second one: %v, want %s", err, protocol.CodeBudgetExhausted)
	}
	check("online")
	// Verify recomputes the totals: a tampered one is a difference.
	if _, err := l.DB().ExecContext(ctx, `UPDATE ledger_allowance_totals SET outstanding_count = outstanding_count + 7 WHERE campaign = 'budget100'`); err != nil {
		t.Fatal(err)
	}
	rep, err := l.Verify(ctx)
	if err != nil || len(rep.Diffs) != 1 || rep.Diffs[0].Table != "ledger_allowance_totals" {
		t.Fatalf("tampered total: %+v, %v; want one difference in ledger_allowance_totals", rep.Diffs, err)
	}
	if _, err := l.DB().ExecContext(ctx, `UPDATE ledger_allowance_totals SET outstanding_count = outstanding_count - 7 WHERE campaign = 'budget100'`); err != nil {
		t.Fatal(err)
	}
}
