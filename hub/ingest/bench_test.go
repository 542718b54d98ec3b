package ingest_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store"
	"github.com/punchcard/punchcard/store/ledger/ledgertest"
)

// BenchmarkIngest measures redemptions per second from MQTT publish to
// committed ledger rows, through the embedded broker: benchAgents agents
// each publish batches of protocol.DefaultBatchSize redemptions, and the
// clock stops when every agent has received the hub's Ack for its last
// seq. One op is one redemption. After the clock stops, the same rows go
// into the plain baseline table (ledgertest.PlainSchema: same row width and
// keys, no secondary indexes, no balances; same pragmas, synchronous=FULL)
// in transactions of DefaultBatchSize rows, and ratio = the baseline's time
// ÷ the ingest's, i.e. redemptions/s ÷ plain-rows/s, measured in the same
// run. The plain sub-benchmarks time the baseline alone, in transactions
// of DefaultBatchSize rows and of 16 times that.
func BenchmarkIngest(b *testing.B) {
	b.Run("mqtt_to_ledger", benchMQTT)
	for _, per := range []int{protocol.DefaultBatchSize, 16 * protocol.DefaultBatchSize} {
		b.Run(fmt.Sprintf("plain_sqlite_tx%d", per), func(b *testing.B) { benchPlain(b, per) })
	}
}

const benchAgents = 4

func benchMQTT(b *testing.B) {
	env := startEmbedded(b)
	h := startHub(b, env, nil)
	ags := make([]*testAgent, benchAgents)
	for i := range ags {
		ags[i] = startAgent(b, env, agents[i])
	}
	per := (b.N + benchAgents - 1) / benchAgents
	// Encode outside the timed part: the agent's cost, not the hub's.
	payloads := make([][][]byte, benchAgents)
	for i, a := range ags {
		for from := 1; from <= per; from += protocol.DefaultBatchSize {
			n := min(protocol.DefaultBatchSize, per-from+1)
			seqs := make([]uint64, n)
			for j := range seqs {
				seqs[j] = uint64(from + j)
			}
			p, err := protocol.EncodeMessage(protocol.MsgBatch, tenant, a.id, fmt.Sprint(from), 0, protocol.Batch{Redemptions: redemptions(a.id, seqs...)})
			if err != nil {
				b.Fatal(err)
			}
			payloads[i] = append(payloads[i], p)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := ledgertest.CPUTime()
	var wg sync.WaitGroup
	for i, a := range ags {
		wg.Add(1)
		go func() {
			defer wg.Done()
			toks := make([]paho.Token, 0, len(payloads[i]))
			for _, p := range payloads[i] {
				toks = append(toks, a.c.Publish(protocol.UpTopic(tenant, a.id), 1, false, p))
			}
			for _, t := range toks {
				t.Wait()
			}
			deadline := time.After(5 * time.Minute)
			for {
				select {
				case env := <-a.down:
					var ack protocol.Ack
					if env.Type == protocol.MsgAck && protocol.DecodeBody(env, &ack) == nil && ack.Watermark >= uint64(per) {
						return
					}
				case <-deadline:
					b.Errorf("%s: no final ack", a.id)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64((ledgertest.CPUTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
	total := per * benchAgents
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "redemptions/s")
	if s := h.ingest.Stats(); s.Redemptions < int64(total) {
		b.Fatalf("applied %d of %d", s.Redemptions, total)
	}
	// The yardstick, in the same run: the same rows into the plain table
	// (ledgertest.PlainSchema: the journal's width and keys, no secondary
	// indexes, no balances) in transactions of DefaultBatchSize rows, one
	// agent's batches after another's.
	db, err := store.Open(context.Background(), filepath.Join(b.TempDir(), "plain.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if err := ledgertest.PlainSchema(context.Background(), db); err != nil {
		b.Fatal(err)
	}
	var plain time.Duration
	for _, a := range ags {
		for from := 1; from <= per; from += protocol.DefaultBatchSize {
			n := min(protocol.DefaultBatchSize, per-from+1)
			seqs := make([]uint64, n)
			for j := range seqs {
				seqs[j] = uint64(from + j)
			}
			rs := redemptions(a.id, seqs...)
			t0 := time.Now()
			if err := ledgertest.PlainInsert(context.Background(), db, rs); err != nil {
				b.Fatal(err)
			}
			plain += time.Since(t0)
		}
	}
	b.ReportMetric(float64(total)/plain.Seconds(), "plain-rows/s")
	b.ReportMetric(plain.Seconds()/b.Elapsed().Seconds(), "ratio")
}

func benchPlain(b *testing.B, per int) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(b.TempDir(), "plain.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if err := ledgertest.PlainSchema(ctx, db); err != nil {
		b.Fatal(err)
	}
	rows := make([][]protocol.Redemption, 0, b.N/per+1)
	for from := 1; from <= b.N; from += per {
		n := min(per, b.N-from+1)
		seqs := make([]uint64, n)
		for j := range seqs {
			seqs[j] = uint64(from + j)
		}
		rows = append(rows, redemptions("till-1", seqs...))
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := ledgertest.CPUTime()
	for _, rs := range rows {
		if err := ledgertest.PlainInsert(ctx, db, rs); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64((ledgertest.CPUTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "redemptions/s")
}
