package ledger

import (
	"regexp"
	"strings"
	"testing"
)

// TestHistoryPlans: every read of the customer history (history.go) and
// the adjustment's writes reach their tables by an index search, never a
// scan that grows with the journal.
func TestHistoryPlans(t *testing.T) {
	db := planDB(t)
	scan := regexp.MustCompile(`(^|\s)SCAN (\S+)`)
	for _, q := range historyStatements {
		args := []any{"t", "c", 1, 10}
		if q == qHistoryTiers { // (after_entry, id) < (?3, ?4)
			args = []any{"t", "c", 1, 2, 10}
		}
		plan := queryPlan(t, db, q, args...)
		for _, d := range plan {
			if m := scan.FindStringSubmatch(d); m != nil && m[2] != "CONSTANT" {
				t.Errorf("a scan:\n%s\nplan:\n  %s", q, strings.Join(plan, "\n  "))
				break
			}
		}
		t.Logf("%s", strings.Join(plan, "; "))
	}
}
