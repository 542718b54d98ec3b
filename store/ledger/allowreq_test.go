package ledger_test

import (
	"context"
	"testing"

	"github.com/punchcard/punchcard/protocol"
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
