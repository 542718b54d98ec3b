package ledger

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestFactEventJSON: the hand-written encoding of a fact event's body is
// byte for byte what json.Marshal gives, on random facts whose strings
// hold what needs escaping (quotes, controls, HTML characters, non-ASCII,
// invalid UTF-8, U+2028) and whose numbers are zero, negative and large.
func TestFactEventJSON(t *testing.T) {
	strs := []string{"", "web", "c42", "PROMO-2026", "till-0001", "o-1-2", "EUR", "2026-11-23T10:00:00.123Z",
		`a"b`, `back\slash`, "tab\there", "nl\n", "\x00\x1f", "<b>&amp;</b>", "café", "日本", "\u2028\u2029",
		"bad\xffutf8", "\xc3", "emoji😀", "del\x7f", "~!@#$%^*()_+{}|:?", " "}
	nums := []int64{0, 1, -1, 42, -500, 1 << 40, -(1 << 62), 9223372036854775807, -9223372036854775808}
	rng := rand.New(rand.NewPCG(1, 2))
	str := func() string { return strs[rng.IntN(len(strs))] }
	num := func() int64 { return nums[rng.IntN(len(nums))] }
	for i := range 20000 {
		e := factEvent{Agent: str(), Seq: uint64(num()), Kind: str(), Store: str(), Campaign: str(), Code: str(), Customer: str(),
			OrderID: str(), TxnID: str(), Currency: str(), Discount: num(), Spend: num(), Points: num(), OrderTotal: num(),
			Offline: rng.IntN(2) == 0, At: str(), RefAgent: str(), RefSeq: uint64(num())}
		want, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.appendJSON(nil); string(got) != string(want) {
			t.Fatalf("fact %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

// TestEventSalt: salts have the DEFAULT's form (12 lowercase hex digits)
// and do not repeat.
func TestEventSalt(t *testing.T) {
	seen := map[string]bool{}
	for range 10000 {
		s := eventSalt()
		if len(s) != 12 || strings.Trim(s, "0123456789abcdef") != "" {
			t.Fatalf("salt %q", s)
		}
		if seen[s] {
			t.Fatalf("salt %q repeated", s)
		}
		seen[s] = true
	}
}
