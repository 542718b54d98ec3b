package api

import (
	"github.com/punchcard/punchcard/hub/manage"
	"github.com/punchcard/punchcard/hub/online"
	"github.com/punchcard/punchcard/hub/snapshots"
)

// What New needs of the stores to build the services it is not given:
// the union of what each service declares it needs, so any store that
// satisfies the services (store/catalog and store/ledger today) will do.
// hub/api itself names no store type: every route calls a service.

// Catalog is what the services need of the catalog store.
type Catalog interface {
	manage.Catalog
	snapshots.Catalog
	online.Catalog
}

// Ledger is what the services need of the ledger store; the allowance
// routes also use it when it is an allowance.Store.
type Ledger interface {
	manage.Ledger
	snapshots.Ledger
	online.Ledger
}

// isBusy reports a store held by another writer past every busy timeout:
// the caller may retry.
func isBusy(err error) bool { return manage.IsBusy(err) }
