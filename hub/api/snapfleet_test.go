package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/punchcard/punchcard/hub/api"
	"github.com/punchcard/punchcard/hub/snapshots"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/protocol/wire"
	"github.com/punchcard/punchcard/store/catalog"
	"github.com/punchcard/punchcard/store/ledger"
)

// snapTill is one simulated till of BenchmarkSnapshotFleet: its key and
// what it holds (as agent/uplink keeps it).
type snapTill struct {
	id            protocol.AgentID
	store         protocol.StoreID
	secret        string
	version, uses uint64
	customers     uint64
	etag          string
	seq           uint64
}

// snapFleet is the fleet's tenant as cmd/punchcard/internal/fleet
// provisions it, scaled down: an automatic campaign with a budget (every
// till holds an allowance of it and every sale uses it), a code-triggered
// campaign with one unlimited multi-use code that about half the sales
// present, 200 single-use codes of a third campaign (a chain's printed
// coupons), and tills tills in tills/5 stores, each with its allowance
// and a full snapshot.
func snapFleet(b *testing.B, tills int) (*env, []*snapTill) {
	b.Helper()
	ctx := context.Background()
	e := newEnv(b, func(c *api.Config) {
		c.AnonRateLimit = 1 << 30 // the harness is one client
		// The snapshot service as the hub wires it (hub/hub.go): over the
		// ledger alone, so the one ledger read of a body takes the till's
		// escrow too (hub/snapshots, held.go).
		var err error
		if c.Snapshots, err = snapshots.New(c.Catalog, snapshots.Options{Ledger: c.Ledger.(snapshots.Ledger), Now: c.Now}); err != nil {
			b.Fatal(err)
		}
	})
	mk := e.keys[catalog.RoleMarketer]
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, campaignDoc("everyday", "active", percent10, `{"max_redemptions":1000000000}`)), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, campaignDoc("welcome", "active", `{"kind":"amount_off","amount":200}`, "")), 201, nil)
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, campaignDoc("coupon", "active", percent10, "")), 201, nil)
	if _, err := e.cat.ImportCodes(ctx, catalog.System, "acme", "welcome", []string{"WELCOME5"}, catalog.CodeSpec{Uses: -1}); err != nil {
		b.Fatal(err)
	}
	if _, err := e.cat.GenerateCodes(ctx, catalog.System, "acme", "coupon", catalog.GenerateRequest{Count: 200, CodeSpec: catalog.CodeSpec{Uses: 1}}); err != nil {
		b.Fatal(err)
	}
	var ts []*snapTill
	for i := range tills {
		t := &snapTill{id: protocol.AgentID(fmt.Sprintf("ft-%04d", i)), store: protocol.StoreID(fmt.Sprintf("fs-%03d", i/5))}
		var err error
		if _, t.secret, err = e.cat.RegisterAgent(ctx, catalog.System, catalog.Agent{Tenant: "acme", ID: t.id,
			Store: snapshot.Store{ID: t.store, TimeZone: "Europe/Berlin"}}); err != nil {
			b.Fatal(err)
		}
		if r := e.do("POST", wire.PathAllowances, t.secret, map[string]any{"campaign": "everyday", "request_id": "r-" + string(t.id)}); r.status != 200 {
			b.Fatalf("allowance: %d %s", r.status, r.body)
		}
		ts = append(ts, t)
	}
	for _, t := range ts {
		t.fetch(b, e, nil)
	}
	return e, ts
}

// fetch is the till's poll: a delta since its version, code-use and
// customer-state positions with If-None-Match, or a full snapshot at first. It returns
// the status and the body's size; cpu, when not nil, adds the process CPU
// time of the request (not the till's decode).
func (t *snapTill) fetch(b *testing.B, e *env, cpu *time.Duration) (int, int) {
	c0 := cpuTime()
	r := e.do("GET", wire.SnapshotPathCustomers(t.version, t.uses, t.version > 0, t.customers), t.secret, nil, "Accept", wire.ContentTypeCBOR, "If-None-Match", t.etag)
	if cpu != nil {
		*cpu += cpuTime() - c0
	}
	if r.status == http.StatusNotModified {
		return r.status, 0
	}
	if r.status != http.StatusOK {
		b.Fatalf("snapshot: %d %s", r.status, r.body)
	}
	s, err := snapshot.Decode(r.body)
	if err != nil {
		b.Fatal(err)
	}
	t.version, t.uses, t.customers, t.etag = s.Version, s.Uses, s.Customers, r.header.Get("ETag")
	return r.status, len(r.body)
}

