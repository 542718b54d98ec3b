package protocol_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/punchcard/punchcard/protocol"
)

func TestValidateID(t *testing.T) {
	tests := []struct {
		name, id, msg string
	}{
		{name: "OK", id: "store-1_till.2"},
		{name: "OKOneChar", id: "a"},
		{name: "OKMaxLen", id: strings.Repeat("Z", protocol.MaxIDLen)},
		{name: "ErrEmpty", id: "", msg: "store is required"},
		{name: "ErrTooLong", id: strings.Repeat("z", protocol.MaxIDLen+1), msg: "longer than 64"},
		{name: "ErrSlash", id: "a/b", msg: `"/"`},
		{name: "ErrPlus", id: "+", msg: `"+"`},
		{name: "ErrHash", id: "a#", msg: `"#"`},
		{name: "ErrDollar", id: "$SYS", msg: `"$"`},
		{name: "ErrSpace", id: "a b", msg: `" "`},
		{name: "ErrNUL", id: "a\x00", msg: `contains`},
		{name: "ErrNonASCII", id: "café", msg: `contains`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := protocol.ValidateID("store", tt.id)
			if tt.msg == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if got := protocol.ErrorCode(err); got != protocol.CodeInvalidInput {
				t.Fatalf("code = %q (%v), want invalid_input", got, err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("error %q does not mention %q", err, tt.msg)
			}
		})
	}
}

func TestOrderValidate(t *testing.T) {
	ok := func() protocol.Order {
		return protocol.Order{ID: "O-1", Currency: "EUR", Shipping: 495, Lines: []protocol.Line{
			{SKU: "A", Quantity: 2, UnitPrice: 1299},
			{SKU: "B", Category: "drinks", Quantity: 1, UnitPrice: 0},
		}}
	}
	manyLines := func(n int, q, p int64) []protocol.Line {
		ls := make([]protocol.Line, n)
		for i := range ls {
			ls[i] = protocol.Line{SKU: "S", Quantity: q, UnitPrice: p}
		}
		return ls
	}
	tests := []struct {
		name  string
		edit  func(o *protocol.Order)
		field string // "" = valid
	}{
		{name: "OK", edit: func(*protocol.Order) {}},
		{name: "OKNoShipping", edit: func(o *protocol.Order) { o.Shipping = 0 }},
		{name: "OKMaxLines", edit: func(o *protocol.Order) { o.Lines = manyLines(protocol.MaxOrderLines, 1, 1) }},
		{name: "OKLargestLine", edit: func(o *protocol.Order) {
			o.Lines = manyLines(1, protocol.MaxQuantity, protocol.MaxUnitPrice)
		}},
		{name: "ErrCurrency", edit: func(o *protocol.Order) { o.Currency = "eur" }, field: "order.currency"},
		{name: "ErrCurrencyMissing", edit: func(o *protocol.Order) { o.Currency = "" }, field: "order.currency"},
		{name: "ErrTooManyLines", edit: func(o *protocol.Order) { o.Lines = manyLines(protocol.MaxOrderLines+1, 1, 1) }, field: "order.lines"},
		{name: "ErrShippingNegative", edit: func(o *protocol.Order) { o.Shipping = -1 }, field: "order.shipping"},
		{name: "ErrShippingTooHigh", edit: func(o *protocol.Order) { o.Shipping = protocol.MaxUnitPrice + 1 }, field: "order.shipping"},
		{name: "ErrSKU", edit: func(o *protocol.Order) { o.Lines[1].SKU = "" }, field: "order.lines[1].sku"},
		{name: "ErrQuantityZero", edit: func(o *protocol.Order) { o.Lines[0].Quantity = 0 }, field: "order.lines[0].quantity"},
		{name: "ErrQuantityNegative", edit: func(o *protocol.Order) { o.Lines[1].Quantity = -3 }, field: "order.lines[1].quantity"},
		{name: "ErrQuantityTooHigh", edit: func(o *protocol.Order) { o.Lines[0].Quantity = protocol.MaxQuantity + 1 }, field: "order.lines[0].quantity"},
		{name: "ErrUnitPriceNegative", edit: func(o *protocol.Order) { o.Lines[0].UnitPrice = -1 }, field: "order.lines[0].unit_price"},
		{name: "ErrUnitPriceTooHigh", edit: func(o *protocol.Order) { o.Lines[1].UnitPrice = math.MaxInt64 }, field: "order.lines[1].unit_price"},
		{name: "ErrLineIndex12", edit: func(o *protocol.Order) {
			o.Lines = manyLines(13, 1, 1)
			o.Lines[12].SKU = ""
		}, field: "order.lines[12].sku"},
		// 500 lines at the per-line maximum would overflow int64 (5e19).
		{name: "ErrTotalOverflow", edit: func(o *protocol.Order) {
			o.Lines = manyLines(protocol.MaxOrderLines, protocol.MaxQuantity, protocol.MaxUnitPrice)
		}, field: "order.lines"},
		{name: "ErrTotalOverMax", edit: func(o *protocol.Order) {
			o.Lines = manyLines(11, protocol.MaxQuantity, protocol.MaxUnitPrice) // 1.1e18
		}, field: "order.lines"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ok()
			tt.edit(&o)
			err := o.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				// A valid order's subtotal is exact.
				var want int64
				for _, l := range o.Lines {
					want += l.Quantity * l.UnitPrice
				}
				if got := o.Subtotal(); got != want || got+o.Shipping > protocol.MaxOrderTotal {
					t.Fatalf("Subtotal = %d, want %d within MaxOrderTotal", got, want)
				}
				return
			}
			var pe *protocol.Error
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want *protocol.Error on %s", err, tt.field)
			}
			if pe.Code != protocol.CodeInvalidInput || pe.Field != tt.field {
				t.Fatalf("err = %+v, want invalid_input on %s", pe, tt.field)
			}
			if pe.Message == "" || strings.Contains(pe.Message, "\n") {
				t.Fatalf("bad message %q", pe.Message)
			}
		})
	}
}

func TestLineTotal(t *testing.T) {
	if got, ok := (protocol.Line{Quantity: 3, UnitPrice: 333}).Total(); !ok || got != 999 {
		t.Errorf("Total = %d, %v; want 999", got, ok)
	}
	if _, ok := (protocol.Line{Quantity: math.MaxInt64, UnitPrice: 2}).Total(); ok {
		t.Error("overflowing total reported ok")
	}
}

func TestRedemptionID(t *testing.T) {
	if got, want := (protocol.RedemptionID{Agent: "till-1", Seq: 42}).String(), "till-1/42"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	for k, want := range map[protocol.RedemptionKind]string{
		protocol.KindRedeem: "redeem", protocol.KindRollback: "rollback", protocol.KindEarn: "earn", protocol.KindBurn: "burn", protocol.KindIssue: "giftcard_issue", protocol.KindTopUp: "giftcard_topup", 0: "unknown", 99: "unknown",
	} {
		if got := k.String(); got != want {
			t.Errorf("kind %d = %q, want %q", k, got, want)
		}
	}
}
