package ledger_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/ledger"
)

// TestGrantRetryRace: a till's retries of one allowance request (same
// request id) that reach the hub at once all get the one grant, never a
// second grant and never an error. Before grants were decided with the
// request id checked under the write lock, two requests that both missed
// the recorded grant outside it both granted, and the second failed on
// the request table's key ("constraint failed").
func TestGrantRetryRace(t *testing.T) {
	ctx := context.Background()
	l, _ := MustOpen(t)
	const agents, tries = 12, 6
	type answer struct {
		a   protocol.Allowance
		err error
	}
	got := make([][]answer, agents)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range agents {
		got[i] = make([]answer, tries)
		agent := protocol.AgentID(fmt.Sprintf("till-%02d", i))
		for k := range tries {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				a, err := l.GrantAllowanceFor(ctx, tenant, agent, "budget100", "req-1")
				got[i][k] = answer{a, err}
			}()
		}
	}
	close(start)
	wg.Wait()
	for i := range agents {
		for k, g := range got[i] {
			if g.err != nil {
				t.Fatalf("till-%02d try %d: %v", i, k, g.err)
			}
			if g.a != got[i][0].a || g.a.Grant != 1 {
				t.Fatalf("till-%02d: try %d got %+v, try 0 got %+v (want one grant, number 1)", i, k, g.a, got[i][0].a)
			}
		}
		es, err := l.Escrow(ctx, tenant, protocol.AgentID(fmt.Sprintf("till-%02d", i)))
		if err != nil || len(es) != 1 || es[0].Grant != 1 {
			t.Fatalf("till-%02d escrow %+v, %v: want one grant", i, es, err)
		}
	}
}

// TestGrantGroupCommit: grant requests that arrive while the write lock
// is taken are decided and committed together, in one transaction (one
// fsync), not one each; each still gets its own grant, in full, and
// requests beyond the budget are refused exactly there.
func TestGrantGroupCommit(t *testing.T) {
	ctx := context.Background()
	l, _ := MustOpen(t)
	const n = 24 // 24 × 5 > budget100's 100: the last ones find it used up
	before := ledger.GrantTxs(l)
	release := ledger.HoldWriteGate(l)
	type answer struct {
		a   protocol.Allowance
		err error
	}
	got := make([]answer, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := l.GrantAllowanceFor(ctx, tenant, protocol.AgentID(fmt.Sprintf("till-%02d", i)), "budget100", fmt.Sprintf("r%d", i))
			got[i] = answer{a, err}
		}()
	}
	// The first request leads and waits for the gate with its own group
	// of one; the others wait for the next group.
	for deadline := time.Now().Add(time.Minute); ledger.GrantsWaiting(l) < n-1; {
		if time.Now().After(deadline) {
			release()
			t.Fatalf("%d requests waiting, want %d", ledger.GrantsWaiting(l), n-1)
		}
		time.Sleep(time.Millisecond)
	}
	release()
	wg.Wait()
	if txs := ledger.GrantTxs(l) - before; txs != 2 {
		t.Errorf("%d grant transactions for %d requests, want 2", txs, n)
	}
	var granted int64
	exhausted := 0
	for i, g := range got {
		switch {
		case protocol.ErrorCode(g.err) == protocol.CodeBudgetExhausted:
			exhausted++
		case g.err != nil:
			t.Fatalf("request %d: %v", i, g.err)
		case g.a.Grant != 1 || g.a.Count <= 0:
			t.Fatalf("request %d: %+v, want grant 1", i, g.a)
		default:
			granted += g.a.Count
		}
	}
	if granted != 100 || exhausted == 0 {
		t.Fatalf("granted %d in all (want the budget, 100), %d refused budget_exhausted", granted, exhausted)
	}
	b, err := l.Campaign(ctx, tenant, "budget100")
	if err != nil || b.ReservedCount != 100 {
		t.Fatalf("campaign %+v, %v: want 100 escrowed", b, err)
	}
}
