package fleet

import (
	"context"
	"fmt"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/store/catalog"
)

// What Provision creates, for a chain's everyday traffic: an automatic
// promotion with a budget (so every till holds an allowance of it), a
// code-triggered campaign with one multi-use code that about half the
// sales present, and Tills tills spread over Stores stores.
const (
	Currency = "EUR"
	// AutoCampaign is the automatic, limited campaign: every sale gets it
	// while the till's allowance lasts; the campaign change of a fleet run
	// changes its percentage.
	AutoCampaign protocol.CampaignID = "everyday"
	// CodeCampaign is the code-triggered campaign of Code.
	CodeCampaign protocol.CampaignID = "welcome"
	// Code is the multi-use code presented in about half of the sales.
	Code protocol.CodeID = "WELCOME5"
	// AutoBudget is AutoCampaign's default max_redemptions: limited, so
	// tills escrow allowances, but never exhausted in a run. Ample: a
	// till's first grant is the policy's maximum (a share of what is
	// left, ledger.AllowancePolicy.FirstShare), so tills do not top up
	// within a run; a budget under 500,000 keeps first grants at the
	// minimum, and every till tops up after its 4th sale.
	AutoBudget = 1_000_000_000
)

// AutoCampaignDoc is AutoCampaign's JSON at percentBP basis points off,
// with budget as its max_redemptions (AutoBudget when not positive).
func AutoCampaignDoc(tenant protocol.TenantID, percentBP int, budget int64) []byte {
	if budget <= 0 {
		budget = AutoBudget
	}
	return fmt.Appendf(nil, `{"schema":1,"id":%q,"tenant":%q,"status":"active","currency":%q,"trigger":"auto",`+
		`"reward":{"kind":"percent_off","percent_bp":%d},"limits":{"max_redemptions":%d}}`, AutoCampaign, tenant, Currency, percentBP, budget)
}

func codeCampaignDoc(tenant protocol.TenantID) []byte {
	return fmt.Appendf(nil, `{"schema":1,"id":%q,"tenant":%q,"status":"active","currency":%q,`+
		`"reward":{"kind":"amount_off","amount":200}}`, CodeCampaign, tenant, Currency)
}

// Setup is what Provision made: the tills' credentials and the key that
// signs what the hub sends down.
type Setup struct {
	Tenant protocol.TenantID
	Tills  []Cred
	HubKey []byte // ed25519.PublicKey
}

// Provision creates tenant with the campaigns and code above and registers
// tills tills (till-00001…) in stores stores (store-001…), directly in the
// catalog: registering ten thousand tills over the admin API would take
// minutes of rate-limited requests, and the benchmark measures the fleet,
// not the registration. Each registration is one catalog write, as over
// the API. budget is AutoCampaign's (AutoCampaignDoc).
func Provision(ctx context.Context, cat *catalog.Catalog, tenant protocol.TenantID, tills, stores int, budget int64) (Setup, error) {
	s := Setup{Tenant: tenant}
	if stores < 1 {
		stores = 1
	}
	if _, err := cat.CreateTenant(ctx, catalog.System, catalog.Tenant{ID: tenant, Name: string(tenant), Currency: Currency}); err != nil {
		return s, fmt.Errorf("fleet: tenant: %w", err)
	}
	if _, err := cat.CreateCampaign(ctx, catalog.System, tenant, AutoCampaignDoc(tenant, 500, budget)); err != nil {
		return s, fmt.Errorf("fleet: campaign: %w", err)
	}
	if _, err := cat.CreateCampaign(ctx, catalog.System, tenant, codeCampaignDoc(tenant)); err != nil {
		return s, fmt.Errorf("fleet: campaign: %w", err)
	}
	if _, err := cat.ImportCodes(ctx, catalog.System, tenant, CodeCampaign, []string{string(Code)}, catalog.CodeSpec{Uses: -1}); err != nil {
		return s, fmt.Errorf("fleet: code: %w", err)
	}
	for i := 1; i <= tills; i++ {
		id := protocol.AgentID(fmt.Sprintf("till-%05d", i))
		st := protocol.StoreID(fmt.Sprintf("store-%03d", (i-1)%stores+1))
		_, secret, err := cat.RegisterAgent(ctx, catalog.System, catalog.Agent{Tenant: tenant, ID: id, Store: snapshot.Store{ID: st, TimeZone: "Europe/Berlin"}})
		if err != nil {
			return s, fmt.Errorf("fleet: register %s: %w", id, err)
		}
		s.Tills = append(s.Tills, Cred{Tenant: tenant, Agent: id, Secret: secret})
	}
	pub, err := cat.HubPublicKey(ctx)
	if err != nil {
		return s, err
	}
	s.HubKey = pub
	return s, nil
}
