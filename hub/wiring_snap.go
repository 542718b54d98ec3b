package hub

import (
	"github.com/punchcard/punchcard/hub/snapshots"
	"github.com/punchcard/punchcard/store/catalog"
	"github.com/punchcard/punchcard/store/ledger"
)

// The stores implement what a quiet snapshot poll reads (hub/snapshots,
// quiet.go) and the catalog lists a tenant's agents at once (agents.go); kept apart from wiring.go's list so that the branches that
// add to either merge without conflict.
var (
	_ snapshots.PositionLedger   = (*ledger.Ledger)(nil)
	_ snapshots.CodeFactsCatalog = (*catalog.Catalog)(nil)
	_ snapshots.AgentLister      = (*catalog.Catalog)(nil)
	_ snapshots.SnapshotReader   = (*ledger.Ledger)(nil)
)
