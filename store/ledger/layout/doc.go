// Package layout holds a design benchmark, not code the hub runs: what
// SQLite alone costs the online writer a basket under the ledger's
// layout of today, and under the layouts considered for it (issue 10's
// online figure; docs/design.md, "Ledger").
//
// Today an online basket writes ~45 B-tree entries in ~25 trees, about
// ten of them at a random key (the customer's, the transaction's, the
// idempotency key's): BenchmarkOnlineRedeem's PUNCHCARD_BENCH_TREES dump
// lists them. Each random key dirties a leaf page of its own, and every
// dirty page is a 4 KiB frame in the WAL at the group's commit.
// BenchmarkLayout records the same entries, with the same key shapes and
// payloads, from one writer in groups of 8 baskets at synchronous=FULL,
// and next to it the same baskets under other layouts:
//
//   - events-by-ref: the fact events one row a basket that names it,
//     its JSON rendered when read;
//   - journal-per-basket: the journal one row a basket (its facts in one
//     column), the report index replaced by per-campaign-day rollups;
//   - both of those;
//   - basket+customer: one row a basket (its facts and its answer, which
//     is also its idempotency record) and one clustered row of state a
//     customer (points, lots, per-campaign counts, purchase history),
//     with rollups for the reports;
//   - basket+customer+lots: the same with the points lots out of line, in
//     a table clustered by customer;
//   - clustered: today's, with the points lots and the purchases in
//     tables clustered by customer and their customer indexes gone;
//   - customer-kv: today's, with every customer-keyed table (points,
//     per-campaign counts, lots, purchases, their stores and days) one
//     table clustered by (customer, kind, key), as ledger_024 does for
//     all but the lots;
//   - no-X: today's without one part (the fact events, one journal
//     index, the idempotency record, the purchases, the lots, the
//     per-customer counts): what that part costs.
//
// It runs only with PUNCHCARD_LAYOUT_BENCH=1 (make bench-layout): the
// history it builds first takes minutes.
//
// BenchmarkLayoutPostgres records the same baskets in PostgreSQL, as a
// PostgreSQL ledger behind the hub's interfaces would (docs/design.md,
// "Ledger", option (B)): concurrent clients, one durable transaction a
// basket, its reads one at a time and its writes sent together, the
// rows many baskets share (campaign balances, and a tenant's total in
// the +totals layouts) written last; today's layout and basket+customer,
// against SQLite's one writer in the same run. It starts a server of its
// own (initdb and pg_ctl, in a temporary directory, on a Unix socket
// only; as root it runs the server as the postgres user) and runs only
// with PUNCHCARD_LAYOUT_PG=1 (make bench-layout-pg); without PostgreSQL
// installed it is skipped.
package layout
