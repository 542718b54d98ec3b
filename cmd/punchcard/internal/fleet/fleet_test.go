package fleet_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/punchcard/punchcard/cmd/punchcard/internal/fleet"
	"github.com/punchcard/punchcard/hub"
	"github.com/punchcard/punchcard/store"
	"github.com/punchcard/punchcard/store/catalog"
)

const bootstrapKey = "fleet-bootstrap-key-0123456789"

// inProcess is a hub opened in-process on 127.0.0.1:0 in a temp dir, with
// tills tills provisioned.
type inProcess struct {
	h     *hub.Hub
	dir   string
	setup fleet.Setup
}

func startHub(tb testing.TB, tills int, announce time.Duration) *inProcess {
	tb.Helper()
	ctx := context.Background()
	dir := tb.TempDir()
	h, err := hub.Open(ctx, hub.Options{DataDir: dir, HTTPAddr: "127.0.0.1:0", MQTTAddr: "127.0.0.1:0", MetricsAddr: "-",
		BootstrapKey: bootstrapKey, AnnounceInterval: announce, Sync: store.SyncFull, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		tb.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- h.Run(runCtx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Error(err)
		}
	})
	s, err := fleet.Provision(ctx, h.Catalog, "acme", tills, 5, 0)
	if err != nil {
		tb.Fatal(err)
	}
	return &inProcess{h: h, dir: dir, setup: s}
}

func (p *inProcess) fleet(tb testing.TB, o fleet.Options) *fleet.Fleet {
	tb.Helper()
	o.BrokerURL, o.HubURL, o.HubKey, o.Tills = p.h.Broker.URL(), p.h.HTTPURL(), p.setup.HubKey, p.setup.Tills
	f, err := fleet.New(o)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := f.Start(ctx); err != nil {
		f.Close()
		tb.Fatal(err)
	}
	tb.Cleanup(f.Close)
	return f
}

// TestFleet runs 20 tills against an in-process hub: open-loop sales with
// codes, customers and a limited campaign, heartbeats, a campaign change
// in the middle. It checks the harness, not speed: every fact sent is
// acknowledged exactly once and is in the ledger once, no down message
// fails verification, every till sees the new version announced and
// fetches it, and the hub re-derives every fact to the till's effect.
func TestFleet(t *testing.T) {
	p := startHub(t, 20, 100*time.Millisecond)
	f := p.fleet(t, fleet.Options{Heartbeat: 200 * time.Millisecond, Fetch: fleet.FetchAgent,
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	f.SetRate(5) // 5 redemptions per till per second: a short run
	waitFor(t, ctx, f, "60 facts acknowledged", func() bool { return f.Stats().Acked >= 60 })
	c, err := p.h.Catalog.UpdateCampaign(ctx, catalog.System, "acme", fleet.AutoCampaign, fleet.AutoCampaignDoc("acme", 700, 0))
	if err != nil {
		t.Fatal(err)
	}
	// The catalog changed outside the API, which is what announces: say
	// it as the API would.
	if err := p.h.Announce(ctx, "acme", c.Version); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WaitReached(ctx, c.Version, true); err != nil {
		t.Fatal(err)
	}
	acked := f.Stats().Acked
	waitFor(t, ctx, f, "60 more facts on the new rules", func() bool { return f.Stats().Acked >= acked+60 })
	f.SetRate(0)
	if err := f.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	s := f.Stats()
	t.Logf("%+v", s)
	if s.Acked != s.Sent || s.Pending != 0 {
		t.Errorf("acked %d of %d facts, %d pending", s.Acked, s.Sent, s.Pending)
	}
	if s.Rejected != 0 || s.BadAcks != 0 || s.Errors != 0 {
		t.Errorf("rejected %d down messages, %d acks of unsent seqs, %d errors", s.Rejected, s.BadAcks, s.Errors)
	}
	if s.Sent <= s.Sales || s.Sent > 2*s.Sales {
		t.Errorf("%d facts in %d sales: want 1-2 per message, some 2", s.Sent, s.Sales)
	}
	if s.Heartbeats == 0 || s.Grants < int64(s.Tills) || s.Fetches < int64(2*s.Tills) {
		t.Errorf("heartbeats %d, allowance grants %d, fetches %d", s.Heartbeats, s.Grants, s.Fetches)
	}
	// The tills ask for allowance as the agent does, under request ids
	// the hub records with each grant (a simulator without them cost the
	// hub less per grant than a real till).
	if n := p.grantRequests(t); n < int64(s.Tills) || n > s.Grants {
		t.Errorf("hub recorded %d allowance requests with an id; tills got %d answers (%d tills)", n, s.Grants, s.Tills)
	}
	// The hub's side: every fact once, none quarantined, no effect
	// mismatch (the tills decided with the rules the hub re-derives with),
	// code and customers recorded.
	rows, distinct := p.ledgerFacts(t)
	if rows != s.Sent || distinct != s.Sent {
		t.Errorf("ledger holds %d fact rows (%d distinct), tills sent %d", rows, distinct, s.Sent)
	}
	conf, err := p.h.Ledger.Conflicts(ctx, "acme", 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(conf) != 0 {
		t.Errorf("%d conflicts, first %+v", len(conf), conf[0])
	}
	cs, err := p.h.Ledger.CodeStates(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if cs[fleet.Code].Used == 0 {
		t.Errorf("code %s never used: %+v", fleet.Code, cs)
	}
}

// testWriter sends the fleet's warnings to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) { w.t.Log(string(b)); return len(b), nil }

// ledgerFacts counts the tills' facts in the hub's journal, read from its
// SQLite file.
func (p *inProcess) ledgerFacts(tb testing.TB) (rows, distinct int64) {
	tb.Helper()
	p.hubQuery(tb, `SELECT COUNT(*), COUNT(DISTINCT agent || '/' || seq) FROM ledger_journal
		WHERE tenant = ? AND agent LIKE 'till-%' AND seq IS NOT NULL AND entry IN ('redeem', 'earn', 'burn', 'rollback')`,
		[]any{string(p.setup.Tenant)}, &rows, &distinct)
	return rows, distinct
}

// hubQuery scans the one row q reads from the hub's SQLite file into dest.
func (p *inProcess) hubQuery(tb testing.TB, q string, args []any, dest ...any) {
	tb.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(p.dir, hub.DefaultDBName), store.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRowContext(ctx, q, args...).Scan(dest...); err != nil {
		tb.Fatal(err)
	}
}

// grantRequests counts the allowance grants the hub recorded under a
// till's request id.
func (p *inProcess) grantRequests(tb testing.TB) int64 {
	tb.Helper()
	var n int64
	p.hubQuery(tb, `SELECT COUNT(*) FROM ledger_allowance_requests WHERE tenant = ?`, []any{string(p.setup.Tenant)}, &n)
	return n
}

func waitFor(t *testing.T, ctx context.Context, f *fleet.Fleet, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v; %+v", what, ctx.Err(), f.Stats())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
