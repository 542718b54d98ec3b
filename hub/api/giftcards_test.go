package api_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/wire"
	"github.com/punchcard/punchcard/store/catalog"
)

// giftEnv is a hub with a multi-use gift card campaign "gift" and a
// percent-off campaign "summer".
func giftEnv(tb testing.TB) *env {
	e := newEnv(tb)
	mk := e.keys[catalog.RoleMarketer]
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, campaignDoc("gift", "active", `{"kind":"gift_card","multi_use":true}`, "")), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, campaignDoc("summer", "active", percent10, "")), 201, nil)
	return e
}

// TestGiftCardSoldOnline: the hub sells a card (minted or pre-printed),
// tops it up, and the balance route, the redeem route and the ledger's
// Verify agree; a retry of a sale sells no second card.
func TestGiftCardSoldOnline(t *testing.T) {
	e := giftEnv(t)
	sup, ro := e.keys[catalog.RoleSupport], e.keys[catalog.RoleReadOnly]
	var card wire.GiftCard
	e.wantJSON(e.do("POST", "/v1/tenants/acme/giftcards", sup, map[string]any{"txn_id": "s1", "campaign": "gift", "amount": 25_00}), 201, &card)
	if card.Code == "" || card.Balance.Amount != 25_00 || card.Balance.Currency != "EUR" {
		t.Fatalf("%+v", card)
	}
	var again wire.GiftCard
	e.wantJSON(e.do("POST", "/v1/tenants/acme/giftcards", sup, map[string]any{"txn_id": "s1", "campaign": "gift", "amount": 25_00}), 201, &again)
	if again.Code != card.Code {
		t.Fatalf("retry sold another card: %s then %s", card.Code, again.Code)
	}
	var up wire.GiftCard
	e.wantJSON(e.do("POST", "/v1/tenants/acme/giftcards/"+card.Code+"/topup", sup, map[string]any{"txn_id": "t1", "amount": 10_00}), 200, &up)
	if up.Balance.Amount != 35_00 {
		t.Fatalf("after top-up: %+v", up)
	}
	e.wantJSON(e.do("POST", "/v1/tenants/acme/giftcards/"+card.Code+"/topup", sup, map[string]any{"txn_id": "t1", "amount": 10_00}), 200, &up)
	if up.Balance.Amount != 35_00 {
		t.Fatalf("a repeated top-up loaded twice: %+v", up)
	}
	// Spend 30.00 of it online: more than the sale, within the top-up.
	var out onlineOut
	e.wantJSON(e.do("POST", "/v1/tenants/acme/redeem", sup, map[string]any{"store": web, "order": order(30_00),
		"redeemables": []any{map[string]any{"code": card.Code}}}, "Idempotency-Key", "r1"), 200, &out)
	if out.Decision.Paid != 30_00 {
		t.Fatalf("paid %d: %+v", out.Decision.Paid, out.Decision)
	}
	var bal wire.GiftCard
	e.wantJSON(e.do("GET", "/v1/tenants/acme/giftcards/"+card.Code, ro, nil), 200, &bal)
	if bal.Balance.Amount != 5_00 || bal.Loaded != 35_00 || bal.Spent != 30_00 {
		t.Fatalf("balance %+v", bal)
	}
	// Pre-printed: the presented number becomes the card.
	e.wantJSON(e.do("POST", "/v1/tenants/acme/giftcards", sup, map[string]any{"txn_id": "s2", "campaign": "gift", "code": "plastic-0001", "amount": 5_00}), 201, &card)
	if card.Code != "plastic-0001" || card.Balance.Amount != 5_00 {
		t.Fatalf("%+v", card)
	}
	rep, err := e.led.Verify(context.Background())
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	if l, err := e.led.GiftCardLiability(context.Background(), "acme", "EUR"); err != nil || l != 25_00+10_00+5_00-30_00 {
		t.Fatalf("liability %d %v", l, err)
	}
}

