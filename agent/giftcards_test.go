package agent_test

import (
	"context"
	"testing"

	"github.com/punchcard/punchcard/agent"
	"github.com/punchcard/punchcard/agent/agenttest"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/rules"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/protocol/wire"
)

func sale(txn, code string, amount int64) wire.GiftCardSale {
	return wire.GiftCardSale{TxnID: txn, Campaign: agenttest.CampGift, Code: code, Amount: amount}
}

// TestTillSellsGiftCard pins the defect "gift cards are only created at
// head office": a till, offline, sells a card (minted, and pre-printed);
// the sale is a fact in the outbox (KindIssue, its Load); the card pays
// at this till at once; a retry sells nothing twice.
func TestTillSellsGiftCard(t *testing.T) {
	e := newEnv(t, agenttest.Small(1, 10))
	r := e.post(t, "/v1/giftcards", sale("s1", "", 25_00))
	if r.Status != 200 {
		t.Fatalf("sell: %d %s", r.Status, r.Raw)
	}
	code, _ := r.Body["code"].(string)
	if code == "" || r.Body["offline"] != true || num(r.Body["balance"].(map[string]any)["amount"]) != 25_00 {
		t.Fatalf("sell: %s", r.Raw)
	}
	if again := e.post(t, "/v1/giftcards", sale("s1", "", 25_00)); again.Body["code"] != code {
		t.Fatalf("a retry sold another card: %s", again.Raw)
	}
	pend, err := e.db.Pending(context.Background(), 0, 10)
	if err != nil || len(pend) != 1 || pend[0].Kind != protocol.KindIssue || pend[0].Load != 25_00 || pend[0].Campaign != agenttest.CampGift {
		t.Fatalf("outbox: %+v %v", pend, err)
	}
	// Usable here at once, offline: 20.00 of its 25.00, then 5.01 is too
	// much.
	b := agent.Basket{Order: agenttest.Order("o1", 100_00), Redeemables: []agent.Input{{Code: code, Amount: 20_00}}}
	if r := e.post(t, "/v1/redeem", redeem("t1", b)); r.Status != 200 {
		t.Fatalf("spend a card sold here: %d %s", r.Status, r.Raw)
	}
	b.Redeemables[0].Amount = 5_01
	if r := e.post(t, "/v1/validate", b); r.code() != string(protocol.CodeInsufficientFunds) {
		t.Fatalf("5.01 of 5.00 left: %s", r.Raw)
	}
	if r := e.get(t, "/v1/giftcards/"+code); num(r.Body["balance"].(map[string]any)["amount"]) != 5_00 || r.Body["offline"] != true {
		t.Fatalf("balance: %d %s", r.Status, r.Raw)
	}
	// A pre-printed card: its number, as printed, becomes the card.
	if r := e.post(t, "/v1/giftcards", sale("s2", "plastic 0001", 10_00)); r.Status != 200 || r.Body["code"] != "plastic 0001" {
		t.Fatalf("pre-printed: %d %s", r.Status, r.Raw)
	}
	if r := e.post(t, "/v1/giftcards", sale("s3", "PLASTIC-0001", 10_00)); r.code() != string(protocol.CodeGiftCardSold) {
		t.Fatalf("sold twice: %s", r.Raw)
	}
}

