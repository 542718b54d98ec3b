package ledger_test

import (
	"context"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/ledger"
)

// A grant's answer lost, then the till asks again with the same request
// id: it gets the same grant (number and size), never a second one; a
// request that gets nothing has no grant number; the hub's Escrow shows
// what the till was granted in all.
func TestGrantAllowanceFor(t *testing.T) {
	ctx := context.Background()
	l, _ := MustOpen(t)
	a, err := l.GrantAllowanceFor(ctx, tenant, "till-1", "budget100", "req-1")
	if err != nil {
		t.Fatal(err)
	}
	if a.Grant != 1 || a.Count <= 0 || a.GrantedCount != a.Count {
		t.Fatalf("first grant = %+v", a)
	}
	again, err := l.GrantAllowanceFor(ctx, tenant, "till-1", "budget100", "req-1")
	if err != nil {
		t.Fatal(err)
	}
	if again != a {
		t.Fatalf("retry = %+v, want the same grant %+v", again, a)
	}
	zero, err := l.GrantAllowanceFor(ctx, tenant, "till-1", "budget100", "req-2")
	if err != nil {
		t.Fatal(err)
	}
	if zero.Grant != 0 || zero.Count != 0 {
		t.Fatalf("a request past the target = %+v, want no grant (number 0)", zero)
	}
	if _, err := l.GrantAllowanceFor(ctx, tenant, "till-1", "money", "req-1"); protocol.ErrorCode(err) != protocol.CodeIdempotencyReuse {
		t.Fatalf("the id of another campaign's request = %v, want %s", err, protocol.CodeIdempotencyReuse)
	}
	es, err := l.Escrow(ctx, tenant, "till-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || es[0].Grant != 1 || es[0].GrantedCount != a.Count || es[0].Count != a.Count {
		t.Fatalf("escrow = %+v, want one grant of %d", es, a.Count)
	}
}

// A recorded grant answers retries of its request id for the retention
// (ledger.DefaultRequestRetention), then goes with the agent's next
// recorded grant: the table does not grow for ever, and a retry after
// the retention is a new request.
func TestGrantRequestsPruned(t *testing.T) {
	ctx := context.Background()
	l, clk := MustOpen(t)
	rows := func() (n int) {
		t.Helper()
		if err := l.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM ledger_allowance_requests WHERE tenant = ? AND agent = 'till-1'`, string(tenant)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	a, err := l.GrantAllowanceFor(ctx, tenant, "till-1", "budget100", "req-1")
	if err != nil || a.Grant != 1 {
		t.Fatalf("first grant = %+v, %v", a, err)
	}
	clk.Add(ledger.DefaultRequestRetention - time.Minute)
	if again, err := l.GrantAllowanceFor(ctx, tenant, "till-1", "budget100", "req-1"); err != nil || again != a {
		t.Fatalf("retry within the retention = %+v, %v; want %+v", again, err, a)
	}
	clk.Add(2 * time.Minute)
	if n := rows(); n != 1 {
		t.Fatalf("rows before the next grant = %d, want 1 (pruned only with a recorded grant)", n)
	}
	b, err := l.GrantAllowanceFor(ctx, tenant, "till-1", "money", "req-2")
	if err != nil || b.Grant == 0 {
		t.Fatalf("grant of another campaign = %+v, %v", b, err)
	}
	if n := rows(); n != 1 {
		t.Fatalf("rows after the next grant = %d, want 1 (req-1 pruned, req-2 kept)", n)
	}
	late, err := l.GrantAllowanceFor(ctx, tenant, "till-1", "budget100", "req-1")
	if err != nil {
		t.Fatal(err)
	}
	if late.Grant != 0 {
		t.Fatalf("retry after the retention = %+v, want a new request (nothing more: the till holds its target)", late)
	}
}
