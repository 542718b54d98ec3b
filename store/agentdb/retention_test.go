package agentdb_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store"
	"github.com/punchcard/punchcard/store/agentdb"
)

// fakeClock is a settable wall clock.
type fakeClock struct{ t atomic.Pointer[time.Time] }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.set(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	return c
}
func (c *fakeClock) now() time.Time          { return *c.t.Load() }
func (c *fakeClock) set(t time.Time)         { c.t.Store(&t) }
func (c *fakeClock) advance(d time.Duration) { c.set(c.now().Add(d)) }

func code(err error) protocol.Code {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// TestPrune: a retry inside the idempotency window replays; after it the
// record is pruned and a retry is refused, never recorded twice; an
// acknowledged redemption is pruned after its own window, an unacknowledged
// one never.
func TestPrune(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	db, err := agentdb.Open(ctx, filepath.Join(t.TempDir(), "agent.db"), agentdb.Options{
		Now: clk.now, PruneEvery: -1, IdempotencyRetention: 72 * time.Hour, RedemptionRetention: 35 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, _, err := db.Commit(ctx, redeemReq("T1", "c1", "", 100)); err != nil {
		t.Fatal(err)
	}
	facts := func(txn string) int {
		t.Helper()
		fs, err := db.Facts(ctx, agentdb.OpRedeem, txn)
		if err != nil {
			t.Fatal(err)
		}
		return len(fs)
	}
	lastSeq := func() uint64 {
		t.Helper()
		st, err := db.State(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st.LastSeq
	}

	t.Run("ReplayInsideWindow", func(t *testing.T) {
		clk.advance(71 * time.Hour)
		if st, err := db.Prune(ctx); err != nil || st.Txns != 0 {
			t.Fatalf("prune = %+v, %v; want nothing pruned", st, err)
		}
		_, replayed, err := db.Commit(ctx, redeemReq("T1", "c1", "", 100))
		if err != nil || !replayed {
			t.Fatalf("retry inside the window: replayed=%v err=%v", replayed, err)
		}
	})
	t.Run("ErrAfterWindow", func(t *testing.T) {
		clk.advance(2 * time.Hour)
		if st, err := db.Prune(ctx); err != nil || st.Txns != 1 || st.Redemptions != 0 {
			t.Fatalf("prune = %+v, %v; want 1 txn, 0 redemptions", st, err)
		}
		if _, _, ok, _ := db.Lookup(ctx, agentdb.OpRedeem, "T1"); ok {
			t.Fatal("idempotency record still there")
		}
		_, _, err := db.Commit(ctx, redeemReq("T1", "c1", "", 100))
		if got, want := code(err), protocol.CodeIdempotencyReuse; got != want {
			t.Fatalf("late retry: %v, want %s", err, want)
		}
		if got, want := lastSeq(), uint64(1); got != want {
			t.Fatalf("last seq = %d, want %d (nothing recorded twice)", got, want)
		}
	})
	t.Run("UnackedKept", func(t *testing.T) {
		clk.advance(36 * 24 * time.Hour)
		if st, err := db.Prune(ctx); err != nil || st.Redemptions != 0 {
			t.Fatalf("prune = %+v, %v; want the unacknowledged redemption kept", st, err)
		}
		if got := facts("T1"); got != 1 {
			t.Fatalf("facts = %d, want 1", got)
		}
	})
	t.Run("AckedPruned", func(t *testing.T) {
		if _, _, err := db.Commit(ctx, redeemReq("T2", "c1", "", 100)); err != nil { // young: kept
			t.Fatal(err)
		}
		if _, err := db.Ack(ctx, 2, nil); err != nil {
			t.Fatal(err)
		}
		if st, err := db.Prune(ctx); err != nil || st.Redemptions != 1 {
			t.Fatalf("prune = %+v, %v; want 1 redemption", st, err)
		}
		if got := facts("T1"); got != 0 {
			t.Fatalf("facts of T1 = %d, want 0", got)
		}
		if got := facts("T2"); got != 1 {
			t.Fatalf("facts of T2 = %d, want 1", got)
		}
	})
}

// TestStorageFull injects a free-space threshold above what the file
// system has: a new sale is refused with storage_full (HTTP 507), while a
// rollback and an ack still pass.
func TestStorageFull(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "agent.db")
	db, err := agentdb.Open(ctx, path, agentdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.Commit(ctx, redeemReq("T1", "c1", "", 100)); err != nil {
		t.Fatalf("commit with the default threshold: %v", err)
	}
	free, ok := db.FreeBytes()
	db.Close()
	if !ok {
		t.Skip("free space unknown on this platform")
	}
	db, err = agentdb.Open(ctx, path, agentdb.Options{MinFreeBytes: int64(free) + 1<<40})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, _, err = db.Commit(ctx, redeemReq("T2", "c1", "", 100))
	if got, want := code(err), protocol.CodeStorageFull; got != want {
		t.Fatalf("commit: %v, want %s", err, want)
	}
	if got, want := protocol.CodeStorageFull.HTTPStatus(), http.StatusInsufficientStorage; got != want {
		t.Fatalf("status = %d, want %d", got, want)
	}
	rb := redeemReq("R1", "c1", "", 100)
	rb.Op, rb.Facts[0].Voids, rb.Facts[0].Redemption.Kind = agentdb.OpRollback, 1, protocol.KindRollback
	rb.Facts[0].Redemption.Ref = &protocol.RedemptionID{Agent: "a1", Seq: 1}
	if _, _, err := db.Commit(ctx, rb); err != nil {
		t.Fatalf("rollback: %v", err)
	}
	if _, err := db.Ack(ctx, 2, nil); err != nil {
		t.Fatalf("ack: %v", err)
	}
}

// TestWALBounded: with readers that always overlap the writer (which keep
// SQLite from rewinding the WAL), the checkpoint loop still brings the WAL
// file back under its limit.
func TestWALBounded(t *testing.T) {
	ctx := context.Background()
	const limit = 256 << 10
	path := filepath.Join(t.TempDir(), "agent.db")
	db, err := agentdb.Open(ctx, path, agentdb.Options{Sync: store.SyncNormal, WALLimit: limit, CheckpointEvery: 5 * time.Millisecond, PruneEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				db.State(ctx)
			}
		}()
	}
	for i := range 1500 {
		if _, _, err := db.Commit(ctx, redeemReq("T"+itoa(i), "c1", "", 100)); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	// Wait on the condition, within a generous bound (not a speed test:
	// without the TRUNCATE checkpoint the WAL never shrinks).
	giveUp := time.Now().Add(2 * time.Minute)
	for {
		fi, err := os.Stat(path + "-wal")
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() <= limit {
			break
		}
		if time.Now().After(giveUp) {
			t.Fatalf("WAL is %d bytes, limit %d", fi.Size(), limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func itoa(i int) string {
	b := []byte{}
	for {
		b = append([]byte{byte('0' + i%10)}, b...)
		i /= 10
		if i == 0 {
			return string(b)
		}
	}
}
