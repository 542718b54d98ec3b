package ledger_test

import (
	"strings"
	"testing"
	"time"

	pledger "github.com/punchcard/punchcard/protocol/ledger"
	"github.com/punchcard/punchcard/store/ledger"
)

// TestAOVPlan: the aov report reads the purchase history by range of
// time (ledger_purchases_report, a covering search per period) and looks
// up each order's redemptions and their rollbacks by index, never a scan.
func TestAOVPlan(t *testing.T) {
	l, _ := MustOpen(t)
	day := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	bs := []pledger.Bucket{{Start: day, End: day.AddDate(0, 0, 1)}, {Start: day.AddDate(0, 0, 1), End: day.AddDate(0, 0, 2)}}
	text, args, err := ledger.AOVSQL(tenant, bs)
	if err != nil {
		t.Fatal(err)
	}
	plan := explain(t, l, text, args...)
	for _, want := range []string{"SEARCH p USING COVERING INDEX ledger_purchases_report (tenant=? AND n1>? AND n1<?)",
		"SEARCH j USING INDEX ledger_journal_txn", "SEARCH r USING INDEX ledger_journal_ref"} {
		if !strings.Contains(plan, want) {
			t.Fatalf("plan lacks %q:\n%s", want, plan)
		}
	}
	if strings.Contains(plan, "SCAN j") || strings.Contains(plan, "SCAN p") || strings.Contains(plan, "SCAN r") {
		t.Fatalf("plan scans:\n%s", plan)
	}
}
