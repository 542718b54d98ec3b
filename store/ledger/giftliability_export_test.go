package ledger

// The gift card liability's queries, for their plan test.
var LiabilitySQL, LiabilitiesSQL = qLiability, qLiabilities
