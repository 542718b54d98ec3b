package ledger_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store"
	"github.com/punchcard/punchcard/store/ledger"
)

// TestConflictOtherSide checks the other side the ledger names for
// code_reused, giftcard_overdrawn and customer_limit conflicts (kept in the
// balance rows) against its definition, a query of the journal: the most
// recent earlier entry of that code with entry = 'redeem' and sign > 0
// (a redeem voided on arrival never used the code), of that gift
// card with spend > 0 and sign > 0, of that customer and campaign with
// sign > 0 — across transactions, within one batch, within one
// ApplyBatches of several agents, and around rollbacks and earns.
func TestConflictOtherSide(t *testing.T) {
	ctx := context.Background()
	l, _ := MustOpen(t)
	code := func(r *protocol.Redemption) { r.Code = "ONCE-2" }
	gift := func(r *protocol.Redemption) { r.Code, r.Spend, r.Campaign = "GIFT-0001", 2000, "" }
	cust := func(r *protocol.Redemption) { r.Campaign, r.Customer = "summer", "carol" }
	rollback := func(ref protocol.RedemptionID, mod func(*protocol.Redemption)) func(*protocol.Redemption) {
		return func(r *protocol.Redemption) { mod(r); r.Kind, r.Ref = protocol.KindRollback, &ref }
	}
	earn := func(r *protocol.Redemption) {
		r.Kind, r.Customer, r.Points, r.Campaign = protocol.KindEarn, "carol", 10, "summer"
	}
	steps := [][]ledger.Batch{
		{{Tenant: tenant, Agent: "till-1", Redemptions: []protocol.Redemption{
			red("till-1", 1, code), red("till-1", 2, code), red("till-1", 3, gift), red("till-1", 4, gift), red("till-1", 5, cust),
		}}},
		{{Tenant: tenant, Agent: "till-2", Redemptions: []protocol.Redemption{
			red("till-2", 1, rollback(protocol.RedemptionID{Agent: "till-1", Seq: 2}, code)), red("till-2", 2, code),
			red("till-2", 3, gift), red("till-2", 4, earn), red("till-2", 5, cust),
			red("till-2", 6, rollback(protocol.RedemptionID{Agent: "till-2", Seq: 5}, cust)), red("till-2", 7, cust),
		}}},
		{
			{Tenant: tenant, Agent: "till-3", Redemptions: []protocol.Redemption{red("till-3", 1, code), red("till-3", 2, gift), red("till-3", 3, cust)}},
			{Tenant: tenant, Agent: "till-1", Redemptions: []protocol.Redemption{red("till-1", 6, code), red("till-1", 7, cust), red("till-1", 8, gift),
				// A rollback before its original: till-1/20 is voided on
				// arrival (sign 0), never uses the code, is no other side.
				red("till-1", 19, rollback(protocol.RedemptionID{Agent: "till-1", Seq: 20}, code)), red("till-1", 20, code), red("till-1", 21, code)}},
		},
	}
	for _, bs := range steps {
		res, err := l.ApplyBatches(ctx, bs)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
		}
	}
	cs, err := l.Conflicts(ctx, tenant, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	conds := map[ledger.ConflictKind]string{
		ledger.ConflictCodeReused:       `code = 'ONCE-2' AND entry = 'redeem' AND sign > 0`,
		ledger.ConflictGiftCardOverdraw: `code = 'GIFT-0001' AND spend > 0 AND sign > 0`,
		ledger.ConflictCustomerLimit:    `customer = 'carol' AND campaign = 'summer' AND sign > 0`,
	}
	checked := map[ledger.ConflictKind]int{}
	for _, c := range cs {
		cond, ok := conds[c.Kind]
		if !ok {
			continue
		}
		checked[c.Kind]++
		var agent string
		var seq int64
		err := l.DB().QueryRowContext(ctx, `SELECT agent, seq FROM ledger_journal WHERE tenant = ? AND `+cond+`
			AND id < (SELECT id FROM ledger_journal WHERE tenant = ? AND agent = ? AND seq = ?) ORDER BY id DESC LIMIT 1`,
			string(tenant), string(tenant), string(c.Redemption.Agent), int64(c.Redemption.Seq)).Scan(&agent, &seq)
		var want *protocol.RedemptionID
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			t.Fatal(err)
		default:
			want = &protocol.RedemptionID{Agent: protocol.AgentID(agent), Seq: uint64(seq)}
		}
		if (want == nil) != (c.Other == nil) || (want != nil && *want != *c.Other) {
			t.Errorf("%s of %s: other side = %v, want %v", c.Kind, c.Redemption, c.Other, want)
		}
	}
	// ONCE-2 redeems: till-1/2, till-2/2, till-3/1, till-1/6, till-1/21
	// conflict; the
	// gift card (5000) overdraws on its third, fourth and fifth spend of 2000; carol's limit of one
	// breaks with every redeem after her first.
	for kind, want := range map[ledger.ConflictKind]int{ledger.ConflictCodeReused: 5, ledger.ConflictGiftCardOverdraw: 3, ledger.ConflictCustomerLimit: 4} {
		if checked[kind] != want {
			t.Errorf("%s conflicts = %d, want %d", kind, checked[kind], want)
		}
	}
}