// sale records one sale of the till at the hub as ingest does (its
// facts through the ledger's apply path): the automatic campaign, and on
// every other sale the multi-use code.
func (t *snapTill) sale(b *testing.B, e *env) {
	at := ledger.HLCFromTime(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	t.seq++
	rs := []protocol.Redemption{{ID: protocol.RedemptionID{Agent: t.id, Seq: t.seq}, Kind: protocol.KindRedeem, Tenant: "acme", Store: t.store,
		TxnID: fmt.Sprintf("%s-%d", t.id, t.seq), Campaign: "everyday", Currency: "EUR", Discount: 100, OrderTot: 1000, HLC: at, Offline: true}}
	if t.seq%2 == 0 {
		t.seq++
		rs = append(rs, protocol.Redemption{ID: protocol.RedemptionID{Agent: t.id, Seq: t.seq}, Kind: protocol.KindRedeem, Tenant: "acme", Store: t.store,
			TxnID: rs[0].TxnID, Campaign: "welcome", Code: "WELCOME5", Currency: "EUR", Discount: 200, OrderTot: 1000, HLC: at, Offline: true})
	}
	if _, _, err := e.led.ApplyBatch(context.Background(), "acme", t.id, rs); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSnapshotFleet is the hub's CPU per snapshot fetch as the
// fleet makes them (cmd/punchcard/internal/fleet, docs/operations.md):
// 100 tills of 20 stores poll in turn (the agent's 30 s poll, with its
// version, code-use position and ETag) while every till sells between two
// of its polls, so each poll finds its own allowance and the tenant's
// code-use position moved (Poll); and, in Change, every till fetches the
// delta of a campaign change (the burst after an announcement) while the
// sales go on; Baseline is the harness's own cost per request (GET
// /healthz in place of the fetch), to subtract. The hub's clock moves 30 s
// per round of the tills. Each op is one sale (not measured) and one fetch;
// fetch-cpu-µs is the process CPU time (user+sys) spent in the fetches
// alone, the figure to compare between builds of the hub (alternated,
// same machine).
func BenchmarkSnapshotFleet(b *testing.B) {
	const tills = 100
	for _, mode := range []string{"Baseline", "Poll", "Change"} {
		b.Run(mode, func(b *testing.B) {
			e, ts := snapFleet(b, tills)
			mk := e.keys[catalog.RoleMarketer]
			var cpu time.Duration
			var bytes, notMod, changes int
			i := 0
			for b.Loop() {
				if mode == "Change" && i%tills == 0 {
					changes++
					e.wantJSON(e.do("PUT", "/v1/tenants/acme/campaigns/everyday", mk,
						campaignDoc("everyday", "active", `{"kind":"percent_off","percent_bp":`+strconv.Itoa(500+changes%100)+`}`, `{"max_redemptions":1000000000}`)), 200, nil)
				}
				e.clk.Add(30 * time.Second / tills) // each till polls every 30 s
				ts[(i+tills/2)%tills].sale(b, e)
				t := ts[i%tills]
				i++
				if mode == "Baseline" {
					// The same request's cost in this harness without the
					// route's work: GET /healthz.
					c0 := cpuTime()
					if r := e.do("GET", "/healthz", "", nil); r.status != http.StatusOK {
						b.Fatalf("healthz: %d", r.status)
					}
					cpu += cpuTime() - c0
					continue
				}
				status, n := t.fetch(b, e, &cpu)
				bytes += n
				if status == http.StatusNotModified {
					notMod++
				}
			}
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "fetch-cpu-µs")
			b.ReportMetric(float64(notMod)/float64(b.N), "304-share")
			b.ReportMetric(float64(bytes)/float64(b.N), "bytes/op")
		})
	}
}
