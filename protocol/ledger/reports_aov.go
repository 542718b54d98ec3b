package ledger

import "github.com/punchcard/punchcard/protocol"

// AOVRow is one bucket's orders of one currency in the purchase history
// (ledger_purchases: the orders of known customers), split by whether a
// reward was applied to the order and not voided since: Rewarded is true
// when at least one redemption fact of the order (same till and
// transaction) counts (sign 1) and no rollback voided it. Value is the
// orders' subtotals (Redemption.OrderTot) in minor units.
type AOVRow struct {
	Bucket   int
	Currency protocol.Currency
	Rewarded bool
	Orders   int64
	Value    int64
}
