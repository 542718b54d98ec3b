package protocol_test

import (
	"errors"
	"math"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/punchcard/punchcard/protocol"
)

func TestMoneyAddSub(t *testing.T) {
	const eur, usd = protocol.Currency("EUR"), protocol.Currency("USD")
	tests := []struct {
		name     string
		a, b     protocol.Money
		add, sub protocol.Money
		addErr   error
		subErr   error
	}{
		{name: "OK", a: protocol.M(150, eur), b: protocol.M(99, eur), add: protocol.M(249, eur), sub: protocol.M(51, eur)},
		{name: "OKNegative", a: protocol.M(-5, eur), b: protocol.M(-7, eur), add: protocol.M(-12, eur), sub: protocol.M(2, eur)},
		{name: "OKZero", a: protocol.M(0, eur), b: protocol.M(0, eur), add: protocol.M(0, eur), sub: protocol.M(0, eur)},
		{name: "OKSubMinInt64", a: protocol.M(-1, eur), b: protocol.M(math.MinInt64, eur), addErr: protocol.ErrOverflow, sub: protocol.M(math.MaxInt64, eur)},
		{name: "OKEdges", a: protocol.M(math.MaxInt64, eur), b: protocol.M(math.MinInt64, eur), add: protocol.M(-1, eur), subErr: protocol.ErrOverflow},
		{name: "ErrCurrencyMismatch", a: protocol.M(1, eur), b: protocol.M(1, usd), addErr: protocol.ErrCurrencyMismatch, subErr: protocol.ErrCurrencyMismatch},
		{name: "ErrCurrencyMismatchEmpty", a: protocol.M(1, eur), b: protocol.M(1, ""), addErr: protocol.ErrCurrencyMismatch, subErr: protocol.ErrCurrencyMismatch},
		{name: "ErrOverflowMax", a: protocol.M(math.MaxInt64, eur), b: protocol.M(1, eur), addErr: protocol.ErrOverflow, sub: protocol.M(math.MaxInt64-1, eur)},
		{name: "ErrOverflowMin", a: protocol.M(math.MinInt64, eur), b: protocol.M(1, eur), add: protocol.M(math.MinInt64+1, eur), subErr: protocol.ErrOverflow},
		{name: "ErrOverflowSubMin", a: protocol.M(0, eur), b: protocol.M(math.MinInt64, eur), add: protocol.M(math.MinInt64, eur), subErr: protocol.ErrOverflow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.a.Add(tt.b)
			if !errors.Is(err, tt.addErr) || (tt.addErr == nil && got != tt.add) {
				t.Errorf("%v + %v = %v, %v; want %v, %v", tt.a, tt.b, got, err, tt.add, tt.addErr)
			}
			got, err = tt.a.Sub(tt.b)
			if !errors.Is(err, tt.subErr) || (tt.subErr == nil && got != tt.sub) {
				t.Errorf("%v - %v = %v, %v; want %v, %v", tt.a, tt.b, got, err, tt.sub, tt.subErr)
			}
		})
	}
}

// edgeInts are the values where int64 arithmetic goes wrong.
var edgeInts = []int64{0, 1, -1, 2, -2, 3, 10000, -10000, math.MaxInt32, math.MinInt32, 1 << 32, 3037000499, 3037000500, -3037000500,
	math.MaxInt64, math.MaxInt64 - 1, math.MinInt64, math.MinInt64 + 1, math.MaxInt64 / 2, math.MinInt64 / 2}

// TestMinorArithmetic compares AddMinor, SubMinor and MulMinor with exact
// big-integer arithmetic on edge values and random ones.
func TestMinorArithmetic(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	vals := append([]int64(nil), edgeInts...)
	for range 200 {
		vals = append(vals, r.Int64()>>r.IntN(64), -r.Int64()>>r.IntN(64))
	}
	minI, maxI := big.NewInt(math.MinInt64), big.NewInt(math.MaxInt64)
	fits := func(x *big.Int) bool { return x.Cmp(minI) >= 0 && x.Cmp(maxI) <= 0 }
	for _, a := range vals {
		for _, b := range vals {
			A, B := big.NewInt(a), big.NewInt(b)
			for _, op := range []struct {
				name string
				f    func(a, b int64) (int64, bool)
				want *big.Int
			}{
				{"AddMinor", protocol.AddMinor, new(big.Int).Add(A, B)},
				{"SubMinor", protocol.SubMinor, new(big.Int).Sub(A, B)},
				{"MulMinor", protocol.MulMinor, new(big.Int).Mul(A, B)},
			} {
				got, ok := op.f(a, b)
				if ok != fits(op.want) || (ok && got != op.want.Int64()) {
					t.Fatalf("%s(%d, %d) = %d, %v; want %v (fits %v)", op.name, a, b, got, ok, op.want, fits(op.want))
				}
			}
		}
	}
}

