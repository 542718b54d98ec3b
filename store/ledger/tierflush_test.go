package ledger

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/tiers"
)

// spendTiers is the catalog side of a tier programme on spend (gold from
// 5.00), for a ledger without a catalog: the ledger's own tables (tiers,
// history, events) are real; the catalog's copy of the tier is not kept.
type spendTiers struct{}

func (spendTiers) TierProgramTx(context.Context, *sql.Tx, protocol.TenantID) (tiers.Program, bool, error) {
	return tiers.Program{Tiers: []tiers.Level{{Name: "gold", Min: 500}}, Measure: tiers.MeasureSpend,
		Window: tiers.Window{Kind: tiers.WindowRolling, Days: 365}}, true, nil
}

func (spendTiers) SetCustomerTierTx(context.Context, *sql.Tx, protocol.TenantID, protocol.CustomerID, string, uint64) (uint64, error) {
	return 0, nil
}

// commitGroupNow records baskets in ONE group commit, in this order, with
// the online writer stopped (so that nothing else shares or splits the
// group), and returns each basket's error.
func commitGroupNow(t *testing.T, l *Ledger, baskets ...Basket) []error {
	t.Helper()
	ctx := context.Background()
	l.stopWriter()
	batch := make([]*job, len(baskets))
	for i, b := range baskets {
		j := &job{ctx: ctx, b: b, done: make(chan struct{}),
			facts: factSet{camps: map[key2]CampaignFacts{}, codes: map[key2]CodeFacts{}}}
		seenC, seenK := map[key2]bool{}, map[key2]bool{}
		for _, r := range b.Redemptions {
			r.Tenant = b.Tenant
			if err := j.facts.add(ctx, l.facts, r, seenC, seenK); err != nil {
				t.Fatal(err)
			}
		}
		batch[i] = j
	}
	l.commitGroup(batch, nil)
	errs := make([]error, len(batch))
	for i, j := range batch {
		errs[i] = j.err
	}
	return errs
}

