//go:build unix

package webhooks_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/punchcard/punchcard/hub/webhooks"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/ledger"
)

// BenchmarkRelayOnline: the process's CPU per online basket (an earn and
// a redeem for one of 2,000 customers through the ledger's online writer,
// RedeemBasket, one client: each basket its own commit, each commit a
// wake of the relay, as in the hub), reported as cpu-us/op. The same-run
// baseline is service=none (the ledger with the wake and no webhook
// service); endpoints=none is the webhook service with no endpoint at
// all, endpoints=other with one endpoint of another tenant (every round
// reads the log and inserts no job). The relay's cost per basket is the
// difference to service=none.
func BenchmarkRelayOnline(b *testing.B) {
	for _, c := range []struct {
		name            string
		service, others bool
	}{{"service=none", false, false}, {"endpoints=none", true, false}, {"endpoints=other", true, true}} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			dir := b.TempDir()
			wake, signal := webhooks.NewWake()
			if !c.service {
				go func() { // drain the wakes, as the relay does
					for range wake {
					}
				}()
			}
			facts := &ledger.MemFacts{}
			facts.SetCampaign("acme", "loyalty", ledger.CampaignFacts{Currency: "EUR"})
			l, err := ledger.Open(ctx, filepath.Join(dir, "hub.db"), ledger.Options{Facts: facts, OnEvents: signal})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			if c.service {
				s, err := webhooks.Open(ctx, filepath.Join(dir, "webhooks.db"), webhooks.Options{Sources: map[string]webhooks.Source{"ledger": l},
					Wake: wake, AllowPrivate: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
				if err != nil {
					b.Fatal(err)
				}
				if c.others {
					if _, err := s.CreateEndpoint(ctx, "other", protocol.WebhookEndpointInput{URL: "http://127.0.0.1:9/none"}); err != nil {
						b.Fatal(err)
					}
				}
				if err := s.Start(ctx); err != nil {
					b.Fatal(err)
				}
				defer s.Close(ctx)
			}
			basket := func(i int) ledger.Basket {
				cust := protocol.CustomerID(fmt.Sprintf("c%d", (i*7919)%2000))
				txn := fmt.Sprint("web-", i)
				return ledger.Basket{Tenant: "acme", Redemptions: []protocol.Redemption{
					{Kind: protocol.KindEarn, Store: "web", TxnID: txn, Campaign: "loyalty", Customer: cust, Currency: "EUR", Points: 42, OrderTot: 42_00},
					{Kind: protocol.KindRedeem, Store: "web", TxnID: txn, Campaign: "loyalty", Customer: cust, Currency: "EUR", Discount: 100, OrderTot: 42_00},
				}}
			}
			for i := range 200 { // warm up
				if _, _, err := l.RedeemBasket(ctx, basket(-1-i)); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			c0 := cpuTime(b)
			for i := range b.N {
				if _, _, err := l.RedeemBasket(ctx, basket(i)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64((cpuTime(b)-c0).Nanoseconds())/1000/float64(b.N), "cpu-us/op")
		})
	}
}

// BenchmarkRelayRound: one relay round (RelayOnce) after each online
// basket's commit, timed alone (the process's CPU and the wall time of
// the round only): what the relay's wake costs per commit, with no
// endpoint (endpoints=none) and with one endpoint of another tenant
// (endpoints=other): no job either way. The hub's relay runs no round at
// all on a wake while no endpoint is enabled; this benchmark calls the
// round directly.
func BenchmarkRelayRound(b *testing.B) {
	for _, others := range []bool{false, true} {
		name := map[bool]string{false: "endpoints=none", true: "endpoints=other"}[others]
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			dir := b.TempDir()
			facts := &ledger.MemFacts{}
			facts.SetCampaign("acme", "loyalty", ledger.CampaignFacts{Currency: "EUR"})
			l, err := ledger.Open(ctx, filepath.Join(dir, "hub.db"), ledger.Options{Facts: facts})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			s, err := webhooks.Open(ctx, filepath.Join(dir, "webhooks.db"), webhooks.Options{Sources: map[string]webhooks.Source{"ledger": l},
				AllowPrivate: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close(ctx)
			if others {
				if _, err := s.CreateEndpoint(ctx, "other", protocol.WebhookEndpointInput{URL: "http://127.0.0.1:9/none"}); err != nil {
					b.Fatal(err)
				}
			}
			var cpu, wall time.Duration
			b.ResetTimer()
			for i := range b.N {
				cust := protocol.CustomerID(fmt.Sprintf("c%d", (i*7919)%2000))
				txn := fmt.Sprint("web-", i)
				if _, _, err := l.RedeemBasket(ctx, ledger.Basket{Tenant: "acme", Redemptions: []protocol.Redemption{
					{Kind: protocol.KindEarn, Store: "web", TxnID: txn, Campaign: "loyalty", Customer: cust, Currency: "EUR", Points: 42, OrderTot: 42_00},
				}}); err != nil {
					b.Fatal(err)
				}
				c0, w0 := cpuTime(b), time.Now()
				if n, err := s.RelayOnce(ctx, "ledger", l); err != nil || n == 0 {
					b.Fatalf("relay: %d %v", n, err)
				}
				cpu += cpuTime(b) - c0
				wall += time.Since(w0)
			}
			b.ReportMetric(float64(cpu.Nanoseconds())/1000/float64(b.N), "round-cpu-us/op")
			b.ReportMetric(float64(wall.Nanoseconds())/1000/float64(b.N), "round-wall-us/op")
		})
	}
}
