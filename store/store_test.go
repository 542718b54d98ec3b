package store_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/punchcard/punchcard/store"
)

func TestOpenMigrate(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "t.db")
	mig := os.DirFS("testdata/migrations")
	for i := 0; i < 2; i++ { // the second open must find everything applied
		db, err := store.Open(ctx, path, store.Options{Migrations: mig})
		if err != nil {
			t.Fatal(err)
		}
		var mode, sync string
		if err := db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if got, want := mode, "wal"; got != want {
			t.Fatalf("journal_mode = %q, want %q", got, want)
		}
		if err := db.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&sync); err != nil {
			t.Fatal(err)
		}
		if got, want := sync, "2"; got != want { // 2 = FULL
			t.Fatalf("synchronous = %q, want %q", got, want)
		}
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if got, want := n, 2; got != want {
			t.Fatalf("migrations = %d, want %d", got, want)
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO widgets (name, color) VALUES ('a', 'red')`); err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
}

func TestOpenBadMigration(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "001_bad.sql"), []byte("CREATE TABLEX nope"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := store.Open(context.Background(), filepath.Join(dir, "t.db"), store.Options{Migrations: os.DirFS(dir)})
	if err == nil {
		t.Fatal("bad migration: no error")
	}
}

func TestSecureDeleteAndCheckpoint(t *testing.T) {
	ctx := context.Background()
	for _, on := range []bool{false, true} {
		db, err := store.Open(ctx, filepath.Join(t.TempDir(), "t.db"), store.Options{SecureDelete: on})
		if err != nil {
			t.Fatal(err)
		}
		var got int
		if err := db.QueryRowContext(ctx, `PRAGMA secure_delete`).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int{false: 0, true: 1}[on]; got != want {
			t.Fatalf("secure_delete = %d with SecureDelete %v", got, on)
		}
		if _, err := db.ExecContext(ctx, `CREATE TABLE t (x TEXT)`); err != nil {
			t.Fatal(err)
		}
		if done, err := store.Checkpoint(ctx, db); err != nil || !done {
			t.Fatalf("checkpoint: %v %v", done, err)
		}
		db.Close()
	}
}

// TestMigrateRefusesNewerSchema: a binary whose migrations lack one the
// database records (a downgrade) refuses the database with
// ErrSchemaNewer and changes nothing; another family's migrations in the
// same file (the hub's catalog and ledger share one) are not its to
// judge, and a database behind the binary migrates forward.
func TestMigrateRefusesNewerSchema(t *testing.T) {
	write := func(t *testing.T, dir string, files map[string]string) fs.FS {
		t.Helper()
		for name, body := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return os.DirFS(dir)
	}
	v1 := map[string]string{"ledger_001_a.sql": "CREATE TABLE a (x)", "catalog_001_c.sql": "CREATE TABLE c (x)"}
	v2 := map[string]string{"ledger_001_a.sql": "CREATE TABLE a (x)", "ledger_002_b.sql": "CREATE TABLE b (x)", "catalog_001_c.sql": "CREATE TABLE c (x)"}
	ledgerV1 := map[string]string{"ledger_001_a.sql": "CREATE TABLE a (x)", "ledger_003_d.sql": "CREATE TABLE d (x)"}
	catalogV1 := map[string]string{"catalog_001_c.sql": "CREATE TABLE c (x)"}
	for _, tc := range []struct {
		name        string
		first, then map[string]string
		newer       string // the migration named in the refusal; "" to migrate
	}{
		{"same", v2, v2, ""},
		{"forward", v1, v2, ""},
		{"downgrade", v2, v1, "ledger_002_b.sql"},
		{"downgrade with a new one of its own", v2, ledgerV1, "ledger_002_b.sql"},
		{"another family only", v2, catalogV1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "t.db")
			db, err := store.Open(ctx, path, store.Options{Migrations: write(t, t.TempDir(), tc.first)})
			if err != nil {
				t.Fatal(err)
			}
			db.Close()
			db, err = store.Open(ctx, path, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			err = store.Migrate(ctx, db, write(t, t.TempDir(), tc.then))
			if tc.newer == "" {
				if err != nil {
					t.Fatalf("migrate: %v", err)
				}
				return
			}
			if !errors.Is(err, store.ErrSchemaNewer) || !strings.Contains(err.Error(), tc.newer) {
				t.Fatalf("migrate = %v, want ErrSchemaNewer naming %s", err, tc.newer)
			}
			var n int
			if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_schema WHERE name = 'd'`).Scan(&n); err != nil || n != 0 {
				t.Fatalf("the refused binary's own migration ran: %d tables d (%v)", n, err)
			}
		})
	}
}