// TestMigrationBackfillsLastRedemption: a database created before
// ledger_002 gets the last redemptions of its balance rows from its journal.
func TestMigrationBackfillsLastRedemption(t *testing.T) {
	ctx := context.Background()
	init001, err := fs.ReadFile(ledger.Migrations(), "ledger_001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "old.db"), store.Options{Migrations: fstest.MapFS{"ledger_001_init.sql": {Data: init001}}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		`INSERT INTO ledger_journal (tenant, entry, agent, seq, code, customer, campaign, spend, sign, psign, received_at) VALUES
			('acme', 'redeem', 'till-1', 1, 'C', 'dan', 'summer', 10, 1, 1, 0),
			('acme', 'redeem', 'till-2', 1, 'C', 'dan', 'summer', 0, 1, 1, 0),
			('acme', 'rollback', 'till-2', 2, 'C', 'dan', 'summer', 0, -1, -1, 0)`,
		`INSERT INTO ledger_codes (tenant, code, uses) VALUES ('acme', 'C', 1), ('acme', 'UNUSED', 0)`,
		`INSERT INTO ledger_giftcards (tenant, code, spent) VALUES ('acme', 'C', 10)`,
		`INSERT INTO ledger_customer_campaigns (tenant, customer, campaign, count) VALUES ('acme', 'dan', 'summer', 1)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.Migrate(ctx, db, ledger.Migrations()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ q, want string }{
		{`SELECT last_agent || '/' || last_seq FROM ledger_codes WHERE code = 'C'`, "till-2/1"},
		{`SELECT COALESCE(last_agent, 'none') FROM ledger_codes WHERE code = 'UNUSED'`, "none"},
		{`SELECT last_agent || '/' || last_seq FROM ledger_giftcards WHERE code = 'C'`, "till-1/1"},
		{`SELECT last_agent || '/' || last_seq FROM ledger_customer_campaigns WHERE customer = 'dan'`, "till-2/1"},
	} {
		var got string
		if err := db.QueryRowContext(ctx, tc.q).Scan(&got); err != nil || got != tc.want {
			t.Errorf("%s = %q (%v), want %q", tc.q, got, err, tc.want)
		}
	}
}

// TestManyBalancesInOneBatch: a batch touching more balance rows than one
// prefetch query or one multi-row upsert carries (32 + 8 + 1 + 2 distinct
// customers and codes, some of them already stored) keeps every one.
func TestManyBalancesInOneBatch(t *testing.T) {
	ctx := context.Background()
	l, _ := MustOpen(t)
	const n = 43
	batch := func(from uint64) []protocol.Redemption {
		rs := make([]protocol.Redemption, 0, n)
		for i := range uint64(n) {
			rs = append(rs, red("till-1", from+i, func(r *protocol.Redemption) {
				r.Customer, r.Code = protocol.CustomerID(fmt.Sprintf("cust-%d", i)), protocol.CodeID(fmt.Sprintf("CODE-%d", i%37))
			}))
		}
		return rs
	}
	// The second batch finds the first one's rows and adds to them.
	for _, from := range []uint64{1, 1 + n} {
		if _, _, err := l.ApplyBatch(ctx, tenant, "till-1", batch(from)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		if got, err := l.CustomerCount(ctx, tenant, protocol.CustomerID(fmt.Sprintf("cust-%d", i)), "loyalty"); err != nil || got != 2 {
			t.Fatalf("cust-%d count = %d, %v; want 2", i, got, err)
		}
	}
	for i := range 37 {
		want := int64(2)
		if i < n-37 {
			want = 4
		}
		if got, err := l.CodeUses(ctx, tenant, protocol.CodeID(fmt.Sprintf("CODE-%d", i))); err != nil || got != want {
			t.Fatalf("CODE-%d uses = %d, %v; want %d", i, got, err, want)
		}
	}
}
