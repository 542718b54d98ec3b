package catalog_test

import (
	"context"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol/segment"
)

// TestSegmentDefsCache: the segment definitions are cached per catalog
// version; a put or delete shows at once in the hub that made it and
// within the cache TTL in another hub sharing the file.
func TestSegmentDefsCache(t *testing.T) {
	ctx := context.Background()
	a, b, _ := twoHubs(t, 200*time.Millisecond)
	list := func(who string, got []segment.Definition, err error) []string {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", who, err)
		}
		var out []string
		for _, d := range got {
			out = append(out, d.ID)
		}
		return out
	}
	same := func(got []string, want ...string) bool {
		if len(got) != len(want) {
			return false
		}
		for i := range got {
			if got[i] != want[i] {
				return false
			}
		}
		return true
	}
	for _, c := range []string{"a", "b"} { // fill both caches: none
		cat := a
		if c == "b" {
			cat = b
		}
		d, err := cat.SegmentDefs(ctx, "acme")
		if got := list(c, d, err); len(got) != 0 {
			t.Fatalf("%s: %v, want none", c, got)
		}
	}
	big := segment.Definition{ID: "big", Rules: []segment.Rule{{Kind: segment.KindSpend, MinSpend: 100000, Days: 365}}}
	if _, err := a.PutSegment(ctx, "acme", big); err != nil {
		t.Fatal(err)
	}
	d, err := a.SegmentDefs(ctx, "acme")
	if got := list("a", d, err); !same(got, "big") {
		t.Fatalf("a after put: %v, want [big]", got)
	}
	for deadline := time.Now().Add(time.Minute); ; { // b: within its TTL
		d, err := b.SegmentDefs(ctx, "acme")
		if same(list("b", d, err), "big") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the other hub never saw the new segment")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := a.DeleteSegment(ctx, "acme", "big"); err != nil {
		t.Fatal(err)
	}
	d, err = a.SegmentDefs(ctx, "acme")
	if got := list("a", d, err); len(got) != 0 {
		t.Fatalf("a after delete: %v, want none", got)
	}
	d, err = a.SegmentDefs(ctx, "nobody") // an unknown tenant has none
	if got := list("unknown tenant", d, err); len(got) != 0 {
		t.Fatalf("unknown tenant: %v", got)
	}
}