// TestGroupTierFlush: a tier programme on spend makes applyTier write the
// group's buffered journal rows in the middle of a basket. A basket
// refused after that write (its second redemption: a campaign whose budget
// is spent) must leave nothing behind, and every basket recorded before or
// after it in the same group must keep its journal rows, exactly once:
// with the basket's savepoint opened before the write (a customer's order:
// its purchase row) and without it (no transaction id, no points), with
// the refused basket first, in the middle and last.
func TestGroupTierFlush(t *testing.T) {
	const tn = protocol.TenantID("acme")
	for _, withTxn := range []bool{true, false} {
		for _, order := range []string{"ok-bad-ok", "bad-ok", "ok-bad"} {
			t.Run(fmt.Sprintf("txn=%v/%s", withTxn, order), func(t *testing.T) {
				ctx := context.Background()
				f := &MemFacts{}
				f.SetCampaign(tn, "loyalty", CampaignFacts{Currency: "EUR"})
				f.SetCampaign(tn, "budget1", CampaignFacts{MaxCount: 1, Currency: "EUR"})
				l, err := Open(ctx, filepath.Join(t.TempDir(), "l.db"), Options{Facts: f, Tiers: spendTiers{}})
				if err != nil {
					t.Fatal(err)
				}
				defer l.Close()
				// budget1's one redemption, outside the group.
				if _, err := l.Redeem(ctx, protocol.Redemption{Kind: protocol.KindRedeem, Tenant: tn, Store: "web", Campaign: "budget1", Currency: "EUR", Discount: 10, OrderTot: 100}); err != nil {
					t.Fatal(err)
				}
				basket := func(cu string, refused bool) Basket {
					r := protocol.Redemption{Kind: protocol.KindRedeem, Store: "web", Campaign: "loyalty", Customer: protocol.CustomerID(cu),
						Currency: "EUR", Discount: 100, OrderTot: 1000}
					if withTxn {
						r.TxnID = "txn-" + cu
						r.Kind, r.Discount, r.Points = protocol.KindEarn, 0, 10
					}
					b := Basket{Tenant: tn, Redemptions: []protocol.Redemption{r}}
					if refused {
						r2 := r
						r2.Kind, r2.Campaign, r2.Discount, r2.Points = protocol.KindRedeem, "budget1", 10, 0
						b.Redemptions = append(b.Redemptions, r2)
					}
					return b
				}
				var baskets []Basket
				var want []bool
				// anon has no customer: applyTier does not run for it, so its
				// row is still queued when the next basket's applyTier writes.
				anon := Basket{Tenant: tn, Redemptions: []protocol.Redemption{{Kind: protocol.KindRedeem, Store: "kiosk", TxnID: "txn-anon",
					Campaign: "loyalty", Currency: "EUR", Discount: 100, OrderTot: 1000}}}
				switch order {
				case "ok-bad-ok":
					baskets = []Basket{basket("c1", false), anon, basket("c2", true), basket("c3", false)}
					want = []bool{true, true, false, true}
				case "bad-ok":
					baskets = []Basket{basket("c2", true), basket("c1", false), anon}
					want = []bool{false, true, true}
				case "ok-bad":
					baskets = []Basket{anon, basket("c1", false), anon2(anon), basket("c2", true)}
					want = []bool{true, true, true, false}
				}
				errs := commitGroupNow(t, l, baskets...)
				count := func(q string, cu protocol.CustomerID) int {
					var n int
					if err := l.DB().QueryRowContext(ctx, q, string(tn), string(cu)).Scan(&n); err != nil {
						t.Fatal(err)
					}
					return n
				}
				for i, b := range baskets {
					cu := b.Redemptions[0].Customer
					if (errs[i] == nil) != want[i] {
						t.Fatalf("basket %d (%s): err %v, want accepted %v", i, cu, errs[i], want[i])
					}
					if cu == "" {
						var n int
						if err := l.DB().QueryRowContext(ctx, `SELECT count(*) FROM ledger_journal WHERE tenant = ? AND txn_id = ?`,
							string(tn), b.Redemptions[0].TxnID).Scan(&n); err != nil {
							t.Fatal(err)
						}
						if n != 1 {
							t.Errorf("accepted basket %d without customer (%s): %d journal rows, want 1", i, b.Redemptions[0].TxnID, n)
						}
						continue
					}
					rows := count(`SELECT count(*) FROM ledger_journal WHERE tenant = ? AND customer = ?`, cu)
					hist := count(`SELECT count(*) FROM ledger_tier_history WHERE tenant = ? AND customer = ?`, cu)
					tier := count(`SELECT count(*) FROM ledger_customer_tiers WHERE tenant = ? AND customer = ?`, cu)
					lots := count(`SELECT count(*) FROM ledger_points_lots WHERE tenant = ? AND customer = ?`, cu)
					bought := count(`SELECT count(*) FROM ledger_purchases WHERE tenant = ? AND customer = ?`, cu)
					events := count(`SELECT count(*) FROM ledger_events WHERE tenant = ? AND instr(body, ?) > 0`, `"`+cu+`"`)
					if want[i] {
						wantLots, wantBought := 0, 0
						if withTxn {
							wantLots, wantBought = 1, 1
						}
						if rows != 1 || hist != 1 || tier != 1 || lots != wantLots || bought != wantBought || events == 0 {
							t.Errorf("accepted %s: %d journal rows, %d tier history, %d tiers, %d lots, %d purchases, %d events; want 1, 1, 1, %d, %d, >0",
								cu, rows, hist, tier, lots, bought, events, wantLots, wantBought)
						}
					} else if rows+hist+tier+lots+bought+events != 0 {
						t.Errorf("refused %s left %d journal rows, %d tier history, %d tiers, %d lots, %d purchases, %d events",
							cu, rows, hist, tier, lots, bought, events)
					}
				}
				rep, err := l.Verify(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if !rep.OK() {
					t.Errorf("ledger does not verify: %v", rep.Diffs)
				}
			})
		}
	}
}

// anon2 is a copy of an anonymous basket under another transaction id.
func anon2(b Basket) Basket {
	r := b.Redemptions[0]
	r.TxnID += "-2"
	return Basket{Tenant: b.Tenant, Redemptions: []protocol.Redemption{r}}
}
