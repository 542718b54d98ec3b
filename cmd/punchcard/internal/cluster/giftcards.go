package cluster

import (
	"context"
	"net/http"
	"net/url"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/wire"
)

// Gift card life at the till and at the hub (docs/agent.md, docs/api.md).

// SellCard sells a gift card at the till (POST /v1/giftcards).
func (a AgentAPI) SellCard(ctx context.Context, in wire.GiftCardSale) (wire.GiftCard, error) {
	var out wire.GiftCard
	err := a.C.Do(ctx, http.MethodPost, "/v1/giftcards", in, &out)
	return out, err
}

// TopUpCard tops a card up at the till (POST /v1/giftcards/{code}/topup).
func (a AgentAPI) TopUpCard(ctx context.Context, code string, in wire.GiftCardTopUp) (wire.GiftCard, error) {
	var out wire.GiftCard
	err := a.C.Do(ctx, http.MethodPost, "/v1/giftcards/"+url.PathEscape(code)+"/topup", in, &out)
	return out, err
}

// CardBalance is the till's answer for a card's balance (GET
// /v1/giftcards/{code}).
func (a AgentAPI) CardBalance(ctx context.Context, code string) (wire.GiftCard, error) {
	var out wire.GiftCard
	err := a.C.Do(ctx, http.MethodGet, "/v1/giftcards/"+url.PathEscape(code), nil, &out)
	return out, err
}

// GiftCard is the hub's answer for a card's balance (GET
// /v1/tenants/{t}/giftcards/{code}).
func (h HubAPI) GiftCard(ctx context.Context, t protocol.TenantID, code string) (wire.GiftCard, error) {
	var out wire.GiftCard
	err := h.C.Do(ctx, http.MethodGet, tpath(t, "/giftcards/"+url.PathEscape(code)), nil, &out)
	return out, err
}
