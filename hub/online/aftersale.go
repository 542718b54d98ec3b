package online

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/decide"
	"github.com/punchcard/punchcard/protocol/rules"
	"github.com/punchcard/punchcard/protocol/wire"
)

// SaleLedger is what AfterSale reads of the ledger: a sale's journal
// entries by its agent and transaction id (store/ledger SaleRedemptions).
type SaleLedger interface {
	SaleRedemptions(ctx context.Context, tenant protocol.TenantID, agent protocol.AgentID, txn string) ([]protocol.Redemption, error)
}

// AfterSaleTxn is the transaction id a reward applied after a sale is
// recorded under: it names the sale, so that the same reward applied to
// the same sale twice (under two Idempotency-Keys) is recorded once (the
// ledger's transaction-id check answers the first).
func AfterSaleTxn(ref wire.SaleRef) string {
	return "after-sale:" + string(ref.Agent) + "/" + ref.TxnID
}

// AfterSale applies a reward the customer should have had on a past sale
// (support desk), once per Idem.Key and once per sale and reward. The sale
// is read as the ledger recorded it (its entries by agent and transaction
// id: customer, order id, store, total, currency, time); the decision is
// run again through the one pipeline (decide.Decide) on that order, at the
// sale's time, with the code presented or the automatic campaign named,
// and without earning (the sale earned its points then). The reward is
// recorded as a new online redemption on the sale's order (its order id;
// transaction id AfterSaleTxn), checked by the ledger against code uses,
// per-customer limits and budgets as now, like any online redeem.
//
// Reason codes: invalid_input (sale, code, campaign, order, store),
// not_found (the sale), the refusals of Redeem (code_unknown,
// not_eligible, customer_limit_reached, budget_exhausted, …), no_effect
// (the campaign gives the order nothing), idempotency_key_reused,
// unavailable.
func (s *Service) AfterSale(ctx context.Context, tenant protocol.TenantID, customer protocol.CustomerID, idem Idem, in wire.RewardAfterSale) (Answer, error) {
	sl, ok := s.led.(SaleLedger)
	if !ok {
		return Answer{}, protocol.Errorf(protocol.CodeUnavailable, "the ledger does not look sales up on this hub")
	}
	if err := protocol.ValidateID("customer", string(customer)); err != nil {
		return Answer{}, protocol.WithField("customer", err)
	}
	if err := in.Validate(); err != nil {
		return Answer{}, err
	}
	return s.idempotent(ctx, tenant, idem, func() (plan, error) {
		if _, err := s.cat.Customer(ctx, tenant, customer); err != nil {
			return plan{}, err
		}
		sale, err := sl.SaleRedemptions(ctx, tenant, in.Sale.Agent, in.Sale.TxnID)
		if err != nil {
			return plan{}, err
		}
		var rec protocol.Redemption // the sale as recorded
		applied := map[protocol.CampaignID]bool{}
		for _, r := range sale {
			if r.Kind == protocol.KindRollback {
				continue
			}
			applied[r.Campaign] = true
			if r.Customer != "" && r.Customer != customer {
				return plan{}, protocol.FieldError("sale", "the sale was made for another customer")
			}
			if rec.ID.Agent == "" || r.OrderTot > rec.OrderTot {
				cu := rec.Customer
				rec = r
				if rec.Customer == "" {
					rec.Customer = cu
				}
			}
		}
		if rec.ID.Agent == "" {
			return plan{}, protocol.WithField("sale", protocol.Errorf(protocol.CodeNotFound, "no sale %s/%s is recorded", in.Sale.Agent, in.Sale.TxnID))
		}
		order := protocol.Order{ID: rec.OrderID, Currency: rec.Currency,
			Lines: []protocol.Line{{SKU: "sale", Quantity: 1, UnitPrice: rec.OrderTot}}}
		if in.Order != nil {
			order = *in.Order
			if order.ID == "" {
				order.ID = rec.OrderID
			}
			if order.ID != rec.OrderID || (rec.Currency != "" && order.Currency != rec.Currency) || (rec.OrderTot > 0 && order.Subtotal() != rec.OrderTot) {
				return plan{}, protocol.FieldError("order", "the order is not the sale as recorded (order %q, %d %s before discounts)", rec.OrderID, rec.OrderTot, rec.Currency)
			}
		}
		if order.Currency == "" || len(order.Lines) == 0 {
			return plan{}, protocol.FieldError("order", "the sale's total is not recorded: give the order as on the receipt")
		}
		where := Store{ID: rec.Store, TimeZone: "UTC"}
		if in.Store != nil {
			where = *in.Store
		}
		if where.ID == "" {
			where.ID = "online"
		}
		st, err := s.store(where)
		if err != nil {
			return plan{}, err
		}
		comp, err := s.Compiled(ctx, tenant)
		if err != nil {
			return plan{}, err
		}
		// The sale as it was: the automatic campaigns it did not get stay
		// out of the decision (but the one named), so that a code's
		// reward is what it would have been then.
		var rcs []rules.Campaign
		for id, cp := range comp.Camps {
			if cp.Rules.Trigger != rules.TriggerAuto || applied[id] || id == in.Campaign {
				rcs = append(rcs, cp.Rules)
			}
		}
		slices.SortFunc(rcs, func(a, b rules.Campaign) int { return strings.Compare(string(a.ID), string(b.ID)) })
		rs, err := decide.Compile(rcs)
		if err != nil {
			return plan{}, err
		}
		at := s.Now().UTC()
		if rec.HLC != 0 {
			at = time.UnixMilli(int64(rec.HLC >> 16)).UTC()
		}
		req := decide.Request{Tenant: tenant, Where: decide.Where{Store: st, Group: where.Group}, Order: order,
			Customer: &protocol.Customer{ID: customer}, Now: at.Truncate(time.Second), NoEarn: true}
		if in.Code != "" {
			req.Presented = []decide.Presented{{Code: in.Code}}
		}
		f := &Facts{cat: s.cat, led: s.led, tenant: tenant, comp: comp, holds: true, now: s.Now()}
		out, err := decide.Decide(ctx, f, rs, req)
		if err != nil {
			return plan{}, err
		}
		if e := out.Refusal(); e != nil {
			return plan{}, protocol.WithField("code", e)
		}
		p := plan{decision: &out.Decision}
		for _, e := range out.Effects() {
			r := e.Redemption
			if r.Kind != protocol.KindRedeem || (in.Code != "" && e.Index != 0) || (in.Campaign != "" && (e.Index >= 0 || r.Campaign != in.Campaign)) {
				continue
			}
			r.Tenant, r.Store, r.TxnID, r.Customer, r.OrderID = tenant, where.ID, AfterSaleTxn(in.Sale), customer, order.ID
			r.Currency, r.OrderTot = out.Decision.Currency, out.Decision.Subtotal
			p.reds = append(p.reds, r)
			p.fields = append(p.fields, "")
		}
		if len(p.reds) == 0 {
			field := "code"
			if in.Campaign != "" {
				field = "campaign"
			}
			return plan{}, protocol.WithField(field, protocol.Errorf(protocol.CodeNoEffect, "it gives this sale nothing"))
		}
		return p, nil
	})
}
