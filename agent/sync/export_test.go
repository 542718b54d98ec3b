package sync

import "github.com/punchcard/punchcard/protocol"

// DropPublish makes c lose the batches for which f is true, as a broken
// network would, after counting them as published.
func DropPublish(c *Client, f func(first uint64) bool) { c.dropPublish.Store(&f) }

// DropDown makes c lose the messages from the hub for which f is true.
func DropDown(c *Client, f func(protocol.Envelope) bool) { c.dropDown.Store(&f) }
