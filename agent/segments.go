package agent

import (
	"slices"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/snapshot"
)

// segmentIndex is a snapshot's computed segments by customer.
func segmentIndex(cs []snapshot.CustomerSegments) map[protocol.CustomerID][]string {
	if len(cs) == 0 {
		return nil
	}
	m := make(map[protocol.CustomerID][]string, len(cs))
	for _, c := range cs {
		m[c.Customer] = c.Segments
	}
	return m
}

// withSegments adds to a customer the segments the till's snapshot lists
// for it (as of the snapshot: the hub computed them from the customer's
// purchase history). Segments the POS or a token presented stay.
func (v *view) withSegments(c protocol.Customer) protocol.Customer {
	if v == nil || c.ID == "" {
		return c
	}
	gs := v.segs[c.ID]
	if len(gs) == 0 {
		return c
	}
	out := slices.Clone(c.Segments)
	for _, g := range gs {
		if !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	c.Segments = out
	return c
}
