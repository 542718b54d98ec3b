package cluster

import (
	"context"
	"net/http"
	"net/url"

	"github.com/punchcard/punchcard/protocol"
)

// PointsStatement is an issued points statement, as the hub answers it.
type PointsStatement struct {
	Statement string          `json:"statement"`
	Serial    protocol.CodeID `json:"serial"`
	Points    int64           `json:"points"`
	QRPNG     string          `json:"qr_png"`
}

// PointsStatement asks the hub for a customer's points statement of at
// most points (0 = as many as allowed).
func (h HubAPI) PointsStatement(ctx context.Context, t protocol.TenantID, customer protocol.CustomerID, points int64) (PointsStatement, error) {
	var out PointsStatement
	err := h.C.Do(ctx, http.MethodPost, tpath(t, "/customers/"+url.PathEscape(string(customer))+"/points-statement"), map[string]int64{"points": points}, &out)
	return out, err
}

// Earn records an online order's points under an idempotency key.
func (h HubAPI) Earn(ctx context.Context, t protocol.TenantID, key string, req OnlineRequest) (OnlineResponse, error) {
	var out OnlineResponse
	err := h.C.DoHeader(ctx, http.MethodPost, tpath(t, "/earn"), http.Header{"Idempotency-Key": {key}}, req, &out)
	return out, err
}
