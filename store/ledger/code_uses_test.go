package ledger_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/punchcard/punchcard/protocol"
)

// TestCodesUsed: across several chunks, with codes repeated and codes the
// ledger never saw, every index of a used code (uses > 0) is reported
// once, and none of an unused, voided (uses 0) or unknown code or of
// another tenant's.
func TestCodesUsed(t *testing.T) {
	l, _ := MustOpen(t)
	ctx := context.Background()
	// Balances without facts: removed before the store's own Verify.
	t.Cleanup(func() { l.DB().Exec(`DELETE FROM ledger_codes`) })
	if _, err := l.DB().Exec(`WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i + 1 < 1500)
		INSERT INTO ledger_codes (tenant, code, uses) SELECT ?, 'C' || i, i % 3 FROM k`, string(tenant)); err != nil {
		t.Fatal(err)
	}
	if _, err := l.DB().Exec(`INSERT INTO ledger_codes (tenant, code, uses) VALUES ('other', 'X1', 1)`); err != nil {
		t.Fatal(err)
	}
	var codes []protocol.CodeID
	for i := range 1300 {
		codes = append(codes, protocol.CodeID(fmt.Sprintf("C%d", (i*7)%2000))) // repeats past 1500... and unknown codes
	}
	codes = append(codes, "X1", "C1", "C1")
	got := map[int]int{}
	if err := l.CodesUsed(ctx, tenant, codes, func(i int) { got[i]++ }); err != nil {
		t.Fatal(err)
	}
	for i, c := range codes {
		var n int
		fmt.Sscanf(string(c), "C%d", &n)
		want := 0
		if c != "X1" && n < 1500 && n%3 != 0 {
			want = 1
		}
		if got[i] != want {
			t.Fatalf("code %d (%s): reported %d times, want %d", i, c, got[i], want)
		}
	}
	if err := l.CodesUsed(ctx, tenant, nil, func(int) { t.Fatal("called") }); err != nil {
		t.Fatal(err)
	}
}
