package ledger

import (
	"strings"
	"testing"

	"github.com/punchcard/punchcard/protocol"
)

// TestAllowanceSumReadsOneRow pins the fleet's escrow read (issue 10): the
// sum of a campaign's outstanding allowances, which every allowance grant
// and every online redemption of a limited campaign needs, reads the one
// row of ledger_allowance_totals, never the campaign's rows of
// ledger_allowances (one per till: at 10,000 tills a fleet's grants read
// 10,000 rows each, and connecting the fleet spent most of the hub's CPU
// there).
func TestAllowanceSumReadsOneRow(t *testing.T) {
	db := planDB(t)
	fq, fargs := figuresSQL("t", FiguresQuery{Campaigns: []protocol.CampaignID{"x", "y"}}, 1)
	for _, q := range []struct {
		name, sql string
		args      []any
	}{
		{"reserved", qReserved, []any{"t", "x"}},
		{"Campaign", qCampaignBalance, []any{"t", "x"}},
		{"Figures", fq, fargs},
	} {
		plan := queryPlan(t, db, q.sql, q.args...)
		p := strings.Join(plan, "; ")
		if strings.Contains(p, "ledger_allowances ") || !strings.Contains(p, "ledger_allowance_totals USING PRIMARY KEY") {
			t.Errorf("%s reads the allowances of every till: %s", q.name, p)
		}
	}
}
