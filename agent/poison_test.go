package agent_test

import (
	"context"
	"strings"
	"testing"

	"github.com/punchcard/punchcard/agent"
	"github.com/punchcard/punchcard/agent/agenttest"
	"github.com/punchcard/punchcard/protocol"
)

// TestPOSRefusesPoisonFacts: the till refuses, at the POS and with the
// field to fix, every request whose facts the hub would not apply, and
// records nothing. The original till committed them; the hub then refused
// the till's batch every few seconds, for ever, and the till's later sales
// never reached it.
func TestPOSRefusesPoisonFacts(t *testing.T) {
	ctx := context.Background()
	long := strings.Repeat("o", 129)
	for _, tc := range []struct {
		name, path, field string
		body              any
	}{
		{"RedeemOrderIDTooLong", "/v1/redeem", "order.id", agent.RedeemRequest{TxnID: "T1",
			Basket: agent.Basket{Order: agenttest.Order(long, 100_00), Redeemables: []agent.Input{{Code: agenttest.CodeSummer}}}}},
		{"RedeemCustomerSpace", "/v1/redeem", "customer.id", agent.RedeemRequest{TxnID: "T2",
			Basket: agent.Basket{Order: agenttest.Order("o1", 100_00), Customer: &protocol.Customer{ID: "a b"}, Redeemables: []agent.Input{{Code: agenttest.CodeSummer}}}}},
		{"EarnCustomerSpace", "/v1/earn", "customer.id", agent.EarnRequest{TxnID: "T3", Order: agenttest.Order("o1", 100_00), Customer: &protocol.Customer{ID: "a b"}}},
		{"ValidateOrderIDTooLong", "/v1/validate", "order.id", agent.Basket{Order: agenttest.Order(long, 100_00), Redeemables: []agent.Input{{Code: agenttest.CodeSummer}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, agenttest.Small(1, 1000))
			r := e.post(t, tc.path, tc.body)
			if r.Status != 400 || r.code() != string(protocol.CodeInvalidInput) {
				t.Fatalf("status %d: %s", r.Status, r.Raw)
			}
			if got := r.Body["error"].(map[string]any)["field"]; got != tc.field {
				t.Fatalf("field = %v, want %s: %s", got, tc.field, r.Raw)
			}
			st, err := e.db.State(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.OutboxDepth != 0 || st.LastSeq != 0 {
				t.Fatalf("a refused request left outbox %d, last seq %d", st.OutboxDepth, st.LastSeq)
			}
		})
	}
	t.Run("OKLimits", func(t *testing.T) {
		e := newEnv(t, agenttest.Small(1, 1000))
		r := e.post(t, "/v1/redeem", agent.RedeemRequest{TxnID: strings.Repeat("t", agent.MaxTxnIDLen),
			Basket: agent.Basket{Order: agenttest.Order(strings.Repeat("o", 128), 100_00), Customer: &protocol.Customer{ID: "c-1"},
				Redeemables: []agent.Input{{Code: agenttest.CodeSummer}}}})
		if r.Status != 200 {
			t.Fatalf("status %d: %s", r.Status, r.Raw)
		}
		if st, _ := e.db.State(ctx); st.OutboxDepth == 0 {
			t.Fatal("nothing queued")
		}
	})
}
