package hub_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/punchcard/punchcard/agent"
	"github.com/punchcard/punchcard/agent/uplink"
	"github.com/punchcard/punchcard/hub"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/protocol/wire"
	"github.com/punchcard/punchcard/store/agentdb"
	"github.com/punchcard/punchcard/store/catalog"
)

// snapshotGate stands between a till and the hub's HTTP API (a reverse
// proxy on 127.0.0.1) and, while shut, fails the till's snapshot fetches
// (404, which the client does not retry): a till whose snapshot lags
// the hub, deterministically, while its other exchanges (authorize, gift
// card balance) get through. Its MQTT session goes to the broker directly.
type snapshotGate struct {
	srv      *httptest.Server
	shut     atomic.Bool
	fetches  atomic.Int64 // snapshot GETs seen, refused or not
	inflight atomic.Int64 // snapshot GETs let through and not yet answered
}

// close shuts the gate and waits until no snapshot fetch let through
// before is still on its way: a change made after close is in no
// snapshot the till gets.
func (g *snapshotGate) close(t *testing.T) {
	t.Helper()
	g.shut.Store(true)
	waitFor(t, "no snapshot fetch in flight", func() bool { return g.inflight.Load() == 0 })
}

func newSnapshotGate(t *testing.T, h *hub.Hub) *snapshotGate {
	t.Helper()
	target, err := url.Parse("http://" + h.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	g := &snapshotGate{}
	proxy := httputil.NewSingleHostReverseProxy(target)
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, wire.PathSnapshot) {
			g.fetches.Add(1)
			g.inflight.Add(1)
			defer g.inflight.Add(-1)
			if g.shut.Load() {
				http.Error(w, `{"code":"not_found","message":"gate shut"}`, http.StatusNotFound)
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(g.srv.Close)
	return g
}

// startGatedTill is startGiftTill through a snapshot gate, polling and
// probing only hourly and counting the hub reachable and its snapshot
// confirmed for an hour (so it stays online while its fetches fail, and
// a loaded machine does not turn it offline between two steps), and
// waiting for the hub as long as a loaded machine needs (the product's
// OnlineTimeout, set for the test): each step of the test that must be
// decided online is.
func startGatedTill(t *testing.T, h *hub.Hub, id protocol.AgentID, store protocol.StoreID, gate *snapshotGate) *giftTill {
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
	a.OnlineTimeout = time.Minute
	g := &giftTill{a: a, db: db, secret: secret}
	hubKey, err := h.Catalog.HubPublicKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := uplink.New(uplink.Options{Tenant: "acme", Agent: id, BrokerURL: h.Broker.URL(), HubURL: gate.srv.URL,
		Secret: secret, HubKey: hubKey, FlushEvery: 20 * time.Millisecond, ResendAfter: 500 * time.Millisecond, PollEvery: time.Hour,
		ProbeEvery: time.Hour, HTTPMaxAge: time.Hour, OnlineMaxAge: time.Hour, HTTPRetries: 1, Logger: a.Logger}, a, db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	g.c = c
	a.SetLink(c)
	waitFor(t, "till synced and online", func() bool { return a.Synced() && c.Online() })
	return g
}

// refusal is the reason a redeem was refused ("" when it was not).
func refusal(err error) protocol.Code {
	var re *agent.RefusedError
	if errors.As(err, &re) {
		return re.Err.Code
	}
	return protocol.ErrorCode(err)
}

// TestFreshCodeAtOnlineTill: a till online takes a code the hub knows and
// its snapshot does not carry yet, deciding with its own pipeline over
// the hub's record of the code (decide.AuthorizeResponse.Codes): a gift
// card sold at another till a moment ago, a single-use code imported
// since its snapshot (held for it, so another till is refused: used
// exactly once), a customer's referral code made just now. A code of a
// campaign its snapshot lacks stays refused code_unknown, and the till
// fetches its snapshot, after which it takes the code. Offline, a code the snapshot does not carry is
// code_unknown as before. The facts reconcile at the hub without a
// conflict and the ledger verifies. On the code before (30762bb) the
// till refused the card and the code code_unknown.
func TestFreshCodeAtOnlineTill(t *testing.T) {
	ctx := context.Background()
	h := MustRun(t)
	if _, err := h.Catalog.CreateTenant(ctx, catalog.System, catalog.Tenant{ID: "acme", Name: "Acme", Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	for _, doc := range []string{
		`{"schema":1,"id":"gift","tenant":"acme","status":"active","currency":"EUR","reward":{"kind":"gift_card","multi_use":true}}`,
		`{"schema":1,"id":"promo","tenant":"acme","status":"active","currency":"EUR","reward":{"kind":"percent_off","percent_bp":1000}}`,
		`{"schema":1,"id":"refer","tenant":"acme","status":"active","trigger":"code","currency":"EUR","reward":{"kind":"amount_off","amount":700},"referral":{"referrer_points":500}}`,
	} {
		if _, err := h.Catalog.CreateCampaign(ctx, catalog.System, "acme", []byte(doc)); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []protocol.CustomerID{"alice", "bob"} {
		if _, err := h.Catalog.CreateCustomer(ctx, catalog.System, "acme", catalog.Customer{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	a := startGatedTill(t, h, "till-a", "s1", newSnapshotGate(t, h)) // its gate stays open
	gate := newSnapshotGate(t, h)
	b := startGatedTill(t, h, "till-b", "s2", gate)
	gate.close(t)
	bVersion, _ := b.a.SnapshotVersion()

	basket := func(txn, code string, amount int64) agent.Basket {
		return agent.Basket{Order: protocol.Order{ID: txn, Currency: "EUR", Lines: []protocol.Line{{SKU: "x", Quantity: 1, UnitPrice: 100_00}}},
			Redeemables: []agent.Input{{Code: code, Amount: amount}}}
	}
	redeem := func(g *giftTill, txn, code string, amount int64) (*agent.Receipt, error) {
		return g.a.Redeem(ctx, agent.RedeemRequest{TxnID: txn, Basket: basket(txn, code, amount)})
	}

	// Till A sells a card online; it reaches the hub.
	card, err := a.a.SellCard(ctx, wire.GiftCardSale{TxnID: "sale-1", Campaign: "gift", Amount: 40_00})
	if err != nil || card.Offline {
		t.Fatalf("sale at till A: %+v %v", card, err)
	}
	waitFor(t, "the hub has the card", func() bool {
		var bal wire.GiftCard
		return hubJSON(t, h, "GET", "/v1/tenants/acme/giftcards/"+card.Code, nil, &bal) == 200 && bal.Balance.Amount == 40_00
	})
	// Codes imported after till B's snapshot.
	if _, err := h.Catalog.ImportCodes(ctx, catalog.System, "acme", "promo", []string{"FRESH-1", "FRESH-2"}, catalog.CodeSpec{Uses: 1}); err != nil {
		t.Fatal(err)
	}

	t.Run("GiftCardSoldElsewhere", func(t *testing.T) {
		q, err := b.a.Validate(ctx, basket("b-1", card.Code, 5_00))
		if err != nil || q.Error != nil || q.Offline || q.Paid != 5_00 {
			t.Fatalf("validate at till B: %+v %v", q, err)
		}
		rc, err := redeem(b, "b-1", card.Code, 5_00)
		if err != nil {
			t.Fatalf("spend at till B before its snapshot has the card: %v", err)
		}
		if rc.Offline || rc.Quote == nil || rc.Quote.HubRef == "" || len(rc.Facts) != 1 || rc.Facts[0].Spend != 5_00 || rc.Facts[0].Campaign != "gift" {
			t.Fatalf("receipt: %+v", rc)
		}
	})
	t.Run("SingleUseCodeOnce", func(t *testing.T) {
		rc, err := redeem(b, "b-2", "FRESH-1", 0)
		if err != nil {
			t.Fatalf("a code imported after till B's snapshot: %v", err)
		}
		if rc.Offline || len(rc.Facts) != 1 || rc.Facts[0].Discount != 10_00 || rc.Facts[0].Campaign != "promo" {
			t.Fatalf("receipt: %+v", rc)
		}
		// Held for till B (or applied): another till is refused.
		if _, err := redeem(a, "a-2", "FRESH-1", 0); refusal(err) != protocol.CodeCodeUsed {
			t.Fatalf("the code again at till A: %v, want code_already_used", err)
		}
		// And so is till B itself, a second time.
		if _, err := redeem(b, "b-3", "FRESH-1", 0); refusal(err) != protocol.CodeCodeUsed {
			t.Fatalf("the code again at till B: %v, want code_already_used", err)
		}
	})
	t.Run("ReferralCodeMadeJustNow", func(t *testing.T) {
		rc, err := h.Manage.ReferralCode(ctx, catalog.System, "acme", "alice", "refer")
		if err != nil {
			t.Fatal(err)
		}
		in := basket("b-ref", rc.Code, 0)
		in.Customer = &protocol.Customer{ID: "bob"}
		r, err := b.a.Redeem(ctx, agent.RedeemRequest{TxnID: "b-ref", Basket: in})
		if err != nil {
			t.Fatalf("alice's referral code, made after till B's snapshot, for bob: %v", err)
		}
		if r.Offline || len(r.Facts) != 1 || r.Facts[0].Discount != 7_00 || r.Facts[0].Campaign != "refer" {
			t.Fatalf("receipt: %+v", r)
		}
	})
	if v, _ := b.a.SnapshotVersion(); v != bVersion {
		t.Fatalf("till B's snapshot moved from %d to %d behind a shut gate", bVersion, v)
	}
	t.Run("CampaignNotInSnapshot", func(t *testing.T) {
		doc := `{"schema":1,"id":"late","tenant":"acme","status":"active","currency":"EUR","reward":{"kind":"amount_off","amount":300}}`
		if _, err := h.Catalog.CreateCampaign(ctx, catalog.System, "acme", []byte(doc)); err != nil {
			t.Fatal(err)
		}
		if _, err := h.Catalog.ImportCodes(ctx, catalog.System, "acme", "late", []string{"LATE-1"}, catalog.CodeSpec{Uses: 1}); err != nil {
			t.Fatal(err)
		}
		q, err := b.a.Validate(ctx, basket("b-4", "LATE-1", 0))
		if err != nil || q.Error == nil || q.Error.Code != protocol.CodeUnknownCode || !strings.Contains(q.Error.Message, "fetching") {
			t.Fatalf("a code of a campaign till B does not have: %+v %v", q.Error, err)
		}
		// The till asks for its snapshot at once (refused behind the
		// gate; the campaign's announcement may be what asks too): once
		// fetches get through, the till takes the code.
		before := gate.fetches.Load()
		if _, err := b.a.Validate(ctx, basket("b-4", "LATE-1", 0)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "till B asks for its snapshot", func() bool { return gate.fetches.Load() > before })
		gate.shut.Store(false)
		waitFor(t, "till B takes the late campaign's code", func() bool {
			q, err := b.a.Validate(ctx, basket("b-4", "LATE-1", 0))
			return err == nil && q.Error == nil && q.Discount == 3_00
		})
	})

	if t.Failed() {
		return // the waits below count on the facts above
	}
	// A code imported behind the shut gate again; till B's facts reach
	// the hub; then it goes offline.
	gate.close(t)
	if _, err := h.Catalog.ImportCodes(ctx, catalog.System, "acme", "promo", []string{"FRESH-3"}, catalog.CodeSpec{Uses: -1}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "till B's outbox drained", func() bool {
		st, err := b.db.State(ctx)
		return err == nil && st.OutboxDepth == 0 && st.AckedWatermark == 3
	})
	waitFor(t, "alice's referrer points", func() bool {
		pts, err := h.Ledger.Points(ctx, "acme", "alice")
		return err == nil && pts == 500
	})
	b.c.Close()
	t.Run("OfflineUnknown", func(t *testing.T) {
		if _, err := redeem(b, "b-5", "FRESH-3", 0); refusal(err) != protocol.CodeUnknownCode {
			t.Fatalf("offline, a code newer than the snapshot: %v, want code_unknown", err)
		}
	})

	var bal wire.GiftCard
	if st := hubJSON(t, h, "GET", "/v1/tenants/acme/giftcards/"+card.Code, nil, &bal); st != 200 || bal.Balance.Amount != 35_00 {
		t.Fatalf("hub balance: %d %+v", st, bal)
	}
	rep, err := h.Ledger.Verify(ctx)
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	if cs, err := h.Ledger.Conflicts(ctx, "acme", 0, 100); err != nil || len(cs) != 0 {
		t.Fatalf("conflicts: %+v %v", cs, err)
	}
}
