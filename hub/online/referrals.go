package online

import (
	"context"
	"fmt"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/decide"
)

// referralCatalog is what the referral guard needs of the catalog: who owns
// a referral code (protocol.CodeFacts.Referrer). store/catalog implements it.
type referralCatalog interface {
	CodeFacts(ctx context.Context, tenant protocol.TenantID, code protocol.CodeID) (protocol.CodeFacts, bool, error)
}

// referralLedger is what the referral guard needs of the ledger: the
// referee's purchases and referrals and the referrer's referees since a
// time (Unix microseconds). store/ledger implements it.
type referralLedger interface {
	ReferralFacts(ctx context.Context, tenant protocol.TenantID, referee, referrer protocol.CustomerID, since int64) (protocol.ReferralFacts, error)
}

var _ decide.ReferralSource = (*Facts)(nil)

// Referral implements decide.ReferralSource from the catalog (the code's
// owner) and the ledger (purchase history and referrals).
func (f *Facts) Referral(ctx context.Context, code protocol.CodeID, referee protocol.CustomerID, p protocol.Referral, now int64) (protocol.ReferralFacts, error) {
	rc, ok1 := f.cat.(referralCatalog)
	rl, ok2 := f.led.(referralLedger)
	if !ok1 || !ok2 {
		return protocol.ReferralFacts{}, fmt.Errorf("referrals: the hub's catalog or ledger does not know referrals")
	}
	cf, found, err := rc.CodeFacts(ctx, f.tenant, code)
	if err != nil || !found || cf.Referrer == "" {
		return protocol.ReferralFacts{}, err
	}
	rf, err := rl.ReferralFacts(ctx, f.tenant, referee, cf.Referrer, now-p.Period()*86_400_000_000)
	if err != nil {
		return rf, err
	}
	rf.Referrer = cf.Referrer
	if len(p.SameAttributes) > 0 {
		var attrs [2]map[string]string
		for i, cu := range []protocol.CustomerID{referee, cf.Referrer} {
			c, err := f.cat.Customer(ctx, f.tenant, cu)
			if err != nil && protocol.ErrorCode(err) != protocol.CodeNotFound {
				return rf, err
			}
			attrs[i] = c.Attributes
		}
		rf.Shared = protocol.SharedAttribute(p.SameAttributes, attrs[0], attrs[1])
	}
	return rf, nil
}
