package ledger

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// TestGroupBalances: the baskets of one group share the balances they
// check and move: a customer at the per-customer limit is refused, two
// baskets of one customer see each other's count and points, an earn of
// a customer without a row makes one, and the ledger verifies.
func TestGroupBalances(t *testing.T) {
	const tn = protocol.TenantID("acme")
	ctx := context.Background()
	l, red, redeem := groupLedger(t, tn, 1)
	balancesGroup(t, l, red, redeem)
	for cu, want := range map[protocol.CustomerID]int64{"c2": 20, "c4": 10} {
		if p, err := l.Points(ctx, tn, cu); err != nil || p != want {
			t.Errorf("points of %s: %d, %v; want %d", cu, p, err, want)
		}
	}
	rep, err := l.Verify(ctx)
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v %+v", err, rep.Diffs)
	}
}

// balancesGroup records TestGroupBalances' baskets on l (of groupLedger,
// per customer 1): before, c1 uses promo once and c2 earns 50 points;
// then one group of baskets, some refused after others wrote.
func balancesGroup(t *testing.T, l *Ledger, red func(protocol.RedemptionKind, protocol.CampaignID, protocol.CustomerID, int64) protocol.Redemption,
	redeem func(string, protocol.Redemption) error) {
	t.Helper()
	for i, r := range []protocol.Redemption{red(protocol.KindRedeem, "promo", "c1", 0), red(protocol.KindEarn, "club", "c2", 50)} {
		if err := redeem(fmt.Sprint("pre", i), r); err != nil {
			t.Fatal(err)
		}
	}
	runGroup(t, l, red(protocol.KindEarn, "club", "c9", 1), redeem, []groupBasket{
		{red(protocol.KindRedeem, "promo", "c1", 0), protocol.CodeCustomerLimit},
		{red(protocol.KindBurn, "club", "c2", -30), ""},
		{red(protocol.KindBurn, "club", "c2", -30), protocol.CodeInsufficientPts},
		{red(protocol.KindRedeem, "promo", "c3", 0), ""},
		{red(protocol.KindRedeem, "promo", "c3", 0), protocol.CodeCustomerLimit},
		{red(protocol.KindEarn, "club", "c4", 10), ""},
	})
}

// groupBasket is a basket of a group test and the answer it wants: ""
// for recorded, else the refusal's code.
type groupBasket struct {
	r    protocol.Redemption
	want protocol.Code
}

// groupLedger opens a ledger whose "promo" campaign allows perCustomer
// uses a customer and whose "club" campaign has no limit, and returns it
// with a Redemption builder and a one-redemption basket recorder.
func groupLedger(t *testing.T, tn protocol.TenantID, perCustomer int64) (*Ledger,
	func(kind protocol.RedemptionKind, camp protocol.CampaignID, cu protocol.CustomerID, points int64) protocol.Redemption,
	func(txn string, r protocol.Redemption) error) {
	t.Helper()
	return groupLedgerAt(t, tn, perCustomer, nil)
}

// groupLedgerAt is groupLedger with the ledger's clock now (nil: the
// wall clock).
func groupLedgerAt(t *testing.T, tn protocol.TenantID, perCustomer int64, now func() time.Time) (*Ledger,
	func(kind protocol.RedemptionKind, camp protocol.CampaignID, cu protocol.CustomerID, points int64) protocol.Redemption,
	func(txn string, r protocol.Redemption) error) {
	t.Helper()
	ctx := context.Background()
	f := &MemFacts{}
	f.SetCampaign(tn, "promo", CampaignFacts{Currency: "EUR", PerCustomer: perCustomer})
	f.SetCampaign(tn, "club", CampaignFacts{Currency: "EUR"})
	l, err := Open(ctx, filepath.Join(t.TempDir(), "l.db"), Options{Facts: f, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	red := func(kind protocol.RedemptionKind, camp protocol.CampaignID, cu protocol.CustomerID, points int64) protocol.Redemption {
		r := protocol.Redemption{Kind: kind, Store: "web", Campaign: camp, Customer: cu, Currency: "EUR", Points: points, OrderTot: 100}
		if kind == protocol.KindRedeem {
			r.Discount = 10
		}
		return r
	}
	redeem := func(txn string, r protocol.Redemption) error {
		r.TxnID = txn
		_, _, err := l.RedeemBasket(ctx, Basket{Tenant: tn, Redemptions: []protocol.Redemption{r}})
		return err
	}
	return l, red, redeem
}

// runGroup records baskets as one group of l's online writer, in order,
// and checks each answer: the writer takes a first basket and waits for
// the write lock held here; the baskets queued meanwhile make the next
// group.
func runGroup(t *testing.T, l *Ledger, first protocol.Redemption, redeem func(string, protocol.Redemption) error, baskets []groupBasket) {
	t.Helper()
	ctx := context.Background()
	begins := make(chan struct{}, 1)
	beforeBegin = func() {
		select {
		case begins <- struct{}{}:
		default:
		}
	}
	defer func() { beforeBegin = nil }()
	groups, what := int64(2), "the baskets in one group after the first"
	if l.w.takeIn.on { // set before the writer's first basket (takeInGroups)
		groups, what = 1, "the baskets taken into the first's group"
	}
	hold, err := l.db.BeginTx(ctx, nil) // BEGIN IMMEDIATE: the write lock
	if err != nil {
		t.Fatal(err)
	}
	g0, _ := l.WriterStats()
	firstErr := make(chan error, 1)
	go func() { firstErr <- redeem("first", first) }()
	<-begins // the writer took it and begins its group
	errs := make([]chan error, len(baskets))
	for i, b := range baskets {
		errs[i] = make(chan error, 1)
		go func() { errs[i] <- redeem(fmt.Sprint("b", i), b.r) }()
		for len(l.w.q) < i+1 { // queued in this order
			time.Sleep(time.Millisecond)
		}
	}
	if err := hold.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := <-firstErr; err != nil {
		t.Fatal(err)
	}
	for i, b := range baskets {
		err := <-errs[i]
		if got := protocol.ErrorCode(err); got != b.want || (b.want == "" && err != nil) {
			t.Errorf("basket %d: %v, want %q", i, err, b.want)
		}
	}
	if g1, _ := l.WriterStats(); g1-g0 != groups {
		t.Errorf("%d groups, want %s", g1-g0, what)
	}
}

// takeInGroups sets l's writer to take in the baskets queued while a
// group is recorded (takein.go), before l's first basket: runGroup's
// baskets then join the first's group, loaded by takeQueued's prefetch.
func takeInGroups(l *Ledger) { l.w.takeIn.on = true }
