package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/codes"
	"github.com/punchcard/punchcard/protocol/decide"
	"github.com/punchcard/punchcard/protocol/rules"
	"github.com/punchcard/punchcard/protocol/wire"
	"github.com/punchcard/punchcard/store/agentdb"
)

// Gift card life at the till (issue 12): the POS sells a gift card (a
// pre-printed number, or one the till mints) and tops one up; each is a
// fact (protocol.KindIssue, KindTopUp) committed with its outbox row like
// a redemption, online or offline: the till takes the customer's money,
// the brand risks nothing. A card sold here is known here at once
// (agentdb.OwnCard, bound to this store until the hub's snapshot lists
// it); a top-up raises the card's balance here at once
// (agentdb.OwnTopUps, until the snapshot counts it). The checks are
// decide.CheckLoad, the hub's.

// CardLookup is the part of a Link that asks the hub a card's balance
// (wire.PathAgentGiftCard), implemented by agent/uplink.
type CardLookup interface {
	GiftCard(ctx context.Context, code string) (wire.GiftCard, error)
}

// SellCard sells a gift card. Reason codes: invalid_input, never_synced,
// snapshot_stale, campaign_unknown, not_a_gift_card, currency_mismatch,
// giftcard_already_sold, idempotency_key_reused.
func (a *Agent) SellCard(ctx context.Context, in wire.GiftCardSale) (wire.GiftCard, error) {
	if err := in.Validate(); err != nil {
		return wire.GiftCard{}, err
	}
	hash := hashOf(in)
	if out, ok, err := a.cardReplay(ctx, in.TxnID, hash); err != nil || ok {
		return out, err
	}
	v, offline, err := a.prepareAs(false)
	if err != nil {
		return wire.GiftCard{}, err
	}
	c, err := decide.CheckLoad(v.rules, in.Campaign, in.Currency, in.Amount)
	if err != nil {
		return wire.GiftCard{}, err
	}
	printed := in.Code
	if printed == "" {
		if printed, err = decide.MintGiftCard(ctx); err != nil {
			return wire.GiftCard{}, err
		}
	}
	key := protocol.CodeID(codes.Normalize(printed))
	if key == "" {
		return wire.GiftCard{}, protocol.FieldError("code", "the gift card number is empty")
	}
	if _, ok := v.code(v.snap.LookupID(key)); ok {
		return wire.GiftCard{}, protocol.Errorf(protocol.CodeGiftCardSold, "this gift card number is already in use")
	}
	if in.Code != "" && !offline {
		// A pre-printed card sold elsewhere since the snapshot: the hub
		// knows it. No answer in time: sold offline (a second sale is
		// flagged giftcard_reissued at the hub).
		if _, err := a.hubCard(ctx, printed); err == nil {
			return wire.GiftCard{}, protocol.Errorf(protocol.CodeGiftCardSold, "this gift card number is already in use")
		} else if protocol.ErrorCode(err) != protocol.CodeUnknownCode {
			offline = true
		}
	}
	rd := protocol.Redemption{ID: protocol.RedemptionID{Agent: a.ID}, Kind: protocol.KindIssue, Tenant: a.Tenant, Store: v.snap.Store.ID,
		TxnID: in.TxnID, Campaign: in.Campaign, Code: key, Currency: c.Currency, Load: in.Amount, Offline: offline, Snapshot: v.snap.Version}
	out := wire.GiftCard{Code: printed, Campaign: in.Campaign, Balance: protocol.Money{Amount: in.Amount, Currency: c.Currency}, Loaded: in.Amount, Offline: offline}
	return a.commitCard(ctx, in.TxnID, hash, rd, out)
}

