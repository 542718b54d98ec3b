package chaos_test

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/punchcard/punchcard/cmd/punchcard/internal/chaos"
	"github.com/punchcard/punchcard/cmd/punchcard/internal/cluster"
	"github.com/punchcard/punchcard/cmd/punchcard/internal/netcut"
	"github.com/punchcard/punchcard/cmd/punchcard/internal/proc"
	"github.com/punchcard/punchcard/internal/testutil"
)

// TestMixedFaults (long suite) runs three tills on an external Mosquitto
// under a budgeted campaign while a seeded random sequence of faults hits
// them: SIGKILL of a till, of the hub, of the broker, and network cuts of
// either kind. Tills keep selling throughout; POS lanes retry what got no
// answer. At the end every guarantee is checked in the ledger file.
func TestMixedFaults(t *testing.T) {
	if !chaos.Long() {
		t.Skip("long suite: make chaos (or PUNCHCARD_CHAOS=1)")
	}
	if _, err := cluster.FindMosquitto(); err != nil {
		t.Skip(err)
	}
	chaos.Build(t)
	sup, err := proc.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sup.StopAll() })
	ctx := context.Background()
	mq, err := cluster.StartMosquittoWith(ctx, sup, cluster.MosquittoOptions{Dir: filepath.Join(t.TempDir(), "mosquitto"), Persistent: true, ReadyDeadline: time.Now().Add(testutil.Patience(t))})
	if err != nil {
		t.Fatal(err)
	}
	const budget = 400
	e := chaos.Setup(t, 3, budget, mq.URL())
	for _, a := range e.Agents {
		if _, o, err := e.Redeem(ctx, a); o != chaos.Accepted {
			t.Fatalf("%s: first sale: %v", a.ID, err)
		}
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("fault sequence seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))

	stop := make(chan struct{})
	var wg sync.WaitGroup
	pending := make([][]string, len(e.Agents))
	var mu sync.Mutex
	for i, a := range e.Agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				p, _, _ := sellUntil(ctx, e, a, 5, stop)
				mu.Lock()
				pending[i] = append(pending[i], p...)
				mu.Unlock()
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	const rounds = 12
	for r := range rounds {
		a := e.Agents[rng.IntN(len(e.Agents))]
		switch f := rng.IntN(5); f {
		case 0:
			t.Logf("round %d: SIGKILL %s", r, a.ID)
			must(t, a.Proc.Kill())
			time.Sleep(200 * time.Millisecond)
			must(t, a.Restart(ctx))
		case 1:
			t.Logf("round %d: SIGKILL hub", r)
			must(t, e.C.Hub.Proc.Kill())
			time.Sleep(200 * time.Millisecond)
			must(t, e.C.Hub.Restart(ctx))
		case 2:
			t.Logf("round %d: SIGKILL broker", r)
			must(t, mq.Restart(ctx, true))
		case 3:
			t.Logf("round %d: reset %s's network for 1s", r, a.ID)
			a.Cut(netcut.Reset)
			time.Sleep(time.Second)
			a.Heal()
		case 4:
			t.Logf("round %d: blackhole %s's network for 2s", r, a.ID)
			a.Cut(netcut.Blackhole)
			time.Sleep(2 * time.Second)
			a.Heal()
		}
		time.Sleep(time.Duration(300+rng.IntN(700)) * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	for i, a := range e.Agents {
		retryAll(t, ctx, e, a, pending[i])
	}
	e.Drain(ctx, 3*time.Minute)
	if got := len(e.Acked()); got > budget {
		t.Errorf("guarantee 2: tills confirmed %d redemptions, budget %d", got, budget)
	}
	au := e.Check(ctx)
	cs, err := au.Conflicts(ctx, chaos.Tenant)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		t.Errorf("unexpected conflict (no single-use code was sold): %+v", c)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