// percentExact is amount*bp/10000 truncated toward zero, saturated to int64.
func percentExact(amount int64, bp protocol.BasisPoints) int64 {
	q := new(big.Int).Mul(big.NewInt(amount), big.NewInt(int64(bp)))
	q.Quo(q, big.NewInt(10000)) // Quo truncates toward zero
	switch {
	case q.Cmp(big.NewInt(math.MaxInt64)) > 0:
		return math.MaxInt64
	case q.Cmp(big.NewInt(math.MinInt64)) < 0:
		return math.MinInt64
	}
	return q.Int64()
}

// TestPercentOf checks every basis point from 0 to 10000 against exact
// arithmetic on odd, even, negative and extreme amounts: the result rounds
// toward zero and never exceeds the exact share in magnitude.
func TestPercentOf(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		for _, tt := range []struct {
			amount int64
			bp     protocol.BasisPoints
			want   int64
		}{
			{999, 1000, 99},   // 99.9 → 99
			{-999, 1000, -99}, // toward zero, not floor
			{1, 5000, 0},
			{3, 5000, 1},
			{10000, 1, 1},
			{9999, 1, 0},
			{2500, 10000, 2500},
			{math.MaxInt64, 10000, math.MaxInt64},
			{math.MinInt64, 10000, math.MinInt64},
			{math.MinInt64, 5000, math.MinInt64 / 2},
			{1000, -1500, -150},
		} {
			if got := protocol.PercentOf(tt.amount, tt.bp); got != tt.want {
				t.Errorf("PercentOf(%d, %d) = %d, want %d", tt.amount, tt.bp, got, tt.want)
			}
		}
	})
	t.Run("OKAllBasisPoints", func(t *testing.T) {
		amounts := []int64{1, 3, 7, 99, 101, 999, 1001, 12345, 99999, 1_000_001, 123456789012345,
			math.MaxInt64, math.MaxInt64 - 1, math.MinInt64 + 1, math.MinInt64}
		for _, a := range append(amounts[:len(amounts):len(amounts)], negate(amounts)...) {
			for bp := protocol.BasisPoints(0); bp <= 10000; bp++ {
				got, want := protocol.PercentOf(a, bp), percentExact(a, bp)
				if got != want {
					t.Fatalf("PercentOf(%d, %d) = %d, want %d", a, bp, got, want)
				}
				// Never beyond the exact value: |got|*10000 <= |a|*bp.
				lhs := new(big.Int).Mul(new(big.Int).Abs(big.NewInt(got)), big.NewInt(10000))
				rhs := new(big.Int).Mul(new(big.Int).Abs(big.NewInt(a)), big.NewInt(int64(bp)))
				if lhs.Cmp(rhs) > 0 {
					t.Fatalf("PercentOf(%d, %d) = %d exceeds the exact share", a, bp, got)
				}
			}
		}
	})
	t.Run("OKOutOfRangeSaturates", func(t *testing.T) {
		for _, a := range edgeInts {
			for _, bp := range []protocol.BasisPoints{-1, -10000, 10001, 20000, math.MaxInt64, math.MinInt64, math.MinInt64 + 1} {
				if got, want := protocol.PercentOf(a, bp), percentExact(a, bp); got != want {
					t.Fatalf("PercentOf(%d, %d) = %d, want %d", a, bp, got, want)
				}
			}
		}
	})
}

func negate(xs []int64) []int64 {
	out := make([]int64, 0, len(xs))
	for _, x := range xs {
		if x != math.MinInt64 {
			out = append(out, -x)
		}
	}
	return out
}

func TestCurrencyValidate(t *testing.T) {
	for _, c := range []protocol.Currency{"EUR", "JPY", "XAU"} {
		if err := c.Validate(); err != nil {
			t.Errorf("OK %q: %v", c, err)
		}
	}
	for _, c := range []protocol.Currency{"", "eur", "EU", "EURO", "E1R", "ÉUR"} {
		if got := protocol.ErrorCode(c.Validate()); got != protocol.CodeInvalidInput {
			t.Errorf("ErrInvalid %q: code %q", c, got)
		}
	}
}

func TestMulDiv(t *testing.T) {
	const maxI = int64(math.MaxInt64)
	for _, c := range []struct{ a, b, c, floor, ceil int64 }{
		{7, 3, 2, 10, 11},
		{10, 10, 5, 20, 20},
		{0, 5, 3, 0, 0},
		{-1, 5, 3, 0, 0},
		{5, 3, 0, 0, 0},
		{maxI, maxI, maxI, maxI, maxI},               // 128-bit intermediate
		{maxI, 3, 2, maxI, maxI},                     // saturates
		{1 << 62, 6, 8, 3 << 60, 3 << 60},            // exact past 64 bits
		{maxI, 2, 3, (maxI / 3) * 2, (maxI/3)*2 + 1}, // rounds
	} {
		if got := protocol.MulDiv(c.a, c.b, c.c); got != c.floor {
			t.Errorf("MulDiv(%d, %d, %d) = %d, want %d", c.a, c.b, c.c, got, c.floor)
		}
		if got := protocol.MulDivCeil(c.a, c.b, c.c); got != c.ceil {
			t.Errorf("MulDivCeil(%d, %d, %d) = %d, want %d", c.a, c.b, c.c, got, c.ceil)
		}
	}
}