// TestTillTopUpOffline: an offline top-up raises the card's balance at
// this till at once; once a snapshot counts the top-up (Reflected) and
// lists the hub's balance with it, it counts once.
func TestTillTopUpOffline(t *testing.T) {
	e := newEnv(t, agenttest.Small(1, 10))
	r := e.post(t, "/v1/giftcards/gift-1/topup", wire.GiftCardTopUp{TxnID: "u1", Amount: 30_00})
	if r.Status != 200 || num(r.Body["balance"].(map[string]any)["amount"]) != 80_00 {
		t.Fatalf("top-up: %d %s", r.Status, r.Raw)
	}
	b := agent.Basket{Order: agenttest.Order("o1", 100_00), Redeemables: []agent.Input{{Code: "GIFT1", Amount: 80_00}}}
	if r := e.post(t, "/v1/validate", b); r.Status != 200 {
		t.Fatalf("80.00 of a 50.00 card topped up by 30.00: %d %s", r.Status, r.Raw)
	}
	snap2 := agenttest.Small(2, 10)
	snap2.Reflected = &snapshot.Reflected{Watermark: 1}
	for i := range snap2.Codes {
		if snap2.Codes[i].Code == "GIFT1" {
			snap2.Codes[i].Balance = &protocol.Money{Amount: 80_00, Currency: "EUR"}
		}
	}
	if _, err := e.a.ApplySnapshot(context.Background(), agenttest.Encode(t, snap2), "e2"); err != nil {
		t.Fatal(err)
	}
	b.Redeemables[0].Amount = 80_01
	if r := e.post(t, "/v1/validate", b); r.code() != string(protocol.CodeInsufficientFunds) {
		t.Fatalf("the top-up counted twice after the snapshot: %s", r.Raw)
	}
	if r := e.get(t, "/v1/giftcards/GIFT1"); num(r.Body["balance"].(map[string]any)["amount"]) != 80_00 {
		t.Fatalf("balance: %s", r.Raw)
	}
}

// TestTillGiftCardBadInput: each refusal has its stable reason code, and
// nothing is queued.
func TestTillGiftCardBadInput(t *testing.T) {
	e := newEnv(t, agenttest.Small(1, 10))
	for _, c := range []struct {
		name, path string
		body       any
		code       protocol.Code
	}{
		{"NoTxn", "/v1/giftcards", sale("", "", 5_00), protocol.CodeInvalidInput},
		{"ZeroAmount", "/v1/giftcards", sale("a", "", 0), protocol.CodeInvalidInput},
		{"HugeAmount", "/v1/giftcards", sale("a", "", 1<<51), protocol.CodeInvalidInput},
		{"NotGiftCard", "/v1/giftcards", wire.GiftCardSale{TxnID: "a", Campaign: agenttest.CampPercent, Amount: 5_00}, protocol.CodeNotGiftCard},
		{"UnknownCampaign", "/v1/giftcards", wire.GiftCardSale{TxnID: "a", Campaign: "nope", Amount: 5_00}, protocol.CodeCampaignUnknown},
		{"Currency", "/v1/giftcards", wire.GiftCardSale{TxnID: "a", Campaign: agenttest.CampGift, Amount: 5_00, Currency: "USD"}, protocol.CodeCurrencyMismatch},
		{"KnownNumber", "/v1/giftcards", sale("a", "gift1", 5_00), protocol.CodeGiftCardSold},
		{"TopUpUnknown", "/v1/giftcards/NOPE/topup", wire.GiftCardTopUp{TxnID: "b", Amount: 5_00}, protocol.CodeUnknownCode},
		{"TopUpCoupon", "/v1/giftcards/" + agenttest.CodeSummer + "/topup", wire.GiftCardTopUp{TxnID: "b", Amount: 5_00}, protocol.CodeNotGiftCard},
		{"TopUpZero", "/v1/giftcards/GIFT1/topup", wire.GiftCardTopUp{TxnID: "b"}, protocol.CodeInvalidInput},
	} {
		t.Run(c.name, func(t *testing.T) {
			if r := e.post(t, c.path, c.body); r.code() != string(c.code) || r.Status < 400 || r.Status >= 500 {
				t.Fatalf("%d %s", r.Status, r.Raw)
			}
		})
	}
	if pend, err := e.db.Pending(context.Background(), 0, 10); err != nil || len(pend) != 0 {
		t.Fatalf("queued: %+v %v", pend, err)
	}
}

// restrictedOrder has 30.00 of tobacco, a 25.00 gift card and 20.00 of
// food.
func restrictedOrder() protocol.Order {
	return protocol.Order{ID: "o-r", Currency: "EUR", Lines: []protocol.Line{
		{SKU: "cigs", Category: "tobacco", Quantity: 1, UnitPrice: 30_00},
		{SKU: "gc-25", Category: "giftcards", Quantity: 1, UnitPrice: 25_00},
		{SKU: "bread", Category: "food", Quantity: 2, UnitPrice: 10_00},
	}}
}

