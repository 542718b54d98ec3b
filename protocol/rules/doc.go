// Package rules is Punchcard's one rules engine: for an order, a customer (if
// known), a store, a moment and a set of redeemables, it decides what is
// valid, what each gives and, if not, why.
//
// The agent runs it offline and the hub online, so it is pure: no I/O, no
// clock, no randomness, no map iteration order in its answers. Time and every
// balance or count it needs are passed in. The same Request against the same
// Catalog always gives the same Decision (guarantee 5 of the design).
//
// Campaigns are data (JSON in the hub's API, CBOR in snapshots, one schema,
// Validate refuses any mistake with the field's path). A Catalog compiles
// them once; Evaluate is then cheap and bounded: no loops over unbounded
// quantities, no recursion, cost linear in the campaigns touched and the
// order's lines.
//
// Money is int64 minor units; rates are integer basis points or
// milli-points; rounding is always toward the merchant, so no discount
// exceeds what its rule says. See docs/rules.md for the schema, the
// application order, stacking, rounding, DST and points expiry.
package rules

import (
	_ "time/tzdata" // the agent may run on a machine without zoneinfo
)
