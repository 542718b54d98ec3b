package chaos_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/punchcard/punchcard/cmd/punchcard/internal/chaos"
	"github.com/punchcard/punchcard/cmd/punchcard/internal/cluster"
	"github.com/punchcard/punchcard/cmd/punchcard/internal/proc"
	"github.com/punchcard/punchcard/internal/testutil"
)

// TestBrokerRestart runs the hub on an external Mosquitto and kills the
// broker with SIGKILL while two tills sell, with and without broker
// persistence. Without persistence the broker forgets sessions and queued
// messages: the agents' SQLite outbox, not the broker, must carry every
// redemption to the hub.
func TestBrokerRestart(t *testing.T) {
	if _, err := cluster.FindMosquitto(); err != nil {
		t.Skip(err)
	}
	chaos.Build(t)
	rounds := 1
	if chaos.Long() {
		rounds = 4
	}
	for _, tt := range []struct {
		name       string
		persistent bool
	}{
		{name: "OKPersistent", persistent: true},
		{name: "OKVolatile", persistent: false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sup, err := proc.New(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = sup.StopAll() })
			ctx := context.Background()
			mq, err := cluster.StartMosquittoWith(ctx, sup, cluster.MosquittoOptions{Dir: filepath.Join(t.TempDir(), "mosquitto"), Persistent: tt.persistent, ReadyDeadline: time.Now().Add(testutil.Patience(t))})
			if err != nil {
				t.Fatal(err)
			}
			e := chaos.Setup(t, 2, 0, mq.URL())
			for r := range rounds {
				stop := make(chan struct{})
				var wg sync.WaitGroup
				pending := make([][]string, len(e.Agents))
				for i, a := range e.Agents {
					wg.Add(1)
					go func() {
						defer wg.Done()
						pending[i], _, _ = sellUntil(ctx, e, a, 1000, stop)
					}()
				}
				time.Sleep(300 * time.Millisecond)
				if err := mq.Restart(ctx, true); err != nil {
					t.Fatalf("round %d: restart broker: %v", r, err)
				}
				time.Sleep(300 * time.Millisecond)
				close(stop)
				wg.Wait()
				for i, a := range e.Agents {
					retryAll(t, ctx, e, a, pending[i])
				}
				e.Drain(ctx, 2*time.Minute)
			}
			if len(e.Acked()) == 0 {
				t.Fatal("no sale was confirmed: the test proved nothing")
			}
			e.Check(ctx)
		})
	}
}
