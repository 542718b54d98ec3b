package ledger

// The balances report's queries, for their plan test.
var LiabilitySQL, LiabilitiesSQL, PointsTotalSQL = qLiability, qLiabilities, qPointsTotal
