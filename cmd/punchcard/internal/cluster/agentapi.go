package cluster

import (
	"context"
	"net/http"

	"github.com/punchcard/punchcard/agent"
)

// AgentAPI is a POS system's view of a store agent: the local HTTP API a
// till calls (docs/agent.md).
type AgentAPI struct {
	C *Client
}

// Validate asks what a basket gets, without side effects.
func (a AgentAPI) Validate(ctx context.Context, b agent.Basket) (agent.Quote, error) {
	var q agent.Quote
	err := a.C.Do(ctx, http.MethodPost, "/v1/validate", b, &q)
	return q, err
}

// Redeem applies a basket's rewards for good. A refusal is a
// *protocol.Error with the reason code.
func (a AgentAPI) Redeem(ctx context.Context, r agent.RedeemRequest) (agent.Receipt, error) {
	var rc agent.Receipt
	err := a.C.Do(ctx, http.MethodPost, "/v1/redeem", r, &rc)
	return rc, err
}

// Earn records loyalty points for an order.
func (a AgentAPI) Earn(ctx context.Context, r agent.EarnRequest) (agent.Receipt, error) {
	var rc agent.Receipt
	err := a.C.Do(ctx, http.MethodPost, "/v1/earn", r, &rc)
	return rc, err
}

// Rollback voids a transaction's redemptions.
func (a AgentAPI) Rollback(ctx context.Context, r agent.RollbackRequest) (agent.Receipt, error) {
	var rc agent.Receipt
	err := a.C.Do(ctx, http.MethodPost, "/v1/rollback", r, &rc)
	return rc, err
}

// Status reports the agent's sync state.
func (a AgentAPI) Status(ctx context.Context) (agent.Status, error) {
	var s agent.Status
	err := a.C.Do(ctx, http.MethodGet, "/v1/status", nil, &s)
	return s, err
}
