package chaos_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/punchcard/punchcard/cmd/punchcard/internal/chaos"
	"github.com/punchcard/punchcard/cmd/punchcard/internal/cluster"
	"github.com/punchcard/punchcard/cmd/punchcard/internal/netcut"
	"github.com/punchcard/punchcard/internal/testutil"
	"github.com/punchcard/punchcard/protocol"
)

func TestMain(m *testing.M) {
	code := m.Run()
	chaos.Cleanup()
	os.Exit(code)
}

// sellUntil sells at a until stop is closed or n sales were attempted, and
// returns the transactions that got no answer (to retry later, as a POS
// does after a crash).
func sellUntil(ctx context.Context, e *chaos.Env, a *cluster.StoreAgent, n int, stop <-chan struct{}) (pending []string, accepted, refused int) {
	for i := 0; i < n; i++ {
		select {
		case <-stop:
			return
		default:
		}
		txn, o, _ := e.Redeem(ctx, a)
		switch o {
		case chaos.Accepted:
			accepted++
		case chaos.Refused:
			refused++
		case chaos.Failed:
			pending = append(pending, txn)
			time.Sleep(20 * time.Millisecond)
		}
	}
	return
}

// retryAll retries every pending sale until it is answered.
func retryAll(t *testing.T, ctx context.Context, e *chaos.Env, a *cluster.StoreAgent, pending []string) {
	t.Helper()
	for _, txn := range pending {
		testutil.Eventually(t, "an answer to the retry of "+txn, func() (bool, string) {
			o, err := e.Retry(ctx, a, txn)
			return o != chaos.Failed, fmt.Sprint(err)
		})
	}
}

// TestAgentKilledMidStream kills a till's agent with SIGKILL while sales
// stream in, restarts it, lets the POS retry what got no answer, and checks
// that every confirmed sale is in the ledger exactly once.
func TestAgentKilledMidStream(t *testing.T) {
	e := chaos.Setup(t, 1, 0, "")
	ctx := context.Background()
	a := e.Agents[0]
	rounds := 2
	if chaos.Long() {
		rounds = 10
	}
	var pending []string
	for r := range rounds {
		// Four POS lanes sell at once, so the kill lands while some sale
		// is between its commit and its answer.
		const lanes = 4
		stop := make(chan struct{})
		done := make(chan []string, lanes)
		for range lanes {
			go func() {
				p, _, _ := sellUntil(ctx, e, a, 1000, stop)
				done <- p
			}()
		}
		time.Sleep(time.Duration(150+97*r%300) * time.Millisecond)
		if err := a.Proc.Kill(); err != nil {
			t.Fatal(err)
		}
		close(stop)
		for range lanes {
			pending = append(pending, <-done...)
		}
		t.Logf("round %d: killed %s with SIGKILL; %d sale(s) got no answer and will be retried", r, a.ID, len(pending))
		if err := a.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		retryAll(t, ctx, e, a, pending)
		pending = nil
	}
	e.Drain(ctx, time.Minute)
	if len(e.Acked()) == 0 {
		t.Fatal("no sale was confirmed: the test proved nothing")
	}
	e.Check(ctx)
}

