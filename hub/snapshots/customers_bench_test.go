package snapshots_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/punchcard/punchcard/hub/snapshots"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/segment"
)

// BenchmarkCustomerStateDelta: a till's snapshot request after one
// customer's segments changed, with 10,000 members of the segment an
// active campaign names. "delta" is an agent that sends its
// customer-state position (only the changed customer is read and sent);
// "whole" is the same request without it (an agent before the sequence,
// and every request of the old code): every membership is read and sent.
// Alternated op by op in one loop; ratio is whole over delta.
func BenchmarkCustomerStateDelta(b *testing.B) {
	ctx := context.Background()
	cat, led := customerStoresB(b)
	const members = 10_000
	for i := 0; i < members; i += 1000 {
		us := make([]segment.Update, 0, 1000)
		for j := i; j < i+1000; j++ {
			us = append(us, segment.Update{Customer: protocol.CustomerID(fmt.Sprintf("m%05d", j)), Segments: []string{"vip"}})
		}
		if _, err := led.SetSegments(ctx, "acme", us, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
	svc, err := snapshots.New(cat, snapshots.Options{Ledger: led})
	if err != nil {
		b.Fatal(err)
	}
	full, err := svc.Snapshot(ctx, snapshots.Request{Tenant: "acme", Agent: "till-1"})
	if err != nil {
		b.Fatal(err)
	}
	base := full.Snapshot
	var dDelta, dWhole time.Duration
	var bytesDelta, bytesWhole int
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		segs := []string{"vip"}
		if i%2 == 0 {
			segs = nil
		}
		b.StopTimer()
		if _, err := led.SetSegments(ctx, "acme", []segment.Update{{Customer: "m00007", Segments: segs}}, time.Now()); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		t0 := time.Now()
		d, err := svc.Snapshot(ctx, snapshots.Request{Tenant: "acme", Agent: "till-1", Since: base.Version, Uses: base.Uses, HasUses: true,
			Customers: base.Customers, HasCustomers: true})
		dDelta += time.Since(t0)
		if err != nil || d.Snapshot == nil || d.Snapshot.CustomersSince == 0 {
			b.Fatalf("delta: %v", err)
		}
		bytesDelta += len(d.Snapshot.Segments)
		t0 = time.Now()
		w, err := svc.Snapshot(ctx, snapshots.Request{Tenant: "acme", Agent: "till-1", Since: base.Version, Uses: base.Uses, HasUses: true})
		dWhole += time.Since(t0)
		if err != nil || w.Snapshot == nil {
			b.Fatalf("whole: %v", err)
		}
		bytesWhole += len(w.Snapshot.Segments)
	}
	b.ReportMetric(float64(dDelta.Microseconds())/float64(b.N), "delta-µs/op")
	b.ReportMetric(float64(dWhole.Microseconds())/float64(b.N), "whole-µs/op")
	b.ReportMetric(float64(dWhole)/float64(dDelta), "ratio")
	b.ReportMetric(float64(bytesDelta)/float64(b.N), "delta-customers/op")
	b.ReportMetric(float64(bytesWhole)/float64(b.N), "whole-customers/op")
}
