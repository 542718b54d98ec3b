package online

import (
	"context"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/decide"
	"github.com/punchcard/punchcard/protocol/rules"
	"github.com/punchcard/punchcard/protocol/wire"
)

// Event credits the points a customer's custom event earns (newsletter
// sign-up, review, birthday: the points programs' event rules), once per
// Idem.Key, the event's id. It runs the engine's event earning through
// the one pipeline (decide.EarnEvent), with the customer's period totals
// for capped event rules, and records each earning as an earn through the
// ledger, as a sale's points are. An event no rule earns from is answered
// with no points and records nothing. The answer is a Response: the
// decision's earnings and points, and the earns as recorded.
//
// Reason codes: invalid_input (type, at, attributes, store, customer),
// not_found (customer), idempotency_key_reused, unavailable (ErrBusy).
func (s *Service) Event(ctx context.Context, tenant protocol.TenantID, customer protocol.CustomerID, idem Idem, in wire.CustomerEvent) (Answer, error) {
	if err := protocol.ValidateID("customer", string(customer)); err != nil {
		return Answer{}, protocol.WithField("customer", err)
	}
	now := s.Now().UTC()
	if err := in.Validate(now); err != nil {
		return Answer{}, err
	}
	at := in.At
	if at.IsZero() {
		at = now
	}
	at = at.UTC().Truncate(time.Second)
	where := wire.DefaultEventStore
	if in.Store != nil {
		where = *in.Store
	}
	return s.idempotent(ctx, tenant, idem, func() (plan, error) {
		st, err := s.store(where)
		if err != nil {
			return plan{}, err
		}
		comp, err := s.Compiled(ctx, tenant)
		if err != nil {
			return plan{}, err
		}
		f := &Facts{cat: s.cat, led: s.led, tenant: tenant, comp: comp, holds: s.led != nil, segs: s.Segments, now: s.Now()}
		reds, es, err := decide.EarnEvent(ctx, f, comp.Rules, decide.Event{Tenant: tenant, Where: decide.Where{Store: st, Group: where.Group},
			Customer: protocol.Customer{ID: customer}, Type: in.Type, Now: at})
		if err != nil {
			return plan{}, err
		}
		d := rules.Decision{Results: []rules.Result{}, Earnings: es}
		p := plan{decision: &d}
		for _, r := range reds {
			r.Tenant, r.Store, r.TxnID = tenant, st.ID, idem.Key
			d.PointsEarned += r.Points
			p.reds = append(p.reds, r)
			p.fields = append(p.fields, "")
		}
		return p, nil
	})
}
