package chaos_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/punchcard/punchcard/agent"
	"github.com/punchcard/punchcard/cmd/punchcard/internal/chaos"
	"github.com/punchcard/punchcard/cmd/punchcard/internal/cluster"
	"github.com/punchcard/punchcard/cmd/punchcard/internal/netcut"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/rules"
)

// TestPointsStatementOfflineTill (issue 12, "points earned online are
// spent at an offline till and reconciled"), with real processes: c1
// earns 500 points online at the hub and takes a statement of 400; the
// till is cut off; without the statement it refuses a points burn
// (insufficient_points); with it, it takes 300 and 100 and refuses what
// goes past the statement. c2 takes a statement of 300, then spends 200
// online at the hub while the till is cut off, and spends the stated 300
// at the till. Back online, the hub reconciles: c1's balance and lots are
// right with no conflict; c2's burn is recorded, flagged points_overdrawn,
// and kept as a debt lot (nothing lost); the ledger verifies.
func TestPointsStatementOfflineTill(t *testing.T) {
	e := chaos.Setup(t, 1, 0, "")
	ctx := context.Background()
	till := e.Agents[0]
	var loyal rules.Campaign
	doc := `{"schema":1,"id":"loyal","tenant":"chaos-brand","status":"active","currency":"EUR","trigger":"auto",
		"reward":{"kind":"points","points":{"earn":[{"id":"spend","on":"spend","per_amount":100,"milli_points":1000}],"burn_points":100,"burn_value":100}}}`
	if err := json.Unmarshal([]byte(doc), &loyal); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Admin.CreateCampaign(ctx, loyal); err != nil {
		t.Fatal(err)
	}
	var acked []cluster.Acked // what every POS and channel was told succeeded (guarantee 1)
	online := func(txn string, rs []protocol.Redemption) {
		for _, r := range rs {
			acked = append(acked, cluster.Acked{Agent: string(r.ID.Agent), Seq: int64(r.ID.Seq), Kind: r.Kind.String(), TxnID: txn, Discount: r.Discount, Spend: r.Spend, Points: r.Points})
		}
	}
	web := cluster.OnlineStore{ID: "web", TimeZone: "Europe/Berlin"}
	for _, c := range []struct {
		id  protocol.CustomerID
		pts int64
	}{{"c1", 500}, {"c2", 300}} {
		if err := e.Admin.CreateCustomer(ctx, chaos.Tenant, cluster.Customer{ID: c.id}); err != nil {
			t.Fatal(err)
		}
		out, err := e.Admin.Earn(ctx, chaos.Tenant, "earn-"+string(c.id), cluster.OnlineRequest{Store: web, Customer: c.id,
			Order: protocol.Order{ID: "web-" + string(c.id), Currency: chaos.Currency, Lines: []protocol.Line{{SKU: "tv", Quantity: 1, UnitPrice: c.pts * 100}}}})
		if err != nil || out.Decision.PointsEarned != c.pts {
			t.Fatalf("earn %s: %+v %v", c.id, out.Decision, err)
		}
		online("earn-"+string(c.id), out.Redemptions)
	}
	s1, err := e.Admin.PointsStatement(ctx, chaos.Tenant, "c1", 400)
	if err != nil || s1.Points != 400 || s1.QRPNG == "" {
		t.Fatalf("statement c1: %+v %v", s1, err)
	}
	s2, err := e.Admin.PointsStatement(ctx, chaos.Tenant, "c2", 0)
	if err != nil || s2.Points != 300 {
		t.Fatalf("statement c2: %+v %v", s2, err)
	}
	tv, err := e.Admin.GetTenant(ctx, chaos.Tenant)
	if err != nil {
		t.Fatal(err)
	}
	if err := till.WaitSynced(ctx, tv.Version, time.Minute); err != nil {
		t.Fatal(err)
	}

	till.Cut(netcut.Reset)
	waitFor(t, time.Minute, "the till notices it is offline", func() (bool, string) {
		st, err := till.POS.Status(ctx)
		return err == nil && !st.Online, fmt.Sprint(st.Online, err)
	})
	earned := map[protocol.CustomerID]int64{}
	n := 0
	burn := func(cu protocol.CustomerID, stmt string, pts int64) (agent.Receipt, error) {
		n++
		rc, err := till.POS.Redeem(ctx, agent.RedeemRequest{TxnID: fmt.Sprintf("burn-%d", n), Basket: agent.Basket{
			Order:       protocol.Order{ID: fmt.Sprintf("o-%d", n), Currency: chaos.Currency, Lines: []protocol.Line{{SKU: "shoe", Quantity: 1, UnitPrice: 80_00}}},
			Customer:    &protocol.Customer{ID: cu},
			Redeemables: []agent.Input{{Campaign: "loyal", Amount: pts}},
			Statement:   stmt,
		}})
		if err == nil {
			earned[cu] += rc.Points
			for _, f := range rc.Facts {
				acked = append(acked, cluster.Acked{Agent: string(f.ID.Agent), Seq: int64(f.ID.Seq), Kind: f.Kind, TxnID: rc.TxnID, Discount: f.Discount, Spend: f.Spend, Points: f.Points})
			}
		}
		return rc, err
	}
	refused := func(what string, err error, want protocol.Code) {
		t.Helper()
		if got := cluster.Code(err); got != want {
			t.Fatalf("%s: %v, want %s", what, err, want)
		}
	}
	_, err = burn("c1", "", 1_00)
	refused("offline without a statement", err, protocol.CodeInsufficientPts)
	_, err = burn("c2", s1.Statement, 1_00)
	refused("c1's statement for c2", err, protocol.CodeStatementCustomer)
	for _, b := range []struct {
		pts  int64
		want protocol.Code
	}{{3_00, ""}, {2_00, protocol.CodeInsufficientPts}, {1_00, ""}, {1, protocol.CodeInsufficientPts}} {
		rc, err := burn("c1", s1.Statement, b.pts)
		if b.want != "" {
			refused(fmt.Sprintf("burn %d on what is left of the statement", b.pts), err, b.want)
			continue
		}
		if err != nil || !rc.Offline || rc.Quote == nil || rc.Quote.Paid != b.pts {
			t.Fatalf("offline burn of %d on the statement: %+v %v", b.pts, rc, err)
		}
	}
	// Meanwhile c2 spends 200 of their 300 points online.
	web2, err := e.Admin.Redeem(ctx, chaos.Tenant, "web-burn", cluster.OnlineRequest{Store: web, Customer: "c2",
		Order:       protocol.Order{ID: "web-burn", Currency: chaos.Currency, Lines: []protocol.Line{{SKU: "tv", Quantity: 1, UnitPrice: 10_00}}},
		Redeemables: []cluster.Presented{{Campaign: "loyal", Amount: 2_00}}})
	if err != nil || web2.Decision.PointsBurned != 200 {
		t.Fatalf("online burn of c2: %+v %v", web2.Decision, err)
	}
	online("web-burn", web2.Redemptions)
	if rc, err := burn("c2", s2.Statement, 3_00); err != nil || !rc.Offline {
		t.Fatalf("offline burn of c2's stated 300: %+v %v", rc, err)
	}

	till.Heal()
	e.Drain(ctx, time.Minute)
	want := map[protocol.CustomerID]int64{"c1": 500 - 400 + earned["c1"], "c2": 300 - 200 + web2.Decision.PointsEarned - 300 + earned["c2"]}
	waitFor(t, time.Minute, "the hub's balances", func() (bool, string) {
		got := map[protocol.CustomerID]int64{}
		for cu := range want {
			h, err := e.Admin.Customer(ctx, chaos.Tenant, cu)
			if err != nil || h.Points == nil {
				return false, fmt.Sprint(err)
			}
			got[cu] = *h.Points
		}
		return got["c1"] == want["c1"] && got["c2"] == want["c2"], fmt.Sprintf("got %v want %v", got, want)
	})
	cs, err := e.Admin.Conflicts(ctx, chaos.Tenant)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0]["kind"] != "points_overdrawn" || cs[0]["customer"] != "c2" {
		t.Fatalf("conflicts %v, want one points_overdrawn of c2", cs)
	}
	if r, _ := cs[0]["redemption"].(map[string]any); r["agent"] != string(till.ID) {
		t.Fatalf("conflict %v, want the till's burn", cs[0])
	}
	for cu, w := range want {
		lots := customerLots(ctx, t, e, cu)
		var sum int64
		debt := false
		for _, l := range lots {
			sum += l.Remaining
			debt = debt || l.Debt
		}
		if sum != w || debt != (w < 0) {
			t.Fatalf("%s: lots %+v hold %d (debt %v), balance %d", cu, lots, sum, debt, w)
		}
	}
	// Every process stopped: the ledger file verifies, and every fact a
	// POS or channel was told of is in it as told, and nothing else.
	if err := e.C.Close(); err != nil {
		t.Logf("stop: %v", err)
	}
	au, err := cluster.OpenAudit(ctx, e.C.Hub.LedgerPath())
	if err != nil {
		t.Fatal(err)
	}
	defer au.Close()
	if rep, err := au.Verify(ctx); err != nil || !rep.OK() {
		t.Fatalf("ledger does not verify: %s %v", cluster.Summary(rep), err)
	}
	entries, err := au.Entries(ctx, chaos.Tenant)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range cluster.CheckAcked(acked, entries) {
		t.Errorf("guarantee 1: %s", v)
	}
}

type lot struct {
	Remaining int64 `json:"remaining"`
	Debt      bool  `json:"debt"`
}

// customerLots reads a customer's points lots from the history route.
func customerLots(ctx context.Context, t *testing.T, e *chaos.Env, cu protocol.CustomerID) []lot {
	t.Helper()
	var out struct {
		Lots []lot `json:"lots"`
	}
	if err := e.Admin.C.Do(ctx, "GET", "/v1/tenants/"+string(chaos.Tenant)+"/customers/"+string(cu)+"/history", nil, &out); err != nil {
		t.Fatal(err)
	}
	return out.Lots
}
