package webhooks_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/punchcard/punchcard/hub/webhooks"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store"
	"github.com/punchcard/punchcard/store/ledger"
)

// BenchmarkEventToWebhook: the latency from the commit of a till's
// message (two facts: two events) to the arrival of each event's
// delivery at a healthy receiver on 127.0.0.1, at 50 messages a second
// from 20 tills, webhooks.db at synchronous NORMAL (the default) and
// FULL. Reported: p50 and p99 in ms. The same-run baseline is the
// receiver's own round trip (an empty POST from the benchmark,
// rtt-p50-ms), and the configurations before: relaywake=on: the ledger's
// commits wake the relay (ledger.Options.OnEvents, webhooks.Options.Wake;
// the hub's default), whose poll is then DefaultWakeRelayInterval, else it
// polls every 50 ms; riverwake=on: the relay wakes River's fetch after
// each insert (riverwake.go; the default, River's fetch poll then
// DefaultPollInterval), else River's producer learns of the jobs from its
// listener's 50 ms read of river_notification and polls every
// DefaultNoWakePollInterval.
func BenchmarkEventToWebhook(b *testing.B) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil)) // a delivery cut by the Close at the end logs an error
	for _, c := range []struct {
		sync             store.Sync
		relayWake, river bool
	}{{store.SyncNormal, true, true}, {store.SyncNormal, true, false}, {store.SyncFull, true, true}, {store.SyncFull, true, false},
		{store.SyncNormal, false, false}} {
		var relay time.Duration
		var wake <-chan struct{}
		var signal func()
		if c.relayWake {
			wake, signal = webhooks.NewWake()
		} else {
			relay = webhooks.DefaultRelayInterval
		}
		onOff := map[bool]string{true: "on", false: "off"}
		b.Run(fmt.Sprintf("riverwake=%s/sync=%s/relaywake=%s", onOff[c.river], c.sync, onOff[c.relayWake]), func(b *testing.B) {
			ctx := context.Background()
			dir := b.TempDir()
			l, err := ledger.Open(ctx, filepath.Join(dir, "hub.db"), ledger.Options{Facts: &ledger.MemFacts{}, OnEvents: signal})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			var mu sync.Mutex
			arrived := map[string]time.Time{}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				now := time.Now()
				mu.Lock()
				if id := r.Header.Get("webhook-id"); id != "" {
					if _, ok := arrived[id]; !ok {
						arrived[id] = now
					}
				}
				mu.Unlock()
				w.WriteHeader(http.StatusNoContent)
			}))
			defer srv.Close()
			s, err := webhooks.Open(ctx, filepath.Join(dir, "webhooks.db"), webhooks.Options{AllowPrivate: true, Sources: map[string]webhooks.Source{"ledger": l},
				RelayInterval: relay, NoRiverWake: !c.river, Sync: c.sync, Wake: wake, Logger: quiet})
			if err != nil {
				b.Fatal(err)
			}
			if err := s.Start(ctx); err != nil {
				b.Fatal(err)
			}
			defer s.Close(ctx)
			if _, err := s.CreateEndpoint(ctx, "acme", protocol.WebhookEndpointInput{URL: srv.URL}); err != nil {
				b.Fatal(err)
			}
			// The baseline: the receiver's round trip alone.
			var rtts []time.Duration
			for range 50 {
				t0 := time.Now()
				resp, err := http.Post(srv.URL, "application/json", nil)
				if err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
				rtts = append(rtts, time.Since(t0))
			}
			committed := map[string]time.Time{}
			var last int64
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				<-tick.C
				ag := protocol.AgentID(fmt.Sprint("till-", i%20))
				seq := uint64(i/20)*2 + 1
				var rs []protocol.Redemption
				for k := range 2 {
					rs = append(rs, protocol.Redemption{ID: protocol.RedemptionID{Agent: ag, Seq: seq + uint64(k)}, Kind: protocol.KindRedeem, Tenant: "acme",
						Store: "s1", TxnID: fmt.Sprint(ag, "-", seq), Campaign: "c", Currency: "EUR", Discount: 100, OrderTot: 1000, HLC: ledger.HLCFromTime(time.Now())})
				}
				if _, _, err := l.ApplyBatch(ctx, "acme", ag, rs); err != nil {
					b.Fatal(err)
				}
				at := time.Now()
				es, err := l.EventsAfter(ctx, last, 100)
				if err != nil {
					b.Fatal(err)
				}
				for _, e := range es {
					committed[e.ID] = at
					last = e.Seq
				}
			}
			for {
				mu.Lock()
				n := len(arrived)
				mu.Unlock()
				if n >= len(committed) {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			b.StopTimer()
			var lat []time.Duration
			mu.Lock()
			for id, c := range committed {
				lat = append(lat, arrived[id].Sub(c))
			}
			mu.Unlock()
			slices.Sort(lat)
			slices.Sort(rtts)
			pct := func(d []time.Duration, p float64) float64 {
				return float64(d[min(len(d)-1, int(p*float64(len(d))))].Microseconds()) / 1000
			}
			b.ReportMetric(pct(lat, 0.50), "p50-ms")
			b.ReportMetric(pct(lat, 0.99), "p99-ms")
			b.ReportMetric(pct(rtts, 0.50), "rtt-p50-ms")
		})
	}
}
