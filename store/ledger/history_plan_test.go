package ledger

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/punchcard/punchcard/store"
)

// TestHistoryPlans: every read of the customer history (history.go) and
// the adjustment's writes reach their tables by an index search, never a
// scan that grows with the journal.
func TestHistoryPlans(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "l.db"), store.Options{Migrations: Migrations()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	scan := regexp.MustCompile(`(^|\s)SCAN (\S+)`)
	for _, q := range historyStatements {
		args := []any{"t", "c", 1, 10}
		if q == qHistoryTiers { // (after_entry, id) < (?3, ?4)
			args = []any{"t", "c", 1, 2, 10}
		}
		rows, err := db.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q, args...)
		if err != nil {
			t.Fatalf("explain %s: %v", q, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		for _, d := range plan {
			if m := scan.FindStringSubmatch(d); m != nil && m[2] != "CONSTANT" {
				t.Errorf("a scan:\n%s\nplan:\n  %s", q, strings.Join(plan, "\n  "))
				break
			}
		}
		t.Logf("%s", strings.Join(plan, "; "))
	}
}
