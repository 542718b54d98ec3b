package protocol

import (
	"fmt"
	"math"
)

// Currency is an ISO 4217 alphabetic code such as "EUR".
type Currency string

// Validate reports whether c looks like an ISO 4217 code (three upper-case
// letters). The list of currencies is not checked: a tenant may use any.
func (c Currency) Validate() error {
	if len(c) != 3 || !isUpper(c[0]) || !isUpper(c[1]) || !isUpper(c[2]) {
		return Errorf(CodeInvalidInput, "currency %q is not a three-letter ISO code", string(c))
	}
	return nil
}

func isUpper(b byte) bool { return b >= 'A' && b <= 'Z' }

// Money is an amount in integer minor units (cents for EUR, yen for JPY) of
// one currency. Money never uses floating point.
type Money struct {
	Amount   int64    `json:"amount" cbor:"1,keyasint"`
	Currency Currency `json:"currency" cbor:"2,keyasint"`
}

// M is shorthand for Money{amount, currency}.
func M(amount int64, c Currency) Money { return Money{Amount: amount, Currency: c} }

func (m Money) String() string { return fmt.Sprintf("%d %s", m.Amount, m.Currency) }

// ErrCurrencyMismatch is returned when two amounts of different currencies
// are combined.
var ErrCurrencyMismatch = Errorf(CodeCurrencyMismatch, "amounts are in different currencies")

// ErrOverflow is returned when an amount leaves the int64 range.
var ErrOverflow = Errorf(CodeInvalidInput, "amount is too large")

// Add returns m+o. Both must share a currency.
func (m Money) Add(o Money) (Money, error) {
	if m.Currency != o.Currency {
		return Money{}, ErrCurrencyMismatch
	}
	s, ok := AddMinor(m.Amount, o.Amount)
	if !ok {
		return Money{}, ErrOverflow
	}
	return Money{Amount: s, Currency: m.Currency}, nil
}

// Sub returns m-o. Both must share a currency.
func (m Money) Sub(o Money) (Money, error) {
	if m.Currency != o.Currency {
		return Money{}, ErrCurrencyMismatch
	}
	if o.Amount == math.MinInt64 {
		return Money{}, ErrOverflow
	}
	s, ok := AddMinor(m.Amount, -o.Amount)
	if !ok {
		return Money{}, ErrOverflow
	}
	return Money{Amount: s, Currency: m.Currency}, nil
}

// AddMinor adds two minor-unit amounts and reports false on overflow.
func AddMinor(a, b int64) (int64, bool) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, false
	}
	return s, true
}

// MulMinor multiplies an amount by a quantity and reports false on overflow.
func MulMinor(a, q int64) (int64, bool) {
	if a == 0 || q == 0 {
		return 0, true
	}
	p := a * q
	if p/q != a || (a == -1 && q == math.MinInt64) || (q == -1 && a == math.MinInt64) {
		return 0, false
	}
	return p, true
}

// BasisPoints is a ratio in hundredths of a percent: 1000 is 10%.
type BasisPoints int64

// PercentOf returns the share bp of amount, rounded toward zero, so a
// discount computed with it never exceeds what the rule says. It uses
// 128-bit intermediate arithmetic, so it cannot overflow for bp ≤ 10000.
func PercentOf(amount int64, bp BasisPoints) int64 {
	neg := amount < 0
	if neg {
		amount = -amount
	}
	hi, lo := mul64(uint64(amount), uint64(bp))
	q, _ := div128(hi, lo, 10000)
	r := int64(q)
	if neg {
		r = -r
	}
	return r
}
