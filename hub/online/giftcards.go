package online

import (
	"context"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/catalog"
	"github.com/punchcard/punchcard/protocol/codes"
	"github.com/punchcard/punchcard/protocol/decide"
	"github.com/punchcard/punchcard/protocol/wire"
)

// Gift card life (issue 12): the hub sells and tops up gift cards online
// (its sale route), answers a card's balance, and creates the catalog
// code of a card a till sold (hub/giftcards.go, on ingest). A sale or
// top-up is a fact of the hub (HubSender) in the ledger, like an online
// redemption; the checks are decide.CheckLoad, the till's.

// CardCatalog is what gift card sales need of the catalog besides
// Catalog: adding the sold card's code.
type CardCatalog interface {
	ImportCodes(ctx context.Context, actor catalog.Actor, tenant protocol.TenantID, campaign protocol.CampaignID, printed []string, spec catalog.CodeSpec) (int, error)
}

// CardLedger is what gift card sales need of the ledger: recording the
// hub's fact, and finding the facts of an earlier try.
type CardLedger interface {
	Redeem(ctx context.Context, r protocol.Redemption) (protocol.Redemption, error)
	HubFacts(ctx context.Context, tenant protocol.TenantID, txn string) ([]protocol.Redemption, error)
}

// CardSpec is the catalog code a sold card gets: every use of a
// multi-use campaign's card, one of a single-use one; its balance is the
// sale's amount.
func CardSpec(multiUse bool, amount int64) catalog.CodeSpec {
	if multiUse {
		return catalog.CodeSpec{Uses: -1, Balance: amount}
	}
	return catalog.CodeSpec{Uses: 1, Balance: amount}
}

// SellCard sells a gift card: the presented (pre-printed) code, or a
// newly minted one. A retry of the same txn_id returns the same card.
// Reason codes: invalid_input, campaign_unknown, not_a_gift_card,
// currency_mismatch, giftcard_already_sold.
func (s *Service) SellCard(ctx context.Context, tenant protocol.TenantID, cat CardCatalog, led CardLedger, in wire.GiftCardSale) (wire.GiftCard, error) {
	if err := in.Validate(); err != nil {
		return wire.GiftCard{}, err
	}
	comp, err := s.Compiled(ctx, tenant)
	if err != nil {
		return wire.GiftCard{}, err
	}
	c, err := decide.CheckLoad(comp.Rules, in.Campaign, in.Currency, in.Amount)
	if err != nil {
		return wire.GiftCard{}, err
	}
	prior, err := led.HubFacts(ctx, tenant, in.TxnID)
	if err != nil {
		return wire.GiftCard{}, err
	}
	for _, p := range prior {
		if p.Kind == protocol.KindIssue && p.Campaign == in.Campaign && (in.Code == "" || protocol.CodeID(codes.Normalize(in.Code)) == p.Code) {
			out, err := s.CardBalance(ctx, tenant, string(p.Code))
			if err != nil {
				return out, err
			}
			cd, err := s.cat.Code(ctx, tenant, string(p.Code))
			out.Code = cd.Printed // the seller prints it: unmasked
			return out, err
		}
	}
	printed := in.Code
	if printed == "" {
		if printed, err = decide.MintGiftCard(ctx); err != nil {
			return wire.GiftCard{}, err
		}
	}
	if _, err := s.cat.Code(ctx, tenant, printed); err == nil {
		return wire.GiftCard{}, protocol.Errorf(protocol.CodeGiftCardSold, "gift card %s is already sold", catalog.MaskCode(printed))
	} else if protocol.ErrorCode(err) != protocol.CodeNotFound {
		return wire.GiftCard{}, err
	}
	if _, err := cat.ImportCodes(ctx, catalog.System, tenant, in.Campaign, []string{printed}, CardSpec(c.Reward.MultiUse, in.Amount)); err != nil {
		return wire.GiftCard{}, err
	}
	r := protocol.Redemption{Kind: protocol.KindIssue, Tenant: tenant, Store: in.Store, TxnID: in.TxnID, Campaign: in.Campaign,
		Code: protocol.CodeID(codes.Normalize(printed)), Currency: c.Currency, Load: in.Amount, Snapshot: comp.Version}
	if _, err := led.Redeem(ctx, r); err != nil {
		return wire.GiftCard{}, err
	}
	s.codesChanged(ctx, tenant, r)
	out, err := s.CardBalance(ctx, tenant, printed)
	out.Code = printed
	return out, err
}

