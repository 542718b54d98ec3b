package chaos_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/punchcard/punchcard/cmd/punchcard/internal/chaos"
	"github.com/punchcard/punchcard/cmd/punchcard/internal/cluster"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/rules"
	"github.com/punchcard/punchcard/store"
)

// TestHubKilledMidBasket SIGKILLs the real hub process while web-shop
// lanes redeem multi-reward baskets (two codes and an automatic
// promotion: three ledger rows each), restarts it, and checks that every
// basket is all or nothing: each Idempotency-Key has either all three rows
// and its idempotency record, or nothing at all; every basket a lane got
// 200 for is recorded; a retry of an unanswered key records it once or
// replays it; and Verify is clean.
func TestHubKilledMidBasket(t *testing.T) {
	e := chaos.Setup(t, 0, 0, "")
	ctx := context.Background()
	auto := rules.Campaign{Schema: rules.SchemaVersion, ID: "auto", Tenant: chaos.Tenant, Currency: chaos.Currency, Status: rules.StatusActive,
		Trigger: rules.TriggerAuto, Reward: rules.Reward{Kind: rules.RewardAmountOff, Amount: 50}}
	second := rules.Campaign{Schema: rules.SchemaVersion, ID: "second", Tenant: chaos.Tenant, Currency: chaos.Currency, Status: rules.StatusActive,
		Reward: rules.Reward{Kind: rules.RewardAmountOff, Amount: 1_00}}
	for _, c := range []rules.Campaign{auto, second} {
		if _, err := e.Admin.CreateCampaign(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Admin.ImportCodes(ctx, chaos.Tenant, "second", []string{"SECOND"}, cluster.CodeSpec{Uses: -1}); err != nil {
		t.Fatal(err)
	}
	basket := func(i int) cluster.OnlineRequest {
		return cluster.OnlineRequest{
			Store:       cluster.OnlineStore{ID: "web", TimeZone: "Europe/Berlin"},
			Order:       protocol.Order{ID: fmt.Sprintf("o-%d", i), Currency: chaos.Currency, Lines: []protocol.Line{{SKU: "shirt", Quantity: 1, UnitPrice: 50_00}}},
			Redeemables: []cluster.Presented{{Code: chaos.Code}, {Code: "SECOND"}},
		}
	}
	const rows = 3 // the two codes and the automatic promotion

	rounds := 2
	if chaos.Long() {
		rounds = 6
	}
	var mu sync.Mutex
	answered := map[string]bool{} // keys a lane got 200 for
	var unanswered []string
	next := atomic.Int64{}
	for round := range rounds {
		stop := make(chan struct{})
		var ok atomic.Int64
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					i := int(next.Add(1))
					key := fmt.Sprintf("basket-%d", i)
					rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
					out, err := e.Admin.Redeem(rctx, chaos.Tenant, key, basket(i))
					cancel()
					mu.Lock()
					if err == nil && len(out.Redemptions) == rows {
						answered[key] = true
						ok.Add(1)
					} else {
						unanswered = append(unanswered, key)
					}
					mu.Unlock()
					if err != nil {
						time.Sleep(10 * time.Millisecond)
					}
				}
			}()
		}
		// Kill once some baskets went through, while the lanes keep sending.
		for ok.Load() < int64(20*(round+1)) {
			time.Sleep(5 * time.Millisecond)
		}
		if err := e.C.Hub.Proc.Kill(); err != nil {
			t.Fatal(err)
		}
		<-e.C.Hub.Proc.Done()
		close(stop)
		wg.Wait()
		if err := e.C.Hub.Restart(ctx); err != nil {
			t.Fatal(err)
		}
	}
	check := func(stage string) map[string]int {
		db, err := store.Open(ctx, e.C.Hub.LedgerPath(), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		counts := map[string]int{}
		q, err := db.QueryContext(ctx, `SELECT txn_id, COUNT(*) FROM ledger_journal WHERE agent = ? GROUP BY txn_id`, string(protocol.HubSender))
		if err != nil {
			t.Fatal(err)
		}
		for q.Next() {
			var k string
			var n int
			if err := q.Scan(&k, &n); err != nil {
				t.Fatal(err)
			}
			counts[k] = n
		}
		q.Close()
		records := map[string]bool{}
		q, err = db.QueryContext(ctx, `SELECT key FROM catalog_idempotency WHERE tenant = ?`, string(chaos.Tenant))
		if err != nil {
			t.Fatal(err)
		}
		for q.Next() {
			var k string
			if err := q.Scan(&k); err != nil {
				t.Fatal(err)
			}
			records[k] = true
		}
		q.Close()
		for k, n := range counts {
			if n != rows {
				t.Errorf("%s: basket %s has %d of its %d rows", stage, k, n, rows)
			}
			if !records[k] {
				t.Errorf("%s: basket %s recorded without its idempotency record", stage, k)
			}
		}
		for k := range records {
			if counts[k] == 0 {
				t.Errorf("%s: idempotency record %s without its basket", stage, k)
			}
		}
		for k := range answered {
			if counts[k] != rows {
				t.Errorf("%s: basket %s was answered 200 but has %d rows", stage, k, counts[k])
			}
		}
		return counts
	}
	before := check("after the kills")
	// The shop retries what got no answer: each is recorded now or was
	// already, once either way.
	for _, k := range unanswered {
		var i int
		fmt.Sscanf(k, "basket-%d", &i)
		out, err := e.Admin.Redeem(ctx, chaos.Tenant, k, basket(i))
		if err != nil || len(out.Redemptions) != rows {
			t.Fatalf("retry of %s: %v %+v", k, err, out)
		}
		answered[k] = true
	}
	after := check("after the retries")
	for k, n := range before {
		if after[k] != n {
			t.Errorf("basket %s changed on retry: %d -> %d rows", k, n, after[k])
		}
	}
	v, err := e.C.Platform.VerifyLedger(ctx)
	if err != nil || !v.OK {
		t.Fatalf("verify: %+v %v", v, err)
	}
	t.Logf("%d baskets answered before the kills, %d unanswered and retried, %d recorded", len(answered)-len(unanswered), len(unanswered), len(after))
}
