package online

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/rules"
)

// The answer built in two parts (head before the writer, body inside it)
// is json.Marshal of the Response, byte for byte.
func TestAnswerEncoding(t *testing.T) {
	d := rules.Decision{Currency: "EUR", Subtotal: 10000, Discount: 700, Total: 9300, Due: 9300,
		Results: []rules.Result{{Index: 0, Campaign: "promo", Code: "P<&>", Discount: 500}}}
	rs := []protocol.Redemption{
		{ID: protocol.RedemptionID{Agent: protocol.HubSender, Seq: 7}, Kind: protocol.KindRedeem, Tenant: "shop", TxnID: "k", Campaign: "promo", Code: "P<&>", Discount: 500, HLC: 12},
		{ID: protocol.RedemptionID{Agent: protocol.HubSender, Seq: 8}, Kind: protocol.KindBurn, Tenant: "shop", TxnID: "k", Campaign: "club", Points: -100, HLC: 12},
	}
	for _, n := range []int{0, 1, 2} {
		p := plan{decision: &d}
		head, err := p.head()
		if err != nil {
			t.Fatal(err)
		}
		got, err := p.body(head, rs[:n])
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(Response{Decision: d, Redemptions: rs[:n]})
		if !bytes.Equal(got, want) {
			t.Errorf("%d redemptions:\n got %s\nwant %s", n, got, want)
		}
	}
	got, err := plan{}.body(nil, rs[:1])
	want, _ := json.Marshal(rs[0])
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("rollback: got %s, want %s (%v)", got, want, err)
	}
}
