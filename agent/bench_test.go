package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/punchcard/punchcard/agent"
	"github.com/punchcard/punchcard/agent/agenttest"
	"github.com/punchcard/punchcard/store/agentdb"
)

// Benchmark sizes from the issue: 1,000 campaigns, 100,000 cached codes.
const (
	benchCampaigns = 1000
	benchCodes     = 100_000
)

func benchServer(b *testing.B) *httptest.Server {
	b.Helper()
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
	if _, err := a.ApplySnapshot(ctx, agenttest.Encode(b, agenttest.Large(benchCampaigns, benchCodes)), "large"); err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	b.Cleanup(srv.Close)
	return srv
}

// latencies records per-request durations and reports p50 and p99.
type latencies []time.Duration

func (l latencies) report(b *testing.B) {
	if len(l) == 0 {
		return
	}
	slices.Sort(l)
	b.ReportMetric(float64(l[len(l)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(l[len(l)*99/100].Nanoseconds()), "p99-ns")
}

func postBench(b *testing.B, c *http.Client, url string, body []byte) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	agenttest.AuthorizePOS(req, agenttest.POSToken)
	resp, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		b.Fatalf("%s: %d %s", url, resp.StatusCode, out)
	}
}

// BenchmarkValidateHTTP is the hot path: a scanned code checked against
// the cached list and evaluated, over the local HTTP API.
func BenchmarkValidateHTTP(b *testing.B) {
	srv := benchServer(b)
	c := srv.Client()
	bodies := make([][]byte, 1024)
	for i := range bodies {
		bodies[i], _ = json.Marshal(basket(100_00, agenttest.LargeCode(rand.IntN(benchCodes))))
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

// BenchmarkRedeemHTTP is a durable redeem: evaluation, then redemption,
// outbox row, code use and idempotency record committed with
// synchronous=FULL before the answer.
func BenchmarkRedeemHTTP(b *testing.B) {
	srv := benchServer(b)
	c := srv.Client()
	var lat latencies
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		body, _ := json.Marshal(redeem(fmt.Sprintf("B%d", i), basket(100_00, agenttest.LargeCode(i%benchCodes))))
		t0 := time.Now()
		postBench(b, c, srv.URL+"/v1/redeem", body)
		lat = append(lat, time.Since(t0))
		i++
		if i == benchCodes {
			b.Fatal("ran out of single-use codes")
		}
	}
	lat.report(b)
}