// TopUpCard loads an amount onto a sold card. A retry of the same txn_id
// loads once. Reason codes: invalid_input, code_unknown, not_a_gift_card,
// currency_mismatch, code_revoked.
func (s *Service) TopUpCard(ctx context.Context, tenant protocol.TenantID, led CardLedger, code string, in wire.GiftCardTopUp) (wire.GiftCard, error) {
	if err := in.Validate(); err != nil {
		return wire.GiftCard{}, err
	}
	cd, err := s.cardCode(ctx, tenant, code)
	if err != nil {
		return wire.GiftCard{}, err
	}
	comp, err := s.Compiled(ctx, tenant)
	if err != nil {
		return wire.GiftCard{}, err
	}
	c, err := decide.CheckLoad(comp.Rules, cd.Campaign, in.Currency, in.Amount)
	if err != nil {
		return wire.GiftCard{}, err
	}
	r := protocol.Redemption{Kind: protocol.KindTopUp, Tenant: tenant, Store: in.Store, TxnID: in.TxnID, Campaign: cd.Campaign,
		Code: cd.Key, Currency: c.Currency, Load: in.Amount, Snapshot: comp.Version}
	if _, err := led.Redeem(ctx, r); err != nil {
		return wire.GiftCard{}, err
	}
	s.codesChanged(ctx, tenant, r)
	return s.CardBalance(ctx, tenant, code)
}

func (s *Service) cardCode(ctx context.Context, tenant protocol.TenantID, code string) (catalog.Code, error) {
	cd, err := s.cat.Code(ctx, tenant, code)
	if protocol.ErrorCode(err) == protocol.CodeNotFound {
		return cd, protocol.NewError(protocol.CodeUnknownCode)
	}
	if err != nil {
		return cd, err
	}
	if cd.Balance == 0 {
		return cd, protocol.Errorf(protocol.CodeNotGiftCard, "code %s is not a gift card", catalog.MaskCode(code))
	}
	if !cd.RevokedAt.IsZero() {
		return cd, protocol.NewError(protocol.CodeCodeRevoked)
	}
	return cd, nil
}

// CardBalance is a card's balance as the hub's ledger knows it: its
// catalog balance plus top-ups, less what was spent (net of rollbacks).
// Reason codes: code_unknown, not_a_gift_card, code_revoked.
func (s *Service) CardBalance(ctx context.Context, tenant protocol.TenantID, code string) (wire.GiftCard, error) {
	cd, err := s.cardCode(ctx, tenant, code)
	if err != nil {
		return wire.GiftCard{}, err
	}
	spent, err := s.led.GiftCardSpent(ctx, tenant, cd.Key)
	if err != nil {
		return wire.GiftCard{}, err
	}
	loaded, err := s.led.GiftCardLoaded(ctx, tenant, cd.Key)
	if err != nil {
		return wire.GiftCard{}, err
	}
	comp, err := s.Compiled(ctx, tenant)
	if err != nil {
		return wire.GiftCard{}, err
	}
	var cur protocol.Currency
	if cp, ok := comp.Rules.Campaign(cd.Campaign); ok {
		cur = cp.Currency
	}
	return wire.GiftCard{Code: catalog.MaskCode(cd.Printed), Campaign: cd.Campaign,
		Balance: protocol.Money{Amount: cd.Balance + loaded - spent, Currency: cur}, Loaded: cd.Balance + loaded, Spent: spent}, nil
}

// CashOutCard pays a card's whole remainder out in cash where its
// campaign allows it (decide.CheckCashOut), emptying it. A retry of the
// same txn_id pays nothing twice. Reason codes: invalid_input,
// code_unknown, code_revoked, not_a_gift_card, insufficient_balance,
// cashout_not_allowed.
func (s *Service) CashOutCard(ctx context.Context, tenant protocol.TenantID, led CardLedger, code string, in wire.GiftCardCashOut) (wire.GiftCard, error) {
	if err := in.Validate(); err != nil {
		return wire.GiftCard{}, err
	}
	bal, err := s.CardBalance(ctx, tenant, code)
	if err != nil {
		return wire.GiftCard{}, err
	}
	key := protocol.CodeID(codes.Normalize(code))
	prior, err := led.HubFacts(ctx, tenant, in.TxnID)
	if err != nil {
		return wire.GiftCard{}, err
	}
	for _, p := range prior {
		if p.Kind == protocol.KindCashOut && p.Code == key {
			bal.CashedOut = p.Spend
			return bal, nil
		}
	}
	comp, err := s.Compiled(ctx, tenant)
	if err != nil {
		return wire.GiftCard{}, err
	}
	c, err := decide.CheckCashOut(comp.Rules, bal.Campaign, bal.Balance.Amount)
	if err != nil {
		return wire.GiftCard{}, err
	}
	r := protocol.Redemption{Kind: protocol.KindCashOut, Tenant: tenant, Store: in.Store, TxnID: in.TxnID, Campaign: bal.Campaign,
		Code: key, Currency: c.Currency, Spend: bal.Balance.Amount, Snapshot: comp.Version}
	if _, err := led.Redeem(ctx, r); err != nil {
		return wire.GiftCard{}, err
	}
	s.codesChanged(ctx, tenant, r)
	out, err := s.CardBalance(ctx, tenant, code)
	out.CashedOut = r.Spend
	return out, err
}
