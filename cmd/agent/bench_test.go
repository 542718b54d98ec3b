package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/punchcard/punchcard/agent"
	"github.com/punchcard/punchcard/agent/agenttest"
	"github.com/punchcard/punchcard/agent/uplink/mqtttest"
)

// peakRSS is the process's peak resident set size (VmHWM) in MB.
func peakRSS(b *testing.B, pid int) float64 {
	b.Helper()
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Skip("no /proc")
	}
	for _, l := range strings.Split(string(st), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	b.Fatal("no VmHWM")
	return 0
}

// BenchmarkProcess measures the agent as it runs on a till: its own
// process, a snapshot of 1,000 campaigns and 100,000 codes pulled from the
// hub, and the POS calling the local HTTP API. It reports p50 and p99
// latency and the process's peak RSS.
func BenchmarkProcess(b *testing.B) {
	bin := buildAgent(b)
	brokerURL := mqtttest.Embedded(b, "127.0.0.1:0").URL()
	hub := mqtttest.StartHub(b, agenttest.Tenant, brokerURL)
	const codes = 100_000
	hub.SetSnapshot(b, agenttest.Large(1000, codes))
	p := startProc(b, bin, b.TempDir(), brokerURL, hub.URL)
	waitFor(b, "snapshot", func() bool { return p.status(b).SnapshotVersion == 1 })
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	post := func(path string, body []byte) time.Duration {
		t0 := time.Now()
		req, err := http.NewRequest(http.MethodPost, p.base+path, bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		agenttest.AuthorizePOS(req, p.token)
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		d := time.Since(t0)
		if resp.StatusCode != 200 {
			b.Fatalf("%s: %d %s", path, resp.StatusCode, out)
		}
		return d
	}
	report := func(b *testing.B, lat []time.Duration) {
		slices.Sort(lat)
		if len(lat) > 0 {
			b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
			b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
		}
		b.ReportMetric(peakRSS(b, p.cmd.Process.Pid), "peak-rss-MB")
	}
	b.Run("Validate", func(b *testing.B) {
		var lat []time.Duration
		for b.Loop() {
			body, _ := json.Marshal(agent.Basket{Order: agenttest.Order("o", 100_00), Redeemables: []agent.Input{{Code: agenttest.LargeCode(rand.IntN(codes))}}})
			lat = append(lat, post("/v1/validate", body))
		}
		report(b, lat)
	})
	next := 0
	b.Run("Redeem", func(b *testing.B) {
		var lat []time.Duration
		for b.Loop() {
			if next == codes {
				b.Fatal("ran out of codes")
			}
			body, _ := json.Marshal(agent.RedeemRequest{TxnID: fmt.Sprintf("P%d", next), Basket: agent.Basket{Order: agenttest.Order("o", 100_00),
				Redeemables: []agent.Input{{Code: agenttest.LargeCode(next)}}}})
			next++
			lat = append(lat, post("/v1/redeem", body))
		}
		report(b, lat)
	})
}
