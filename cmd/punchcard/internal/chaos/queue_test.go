package chaos_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/punchcard/punchcard/cmd/punchcard/internal/chaos"
	"github.com/punchcard/punchcard/cmd/punchcard/internal/cluster"
	"github.com/punchcard/punchcard/cmd/punchcard/internal/proc"
	"github.com/punchcard/punchcard/internal/testutil"
)

// mosquittoDropped is what Mosquitto logs when a client's queue is full
// and it starts dropping QoS 1 messages to it.
const mosquittoDropped = "Outgoing messages are being dropped for client"

// TestBrokerQueueLimit runs the hub on an external Mosquitto left at its
// default queue limits (max_queued_messages 1000) and takes the hub away
// (SIGKILL) while three tills keep selling online: their batches queue at
// the broker for the hub's persistent session until the queue is full, and
// the rest is dropped. When the hub comes back, its gap detection (Resend)
// and the agents' republishing must bring every acknowledged redemption
// into the ledger exactly once. The test fails if the broker dropped
// nothing or the hub never asked for a Resend: then it proved nothing.
func TestBrokerQueueLimit(t *testing.T) {
	if _, err := cluster.FindMosquitto(); err != nil {
		t.Skip(err)
	}
	chaos.Build(t)
	sup, err := proc.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sup.StopAll() })
	// The tills' sync window (64 batches in flight) keeps them from ever
	// filling the broker's queue: lift it, so that they flood the broker
	// as a fleet of tills would and the drops this test needs happen.
	t.Setenv("PUNCHCARD_SYNC_WINDOW", "1000000")
	ctx := context.Background()
	mqDir := filepath.Join(t.TempDir(), "mosquitto")
	mq, err := cluster.StartMosquittoWith(ctx, sup, cluster.MosquittoOptions{Dir: mqDir, DefaultQueues: true, ReadyDeadline: time.Now().Add(testutil.Patience(t))})
	if err != nil {
		t.Fatal(err)
	}
	e := chaos.SetupWith(t, 3, 0, cluster.Options{BrokerURL: mq.URL(), Metrics: true})
	rounds := 1
	if chaos.Long() {
		rounds = 3
	}
	// Sales while the hub is away, well above the queue. One POS lane per
	// till: each sale then leaves in its own Batch message (concurrent
	// lanes would share batches and stay under the broker's limit).
	const burst = 2000
	for r := range rounds {
		if err := e.C.Hub.Proc.Kill(); err != nil {
			t.Fatal(err)
		}
		began := time.Now()
		var sold atomic.Int64
		var wg sync.WaitGroup
		pending := make([][]string, len(e.Agents))
		for i := range pending {
			a := e.Agents[i%len(e.Agents)]
			wg.Add(1)
			go func() {
				defer wg.Done()
				for sold.Load() < burst {
					txn, o, _ := e.Redeem(ctx, a)
					switch o {
					case chaos.Accepted:
						sold.Add(1)
					case chaos.Failed:
						pending[i] = append(pending[i], txn)
						time.Sleep(20 * time.Millisecond)
					}
				}
			}()
		}
		wg.Wait()
		t.Logf("round %d: %d sales accepted in %s with the hub away", r, sold.Load(), time.Since(began).Round(time.Millisecond))
		if err := e.C.Hub.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		for i, p := range pending {
			retryAll(t, ctx, e, e.Agents[i%len(e.Agents)], p)
		}
		// A sale right after the restart arrives above the hole the
		// broker left: the hub sees the gap and asks for a Resend.
		for _, a := range e.Agents {
			if _, o, err := e.Redeem(ctx, a); o != chaos.Accepted {
				t.Fatalf("%s after the hub's restart: %v", a.ID, err)
			}
		}
		began = time.Now()
		e.Drain(ctx, 3*time.Minute)
		resends, err := e.C.Hub.Metric(ctx, "punchcard_ingest_resends_total")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: drained %s after the hub's restart; the hub published %v Resend(s)", r, time.Since(began).Round(time.Millisecond), resends)
		if resends == 0 {
			t.Errorf("round %d: the hub never asked for a Resend: gap detection was not exercised", r)
		}
	}
	e.Check(ctx)
	// Mosquitto buffers its log on stdout: stop it to read it whole.
	if err := mq.Proc.Stop(); err != nil {
		t.Logf("stop mosquitto: %v", err)
	}
	log, err := os.ReadFile(mq.Proc.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	drops := bytes.Count(log, []byte(mosquittoDropped+" "+cluster.HubMQTTUser))
	t.Logf("mosquitto logged %q %d time(s), %d of them for the hub", mosquittoDropped, bytes.Count(log, []byte(mosquittoDropped)), drops)
	if drops == 0 {
		t.Errorf("mosquitto never dropped messages to the hub: the test proved nothing\n%s", tailOfLog(log))
	}
}

func tailOfLog(b []byte) []byte {
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return b
}
