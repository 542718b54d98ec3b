// Package ledger holds the types of the hub's ledger that its services and
// admin API name: a campaign's balance, conflicts, quarantined facts, a
// customer's journal entries, Verify's report, and an online basket with
// its refusals. The hub's services declare their storage interfaces in
// these types; store/ledger implements them over SQLite, and another store
// (PostgreSQL) would implement them without importing store/ledger.
//
// Types and pure functions only; nothing here reads or writes.
package ledger
