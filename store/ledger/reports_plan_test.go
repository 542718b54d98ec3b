package ledger_test

import (
	"strings"
	"testing"
	"time"

	pledger "github.com/punchcard/punchcard/protocol/ledger"
	"github.com/punchcard/punchcard/store/ledger"
)

// TestReportPlans: the reports read the ledger_journal_report index by
// range (a search per period, never a scan of the journal or a lookup
// of its rows) and the export pages by (hlc, id) without sorting.
func TestReportPlans(t *testing.T) {
	l, _ := MustOpen(t)
	day := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	var bs []pledger.Bucket
	for i := range 3 {
		bs = append(bs, pledger.Bucket{Start: day.AddDate(0, 0, i), End: day.AddDate(0, 0, i+1)})
	}
	for _, g := range []string{"", "campaign", "store", "till"} {
		text, args, err := ledger.ActivitySQL(tenant, pledger.ActivityQuery{Buckets: bs, Group: g})
		if err != nil {
			t.Fatal(err)
		}
		plan := explain(t, l, text, args...)
		if !strings.Contains(plan, "SEARCH j USING COVERING INDEX ledger_journal_report (tenant=? AND hlc>? AND hlc<?)") {
			t.Fatalf("group %q plan:\n%s", g, plan)
		}
	}
	text, args := ledger.ExportSQL(tenant, day, day.AddDate(0, 1, 0), 0, 0)
	if plan := explain(t, l, text, args...); strings.Contains(plan, "TEMP B-TREE") || !strings.Contains(plan, "ledger_journal_report") {
		t.Fatalf("export plan:\n%s", plan)
	}
}

func explain(t *testing.T, l *ledger.Ledger, text string, args ...any) string {
	t.Helper()
	rows, err := l.DB().Query("EXPLAIN QUERY PLAN "+text, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var sb strings.Builder
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		sb.WriteString(detail + "\n")
	}
	return sb.String()
}
