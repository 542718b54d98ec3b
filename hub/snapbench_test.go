package hub_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/punchcard/punchcard/agent"
	"github.com/punchcard/punchcard/agent/uplink"
	"github.com/punchcard/punchcard/hub"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/codes"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/store/agentdb"
	"github.com/punchcard/punchcard/store/catalog"
	"github.com/punchcard/punchcard/store/ledger"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func envDur(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// benchFact is one redemption of a multi-use code of campaign "multi" as
// a till records it: an order of 10.00, 10% off, with the sale the hub
// re-derives it from.
func benchFact(ag protocol.AgentID, store protocol.StoreID, seq uint64, code protocol.CodeID, version uint64, now time.Time) protocol.Redemption {
	return protocol.Redemption{ID: protocol.RedemptionID{Agent: ag, Seq: seq}, Kind: protocol.KindRedeem, Tenant: "acme", Store: store,
		TxnID: fmt.Sprintf("%s-%d", ag, seq), OrderID: fmt.Sprintf("o-%s-%d", ag, seq), Campaign: "multi", Code: code, Currency: "EUR",
		Discount: 100, OrderTot: 10_00, HLC: ledger.HLCFromTime(now), Offline: true, Snapshot: version,
		Sale: &protocol.Sale{Lines: []protocol.Line{{SKU: "sku-1", Category: "food", Quantity: 1, UnitPrice: 10_00}},
			Presented: []protocol.Presented{{Kind: protocol.PresentedCode, Code: code}}, At: now.UnixMilli()}}
}

// BenchmarkTillOnlineVsOffline is the Done-when line "an online till sells
// multi-use codes within 1.5x of the same till offline (p50 and p99)
// while the hub ingests 1,000 tills' traffic and changes a campaign every
// minute". One real hub in-process (catalog, ledger, embedded broker,
// ingest, HTTP API); PUNCHCARD_BENCH_TILLS registered tills (default
// 1000, each a snapshot announcement target), of which
// PUNCHCARD_BENCH_SENDERS (default 100) are real MQTT clients that
// together send the traffic of all of them: 1 redemption per till per 10 s,
// as batches of 1-2 redemptions of codes from a pool of 20,000 multi-use
// codes, 10,000 of them used before the run; a campaign changed through
// the HTTP API every PUNCHCARD_BENCH_CHANGE_EVERY (default 10 s, scaled
// down from 1 min so that a run of a minute sees several). The measured
// till is a real agent (SQLite, sync client): it sells a multi-use code
// every PUNCHCARD_BENCH_SALE_EVERY (default 20 ms, far busier than a real
// till, yet its own traffic stays small next to the load's) in rounds of
// PUNCHCARD_BENCH_PHASE (default 4 s) online, then the same till offline
// (sync client closed), alternating, 3 rounds each. It reports p50 and p99
// of each and their ratios.
func BenchmarkTillOnlineVsOffline(b *testing.B) {
	tills := envInt("PUNCHCARD_BENCH_TILLS", 1000)
	senders := min(envInt("PUNCHCARD_BENCH_SENDERS", 100), tills)
	changeEvery := envDur("PUNCHCARD_BENCH_CHANGE_EVERY", 10*time.Second)
	phase := envDur("PUNCHCARD_BENCH_PHASE", 4*time.Second)
	saleEvery := envDur("PUNCHCARD_BENCH_SALE_EVERY", 20*time.Millisecond)
	const pool, preUsed, rounds = 20_000, 10_000, 3
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	var on, off []time.Duration
	var sent, fetches, journal, conflicts atomic.Int64
	for range b.N {
		h, err := hub.Open(ctx, hub.Options{DataDir: b.TempDir(), HTTPAddr: "127.0.0.1:0", MQTTAddr: "127.0.0.1:0", MetricsAddr: "-",
			BootstrapKey: testKey, Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- h.Run(rctx) }()
		c := h.Catalog
		if _, err := c.CreateTenant(ctx, catalog.System, catalog.Tenant{ID: "acme", Name: "Acme", Currency: "EUR"}); err != nil {
			b.Fatal(err)
		}
		if _, err := c.RotateSigningKey(ctx, catalog.System, "acme"); err != nil {
			b.Fatal(err)
		}
		for _, doc := range []string{
			`{"schema":1,"id":"multi","tenant":"acme","status":"active","currency":"EUR","reward":{"kind":"percent_off","percent_bp":1000}}`,
			`{"schema":1,"id":"other","tenant":"acme","status":"active","currency":"EUR","reward":{"kind":"percent_off","percent_bp":500}}`,
		} {
			if _, err := c.CreateCampaign(ctx, catalog.System, "acme", []byte(doc)); err != nil {
				b.Fatal(err)
			}
		}
		printed, err := c.GenerateCodes(ctx, catalog.System, "acme", "multi", catalog.GenerateRequest{Count: pool, CodeSpec: catalog.CodeSpec{Uses: -1}})
		if err != nil {
			b.Fatal(err)
		}
		keys := make([]protocol.CodeID, len(printed))
		for i, p := range printed {
			keys[i] = protocol.CodeID(codes.Normalize(p))
		}
		secrets := make([]string, tills+1)
		for i := range tills + 1 {
			if _, secrets[i], err = c.RegisterAgent(ctx, catalog.System, catalog.Agent{Tenant: "acme", ID: protocol.AgentID(fmt.Sprintf("till-%d", i)),
				Store: snapshot.Store{ID: protocol.StoreID(fmt.Sprintf("s%d", i/5)), TimeZone: "Europe/Berlin"}}); err != nil {
				b.Fatal(err)
			}
		}
		version, _ := c.Version(ctx, "acme")
		// 10,000 codes used before the run (by till-1, through the
		// ledger's apply path).
		now := time.Now()
		for i := 0; i < preUsed; i += 500 {
			var rs []protocol.Redemption
			for j := i; j < i+500; j++ {
				rs = append(rs, benchFact("till-1", "s0", uint64(j+1), keys[j], version, now))
			}
			if _, _, err := h.Ledger.ApplyBatch(ctx, "acme", "till-1", rs); err != nil {
				b.Fatal(err)
			}
		}
		seqBase := uint64(preUsed)

		// The measured till: till-0, a real agent with its sync client.
		db, err := agentdb.Open(ctx, filepath.Join(b.TempDir(), "agent.db"), agentdb.Options{})
		if err != nil {
			b.Fatal(err)
		}
		a, err := agent.New(ctx, "acme", "till-0", db)
		if err != nil {
			b.Fatal(err)
		}
		a.Logger = quiet
		hubKey, err := c.HubPublicKey(ctx)
		if err != nil {
			b.Fatal(err)
		}
		connect := func() *uplink.Client {
			cl, err := uplink.New(uplink.Options{Tenant: "acme", Agent: "till-0", BrokerURL: h.Broker.URL(), HubURL: h.HTTPURL(),
				Secret: secrets[0], HubKey: hubKey, Logger: slog.New(countHandler{&fetches})}, a, db)
			if err != nil {
				b.Fatal(err)
			}
			a.SetLink(cl)
			for !cl.Online() || !a.Synced() {
				time.Sleep(10 * time.Millisecond)
			}
			return cl
		}
		cl := connect()

		// The load: senders publishing for all tills; a campaign change
		// every changeEvery through the API.
		lctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		var curVersion atomic.Uint64
		curVersion.Store(version)
		period := time.Duration(float64(10*time.Second) * float64(senders) / float64(tills))
		for i := 1; i <= senders; i++ {
			ag := protocol.AgentID(fmt.Sprintf("till-%d", i))
			o := paho.NewClientOptions().AddBroker(h.Broker.URL()).SetClientID("acme/" + string(ag)).SetUsername("acme/" + string(ag)).
				SetPassword(secrets[i]).SetProtocolVersion(4).SetAutoReconnect(false)
			mc := paho.NewClient(o)
			if tok := mc.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				b.Fatal("connect", tok.Error())
			}
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				defer mc.Disconnect(50)
				rng := rand.New(rand.NewPCG(uint64(i), 7))
				seq := uint64(0)
				if i == 1 {
					seq = seqBase
				}
				t := time.NewTicker(period)
				defer t.Stop()
				time.Sleep(time.Duration(rng.Int64N(int64(period))))
				for {
					select {
					case <-lctx.Done():
						return
					case <-t.C:
					}
					n := 1 + rng.IntN(2)
					var rs []protocol.Redemption
					for range n {
						seq++
						rs = append(rs, benchFact(ag, protocol.StoreID(fmt.Sprintf("s%d", i/5)), seq, keys[rng.IntN(len(keys))], curVersion.Load(), time.Now()))
					}
					payload, err := protocol.EncodeMessage(protocol.MsgBatch, "acme", ag, strconv.FormatUint(seq, 10), 0, protocol.Batch{Redemptions: rs})
					if err != nil {
						panic(err)
					}
					mc.Publish(protocol.UpTopic("acme", ag), 1, false, payload).Wait()
					sent.Add(int64(n))
				}
			}(i)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(changeEvery)
			defer t.Stop()
			for k := 0; ; k++ {
				select {
				case <-lctx.Done():
					return
				case <-t.C:
				}
				doc := fmt.Sprintf(`{"schema":1,"id":"other","tenant":"acme","status":"active","currency":"EUR","reward":{"kind":"percent_off","percent_bp":%d}}`, 500+k%100)
				req, _ := http.NewRequest(http.MethodPut, h.HTTPURL()+"/v1/tenants/acme/campaigns/other", strings.NewReader(doc))
				req.Header.Set("Authorization", "Bearer "+testKey)
				req.Header.Set("Content-Type", "application/json")
				if resp, err := http.DefaultClient.Do(req); err == nil {
					resp.Body.Close()
				}
				if v, err := c.Version(ctx, "acme"); err == nil {
					curVersion.Store(v)
				}
			}
		}()

		sale := 0
		sell := func(into *[]time.Duration) {
			end := time.Now().Add(phase)
			tick := time.NewTicker(saleEvery)
			defer tick.Stop()
			for time.Now().Before(end) {
				<-tick.C
				sale++
				t0 := time.Now()
				_, err := a.Redeem(ctx, agent.RedeemRequest{TxnID: fmt.Sprintf("sale-%d", sale), Basket: agent.Basket{
					Order:       protocol.Order{ID: fmt.Sprintf("o%d", sale), Currency: "EUR", Lines: []protocol.Line{{SKU: "sku-1", Category: "food", Quantity: 1, UnitPrice: 10_00}}},
					Redeemables: []agent.Input{{Code: printed[sale%len(printed)]}}}})
				if err != nil {
					b.Fatalf("sale %d: %v", sale, err)
				}
				*into = append(*into, time.Since(t0))
			}
		}
		b.ResetTimer()
		for range rounds {
			sell(&on)
			cl.Close()
			a.SetLink(nil)
			sell(&off)
			cl = connect()
		}
		b.StopTimer()
		stop()
		wg.Wait()
		// What the hub did with the load: its journal rows and conflicts.
		if m, err := h.Ledger.JournalMark(ctx); err == nil {
			journal.Add(m)
		}
		if cs, err := h.Ledger.Conflicts(ctx, "acme", 0, 100_000); err == nil {
			conflicts.Add(int64(len(cs)))
		}
		cl.Close()
		db.Close()
		cancel()
		<-done
	}
	p := func(l []time.Duration, q float64) float64 {
		slices.Sort(l)
		return float64(l[int(float64(len(l)-1)*q)].Microseconds()) / 1000
	}
	onP50, onP99, offP50, offP99 := p(on, 0.5), p(on, 0.99), p(off, 0.5), p(off, 0.99)
	b.ReportMetric(onP50, "online-p50-ms")
	b.ReportMetric(onP99, "online-p99-ms")
	b.ReportMetric(offP50, "offline-p50-ms")
	b.ReportMetric(offP99, "offline-p99-ms")
	b.ReportMetric(onP50/offP50, "ratio-p50")
	b.ReportMetric(onP99/offP99, "ratio-p99")
	b.ReportMetric(float64(len(on)+len(off))/float64(b.N), "sales/op")
	b.ReportMetric(float64(sent.Load())/float64(b.N), "load-redemptions/op")
	b.ReportMetric(float64(fetches.Load())/float64(b.N), "snapshot-applies/op")
	b.ReportMetric(float64(journal.Load())/float64(b.N), "hub-journal-rows/op")
	b.ReportMetric(float64(conflicts.Load())/float64(b.N), "hub-conflicts/op")
}

// countHandler counts the sync client's "sync: snapshot" lines at Info
// (one per snapshot or delta applied, not 304s) and discards everything.
type countHandler struct{ n *atomic.Int64 }

func (h countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "sync: snapshot" && r.Level == slog.LevelInfo {
		h.n.Add(1)
	}
	return nil
}
func (h countHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countHandler) WithGroup(string) slog.Handler      { return h }
