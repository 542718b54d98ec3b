package ledger

import (
	"strings"
	"testing"
)

// TestGrantRatePlan: the grant's rate query reads the agent's journal
// rows by seq from the window on (ledger_journal_id with a seq range, in
// both the count and the subquery that finds where the window starts),
// not every row the agent ever made (tenant and agent alone: the plan
// before, a read growing with the till's age, on every grant, inside the
// write gate).
func TestGrantRatePlan(t *testing.T) {
	plan := queryPlan(t, planDB(t), qGrantRate, "t", "a", "c", int64(0))
	searches := 0
	for _, d := range plan {
		if !strings.Contains(d, "ledger_journal") || !strings.HasPrefix(strings.TrimSpace(d), "SEARCH") {
			continue
		}
		searches++
		if !strings.Contains(d, "USING INDEX ledger_journal_id (tenant=? AND agent=? AND seq") {
			t.Errorf("reads the journal without a seq range: %s", d)
		}
	}
	if searches != 2 || strings.Contains(strings.Join(plan, "\n"), "TEMP B-TREE") {
		t.Errorf("plan: want two searches of the journal by (tenant, agent, seq) and no sort:\n  %s", strings.Join(plan, "\n  "))
	}
}
