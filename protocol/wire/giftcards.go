package wire

import (
	"github.com/punchcard/punchcard/protocol"
)

// GiftCardSale is the body of a gift card sale, online (the hub's
// POST /v1/tenants/{t}/giftcards) and at the till (POST /v1/giftcards).
// Code is a pre-printed card's number; empty, a number is minted.
type GiftCardSale struct {
	TxnID    string              `json:"txn_id"`
	Campaign protocol.CampaignID `json:"campaign"`
	Code     string              `json:"code,omitempty"`
	Amount   int64               `json:"amount"`             // minor units loaded
	Currency protocol.Currency   `json:"currency,omitempty"` // default: the campaign's
	Store    protocol.StoreID    `json:"store,omitempty"`    // online: the selling store, if any
}

// Validate checks the sale's shape (invalid_input with the field); the
// campaign and amount rules are decide.CheckLoad's.
func (g GiftCardSale) Validate() error {
	if err := checkTxn(g.TxnID); err != nil {
		return err
	}
	if err := protocol.ValidateID("campaign", string(g.Campaign)); err != nil {
		return err
	}
	if len(g.Code) > protocol.MaxCodeLen {
		return protocol.FieldError("code", "code is longer than %d characters", protocol.MaxCodeLen)
	}
	if g.Amount < 1 || g.Amount > protocol.MaxAmount {
		return protocol.FieldError("amount", "a gift card load must be between 1 and 2^50 minor units")
	}
	if g.Store != "" {
		if err := protocol.ValidateID("store", string(g.Store)); err != nil {
			return err
		}
	}
	return nil
}

// GiftCardTopUp is the body of a top-up of the card named in the path.
type GiftCardTopUp struct {
	TxnID    string            `json:"txn_id"`
	Amount   int64             `json:"amount"`
	Currency protocol.Currency `json:"currency,omitempty"`
	Store    protocol.StoreID  `json:"store,omitempty"`
}

// Validate checks the top-up's shape (invalid_input with the field).
func (g GiftCardTopUp) Validate() error {
	if err := checkTxn(g.TxnID); err != nil {
		return err
	}
	if g.Amount < 1 || g.Amount > protocol.MaxAmount {
		return protocol.FieldError("amount", "a gift card load must be between 1 and 2^50 minor units")
	}
	if g.Store != "" {
		if err := protocol.ValidateID("store", string(g.Store)); err != nil {
			return err
		}
	}
	return nil
}

func checkTxn(id string) error {
	if id == "" || len(id) > protocol.MaxTxnIDLen {
		return protocol.FieldError("txn_id", "txn_id is required, at most %d characters", protocol.MaxTxnIDLen)
	}
	return nil
}

// GiftCard is a card's balance as its answerer knows it. Code is masked
// where the caller sees numbers masked; Offline is set when a till
// answered from its own figure without the hub.
type GiftCard struct {
	Code     string              `json:"code"`
	Campaign protocol.CampaignID `json:"campaign"`
	Balance  protocol.Money      `json:"balance"`
	Loaded   int64               `json:"loaded"` // the value put on the card: its sale and top-ups
	Spent    int64               `json:"spent"`
	Offline  bool                `json:"offline,omitempty"`
	// CashedOut is what a cash-out paid out in cash (the card is then
	// empty).
	CashedOut int64 `json:"cashed_out,omitempty"`
	// Seq is the till's fact of a sale, top-up or cash-out (its outbox
	// sequence).
	Seq uint64 `json:"seq,omitempty"`
}

// GiftCardCashOut is the body of a cash-out of the card named in the
// path: its whole remainder, where its campaign allows
// (rules.Reward.CashOutMax).
type GiftCardCashOut struct {
	TxnID string           `json:"txn_id"`
	Store protocol.StoreID `json:"store,omitempty"`
}

// Validate checks the cash-out's shape (invalid_input with the field).
func (g GiftCardCashOut) Validate() error {
	if err := checkTxn(g.TxnID); err != nil {
		return err
	}
	if g.Store != "" {
		return protocol.ValidateID("store", string(g.Store))
	}
	return nil
}

// PathAgentGiftCard is the hub route a till online asks a card's balance
// at (GET, the card's number escaped after it).
const PathAgentGiftCard = "/v1/agent/giftcards"
