package ledger

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/punchcard/punchcard/store"
)

// TestPointsTotals: ledger_026_points_totals.sql fills each tenant's
// total from its customers' balances, and its triggers keep it for what
// bypasses the ledger's writers (an insert through the view, a delete;
// the writers' own changes: TestPointsOutstanding; the plan:
// TestBalancesPlan).
func TestPointsTotals(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "l.db")
	db, err := store.Open(ctx, path, store.Options{Migrations: migrationsBefore(t, "ledger_026_")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	exec := func(q string) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`INSERT INTO ledger_customers (tenant, customer, points) VALUES ('t', 'c1', 40), ('t', 'c2', -5), ('u', 'c1', 7)`)
	exec(`INSERT INTO ledger_customer_rows (tenant, customer, kind, k1, n1, n2, n3) VALUES ('t', 'c1', 2, 's1', 100, 300, 2)`)
	if err := store.Migrate(ctx, db, Migrations()); err != nil {
		t.Fatal(err)
	}
	want := func(step string, totals map[string]int64) {
		t.Helper()
		for tenant, w := range totals {
			var got int64
			if err := db.QueryRowContext(ctx, qPointsTotal, tenant).Scan(&got); err != nil {
				t.Fatal(err)
			}
			var sum int64
			if err := db.QueryRowContext(ctx, `SELECT COALESCE(SUM(points), 0) FROM ledger_customers WHERE tenant = ?`, tenant).Scan(&sum); err != nil {
				t.Fatal(err)
			}
			if got != w || sum != w {
				t.Fatalf("%s: tenant %s total %d, customers' sum %d, want %d", step, tenant, got, sum, w)
			}
		}
	}
	want("migrated", map[string]int64{"t": 35, "u": 7, "v": 0})
	exec(`INSERT INTO ledger_customers (tenant, customer, points) VALUES ('v', 'c9', 12)`)
	want("an insert through the view", map[string]int64{"t": 35, "u": 7, "v": 12})
	exec(`DELETE FROM ledger_customer_rows WHERE tenant = 't' AND customer = 'c2'`)
	want("a delete", map[string]int64{"t": 40})
	exec(`DELETE FROM ledger_customer_rows WHERE tenant = 't' AND kind = 2`)
	want("another kind's delete", map[string]int64{"t": 40})

}
