package store_test

import (
	"context"
	"os"
	"path/filepath"
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