// TestHubKilledMidIngest builds an offline backlog at one till, reconnects
// it and kills the hub with SIGKILL while it ingests, then restarts it.
func TestHubKilledMidIngest(t *testing.T) {
	e := chaos.Setup(t, 2, 0, "")
	ctx := context.Background()
	offline, online := e.Agents[0], e.Agents[1]
	rounds := 1
	if chaos.Long() {
		rounds = 5
	}
	for r := range rounds {
		offline.Cut(netcut.Reset)
		waitOnline(t, ctx, offline, false)
		_, acc, _ := sellUntil(ctx, e, offline, 60, nil)
		if acc == 0 {
			t.Fatalf("round %d: no offline sale accepted", r)
		}
		offline.Heal()
		// Kill the hub as soon as the backlog starts to flow.
		waitOutboxBelow(t, ctx, offline, acc)
		var wg sync.WaitGroup
		var onlinePending []string
		wg.Add(1)
		stop := make(chan struct{})
		go func() {
			defer wg.Done()
			onlinePending, _, _ = sellUntil(ctx, e, online, 1000, stop)
		}()
		if err := e.C.Hub.Proc.Kill(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		if err := e.C.Hub.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		close(stop)
		wg.Wait()
		retryAll(t, ctx, e, online, onlinePending)
		e.Drain(ctx, 2*time.Minute)
	}
	e.Check(ctx)
}

// TestPartitionBudget cuts one till off and sells at
// both until the budget refuses, heals, and sells again: the budget holds
// and nothing confirmed is lost.
func TestPartitionBudget(t *testing.T) {
	modes := []netcut.Mode{netcut.Reset}
	if chaos.Long() {
		// A silent cut is noticed only through MQTT keep-alives (tens of
		// seconds): long suite only.
		modes = append(modes, netcut.Blackhole)
	}
	for _, m := range modes {
		t.Run("OK"+m.String(), func(t *testing.T) { partitionBudget(t, m) })
	}
}

func partitionBudget(t *testing.T, mode netcut.Mode) {
	const budget = 12
	e := chaos.Setup(t, 2, budget, "")
	ctx := context.Background()
	a, b := e.Agents[0], e.Agents[1]
	// A till holds a share of the budget only after its first sale of the
	// campaign online (it asks the hub then): sell once at each first.
	for _, ag := range e.Agents {
		if _, o, err := e.Redeem(ctx, ag); o != chaos.Accepted {
			t.Fatalf("%s: first sale: %v", ag.ID, err)
		}
	}
	b.Cut(mode)
	waitOnline(t, ctx, b, false)
	var wg sync.WaitGroup
	var accA, accB atomic.Int64
	for _, x := range []struct {
		ag  *cluster.StoreAgent
		acc *atomic.Int64
	}{{a, &accA}, {b, &accB}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			refusedInARow := 0
			for refusedInARow < 3 {
				_, o, err := e.Redeem(ctx, x.ag)
				switch o {
				case chaos.Accepted:
					x.acc.Add(1)
					refusedInARow = 0
				case chaos.Refused:
					refusedInARow++
					if c := cluster.Code(err); c != protocol.CodeAllowanceExhausted && c != protocol.CodeBudgetExhausted && c != protocol.CodeOfflineCap {
						t.Errorf("%s refused with %v, want a budget refusal", x.ag.ID, err)
						return
					}
				case chaos.Failed:
					t.Errorf("%s: %v", x.ag.ID, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("during the partition: %s sold %d online, %s sold %d offline", a.ID, accA.Load(), b.ID, accB.Load())
	if accB.Load() == 0 {
		t.Error("the offline till sold nothing: it holds no allowance")
	}
	if got := accA.Load() + accB.Load() + 2; got > budget {
		t.Errorf("guarantee 2: %d sold during the partition, budget %d", got, budget)
	}
	b.Heal()
	e.Drain(ctx, time.Minute)
	// After healing, whatever is left can still be sold, and no more.
	for range 5 {
		for _, ag := range []*cluster.StoreAgent{a, b} {
			if _, o, err := e.Redeem(ctx, ag); o == chaos.Failed {
				t.Fatalf("%s: %v", ag.ID, err)
			}
		}
	}
	e.Drain(ctx, time.Minute)
	if got := len(e.Acked()); got > budget {
		t.Errorf("guarantee 2: tills confirmed %d redemptions, budget %d", got, budget)
	}
	au := e.Check(ctx)
	cs, err := au.Conflicts(ctx, chaos.Tenant)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.Kind == "allowance_overrun" {
			t.Errorf("a till overran its allowance: %+v", c)
		}
	}
}

func waitOnline(t *testing.T, ctx context.Context, a *cluster.StoreAgent, want bool) {
	t.Helper()
	testutil.Eventually(t, fmt.Sprintf("%s online=%v", a.ID, want), func() (bool, string) {
		st, err := a.POS.Status(ctx)
		return err == nil && st.Online == want, fmt.Sprintf("online=%v %v", st.Online, err)
	})
}

func waitOutboxBelow(t *testing.T, ctx context.Context, a *cluster.StoreAgent, n int) {
	t.Helper()
	if err := testutil.AwaitFor(testutil.Patience(t), fmt.Sprintf("%s's outbox to shrink below %d", a.ID, n), func() (bool, string) {
		st, err := a.POS.Status(ctx)
		return err == nil && st.OutboxDepth < int64(n), fmt.Sprintf("%+v %v", st, err)
	}); err != nil {
		t.Fatal(err)
	}
}

// TestOfflineDoubleSpendIsConflict uses one single-use code at two offline
// tills. Both accept it (it fits their loss allowance); after they
// reconnect the hub keeps both redemptions and records a code_reused
// conflict naming both (guarantee 3).
func TestOfflineDoubleSpendIsConflict(t *testing.T) {
	e := chaos.Setup(t, 2, 0, "")
	ctx := context.Background()
	for _, a := range e.Agents {
		a.Cut(netcut.Reset)
	}
	for _, a := range e.Agents {
		waitOnline(t, ctx, a, false)
		if _, o, err := e.RedeemCode(ctx, a, chaos.OnceCode); o != chaos.Accepted {
			t.Fatalf("%s refused %s offline: %v", a.ID, chaos.OnceCode, err)
		}
	}
	for _, a := range e.Agents {
		a.Heal()
	}
	e.Drain(ctx, time.Minute)
	au := e.Check(ctx)
	cs, err := au.Conflicts(ctx, chaos.Tenant)
	if err != nil {
		t.Fatal(err)
	}
	var found int
	for _, c := range cs {
		if c.Kind == "code_reused" && c.OtherAgent != "" && c.OtherAgent != c.Agent {
			found++
		}
	}
	if found != 1 {
		t.Fatalf("want exactly one code_reused conflict between the two tills, got %+v", cs)
	}
}
