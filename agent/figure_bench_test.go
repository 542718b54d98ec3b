package agent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/punchcard/punchcard/agent"
	"github.com/punchcard/punchcard/agent/agenttest"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/store/agentdb"
)

// BenchmarkValidateHTTPExact is BenchmarkValidateHTTP with a snapshot
// from a hub that says which of the till's facts its figures count
// (Reflected) and 1,000 own redemptions not yet counted: each validate
// adds the till's own uses beyond the watermark to the hub's figure
// (agentdb.CodeFigure), on codes half of which the till used.
func BenchmarkValidateHTTPExact(b *testing.B) {
	ctx := context.Background()
	db, err := agentdb.Open(ctx, filepath.Join(b.TempDir(), "agent.db"), agentdb.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	a, err := agent.New(ctx, agenttest.Tenant, agenttest.Agent, db)
	if err != nil {
		b.Fatal(err)
	}
	a.Logger = discardLogger()
	a.POSToken = agenttest.POSToken
	s := agenttest.Large(benchCampaigns, benchCodes)
	s.Reflected = &snapshot.Reflected{}
	if _, err := a.ApplySnapshot(ctx, agenttest.Encode(b, s), "large"); err != nil {
		b.Fatal(err)
	}
	const used = 1000
	for i := range used {
		if _, err := a.Redeem(ctx, redeem(fmt.Sprintf("U%d", i), basket(100_00, agenttest.LargeCode(i*2)))); err != nil {
			b.Fatal(err)
		}
	}
	srv := httptest.NewServer(a.Handler())
	b.Cleanup(srv.Close)
	c := srv.Client()
	bodies := make([][]byte, 1024)
	for i := range bodies {
		bodies[i], _ = json.Marshal(basket(100_00, agenttest.LargeCode(rand.IntN(2*used))))
	}
	var lat latencies
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		t0 := time.Now()
		postBench(b, c, srv.URL+"/v1/validate", bodies[i%len(bodies)])
		lat = append(lat, time.Since(t0))
		i++
	}
	lat.report(b)
}
