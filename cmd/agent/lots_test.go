package main

import (
	"context"
	"testing"
	"time"

	"github.com/punchcard/punchcard/agent"
	"github.com/punchcard/punchcard/agent/agenttest"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/rules"
	"github.com/punchcard/punchcard/store/catalog"
)

// TestTillEarnLots: points a till earns reach the ledger as lots with the
// expiry its rules engine computed (Redemption.Expires through the outbox
// and ingest): a program with quarter buckets two years on keeps them
// until the end of the quarter two years later, a program without expiry
// forever.
func TestTillEarnLots(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the agent")
	}
	ctx := context.Background()
	bin := buildAgent(t)
	h, secret := runHub(t)
	doc := `{"schema":1,"id":"club","tenant":"acme","status":"active","currency":"EUR","reward":{"kind":"points","points":{
		"earn":[{"id":"spend","on":"spend","per_amount":100,"milli_points":2000}],"expiry":{"kind":"bucketed","bucket":"quarter","years":2}}}}`
	if _, err := h.Catalog.CreateCampaign(ctx, catalog.System, agenttest.Tenant, []byte(doc)); err != nil {
		t.Fatal(err)
	}
	p := startProcAs(t, bin, t.TempDir(), h.Broker.URL(), "http://"+h.HTTPAddr(), secret, hubKeyOf(t, h))
	waitFor(t, "first sync", func() bool { st := p.status(t); return st.SnapshotVersion > 0 && st.Online && !st.NeverSynced })
	cust := &protocol.Customer{ID: "cust-1"}
	before := time.Now()
	var en agent.Receipt
	p.postJSON(t, "/v1/earn", agent.EarnRequest{TxnID: "L1", Order: agenttest.Order("o-L1", 10_00), Customer: cust}, &en)
	after := time.Now()
	if en.Points != 30 {
		t.Fatalf("earned %d points, want 10 + 20", en.Points)
	}
	waitFor(t, "outbox drained", func() bool { return p.status(t).OutboxDepth == 0 })
	lots, err := h.Ledger.PointsLots(ctx, agenttest.Tenant, cust.ID)
	if err != nil || len(lots) != 2 {
		t.Fatalf("lots %+v, %v", lots, err)
	}
	ber, _ := time.LoadLocation("Europe/Berlin")
	q2y := rules.Expiry{Kind: rules.ExpiryBucketed, Bucket: rules.PeriodQuarter, Years: 2}
	lo, hi := rules.ExpiresAt(q2y, before, ber), rules.ExpiresAt(q2y, after, ber)
	club, loyal := lots[0], lots[1]
	if club.Campaign != "club" || club.Remaining != 20 || club.ExpiresAt.Before(lo) || club.ExpiresAt.After(hi) || club.Source.Agent != agenttest.Agent {
		t.Fatalf("club lot %+v, want 20 points expiring %v", club, lo)
	}
	if loyal.Campaign != "loyal" || loyal.Remaining != 10 || !loyal.ExpiresAt.IsZero() {
		t.Fatalf("loyal lot %+v, want 10 points that never expire", loyal)
	}
	if rep, err := h.Ledger.Verify(ctx); err != nil || !rep.OK() {
		t.Fatalf("verify %+v, %v", rep, err)
	}
}
