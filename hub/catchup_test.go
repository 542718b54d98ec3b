package hub_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/punchcard/punchcard/agent"
	"github.com/punchcard/punchcard/agent/uplink"
	"github.com/punchcard/punchcard/hub"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/rules"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/store"
	"github.com/punchcard/punchcard/store/agentdb"
	"github.com/punchcard/punchcard/store/catalog"
	"github.com/punchcard/punchcard/store/ledger"
	"github.com/punchcard/punchcard/store/ledger/ledgertest"
)

// catchupTill is the till whose backlog drains.
const catchupTill protocol.AgentID = "till-1"

// chain sets up a store chain on h's catalog, as the ledger's
// re-derivation benchmark does: an automatic promotion, a percent code, an
// amount code, a points program and campaigns that never apply, and the
// till catchupTill. It returns the till's secret and the rules version.
func chain(tb testing.TB, h *hub.Hub) (string, uint64) {
	tb.Helper()
	ctx := context.Background()
	cat := h.Catalog
	if _, err := cat.CreateTenant(ctx, catalog.System, catalog.Tenant{ID: "acme", Name: "Acme", Currency: "EUR"}); err != nil {
		tb.Fatal(err)
	}
	_, secret, err := cat.RegisterAgent(ctx, catalog.System, catalog.Agent{Tenant: "acme", ID: catchupTill,
		Store: snapshot.Store{ID: "store-1", TimeZone: "Europe/Berlin"}})
	if err != nil {
		tb.Fatal(err)
	}
	docs := []string{
		`{"schema":1,"id":"auto3","tenant":"acme","status":"active","currency":"EUR","trigger":"auto","reward":{"kind":"amount_off","amount":300},"eligibility":{"min_subtotal":5000}}`,
		`{"schema":1,"id":"summer","tenant":"acme","status":"active","currency":"EUR","reward":{"kind":"percent_off","percent_bp":1000}}`,
		`{"schema":1,"id":"five","tenant":"acme","status":"active","currency":"EUR","reward":{"kind":"amount_off","amount":500},"eligibility":{"min_subtotal":2000}}`,
		`{"schema":1,"id":"loyal","tenant":"acme","status":"active","currency":"EUR","reward":{"kind":"points","points":{"earn":[{"id":"spend","on":"spend","per_amount":100,"milli_points":1000}]}}}`,
	}
	for i := range 8 {
		docs = append(docs, fmt.Sprintf(`{"schema":1,"id":"other%d","tenant":"acme","status":"active","currency":"EUR","trigger":"auto","reward":{"kind":"percent_off","percent_bp":500},"eligibility":{"min_subtotal":%d}}`, i, 1_000_000_00+i))
	}
	for _, d := range docs {
		if _, err := cat.CreateCampaign(ctx, catalog.System, "acme", []byte(d)); err != nil {
			tb.Fatal(err)
		}
	}
	for _, c := range []struct {
		camp protocol.CampaignID
		code string
	}{{"summer", "SUMMER10"}, {"five", "FIVE"}} {
		if _, err := cat.ImportCodes(ctx, catalog.System, "acme", c.camp, []string{c.code}, catalog.CodeSpec{Uses: -1}); err != nil {
			tb.Fatal(err)
		}
	}
	tn, err := cat.Tenant(ctx, "acme")
	if err != nil {
		tb.Fatal(err)
	}
	return secret, tn.Version
}

