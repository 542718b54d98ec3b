package decide

import (
	"context"

	"github.com/punchcard/punchcard/protocol"
)

// Referral codes (protocol/referrals.go). A code of a referral campaign is
// one referrer's code; the referee presents it on their first purchase.
// Every side refuses it without a customer (referral_needs_customer); a
// side that knows the referral facts (the hub) applies the guard
// protocol.CheckReferral. A till does not know them, so a referral code
// needs the hub (HubReferral) while online; offline it is accepted within
// the envelope and the hub checks it at ingest (a referral_refused
// conflict, and no reward for the referrer).

// ReferralSource is implemented by a Source that knows the referral facts:
// the owner of a referral code, the referee's purchases and referrals, and
// the referrer's referees (in total and in the program's window ending at
// now). The hub's Source implements it; a till's does not.
type ReferralSource interface {
	Referral(ctx context.Context, code protocol.CodeID, referee protocol.CustomerID, p protocol.Referral, now int64) (protocol.ReferralFacts, error)
}

// referral applies the referral guard to a resolved, not refused item of
// a referral campaign, setting it.Referral and, when refused, it.Refused.
func (r *Rules) referral(ctx context.Context, src Source, cu *protocol.Customer, now int64, it *Item) error {
	c, ok := r.camps[it.Campaign]
	if !ok || c.Referral == nil || it.Refused != nil {
		return nil
	}
	it.Referral = true
	if cu == nil || cu.ID == "" {
		it.Refused = protocol.NewError(protocol.CodeReferralCustomer)
		return nil
	}
	rs, ok := src.(ReferralSource)
	if !ok {
		return nil // a till: the hub checks at ingest
	}
	f, err := rs.Referral(ctx, it.Code, cu.ID, *c.Referral, now)
	if err != nil {
		return err
	}
	if e := protocol.CheckReferral(*c.Referral, cu.ID, f); e != nil {
		it.Refused = e
	}
	return nil
}
