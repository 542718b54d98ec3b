package codes

import "testing"

// TestQuasigroup proves the check character's guarantees for every charset
// size a Generator accepts, exhaustively: each table is a Latin square
// (every single substitution changes the result) and totally
// anti-symmetric, (c∘x)∘y = (c∘y)∘x only if x = y (every adjacent swap
// changes it). Sizes ≡ 2 (mod 4) other than 10 must be refused.
func TestQuasigroup(t *testing.T) {
	for n := 2; n <= 94; n++ {
		q, err := newQuasigroup(n)
		if n == 2 || (n%4 == 2 && n != 10) {
			if err == nil {
				t.Fatalf("n=%d: built a quasigroup, want a refusal", n)
			}
			continue
		}
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		for r := range n {
			row, col := make([]bool, n), make([]bool, n)
			for v := range n {
				a, b := q.table[r*n+v], q.table[v*n+r]
				if int(a) >= n || row[a] || col[b] {
					t.Fatalf("n=%d: not a Latin square at row/column %d", n, r)
				}
				row[a], col[b] = true, true
			}
			if q.step(uint8(r), q.zero[r]) != 0 {
				t.Fatalf("n=%d: zero[%d] wrong", n, r)
			}
		}
		for c := range n {
			for x := range n {
				cx := q.step(uint8(c), uint8(x))
				for y := x + 1; y < n; y++ {
					if q.step(cx, uint8(y)) == q.step(q.step(uint8(c), uint8(y)), uint8(x)) {
						t.Fatalf("n=%d: (%d∘%d)∘%d = (%d∘%d)∘%d", n, c, x, y, c, y, x)
					}
				}
			}
		}
	}
}
