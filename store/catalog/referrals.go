package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/punchcard/punchcard/protocol"
	pcatalog "github.com/punchcard/punchcard/protocol/catalog"
	"github.com/punchcard/punchcard/protocol/codes"
	"github.com/punchcard/punchcard/protocol/rules"
)

// Referral codes (catalog_006_referrals.sql, protocol/referrals.go).

// ReferralCodePrefix starts every referral code, so a cashier and a support
// agent can tell one from a voucher.
const ReferralCodePrefix = "REF-"

// ReferralCode is a customer's referral code (pcatalog.ReferralCode).
type ReferralCode = pcatalog.ReferralCode

const qReferralCode = `SELECT r.code, c.printed, r.created_at FROM catalog_referral_codes r
	JOIN catalog_codes c ON c.tenant = r.tenant AND c.code = r.code
	WHERE r.tenant = ? AND r.customer = ? AND r.campaign = ?`

// ReferralCode returns the customer's referral code of the campaign, making
// it on the first call (idempotent: the same customer always gets the same
// code). An empty campaign means the tenant's only active referral
// campaign. The code is a plain code of the campaign with unlimited uses,
// bound to no store, so it reaches the tills with the next snapshot.
// Reason codes: invalid_input, not_found (campaign), not_a_referral_program.
func (c *Catalog) ReferralCode(ctx context.Context, actor Actor, tenant protocol.TenantID, customer protocol.CustomerID, campaign protocol.CampaignID) (ReferralCode, error) {
	if err := protocol.ValidateID("customer", string(customer)); err != nil {
		return ReferralCode{}, err
	}
	if campaign == "" {
		var err error
		if campaign, err = c.onlyReferralCampaign(ctx, tenant); err != nil {
			return ReferralCode{}, err
		}
	} else if err := protocol.ValidateID("campaign", string(campaign)); err != nil {
		return ReferralCode{}, err
	}
	out := ReferralCode{Customer: customer, Campaign: campaign}
	read := func(q interface {
		QueryRowContext(context.Context, string, ...any) *sql.Row
	}) (bool, error) {
		var key string
		var at int64
		err := q.QueryRowContext(ctx, qReferralCode, string(tenant), string(customer), string(campaign)).Scan(&key, &out.Code, &at)
		if errors.Is(err, sql.ErrNoRows) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("catalog: referral code: %w", err)
		}
		out.CreatedAt = time.UnixMicro(at).UTC()
		return true, nil
	}
	if found, err := read(c.db); err != nil || found {
		return out, err
	}
	g, err := codes.New(codes.Options{Prefix: ReferralCodePrefix, Length: 8})
	if err != nil {
		return ReferralCode{}, err
	}
	err = c.write(ctx, tenant, func(tx *sql.Tx, v uint64, now time.Time) error {
		if found, err := read(tx); err != nil || found {
			return err
		}
		cp, err := getCampaign(ctx, tx, tenant, campaign)
		if protocol.ErrorCode(err) == protocol.CodeNotFound {
			return protocol.Errorf(protocol.CodeNotFound, "campaign %q not found", campaign)
		}
		if err != nil {
			return err
		}
		if cp.Rules.Referral == nil {
			return protocol.Errorf(protocol.CodeNotReferral, "campaign %q is not a referral program", campaign)
		}
		printed, err := g.Generate(ctx, 1, txExists{tx, tenant})
		if err != nil {
			return err
		}
		if err := insertCodes(ctx, tx, tenant, campaign, printed, CodeSpec{Uses: -1}, v, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO catalog_referral_codes (tenant, customer, campaign, code, created_at) VALUES (?, ?, ?, ?, ?)`,
			string(tenant), string(customer), string(campaign), codes.Normalize(printed[0]), now.UnixMicro()); err != nil {
			return fmt.Errorf("catalog: referral code: %w", err)
		}
		out.Code, out.CreatedAt, out.Created = printed[0], now.UTC(), true
		return audit(ctx, tx, tenant, actor, "referral_code.create", "customer/"+string(customer), nil,
			map[string]any{"campaign": campaign, "code": printed[0]}, v, now)
	})
	return out, err
}

// onlyReferralCampaign is the tenant's one active referral campaign.
func (c *Catalog) onlyReferralCampaign(ctx context.Context, tenant protocol.TenantID) (protocol.CampaignID, error) {
	cps, err := c.Campaigns(ctx, tenant, 0)
	if err != nil {
		return "", err
	}
	var found []protocol.CampaignID
	for _, cp := range cps {
		if cp.Rules.Referral != nil && cp.Rules.Status == rules.StatusActive {
			found = append(found, cp.Rules.ID)
		}
	}
	switch len(found) {
	case 0:
		return "", protocol.Errorf(protocol.CodeNotFound, "the tenant has no active referral program")
	case 1:
		return found[0], nil
	}
	return "", protocol.FieldError("campaign", "the tenant has %d referral programs: name one", len(found))
}

// referrer is the owner of a referral code; "" for any other code.
func (c *Catalog) referrer(ctx context.Context, tenant protocol.TenantID, key protocol.CodeID) (protocol.CustomerID, error) {
	var cu string
	err := c.db.QueryRowContext(ctx, `SELECT customer FROM catalog_referral_codes WHERE tenant = ? AND code = ?`, string(tenant), string(key)).Scan(&cu)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("catalog: referrer: %w", err)
	}
	return protocol.CustomerID(cu), nil
}
