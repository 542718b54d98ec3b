package ledger

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/punchcard/punchcard/store"
)

// migrationsBefore is the ledger's migrations that sort before name: the
// schema as it stood before that migration.
func migrationsBefore(t *testing.T, name string) fstest.MapFS {
	t.Helper()
	all := Migrations()
	names, err := fs.Glob(all, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	before := fstest.MapFS{}
	for _, n := range names {
		if n >= name {
			continue
		}
		b, err := fs.ReadFile(all, n)
		if err != nil {
			t.Fatal(err)
		}
		before[n] = &fstest.MapFile{Data: b}
	}
	return before
}

// TestCustomerRowsMigration: ledger_024_customer_rows.sql moves the five
// per-customer tables into ledger_customer_rows, and the views of their
// names give back every row and column as it was, a txn id that looks
// like a number still text and a day still an integer.
func TestCustomerRowsMigration(t *testing.T) {
	ctx := context.Background()
	tables := []struct{ name, cols, rows string }{
		{"ledger_customers", "tenant, customer, points", `('t', 'c1', 40), ('t', 'c2', -5), ('u', 'c1', 7)`},
		{"ledger_customer_campaigns", "tenant, customer, campaign, count, last_agent, last_seq",
			`('t', 'c1', 'summer', 3, 'till-1', 9), ('t', 'c1', 'club', 1, NULL, NULL), ('t', 'c2', 'summer', 2, 'hub', 4)`},
		{"ledger_purchase_stores", "tenant, customer, store, first_at, last_at, orders", `('t', 'c1', 's1', 100, 300, 2), ('t', 'c1', '', 100, 300, 2)`},
		{"ledger_purchase_days", "tenant, customer, day, value, orders", `('t', 'c1', 20000, 1500, 1), ('t', 'c1', 20001, 700, 1)`},
		{"ledger_purchases", "tenant, customer, store, txn, at, value, currency, agent, seq",
			`('t', 'c1', 's1', '00123', 100, 1500, 'EUR', 'till-1', 5), ('t', 'c1', 's1', 'o-9', 300, 700, '', 'hub', 12)`},
	}
	path := filepath.Join(t.TempDir(), "l.db")
	db, err := store.Open(ctx, path, store.Options{Migrations: migrationsBefore(t, "ledger_024_")})
	if err != nil {
		t.Fatal(err)
	}
	dump := func(table, cols string) string {
		rows, err := db.QueryContext(ctx, `SELECT `+cols+` FROM `+table+` ORDER BY `+cols)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		n := len(strings.Split(cols, ","))
		var sb strings.Builder
		for rows.Next() {
			vs := make([]any, n)
			ps := make([]any, n)
			for i := range vs {
				ps[i] = &vs[i]
			}
			if err := rows.Scan(ps...); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&sb, "%#v\n", vs)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return sb.String()
	}
	want := map[string]string{}
	for _, tb := range tables {
		if _, err := db.ExecContext(ctx, `INSERT INTO `+tb.name+` (`+tb.cols+`) VALUES `+tb.rows); err != nil {
			t.Fatal(err)
		}
		want[tb.name] = dump(tb.name, tb.cols)
	}
	db.Close()
	if db, err = store.Open(ctx, path, store.Options{Migrations: Migrations()}); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, tb := range tables {
		if got := dump(tb.name, tb.cols); got != want[tb.name] {
			t.Errorf("%s after the migration:\n%s\nwant:\n%s", tb.name, got, want[tb.name])
		}
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM ledger_customer_rows`).Scan(&n); err != nil || n != 12 {
		t.Errorf("ledger_customer_rows holds %d rows (%v), want 12", n, err)
	}
	// A view takes a plain INSERT (its trigger), as tools and fixtures
	// write; the row lands in the table.
	if _, err := db.ExecContext(ctx, `INSERT INTO ledger_purchases (tenant, customer, store, txn, at, value, currency, agent, seq) VALUES ('t', 'c3', 's2', 'x', 5, 10, 'EUR', 'hub', 1)`); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM ledger_purchases WHERE customer = 'c3' AND txn = 'x' AND value = 10`).Scan(&n); err != nil || n != 1 {
		t.Errorf("a purchase inserted through the view: %d rows (%v), want 1", n, err)
	}
}