// TestGiftCardBadInput: each refusal has its stable reason code.
func TestGiftCardBadInput(t *testing.T) {
	e := giftEnv(t)
	sup := e.keys[catalog.RoleSupport]
	sell := func(body map[string]any) resp { return e.do("POST", "/v1/tenants/acme/giftcards", sup, body) }
	e.wantErr(sell(map[string]any{"campaign": "gift", "amount": 5_00}), 400, protocol.CodeInvalidInput, "txn_id")
	e.wantErr(sell(map[string]any{"txn_id": "a", "campaign": "gift", "amount": 0}), 400, protocol.CodeInvalidInput, "amount")
	e.wantErr(sell(map[string]any{"txn_id": "a", "campaign": "gift", "amount": -5}), 400, protocol.CodeInvalidInput, "amount")
	e.wantErr(sell(map[string]any{"txn_id": "a", "campaign": "summer", "amount": 5_00}), 422, protocol.CodeNotGiftCard, "")
	e.wantErr(sell(map[string]any{"txn_id": "a", "campaign": "nope", "amount": 5_00}), 422, protocol.CodeCampaignUnknown, "")
	e.wantErr(sell(map[string]any{"txn_id": "a", "campaign": "gift", "amount": 5_00, "currency": "USD"}), 422, protocol.CodeCurrencyMismatch, "")
	e.wantJSON(sell(map[string]any{"txn_id": "b", "campaign": "gift", "code": "CARD-9", "amount": 5_00}), 201, nil)
	e.wantErr(sell(map[string]any{"txn_id": "c", "campaign": "gift", "code": "card 9", "amount": 5_00}), 409, protocol.CodeGiftCardSold, "")
	e.wantErr(e.do("POST", "/v1/tenants/acme/giftcards/NOPE/topup", sup, map[string]any{"txn_id": "d", "amount": 5_00}), 422, protocol.CodeUnknownCode, "")
	e.wantErr(e.do("GET", "/v1/tenants/acme/giftcards/NOPE", sup, nil), 422, protocol.CodeUnknownCode, "")
	e.wantErr(e.do("POST", "/v1/tenants/acme/giftcards", e.keys[catalog.RoleReadOnly], map[string]any{"txn_id": "e", "campaign": "gift", "amount": 5_00}), 403, protocol.CodeForbidden, "")
}

// TestGiftCardRestrictions: the hub's answer for the basket of the
// till's TestTillGiftCardRestrictions (agent/giftcards_test.go): the
// card pays for the food only, and nothing when only excluded items are
// left; a campaign with an empty exclusion is refused.
func TestGiftCardRestrictions(t *testing.T) {
	e := newEnv(t)
	mk, sup := e.keys[catalog.RoleMarketer], e.keys[catalog.RoleSupport]
	e.wantErr(e.do("POST", "/v1/tenants/acme/campaigns", mk, campaignDoc("bad", "active", `{"kind":"gift_card","pay_exclude":{}}`, "")), 400, protocol.CodeInvalidInput, "reward.pay_exclude")
	e.wantErr(e.do("POST", "/v1/tenants/acme/campaigns", mk, campaignDoc("bad", "active", `{"kind":"percent_off","percent_bp":1000,"pay_exclude":{"skus":["x"]}}`, "")), 400, protocol.CodeInvalidInput, "reward.pay_exclude")
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, campaignDoc("gift", "active", `{"kind":"gift_card","multi_use":true,"pay_exclude":{"categories":["tobacco","giftcards"]}}`, "")), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns/gift/codes/import", mk, map[string]any{"codes": []string{"GIFT-1"}, "balance": 50_00, "uses": -1}), 201, nil)
	lines := []any{
		map[string]any{"sku": "cigs", "category": "tobacco", "quantity": 1, "unit_price": 30_00},
		map[string]any{"sku": "gc-25", "category": "giftcards", "quantity": 1, "unit_price": 25_00},
		map[string]any{"sku": "bread", "category": "food", "quantity": 2, "unit_price": 10_00},
	}
	body := func(lines []any) map[string]any {
		return map[string]any{"store": web, "order": map[string]any{"id": "o-r", "currency": "EUR", "lines": lines},
			"redeemables": []any{map[string]any{"code": "GIFT-1"}}}
	}
	var out onlineOut
	e.wantJSON(e.do("POST", "/v1/tenants/acme/validate", sup, body(lines)), 200, &out)
	if out.Decision.Paid != 20_00 {
		t.Fatalf("paid %d: %+v", out.Decision.Paid, out.Decision)
	}
	e.wantJSON(e.do("POST", "/v1/tenants/acme/validate", sup, body(lines[:2])), 200, &out)
	if len(out.Decision.Results) != 1 || out.Decision.Results[0].Reason != protocol.CodeGiftCardRestricted {
		t.Fatalf("%+v", out.Decision)
	}
}

