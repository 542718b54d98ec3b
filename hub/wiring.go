package hub

import (
	"github.com/punchcard/punchcard/hub/ingest"
	"github.com/punchcard/punchcard/hub/manage"
	"github.com/punchcard/punchcard/hub/online"
	"github.com/punchcard/punchcard/hub/snapshots"
	"github.com/punchcard/punchcard/store/catalog"
	"github.com/punchcard/punchcard/store/ledger"
)

// The stores satisfy the interfaces their consumers declare. Neither store
// imports the other or anything of hub/: the catalog answers the ledger's
// questions (campaign and code facts, the rules as of a version) through
// the ledger's interfaces, in protocol's types, and the hub plugs them
// together in Open, as it plugs both into the services.
var (
	_ ledger.Facts          = (*catalog.Catalog)(nil)
	_ ledger.Rules          = (*catalog.Catalog)(nil)
	_ ledger.VersionedFacts = (*catalog.Catalog)(nil)

	_ manage.Catalog            = (*catalog.Catalog)(nil)
	_ manage.Ledger             = (*ledger.Ledger)(nil)
	_ snapshots.Catalog         = (*catalog.Catalog)(nil)
	_ snapshots.Ledger          = (*ledger.Ledger)(nil)
	_ snapshots.CodeLedger      = (*ledger.Ledger)(nil)
	_ snapshots.ReflectedLedger = (*ledger.Ledger)(nil)
	_ online.Catalog            = (*catalog.Catalog)(nil)
	_ online.Ledger             = (*ledger.Ledger)(nil)
	_ online.ReflectedLedger    = (*ledger.Ledger)(nil)
	_ ingest.Ledger             = (*ledger.Ledger)(nil)
	_ ledger.TierCatalog        = (*catalog.Catalog)(nil)
	_ manage.TierCatalog        = (*catalog.Catalog)(nil)
	_ manage.TiersLedger        = (*ledger.Ledger)(nil)
)
