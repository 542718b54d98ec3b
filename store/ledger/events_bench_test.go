package ledger_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/ledger"
	"github.com/punchcard/punchcard/store/ledger/ledgertest"
)

func openEventsBench(b *testing.B, noEvents bool) *ledger.Ledger {
	b.Helper()
	return openEventsBenchWake(b, noEvents, nil)
}

func openEventsBenchWake(b *testing.B, noEvents bool, onEvents func()) *ledger.Ledger {
	b.Helper()
	l, err := ledger.Open(context.Background(), filepath.Join(b.TempDir(), "hub.db"), ledger.Options{Facts: MustFacts(b), NoEvents: noEvents, OnEvents: onEvents})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	return l
}

// eventSale is a till's message: a redeem of a multi-use code and an earn
// for one of 2,000 customers (2 facts, 2 events).
func eventSale(till int, seq uint64, cust int) []protocol.Redemption {
	ag := protocol.AgentID(fmt.Sprintf("t%d", till))
	txn := fmt.Sprintf("%s-%d", ag, seq)
	mk := func(s uint64, k protocol.RedemptionKind) protocol.Redemption {
		return red(ag, s, func(r *protocol.Redemption) {
			r.Customer, r.TxnID, r.Kind, r.OrderTot, r.Code = protocol.CustomerID(fmt.Sprintf("c%d", cust)), txn, k, 42_00, "MULTI"
			if k == protocol.KindEarn {
				r.Discount, r.Points, r.Code = 0, 42, ""
			}
		})
	}
	return []protocol.Redemption{mk(seq, protocol.KindRedeem), mk(seq+1, protocol.KindEarn)}
}

// BenchmarkEventsIngest: till messages (50 tills, 2,000 customers, a code
// redeem and an earn per message, a growing history) applied to a ledger
// writing the event log and, interleaved in the same loop (order
// alternating), to one with NoEvents: the baseline. Per message: CPU and
// wall time of each, and their ratios.
func BenchmarkEventsIngest(b *testing.B) {
	with, without := openEventsBench(b, false), openEventsBench(b, true)
	ingestPair(b, with, without)
}

// BenchmarkEventsIngestWake: BenchmarkEventsIngest's messages applied to
// a ledger with the event log and the relay's wake (Options.OnEvents: a
// non-blocking send on a channel of capacity 1 that a goroutine drains,
// as the hub wires it) and, interleaved, to one with the event log and no
// wake: the baseline. The ratios are the wake's cost.
func BenchmarkEventsIngestWake(b *testing.B) {
	c := make(chan struct{}, 1)
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case <-c:
			case <-done:
				return
			}
		}
	}()
	wake := func() {
		select {
		case c <- struct{}{}:
		default:
		}
	}
	ingestPair(b, openEventsBenchWake(b, false, wake), openEventsBench(b, false))
}

// ingestPair applies till messages to with and without, interleaved
// (order alternating), and reports each's CPU and wall time per message
// and their ratios.
func ingestPair(b *testing.B, with, without *ledger.Ledger) {
	ctx := context.Background()
	var cpu, wall [2]time.Duration
	seqs := make([]uint64, 50)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		till := i % 50
		seqs[till] += 2
		msg := eventSale(till, seqs[till]-1, (i*7919)%2000)
		ag := protocol.AgentID(fmt.Sprintf("t%d", till))
		for k := range 2 {
			j := (k + i) % 2 // alternate which goes first
			l := []*ledger.Ledger{with, without}[j]
			c0, w0 := ledgertest.CPUTime(), time.Now()
			if _, _, err := l.ApplyBatch(ctx, tenant, ag, msg); err != nil {
				b.Fatal(err)
			}
			cpu[j] += ledgertest.CPUTime() - c0
			wall[j] += time.Since(w0)
		}
	}
	b.StopTimer()
	reportPair(b, cpu, wall)
}

// BenchmarkEventsOnline: one online basket (a code redeem and an earn for
// a customer) through the online writer (RedeemBasket, its own group
// commit), with the event log and, interleaved, without (baseline).
func BenchmarkEventsOnline(b *testing.B) {
	ctx := context.Background()
	with, without := openEventsBench(b, false), openEventsBench(b, true)
	var cpu, wall [2]time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cust := protocol.CustomerID(fmt.Sprintf("c%d", (i*7919)%2000))
		txn := fmt.Sprint("web-", i)
		basket := ledger.Basket{Tenant: tenant, Redemptions: []protocol.Redemption{
			{Kind: protocol.KindRedeem, Store: "web", TxnID: txn, Campaign: "loyalty", Code: "MULTI", Customer: cust, Currency: "EUR", Discount: 100, OrderTot: 42_00},
			{Kind: protocol.KindEarn, Store: "web", TxnID: txn, Campaign: "loyalty", Customer: cust, Currency: "EUR", Points: 42, OrderTot: 42_00},
		}}
		for k := range 2 {
			j := (k + i) % 2
			l := []*ledger.Ledger{with, without}[j]
			c0, w0 := ledgertest.CPUTime(), time.Now()
			if _, _, err := l.RedeemBasket(ctx, basket); err != nil {
				b.Fatal(err)
			}
			cpu[j] += ledgertest.CPUTime() - c0
			wall[j] += time.Since(w0)
		}
	}
	b.StopTimer()
	reportPair(b, cpu, wall)
}

func reportPair(b *testing.B, cpu, wall [2]time.Duration) {
	n := float64(b.N)
	b.ReportMetric(float64(cpu[0].Nanoseconds())/n, "events-cpu-ns/op")
	b.ReportMetric(float64(cpu[1].Nanoseconds())/n, "base-cpu-ns/op")
	b.ReportMetric(cpu[0].Seconds()/cpu[1].Seconds(), "cpu-ratio")
	b.ReportMetric(float64(wall[0].Nanoseconds())/n, "events-wall-ns/op")
	b.ReportMetric(float64(wall[1].Nanoseconds())/n, "base-wall-ns/op")
	b.ReportMetric(wall[0].Seconds()/wall[1].Seconds(), "wall-ratio")
}
