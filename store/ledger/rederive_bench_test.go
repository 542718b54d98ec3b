package ledger_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/rules"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/store"
	"github.com/punchcard/punchcard/store/catalog"
	"github.com/punchcard/punchcard/store/ledger"
)

// rederiveTills is how many tills the re-derivation benchmark's facts
// come from.
const rederiveTills = 50

// hubLedger opens a catalog and a ledger on one database file, as the hub
// does, with the rederiveTills agents and the campaigns of a store chain:
// an automatic promotion, a percent code, an amount code, a points program
// and a few campaigns that never apply. With rederive the ledger re-runs
// every till fact (Options.Rules).
func hubLedger(b testing.TB, rederive bool) (*ledger.Ledger, *catalog.Catalog, uint64) {
	b.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(b.TempDir(), "hub.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	cat, err := catalog.New(ctx, db)
	if err != nil {
		b.Fatal(err)
	}
	opts := ledger.Options{Facts: cat}
	if rederive {
		opts.Rules = cat
	}
	l, err := ledger.New(ctx, db, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	if _, err := cat.CreateTenant(ctx, catalog.System, catalog.Tenant{ID: tenant, Name: "Acme", Currency: "EUR"}); err != nil {
		b.Fatal(err)
	}
	for i := range rederiveTills {
		if _, _, err := cat.RegisterAgent(ctx, catalog.System, catalog.Agent{Tenant: tenant, ID: protocol.AgentID(fmt.Sprintf("till-%d", i)),
			Store: snapshot.Store{ID: protocol.StoreID(fmt.Sprintf("store-%d", i%10)), TimeZone: "Europe/Berlin"}}); err != nil {
			b.Fatal(err)
		}
	}
	docs := []string{
		`{"schema":1,"id":"auto3","tenant":"acme","status":"active","currency":"EUR","trigger":"auto","reward":{"kind":"amount_off","amount":300},"eligibility":{"min_subtotal":5000}}`,
		`{"schema":1,"id":"summer","tenant":"acme","status":"active","currency":"EUR","reward":{"kind":"percent_off","percent_bp":1000}}`,
		`{"schema":1,"id":"five","tenant":"acme","status":"active","currency":"EUR","reward":{"kind":"amount_off","amount":500},"eligibility":{"min_subtotal":2000}}`,
		`{"schema":1,"id":"loyal","tenant":"acme","status":"active","currency":"EUR","reward":{"kind":"points","points":{"earn":[{"id":"spend","on":"spend","per_amount":100,"milli_points":1000}]}}}`,
	}
	for i := range 8 {
		docs = append(docs, fmt.Sprintf(`{"schema":1,"id":"other%d","tenant":"acme","status":"active","currency":"EUR","trigger":"auto","reward":{"kind":"percent_off","percent_bp":500},"eligibility":{"min_subtotal":%d}}`, i, 1_000_000_00+i))
	}
	for _, d := range docs {
		if _, err := cat.CreateCampaign(ctx, catalog.System, tenant, []byte(d)); err != nil {
			b.Fatal(err)
		}
	}
	for _, c := range []struct {
		camp protocol.CampaignID
		code string
	}{{"summer", "SUMMER10"}, {"five", "FIVE"}} {
		if _, err := cat.ImportCodes(ctx, catalog.System, tenant, c.camp, []string{c.code}, catalog.CodeSpec{Uses: -1}); err != nil {
			b.Fatal(err)
		}
	}
	tn, err := cat.Tenant(ctx, tenant)
	if err != nil {
		b.Fatal(err)
	}
	return l, cat, tn.Version
}

// honestMessages are the MQTT messages of n sales spread over the tills:
// each sale's facts (a code's redemption on two of three sales, the
// automatic promotion's when the basket reaches it, the points earned
// with a customer) as an honest till records them, decided by the rules
// engine on the catalog's version v, one or two facts per message.
func honestMessages(b *testing.B, cat *catalog.Catalog, v uint64, n int) []ledger.Batch {
	b.Helper()
	ctx := context.Background()
	rc, ok, err := cat.RulesAt(ctx, tenant, v)
	if err != nil || !ok {
		b.Fatalf("rules at %d: %v %v", v, ok, err)
	}
	seqs := make([]uint64, rederiveTills)
	var out []ledger.Batch
	at := time.Now().Add(-time.Minute)
	for i := range n {
		till := i % rederiveTills
		agent := protocol.AgentID(fmt.Sprintf("till-%d", till))
		st, _, err := cat.AgentStore(ctx, tenant, agent)
		if err != nil {
			b.Fatal(err)
		}
		lines := []protocol.Line{
			{SKU: rules.CompactPlaceholder, Quantity: 1, UnitPrice: int64(10_00 + i%40*100)},
			{SKU: rules.CompactPlaceholder, Quantity: int64(1 + i%3), UnitPrice: 4_99},
			{SKU: rules.CompactPlaceholder, Quantity: 2, UnitPrice: int64(1_00 + i%7*50)},
		}
		s := &protocol.Sale{Lines: lines, At: at.UnixMilli()}
		var cust protocol.CustomerID
		if i%2 == 0 {
			cust = protocol.CustomerID(fmt.Sprintf("cust-%d", i%1000))
			s.Customer = &protocol.Customer{ID: cust}
		}
		req := rules.Request{Tenant: tenant, Order: protocol.Order{Currency: "EUR", Lines: lines}, Customer: s.Customer, Store: st, Now: at}
		switch i % 3 {
		case 0:
			s.Presented = []protocol.Presented{{Kind: protocol.PresentedCode, Code: "SUMMER10"}}
			req.Redeemables = []rules.Redeemable{{Kind: rules.RedeemCode, Code: "SUMMER10", Campaign: "summer"}}
		case 1:
			s.Presented = []protocol.Presented{{Kind: protocol.PresentedCode, Code: "FIVE"}}
			req.Redeemables = []rules.Redeemable{{Kind: rules.RedeemCode, Code: "FIVE", Campaign: "five"}}
		}
		d := rules.Evaluate(rc.Cat, req)
		if d.Error != nil {
			b.Fatal(d.Error)
		}
		var facts []protocol.Redemption
		fact := func() protocol.Redemption {
			seqs[till]++
			return protocol.Redemption{ID: protocol.RedemptionID{Agent: agent, Seq: seqs[till]}, Tenant: tenant, Store: st.ID,
				TxnID: fmt.Sprintf("txn-%d", i), Customer: cust, Currency: "EUR", OrderTot: d.Subtotal, HLC: ledger.HLCFromTime(at),
				Offline: true, Snapshot: v, Sale: s}
		}
		for _, res := range d.Results {
			if res.Applied {
				r := fact()
				r.Kind, r.Campaign, r.Code, r.Discount = protocol.KindRedeem, res.Campaign, res.Code, res.Discount
				facts = append(facts, r)
			}
		}
		for _, e := range d.Earnings {
			r := fact()
			r.Kind, r.Campaign, r.Points = protocol.KindEarn, e.Campaign, e.Points
			facts = append(facts, r)
		}
		for len(facts) > 0 {
			k := min(len(facts), 2)
			out = append(out, ledger.Batch{Tenant: tenant, Agent: agent, Redemptions: facts[:k]})
			facts = facts[k:]
		}
	}
	return out
}

// BenchmarkApplyRederive is the ledger's apply of honest till facts with
// the re-derivation on (as the hub runs it) and the same facts applied by
// a ledger without it, interleaved round by round in the same run: one op
// is one fact, messages of one or two facts from rederiveTills tills,
// applied 16 messages per transaction as ingest groups them. on-ns/fact
// and off-ns/fact are the medians over rounds, ratio their quotient.
func BenchmarkApplyRederive(b *testing.B) {
	ctx := context.Background()
	on, catOn, vOn := hubLedger(b, true)
	off, catOff, vOff := hubLedger(b, false)
	sales := max(b.N/2, 64)
	msgsOn := honestMessages(b, catOn, vOn, sales)
	msgsOff := honestMessages(b, catOff, vOff, sales)
	const group = 16
	var tOn, tOff []float64
	facts := 0
	b.ResetTimer()
	for i := 0; i < len(msgsOn) && facts < b.N; i += group {
		j := min(i+group, len(msgsOn))
		n := 0
		for _, m := range msgsOn[i:j] {
			n += len(m.Redemptions)
		}
		t := time.Now()
		res, err := on.ApplyBatches(ctx, msgsOn[i:j])
		if err != nil {
			b.Fatal(err)
		}
		tOn = append(tOn, float64(time.Since(t).Nanoseconds())/float64(n))
		b.StopTimer()
		for _, r := range res {
			if r.Err != nil || len(r.Conflicts) != 0 {
				b.Fatalf("honest facts: %v %+v", r.Err, r.Conflicts)
			}
		}
		t = time.Now()
		if _, err := off.ApplyBatches(ctx, msgsOff[i:j]); err != nil {
			b.Fatal(err)
		}
		tOff = append(tOff, float64(time.Since(t).Nanoseconds())/float64(n))
		b.StartTimer()
		facts += n
	}
	b.StopTimer()
	mOn, mOff := median(tOn), median(tOff)
	b.ReportMetric(mOn, "on-ns/fact")
	b.ReportMetric(mOff, "off-ns/fact")
	b.ReportMetric(mOn/mOff, "ratio")
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	return v[len(v)/2]
}
