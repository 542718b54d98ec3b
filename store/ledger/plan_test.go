package ledger

import (
	"context"
	"database/sql"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store"
)

// TestHotStatementPlans checks with EXPLAIN QUERY PLAN that every statement
// prepared for the apply and online paths (hotStatements, which New
// prepares before any trace in hub/api's TestOnlinePathQueryPlans could see
// them), the online path's own queries and a grant's reach their tables
// by an index search, never a scan that grows with the journal, nor a
// search of the journal by tenant or till alone.
func TestHotStatementPlans(t *testing.T) {
	db := planDB(t)
	qs := append(hotStatements(),
		selectRedemption+` WHERE tenant = ? AND agent = ? AND txn_id = ? AND entry = ? AND campaign = ? AND code = ? LIMIT 1`,
		selectRedemption+` WHERE tenant = ? AND agent = ? AND txn_id = ? AND entry = ? AND ref_agent = ? AND ref_seq = ? LIMIT 1`,
		selectRedemption+` WHERE tenant = ? AND agent = ? AND seq = ?`,
		`SELECT agent, grants, granted_count, granted_amount, returned_count, returned_amount, used_count, used_amount
		FROM ledger_allowances WHERE tenant = ? AND campaign = ?`,
		`SELECT COUNT(*) FROM ledger_journal WHERE tenant = ? AND ref_agent = ? AND ref_seq = ? AND entry = 'rollback'
		AND (agent = ref_agent OR agent = ?)`)
	fq, _ := figuresSQL("t", FiguresQuery{Customer: "c", Codes: []protocol.CodeID{"A", "B"}, Cards: []protocol.CodeID{"B"}, Counts: []protocol.CampaignID{"x"}, Campaigns: []protocol.CampaignID{"x", "y"}}, 1)
	qs = append(qs, fq, qGrantRate, qGrantOf, delGrantRequests, qCardIssued)
	scan := regexp.MustCompile(`(^|\s)SCAN (\S+)`)
	// A search of the journal by tenant (and agent) alone reads every row
	// of the tenant (the till) ever recorded: a read growing with history.
	wholeHistory := regexp.MustCompile(`SEARCH ledger_journal .*\((tenant=\?|tenant=\? AND agent=\?)\)$`)
	for _, q := range qs {
		var args []any
		for _, m := range regexp.MustCompile(`\?(\d*)`).FindAllStringSubmatch(q, -1) {
			if m[1] == "" {
				args = append(args, nil)
			} else if i, _ := strconv.Atoi(m[1]); i > len(args) {
				args = append(args, make([]any, i-len(args))...)
			}
		}
		plan := queryPlan(t, db, q, args...)
		for _, d := range plan {
			if m := scan.FindStringSubmatch(d); m != nil && m[2] != "CONSTANT" && !strings.Contains(d, "VALUES CLAUSE") {
				t.Errorf("a scan:\n%s\nplan:\n  %s", q, strings.Join(plan, "\n  "))
				break
			}
			if wholeHistory.MatchString(d) {
				t.Errorf("a read of the whole journal of a tenant or till:\n%s\nplan:\n  %s", q, strings.Join(plan, "\n  "))
				break
			}
		}
	}
}

// planDB is an empty, migrated ledger file for EXPLAIN QUERY PLAN.
func planDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "l.db"), store.Options{Migrations: Migrations()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// queryPlan is the detail lines of q's EXPLAIN QUERY PLAN.
func queryPlan(t *testing.T, db *sql.DB, q string, args ...any) []string {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		t.Fatalf("explain %s: %v", q, err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return plan
}

// TestLotsLivePlan: a burn, the expiry and the balance read a customer's
// live lots by the live key of ledger_points_lots_customer_live
// (ledger_025_lots_live.sql), not all of the customer's lots: a read that
// would grow with every lot the customer ever spent; and a burn reads
// them in the key's order (ledger_027_lots_order.sql), with no sort,
// so that it stops at what it needs.
func TestLotsLivePlan(t *testing.T) {
	db := planDB(t)
	for _, q := range []string{qLotsStream, qPointsLive} {
		plan := strings.Join(queryPlan(t, db, q, "t", "c", 1), "\n  ")
		if !strings.Contains(plan, "USING INDEX ledger_points_lots_customer_live (tenant=? AND customer=? AND <expr>=?") {
			t.Errorf("not by the live key:\n%s\nplan:\n  %s", q, plan)
		}
		if strings.Contains(plan, "TEMP B-TREE") {
			t.Errorf("sorted, not read in the key's order:\n%s\nplan:\n  %s", q, plan)
		}
	}
	// The balance's due lots (Points, and Figures for a decision): a
	// range of the whole key.
	fq, _ := figuresSQL("t", FiguresQuery{Customer: "c"}, 1)
	for _, q := range []string{qPointsLive, fq} {
		if plan := strings.Join(queryPlan(t, db, q, "t", "c", 1), "\n  "); !strings.Contains(plan, "<expr>=? AND <expr>=? AND expires_at<?") {
			t.Errorf("the due lots not a range of the key:\n%s\nplan:\n  %s", q, plan)
		}
	}
}