// TopUpCard loads an amount onto a card this till knows (its snapshot's,
// or one it sold). Reason codes: invalid_input, never_synced,
// snapshot_stale, code_unknown, code_revoked, not_a_gift_card,
// currency_mismatch, idempotency_key_reused.
func (a *Agent) TopUpCard(ctx context.Context, code string, in wire.GiftCardTopUp) (wire.GiftCard, error) {
	if err := in.Validate(); err != nil {
		return wire.GiftCard{}, err
	}
	hash := hashOf(struct {
		Code string
		In   wire.GiftCardTopUp
	}{codes.Normalize(code), in})
	if out, ok, err := a.cardReplay(ctx, in.TxnID, hash); err != nil || ok {
		return out, err
	}
	v, offline, err := a.prepareAs(false)
	if err != nil {
		return wire.GiftCard{}, err
	}
	card, err := a.localCard(ctx, v, code)
	if err != nil {
		return wire.GiftCard{}, err
	}
	c, err := decide.CheckLoad(v.rules, card.Campaign, in.Currency, in.Amount)
	if err != nil {
		return wire.GiftCard{}, err
	}
	key := protocol.CodeID(codes.Normalize(code))
	rd := protocol.Redemption{ID: protocol.RedemptionID{Agent: a.ID}, Kind: protocol.KindTopUp, Tenant: a.Tenant, Store: v.snap.Store.ID,
		TxnID: in.TxnID, Campaign: card.Campaign, Code: key, Currency: c.Currency, Load: in.Amount, Offline: offline, Snapshot: v.snap.Version}
	card.Code = code
	card.Balance.Amount += in.Amount
	card.Loaded += in.Amount
	card.Offline = offline
	return a.commitCard(ctx, in.TxnID, hash, rd, card)
}

// CashOutCard pays a card's whole remainder out in cash where its
// campaign allows it (decide.CheckCashOut). The remainder is this till's
// figure, or the hub's when it answers and is lower; offline the payout
// is an offline risk (the envelope bounds it). Reason codes:
// invalid_input, never_synced, snapshot_stale, code_unknown,
// code_revoked, not_a_gift_card, insufficient_balance,
// cashout_not_allowed, offline_limit_reached, idempotency_key_reused.
func (a *Agent) CashOutCard(ctx context.Context, code string, in wire.GiftCardCashOut) (wire.GiftCard, error) {
	if err := in.Validate(); err != nil {
		return wire.GiftCard{}, err
	}
	key := protocol.CodeID(codes.Normalize(code))
	hash := hashOf(struct {
		Code protocol.CodeID
		In   wire.GiftCardCashOut
	}{key, in})
	if out, ok, err := a.cardReplay(ctx, in.TxnID, hash); err != nil || ok {
		return out, err
	}
	v, offline, err := a.prepareAs(false)
	if err != nil {
		return wire.GiftCard{}, err
	}
	card, err := a.localCard(ctx, v, code)
	if err != nil {
		return wire.GiftCard{}, err
	}
	amount := card.Balance.Amount
	if !offline {
		if h, err := a.hubCard(ctx, code); err == nil {
			amount = min(amount, h.Balance.Amount)
		} else if protocol.ErrorCode(err) != protocol.CodeUnknownCode {
			offline = true
		}
	}
	c, err := decide.CheckCashOut(v.rules, card.Campaign, amount)
	if err != nil {
		return wire.GiftCard{}, err
	}
	src := &tillFacts{a: a, v: v}
	dc, _, err := src.Code(ctx, key)
	if err != nil {
		return wire.GiftCard{}, err
	}
	hf := a.hubFigure(v, key, false)
	fact := agentdb.Fact{Redemption: protocol.Redemption{ID: protocol.RedemptionID{Agent: a.ID}, Kind: protocol.KindCashOut, Tenant: a.Tenant,
		Store: v.snap.Store.ID, TxnID: in.TxnID, Campaign: card.Campaign, Code: key, Currency: c.Currency, Spend: amount, Offline: offline,
		Snapshot: v.snap.Version},
		Code: &agentdb.CodeUse{Spend: amount, Balance: dc.Balance, KnownUses: hf.Used, KnownSpent: hf.Spent, Reflected: hf.Reflected}}
	if offline && !slices.Contains(dc.Stores, v.store.ID) && (dc.Group == "" || dc.Group != v.snap.Store.Group) {
		fact.Risk = amount
	}
	card.Code, card.Offline, card.CashedOut = code, offline, amount
	card.Balance.Amount -= amount
	card.Spent += amount
	req := agentdb.Request{Op: agentdb.OpCard, TxnID: in.TxnID, Hash: hash, Envelope: v.env, Facts: []agentdb.Fact{fact},
		Result: func(rs []protocol.Redemption) ([]byte, error) {
			card.Seq = rs[0].ID.Seq
			return json.Marshal(card)
		}}
	return a.commitReq(ctx, req)
}

