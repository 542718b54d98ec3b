package agent

import (
	"context"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/decide"
	"github.com/punchcard/punchcard/protocol/rules"
)

// DefaultOnlineTimeout bounds how long a till waits for the hub when it
// asks online first; then it decides offline, inside its risk envelope.
const DefaultOnlineTimeout = 300 * time.Millisecond

// Authorizer is the part of a Link that asks the hub online first
// (decide.PathAuthorize), implemented by agent/uplink. A Link without it
// decides everything locally.
type Authorizer interface {
	Authorize(ctx context.Context, req decide.AuthorizeRequest) (decide.AuthorizeResponse, error)
}

// onlineFirst asks the hub, while the till is online, about a decision
// that depends on what only the hub knows (decide.Outcome.NeedsHub), the
// way a card terminal authorises online first:
//
//   - the hub answers within OnlineTimeout: the till decides again with
//     its own pipeline over the hub's figures (uses, spending, the
//     customer's uses and points), refuses what the hub refused, and
//     records its facts as usual, online, with the hub's reference; for a
//     redeem (hold) the hub holds what the decision uses for this
//     (agent, txn) until the fact reaches its ledger, so no other till or
//     channel can take it meanwhile, and nothing is counted twice (the
//     hold is never recorded, the fact once);
//   - the hub does not answer in time, or fails: the till decides
//     offline (marked offline), inside its risk envelope and the
//     snapshot's staleness limit, as if the link were down.
//
// Multi-use codes, automatic campaigns and points earned never ask.
func (a *Agent) onlineFirst(ctx context.Context, b Basket, d *decision, txn string, hold bool) (*decision, error) {
	if a.OnlineTimeout < 0 || len(d.out.NeedsHub()) == 0 {
		return d, nil
	}
	link, on := a.online()
	auth, ok := link.(Authorizer)
	if !on || !ok {
		return d, nil
	}
	req := decide.AuthorizeRequest{TxnID: txn, Order: b.Order, Customer: b.Customer, Hold: hold && txn != "", Unknown: d.unknownIndexes()}
	for _, in := range b.Redeemables {
		req.Redeemables = append(req.Redeemables, decide.AuthorizeInput{Code: in.Code, Campaign: in.Campaign, Amount: in.Amount})
	}
	timeout := a.OnlineTimeout
	if timeout == 0 {
		timeout = DefaultOnlineTimeout
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	resp, err := auth.Authorize(actx, req)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		a.Logger.Info("agent: hub not asked in time, deciding offline", LogKeyTxn, txn, "err", err)
		return a.evaluateWith(ctx, b, false, evalOpts{offline: true})
	}
	a.kept.keep(&resp)
	a.refreshFor(link, &resp) // fresh.go
	return a.evaluateWith(ctx, b, false, evalOpts{hub: &resp})
}

// hubRefusals refuses what the hub refused: it knows what the snapshot
// may not yet (a code used or revoked since, a customer's redemptions
// elsewhere). A code the till does not know takes the hub's reason (a
// campaign its store does not admit is not in its snapshot: wrong_store
// at the hub); one the hub applies the till resolves with the record the
// hub sends (fresh.go), unless its snapshot lacks the code's campaign:
// then it stays refused, as the till cannot evaluate rules it does not
// have. A budget is the till's own to spend (its allowance, escrowed by
// the hub, which the hub's online budget no longer counts): the hub's
// budget_exhausted is not adopted.
func (d *decision) hubRefusals(hub rules.Decision) {
	for _, hr := range hub.Results {
		if hr.Index < 0 || hr.Applied || hr.Reason == "" || hr.Reason == protocol.CodeBudgetExhausted {
			continue
		}
		for i := range d.dec.Results {
			r := &d.dec.Results[i]
			if r.Index == hr.Index && (r.Applied || r.Reason == protocol.CodeUnknownCode) {
				if !r.Applied {
					r.Campaign = hr.Campaign
				}
				r.Applied, r.Reason, r.Message = false, hr.Reason, hr.Message
			}
		}
	}
}

// hubKnown is the hub's figure for a presented code or serial, when it
// was asked.
func (f *tillFacts) hubKnown(key protocol.CodeID) (decide.Known, bool) {
	if f.hub == nil {
		return decide.Known{}, false
	}
	for _, r := range f.hub.Decision.Results {
		if r.Index >= 0 && r.Index < len(f.hub.Known) && r.Code == key {
			return f.hub.Known[r.Index], true
		}
	}
	return decide.Known{}, false
}
