package ledger_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store"
	"github.com/punchcard/punchcard/store/ledger"
)

// TestDrainPipelinedCommit: with the pipelined commit (the ledger's
// default) a drain commits without its own fsync and SyncDrains makes it
// durable with one fsync for every drain committed before it, and none
// when nothing was committed since; every pooled connection is back at
// FULL afterwards; ApplyBatch stays out of the pipeline. With SerialCommit each drain's commit syncs itself and
// SyncDrains has nothing to do.
func TestDrainPipelinedCommit(t *testing.T) {
	ctx := context.Background()
	for _, serial := range []bool{false, true} {
		t.Run(fmt.Sprintf("serial=%v", serial), func(t *testing.T) {
			db, err := store.Open(ctx, filepath.Join(t.TempDir(), "hub.db"), store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			l, err := ledger.New(ctx, db, ledger.Options{Facts: MustFacts(t), SerialCommit: serial})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			drain := func(agent protocol.AgentID, seqs ...uint64) {
				t.Helper()
				p, err := l.PrepareDrain(ctx, []ledger.Batch{{Tenant: tenant, Agent: agent, Redemptions: reds(agent, seqs...)}}, nil)
				if err != nil {
					t.Fatal(err)
				}
				res, sres, err := l.ApplyDrainStates(ctx, p, []ledger.StateRecord{{Tenant: tenant, Agent: agent}})
				if err != nil || res[0].Ack.Watermark != seqs[len(seqs)-1] || sres[0].Watermark != seqs[len(seqs)-1] {
					t.Fatalf("drain: %+v %+v %v", res, sres, err)
				}
			}
			drain("till-1", 1, 2)
			drain("till-2", 1)
			commits, synced, syncs := ledger.DrainSyncs(l)
			if want := map[bool]uint64{false: 2, true: 0}[serial]; commits != want || synced != 0 || syncs != 0 {
				t.Fatalf("before SyncDrains: %d commits at NORMAL, %d synced, %d fsyncs; want %d, 0, 0", commits, synced, syncs, want)
			}
			for range 2 {
				if err := l.SyncDrains(ctx); err != nil {
					t.Fatal(err)
				}
			}
			commits, synced, syncs = ledger.DrainSyncs(l)
			if want := map[bool]int64{false: 1, true: 0}[serial]; synced != commits || syncs != want {
				t.Fatalf("after SyncDrains twice: %d commits at NORMAL, %d synced, %d fsyncs; want all synced by %d", commits, synced, syncs, want)
			}
			// ApplyBatch (and ApplyDrain, RecordAgentStates) commit
			// durably, outside the pipeline.
			if _, _, err := l.ApplyBatch(ctx, tenant, "till-1", reds("till-1", 3)); err != nil {
				t.Fatal(err)
			}
			if c, _, _ := ledger.DrainSyncs(l); c != commits {
				t.Fatalf("ApplyBatch committed in the pipeline: %d commits at NORMAL, want %d", c, commits)
			}
			// The ledger keeps one connection for the drains, at NORMAL (1) with the pipelined commit
			// and at the pool's FULL (2) with the serial one; every other
			// pooled connection is at FULL: hold them all at once.
			kept := ledger.DrainConn(l)
			if kept == nil {
				t.Fatal("no connection kept for the drains")
			}
			var syncMode int
			if err := kept.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&syncMode); err != nil || syncMode != map[bool]int{false: 1, true: 2}[serial] {
				t.Fatalf("the drains' connection at synchronous %d (%v)", syncMode, err)
			}
			pooled := store.DefaultMaxOpenConns - 1
			var conns []*sql.Conn
			for range pooled {
				c, err := db.Conn(ctx)
				if err != nil {
					t.Fatal(err)
				}
				conns = append(conns, c)
				var n int
				if err := c.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&n); err != nil || n != 2 {
					t.Fatalf("pooled connection %d at synchronous %d (%v), want 2", len(conns), n, err)
				}
			}
			for _, c := range conns {
				c.Close()
			}
			if a, err := l.Agent(ctx, tenant, "till-1"); err != nil || a.Watermark != 3 {
				t.Fatalf("till-1 %+v %v", a, err)
			}
			// The next drain runs on the same kept connection, although
			// readers took pooled ones meanwhile; Close gives it up.
			drain("till-3", 1)
			if again := ledger.DrainConn(l); again != kept {
				t.Fatalf("the drains' connection changed between drains: %p, then %p", kept, again)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if st := db.Stats(); st.InUse != 0 {
				t.Fatalf("after Close %d connections in use, want 0", st.InUse)
			}
		})
	}
}

// TestDrainCacheSize: a drain of BigDrainFacts facts or more runs with
// DrainCacheKiB of page cache on the drains' own connection, a smaller one
// with the connection's own setting (SQLite's default), so that a
// catch-up's drain, which dirties about a page a fact, keeps its pages in
// memory until its commit while the fleet's small drains keep the cache
// that measured best for them.
func TestDrainCacheSize(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "hub.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	l, err := ledger.New(ctx, db, ledger.Options{Facts: MustFacts(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var def int64
	if err := db.QueryRowContext(ctx, `PRAGMA cache_size`).Scan(&def); err != nil {
		t.Fatal(err)
	}
	next := uint64(1)
	drain := func(n int) int64 {
		t.Helper()
		seqs := make([]uint64, n)
		for i := range seqs {
			seqs[i] = next
			next++
		}
		p, err := l.PrepareDrain(ctx, []ledger.Batch{{Tenant: tenant, Agent: "till-1", Redemptions: reds("till-1", seqs...)}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res, _, err := l.ApplyDrainStates(ctx, p, nil); err != nil || res[0].Ack.Watermark != next-1 {
			t.Fatalf("drain of %d: %+v %v", n, res, err)
		}
		size, ok, err := ledger.DrainCacheSize(l)
		if err != nil || !ok {
			t.Fatalf("drains' connection: %v %v", ok, err)
		}
		return size
	}
	if got := drain(2); got != def {
		t.Errorf("cache after a drain of 2 facts = %d, want the default %d", got, def)
	}
	if got, want := drain(ledger.BigDrainFacts), int64(-ledger.DrainCacheKiB); got != want {
		t.Errorf("cache after a drain of %d facts = %d, want %d", ledger.BigDrainFacts, got, want)
	}
	if got := drain(3); got != def {
		t.Errorf("cache after a small drain again = %d, want the default %d", got, def)
	}
}
