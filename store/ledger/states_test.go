package ledger_test

import (
	"context"
	"testing"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/ledger"
)

// TestRecordAgentStates: many heartbeats in one call, each answered with
// its agent's watermark; a bad one is refused alone; the same agent twice
// keeps the last.
func TestRecordAgentStates(t *testing.T) {
	ctx := context.Background()
	l, _ := MustOpen(t)
	if _, _, err := l.ApplyBatch(ctx, tenant, "till-1", reds("till-1", 1, 2, 3)); err != nil {
		t.Fatal(err)
	}
	res, err := l.RecordAgentStates(ctx, []ledger.StateRecord{
		{Tenant: tenant, Agent: "till-1", State: protocol.AgentState{SnapshotVersion: 4, LastSeq: 3}},
		{Tenant: tenant, Agent: "till-2", State: protocol.AgentState{SnapshotVersion: 5}},
		{Tenant: tenant, Agent: "bad agent", State: protocol.AgentState{}},
		{Tenant: tenant, Agent: "till-3", State: protocol.AgentState{LastSeq: 1 << 63}},
		{Tenant: tenant, Agent: "till-1", State: protocol.AgentState{SnapshotVersion: 6, LastSeq: 3, OutboxDepth: 2}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(res), 5; got != want {
		t.Fatalf("results = %d, want %d", got, want)
	}
	for i, want := range []uint64{3, 0, 0, 0, 3} {
		if res[i].Watermark != want {
			t.Errorf("result %d watermark = %d, want %d", i, res[i].Watermark, want)
		}
	}
	for i, bad := range []bool{false, false, true, true, false} {
		if (res[i].Err != nil) != bad {
			t.Errorf("result %d err = %v, want refused %v", i, res[i].Err, bad)
		}
	}
	a, err := l.Agent(ctx, tenant, "till-1")
	if err != nil {
		t.Fatal(err)
	}
	if a.Watermark != 3 || a.State.SnapshotVersion != 6 || a.State.OutboxDepth != 2 {
		t.Fatalf("till-1 = %+v: want watermark 3 and the last heartbeat", a)
	}
	for _, id := range []protocol.AgentID{"bad agent", "till-3"} {
		if a, err := l.Agent(ctx, tenant, id); err != nil || !a.SeenAt.IsZero() {
			t.Fatalf("%s recorded: %+v %v", id, a, err)
		}
	}
}
