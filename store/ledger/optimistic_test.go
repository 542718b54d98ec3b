package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/ledger"
)

// TestOptimisticRestart: baskets refused after they wrote to the database
// (a purchase row and points lots for their first fact, then too few
// points for their burn) while the writer records groups without
// savepoints. The writer records such a group again with savepoints
// (WriterRestarts); every refused basket leaves nothing (no purchase row,
// no lot change, no seq), every other is recorded once, and Verify
// (MustOpen's cleanup: points = the lots' sum) is clean.
func TestOptimisticRestart(t *testing.T) {
	ctx := context.Background()
	l, _ := MustOpen(t)
	const n = 48
	cust := func(i int) protocol.CustomerID { return protocol.CustomerID(fmt.Sprint("c", i)) }
	for i := range n {
		if _, err := l.Redeem(ctx, protocol.Redemption{Kind: protocol.KindEarn, Tenant: tenant, Store: "web", TxnID: fmt.Sprint("earn-", i),
			Campaign: "loyalty", Customer: cust(i), Currency: "EUR", Points: 100, OrderTot: 1000}); err != nil {
			t.Fatal(err)
		}
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			burn := int64(-50)
			if i%2 == 1 {
				burn = -500 // more than the customer has: refused after the first fact wrote
			}
			txn := fmt.Sprint("b-", i)
			_, _, errs[i] = l.RedeemBasket(ctx, ledger.Basket{Tenant: tenant, Redemptions: []protocol.Redemption{
				{Kind: protocol.KindRedeem, Store: "web", TxnID: txn, Campaign: "loyalty", Customer: cust(i), Currency: "EUR", Discount: 100, OrderTot: 1000},
				{Kind: protocol.KindBurn, Store: "web", TxnID: txn, Campaign: "loyalty", Customer: cust(i), Currency: "EUR", Points: burn, OrderTot: 1000},
			}})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		var ie *ledger.ItemError
		switch {
		case i%2 == 0 && err != nil:
			t.Errorf("basket %d: %v", i, err)
		case i%2 == 1 && !(errors.As(err, &ie) && ie.Index == 1 && protocol.ErrorCode(ie.Err) == protocol.CodeInsufficientPts):
			t.Errorf("basket %d: %v, want insufficient points at 1", i, err)
		}
	}
	if l.WriterRestarts() == 0 {
		t.Fatal("no group was recorded again")
	}
	db := l.DB()
	var purchases int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM ledger_purchases WHERE tenant = ? AND txn LIKE 'b-%'`, string(tenant)).Scan(&purchases); err != nil {
		t.Fatal(err)
	}
	if purchases != n/2 {
		t.Errorf("%d purchase rows of baskets, want %d", purchases, n/2)
	}
	for i := range n {
		want := int64(100)
		if i%2 == 0 {
			want = 50
		}
		var p int64
		if err := db.QueryRowContext(ctx, `SELECT points FROM ledger_customers WHERE tenant = ? AND customer = ?`, string(tenant), string(cust(i))).Scan(&p); err != nil {
			t.Fatal(err)
		}
		if p != want {
			t.Errorf("%s has %d points, want %d", cust(i), p, want)
		}
	}
	// The hub's seqs: n earns and 2 facts per recorded basket, no gap.
	var max, count int64
	if err := db.QueryRowContext(ctx, `SELECT MAX(seq), COUNT(*) FROM ledger_journal WHERE tenant = ? AND agent = ?`,
		string(tenant), string(protocol.HubSender)).Scan(&max, &count); err != nil {
		t.Fatal(err)
	}
	if want := int64(n + n); max != want || count != want {
		t.Errorf("hub journal: max seq %d, %d rows; want %d and %d", max, count, want, want)
	}
}
