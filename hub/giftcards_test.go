package hub_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/punchcard/punchcard/agent"
	"github.com/punchcard/punchcard/agent/uplink"
	"github.com/punchcard/punchcard/hub"
	"github.com/punchcard/punchcard/internal/testutil"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/protocol/wire"
	"github.com/punchcard/punchcard/store"
	"github.com/punchcard/punchcard/store/agentdb"
	"github.com/punchcard/punchcard/store/catalog"
	"github.com/punchcard/punchcard/store/ledger"
)

// giftTill is a till of tenant acme on h, with its real sync client.
type giftTill struct {
	a      *agent.Agent
	db     *agentdb.DB
	c      *uplink.Client
	secret string
}

func startGiftTill(t *testing.T, h *hub.Hub, id protocol.AgentID, store protocol.StoreID) *giftTill {
	t.Helper()
	ctx := context.Background()
	_, secret, err := h.Catalog.RegisterAgent(ctx, catalog.System, catalog.Agent{Tenant: "acme", ID: id, Store: snapshot.Store{ID: store, TimeZone: "Europe/Berlin"}})
	if err != nil {
		t.Fatal(err)
	}
	db, err := agentdb.Open(ctx, filepath.Join(t.TempDir(), "agent.db"), agentdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	a, err := agent.New(ctx, "acme", id, db)
	if err != nil {
		t.Fatal(err)
	}
	a.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	g := &giftTill{a: a, db: db, secret: secret}
	g.connect(t, h)
	waitFor(t, "till synced", func() bool { return a.Synced() })
	return g
}

func (g *giftTill) connect(t *testing.T, h *hub.Hub) {
	t.Helper()
	hubKey, err := h.Catalog.HubPublicKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c, err := uplink.New(uplink.Options{Tenant: "acme", Agent: g.a.ID, BrokerURL: h.Broker.URL(), HubURL: "http://" + h.HTTPAddr(),
		Secret: g.secret, HubKey: hubKey, FlushEvery: 20 * time.Millisecond, ResendAfter: 500 * time.Millisecond, PollEvery: 100 * time.Millisecond,
		HTTPRetries: 1, Logger: g.a.Logger}, g.a, g.db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	g.c = c
	g.a.SetLink(c)
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	testutil.Until(t, what, ok)
}

func hubJSON(t *testing.T, h *hub.Hub, method, path string, body, out any) int {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, "http://"+h.HTTPAddr()+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+bootstrapKey)
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(append([]byte(path), b...))
	req.Header.Set("Idempotency-Key", hex.EncodeToString(sum[:]))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode
}

// TestGiftCardSoldOfflineAtTill: a till sells a card while offline and
// spends part of it at once; once it syncs, the hub has the card (its
// catalog code, applied once), another till takes it after its snapshot,
// the web shop spends from it online, a top-up at the second till
// raises it, and the ledger verifies.
func TestGiftCardSoldOfflineAtTill(t *testing.T) {
	ctx := context.Background()
	h := MustRun(t)
	if _, err := h.Catalog.CreateTenant(ctx, catalog.System, catalog.Tenant{ID: "acme", Name: "Acme", Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	doc := `{"schema":1,"id":"gift","tenant":"acme","status":"active","currency":"EUR","reward":{"kind":"gift_card","multi_use":true}}`
	if _, err := h.Catalog.CreateCampaign(ctx, catalog.System, "acme", []byte(doc)); err != nil {
		t.Fatal(err)
	}
	a := startGiftTill(t, h, "till-a", "s1")
	b := startGiftTill(t, h, "till-b", "s2")

	// Till A goes offline and sells a card.
	a.c.Close()
	card, err := a.a.SellCard(ctx, wire.GiftCardSale{TxnID: "sale-1", Campaign: "gift", Amount: 40_00})
	if err != nil || !card.Offline {
		t.Fatalf("offline sale: %+v %v", card, err)
	}
	spend := func(g *giftTill, txn string, amount int64) (*agent.Receipt, error) {
		return g.a.Redeem(ctx, agent.RedeemRequest{TxnID: txn, Basket: agent.Basket{Order: protocol.Order{ID: txn, Currency: "EUR",
			Lines: []protocol.Line{{SKU: "x", Quantity: 1, UnitPrice: 100_00}}}, Redeemables: []agent.Input{{Code: card.Code, Amount: amount}}}})
	}
	if _, err := spend(a, "a-1", 10_00); err != nil {
		t.Fatalf("spend at the selling till, offline: %v", err)
	}
	if _, err := b.a.CardBalance(ctx, card.Code); protocol.ErrorCode(err) != protocol.CodeUnknownCode {
		t.Fatalf("another till knew the card before the sale synced: %v", err)
	}

	// Till A syncs: the hub creates the card; till B takes it.
	a.connect(t, h)
	waitFor(t, "till A's outbox drained", func() bool {
		st, err := a.db.State(ctx)
		return err == nil && st.OutboxDepth == 0 && st.AckedWatermark == 2
	})
	var bal wire.GiftCard
	if st := hubJSON(t, h, "GET", "/v1/tenants/acme/giftcards/"+card.Code, nil, &bal); st != 200 || bal.Balance.Amount != 30_00 {
		t.Fatalf("hub balance: %d %+v", st, bal)
	}
	// Till B takes the card once the hub has it: online with the hub's
	// record of it (agent/fresh.go) or with its snapshot. Its decision
	// asks the hub within its online timeout, which a loaded machine can
	// miss (it then decides offline, where the card is code_unknown until
	// the snapshot carries it, and its balance is the snapshot's): wait
	// until B's snapshot carries the card and A's spending (the catalog
	// version and code-use position the hub is at now) and B's own
	// decision takes it.
	spendBasket := func(txn string, amount int64) agent.Basket {
		return agent.Basket{Order: protocol.Order{ID: txn, Currency: "EUR", Lines: []protocol.Line{{SKU: "x", Quantity: 1, UnitPrice: 100_00}}},
			Redeemables: []agent.Input{{Code: card.Code, Amount: amount}}}
	}
	catVersion, err := h.Catalog.Version(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	codeHead, err := h.Ledger.CodeHead(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "till B's snapshot has the card", func() bool {
		if v, _ := b.a.SnapshotVersion(); v < catVersion || b.a.SnapshotUses() < codeHead {
			return false
		}
		q, err := b.a.Validate(ctx, spendBasket("b-1", 5_00))
		return err == nil && q.Error == nil
	})
	if c, err := b.a.CardBalance(ctx, card.Code); err != nil || c.Balance.Amount != 30_00 {
		t.Fatalf("till B's balance of the card: %+v %v", c, err)
	}
	if _, err := spend(b, "b-1", 5_00); err != nil {
		t.Fatalf("spend at another till: %v", err)
	}
	// Online: the web shop spends 5.00.
	var out struct {
		Decision struct{ Paid int64 }
		Code     string
		Message  string
		Field    string
	}
	order := map[string]any{"id": "web-1", "currency": "EUR", "lines": []any{map[string]any{"sku": "x", "quantity": 1, "unit_price": 100_00}}}
	if st := hubJSON(t, h, "POST", "/v1/tenants/acme/redeem", map[string]any{"store": map[string]any{"id": "web", "time_zone": "Europe/Berlin"}, "order": order, "redeemables": []any{map[string]any{"code": card.Code, "amount": 5_00}}}, &out); st != 200 || out.Decision.Paid != 5_00 {
		raw, _ := json.Marshal(out)
		t.Fatalf("online spend: %d %s", st, raw)
	}
	// Till B tops it up by 50.00 (online: the hub's figure follows).
	up, err := b.a.TopUpCard(ctx, card.Code, wire.GiftCardTopUp{TxnID: "up-1", Amount: 50_00})
	if err != nil {
		t.Fatalf("top-up: %v", err)
	}
	_ = up
	waitFor(t, "the hub's balance after the top-up", func() bool {
		var bal wire.GiftCard
		return hubJSON(t, h, "GET", "/v1/tenants/acme/giftcards/"+card.Code, nil, &bal) == 200 && bal.Balance.Amount == 70_00
	})
	// The till asks the hub with its online timeout; on a loaded machine
	// one lookup may time out and answer from the till's own figure
	// (Offline), so wait for an online answer.
	var last wire.GiftCard
	var lastErr error
	waitFor(t, "till B's online balance of 70.00", func() bool {
		last, lastErr = b.a.CardBalance(ctx, card.Code)
		return lastErr == nil && last.Balance.Amount == 70_00 && !last.Offline
	})
	rep, err := h.Ledger.Verify(ctx)
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	if cs, err := h.Ledger.Conflicts(ctx, "acme", 0, 100); err != nil || len(cs) != 0 {
		t.Fatalf("conflicts: %+v %v", cs, err)
	}
}

// TestGiftCardTillFactsJudged: gift card facts a till sent, written
// beneath its own checks (a tampered or older till): a sale on a campaign
// that is no gift card creates no card and is flagged effect_mismatch; a
// second sale of the same number adds to the card and is flagged
// giftcard_reissued; a top-up of nothing is quarantined; Verify stays
// clean.
func TestGiftCardTillFactsJudged(t *testing.T) {
	ctx := context.Background()
	h := MustRun(t)
	if _, err := h.Catalog.CreateTenant(ctx, catalog.System, catalog.Tenant{ID: "acme", Name: "Acme", Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	for _, doc := range []string{
		`{"schema":1,"id":"gift","tenant":"acme","status":"active","currency":"EUR","reward":{"kind":"gift_card","multi_use":true}}`,
		`{"schema":1,"id":"summer","tenant":"acme","status":"active","currency":"EUR","reward":{"kind":"percent_off","percent_bp":1000}}`,
	} {
		if _, err := h.Catalog.CreateCampaign(ctx, catalog.System, "acme", []byte(doc)); err != nil {
			t.Fatal(err)
		}
	}
	_, secret, err := h.Catalog.RegisterAgent(ctx, catalog.System, catalog.Agent{Tenant: "acme", ID: "till-1", Store: snapshot.Store{ID: "s1", TimeZone: "Europe/Berlin"}})
	if err != nil {
		t.Fatal(err)
	}
	v, err := h.Catalog.Version(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "agent.db")
	db, err := agentdb.Open(ctx, path, agentdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	fact := func(seq uint64, kind protocol.RedemptionKind, campaign protocol.CampaignID, code protocol.CodeID, load int64) protocol.Redemption {
		return protocol.Redemption{ID: protocol.RedemptionID{Agent: "till-1", Seq: seq}, Kind: kind, Tenant: "acme", Store: "s1",
			TxnID: "T" + string(rune('0'+seq)), Campaign: campaign, Code: code, Currency: "EUR", Load: load,
			HLC: ledger.HLCFromTime(time.Now()), Offline: true, Snapshot: v}
	}
	facts := []protocol.Redemption{
		fact(1, protocol.KindIssue, "summer", "NOTACARD1", 5_00),
		fact(2, protocol.KindIssue, "gift", "CARDA1", 5_00),
		fact(3, protocol.KindIssue, "gift", "CARDA1", 7_00),
		fact(4, protocol.KindTopUp, "gift", "CARDA1", 0),
	}
	raw, err := store.Open(ctx, path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range facts {
		body, err := protocol.EncMode.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := raw.ExecContext(ctx, `INSERT INTO outbox (seq, campaign, risk, body) VALUES (?, ?, 0, ?)`, f.ID.Seq, string(f.Campaign), body); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := raw.ExecContext(ctx, `UPDATE agent_state SET next_seq = 5 WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	db, err = agentdb.Open(ctx, path, agentdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a, err := agent.New(ctx, "acme", "till-1", db)
	if err != nil {
		t.Fatal(err)
	}
	a.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	g := &giftTill{a: a, db: db, secret: secret}
	g.connect(t, h)
	waitFor(t, "outbox drained", func() bool {
		st, err := db.State(ctx)
		return err == nil && st.OutboxDepth == 0 && st.AckedWatermark == 4
	})
	if _, err := h.Catalog.Code(ctx, "acme", "NOTACARD1"); protocol.ErrorCode(err) != protocol.CodeNotFound {
		t.Fatalf("a sale on a coupon campaign created a code: %v", err)
	}
	var bal wire.GiftCard
	if st := hubJSON(t, h, "GET", "/v1/tenants/acme/giftcards/CARDA1", nil, &bal); st != 200 || bal.Balance.Amount != 12_00 {
		t.Fatalf("balance after two sales: %d %+v", st, bal)
	}
	cs, err := h.Ledger.Conflicts(ctx, "acme", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]uint64{}
	for _, c := range cs {
		kinds[string(c.Kind)] = c.Redemption.Seq
	}
	if kinds["effect_mismatch"] != 1 || kinds["giftcard_reissued"] != 3 || len(cs) != 2 {
		t.Fatalf("conflicts: %+v", cs)
	}
	if q, err := h.Ledger.Quarantine(ctx, "acme", 0, 10); err != nil || len(q) != 1 || q[0].Seq != 4 || q[0].Field != "load" {
		t.Fatalf("quarantine: %+v %v", q, err)
	}
	if rep, err := h.Ledger.Verify(ctx); err != nil || !rep.OK() {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}
