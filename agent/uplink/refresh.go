package uplink

import "github.com/punchcard/punchcard/agent"

var _ agent.SnapshotRefresher = (*Client)(nil)

// RefreshSnapshot implements agent.SnapshotRefresher: the hub knew a code
// the till's snapshot does not carry yet (an online-first answer's
// records), so fetch the snapshot now rather than at the next
// announcement or poll. It coalesces with a fetch already due, and the
// fetch is a delta (or a 304) like any other.
func (c *Client) RefreshSnapshot() { c.triggerFetch() }
