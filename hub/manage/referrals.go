package manage

import (
	"context"
	"fmt"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/catalog"
)

// ReferralCode is a customer's referral code (protocol/referrals.go).
type ReferralCode = catalog.ReferralCode

// referralCatalog is the catalog's referral codes (store/catalog).
type referralCatalog interface {
	ReferralCode(ctx context.Context, actor Actor, tenant protocol.TenantID, customer protocol.CustomerID, campaign protocol.CampaignID) (ReferralCode, error)
}

// ReferralCode returns the customer's referral code of a referral
// campaign, making it on the first call: the same customer always gets the
// same code. An empty campaign is the tenant's only active referral
// program. A new code is a catalog change (the tills get it with the
// snapshot). Reason codes: invalid_input, not_found,
// not_a_referral_program.
func (s *Service) ReferralCode(ctx context.Context, actor Actor, tenant protocol.TenantID, customer protocol.CustomerID, campaign protocol.CampaignID) (ReferralCode, error) {
	rc, ok := s.cat.(referralCatalog)
	if !ok {
		return ReferralCode{}, fmt.Errorf("manage: the catalog has no referral codes")
	}
	out, err := rc.ReferralCode(ctx, actor, tenant, customer, campaign)
	if err == nil && out.Created {
		s.changed(ctx, tenant)
	}
	return out, err
}
