package ledger

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store"
)

// TestAllowanceSumReadsOneRow pins the fleet's escrow read (issue 10): the
// sum of a campaign's outstanding allowances, which every allowance grant
// and every online redemption of a limited campaign needs, reads the one
// row of ledger_allowance_totals, never the campaign's rows of
// ledger_allowances (one per till: at 10,000 tills a fleet's grants read
// 10,000 rows each, and connecting the fleet spent most of the hub's CPU
// there).
func TestAllowanceSumReadsOneRow(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "l.db"), store.Options{Migrations: Migrations()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fq, fargs := figuresSQL("t", FiguresQuery{Campaigns: []protocol.CampaignID{"x", "y"}}, 1)
	for _, q := range []struct {
		name, sql string
		args      []any
	}{
		{"reserved", qReserved, []any{"t", "x"}},
		{"Campaign", qCampaignBalance, []any{"t", "x"}},
		{"Figures", fq, fargs},
	} {
		rows, err := db.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q.sql, q.args...)
		if err != nil {
			t.Fatalf("%s: explain: %v", q.name, err)
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
		p := strings.Join(plan, "; ")
		if strings.Contains(p, "ledger_allowances ") || !strings.Contains(p, "ledger_allowance_totals USING PRIMARY KEY") {
			t.Errorf("%s reads the allowances of every till: %s", q.name, p)
		}
	}
}
