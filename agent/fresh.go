package agent

import (
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/decide"
)

// A code newer than the till's snapshot (docs/design.md, "A code newer
// than the till's snapshot"): a gift card sold at another till a minute
// ago, a code generated or imported, a referral code made since the
// snapshot. The first decision refuses it code_unknown, which needs the
// hub (decide.HubUnknown); online, the till names it in its authorize
// request (decide.AuthorizeRequest.Unknown) and the hub answers its
// record when it knows and applies it (decide.AuthorizeResponse.Codes).
// The till then resolves the code with that record for this decision
// only, decides with its own pipeline over its own snapshot's rules and
// the hub's figures, and records its fact as usual (with the hub's hold
// on a single-use code or gift card, like any online-first redeem); the
// hub finds the code on ingest, as it has it. The answer comes over the
// same authenticated HTTP link as the snapshot itself (the hub's TLS
// certificate, verified and optionally pinned; the till's secret), so it
// is trusted as the snapshot is. A record whose campaign the till's
// snapshot lacks is not used: the till cannot evaluate rules it does not
// have, and refuses code_unknown saying it is fetching them. Either way
// the till asks for its snapshot at once (SnapshotRefresher), so the next
// decision, offline too, knows the code. Offline nothing changes: a code
// the snapshot does not carry is code_unknown.

// SnapshotRefresher is the part of a Link that fetches the snapshot soon,
// coalesced with a fetch already due (agent/uplink).
type SnapshotRefresher interface {
	RefreshSnapshot()
}

// unknownIndexes are the presented things d could not resolve, for the
// authorize request.
func (d *decision) unknownIndexes() []int {
	var out []int
	for i, it := range d.out.Items {
		if it.Refused != nil && it.Refused.Code == protocol.CodeUnknownCode {
			out = append(out, i)
		}
	}
	return out
}

// hubCode is the hub's record of a code the snapshot does not carry, from
// this decision's authorize answer; false when the hub sent none or the
// till's snapshot lacks its campaign.
func (f *tillFacts) hubCode(key protocol.CodeID) (decide.Code, bool) {
	if f.hub == nil {
		return decide.Code{}, false
	}
	for _, c := range f.hub.Codes {
		if c.Key != key {
			continue
		}
		if _, ok := f.v.rules.Campaign(c.Campaign); !ok {
			return decide.Code{}, false
		}
		return c.CodeOf(), true
	}
	return decide.Code{}, false
}

// laggingCodes explains a code the hub applies that stays unknown here
// because the till's snapshot lacks its campaign.
func (d *decision) laggingCodes(resp *decide.AuthorizeResponse) {
	for _, c := range resp.Codes {
		if _, ok := d.v.rules.Campaign(c.Campaign); ok {
			continue
		}
		for i := range d.dec.Results {
			r := &d.dec.Results[i]
			if r.Index == c.Index && !r.Applied && r.Reason == protocol.CodeUnknownCode {
				r.Message = "This till does not have this code's promotion yet and is fetching it. Try again in a moment."
			}
		}
	}
}

// refreshFor asks the link for the snapshot when the hub knew codes the
// snapshot does not carry.
func (a *Agent) refreshFor(link Link, resp *decide.AuthorizeResponse) {
	if len(resp.Codes) == 0 {
		return
	}
	if r, ok := link.(SnapshotRefresher); ok {
		r.RefreshSnapshot()
	}
}