// honestBacklog is n facts of catchupTill's offline sales, decided by the
// rules engine on the catalog's version v as the till decides them: a
// code on two sales of three, the automatic promotion when the basket
// reaches it, points for the customers of half the sales (1,000 of them).
func honestBacklog(tb testing.TB, cat *catalog.Catalog, v uint64, n int) []protocol.Redemption {
	tb.Helper()
	ctx := context.Background()
	rc, ok, err := cat.RulesAt(ctx, "acme", v)
	if err != nil || !ok {
		tb.Fatalf("rules at %d: %v %v", v, ok, err)
	}
	st, _, err := cat.AgentStore(ctx, "acme", catchupTill)
	if err != nil {
		tb.Fatal(err)
	}
	out := make([]protocol.Redemption, 0, n)
	at := time.Now().Add(-time.Hour)
	for i := 0; len(out) < n; i++ {
		lines := []protocol.Line{
			{SKU: rules.CompactPlaceholder, Quantity: 1, UnitPrice: int64(10_00 + i%40*100)},
			{SKU: rules.CompactPlaceholder, Quantity: int64(1 + i%3), UnitPrice: 4_99},
			{SKU: rules.CompactPlaceholder, Quantity: 2, UnitPrice: int64(1_00 + i%7*50)},
		}
		s := &protocol.Sale{Lines: lines, At: at.UnixMilli()}
		var cust protocol.CustomerID
		if i%2 == 0 {
			cust = protocol.CustomerID(fmt.Sprintf("cust-%d", i%1000))
			s.Customer = &protocol.Customer{ID: cust}
		}
		req := rules.Request{Tenant: "acme", Order: protocol.Order{Currency: "EUR", Lines: lines}, Customer: s.Customer, Store: st, Now: at}
		switch i % 3 {
		case 0:
			s.Presented = []protocol.Presented{{Kind: protocol.PresentedCode, Code: "SUMMER10"}}
			req.Redeemables = []rules.Redeemable{{Kind: rules.RedeemCode, Code: "SUMMER10", Campaign: "summer"}}
		case 1:
			s.Presented = []protocol.Presented{{Kind: protocol.PresentedCode, Code: "FIVE"}}
			req.Redeemables = []rules.Redeemable{{Kind: rules.RedeemCode, Code: "FIVE", Campaign: "five"}}
		}
		d := rules.Evaluate(rc.Cat, req)
		if d.Error != nil {
			tb.Fatal(d.Error)
		}
		fact := func() protocol.Redemption {
			return protocol.Redemption{ID: protocol.RedemptionID{Agent: catchupTill, Seq: uint64(len(out) + 1)}, Tenant: "acme", Store: st.ID,
				TxnID: "txn-" + strconv.Itoa(i), Customer: cust, Currency: "EUR", OrderTot: d.Subtotal, HLC: ledger.HLCFromTime(at),
				Offline: true, Snapshot: v, Sale: s}
		}
		for _, res := range d.Results {
			if res.Applied && len(out) < n {
				r := fact()
				r.Kind, r.Campaign, r.Code, r.Discount = protocol.KindRedeem, res.Campaign, res.Code, res.Discount
				out = append(out, r)
			}
		}
		for _, e := range d.Earnings {
			if len(out) < n {
				r := fact()
				r.Kind, r.Campaign, r.Points = protocol.KindEarn, e.Campaign, e.Points
				out = append(out, r)
			}
		}
	}
	return out
}

