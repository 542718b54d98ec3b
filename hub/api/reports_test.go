package api_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/punchcard/punchcard/hub/reports"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/catalog"
	"github.com/punchcard/punchcard/store/ledger"
)

// reportsLedger builds a generated ledger for tenant acme between
// 2026-10-01 and 2026-11-22 (the EU's DST change on 25 October and the
// US's on 1 November inside): offline facts of three tills in three
// stores (redemptions of a reusable code and of an automatic campaign,
// points earned), rollbacks of some of them a few hours later (some
// across midnight), single-use codes used at two tills (conflicts), facts
// pinned at the Berlin and New York midnights around the DST changes, and
// online redemptions on the hub.
func reportsLedger(t *testing.T) *env {
	t.Helper()
	e := newEnv(t)
	ctx := context.Background()
	mk, sup := e.keys[catalog.RoleMarketer], e.keys[catalog.RoleSupport]
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, campaignDoc("summer", "active", percent10, `{"max_redemptions":100000,"max_discount":50000000}`)), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns/summer/codes/import", mk, map[string]any{"codes": []string{"POSTER"}, "uses": -1}), 201, nil)
	once := make([]string, 20)
	for i := range once {
		once[i] = fmt.Sprintf("ONCE-%d", i)
	}
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns/summer/codes/import", mk, map[string]any{"codes": once}), 201, nil)
	auto := campaignDoc("spring", "active", `{"kind":"percent_off","percent_bp":500}`, "")
	auto["trigger"] = "auto"
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, auto), 201, nil)
	club := campaignDoc("club", "active", clubExpiring, "")
	club["trigger"] = "auto"
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, club), 201, nil)
	for _, c := range []string{"c1", "c2", "c3"} {
		e.wantJSON(e.do("POST", "/v1/tenants/acme/customers", sup, map[string]any{"id": c}), 201, nil)
	}

	rng := rand.New(rand.NewPCG(13, 3))
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	span := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC).Sub(start)
	tills := []struct {
		agent protocol.AgentID
		store protocol.StoreID
	}{{"till-1", "berlin-1"}, {"till-2", "berlin-2"}, {"till-3", "ny-1"}}
	pinned := []time.Time{
		time.Date(2026, 10, 24, 21, 59, 59, 0, time.UTC), // Berlin 23:59:59 CEST, 24 Oct
		time.Date(2026, 10, 24, 22, 0, 0, 0, time.UTC),   // Berlin 00:00 CEST, 25 Oct
		time.Date(2026, 10, 25, 22, 59, 0, 0, time.UTC),  // Berlin 23:59 CET, 25 Oct (a 25-hour day)
		time.Date(2026, 10, 25, 23, 0, 0, 0, time.UTC),   // Berlin 00:00 CET, 26 Oct
		time.Date(2026, 11, 2, 4, 59, 0, 0, time.UTC),    // New York 23:59 EST, 1 Nov
		time.Date(2026, 11, 2, 5, 0, 0, 0, time.UTC),     // New York 00:00 EST, 2 Nov
		time.Date(2026, 10, 31, 23, 30, 0, 0, time.UTC),  // Berlin 1 Nov, New York 31 Oct
	}
	onceNext := 0
	for ti, till := range tills {
		var times []time.Time
		for range 120 {
			times = append(times, start.Add(time.Duration(rng.Int64N(int64(span)))))
		}
		times = append(times, pinned...)
		slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
		var batch []protocol.Redemption
		seq := uint64(0)
		var rollbacks []protocol.Redemption
		for i, at := range times {
			seq++
			r := protocol.Redemption{ID: protocol.RedemptionID{Agent: till.agent, Seq: seq}, Kind: protocol.KindRedeem, Tenant: "acme",
				Store: till.store, TxnID: fmt.Sprintf("%s-t%d", till.agent, i), OrderID: fmt.Sprintf("o%d", i), Currency: "EUR",
				OrderTot: 10_00 + rng.Int64N(200_00), HLC: ledger.HLCFromTime(at), Offline: true}
			switch k := rng.IntN(10); {
			case k < 4:
				r.Campaign, r.Code, r.Discount = "summer", "POSTER", r.OrderTot/10
			case k < 7:
				r.Campaign, r.Discount = "spring", r.OrderTot/20
			case k < 9:
				r.Kind, r.Campaign, r.Customer, r.Points = protocol.KindEarn, "club", protocol.CustomerID(fmt.Sprintf("c%d", 1+rng.IntN(3))), r.OrderTot/100
			default: // a single-use code, also used at the next till: a conflict
				r.Campaign, r.Code, r.Discount = "summer", protocol.CodeID(fmt.Sprintf("ONCE%d", onceNext%len(once))), 5_00
				onceNext++
			}
			batch = append(batch, r)
			if r.Kind == protocol.KindRedeem && rng.IntN(8) == 0 || r.Kind == protocol.KindEarn && rng.IntN(10) == 0 {
				rb := r
				rb.Kind, rb.Ref = protocol.KindRollback, &protocol.RedemptionID{Agent: r.ID.Agent, Seq: r.ID.Seq}
				rb.TxnID += "-void"
				rb.HLC = ledger.HLCFromTime(at.Add(time.Duration(1+rng.IntN(8)) * time.Hour))
				rollbacks = append(rollbacks, rb)
			}
		}
		for _, rb := range rollbacks {
			seq++
			rb.ID.Seq = seq
			batch = append(batch, rb)
		}
		if ti > 0 { // the previous till's single-use codes, again
			onceNext -= 3
		}
		for len(batch) > 0 {
			n := min(len(batch), 50)
			if _, _, err := e.led.ApplyBatch(ctx, "acme", till.agent, batch[:n]); err != nil {
				t.Fatal(err)
			}
			batch = batch[n:]
		}
	}
	// Online redemptions on the hub, one a day for a week.
	e.clk.t = time.Date(2026, 11, 15, 22, 30, 0, 0, time.UTC)
	for i := range 7 {
		e.wantJSON(e.do("POST", "/v1/tenants/acme/redeem", sup, map[string]any{"store": web, "order": order(int64(50_00 + i*100)),
			"redeemables": []any{map[string]any{"code": "POSTER"}}}, "Idempotency-Key", fmt.Sprintf("online-%d", i)), 200, nil)
		e.clk.Add(24 * time.Hour)
	}
	return e
}

