package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/ledger"
)

// TestGroupCommitUndo: the online writer records concurrent baskets in
// shared group commits. Baskets refused on their last redemption, after
// the first was applied in the group's state, leave nothing behind: the
// balances, the hub's seqs (contiguous, no gaps) and Verify (MustOpen's
// cleanup) agree with the baskets that succeeded. Concurrent baskets of
// one transaction id get one record.
func TestGroupCommitUndo(t *testing.T) {
	ctx := context.Background()
	l, _ := MustOpen(t)
	const n = 64
	var ok, refused atomic.Int64
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code := protocol.CodeID(fmt.Sprintf("ONCE-%d", 1+i%2))
			txn := fmt.Sprint("basket-", i)
			_, _, err := l.RedeemBasket(ctx, ledger.Basket{Tenant: tenant, Redemptions: []protocol.Redemption{
				{Kind: protocol.KindRedeem, Store: "web", TxnID: txn, Campaign: "loyalty", Customer: protocol.CustomerID(fmt.Sprint("c", i)), Currency: "EUR", Discount: 100, OrderTot: 1000},
				{Kind: protocol.KindRedeem, Store: "web", TxnID: txn, Campaign: "summer", Code: code, Customer: protocol.CustomerID(fmt.Sprint("c", i)), Currency: "EUR", Discount: 50, OrderTot: 1000},
			}})
			var ie *ledger.ItemError
			switch {
			case err == nil:
				ok.Add(1)
			case errors.As(err, &ie) && ie.Index == 1 && protocol.ErrorCode(ie.Err) == protocol.CodeCodeUsed:
				refused.Add(1)
			default:
				t.Error(err)
			}
		}()
	}
	// One redemption sent 8 times at once under one transaction id.
	ids := make([]protocol.RedemptionID, 8)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := l.Redeem(ctx, protocol.Redemption{Kind: protocol.KindRedeem, Tenant: tenant, Store: "web", TxnID: "same",
				Campaign: "loyalty", Code: "MULTI", Currency: "EUR", Discount: 10, OrderTot: 100})
			if err != nil {
				t.Error(err)
			}
			ids[i] = r.ID
		}()
	}
	wg.Wait()
	if ok.Load() != 2 || refused.Load() != n-2 {
		t.Fatalf("%d baskets recorded, %d refused; want 2 and %d", ok.Load(), refused.Load(), n-2)
	}
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("one transaction id recorded as %v and %v", ids[0], id)
		}
	}
	b, err := l.Campaign(ctx, tenant, "loyalty")
	if err != nil {
		t.Fatal(err)
	}
	if b.Count != 3 {
		t.Fatalf("loyalty count = %d, want 3 (2 baskets and the one repeated redemption)", b.Count)
	}
	for _, c := range []protocol.CodeID{"ONCE-1", "ONCE-2", "MULTI"} {
		if uses, _ := l.CodeUses(ctx, tenant, c); uses != 1 {
			t.Fatalf("%s uses = %d, want 1", c, uses)
		}
	}
	// The hub's seqs are 1..5 with no gap: the refused baskets gave theirs
	// back.
	var max, count int64
	if err := l.DB().QueryRowContext(ctx, `SELECT MAX(seq), COUNT(*) FROM ledger_journal WHERE tenant = ? AND agent = ?`,
		string(tenant), string(protocol.HubSender)).Scan(&max, &count); err != nil {
		t.Fatal(err)
	}
	if max != 5 || count != 5 {
		t.Fatalf("hub journal: max seq %d, %d rows; want 5 and 5", max, count)
	}
}
