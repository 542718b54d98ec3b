package online

import (
	"encoding/json"
	"math/rand/v2"
	"testing"

	"github.com/punchcard/punchcard/protocol"
)

// TestRedemptionsJSON: appendRedemptions writes json.Marshal's bytes, on
// random redemptions (strings that need escaping, zero and negative
// numbers, a ref, a snapshot, and a Sale or Cap, which go through
// json.Marshal).
func TestRedemptionsJSON(t *testing.T) {
	strs := []string{"", "hub", "shop", "web", "PROMO", "c1", "o-1-2", "EUR", `q"uote`, "<&>", "café", "\u2028", "bad\xff", "\x01"}
	nums := []int64{0, 1, -1, 500, -100, 1 << 50, -9223372036854775808, 9223372036854775807}
	rng := rand.New(rand.NewPCG(3, 4))
	str := func() string { return strs[rng.IntN(len(strs))] }
	num := func() int64 { return nums[rng.IntN(len(nums))] }
	for i := range 5000 {
		var rs []protocol.Redemption
		for range rng.IntN(4) {
			r := protocol.Redemption{ID: protocol.RedemptionID{Agent: protocol.AgentID(str()), Seq: uint64(num())},
				Kind: protocol.RedemptionKind(rng.IntN(9)), Tenant: protocol.TenantID(str()), Store: protocol.StoreID(str()), TxnID: str(),
				Campaign: protocol.CampaignID(str()), Code: protocol.CodeID(str()), Customer: protocol.CustomerID(str()), OrderID: str(),
				Currency: protocol.Currency(str()), Discount: num(), Spend: num(), Points: num(), OrderTot: num(), HLC: uint64(num()),
				Offline: rng.IntN(2) == 0, Snapshot: uint64(num()) % 3, Expires: num(), Load: num()}
			if rng.IntN(3) == 0 {
				r.Ref = &protocol.RedemptionID{Agent: protocol.AgentID(str()), Seq: uint64(num())}
			}
			switch rng.IntN(8) {
			case 0:
				r.Sale = &protocol.Sale{}
			case 1:
				r.Cap = &protocol.EarnCap{}
			}
			rs = append(rs, r)
		}
		want, err := json.Marshal(rs)
		if err != nil {
			t.Fatal(err)
		}
		if rs == nil {
			want = []byte("[]") // a body never holds a nil list (plan.body omits it)
		}
		got, err := appendRedemptions(nil, rs)
		if err != nil || string(got) != string(want) {
			t.Fatalf("case %d: %v\n got %s\nwant %s", i, err, got, want)
		}
	}
}
