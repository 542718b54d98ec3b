package chaos_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/punchcard/punchcard/cmd/punchcard/internal/chaos"
	"github.com/punchcard/punchcard/cmd/punchcard/internal/cluster"
	"github.com/punchcard/punchcard/cmd/punchcard/internal/netcut"
	"github.com/punchcard/punchcard/protocol"
)

// longPartition is how long TestLongPartition keeps a till off the
// network: minutes, longer than MQTT keep-alives and the agents' and the
// hub's retry timers.
const longPartition = 2*time.Minute + 10*time.Second

// TestLongPartition (long suite) cuts one till off the broker and the hub
// for more than two minutes, both ways a network fails (connections reset,
// and traffic silently swallowed), while it and a connected till keep
// selling; then heals and checks that every acknowledged redemption is in
// the ledger exactly once and the ledger verifies.
func TestLongPartition(t *testing.T) {
	if !chaos.Long() {
		t.Skip("long suite only (make chaos): the partition lasts minutes")
	}
	for _, m := range []netcut.Mode{netcut.Reset, netcut.Blackhole} {
		t.Run("OK"+m.String(), func(t *testing.T) { longPartitionRun(t, m) })
	}
}

func longPartitionRun(t *testing.T, mode netcut.Mode) {
	e := chaos.Setup(t, 2, 0, "")
	ctx := context.Background()
	cut, online := e.Agents[0], e.Agents[1]
	began := time.Now()
	cut.Cut(mode)
	type tally struct {
		accepted, capped int
		pending          []string
	}
	var tallies [2]tally
	var wg sync.WaitGroup
	for i, a := range []*cluster.StoreAgent{cut, online} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tl := &tallies[i]
			for time.Since(began) < longPartition {
				txn, o, err := e.Redeem(ctx, a)
				switch o {
				case chaos.Accepted:
					tl.accepted++
				case chaos.Refused:
					// The risk envelope caps offline sales (200 between
					// syncs by default); anything else is a failure.
					if cluster.Code(err) != protocol.CodeOfflineCap {
						t.Errorf("%s refused: %v", a.ID, err)
						return
					}
					tl.capped++
				case chaos.Failed:
					tl.pending = append(tl.pending, txn)
				}
				time.Sleep(time.Second)
			}
		}()
	}
	wg.Wait()
	st, err := cut.POS.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Online {
		t.Errorf("%s still online after %s cut off (%s)", cut.ID, longPartition, mode)
	}
	cut.Heal()
	healed := time.Now()
	retryAll(t, ctx, e, cut, tallies[0].pending)
	retryAll(t, ctx, e, online, tallies[1].pending)
	e.Drain(ctx, 3*time.Minute)
	t.Logf("%s partition of %s: cut-off till sold %d (outbox %d at the heal, %d refused at the offline cap, %d retried), connected till sold %d; drained %s after the heal",
		mode, longPartition, tallies[0].accepted, st.OutboxDepth, tallies[0].capped, len(tallies[0].pending), tallies[1].accepted, time.Since(healed).Round(time.Millisecond))
	if tallies[0].accepted == 0 {
		t.Error("the cut-off till sold nothing: the test proved nothing")
	}
	au := e.Check(ctx)
	entries, err := au.Entries(ctx, chaos.Tenant)
	if err != nil {
		t.Fatal(err)
	}
	offline := 0
	for _, en := range entries {
		if en.Agent == string(cut.ID) && en.Offline {
			offline++
		}
	}
	t.Logf("the ledger holds %d offline redemptions of %s", offline, cut.ID)
	if offline == 0 {
		t.Errorf("no redemption of %s is marked offline", cut.ID)
	}
}
