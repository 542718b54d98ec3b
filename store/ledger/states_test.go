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

// TestApplyDrainStates: a drain's batches and heartbeats in one
// transaction: each heartbeat's watermark includes the drain's batches
// (till-1's batch moves it from 0 to 3), a bad heartbeat is refused alone,
// and heartbeats alone (no batches) are recorded too.
func TestApplyDrainStates(t *testing.T) {
	ctx := context.Background()
	l, _ := MustOpen(t)
	p, err := l.PrepareDrain(ctx, []ledger.Batch{{Tenant: tenant, Agent: "till-1", Redemptions: reds("till-1", 1, 2, 3)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, sres, err := l.ApplyDrainStates(ctx, p, []ledger.StateRecord{
		{Tenant: tenant, Agent: "till-1", State: protocol.AgentState{SnapshotVersion: 4, LastSeq: 3}},
		{Tenant: tenant, Agent: "bad agent"},
		{Tenant: tenant, Agent: "till-2", State: protocol.AgentState{SnapshotVersion: 5}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Err != nil || res[0].Ack.Watermark != 3 {
		t.Fatalf("batch results %+v: want one, watermark 3", res)
	}
	if len(sres) != 3 || sres[0].Watermark != 3 || sres[0].Err != nil || sres[1].Err == nil || sres[2].Err != nil || sres[2].Watermark != 0 {
		t.Fatalf("heartbeat results %+v: want till-1 at 3, the bad one refused, till-2 at 0", sres)
	}
	_, sres, err = l.ApplyDrainStates(ctx, nil, []ledger.StateRecord{{Tenant: tenant, Agent: "till-2", State: protocol.AgentState{SnapshotVersion: 7}}})
	if err != nil || len(sres) != 1 || sres[0].Err != nil {
		t.Fatalf("heartbeats alone: %+v, %v", sres, err)
	}
	for id, v := range map[protocol.AgentID]uint64{"till-1": 4, "till-2": 7} {
		if a, err := l.Agent(ctx, tenant, id); err != nil || a.State.SnapshotVersion != v || a.SeenAt.IsZero() {
			t.Fatalf("%s = %+v, %v: want snapshot version %d", id, a, err, v)
		}
	}
	if a, err := l.Agent(ctx, tenant, "till-1"); err != nil || a.Watermark != 3 {
		t.Fatalf("till-1 = %+v, %v: want watermark 3", a, err)
	}
}