// TestTillGiftCardRestrictions: a gift card campaign that excludes
// tobacco and gift cards pays only for the food at the till (the hub's
// answer is pinned by hub/api TestGiftCardRestrictions, same pipeline).
func TestTillGiftCardRestrictions(t *testing.T) {
	snap := agenttest.Small(1, 10)
	for i := range snap.Campaigns {
		if snap.Campaigns[i].ID == agenttest.CampGift {
			snap.Campaigns[i].Reward.PayExclude = &rules.PayExclude{Categories: []string{"tobacco", "giftcards"}}
		}
	}
	e := newEnv(t, snap)
	b := agent.Basket{Order: restrictedOrder(), Redeemables: []agent.Input{{Code: "GIFT1"}}}
	r := e.post(t, "/v1/validate", b)
	if r.Status != 200 || num(r.Body["paid"]) != 20_00 {
		t.Fatalf("paid: %d %s", r.Status, r.Raw)
	}
	b.Order.Lines = b.Order.Lines[:2] // nothing but excluded items
	if r := e.post(t, "/v1/validate", b); r.code() != string(protocol.CodeGiftCardRestricted) {
		t.Fatalf("only excluded items: %s", r.Raw)
	}
}

// TestTillCashOut: with the campaign's cash-out limit at 10.00, a card
// holding 50.00 is refused, one holding 5.00 is paid out and empty (once,
// whatever the retries); without a limit, cash-out is refused.
func TestTillCashOut(t *testing.T) {
	snap := agenttest.Small(1, 10)
	for i := range snap.Campaigns {
		if snap.Campaigns[i].ID == agenttest.CampGift {
			snap.Campaigns[i].Reward.CashOutMax = 10_00
		}
	}
	e := newEnv(t, snap)
	if r := e.post(t, "/v1/giftcards/GIFT1/cashout", wire.GiftCardCashOut{TxnID: "c1"}); r.code() != string(protocol.CodeCashOutRefused) {
		t.Fatalf("50.00 above a 10.00 limit: %s", r.Raw)
	}
	b := agent.Basket{Order: agenttest.Order("o1", 100_00), Redeemables: []agent.Input{{Code: "GIFT1", Amount: 45_00}}}
	if r := e.post(t, "/v1/redeem", redeem("t1", b)); r.Status != 200 {
		t.Fatalf("spend: %d %s", r.Status, r.Raw)
	}
	r := e.post(t, "/v1/giftcards/GIFT1/cashout", wire.GiftCardCashOut{TxnID: "c2"})
	if r.Status != 200 || num(r.Body["cashed_out"]) != 5_00 || num(r.Body["balance"].(map[string]any)["amount"]) != 0 {
		t.Fatalf("cash-out: %d %s", r.Status, r.Raw)
	}
	if again := e.post(t, "/v1/giftcards/GIFT1/cashout", wire.GiftCardCashOut{TxnID: "c2"}); again.Raw != r.Raw {
		t.Fatalf("retry: %s", again.Raw)
	}
	if r := e.post(t, "/v1/giftcards/GIFT1/cashout", wire.GiftCardCashOut{TxnID: "c3"}); r.code() != string(protocol.CodeInsufficientFunds) {
		t.Fatalf("an empty card: %s", r.Raw)
	}
	pend, err := e.db.Pending(context.Background(), 0, 10)
	if err != nil || len(pend) != 2 || pend[1].Kind != protocol.KindCashOut || pend[1].Spend != 5_00 {
		t.Fatalf("outbox: %+v %v", pend, err)
	}

	off := newEnv(t, agenttest.Small(1, 10))
	if r := off.post(t, "/v1/giftcards/GIFT1/cashout", wire.GiftCardCashOut{TxnID: "c1"}); r.code() != string(protocol.CodeCashOutRefused) {
		t.Fatalf("cash-out not enabled: %s", r.Raw)
	}
}
