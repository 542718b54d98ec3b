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
	s, ok := SubMinor(m.Amount, o.Amount)
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

// SubMinor subtracts b from a and reports false on overflow. Unlike
// AddMinor(a, -b) it handles b == math.MinInt64 (for example -1 - MinInt64
// is MaxInt64, which fits).
func SubMinor(a, b int64) (int64, bool) {
	s := a - b
	if (b > 0 && s > a) || (b < 0 && s < a) {
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
// 128-bit intermediate arithmetic, so it cannot overflow for |bp| ≤ 10000;
// with a larger bp a result outside the int64 range saturates at
// math.MaxInt64 or math.MinInt64 (still never beyond the exact value).
// A negative bp gives a result of the opposite sign.
func PercentOf(amount int64, bp BasisPoints) int64 {
	neg := (amount < 0) != (bp < 0)
	hi, lo := mul64(absU64(amount), absU64(int64(bp)))
	if hi >= 10000 { // the quotient does not fit in 64 bits
		return saturate(neg)
	}
	q, _ := div128(hi, lo, 10000)
	if neg {
		if q > 1<<63 {
			return math.MinInt64
		}
		return int64(-q) // two's complement; -(1<<63) is MinInt64
	}
	if q > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(q)
}

// absU64 is |v| as a uint64; it is exact for math.MinInt64 too.
func absU64(v int64) uint64 {
	if v < 0 {
		return uint64(-(v + 1)) + 1
	}
	return uint64(v)
}

func saturate(neg bool) int64 {
	if neg {
		return math.MinInt64
	}
	return math.MaxInt64
}
