package codes

import "fmt"

// The check character is computed with Damm's algorithm (H. M. Damm, 2004)
// generalised to the charset's size n: the characters are the elements
// 0..n-1 of a totally anti-symmetric quasigroup ∘, the running value starts
// at 0 and becomes r∘v for every character v, and the check character is the
// c that brings it back to 0. Because ∘ is a Latin square, changing any one
// character (the check character included) changes the result; because it
// is totally anti-symmetric, (r∘x)∘y = (r∘y)∘x only when x = y, so swapping
// any two adjacent different characters changes it too. Both guarantees
// hold for every position and every pair of characters, with no exception
// (a Luhn-style weighted sum misses some, e.g. 09 ↔ 90).
//
// Construction for n = 2^k · m with m odd: the direct product of
//   - GF(2^k) with x∘y = 2x + y (k ≥ 2), and
//   - Z_m with x∘y = 2x + y mod m,
// each totally anti-symmetric because 2 and 2−1 are invertible there
// ((c∘x)∘y − (c∘y)∘x = (2−1)(x−y)). No such quasigroup exists for n = 2 or
// 6, and the direct product cannot build the other n ≡ 2 (mod 4); of those
// we support n = 10 with Damm's published table, and refuse the rest.

// irreducible holds an irreducible polynomial of degree k over GF(2), index k.
var irreducible = [...]int{2: 0x7, 3: 0xB, 4: 0x13, 5: 0x25, 6: 0x43, 7: 0x83}

// damm10 is Damm's totally anti-symmetric quasigroup of order 10.
var damm10 = [10][10]uint8{
	{0, 3, 1, 7, 5, 9, 8, 6, 4, 2},
	{7, 0, 9, 2, 1, 5, 4, 8, 6, 3},
	{4, 2, 0, 6, 8, 7, 1, 3, 5, 9},
	{1, 7, 5, 0, 9, 8, 3, 4, 2, 6},
	{6, 1, 2, 3, 0, 4, 5, 9, 7, 8},
	{3, 6, 7, 4, 2, 0, 9, 5, 8, 1},
	{5, 8, 6, 9, 7, 2, 0, 1, 3, 4},
	{8, 9, 4, 5, 3, 6, 2, 0, 1, 7},
	{9, 4, 3, 8, 6, 1, 7, 2, 0, 5},
	{2, 5, 8, 1, 4, 3, 6, 7, 9, 0},
}

// quasigroup is an n×n operation table with, for each row, the column that
// yields 0.
type quasigroup struct {
	n     int
	table []uint8 // table[r*n+v] = r∘v
	zero  []uint8 // zero[r] = c with r∘c = 0
}

// newQuasigroup builds the totally anti-symmetric quasigroup of order n.
func newQuasigroup(n int) (*quasigroup, error) {
	if n < 3 || n > 128 {
		return nil, fmt.Errorf("a check character needs a charset of 3 to 128 characters, not %d", n)
	}
	q := &quasigroup{n: n, table: make([]uint8, n*n), zero: make([]uint8, n)}
	switch {
	case n == 10:
		for r := range 10 {
			for v := range 10 {
				q.table[r*n+v] = damm10[r][v]
			}
		}
	case n%4 == 2:
		return nil, fmt.Errorf("a check character is not possible with %d characters (n ≡ 2 mod 4 other than 10): add or remove one character", n)
	default:
		pow, k := 1, 0
		for (n/pow)%2 == 0 {
			pow, k = pow*2, k+1
		}
		m := n / pow
		for r := range n {
			ra, rb := r/m, r%m
			for v := range n {
				va, vb := v/m, v%m
				a := 0
				if k > 0 {
					a = ra << 1 // 2·ra in GF(2^k)
					if a >= pow {
						a ^= irreducible[k]
					}
					a ^= va
				}
				b := (2*rb + vb) % m
				q.table[r*n+v] = uint8(a*m + b)
			}
		}
	}
	for r := range n {
		for c := range n {
			if q.table[r*n+c] == 0 {
				q.zero[r] = uint8(c)
			}
		}
	}
	return q, nil
}

// step returns r∘v.
func (q *quasigroup) step(r, v uint8) uint8 { return q.table[int(r)*q.n+int(v)] }
