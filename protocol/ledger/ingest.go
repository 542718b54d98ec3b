package ledger

import "github.com/punchcard/punchcard/protocol"

// Batch is one agent's batch of redemptions, as received.
type Batch struct {
	Tenant      protocol.TenantID
	Agent       protocol.AgentID
	Redemptions []protocol.Redemption
	// Raw, when set, holds each redemption's CBOR as received, by index:
	// what a quarantined fact is kept as. Without it the ledger keeps the
	// canonical encoding of the decoded fact.
	Raw [][]byte
	// Malformed, when set, holds by index the error of a fact that did not
	// decode (protocol.DecodeFact); its Redemptions entry holds only the ID
	// that could still be read. Such a fact is quarantined under its seq.
	Malformed []error
}

// Result is what applying one Batch gave: the Ack to send back, the
// conflicts found, the facts quarantined, and Err when the batch was
// refused as a whole (its tenant or agent is not a valid identity, or is
// the hub's) without being recorded.
type Result struct {
	Ack       protocol.Ack
	Conflicts []Conflict
	// Quarantined are the facts of the batch recorded in quarantine by
	// this call (a repeat of one already recorded is not listed again).
	Quarantined []Quarantined
	// Dropped counts facts neither applied nor quarantined: they name no
	// usable seq (0 or beyond protocol.MaxSeq), so no Ack can cover them.
	Dropped int
	Err     error
}

// StateRecord is one agent's heartbeat, as received.
type StateRecord struct {
	Tenant protocol.TenantID
	Agent  protocol.AgentID
	State  protocol.AgentState
}

// StateResult is what recording one StateRecord gave: the agent's
// watermark after it (for the Ack that answers a heartbeat), or Err when
// the record was refused (an invalid identity or a value out of range)
// and not recorded.
type StateResult struct {
	Watermark uint64
	Err       error
}

// Prepared is a drain of batches whose read-only work a store has done
// (validation, re-derivation) and that it has not yet recorded: the first
// half of a pipelined apply (hub/ingest's Ledger.PrepareDrain). Only the
// store that made it reads it; Batches are the batches it holds, in order.
type Prepared interface {
	Batches() []Batch
}

// Gap returns the Resend to ask for when ack shows missing seqs below
// the ones applied out of order.
func Gap(ack protocol.Ack) (protocol.Resend, bool) {
	if len(ack.Beyond) == 0 {
		return protocol.Resend{}, false
	}
	return protocol.Resend{From: ack.Watermark + 1, To: ack.Beyond[0] - 1}, true
}