// journalRow is one fact as the test reads it from the journal.
type journalRow struct {
	at                                          time.Time
	entry, campaign, store, agent, currency     string
	sign, discount, orderTotal, offline, points int64
	psign                                       int64
}

func readJournal(t *testing.T, e *env) []journalRow {
	t.Helper()
	rows, err := e.led.DB().Query(`SELECT hlc, entry, campaign, store, agent, currency, sign, discount, order_total, offline, psign, points
		FROM ledger_journal WHERE tenant = 'acme' AND hlc > 0`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []journalRow
	for rows.Next() {
		var r journalRow
		var hlc int64
		if err := rows.Scan(&hlc, &r.entry, &r.campaign, &r.store, &r.agent, &r.currency, &r.sign, &r.discount, &r.orderTotal, &r.offline, &r.psign, &r.points); err != nil {
			t.Fatal(err)
		}
		r.at = time.UnixMilli(hlc >> 16)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// expectedActivity sums the journal's facts in Go, per local period of
// loc (the calendar's own days, weeks and months) and group.
func expectedActivity(js []journalRow, loc *time.Location, from, to, by, group string) map[string]reports.ActivityRow {
	out := map[string]reports.ActivityRow{}
	for _, j := range js {
		local := j.at.In(loc)
		day := local.Format("2006-01-02")
		if day < from || day > to {
			continue
		}
		period := day
		if by == "week" || by == "month" {
			// the label is the period's first day, also when the range
			// starts within the period
			d, _ := time.Parse("2006-01-02", day)
			if by == "week" {
				period = d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7)).Format("2006-01-02")
			} else {
				period = d.Format("2006-01") + "-01"
			}
		}
		key := map[string]string{"": "", "campaign": j.campaign, "store": j.store, "till": j.agent}[group]
		k := period + "|" + key + "|" + j.currency
		a := out[k]
		a.Period, a.Key, a.Currency = period, key, protocol.Currency(j.currency)
		a.Redemptions += j.sign
		if j.entry == "rollback" && j.sign < 0 {
			a.Rollbacks++
		}
		a.Discount += j.sign * j.discount
		a.OrderValue += j.sign * j.orderTotal
		if j.offline != 0 {
			a.Offline += j.sign
		}
		a.PointsNet += j.psign * j.points
		if j.entry == "points_expired" {
			a.PointsExpired -= j.points
		}
		out[k] = a
	}
	for k, a := range out {
		if a.Redemptions > 0 {
			a.AOVWithReward = a.OrderValue / a.Redemptions
		}
		out[k] = a
	}
	return out
}

// TestReportsReconcile is issue 13's Done-when "Report figures equal sums
// computed independently from the journal in the test, on a generated
// ledger with offline facts, rollbacks and conflicts": every period of
// every unit and group, in two time zones across their DST changes,
// equals the test's own sum of the journal; over all time the campaign
// report equals the ledger's balances that Verify checks; CSV equals JSON.
func TestReportsReconcile(t *testing.T) {
	e := reportsLedger(t)
	ctx := context.Background()
	ro, admin := e.keys[catalog.RoleReadOnly], e.keys[catalog.RoleAdmin]
	if rep, err := e.led.Verify(ctx); err != nil || !rep.OK() {
		t.Fatalf("verify: %v %+v", err, rep)
	}
	var conflicts int
	if err := e.led.DB().QueryRow(`SELECT COUNT(*) FROM ledger_conflicts WHERE tenant = 'acme'`).Scan(&conflicts); err != nil || conflicts == 0 {
		t.Fatalf("the generated ledger has %d conflicts (%v)", conflicts, err)
	}
	js := readJournal(t, e)
	var rolled, offline, online int
	for _, j := range js {
		if j.entry == "rollback" && j.sign < 0 {
			rolled++
		}
		if j.offline != 0 {
			offline++
		} else {
			online++
		}
	}
	if rolled == 0 || offline == 0 || online == 0 {
		t.Fatalf("generated %d rollbacks, %d offline and %d online facts", rolled, offline, online)
	}
	for _, tz := range []string{"Europe/Berlin", "America/New_York"} {
		var got struct {
			TimeZone string `json:"time_zone"`
		}
		e.wantJSON(e.do("PUT", "/v1/tenants/acme/time-zone", admin, map[string]any{"time_zone": tz}), 200, &got)
		if got.TimeZone != tz {
			t.Fatalf("time zone %q, want %q", got.TimeZone, tz)
		}
		loc, _ := time.LoadLocation(tz)
		for _, rg := range [][2]string{{"2026-09-01", "2026-11-30"}, {"2026-10-25", "2026-11-02"}, {"2026-10-07", "2026-10-26"}} {
			for _, by := range []string{"day", "week", "month"} {
				for _, group := range []string{"", "campaign", "store", "till"} {
					name := fmt.Sprintf("%s/%s..%s/%s/%s", tz, rg[0], rg[1], by, group)
					q := fmt.Sprintf("/v1/tenants/acme/reports/activity?from=%s&to=%s&by=%s&group=%s", rg[0], rg[1], by, group)
					var res reports.Result
					e.wantJSON(e.do("GET", q, ro, nil), 200, &res)
					want := expectedActivity(js, loc, rg[0], rg[1], by, group)
					if len(res.Activity) != len(want) {
						t.Fatalf("%s: %d rows, want %d", name, len(res.Activity), len(want))
					}
					for _, a := range res.Activity {
						w := want[a.Period+"|"+a.Key+"|"+string(a.Currency)]
						w.Start, w.End = a.Start, a.End
						if a != w {
							t.Fatalf("%s: row\n%+v, want\n%+v", name, a, w)
						}
						if s := a.Start.In(loc); s.Hour() != 0 || s.Minute() != 0 || !a.End.After(a.Start) {
							t.Fatalf("%s: period %s..%s does not start at a local midnight", name, a.Start, a.End)
						}
					}
					if by == "day" && group == "store" && rg[0] == "2026-09-01" {
						c := e.do("GET", q+"&format=csv", ro, nil)
						recs, err := csv.NewReader(bytes.NewReader(c.body)).ReadAll()
						if err != nil || c.status != 200 || len(recs) != len(res.Activity)+1 {
							t.Fatalf("%s: CSV %d, %d records (%v), want %d", name, c.status, len(recs), err, len(res.Activity)+1)
						}
						for i, a := range res.Activity {
							r := recs[i+1]
							if r[0] != a.Period || r[3] != a.Key || r[5] != strconv.FormatInt(a.Redemptions, 10) || r[7] != strconv.FormatInt(a.Discount, 10) {
								t.Fatalf("%s: CSV row %v, JSON %+v", name, r, a)
							}
						}
					}
				}
			}
		}
	}
	// Over all time, per campaign: the balances Verify recomputes.
	var res reports.Result
	e.wantJSON(e.do("GET", "/v1/tenants/acme/reports/activity?from=2020-01-01&to=2026-12-31&by=month&group=campaign", ro, nil), 200, &res)
	sum := map[string][3]int64{}
	for _, a := range res.Activity {
		s := sum[a.Key]
		s[0], s[1], s[2] = s[0]+a.Redemptions, s[1]+a.Discount, s[2]+a.OrderValue
		sum[a.Key] = s
	}
	for _, c := range []protocol.CampaignID{"summer", "spring"} {
		b, err := e.led.Campaign(ctx, "acme", c)
		if err != nil {
			t.Fatal(err)
		}
		if s := sum[string(c)]; s != [3]int64{b.Count, b.Discount, b.OrderValue} {
			t.Fatalf("campaign %s: report %v, ledger balance %+v", c, s, b)
		}
	}
	var points, pointsBal int64
	for _, a := range res.Activity {
		points += a.PointsNet
	}
	if err := e.led.DB().QueryRow(`SELECT SUM(points) FROM ledger_customers WHERE tenant = 'acme'`).Scan(&pointsBal); err != nil {
		t.Fatal(err)
	}
	if points != pointsBal || points == 0 {
		t.Fatalf("points: report %d, customers' balances %d", points, pointsBal)
	}
	// Conflicts by kind equal the conflicts table.
	e.wantJSON(e.do("GET", "/v1/tenants/acme/reports/conflicts?from=2026-11-01&to=2026-12-31&by=month", ro, nil), 200, &res)
	var n int64
	for _, c := range res.Conflicts {
		n += c.Count
	}
	if n != int64(conflicts) {
		t.Fatalf("conflicts report %d, table %d: %+v", n, conflicts, res.Conflicts)
	}
	// Balances: the summer budget less what was used.
	e.wantJSON(e.do("GET", "/v1/tenants/acme/reports/balances", ro, nil), 200, &res)
	b, _ := e.led.Campaign(ctx, "acme", "summer")
	for _, u := range res.Balances.Budgets {
		if u.Campaign == "summer" && (u.UsedCount != b.Count || u.LeftCount == nil || *u.LeftCount != 100000-b.Count-u.EscrowedCount) {
			t.Fatalf("summer budget %+v, ledger %+v", u, b)
		}
	}
	if res.Balances.PointsOutstanding != pointsBal {
		t.Fatalf("points outstanding %d, want %d", res.Balances.PointsOutstanding, pointsBal)
	}
}

func berlinLoc(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}
