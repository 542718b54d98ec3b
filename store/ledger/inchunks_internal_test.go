package ledger

import (
	"strings"
	"testing"
)

// TestInChunks: every IN query of the drain has a variant for each of
// inChunks, with that many placeholders in its list and nothing else
// changed, and inChunk picks the smallest that holds a list.
func TestInChunks(t *testing.T) {
	for _, q := range []string{qAllowancesIn, qCustomersIn, qWatermarksIn, qDebtsIn, qCodesIn, qCustCampsIn, qTxnFactsIn} {
		vs, ok := inVariants[q]
		if !ok || len(vs) != len(inChunks) {
			t.Fatalf("no variants of %q", q)
		}
		base := strings.Count(q, "?") - balanceChunk
		for i, c := range inChunks {
			if got := strings.Count(vs[i], "?"); got != base+c {
				t.Errorf("variant %d of %q has %d placeholders, want %d", c, q, got, base+c)
			}
			if strings.Replace(vs[i], "("+strings.TrimSuffix(strings.Repeat("?, ", c), ", ")+")", "("+inList+")", 1) != q {
				t.Errorf("variant %d of %q differs beyond its list: %q", c, q, vs[i])
			}
		}
	}
	for _, tc := range []struct{ n, want int }{{1, 1}, {2, 2}, {3, 4}, {5, 8}, {8, 8}, {9, 16}, {17, 32}, {32, 32}} {
		q, c := inChunk(qCodesIn, tc.n)
		if c != tc.want || strings.Count(q, "?") != 1+c {
			t.Errorf("inChunk(%d) = %d keys, %d placeholders; want %d keys", tc.n, c, strings.Count(q, "?"), tc.want)
		}
	}
	if q, c := inChunk("SELECT 1", 3); q != "SELECT 1" || c != balanceChunk {
		t.Errorf("inChunk of a query without variants = %q, %d", q, c)
	}
}