// TestGiftCardCashOut: online, a card of a campaign that pays out up to
// 10.00 is cashed out when 8.00 are left (once), refused above; a
// campaign without a limit refuses; the ledger verifies.
func TestGiftCardCashOut(t *testing.T) {
	e := newEnv(t)
	mk, sup := e.keys[catalog.RoleMarketer], e.keys[catalog.RoleSupport]
	e.wantErr(e.do("POST", "/v1/tenants/acme/campaigns", mk, campaignDoc("bad", "active", `{"kind":"gift_card","cash_out_max":-1}`, "")), 400, protocol.CodeInvalidInput, "reward.cash_out_max")
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, campaignDoc("gift", "active", `{"kind":"gift_card","multi_use":true,"cash_out_max":1000}`, "")), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, campaignDoc("nocash", "active", `{"kind":"gift_card","multi_use":true}`, "")), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns/gift/codes/import", mk, map[string]any{"codes": []string{"GIFT-1"}, "balance": 20_00, "uses": -1}), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns/nocash/codes/import", mk, map[string]any{"codes": []string{"NOCASH-1"}, "balance": 5_00, "uses": -1}), 201, nil)
	cashout := func(code, txn string) resp {
		return e.do("POST", "/v1/tenants/acme/giftcards/"+code+"/cashout", sup, map[string]any{"txn_id": txn})
	}
	e.wantErr(cashout("GIFT-1", "c1"), 422, protocol.CodeCashOutRefused, "")
	e.wantErr(cashout("NOCASH-1", "c1"), 422, protocol.CodeCashOutRefused, "")
	e.wantJSON(e.do("POST", "/v1/tenants/acme/redeem", sup, map[string]any{"store": web, "order": order(12_00),
		"redeemables": []any{map[string]any{"code": "GIFT-1"}}}, "Idempotency-Key", "r1"), 200, nil)
	var out wire.GiftCard
	e.wantJSON(cashout("GIFT-1", "c2"), 200, &out)
	if out.CashedOut != 8_00 || out.Balance.Amount != 0 {
		t.Fatalf("%+v", out)
	}
	e.wantJSON(cashout("GIFT-1", "c2"), 200, &out)
	if out.CashedOut != 8_00 || out.Balance.Amount != 0 {
		t.Fatalf("retry: %+v", out)
	}
	e.wantErr(cashout("GIFT-1", "c3"), 422, protocol.CodeInsufficientFunds, "")
	if rep, err := e.led.Verify(context.Background()); err != nil || !rep.OK() {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}

// BenchmarkGiftCardValidate is one online decision through the whole
// stack for a gift card (which now also reads the card's top-ups), a
// topped-up card and a card with product restrictions, against a coupon
// in the same run (the baseline).
func BenchmarkGiftCardValidate(b *testing.B) {
	e := giftEnv(b)
	mk, sup := e.keys[catalog.RoleMarketer], e.keys[catalog.RoleSupport]
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns/summer/codes/import", mk, map[string]any{"codes": []string{"SUMMER10"}, "uses": -1}), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, campaignDoc("rgift", "active", `{"kind":"gift_card","multi_use":true,"pay_exclude":{"categories":["tobacco"]}}`, "")), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/giftcards", sup, map[string]any{"txn_id": "s1", "campaign": "gift", "code": "CARD-1", "amount": 50_00}), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/giftcards", sup, map[string]any{"txn_id": "s2", "campaign": "gift", "code": "CARD-2", "amount": 50_00}), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/giftcards/CARD-2/topup", sup, map[string]any{"txn_id": "t2", "amount": 10_00}), 200, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/giftcards", sup, map[string]any{"txn_id": "s3", "campaign": "rgift", "code": "CARD-3", "amount": 50_00}), 201, nil)
	for _, c := range []struct{ name, code string }{{"Coupon", "SUMMER10"}, {"GiftCard", "CARD-1"}, {"ToppedUp", "CARD-2"}, {"Restricted", "CARD-3"}} {
		body, _ := json.Marshal(map[string]any{"store": web, "order": order(100_00), "redeemables": []any{map[string]any{"code": c.code}}})
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				e.clk.Add(time.Second)
				if r := e.do("POST", "/v1/tenants/acme/validate", sup, body); r.status != 200 {
					b.Fatalf("%d %s", r.status, r.body)
				}
			}
		})
	}
}
