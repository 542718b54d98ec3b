package fleet_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/punchcard/punchcard/cmd/punchcard/internal/fleet"
)

// BenchmarkFleet is `make bench-fleet`: FLEET_TILLS simulated tills
// (default 10,000) against the cmd/hub binary in a process of its own,
// each till a real MQTT client with its own credentials, at FLEET_RATE
// redemptions per till per second (default 0.1: one per 10 s), a campaign
// change in the middle of the FLEET_DURATION load (default 60 s, after a
// FLEET_WARMUP of 20 s). One run whatever b.N (use -benchtime 1x). It
// reports ack latency, the hub's RSS (the idle hub before any till
// connected is the same-run baseline: rss-per-till-KB is what each
// connected till adds) and the time until every till saw the new rules
// announced and had fetched them. The Done-when targets at 10,000 tills:
// ack p99 <= 100 ms, RSS <= 1 GB, every till on the new rules <= 30 s.
//
// It runs only with PUNCHCARD_FLEET_BENCH=1 (make bench-fleet sets it),
// so that `make bench` stays short. FLEET_HUB_BIN names the hub binary;
// by default it is built into a temp dir.
func BenchmarkFleet(b *testing.B) {
	if os.Getenv("PUNCHCARD_FLEET_BENCH") != "1" {
		b.Skip("the fleet benchmark runs with make bench-fleet (PUNCHCARD_FLEET_BENCH=1)")
	}
	o := fleet.BenchOptions{Tills: envInt(b, "FLEET_TILLS", 10_000), Rate: envFloat(b, "FLEET_RATE", 0.1),
		Warmup: envDur(b, "FLEET_WARMUP", 20*time.Second), Duration: envDur(b, "FLEET_DURATION", 60*time.Second),
		Fetch: fleet.FetchMode(os.Getenv("FLEET_FETCH")), HubBin: os.Getenv("FLEET_HUB_BIN"), Dir: b.TempDir(), Log: os.Stderr}
	if o.HubBin == "" {
		o.HubBin = filepath.Join(b.TempDir(), "hub")
		out, err := exec.Command("go", "build", "-o", o.HubBin, "github.com/punchcard/punchcard/cmd/hub").CombinedOutput()
		if err != nil {
			b.Fatalf("go build cmd/hub: %v\n%s", err, out)
		}
	}
	b.ResetTimer()
	for range b.N {
		r, err := fleet.Bench(context.Background(), o)
		fmt.Fprintln(os.Stderr, r)
		if err != nil {
			b.Fatal(err)
		}
		ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
		b.ReportMetric(float64(r.Tills), "tills")
		b.ReportMetric(ms(r.Stats.AckP50), "ack-p50-ms")
		b.ReportMetric(ms(r.Stats.AckP99), "ack-p99-ms")
		b.ReportMetric(r.Redemptions, "redemptions/s")
		b.ReportMetric(float64(r.RSSIdle)/(1<<20), "rss-idle-MB")
		b.ReportMetric(float64(r.RSSMax)/(1<<20), "rss-max-MB")
		b.ReportMetric(float64(r.RSSConnected-r.RSSIdle)/1024/float64(r.Tills), "rss-per-till-KB")
		b.ReportMetric(r.HubCPU, "hub-cores")
		b.ReportMetric(r.AnnounceAll.Seconds(), "announced-all-s")
		b.ReportMetric(r.FetchAll.Seconds(), "fetched-all-s")
		b.ReportMetric(float64(r.MissingFetch), "tills-missing-rules")
	}
}

func envInt(tb testing.TB, name string, def int) int {
	if v := os.Getenv(name); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			tb.Fatalf("%s: %v", name, err)
		}
		return n
	}
	return def
}

func envFloat(tb testing.TB, name string, def float64) float64 {
	if v := os.Getenv(name); v != "" {
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			tb.Fatalf("%s: %v", name, err)
		}
		return n
	}
	return def
}

func envDur(tb testing.TB, name string, def time.Duration) time.Duration {
	if v := os.Getenv(name); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			tb.Fatalf("%s: %v", name, err)
		}
		return d
	}
	return def
}
