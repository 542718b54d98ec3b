package ledger

// AOVSQL is PurchaseAOV's statement, for the query-plan test.
var AOVSQL = aovSQL
