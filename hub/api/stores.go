package api

import (
	"context"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/rules"
	"github.com/punchcard/punchcard/store/catalog"
	"github.com/punchcard/punchcard/store/ledger"
)

// What the online routes (online.go) and the allowance routes still use of
// the stores directly, until they move to their services (hub/online,
// hub/allowance). Every other route calls hub/manage or hub/snapshots.

// Catalog is the catalog store.
type Catalog = *catalog.Catalog

// Ledger is what the API needs of the hub's ledger (store/ledger): online
// redemptions and allowances go through it, and New builds the services it
// is not given (manage, snapshots) over it.
type Ledger interface {
	Redeem(ctx context.Context, r protocol.Redemption) (protocol.Redemption, error)
	// RedeemBasket records an online write all or nothing, with its
	// idempotency record, through the ledger's group-commit writer.
	RedeemBasket(ctx context.Context, b ledger.Basket) ([]protocol.Redemption, bool, error)
	GrantAllowance(ctx context.Context, tenant protocol.TenantID, agent protocol.AgentID, campaign protocol.CampaignID) (protocol.Allowance, error)
	ReturnAllowance(ctx context.Context, ret protocol.Allowance) (protocol.Allowance, error)
	Outstanding(ctx context.Context, tenant protocol.TenantID, agent protocol.AgentID, campaign protocol.CampaignID) (count, amount int64, err error)
	Campaign(ctx context.Context, tenant protocol.TenantID, campaign protocol.CampaignID) (ledger.CampaignBalance, error)
	CodeUses(ctx context.Context, tenant protocol.TenantID, code protocol.CodeID) (int64, error)
	GiftCardSpent(ctx context.Context, tenant protocol.TenantID, code protocol.CodeID) (int64, error)
	CustomerCount(ctx context.Context, tenant protocol.TenantID, customer protocol.CustomerID, campaign protocol.CampaignID) (int64, error)
	Points(ctx context.Context, tenant protocol.TenantID, customer protocol.CustomerID) (int64, error)
	Conflicts(ctx context.Context, tenant protocol.TenantID, after int64, limit int) ([]ledger.Conflict, error)
	Quarantine(ctx context.Context, tenant protocol.TenantID, after int64, limit int) ([]ledger.Quarantined, error)
	Verify(ctx context.Context) (ledger.Report, error)
	// CodeStates and JournalMark put the codes' uses and gift card
	// spending in the agents' snapshots (ledger/snapshotq.go).
	CodeStates(ctx context.Context, tenant protocol.TenantID) (map[protocol.CodeID]ledger.CodeState, error)
	JournalMark(ctx context.Context) (int64, error)
}

var _ Ledger = (*ledger.Ledger)(nil)

type compiled struct {
	version uint64
	cat     *rules.Catalog
	camps   map[protocol.CampaignID]catalog.Campaign
}

// isBusy reports a SQLite file held by another writer past every busy
// timeout: the caller may retry.
func isBusy(err error) bool { return ledger.IsBusy(err) }
