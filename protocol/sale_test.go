package protocol_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/punchcard/punchcard/protocol"
)

// typicalFact is a till's redemption of a code by a known customer on a
// three-line basket, with (sale) or without the sale that protocol 2
// adds: SKUs no campaign names compacted to "~", one named.
func typicalFact(sale bool) protocol.Redemption {
	r := protocol.Redemption{ID: protocol.RedemptionID{Agent: "store-12-till-3", Seq: 18_234}, Kind: protocol.KindRedeem, Tenant: "acme",
		Store: "store-12", TxnID: "POS-2026-000018234", Campaign: "summer", Code: "SUMMER10", Customer: "cust-000123", OrderID: "O-000018234",
		Currency: "EUR", Discount: 349, OrderTot: 3496, HLC: 7362000000000000009, Offline: true, Snapshot: 1_204}
	if sale {
		r.Sale = &protocol.Sale{
			Lines: []protocol.Line{{SKU: "~", Quantity: 1, UnitPrice: 19_99}, {SKU: "coffee-250", Category: "drinks", Quantity: 2, UnitPrice: 4_50},
				{SKU: "~", Quantity: 3, UnitPrice: 1_99}},
			Presented: []protocol.Presented{{Kind: protocol.PresentedCode, Code: "SUMMER10"}},
			Customer:  &protocol.Customer{ID: "cust-000123", Tier: "gold"},
			At:        1_795_000_000_123,
			Budgets:   []protocol.SaleBudget{{Campaign: "summer", Count: 12, Amount: -1}},
		}
	}
	return r
}

func messageSize(tb testing.TB, rs ...protocol.Redemption) int {
	tb.Helper()
	b, err := protocol.EncodeMessage(protocol.MsgBatch, "acme", rs[0].ID.Agent, "store-12-till-3-1a2b3c4d-5f", 1_795_000_000_123_456, protocol.Batch{Redemptions: rs})
	if err != nil {
		tb.Fatal(err)
	}
	return len(b)
}

// TestSaleSize measures what the sale adds to a till's message, and that
// the largest sale an order may hold still fits: a message of two facts
// of a 500-line order (every SKU and category named by a campaign, 64
// bytes each) and 30 presented codes stays under MaxMessageBytes.
func TestSaleSize(t *testing.T) {
	before, after := messageSize(t, typicalFact(false)), messageSize(t, typicalFact(true))
	before2, after2 := messageSize(t, typicalFact(false), typicalFact(false)), messageSize(t, typicalFact(true), typicalFact(true))
	t.Logf("one fact per message: %d bytes before the sale, %d with it; two facts: %d and %d", before, after, before2, after2)
	if after > 450 {
		t.Errorf("a typical fact with its sale is %d bytes; keep it under 450", after)
	}
	big := typicalFact(true)
	s := *big.Sale
	s.Lines = nil
	for i := range protocol.MaxOrderLines {
		s.Lines = append(s.Lines, protocol.Line{SKU: fmt.Sprintf("%064d", i), Category: strings.Repeat("c", 64), Quantity: protocol.MaxQuantity, UnitPrice: 1_00})
	}
	s.Presented = nil
	for i := range protocol.MaxPresented {
		s.Presented = append(s.Presented, protocol.Presented{Kind: protocol.PresentedToken, Code: protocol.CodeID(fmt.Sprintf("%0128d", i)), Amount: 1})
	}
	big.Sale = &s
	if err := s.Validate("EUR"); err != nil {
		t.Fatal(err)
	}
	second := big
	second.ID.Seq++
	n := messageSize(t, big, second)
	t.Logf("two facts of the largest sale: %d bytes", n)
	if n > protocol.MaxMessageBytes {
		t.Fatalf("%d bytes, more than MaxMessageBytes", n)
	}
}

func TestSaleValidate(t *testing.T) {
	ok := typicalFact(true).Sale
	for _, tc := range []struct {
		name  string
		edit  func(s *protocol.Sale)
		field string
	}{
		{"OK", func(*protocol.Sale) {}, ""},
		{"ErrKind", func(s *protocol.Sale) { s.Presented[0].Kind = 9 }, "sale.presented[0].kind"},
		{"ErrCode", func(s *protocol.Sale) { s.Presented[0].Code = "" }, "sale.presented[0].code"},
		{"ErrAmount", func(s *protocol.Sale) { s.Presented[0].Amount = -1 }, "sale.presented[0].amount"},
		{"ErrAt", func(s *protocol.Sale) { s.At = 0 }, "sale.at"},
		{"ErrLines", func(s *protocol.Sale) { s.Lines[1].Quantity = 0 }, "order.lines[1].quantity"},
		{"ErrPresented", func(s *protocol.Sale) { s.Presented = make([]protocol.Presented, protocol.MaxPresented+1) }, "sale.presented"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := *ok
			s.Lines = append([]protocol.Line(nil), ok.Lines...)
			s.Presented = append([]protocol.Presented(nil), ok.Presented...)
			tc.edit(&s)
			err := s.Validate("EUR")
			if tc.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var pe *protocol.Error
			if e, isPE := err.(*protocol.Error); isPE {
				pe = e
			}
			if pe == nil || pe.Code != protocol.CodeInvalidInput || pe.Field != tc.field {
				t.Fatalf("err = %v, want invalid_input at %s", err, tc.field)
			}
		})
	}
}
