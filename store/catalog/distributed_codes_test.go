package catalog_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/catalog"
)

// TestEachDistributedCode pages through more than two pages of one
// campaign's distributed codes, many made in the same microsecond (ties
// broken by row), and returns each code of the range once, with its
// distribution, and no code of another campaign, of a pending item or
// outside the range; the count equals DistributedCodes.
func TestEachDistributedCode(t *testing.T) {
	c, _ := MustOpen(t)
	ctx := context.Background()
	for _, id := range []string{"mail", "other"} {
		if _, err := c.CreateCampaign(ctx, admin, "acme", campaignJSON(id, "active", percent10)); err != nil {
			t.Fatal(err)
		}
	}
	n := 2*catalog.DistributedPage + 123
	// at = 1000 + i/7 µs: runs of seven codes made in the same microsecond.
	if _, err := c.DB().Exec(`WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i + 1 < ?1)
		INSERT INTO catalog_distribution_items (tenant, distribution, n, customer, campaign, code, text, at)
		SELECT 'acme', 'd' || (i % 3), i, 'cust-' || i, CASE WHEN i % 11 = 0 THEN 'other' ELSE 'mail' END,
			CASE WHEN i % 13 = 0 THEN NULL ELSE 'CODE-' || i END, NULL, CASE WHEN i % 13 = 0 THEN NULL ELSE 1000 + i / 7 END FROM k`, n); err != nil {
		t.Fatal(err)
	}
	from, to := time.UnixMicro(1000+3), time.UnixMicro(1000+int64(n)/7-2)
	want := map[string]string{}
	for i := range n {
		at := int64(1000 + i/7)
		if i%11 != 0 && i%13 != 0 && at >= from.UnixMicro() && at < to.UnixMicro() {
			want[fmt.Sprintf("CODE-%d", i)] = fmt.Sprintf("d%d", i%3)
		}
	}
	got := map[string]string{}
	pages := 0
	err := c.EachDistributedCode(ctx, "acme", "mail", from, to, func(ds []string, cs []protocol.CodeID) error {
		pages++
		for i, code := range cs {
			if _, dup := got[string(code)]; dup {
				t.Fatalf("code %s twice", code)
			}
			got[string(code)] = ds[i]
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if pages < 2 || len(got) != len(want) {
		t.Fatalf("%d codes in %d pages, want %d", len(got), pages, len(want))
	}
	for code, d := range want {
		if got[code] != d {
			t.Fatalf("code %s: distribution %q, want %q", code, got[code], d)
		}
	}
	if cnt, err := c.DistributedCodes(ctx, "acme", "mail", from, to); err != nil || cnt != int64(len(want)) {
		t.Fatalf("DistributedCodes %d (%v), want %d", cnt, err, len(want))
	}
}
