package online_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/punchcard/punchcard/hub/online"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/decide"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/store"
	"github.com/punchcard/punchcard/store/catalog"
	"github.com/punchcard/punchcard/store/ledger"
)

// TestAuthorizeReflected: the authorize answer says which of the asking
// till's facts its figures count (the snapshot's Reflected, read before
// them) and the code-use position after them, and its figures leave out
// the till's holds of its other transactions (they are its own facts,
// which it adds beyond Reflected), while another till's figure counts
// them. So the till's figure, the hub's plus its own facts outside
// Reflected, is exact: each spend counted once.
func TestAuthorizeReflected(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "hub.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cat, err := catalog.New(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	led, err := ledger.New(ctx, db, ledger.Options{Facts: cat})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { led.Close() })
	if _, err := cat.CreateTenant(ctx, catalog.System, catalog.Tenant{ID: "acme", Name: "Acme", Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	if _, err := cat.CreateCampaign(ctx, catalog.System, "acme", []byte(`{"schema":1,"id":"gift","tenant":"acme","status":"active","currency":"EUR","reward":{"kind":"gift_card","multi_use":true}}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := cat.ImportCodes(ctx, catalog.System, "acme", "gift", []string{"CARD1"}, catalog.CodeSpec{Uses: -1, Balance: 100_00}); err != nil {
		t.Fatal(err)
	}
	st := snapshot.Store{ID: "store-1", TimeZone: "Europe/Berlin"}
	s := online.New(cat, led)
	ask := func(agent protocol.AgentID, txn string, hold bool, spend int64) decide.AuthorizeResponse {
		t.Helper()
		resp, err := s.Authorize(ctx, "acme", agent, st, decide.AuthorizeRequest{TxnID: txn, Hold: hold,
			Order:       protocol.Order{ID: txn, Currency: "EUR", Lines: []protocol.Line{{SKU: "tv", Quantity: 1, UnitPrice: 500_00}}},
			Redeemables: []decide.AuthorizeInput{{Code: "CARD1", Amount: spend}}})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Reflected == nil || len(resp.Known) != 1 {
			t.Fatalf("%s/%s: no Reflected: %+v", agent, txn, resp)
		}
		return resp
	}
	if r := ask("till-1", "t1", true, 30_00); !r.Held || r.Known[0].Spent != 0 {
		t.Fatalf("first hold: %+v", r)
	}
	// The same till again: its hold of t1 is its own fact, not the hub's.
	if r := ask("till-1", "t2", false, 0); r.Known[0].Spent != 0 || r.Reflected.Watermark != 0 {
		t.Fatalf("own hold in the till's figure: %+v", r)
	}
	// Another till: the hold counts.
	if r := ask("till-2", "t9", false, 0); r.Known[0].Spent != 30_00 {
		t.Fatalf("another till's figure leaves out the hold: %+v", r)
	}
	// till-1's fact reaches the ledger: its figure counts it, and says so.
	before := ask("till-1", "t2", false, 0).Position
	fact := protocol.Redemption{ID: protocol.RedemptionID{Agent: "till-1", Seq: 1}, Kind: protocol.KindRedeem, Tenant: "acme", Store: "store-1",
		TxnID: "t1", Code: "CARD1", Campaign: "gift", Currency: "EUR", Spend: 30_00, OrderTot: 500_00, HLC: ledger.HLCFromTime(time.Now()), Offline: false}
	if _, cs, err := led.ApplyBatch(ctx, "acme", "till-1", []protocol.Redemption{fact}); err != nil || len(cs) != 0 {
		t.Fatalf("apply: %v %+v", err, cs)
	}
	r := ask("till-1", "t3", false, 0)
	if r.Known[0].Spent != 30_00 || r.Reflected.Watermark != 1 || r.Position <= before {
		t.Fatalf("after the fact: %+v (position before %d)", r, before)
	}
}
