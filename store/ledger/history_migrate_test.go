package ledger

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/punchcard/punchcard/store"
)

// TestHistoryTiersMigration: ledger_019_history_tiers.sql places the tier
// changes written before it after the customer's last journal entry the
// hub had received by then (0: none).
func TestHistoryTiersMigration(t *testing.T) {
	ctx := context.Background()
	before := migrationsBefore(t, "ledger_019_")
	all := Migrations()
	path := filepath.Join(t.TempDir(), "l.db")
	db, err := store.Open(ctx, path, store.Options{Migrations: before})
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO ledger_journal (id, tenant, entry, agent, seq, customer, received_at) VALUES (1, 't', 'earn', 'a', 1, 'c1', 100), (2, 't', 'earn', 'a', 2, 'c2', 150), (3, 't', 'earn', 'a', 3, 'c1', 200)`,
		`INSERT INTO ledger_tier_history (id, tenant, customer, at, from_tier, to_tier, reason) VALUES (1, 't', 'c1', 50, '', 'gold', 'upgrade'), (2, 't', 'c1', 160, 'gold', '', 'downgrade'), (3, 't', 'c1', 300, '', 'gold', 'upgrade')`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	if db, err = store.Open(ctx, path, store.Options{Migrations: all}); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT after_entry FROM ledger_tier_history ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []int64
	for rows.Next() {
		var a int64
		if err := rows.Scan(&a); err != nil {
			t.Fatal(err)
		}
		got = append(got, a)
	}
	if len(got) != 3 || got[0] != 0 || got[1] != 1 || got[2] != 3 {
		t.Fatalf("after_entry %v, want [0 1 3]", got)
	}
}
