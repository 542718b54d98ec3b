package ledger

// Statements of the reports, for the query-plan test.
var (
	ActivitySQL = activitySQL
	ExportSQL   = exportSQL
)