// tillWithBacklog writes facts into a fresh till database's outbox, as the
// till's sales would have left them while it was offline.
func tillWithBacklog(tb testing.TB, facts []protocol.Redemption) string {
	tb.Helper()
	ctx := context.Background()
	path := filepath.Join(tb.TempDir(), "agent.db")
	db, err := agentdb.Open(ctx, path, agentdb.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	db.Close()
	raw, err := store.Open(ctx, path, store.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	defer raw.Close()
	tx, err := raw.BeginTx(ctx, nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer tx.Rollback()
	ins, err := tx.PrepareContext(ctx, `INSERT INTO outbox (seq, campaign, risk, body) VALUES (?, ?, 0, ?)`)
	if err != nil {
		tb.Fatal(err)
	}
	for _, f := range facts {
		body, err := protocol.EncMode.Marshal(f)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := ins.ExecContext(ctx, f.ID.Seq, string(f.Campaign), body); err != nil {
			tb.Fatal(err)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE agent_state SET next_seq = ? WHERE id = 1`, len(facts)+1); err != nil {
		tb.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		tb.Fatal(err)
	}
	return path
}

// drainer is a till with a backlog, syncing with a hub.
type drainer struct {
	db     *agentdb.DB
	client *uplink.Client
}

// startDrain opens the till at path and starts its real sync client
// against h, through the hub's embedded broker, with its own credentials.
func startDrain(tb testing.TB, h *hub.Hub, path, secret string, tweak func(*uplink.Options)) *drainer {
	tb.Helper()
	ctx := context.Background()
	db, err := agentdb.Open(ctx, path, agentdb.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	a, err := agent.New(ctx, "acme", catchupTill, db)
	if err != nil {
		tb.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	a.Logger = quiet
	hubKey, err := h.Catalog.HubPublicKey(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	opts := uplink.Options{Tenant: "acme", Agent: catchupTill, BrokerURL: h.Broker.URL(), HubURL: "http://" + h.HTTPAddr(),
		Secret: secret, HubKey: hubKey, HTTPRetries: 1, Logger: quiet}
	if tweak != nil {
		tweak(&opts)
	}
	c, err := uplink.New(opts, a, db)
	if err != nil {
		db.Close()
		tb.Fatal(err)
	}
	a.SetLink(c)
	d := &drainer{db: db, client: c}
	tb.Cleanup(d.close)
	return d
}

func (d *drainer) close() {
	if d.client != nil {
		d.client.Close()
		d.db.Close()
		d.client = nil
	}
}

// drained waits until the outbox is empty and the hub's watermark covers
// all n facts. It polls (no deadline but the test's own): first the hub's
// watermark, an indexed read, then the till's state, whose outbox count
// scans the outbox and would otherwise compete with the drain.
func (d *drainer) drained(tb testing.TB, h *hub.Hub, n int) {
	tb.Helper()
	ctx := context.Background()
	for {
		s, err := h.Ledger.Agent(ctx, "acme", catchupTill)
		if err != nil {
			tb.Fatal(err)
		}
		if s.Watermark == uint64(n) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for {
		st, err := d.db.State(ctx)
		if err != nil {
			tb.Fatal(err)
		}
		if st.OutboxDepth == 0 && st.AckedWatermark == uint64(n) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkAppliedOnce: the ledger holds every fact once and balances.
func checkAppliedOnce(tb testing.TB, h *hub.Hub, n int) {
	tb.Helper()
	ctx := context.Background()
	s, err := h.Ledger.Agent(ctx, "acme", catchupTill)
	if err != nil {
		tb.Fatal(err)
	}
	if s.Watermark != uint64(n) {
		tb.Fatalf("hub watermark = %d, want %d", s.Watermark, n)
	}
	rep, err := h.Ledger.Verify(ctx)
	if err != nil || !rep.OK() {
		tb.Fatalf("verify = %+v, %v", rep, err)
	}
	if rep.Entries != int64(n) {
		tb.Fatalf("ledger entries = %d, want %d (each fact once)", rep.Entries, n)
	}
}

// catchupSize is the backlog of TestCatchUp; -short and the race
// detector take a tenth.
func catchupSize() int {
	if testing.Short() || raceDetector {
		return 5_000
	}
	return 50_000
}

// TestCatchUp: a till back online with a large backlog drains it through
// the real embedded broker into the real ledger, every fact applied once,
// and the hub does at most maxCatchUpWork times the backlog's work
// (redemptions received, repeats included): on the original client acks went unread
// while it published, and it published its whole backlog again after 5 s
// without progress (5.8 times the backlog). Condition-based: it waits for
// the drain, never on a clock.
func TestCatchUp(t *testing.T) {
	n := catchupSize()
	h := MustRun(t)
	secret, v := chain(t, h)
	path := tillWithBacklog(t, honestBacklog(t, h.Catalog, v, n))
	d := startDrain(t, h, path, secret, nil)
	d.drained(t, h, n)
	checkAppliedOnce(t, h, n)
	work := h.Ingest.Stats().Redemptions
	t.Logf("backlog %d, hub work %d (%.3fx), published %d, acks %d", n, work, float64(work)/float64(n), d.client.Published.Load(), d.client.Acks.Load())
	if float64(work) > maxCatchUpWork*float64(n) {
		t.Fatalf("hub work %d for a backlog of %d: more than %.1fx", work, n, maxCatchUpWork)
	}
}

// maxCatchUpWork bounds the hub's work per backlog fact in the catch-up
// tests. The target, 1.1x, is measured by make bench-catchup; a
// test shares a loaded machine, where a hub that stalls past a batch's
// ack timeout legitimately gets that batch again (one full run under
// -race at load 40-50 saw 1.154x). 1.5x still fails the defect the tests
// pin (the whole backlog re-sent: 5.8x).
const maxCatchUpWork = 1.5

// TestCatchUpLosses: batches lost on the way to the hub and Acks lost on
// the way back (the last one included) still drain, and only what timed
// out is published again: the hub's extra work is a few batches, not the
// backlog.
func TestCatchUpLosses(t *testing.T) {
	const n = 5_000
	h := MustRun(t)
	secret, v := chain(t, h)
	path := tillWithBacklog(t, honestBacklog(t, h.Catalog, v, n))
	var lostBatches, lostAcks, acks atomic.Int64
	// Lose, once each, the batch starting at seq 1001 (mid-backlog: the hub
	// sees a gap and asks for it) and the last batch (no gap: only the
	// timeout brings it back), and every third Ack. The functions run on
	// the client's goroutines.
	var mu gosync.Mutex
	lost := map[uint64]bool{1001: true, n - 99: true}
	faults := uplink.Faults{DropPublish: func(first uint64) bool {
		mu.Lock()
		defer mu.Unlock()
		if lost[first] {
			delete(lost, first)
			lostBatches.Add(1)
			return true
		}
		return false
	}, DropDown: func(env protocol.Envelope) bool {
		if env.Type == protocol.MsgAck && acks.Add(1)%3 == 0 {
			lostAcks.Add(1)
			return true
		}
		return false
	}}
	d := startDrain(t, h, path, secret, func(o *uplink.Options) { o.BatchSize, o.Window, o.Faults = 100, 8, faults })
	d.drained(t, h, n)
	checkAppliedOnce(t, h, n)
	work := h.Ingest.Stats().Redemptions
	t.Logf("backlog %d, lost %d batches and %d acks, hub work %d (%.3fx), resends asked %d", n, lostBatches.Load(), lostAcks.Load(), work,
		float64(work)/float64(n), h.Ingest.Stats().Resends)
	if lostBatches.Load() != 2 || lostAcks.Load() == 0 {
		t.Fatalf("lost %d batches and %d acks: the test lost nothing", lostBatches.Load(), lostAcks.Load())
	}
	if float64(work) > maxCatchUpWork*float64(n) {
		t.Fatalf("hub work %d for a backlog of %d: more than %.1fx", work, n, maxCatchUpWork)
	}
}

// BenchmarkCatchUp drains one till's backlog of PUNCHCARD_CATCHUP facts
// (default 50,000; make bench-catchup sets 1,000,000) with a window of
// PUNCHCARD_CATCHUP_WINDOW batches (default uplink.DefaultWindow) end to end: the real
// sync client, the embedded broker, the hub's ingest and ledger with the
// re-derivation of every fact. One op is one whole drain. Same run
// baseline: the same facts applied directly with Ledger.ApplyBatches on a
// second hub set up the same way, in the messages and transactions
// ingest makes (DefaultBatchSize facts per message, 64 messages per
// transaction). ratio = catch-up redemptions/s ÷ baseline facts/s;
// hub-work = redemptions the hub received ÷ backlog. cpu-s/drain is the
// CPU time of the whole process (till and hub) during the drain and
// base-cpu-s the baseline's: on a machine shared with other work the wall
// times stretch, while cpu-s/drain ÷ 2 bounds from below what the drain
// takes on an idle 2-core machine. PUNCHCARD_BENCH_STMTS=1 prints the
// drain's statements, executions and wall time a fact (dumpStatements).
func BenchmarkCatchUp(b *testing.B) {
	n := 50_000
	if s := os.Getenv("PUNCHCARD_CATCHUP"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	window := uplink.DefaultWindow
	if s := os.Getenv("PUNCHCARD_CATCHUP_WINDOW"); s != "" {
		var err error
		if window, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	var secs, rate, base, work, cpu, baseCPU []float64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		h := MustRun(b)
		secret, v := chain(b, h)
		facts := honestBacklog(b, h.Catalog, v, n)
		path := tillWithBacklog(b, facts)
		b.StartTimer()
		t0, c0 := time.Now(), ledgertest.CPUTime()
		stop := profileRedeems(b) // PUNCHCARD_BENCH_PROFILE: the drain alone
		counting := os.Getenv("PUNCHCARD_BENCH_STMTS") != ""
		h.Ledger.CountStatements(counting)
		d := startDrain(b, h, path, secret, func(o *uplink.Options) { o.Window = window })
		d.drained(b, h, n)
		el := time.Since(t0)
		stop()
		if counting { // PUNCHCARD_BENCH_STMTS: the drain's statements a fact
			h.Ledger.CountStatements(false)
			dumpStatements(h.Ledger.StatementCounts(), int64(n), "fact")
		}
		cpu = append(cpu, (ledgertest.CPUTime() - c0).Seconds())
		b.StopTimer()
		d.close()
		checkAppliedOnce(b, h, n)
		secs = append(secs, el.Seconds())
		rate = append(rate, float64(n)/el.Seconds())
		work = append(work, float64(h.Ingest.Stats().Redemptions)/float64(n))

		// Baseline: the ledger alone on the same facts.
		h2 := MustRun(b)
		if _, v2 := chain(b, h2); v2 != v {
			b.Fatalf("baseline rules version %d, catch-up %d", v2, v)
		}
		ctx := context.Background()
		per := protocol.DefaultBatchSize
		t1, c1 := time.Now(), ledgertest.CPUTime()
		for from := 0; from < n; from += 64 * per {
			var bs []ledger.Batch
			for j := from; j < min(from+64*per, n); j += per {
				bs = append(bs, ledger.Batch{Tenant: "acme", Agent: catchupTill, Redemptions: facts[j:min(j+per, n)]})
			}
			if _, err := h2.Ledger.ApplyBatches(ctx, bs); err != nil {
				b.Fatal(err)
			}
		}
		base = append(base, float64(n)/time.Since(t1).Seconds())
		baseCPU = append(baseCPU, (ledgertest.CPUTime() - c1).Seconds())
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(median(secs), "s/drain")
	b.ReportMetric(median(rate), "redemptions/s")
	b.ReportMetric(median(base), "ledger-facts/s")
	b.ReportMetric(median(rate)/median(base), "ratio")
	b.ReportMetric(median(work), "hub-work")
	b.ReportMetric(median(cpu), "cpu-s/drain")
	b.ReportMetric(median(baseCPU), "base-cpu-s")
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
