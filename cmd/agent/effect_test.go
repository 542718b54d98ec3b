package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/punchcard/punchcard/agent"
	"github.com/punchcard/punchcard/agent/agenttest"
	"github.com/punchcard/punchcard/hub"
	"github.com/punchcard/punchcard/internal/testutil"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/catalog"
	"github.com/punchcard/punchcard/store/ledger"
)

// TestEffectRederived runs the agent process against the real hub: honest
// sales of every reward kind (percent code with an allowance, amount token,
// automatic promotion, points earned with the sale and on their own, a
// gift card paying the rest, whose spend is not compared),
// offline and online, with the rules changed on the hub before the
// offline sales arrive, give no effect_mismatch: the hub re-derives each
// fact with the rules version the till used. Then facts tampered with the
// agent's own credentials, published through the real broker (discount
// inflated, points inflated, an earn reported twice, no sale at all, a
// token valid only in another store), are
// recorded, and each is one effect_mismatch naming the till and the fact.
func TestEffectRederived(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs processes")
	}
	ctx := context.Background()
	bin := buildAgent(t)
	h, secret := runHub(t)
	if _, err := h.Catalog.CreateCampaign(ctx, catalog.System, agenttest.Tenant, []byte(
		`{"schema":1,"id":"auto3","tenant":"acme","status":"active","currency":"EUR","trigger":"auto","reward":{"kind":"amount_off","amount":300},"eligibility":{"min_subtotal":5000}}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Catalog.CreateCampaign(ctx, catalog.System, agenttest.Tenant, []byte(
		`{"schema":1,"id":"gift","tenant":"acme","status":"active","currency":"EUR","reward":{"kind":"gift_card","multi_use":true}}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Catalog.ImportCodes(ctx, catalog.System, agenttest.Tenant, "gift", []string{"GIFT-0001"},
		catalog.CodeSpec{Uses: -1, Balance: 500_00, Stores: []protocol.StoreID{agenttest.StoreID}}); err != nil {
		t.Fatal(err)
	}
	tok, err := h.Catalog.IssueToken(ctx, catalog.System, agenttest.Tenant, catalog.TokenRequest{Campaign: "five"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := startProcAs(t, bin, dir, h.Broker.URL(), "http://"+h.HTTPAddr(), secret, hubKeyOf(t, h))
	waitFor(t, "first sync with an allowance", func() bool {
		st := p.status(t)
		for _, al := range st.Allowances {
			if al.Campaign == "summer" && al.Count > 0 && st.Online && !st.NeverSynced {
				return true
			}
		}
		return false
	})
	cust := &protocol.Customer{ID: "cust-1", Tier: "gold"}
	sell := func(p *proc, txn string, total int64, codes ...string) agent.Receipt {
		t.Helper()
		b := agent.Basket{Order: agenttest.Order("o-"+txn, total), Customer: cust}
		b.Order.Lines = append(b.Order.Lines, protocol.Line{SKU: "sku-long-name-" + txn, Category: "drinks", Quantity: 3, UnitPrice: 1_99})
		for _, c := range codes {
			b.Redeemables = append(b.Redeemables, agent.Input{Code: c})
		}
		var rc agent.Receipt
		p.postJSON(t, "/v1/redeem", agent.RedeemRequest{TxnID: txn, Basket: b}, &rc)
		return rc
	}
	// Online: a percent code with the auto promotion and points.
	if rc := sell(p, "ON1", 80_00, agenttest.CodeSummer); len(rc.Facts) != 3 || rc.Offline {
		t.Fatalf("online sale: %+v", rc)
	}
	p.cmd.Process.Kill()
	p.cmd.Wait()

	// Offline: percent code, amount token, auto promotion alone, a small
	// basket the promotion does not reach, and points earned on their own.
	off := startProcAs(t, bin, dir, "", "", secret, hubKeyOf(t, h))
	if st := off.status(t); st.Online {
		t.Fatalf("not offline: %+v", st)
	}
	var facts int
	for _, s := range []struct {
		txn   string
		total int64
		codes []string
	}{{"OFF1", 100_00, []string{agenttest.CodeSummer}}, {"OFF2", 60_00, []string{tok.Text}}, {"OFF3", 70_00, nil}, {"OFF4", 20_00, []string{agenttest.CodeSummer}},
		{"OFF6", 120_00, []string{agenttest.CodeSummer, "gift-0001"}}} {
		rc := sell(off, s.txn, s.total, s.codes...)
		if !rc.Offline || len(rc.Facts) < 2 || (s.txn == "OFF6" && (len(rc.Facts) != 4 || rc.Facts[1].Spend == 0)) {
			t.Fatalf("offline sale %s: %+v", s.txn, rc)
		}
		facts += len(rc.Facts)
	}
	var en agent.Receipt
	off.postJSON(t, "/v1/earn", agent.EarnRequest{TxnID: "OFF5", Order: agenttest.Order("o-OFF5", 42_00), Customer: cust}, &en)
	if en.Points != 42 {
		t.Fatalf("earn: %+v", en)
	}
	off.cmd.Process.Kill()
	off.cmd.Wait()
	// The rules change on the hub before the offline sales arrive: they
	// are re-derived with the version the till sold with.
	if _, err := h.Catalog.UpdateCampaign(ctx, catalog.System, agenttest.Tenant, "auto3", []byte(
		`{"schema":1,"id":"auto3","tenant":"acme","status":"active","currency":"EUR","trigger":"auto","reward":{"kind":"amount_off","amount":900},"eligibility":{"min_subtotal":5000}}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Catalog.StopCampaign(ctx, catalog.System, agenttest.Tenant, "five"); err != nil {
		t.Fatal(err)
	}
	on := startProcAs(t, bin, dir, h.Broker.URL(), "http://"+h.HTTPAddr(), secret, hubKeyOf(t, h))
	waitFor(t, "offline sales reconciled", func() bool {
		st := on.status(t)
		return st.Online && st.OutboxDepth == 0 && st.AckedWatermark == st.LastSeq
	})
	if rc := sell(on, "ON2", 90_00, agenttest.CodeSummer); len(rc.Facts) != 3 {
		t.Fatalf("online sale after the change: %+v", rc)
	}
	waitFor(t, "online sale reconciled", func() bool { st := on.status(t); return st.OutboxDepth == 0 && st.AckedWatermark == st.LastSeq })
	st := on.status(t)
	on.cmd.Process.Kill()
	on.cmd.Wait()
	if n := journalRows(t, h, "till-1"); n != int(st.LastSeq) {
		t.Fatalf("journal has %d facts of the till, it recorded %d", n, st.LastSeq)
	}
	if cs := conflicts(t, h); len(cs) != 0 {
		t.Fatalf("honest sales flagged: %+v", cs)
	}

	// Tampered facts, published with the till's credentials.
	seq := st.LastSeq
	base := func(txn string) protocol.Redemption {
		seq++
		o := agenttest.Order("o-"+txn, 100_00)
		return protocol.Redemption{ID: protocol.RedemptionID{Agent: agenttest.Agent, Seq: seq}, Tenant: agenttest.Tenant, Store: agenttest.StoreID,
			TxnID: txn, Customer: cust.ID, OrderID: o.ID, Currency: "EUR", OrderTot: 100_00, HLC: ledger.HLCFromTime(time.Now()), Offline: true,
			Snapshot: st.SnapshotVersion, Sale: &protocol.Sale{Lines: o.Lines, Customer: cust, At: time.Now().UnixMilli()}}
	}
	discount := base("T1") // the auto promotion gives 9.00 at this version
	discount.Kind, discount.Campaign, discount.Discount = protocol.KindRedeem, "auto3", 90_00
	points := base("T2") // 100 points after the 9.00 off: 91
	points.Kind, points.Campaign, points.Points = protocol.KindEarn, "loyal", 1_000_000
	honest := base("T3")
	honest.Kind, honest.Campaign, honest.Points = protocol.KindEarn, "loyal", 91
	again := honest // the same earn again under another seq
	seq++
	again.ID.Seq = seq
	noSale := base("T4")
	noSale.Kind, noSale.Campaign, noSale.Discount, noSale.Sale = protocol.KindRedeem, "auto3", 9_00, nil
	elsewhere, err := h.Catalog.IssueToken(ctx, catalog.System, agenttest.Tenant, catalog.TokenRequest{Campaign: "summer", Store: "other-store"})
	if err != nil {
		t.Fatal(err)
	}
	wrongStore := base("T5") // a token valid only in another store
	wrongStore.Kind, wrongStore.Campaign, wrongStore.Code, wrongStore.Discount = protocol.KindRedeem, "summer", elsewhere.Serial, 10_00
	wrongStore.Sale.Presented = []protocol.Presented{{Kind: protocol.PresentedToken, Code: elsewhere.Serial}}
	publish(t, h, secret, [][]protocol.Redemption{{discount}, {points, honest}, {again}, {noSale, wrongStore}})
	waitFor(t, "tampered facts recorded", func() bool { return journalRows(t, h, "till-1") == int(seq) })
	cs := conflicts(t, h)
	flagged := map[uint64]ledger.Conflict{}
	for _, c := range cs {
		if c.Kind != ledger.ConflictEffectMismatch {
			t.Errorf("unexpected conflict %+v", c)
			continue
		}
		if c.Redemption.Agent != agenttest.Agent || !strings.Contains(c.Detail, string(agenttest.Agent)) {
			t.Errorf("conflict does not name the till: %+v", c)
		}
		if _, dup := flagged[c.Redemption.Seq]; dup {
			t.Errorf("fact %d flagged twice", c.Redemption.Seq)
		}
		flagged[c.Redemption.Seq] = c
	}
	for _, want := range []struct {
		r      protocol.Redemption
		detail string
	}{{discount, "discount 9000, the rules give 900"}, {points, "points 1000000, the rules give 91"}, {again, `earns 182 points of loyal in all, the rules give 91`}, {noSale, "no sale"}, {wrongStore, "presented " + string(elsewhere.Serial)}} {
		c, ok := flagged[want.r.ID.Seq]
		if !ok || !strings.Contains(c.Detail, want.detail) {
			t.Errorf("fact %d (%s): conflict %+v, want effect_mismatch %q", want.r.ID.Seq, want.r.TxnID, c, want.detail)
		}
	}
	if _, ok := flagged[honest.ID.Seq]; ok || len(flagged) != 5 {
		t.Errorf("flagged %d facts (honest one: %v), want the 5 tampered", len(flagged), ok)
	}
	// Recorded all the same: an offline fact is a fact.
	if pts, err := h.Ledger.Points(ctx, agenttest.Tenant, cust.ID); err != nil || pts < 1_000_000 {
		t.Fatalf("customer points %d (%v): the tampered fact was not recorded", pts, err)
	}
}

func conflicts(t *testing.T, h *hub.Hub) []ledger.Conflict {
	t.Helper()
	cs, err := h.Ledger.Conflicts(context.Background(), agenttest.Tenant, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func journalRows(t *testing.T, h *hub.Hub, agentID string) int {
	t.Helper()
	var n int
	if err := h.Ledger.DB().QueryRow(`SELECT COUNT(*) FROM ledger_journal WHERE tenant = ? AND agent = ? AND seq IS NOT NULL`, string(agenttest.Tenant), agentID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// publish sends each group of facts as one batch message from the till's
// own MQTT identity, as a tampered till would.
func publish(t *testing.T, h *hub.Hub, secret string, groups [][]protocol.Redemption) {
	t.Helper()
	id := string(agenttest.Tenant) + "/" + string(agenttest.Agent)
	c := paho.NewClient(paho.NewClientOptions().AddBroker(h.Broker.URL()).SetClientID(id).SetUsername(id).SetPassword(secret).
		SetProtocolVersion(4).SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(testutil.Patience(t)) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(100)
	for i, g := range groups {
		b, err := protocol.EncodeMessage(protocol.MsgBatch, agenttest.Tenant, agenttest.Agent, fmt.Sprintf("tamper-%d", i), time.Now().UnixMicro(), protocol.Batch{Redemptions: g})
		if err != nil {
			t.Fatal(err)
		}
		if tok := c.Publish(protocol.UpTopic(agenttest.Tenant, agenttest.Agent), 1, false, b); !tok.WaitTimeout(testutil.Patience(t)) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
}
