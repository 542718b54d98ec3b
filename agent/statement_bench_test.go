package agent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/punchcard/punchcard/agent"
	"github.com/punchcard/punchcard/agent/agenttest"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/rules"
	"github.com/punchcard/punchcard/protocol/token"
	"github.com/punchcard/punchcard/store/agentdb"
)

// BenchmarkOfflineBurn is an offline till's durable redeem over the POS
// HTTP API, paid with points on a points statement (statement
// verification, the till's burns against its serial, the decision with
// automatic earning, and the commit with the statement row), against the
// same-run baseline of a store-bound signed token (verification,
// decision, commit). 1,024 statements rotate, so each serial carries a few
// burns, as a real one does.
func BenchmarkOfflineBurn(b *testing.B) {
	ctx := context.Background()
	setup := func(b *testing.B) (*agent.Agent, func(body []byte)) {
		db, err := agentdb.Open(ctx, filepath.Join(b.TempDir(), "agent.db"), agentdb.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
		a, err := agent.New(ctx, agenttest.Tenant, agenttest.Agent, db)
		if err != nil {
			b.Fatal(err)
		}
		a.Logger, a.POSToken = discardLogger(), agenttest.POSToken
		s := agenttest.Small(1, -1)
		var club rules.Campaign
		if err := json.Unmarshal([]byte(`{"schema":1,"id":"club","tenant":"`+string(agenttest.Tenant)+`","status":"active","currency":"EUR","trigger":"auto",
			"starts_at":"2023-11-14T22:13:20Z","reward":{"kind":"points","points":{"earn":[{"id":"spend","on":"spend","per_amount":100,"milli_points":1000}],"burn_points":1,"burn_value":1}}}`), &club); err != nil {
			b.Fatal(err)
		}
		s.Campaigns = append(s.Campaigns, club)
		s.Envelope.PerRedemption, s.Envelope.PerCampaign, s.Envelope.TotalAmount, s.Envelope.Count, s.Envelope.MaxStaleSeconds = -1, -1, -1, -1, -1
		if _, err := a.ApplySnapshot(ctx, agenttest.Encode(b, s), "s"); err != nil {
			b.Fatal(err)
		}
		srv := httptest.NewServer(a.Handler())
		b.Cleanup(srv.Close)
		c := srv.Client()
		return a, func(body []byte) { postBench(b, c, srv.URL+"/v1/redeem", body) }
	}
	run := func(b *testing.B, body func(i int) []byte) {
		_, post := setup(b)
		var lat latencies
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			bd := body(i)
			t0 := time.Now()
			post(bd)
			lat = append(lat, time.Since(t0))
			i++
		}
		lat.report(b)
	}
	b.Run("token", func(b *testing.B) {
		tok := agenttest.Token(b, agenttest.CampAmount, "TBENCH", 1<<30, agenttest.StoreID)
		run(b, func(i int) []byte {
			body, _ := json.Marshal(agent.RedeemRequest{TxnID: fmt.Sprintf("T%d", i), Basket: agent.Basket{Order: agenttest.Order(fmt.Sprintf("o%d", i), 10_00),
				Customer: &protocol.Customer{ID: "c1"}, Redeemables: []agent.Input{{Code: tok}}}})
			return body
		})
	})
	b.Run("statement", func(b *testing.B) {
		now := time.Now().UTC().Truncate(time.Second)
		stmts := make([]string, 1024)
		for i := range stmts {
			var err error
			if stmts[i], err = token.IssueStatement(agenttest.Key(), token.Statement{Customer: "c1", IssuedAt: now.Add(-time.Minute), AsOf: now.Add(-time.Minute),
				Expires: now.Add(time.Hour), Serial: protocol.CodeID(fmt.Sprintf("S%04d", i)), Points: 1 << 40}); err != nil {
				b.Fatal(err)
			}
		}
		run(b, func(i int) []byte {
			body, _ := json.Marshal(agent.RedeemRequest{TxnID: fmt.Sprintf("T%d", i), Basket: agent.Basket{Order: agenttest.Order(fmt.Sprintf("o%d", i), 10_00),
				Customer: &protocol.Customer{ID: "c1"}, Statement: stmts[i%len(stmts)], Redeemables: []agent.Input{{Campaign: "club", Amount: 5_00}}}})
			return body
		})
	})
}
