package manage

import (
	"context"

	"github.com/punchcard/punchcard/protocol"
)

// CampaignView is a campaign with, when the ledger is there, what it has
// used so far (nil without a ledger).
type CampaignView struct {
	Campaign Campaign
	Used     *CampaignBalance
}

// Campaigns lists the tenant's campaigns changed after catalog version
// since (all with 0). Reason codes: not_found (the tenant).
func (s *Service) Campaigns(ctx context.Context, tenant protocol.TenantID, since uint64) ([]Campaign, error) {
	if _, err := s.cat.Tenant(ctx, tenant); err != nil {
		return nil, err
	}
	return s.cat.Campaigns(ctx, tenant, since)
}

// Campaign returns one campaign with its use. Reason codes: not_found.
func (s *Service) Campaign(ctx context.Context, tenant protocol.TenantID, id protocol.CampaignID) (CampaignView, error) {
	cp, err := s.cat.Campaign(ctx, tenant, id)
	if err != nil {
		return CampaignView{}, err
	}
	out := CampaignView{Campaign: cp}
	if s.opts.Ledger != nil {
		b, err := s.opts.Ledger.Campaign(ctx, tenant, cp.Rules.ID)
		if err != nil {
			return out, err
		}
		out.Used = &b
	}
	return out, nil
}

// CreateCampaign creates a campaign from its JSON document (docs/rules.md).
// Reason codes: invalid_input, conflict, not_found.
func (s *Service) CreateCampaign(ctx context.Context, actor Actor, tenant protocol.TenantID, doc []byte) (Campaign, error) {
	return s.change(ctx, tenant, func() (Campaign, error) { return s.cat.CreateCampaign(ctx, actor, tenant, doc) })
}

// UpdateCampaign replaces a campaign's document. Reason codes:
// invalid_input, conflict, not_found.
func (s *Service) UpdateCampaign(ctx context.Context, actor Actor, tenant protocol.TenantID, id protocol.CampaignID, doc []byte) (Campaign, error) {
	return s.change(ctx, tenant, func() (Campaign, error) { return s.cat.UpdateCampaign(ctx, actor, tenant, id, doc) })
}

// StartCampaign activates a campaign. Reason codes: conflict, not_found.
func (s *Service) StartCampaign(ctx context.Context, actor Actor, tenant protocol.TenantID, id protocol.CampaignID) (Campaign, error) {
	return s.change(ctx, tenant, func() (Campaign, error) { return s.cat.StartCampaign(ctx, actor, tenant, id) })
}

// StopCampaign is the kill switch: the campaign stops at once at the hub,
// its snapshot change is announced, and the agents are asked to give back
// their allowances of it (Options.OnStop). Reason codes: not_found.
func (s *Service) StopCampaign(ctx context.Context, actor Actor, tenant protocol.TenantID, id protocol.CampaignID) (Campaign, error) {
	cp, err := s.change(ctx, tenant, func() (Campaign, error) { return s.cat.StopCampaign(ctx, actor, tenant, id) })
	if err != nil {
		return cp, err
	}
	if s.opts.OnStop != nil {
		s.opts.OnStop(tenant, cp.Rules.ID)
	}
	return cp, nil
}

// change runs one change of tenant's catalog and reports it.
func change[T any](ctx context.Context, s *Service, tenant protocol.TenantID, f func() (T, error)) (T, error) {
	v, err := f()
	if err != nil {
		return v, err
	}
	s.changed(ctx, tenant)
	return v, nil
}

func (s *Service) change(ctx context.Context, tenant protocol.TenantID, f func() (Campaign, error)) (Campaign, error) {
	return change(ctx, s, tenant, f)
}

// --- codes ---------------------------------------------------------------

// CodeView is a code with, when the ledger is there, its uses and (gift
// cards) its remaining balance.
type CodeView struct {
	Code      Code
	Used      *int64
	Remaining *int64
}

// Codes lists a campaign's codes after the key after, at most limit
// (MaxListLimit). Reason codes: not_found (the campaign).
func (s *Service) Codes(ctx context.Context, tenant protocol.TenantID, campaign protocol.CampaignID, after string, limit int64) ([]Code, error) {
	if _, err := s.cat.Campaign(ctx, tenant, campaign); err != nil {
		return nil, err
	}
	return s.cat.Codes(ctx, tenant, campaign, after, page(limit))
}

// Code returns one code, as printed or by key, with its uses and balance.
// Reason codes: not_found.
func (s *Service) Code(ctx context.Context, tenant protocol.TenantID, code string) (CodeView, error) {
	cd, err := s.cat.Code(ctx, tenant, code)
	if err != nil {
		return CodeView{}, err
	}
	out := CodeView{Code: cd}
	if s.opts.Ledger == nil {
		return out, nil
	}
	used, err := s.opts.Ledger.CodeUses(ctx, tenant, cd.Key)
	if err != nil {
		return out, err
	}
	out.Used = &used
	if cd.Balance > 0 {
		spent, err := s.opts.Ledger.GiftCardSpent(ctx, tenant, cd.Key)
		if err != nil {
			return out, err
		}
		loaded, err := s.opts.Ledger.GiftCardLoaded(ctx, tenant, cd.Key)
		if err != nil {
			return out, err
		}
		rem := cd.Balance + loaded - spent
		out.Remaining = &rem
	}
	return out, nil
}

// GenerateCodes makes codes for a campaign and returns them as printed.
// Reason codes: invalid_input, not_found.
func (s *Service) GenerateCodes(ctx context.Context, actor Actor, tenant protocol.TenantID, campaign protocol.CampaignID, req GenerateRequest) ([]string, error) {
	return change(ctx, s, tenant, func() ([]string, error) { return s.cat.GenerateCodes(ctx, actor, tenant, campaign, req) })
}

// ImportCodes adds printed codes to a campaign. Reason codes:
// invalid_input, conflict, not_found.
func (s *Service) ImportCodes(ctx context.Context, actor Actor, tenant protocol.TenantID, campaign protocol.CampaignID, printed []string, spec CodeSpec) (int, error) {
	return change(ctx, s, tenant, func() (int, error) { return s.cat.ImportCodes(ctx, actor, tenant, campaign, printed, spec) })
}

// RevokeCode revokes a code. Reason codes: not_found.
func (s *Service) RevokeCode(ctx context.Context, actor Actor, tenant protocol.TenantID, code string) (Code, error) {
	return change(ctx, s, tenant, func() (Code, error) { return s.cat.RevokeCode(ctx, actor, tenant, code) })
}

// --- tokens --------------------------------------------------------------

// IssueToken issues a signed token. Reason codes: invalid_input,
// not_found.
func (s *Service) IssueToken(ctx context.Context, actor Actor, tenant protocol.TenantID, req TokenRequest) (Token, error) {
	return change(ctx, s, tenant, func() (Token, error) { return s.cat.IssueToken(ctx, actor, tenant, req) })
}

// Token returns one token by serial. Reason codes: not_found.
func (s *Service) Token(ctx context.Context, tenant protocol.TenantID, serial protocol.CodeID) (Token, error) {
	return s.cat.Token(ctx, tenant, serial)
}

// RevokeToken revokes a token. Reason codes: not_found.
func (s *Service) RevokeToken(ctx context.Context, actor Actor, tenant protocol.TenantID, serial protocol.CodeID) (Token, error) {
	return change(ctx, s, tenant, func() (Token, error) { return s.cat.RevokeToken(ctx, actor, tenant, serial) })
}
