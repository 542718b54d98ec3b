package api_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/punchcard/punchcard/hub/reports"
	"github.com/punchcard/punchcard/protocol"
	pcatalog "github.com/punchcard/punchcard/protocol/catalog"
	"github.com/punchcard/punchcard/store/catalog"
	"github.com/punchcard/punchcard/store/ledger"
)

// TestReportDistributionReconcile is issue 13's Deliver 3 "redemption
// rate of distributed codes": three distributions of two campaigns (codes
// and tokens) filled on different days, some codes used (once or twice,
// some uses rolled back) at two tills; the distribution report over
// several ranges equals the test's own count from the distribution items
// and the journal (a code is redeemed when the signs of its facts sum
// above zero); CSV equals JSON.
func TestReportDistributionReconcile(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	mk, sup, ro := e.keys[catalog.RoleMarketer], e.keys[catalog.RoleSupport], e.keys[catalog.RoleReadOnly]
	admin := pcatalog.Actor{Tenant: "acme", Role: catalog.RoleAdmin}
	for _, c := range []string{"summer", "mail", "idle"} {
		e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, campaignDoc(c, "active", percent10, "")), 201, nil)
	}
	custs := make([]protocol.CustomerID, 30)
	for i := range custs {
		custs[i] = protocol.CustomerID(fmt.Sprintf("c%02d", i))
		e.wantJSON(e.do("POST", "/v1/tenants/acme/customers", sup, map[string]any{"id": custs[i]}), 201, nil)
	}
	fill := func(id string, limit int) {
		t.Helper()
		if _, _, err := e.cat.FillDistribution(ctx, admin, "acme", id, limit); err != nil {
			t.Fatal(err)
		}
	}
	publish := func(id string, camp protocol.CampaignID, kind string, cs []protocol.CustomerID) {
		t.Helper()
		if _, err := e.cat.PublishDistribution(ctx, admin, "acme", id, catalog.DistributionRequest{Campaign: camp, Kind: kind, Customers: cs}); err != nil {
			t.Fatal(err)
		}
	}
	e.clk.t = time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	publish("d1", "summer", pcatalog.DistributeCode, custs[:10])
	fill("d1", 100)
	e.clk.t = time.Date(2026, 11, 3, 23, 30, 0, 0, time.UTC)
	publish("d2", "summer", pcatalog.DistributeCode, custs[10:20])
	fill("d2", 4)
	e.clk.t = time.Date(2026, 11, 4, 0, 30, 0, 0, time.UTC)
	fill("d2", 100)
	e.clk.t = time.Date(2026, 11, 5, 12, 0, 0, 0, time.UTC)
	publish("d3", "mail", pcatalog.DistributeToken, custs[20:])
	fill("d3", 100)

	// The distributed codes as the test reads them, and their uses.
	type item struct {
		dist, camp, code string
		at               time.Time
	}
	var items []item
	rows, err := e.cat.DB().Query(`SELECT distribution, campaign, code, at FROM catalog_distribution_items WHERE tenant = 'acme' AND code IS NOT NULL`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var it item
		var at int64
		if err := rows.Scan(&it.dist, &it.camp, &it.code, &at); err != nil {
			t.Fatal(err)
		}
		it.at = time.UnixMicro(at)
		items = append(items, it)
	}
	rows.Close()
	if len(items) != 30 {
		t.Fatalf("%d distributed codes, want 30", len(items))
	}
	rng := rand.New(rand.NewPCG(15, 1))
	seq := map[protocol.AgentID]uint64{}
	var used, twice, voided int
	for i, it := range items {
		if rng.IntN(3) == 0 {
			continue
		}
		used++
		tills := []protocol.AgentID{"till-1"}
		if rng.IntN(5) == 0 {
			tills = append(tills, "till-2") // the same code at a second till: a conflict
			twice++
		}
		for _, a := range tills {
			seq[a]++
			r := protocol.Redemption{ID: protocol.RedemptionID{Agent: a, Seq: seq[a]}, Kind: protocol.KindRedeem, Tenant: "acme", Store: "s1",
				TxnID: fmt.Sprintf("t%d-%s", i, a), Currency: "EUR", OrderTot: 20_00, Discount: 2_00, Campaign: protocol.CampaignID(it.camp),
				Code: protocol.CodeID(it.code), HLC: ledger.HLCFromTime(it.at.Add(time.Hour)), Offline: true}
			batch := []protocol.Redemption{r}
			if len(tills) == 1 && rng.IntN(4) == 0 { // voided again
				seq[a]++
				rb := r
				rb.ID.Seq, rb.Kind, rb.Ref, rb.TxnID = seq[a], protocol.KindRollback, &protocol.RedemptionID{Agent: a, Seq: r.ID.Seq}, r.TxnID+"-void"
				batch = append(batch, rb)
				voided++
			}
			if _, _, err := e.led.ApplyBatch(ctx, "acme", a, batch); err != nil {
				t.Fatal(err)
			}
		}
	}
	if used == 0 || twice == 0 || voided == 0 {
		t.Fatalf("generated %d used codes, %d used twice, %d voided", used, twice, voided)
	}
	redeemed := func(code string) bool {
		var s int64
		if err := e.led.DB().QueryRow(`SELECT COALESCE(SUM(sign), 0) FROM ledger_journal WHERE tenant = 'acme' AND code = ?`, code).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s > 0
	}
	for _, rg := range [][2]string{{"2026-11-01", "2026-11-30"}, {"2026-11-03", "2026-11-04"}, {"2026-11-04", "2026-11-04"}, {"2026-11-03", "2026-11-03"}, {"2026-12-01", "2026-12-02"}} {
		from, _ := time.Parse(reports.DateLayout, rg[0])
		to, _ := time.Parse(reports.DateLayout, rg[1])
		to = to.AddDate(0, 0, 1)
		want := map[[2]string]*reports.DistributionRow{}
		add := func(k [2]string, camp string, red bool) {
			r := want[k]
			if r == nil {
				r = &reports.DistributionRow{Campaign: protocol.CampaignID(camp), Distribution: k[1]}
				want[k] = r
			}
			r.Distributed++
			if red {
				r.Redeemed++
			}
		}
		for _, it := range items {
			if it.at.Before(from) || !it.at.Before(to) {
				continue
			}
			red := redeemed(it.code)
			add([2]string{it.camp, ""}, it.camp, red)
			add([2]string{it.camp, it.dist}, it.camp, red)
		}
		var res reports.Result
		q := fmt.Sprintf("/v1/tenants/acme/reports/distribution?from=%s&to=%s", rg[0], rg[1])
		e.wantJSON(e.do("GET", q, ro, nil), 200, &res)
		if len(res.Distribution) != len(want) {
			t.Fatalf("%s: %d rows, want %d: %+v", q, len(res.Distribution), len(want), res.Distribution)
		}
		for i, r := range res.Distribution {
			w := want[[2]string{string(r.Campaign), r.Distribution}]
			if w == nil || w.Distributed != r.Distributed || w.Redeemed != r.Redeemed {
				t.Fatalf("%s: row %+v, want %+v", q, r, w)
			}
			if rate := float64(w.Redeemed) / float64(w.Distributed); r.Rate < rate-0.00005 || r.Rate > rate+0.00005 {
				t.Fatalf("%s: rate %v, want %v", q, r.Rate, rate)
			}
			if i > 0 && (res.Distribution[i-1].Campaign > r.Campaign || res.Distribution[i-1].Campaign == r.Campaign && res.Distribution[i-1].Distribution >= r.Distribution) {
				t.Fatalf("%s: rows out of order: %+v", q, res.Distribution)
			}
		}
		// CSV equals JSON.
		c := e.do("GET", q+"&format=csv", ro, nil)
		recs, err := csv.NewReader(bytes.NewReader(c.body)).ReadAll()
		if c.status != 200 || err != nil || len(recs) != len(res.Distribution)+1 {
			t.Fatalf("%s csv: %d %v %q", q, c.status, err, c.body)
		}
		for i, r := range res.Distribution {
			want := []string{string(r.Campaign), r.Distribution, strconv.FormatInt(r.Distributed, 10), strconv.FormatInt(r.Redeemed, 10), strconv.FormatFloat(r.Rate, 'f', 4, 64)}
			if fmt.Sprint(recs[i+1]) != fmt.Sprint(want) {
				t.Fatalf("%s csv row %d: %q, want %q", q, i, recs[i+1], want)
			}
		}
	}
	// The whole range: both campaigns, every distribution.
	var res reports.Result
	e.wantJSON(e.do("GET", "/v1/tenants/acme/reports/distribution?from=2026-11-01&to=2026-11-30", ro, nil), 200, &res)
	if len(res.Distribution) != 5 || res.By != "" {
		t.Fatalf("whole range: %+v", res)
	}
	e.wantErr(e.do("GET", "/v1/tenants/acme/reports/distribution?from=2026-11-01&to=2026-11-30&group=store", ro, nil), 400, protocol.CodeInvalidInput, "group")
	e.wantErr(e.do("GET", "/v1/tenants/acme/reports/distribution?from=2000-01-01&to=2026-11-30", ro, nil), 422, protocol.CodeReportRangeTooLong, "")
}