// CardBalance answers a card's balance: online the hub's, offline (or
// when the hub does not know a card this till sold and has not synced
// yet, or does not answer in time) this till's figure, marked offline.
// Reason codes: never_synced, code_unknown, code_revoked,
// not_a_gift_card.
func (a *Agent) CardBalance(ctx context.Context, code string) (wire.GiftCard, error) {
	v, offline, err := a.prepareAs(false)
	if err != nil {
		return wire.GiftCard{}, err
	}
	if !offline {
		out, err := a.hubCard(ctx, code)
		if err == nil {
			return out, nil
		}
		switch protocol.ErrorCode(err) {
		case protocol.CodeCodeRevoked, protocol.CodeNotGiftCard:
			return wire.GiftCard{}, err
		}
	}
	out, err := a.localCard(ctx, v, code)
	out.Offline = true
	return out, err
}

// hubCard asks the hub, within OnlineTimeout.
func (a *Agent) hubCard(ctx context.Context, code string) (wire.GiftCard, error) {
	link, on := a.online()
	lk, ok := link.(CardLookup)
	if !on || !ok || a.OnlineTimeout < 0 {
		return wire.GiftCard{}, protocol.NewError(protocol.CodeUnavailable)
	}
	timeout := a.OnlineTimeout
	if timeout == 0 {
		timeout = DefaultOnlineTimeout
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return lk.GiftCard(actx, code)
}

// localCard is what this till knows of a card: the snapshot's balance
// (or its own sale's) plus its own top-ups the snapshot does not count,
// less the spending the hub's figure and its own facts give.
func (a *Agent) localCard(ctx context.Context, v *view, code string) (wire.GiftCard, error) {
	key := protocol.CodeID(codes.Normalize(code))
	src := &tillFacts{a: a, v: v}
	dc, ok, err := src.Code(ctx, key)
	switch {
	case err != nil:
		return wire.GiftCard{}, err
	case !ok:
		return wire.GiftCard{}, protocol.NewError(protocol.CodeUnknownCode)
	case dc.Revoked:
		return wire.GiftCard{}, protocol.NewError(protocol.CodeCodeRevoked)
	case !dc.GiftCard:
		return wire.GiftCard{}, protocol.Errorf(protocol.CodeNotGiftCard, "this code is not a gift card")
	}
	fig, err := a.db.CodeFigure(ctx, key, a.hubFigure(v, key, false))
	if err != nil {
		return wire.GiftCard{}, err
	}
	var cur protocol.Currency
	if c, ok := v.rules.Campaign(dc.Campaign); ok {
		cur = c.Currency
	}
	return wire.GiftCard{Code: code, Campaign: dc.Campaign, Balance: protocol.Money{Amount: dc.Balance - fig.Spent, Currency: cur},
		Loaded: dc.Balance, Spent: fig.Spent}, nil
}

// ownCard is tillFacts.Code for a card this till sold that its snapshot
// does not list yet: bound to this store (nobody else knows it), its
// balance the sale's amount plus its top-ups.
func (f *tillFacts) ownCard(ctx context.Context, key protocol.CodeID) (decide.Code, bool, error) {
	oc, ok, err := f.a.db.OwnCard(ctx, key)
	if err != nil || !ok {
		return decide.Code{}, false, err
	}
	dc := decide.Code{Key: key, Campaign: oc.Campaign, MaxUses: 1, GiftCard: true, Balance: oc.Balance, Stores: []protocol.StoreID{f.v.store.ID}}
	if c, ok := f.v.rules.Campaign(oc.Campaign); ok && c.Reward.Kind == rules.RewardGiftCard && c.Reward.MultiUse {
		dc.MaxUses = -1
	}
	return dc, true, nil
}

// ownTopUps adds this till's top-ups the snapshot does not count to a
// card's balance.
func (f *tillFacts) ownTopUps(ctx context.Context, dc *decide.Code) error {
	up, err := f.a.db.OwnTopUps(ctx, dc.Key, reflectedOf(f.v.snap))
	dc.Balance += up
	return err
}

func (a *Agent) cardReplay(ctx context.Context, txn string, hash []byte) (wire.GiftCard, bool, error) {
	res, h, ok, err := a.db.Lookup(ctx, agentdb.OpCard, txn)
	if err != nil || !ok {
		return wire.GiftCard{}, false, err
	}
	if !bytes.Equal(h, hash) {
		return wire.GiftCard{}, false, protocol.NewError(protocol.CodeIdempotencyReuse)
	}
	var out wire.GiftCard
	if err := json.Unmarshal(res, &out); err != nil {
		return out, false, fmt.Errorf("agent: stored gift card answer: %w", err)
	}
	return out, true, nil
}

func (a *Agent) commitCard(ctx context.Context, txn string, hash []byte, rd protocol.Redemption, out wire.GiftCard) (wire.GiftCard, error) {
	return a.commitReq(ctx, agentdb.Request{Op: agentdb.OpCard, TxnID: txn, Hash: hash, Facts: []agentdb.Fact{{Redemption: rd}},
		Result: func(rs []protocol.Redemption) ([]byte, error) {
			out.Seq = rs[0].ID.Seq
			return json.Marshal(out)
		}})
}

func (a *Agent) commitReq(ctx context.Context, req agentdb.Request) (wire.GiftCard, error) {
	res, _, err := a.db.Commit(ctx, req)
	if err != nil {
		return wire.GiftCard{}, posError(err)
	}
	var got wire.GiftCard
	if err := json.Unmarshal(res, &got); err != nil {
		return got, fmt.Errorf("agent: stored gift card answer: %w", err)
	}
	if b := a.link.Load(); b != nil {
		if k, ok := b.Link.(interface{ Kick() }); ok {
			k.Kick()
		}
	}
	return got, nil
}

// cardRoutes adds the POS API's gift card routes (docs/agent.md).
func (a *Agent) cardRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/giftcards", func(w http.ResponseWriter, r *http.Request) {
		var in wire.GiftCardSale
		if !decode(w, r, &in) {
			return
		}
		out, err := a.SellCard(r.Context(), in)
		a.reply(w, r, out, err)
	})
	mux.HandleFunc("POST /v1/giftcards/{code}/topup", func(w http.ResponseWriter, r *http.Request) {
		var in wire.GiftCardTopUp
		if !decode(w, r, &in) {
			return
		}
		out, err := a.TopUpCard(r.Context(), r.PathValue("code"), in)
		a.reply(w, r, out, err)
	})
	mux.HandleFunc("POST /v1/giftcards/{code}/cashout", func(w http.ResponseWriter, r *http.Request) {
		var in wire.GiftCardCashOut
		if !decode(w, r, &in) {
			return
		}
		out, err := a.CashOutCard(r.Context(), r.PathValue("code"), in)
		a.reply(w, r, out, err)
	})
	mux.HandleFunc("GET /v1/giftcards/{code}", func(w http.ResponseWriter, r *http.Request) {
		out, err := a.CardBalance(r.Context(), r.PathValue("code"))
		a.reply(w, r, out, err)
	})
}
