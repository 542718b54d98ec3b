package ledger_test

import (
	"context"
	"runtime/metrics"
	"testing"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/ledger"
)

// goroutinesCreated is the process's goroutines created so far.
func goroutinesCreated() uint64 {
	s := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestDrainStatementsNoWatchers: a drain prepared and recorded with a
// context that can be cancelled (ingest's) starts no goroutine per
// statement. modernc's driver starts one to interrupt SQLite for every
// statement run with such a context (~2 MB/s of garbage at the fleet's
// 10,000 tills); the drain's statements run with its values only
// (stmtContext), while database/sql's transaction still ends with it. The
// same drain with context.Background (whose statements no driver watches)
// is the baseline: database/sql's watch of the transaction and the
// driver's of its BEGIN and COMMIT may add 3. A context done before the
// drain still refuses it. Fails before the drain's statements left the
// cancellation out (52 goroutines a drain against 9).
func TestDrainStatementsNoWatchers(t *testing.T) {
	l, _ := MustOpen(t)
	next := map[int]uint64{}
	drain := func() []ledger.Batch {
		var bs []ledger.Batch
		for i := range 8 {
			till := 100 + i
			if next[till] == 0 {
				next[till] = 1
			}
			var rs []protocol.Redemption
			rs, next[till] = fleetSale(till, next[till], i)
			bs = append(bs, ledger.Batch{Tenant: tenant, Agent: rs[0].ID.Agent, Redemptions: rs})
		}
		return bs
	}
	// started runs one drain with ctx and returns the goroutines started.
	started := func(ctx context.Context) uint64 {
		bs := drain()
		before := goroutinesCreated()
		p, err := l.PrepareDrain(ctx, bs, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, _, err := l.ApplyDrainStates(ctx, p, []ledger.StateRecord{{Tenant: tenant, Agent: bs[0].Agent}})
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			if r.Err != nil {
				t.Fatalf("batch %d: %v", i, r.Err)
			}
		}
		return goroutinesCreated() - before
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started(ctx) // the first drain prepares the statements
	for range 2 {
		base, n := started(context.Background()), started(ctx)
		if n > base+3 {
			t.Errorf("a drain started %d goroutines with a context that can be cancelled, %d with none; want at most 3 more", n, base)
		}
	}
	cancel()
	if _, err := l.PrepareDrain(ctx, drain(), nil); err == nil {
		t.Error("PrepareDrain with a cancelled context: no error")
	}
	if _, _, err := l.ApplyDrainStates(ctx, nil, []ledger.StateRecord{{Tenant: tenant, Agent: "till-0100"}}); err == nil {
		t.Error("ApplyDrainStates with a cancelled context: no error")
	}
}
