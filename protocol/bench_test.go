package protocol_test

import (
	"fmt"
	"testing"

	"github.com/punchcard/punchcard/protocol"
)

// benchBatch is a realistic batch of n offline redemptions.
func benchBatch(n int) protocol.Batch {
	b := protocol.Batch{Redemptions: make([]protocol.Redemption, n)}
	for i := range b.Redemptions {
		b.Redemptions[i] = protocol.Redemption{
			ID:       protocol.RedemptionID{Agent: "store-12-till-3", Seq: uint64(100000 + i)},
			Kind:     protocol.KindRedeem,
			Tenant:   "acme",
			Store:    "store-12",
			TxnID:    fmt.Sprintf("T-%08d", i),
			Campaign: "SUMMER10",
			Code:     "SUMMER10",
			Customer: "c-4711",
			OrderID:  fmt.Sprintf("O-%08d", i),
			Currency: "EUR",
			Discount: 250,
			OrderTot: 2500,
			HLC:      7362000000000000000 + uint64(i),
			Offline:  true,
			Snapshot: 12,
		}
	}
	return b
}

func BenchmarkEncodeBatch256(b *testing.B) {
	batch := benchBatch(protocol.DefaultBatchSize)
	b.ReportAllocs()
	var n int
	for b.Loop() {
		out, err := protocol.EncodeMessage(protocol.MsgBatch, "acme", "store-12-till-3", "store-12-till-3/100000", 1795000000000000, &batch)
		if err != nil {
			b.Fatal(err)
		}
		n = len(out)
	}
	b.ReportMetric(float64(n), "payload-bytes")
}

func BenchmarkDecodeBatch256(b *testing.B) {
	batch := benchBatch(protocol.DefaultBatchSize)
	payload, err := protocol.EncodeMessage(protocol.MsgBatch, "acme", "store-12-till-3", "store-12-till-3/100000", 1795000000000000, &batch)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		env, err := protocol.DecodeEnvelope(payload)
		if err != nil {
			b.Fatal(err)
		}
		var got protocol.Batch
		if err := protocol.DecodeBody(env, &got); err != nil {
			b.Fatal(err)
		}
		if len(got.Redemptions) != protocol.DefaultBatchSize {
			b.Fatalf("decoded %d redemptions", len(got.Redemptions))
		}
	}
	b.ReportMetric(float64(len(payload)), "payload-bytes")
}
