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
	"github.com/punchcard/punchcard/store/catalog"
	"github.com/punchcard/punchcard/store/ledger"
)

// TestReportAOVReconcile is issue 13's Deliver 3 "AOV with and without a
// reward": orders of known customers at two tills, some with a reward,
// some whose reward was voided later, some only earning points, some with
// a reward and points in one transaction, and anonymous orders (not in
// the purchase history); the aov report by day and month in two time
// zones equals the test's own sums of the orders it generated.
func TestReportAOVReconcile(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	mk, ro, adm := e.keys[catalog.RoleMarketer], e.keys[catalog.RoleReadOnly], e.keys[catalog.RoleAdmin]
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, campaignDoc("summer", "active", percent10, "")), 201, nil)
	club := campaignDoc("club", "active", clubExpiring, "")
	club["trigger"] = "auto"
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, club), 201, nil)

	type order struct {
		at       time.Time
		value    int64
		rewarded bool
		known    bool
	}
	var orders []order
	rng := rand.New(rand.NewPCG(15, 2))
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	kinds := map[int]int{}
	for ti, agent := range []protocol.AgentID{"till-1", "till-2"} {
		var batch []protocol.Redemption
		seq := uint64(0)
		next := func(r protocol.Redemption) protocol.Redemption {
			seq++
			r.ID = protocol.RedemptionID{Agent: agent, Seq: seq}
			batch = append(batch, r)
			return r
		}
		for i := range 150 {
			at := start.Add(time.Duration(rng.Int64N(int64(31 * 24 * time.Hour))))
			if i == 0 {
				at = time.Date(2026, 10, 25, 22, 30, 0, 0, time.UTC) // Berlin 26 Oct, UTC 25 Oct
			}
			base := protocol.Redemption{Tenant: "acme", Store: protocol.StoreID(fmt.Sprintf("s%d", ti)), TxnID: fmt.Sprintf("t%d", i), Currency: "EUR",
				OrderTot: 5_00 + rng.Int64N(100_00), HLC: ledger.HLCFromTime(at), Offline: true, Customer: protocol.CustomerID(fmt.Sprintf("c%d", rng.IntN(20)))}
			redeem := base
			redeem.Kind, redeem.Campaign, redeem.Code, redeem.Discount = protocol.KindRedeem, "summer", "POSTER", base.OrderTot/10
			earn := base
			earn.Kind, earn.Campaign, earn.Points = protocol.KindEarn, "club", base.OrderTot/100
			o := order{at: at, value: base.OrderTot, known: true}
			k := rng.IntN(5)
			kinds[k]++
			switch k {
			case 0: // a reward
				next(redeem)
				o.rewarded = true
			case 1: // a reward voided later: an order without one
				r := next(redeem)
				rb := r
				rb.Kind, rb.Ref, rb.TxnID = protocol.KindRollback, &protocol.RedemptionID{Agent: agent, Seq: r.ID.Seq}, r.TxnID+"-void"
				rb.HLC = ledger.HLCFromTime(at.Add(time.Hour))
				next(rb)
			case 2: // points only
				next(earn)
			case 3: // a reward and points in one transaction: one order
				next(redeem)
				next(earn)
				o.rewarded = true
			default: // an anonymous order with a reward: no purchase row
				redeem.Customer = ""
				next(redeem)
				o.known = false
			}
			orders = append(orders, o)
		}
		for len(batch) > 0 {
			n := min(len(batch), 50)
			if _, _, err := e.led.ApplyBatch(ctx, "acme", agent, batch[:n]); err != nil {
				t.Fatal(err)
			}
			batch = batch[n:]
		}
	}
	for k := range 5 {
		if kinds[k] == 0 {
			t.Fatalf("no order of kind %d", k)
		}
	}
	for _, tz := range []string{"UTC", "Europe/Berlin"} {
		e.wantJSON(e.do("PUT", "/v1/tenants/acme/time-zone", adm, map[string]any{"time_zone": tz}), 200, nil)
		loc, _ := time.LoadLocation(tz)
		for _, by := range []string{"day", "month"} {
			want := map[string]*reports.AOVRow{}
			for _, o := range orders {
				if !o.known {
					continue
				}
				l := o.at.In(loc)
				if l.Month() != time.October {
					continue
				}
				p := l.Format(reports.DateLayout)
				if by == "month" {
					p = "2026-10-01"
				}
				r := want[p]
				if r == nil {
					r = &reports.AOVRow{Period: p, Currency: "EUR"}
					want[p] = r
				}
				if o.rewarded {
					r.OrdersWithReward++
					r.ValueWithReward += o.value
				} else {
					r.OrdersWithoutReward++
					r.ValueWithoutReward += o.value
				}
			}
			var res reports.Result
			q := "/v1/tenants/acme/reports/aov?from=2026-10-01&to=2026-10-31&by=" + by
			e.wantJSON(e.do("GET", q, ro, nil), 200, &res)
			if len(res.AOV) != len(want) {
				t.Fatalf("%s %s: %d rows, want %d", tz, q, len(res.AOV), len(want))
			}
			var with, without int64
			for _, r := range res.AOV {
				w := want[r.Period]
				if w == nil || r.Currency != "EUR" || r.OrdersWithReward != w.OrdersWithReward || r.ValueWithReward != w.ValueWithReward ||
					r.OrdersWithoutReward != w.OrdersWithoutReward || r.ValueWithoutReward != w.ValueWithoutReward {
					t.Fatalf("%s %s: row %+v, want %+v", tz, q, r, w)
				}
				if r.OrdersWithReward > 0 && r.AOVWithReward != r.ValueWithReward/r.OrdersWithReward ||
					r.OrdersWithoutReward > 0 && r.AOVWithoutReward != r.ValueWithoutReward/r.OrdersWithoutReward {
					t.Fatalf("%s %s: averages of %+v", tz, q, r)
				}
				with += r.OrdersWithReward
				without += r.OrdersWithoutReward
			}
			if with == 0 || without == 0 {
				t.Fatalf("%s %s: %d orders with a reward, %d without", tz, q, with, without)
			}
			c := e.do("GET", q+"&format=csv", ro, nil)
			recs, err := csv.NewReader(bytes.NewReader(c.body)).ReadAll()
			if c.status != 200 || err != nil || len(recs) != len(res.AOV)+1 {
				t.Fatalf("%s csv: %d %v %q", q, c.status, err, c.body)
			}
			n := func(v int64) string { return strconv.FormatInt(v, 10) }
			for i, a := range res.AOV {
				want := []string{a.Period, a.Start.Format(time.RFC3339), a.End.Format(time.RFC3339), "EUR", n(a.OrdersWithReward), n(a.ValueWithReward),
					n(a.AOVWithReward), n(a.OrdersWithoutReward), n(a.ValueWithoutReward), n(a.AOVWithoutReward)}
				if fmt.Sprint(recs[i+1]) != fmt.Sprint(want) {
					t.Fatalf("%s csv row %d: %q, want %q", q, i, recs[i+1], want)
				}
			}
		}
	}
}
