// Package catalog holds the types of the hub's catalog: tenants, API keys
// and roles, agents, campaigns, codes, tokens, customers, the audit log and
// remembered idempotent answers. They are the bodies of the hub's admin
// API and the words of the storage interfaces that the hub's services
// declare (hub/manage, hub/snapshots, hub/online); store/catalog
// implements those interfaces over SQLite, and another store (PostgreSQL)
// would implement them over these same types without importing
// store/catalog.
//
// The package holds types and the pure functions over them (masking a
// code, a role's validity), nothing that reads or writes.
package catalog
