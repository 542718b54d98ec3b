package agentdb

import (
	"context"
	"path/filepath"
	"testing"
)

// TestSyncRestored checks that the write connection is back to
// synchronous=FULL after a relaxed ack, so that redemptions stay durable.
func TestSyncRestored(t *testing.T) {
	ctx := context.Background()
	d, err := Open(ctx, filepath.Join(t.TempDir(), "a.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	read := func() int {
		d.wmu.Lock()
		defer d.wmu.Unlock()
		var v int
		if err := d.wconn.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if got := read(); got != 2 {
		t.Fatalf("synchronous = %d before, want 2 (FULL)", got)
	}
	if _, err := d.Ack(ctx, 5, nil); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != 2 {
		t.Fatalf("synchronous = %d after an ack, want 2 (FULL)", got)
	}
	var auto int
	d.wconn.QueryRowContext(ctx, `PRAGMA wal_autocheckpoint`).Scan(&auto)
	if auto != 0 {
		t.Fatalf("wal_autocheckpoint = %d on the write connection", auto)
	}
}
