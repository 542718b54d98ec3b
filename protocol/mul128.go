package protocol

import (
	"math"
	"math/bits"
)

func mul64(a, b uint64) (hi, lo uint64) { return bits.Mul64(a, b) }

// div128 divides the 128-bit value hi:lo by d. The caller guarantees the
// quotient fits in 64 bits (hi < d).
func div128(hi, lo, d uint64) (q, r uint64) {
	if hi >= d {
		return ^uint64(0), 0
	}
	return bits.Div64(hi, lo, d)
}

// MulDiv is floor(a×b/c) for non-negative a, b and positive c, with a
// 128-bit intermediate, so that a price times a quantity times a rate never
// overflows on the way; it saturates at math.MaxInt64, and is 0 when an
// input is not positive. The rules engine and the ledger share it.
func MulDiv(a, b, c int64) int64 {
	q, _ := mulDivRem(a, b, c)
	return q
}

// MulDivCeil is MulDiv rounded up: ceil(a×b/c).
func MulDivCeil(a, b, c int64) int64 {
	q, r := mulDivRem(a, b, c)
	if r != 0 && q < math.MaxInt64 {
		q++
	}
	return q
}

func mulDivRem(a, b, c int64) (q int64, r uint64) {
	if a <= 0 || b <= 0 || c <= 0 {
		return 0, 0
	}
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi == 0 { // the usual case: a 64-bit division is much cheaper
		return int64(min(lo/uint64(c), math.MaxInt64)), lo % uint64(c)
	}
	if hi >= uint64(c) {
		return math.MaxInt64, 0
	}
	uq, ur := bits.Div64(hi, lo, uint64(c))
	if uq > math.MaxInt64 {
		return math.MaxInt64, 0
	}
	return int64(uq), ur
}
