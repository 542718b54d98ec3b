package online_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/punchcard/punchcard/hub/online"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/decide"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/store"
	"github.com/punchcard/punchcard/store/catalog"
	"github.com/punchcard/punchcard/store/ledger"
)

// TestAuthorizeUnknown: the authorize answer carries the hub's record of
// each code the till names unknown that the hub knows and applies
// (decide.AuthorizeResponse.Codes), and of nothing else: not of a code
// the till did not name, nor of one the hub refuses or does not know. A
// bad Unknown is invalid_input on the field.
func TestAuthorizeUnknown(t *testing.T) {
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
	for _, doc := range []string{
		`{"schema":1,"id":"gift","tenant":"acme","status":"active","currency":"EUR","reward":{"kind":"gift_card","multi_use":true}}`,
		`{"schema":1,"id":"promo","tenant":"acme","status":"active","currency":"EUR","reward":{"kind":"percent_off","percent_bp":1000}}`,
	} {
		if _, err := cat.CreateCampaign(ctx, catalog.System, "acme", []byte(doc)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cat.ImportCodes(ctx, catalog.System, "acme", "gift", []string{"CARD-1"}, catalog.CodeSpec{Uses: -1, Balance: 100_00, Stores: []protocol.StoreID{"store-9"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := cat.ImportCodes(ctx, catalog.System, "acme", "promo", []string{"ONCE-1", "ONCE-2"}, catalog.CodeSpec{Uses: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := cat.RevokeCode(ctx, catalog.System, "acme", "ONCE-2"); err != nil {
		t.Fatal(err)
	}
	st := snapshot.Store{ID: "store-1", TimeZone: "Europe/Berlin"}
	s := online.New(cat, led)
	ask := func(unknown []int, codes ...string) (decide.AuthorizeResponse, error) {
		req := decide.AuthorizeRequest{TxnID: "t1", Unknown: unknown,
			Order: protocol.Order{ID: "t1", Currency: "EUR", Lines: []protocol.Line{{SKU: "tv", Quantity: 1, UnitPrice: 500_00}}}}
		for _, c := range codes {
			req.Redeemables = append(req.Redeemables, decide.AuthorizeInput{Code: c, Amount: 10_00})
		}
		return s.Authorize(ctx, "acme", "till-1", st, req)
	}
	t.Run("OK", func(t *testing.T) {
		r, err := ask([]int{0, 1}, "card-1", "ONCE-1")
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Codes) != 2 {
			t.Fatalf("codes: %+v", r.Codes)
		}
		if c := r.Codes[0]; c.Index != 0 || c.Key != "CARD1" || c.Campaign != "gift" || !c.GiftCard || c.Balance != 100_00 || c.MaxUses != -1 ||
			len(c.Stores) != 1 || c.Stores[0] != "store-9" || c.Revoked {
			t.Fatalf("card: %+v", c)
		}
		if c := r.Codes[1]; c.Index != 1 || c.Key != "ONCE1" || c.Campaign != "promo" || c.GiftCard || c.MaxUses != 1 {
			t.Fatalf("code: %+v", c)
		}
	})
	t.Run("OnlyNamed", func(t *testing.T) {
		r, err := ask([]int{1}, "CARD-1", "ONCE-1")
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Codes) != 1 || r.Codes[0].Index != 1 {
			t.Fatalf("codes: %+v", r.Codes)
		}
		if r, err := ask(nil, "CARD-1"); err != nil || r.Codes != nil {
			t.Fatalf("none named: %+v %v", r.Codes, err)
		}
	})
	t.Run("RefusedOrUnknown", func(t *testing.T) {
		r, err := ask([]int{0}, "ONCE-2")
		if err != nil || r.Codes != nil || r.Decision.Results[0].Reason != protocol.CodeCodeRevoked {
			t.Fatalf("revoked: %+v %+v %v", r.Codes, r.Decision.Results, err)
		}
		r, err = ask([]int{0}, "NOPE-1")
		if err != nil || r.Codes != nil || r.Decision.Results[0].Reason != protocol.CodeUnknownCode {
			t.Fatalf("unknown: %+v %+v %v", r.Codes, r.Decision.Results, err)
		}
	})
	for name, unknown := range map[string][]int{"ErrNegative": {-1}, "ErrBeyond": {1}, "ErrTwice": {0, 0}, "ErrTooMany": {0, 1}} {
		t.Run(name, func(t *testing.T) {
			_, err := ask(unknown, "ONCE-1")
			if pe := protocol.PublicError(err); pe.Code != protocol.CodeInvalidInput || pe.Field != "unknown" {
				t.Fatalf("%v: %v, want invalid_input on unknown", unknown, err)
			}
		})
	}
}
