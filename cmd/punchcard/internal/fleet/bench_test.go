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
	"github.com/punchcard/punchcard/hub"
	"github.com/punchcard/punchcard/protocol"
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
	o := fleet.BenchOptions{Tills: envInt(b, "FLEET_TILLS", 10_000), Budget: int64(envInt(b, "FLEET_BUDGET", 0)), Rate: envFloat(b, "FLEET_RATE", 0.1),
		Warmup: envDur(b, "FLEET_WARMUP", 20*time.Second), Duration: envDur(b, "FLEET_DURATION", 60*time.Second),
		Fetch: fleet.FetchMode(os.Getenv("FLEET_FETCH")), VerifyEvery: envInt(b, "FLEET_VERIFY_EVERY", 0), GCPercent: envInt(b, "FLEET_GC_PERCENT", 0), HubBin: os.Getenv("FLEET_HUB_BIN"), Dir: os.Getenv("FLEET_DIR"), Log: os.Stderr,
		Timeline: os.Getenv("FLEET_TIMELINE") == "1", WindowGC: os.Getenv("FLEET_WINDOW_GC") == "1"}
	if o.Dir == "" {
		o.Dir = b.TempDir()
	}
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
		b.ReportMetric(ms(r.AckP99Quiet), "ack-p99-quiet-ms")
		b.ReportMetric(r.Redemptions, "redemptions/s")
		b.ReportMetric(float64(r.RSSIdle)/(1<<20), "rss-idle-MB")
		b.ReportMetric(float64(r.RSSMax)/(1<<20), "rss-max-MB")
		b.ReportMetric(float64(r.RSSConnected-r.RSSIdle)/1024/float64(r.Tills), "rss-per-till-KB")
		b.ReportMetric(r.HubCPU, "hub-cores")
		b.ReportMetric(r.FleetCPU, "tills-cores")
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

// BenchmarkIngestTills is the honest ingest benchmark: INGEST_TILLS
// simulated tills (default 32), each with its own MQTT client and
// credentials, through the real embedded broker into the real hub
// (hub.Open in-process on 127.0.0.1:0, synchronous=FULL), each sending
// sales of 1-2 redemptions per message, the next as soon as the previous
// is acknowledged: the automatic limited campaign (allowances requested
// and topped up over HTTP), the multi-use code in half the sales (every
// use re-announces snapshots, which the tills fetch as the agent does),
// customers on half, heartbeats every second, every Ack verified with the
// hub key. One op is one redemption acknowledged.
//
// The same-run baselines apply the very same facts to a fresh ledger of
// an identically provisioned catalog, without MQTT: ledger-msg one
// ApplyBatch per message as the tills sent them (ratio-msg = redemptions/s
// ÷ its rows/s), ledger-256 in ApplyBatch calls of 256 facts per till,
// the shape of hub/ingest's BenchmarkIngest (ratio-256).
func BenchmarkIngestTills(b *testing.B) {
	ctx := context.Background()
	tills := envInt(b, "INGEST_TILLS", 32)
	p := startHub(b, tills, hub.DefaultAnnounceInterval)
	f := p.fleet(b, fleet.Options{Heartbeat: time.Second, Record: true})
	sales := max(1, int(float64(b.N)/1.5/float64(tills)+0.5))
	b.ResetTimer()
	if err := f.Burst(ctx, sales); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	s := f.Stats()
	if s.Acked != s.Sent || s.Rejected != 0 || s.BadAcks != 0 || s.Errors != 0 {
		b.Fatalf("%+v", s)
	}
	perSec := float64(s.Acked) / b.Elapsed().Seconds()
	b.ReportMetric(perSec, "redemptions/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(s.Acked), "ns/redemption")
	b.ReportMetric(float64(s.AckP50)/1e6, "ack-p50-ms")
	b.ReportMetric(float64(s.AckP99)/1e6, "ack-p99-ms")
	b.ReportMetric(float64(s.Sent)/float64(s.Messages), "facts/msg")
	b.ReportMetric(float64(s.Fetches+s.NotMod)/b.Elapsed().Seconds(), "fetches/s")

	msgs, grants := f.Sent()
	f.Close()
	base := func(per int) time.Duration {
		q := startHub(b, tills, time.Hour)
		for i, c := range q.setup.Tills {
			for range grants[i] {
				if _, err := q.h.Ledger.GrantAllowance(ctx, c.Tenant, c.Agent, fleet.AutoCampaign); err != nil {
					b.Fatal(err)
				}
			}
		}
		// Round-robin over the tills, message by message (or 256 facts
		// of one till at a time), as they arrived.
		type call struct {
			agent int
			rs    []protocol.Redemption
		}
		var calls []call
		for i, ms := range msgs {
			if per == 0 {
				for _, m := range ms {
					calls = append(calls, call{i, m})
				}
				continue
			}
			var all []protocol.Redemption
			for _, m := range ms {
				all = append(all, m...)
			}
			for len(all) > 0 {
				n := min(per, len(all))
				calls = append(calls, call{i, all[:n]})
				all = all[n:]
			}
		}
		t0 := time.Now()
		for _, c := range calls {
			cred := q.setup.Tills[c.agent]
			if _, _, err := q.h.Ledger.ApplyBatch(ctx, cred.Tenant, cred.Agent, c.rs); err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(t0)
	}
	msgTime := base(0)
	b256 := base(256)
	b.ReportMetric(float64(s.Sent)/msgTime.Seconds(), "ledger-msg-rows/s")
	b.ReportMetric(float64(s.Sent)/b256.Seconds(), "ledger-256-rows/s")
	b.ReportMetric(msgTime.Seconds()/b.Elapsed().Seconds(), "ratio-msg")
	b.ReportMetric(b256.Seconds()/b.Elapsed().Seconds(), "ratio-256")
}
