package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/punchcard/punchcard/agent"
	"github.com/punchcard/punchcard/agent/agenttest"
	"github.com/punchcard/punchcard/hub"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/store/catalog"
)

// runHub opens the whole hub (catalog, ledger, embedded broker, ingest,
// HTTP API) in-process on loopback, with tenant acme, agent till-1 in store
// berlin-1, a limited 10% campaign with code SUMMER10, a 5.00 campaign
// for tokens and a loyalty program (1 point per 1.00 after discounts). It returns the hub and the agent's secret.
func runHub(t *testing.T) (*hub.Hub, string) {
	t.Helper()
	return runHubWith(t, nil)
}

// runHubWith is runHub with the hub's options changed by edit (when set).
func runHubWith(t *testing.T, edit func(*hub.Options)) (*hub.Hub, string) {
	t.Helper()
	ctx := context.Background()
	opts := hub.Options{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", MQTTAddr: "127.0.0.1:0", MetricsAddr: "-",
		BootstrapKey: "bootstrap-key-for-agent-tests-0123456789", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if edit != nil {
		edit(&opts)
	}
	h, err := hub.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(rctx) }()
	t.Cleanup(func() { cancel(); <-done })
	c := h.Catalog
	if _, err := c.CreateTenant(ctx, catalog.System, catalog.Tenant{ID: agenttest.Tenant, Name: "Acme", Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RotateSigningKey(ctx, catalog.System, agenttest.Tenant); err != nil {
		t.Fatal(err)
	}
	_, secret, err := c.RegisterAgent(ctx, catalog.System, catalog.Agent{Tenant: agenttest.Tenant, ID: agenttest.Agent,
		Store: snapshot.Store{ID: agenttest.StoreID, TimeZone: "Europe/Berlin"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range []string{
		`{"schema":1,"id":"summer","tenant":"acme","status":"active","currency":"EUR","reward":{"kind":"percent_off","percent_bp":1000},"limits":{"max_redemptions":100000}}`,
		`{"schema":1,"id":"five","tenant":"acme","status":"active","currency":"EUR","reward":{"kind":"amount_off","amount":500}}`,
		`{"schema":1,"id":"loyal","tenant":"acme","status":"active","currency":"EUR","reward":{"kind":"points","points":{"earn":[{"id":"spend","on":"spend","per_amount":100,"milli_points":1000}]}}}`,
	} {
		if _, err := c.CreateCampaign(ctx, catalog.System, agenttest.Tenant, []byte(doc)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.ImportCodes(ctx, catalog.System, agenttest.Tenant, "summer", []string{agenttest.CodeSummer}, catalog.CodeSpec{Uses: -1}); err != nil {
		t.Fatal(err)
	}
	return h, secret
}

// hubKeyOf is the hub's public key as registration gives it to an agent.
func hubKeyOf(t testing.TB, h *hub.Hub) string {
	t.Helper()
	pub, err := h.Catalog.HubPublicKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return protocol.FormatHubKey(pub)
}

// TestWithHub runs the agent process against the real hub in-process:
// first sync over HTTP, allowance granted by the ledger on demand, a token
// issued by the hub and verified offline by the agent, a rollback, the
// outbox reconciled into the ledger; then SIGKILLs mid-stream with the
// ledger checked exactly once and its balances recomputed from the journal.
func TestWithHub(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills processes")
	}
	ctx := context.Background()
	bin := buildAgent(t)
	t.Run("OK", func(t *testing.T) {
		h, secret := runHub(t)
		start := func(dataDir string) *proc {
			return startProcAs(t, bin, dataDir, h.Broker.URL(), "http://"+h.HTTPAddr(), secret, hubKeyOf(t, h))
		}
		p := start(t.TempDir())
		waitFor(t, "first sync", func() bool { st := p.status(t); return st.SnapshotVersion > 0 && st.Online })
		// The limited campaign needs an allowance: the agent asks the hub.
		if _, ok, err := p.redeemCode("H1", "summer-10"); err != nil || !ok {
			t.Fatalf("redeem with allowance top-up: %v %v", ok, err)
		}
		tok, err := h.Catalog.IssueToken(ctx, catalog.System, agenttest.Tenant, catalog.TokenRequest{Campaign: "five"})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok, err := p.redeemCode("H2", strings.ToLower(tok.Text)+"\r\n"); err != nil || !ok {
			t.Fatalf("redeem hub token: %v %v", ok, err)
		}
		if _, ok, err := p.redeemCode("H3", tok.Text); err == nil || ok || !strings.Contains(err.Error(), string(protocol.CodeCodeUsed)) {
			t.Fatalf("single-use token twice: %v %v", ok, err)
		}
		resp, err := p.do(http.MethodPost, "/v1/rollback", strings.NewReader(`{"txn_id":"H2"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("rollback: %d", resp.StatusCode)
		}
		waitFor(t, "outbox drained", func() bool { return p.status(t).OutboxDepth == 0 })
		b, err := h.Ledger.Campaign(ctx, agenttest.Tenant, "five")
		if err != nil {
			t.Fatal(err)
		}
		if b.Count != 0 {
			t.Fatalf("rolled-back token still counts: %+v", b)
		}
		var st agent.Status
		r, _ := p.do(http.MethodGet, "/v1/status", nil)
		json.NewDecoder(r.Body).Decode(&st)
		r.Body.Close()
		if st.LastAckAt == nil || st.AckedWatermark != st.LastSeq {
			t.Fatalf("status after sync: %+v", st)
		}
		p.cmd.Process.Kill()
		p.cmd.Wait()
	})
	t.Run("KillMidStream", func(t *testing.T) {
		h, secret := runHub(t)
		start := func(dataDir string) *proc {
			return startProcAs(t, bin, dataDir, h.Broker.URL(), "http://"+h.HTTPAddr(), secret, hubKeyOf(t, h))
		}
		acked, kills := streamWithKills(t, start, agenttest.CodeSummer, 4)
		time.Sleep(100 * time.Millisecond)
		verifyLedger(t, h.Ledger.DB(), acked, kills)
		rep, err := h.Ledger.Verify(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Diffs) != 0 {
			t.Fatalf("ledger balances differ from the journal: %+v", rep.Diffs)
		}
		// The agent stayed within its allowances: no overrun conflicts.
		cs, err := h.Ledger.Conflicts(ctx, agenttest.Tenant, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) != 0 {
			t.Fatalf("conflicts: %+v", cs)
		}
	})
}

// TestSyncFixes runs the demo author's findings against the real hub.
func TestSyncFixes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs processes")
	}
	ctx := context.Background()
	bin := buildAgent(t)
	t.Run("OfflineBeforeFirstSale", func(t *testing.T) {
		// A fresh till syncs, is cut off before its first sale of the
		// limited campaign, and still sells it within its allowance.
		h, secret := runHub(t)
		dir := t.TempDir()
		p := startProcAs(t, bin, dir, h.Broker.URL(), "http://"+h.HTTPAddr(), secret, hubKeyOf(t, h))
		waitFor(t, "allowance taken at sync", func() bool {
			for _, al := range p.status(t).Allowances {
				if al.Campaign == "summer" && al.Count > 0 {
					return true
				}
			}
			return false
		})
		p.cmd.Process.Kill()
		p.cmd.Wait()
		off := startProcAs(t, bin, dir, "", "", secret, hubKeyOf(t, h))
		if st := off.status(t); st.Online {
			t.Fatalf("not cut off: %+v", st)
		}
		if _, ok, err := off.redeemCode("OFF1", agenttest.CodeSummer); err != nil || !ok {
			t.Fatalf("offline redeem of a limited campaign: %v %v", ok, err)
		}
	})
	t.Run("PointsOnDiscountedBasket", func(t *testing.T) {
		h, secret := runHub(t)
		p := startProcAs(t, bin, t.TempDir(), h.Broker.URL(), "http://"+h.HTTPAddr(), secret, hubKeyOf(t, h))
		waitFor(t, "first sync", func() bool { st := p.status(t); return st.SnapshotVersion > 0 && st.Online && !st.NeverSynced })
		cust := &protocol.Customer{ID: "cust-1"}
		b := agent.Basket{Order: agenttest.Order("o-P1", 100_00), Customer: cust, Redeemables: []agent.Input{{Code: agenttest.CodeSummer}}}
		var q agent.Quote
		p.postJSON(t, "/v1/validate", b, &q)
		if q.Error != nil {
			t.Fatalf("validate: %+v", q.Error)
		}
		var rc agent.Receipt
		p.postJSON(t, "/v1/redeem", agent.RedeemRequest{TxnID: "P1", Basket: b}, &rc)
		if q.Points != 90 || rc.Points != q.Points {
			t.Fatalf("quote promised %d points, redeem recorded %d", q.Points, rc.Points)
		}
		var en agent.Receipt // the POS also sends the (undiscounted) order to /earn
		p.postJSON(t, "/v1/earn", agent.EarnRequest{TxnID: "P1", Order: agenttest.Order("o-P1", 100_00), Customer: cust}, &en)
		if en.Points != 90 || !en.Replayed {
			t.Fatalf("earn after redeem: %+v", en)
		}
		waitFor(t, "outbox drained", func() bool { return p.status(t).OutboxDepth == 0 })
		if got, err := h.Ledger.Points(ctx, agenttest.Tenant, cust.ID); err != nil || got != 90 {
			t.Fatalf("ledger points = %d (%v), the quote said 90", got, err)
		}
	})
	t.Run("ReEnrolled", func(t *testing.T) {
		// A till's database is wiped and it comes back under the same id:
		// its new redemptions must not reuse seqs the hub already holds.
		// (Tokens of the unlimited campaign: the old database's allowance
		// is still escrowed at the hub.)
		h, secret := runHub(t)
		token := func() string {
			tok, err := h.Catalog.IssueToken(ctx, catalog.System, agenttest.Tenant, catalog.TokenRequest{Campaign: "five"})
			if err != nil {
				t.Fatal(err)
			}
			return tok.Text
		}
		start := func() *proc {
			return startProcAs(t, bin, t.TempDir(), h.Broker.URL(), "http://"+h.HTTPAddr(), secret, hubKeyOf(t, h))
		}
		p := start()
		waitFor(t, "first sync", func() bool { st := p.status(t); return st.SnapshotVersion > 0 && st.Online })
		for _, txn := range []string{"A1", "A2", "A3"} {
			if _, ok, err := p.redeemCode(txn, token()); err != nil || !ok {
				t.Fatalf("redeem %s: %v %v", txn, ok, err)
			}
		}
		waitFor(t, "outbox drained", func() bool { return p.status(t).OutboxDepth == 0 })
		p.cmd.Process.Kill()
		p.cmd.Wait()
		p = start()
		waitFor(t, "first sync of the fresh database", func() bool { st := p.status(t); return st.SnapshotVersion > 0 && st.Online })
		seq, ok, err := p.redeemCode("B1", token())
		if err != nil || !ok {
			t.Fatalf("redeem after re-enrolment: %v %v", ok, err)
		}
		if seq <= 3 {
			t.Fatalf("re-enrolled agent reused seq %d", seq)
		}
		waitFor(t, "outbox drained", func() bool { return p.status(t).OutboxDepth == 0 })
		b, err := h.Ledger.Campaign(ctx, agenttest.Tenant, "five")
		if err != nil || b.Count != 4 {
			t.Fatalf("ledger count = %+v (%v), want 4: a redemption was dropped as a duplicate", b, err)
		}
	})
}

func (p *proc) postJSON(t *testing.T, url string, in, out any) {
	t.Helper()
	b, _ := json.Marshal(in)
	resp, err := p.do(http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("POST %s: %d %s", url, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		t.Fatal(err)
	}
}
