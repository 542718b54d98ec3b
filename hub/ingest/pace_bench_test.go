package ingest_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/punchcard/punchcard/hub/ingest"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/ledger"
)

// BenchmarkIngestPace compares the first stage's paced drains (pace.go)
// with eager ones (Options.Eager: a drain taken as soon as the writer
// took the previous one), alternated run by run on fresh ledgers through
// the embedded broker: open-loop load from the test's 9 agents, each
// publishing one redemption per message at random moments, PACE_RATE
// messages a second in all (1,500) for PACE_MSGS messages (6,000), each
// message's latency taken from its publish to the first Ack covering it.
// Each run reports its p50 and p99; the medians over PACE_ROUNDS (3)
// rounds of each mode's, and the ratios paced ÷ eager, are printed
// after them. Use -benchtime 1x.
func BenchmarkIngestPace(b *testing.B) {
	rate := envInt(b, "PACE_RATE", 1500)
	msgs := envInt(b, "PACE_MSGS", 6000)
	rounds := envInt(b, "PACE_ROUNDS", 3)
	var p50, p99 [2][]float64 // [eager, paced]
	for range b.N {
		for r := range rounds {
			for m, mode := range []string{"eager", "paced"} {
				b.Run(fmt.Sprintf("%s-%d", mode, r), func(b *testing.B) {
					lat := paceRun(b, m == 0, rate, msgs)
					slices.Sort(lat)
					q := func(f float64) float64 { return float64(lat[int(f*float64(len(lat)-1))]) / 1e6 }
					b.ReportMetric(q(0.5), "p50-ms")
					b.ReportMetric(q(0.99), "p99-ms")
					p50[m] = append(p50[m], q(0.5))
					p99[m] = append(p99[m], q(0.99))
				})
			}
		}
	}
	// A benchmark with sub-benchmarks reports no metrics of its own.
	med := func(v []float64) float64 { v = slices.Clone(v); slices.Sort(v); return v[len(v)/2] }
	fmt.Fprintf(os.Stderr, "BenchmarkIngestPace medians of %d rounds at %d messages/s: p50 eager %.2f ms, paced %.2f ms (ratio %.2f); p99 eager %.2f ms, paced %.2f ms (ratio %.2f)\n",
		rounds, rate, med(p50[0]), med(p50[1]), med(p50[1])/med(p50[0]), med(p99[0]), med(p99[1]), med(p99[1])/med(p99[0]))
}

// paceRun is one run of BenchmarkIngestPace: the latencies of msgs
// messages.
func paceRun(b *testing.B, eager bool, rate, msgs int) []time.Duration {
	env := startEmbedded(b)
	l, err := ledger.Open(context.Background(), filepath.Join(b.TempDir(), "hub.db"), ledger.Options{Facts: &ledger.MemFacts{}})
	if err != nil {
		b.Fatal(err)
	}
	in, err := ingest.New(l, ingest.Options{BrokerURL: env.url, SigningKey: hubKey, ClientID: uniqueID("hub"), Username: env.hubUser, Password: env.hubPass,
		Inline: env.inline, Eager: eager, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		l.Close()
		b.Fatal(err)
	}
	b.Cleanup(func() { in.Close(); l.Close() })
	per := msgs / len(agents)
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	for i, id := range agents {
		a := startAgent(b, env, id)
		sent := make([]time.Time, per+1)
		var smu sync.Mutex
		wg.Add(2)
		go func() { // open loop: at random moments, whatever the Acks
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(i), 1))
			mean := float64(time.Second) * float64(len(agents)) / float64(rate)
			next := time.Now()
			for seq := 1; seq <= per; seq++ {
				next = next.Add(time.Duration(rnd.ExpFloat64() * mean))
				time.Sleep(time.Until(next))
				payload, err := protocol.EncodeMessage(protocol.MsgBatch, tenant, id, strconv.Itoa(seq), time.Now().UnixMicro(),
					protocol.Batch{Redemptions: redemptions(id, uint64(seq))})
				if err != nil {
					b.Error(err)
					return
				}
				smu.Lock()
				sent[seq] = time.Now()
				smu.Unlock()
				a.c.Publish(protocol.UpTopic(tenant, id), 1, false, payload)
			}
		}()
		go func() {
			defer wg.Done()
			done := 0
			for done < per {
				var env protocol.Envelope
				select {
				case env = <-a.down:
				case <-time.After(patience(b)):
					b.Errorf("%s: acked %d of %d", id, done, per)
					return
				}
				var ack protocol.Ack
				if env.Type != protocol.MsgAck || protocol.DecodeBody(env, &ack) != nil {
					continue
				}
				now := time.Now()
				smu.Lock()
				for done < per && uint64(done+1) <= ack.Watermark {
					done++
					mu.Lock()
					lat = append(lat, now.Sub(sent[done]))
					mu.Unlock()
				}
				smu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(lat) == 0 {
		b.Fatal("no acks")
	}
	return lat
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
