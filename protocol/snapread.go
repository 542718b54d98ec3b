package protocol

// SnapshotRead is what a snapshot body reads of the ledger for one agent,
// in one read (store/ledger.SnapshotRead, hub/snapshots): the positions,
// which of the agent's facts the code states count (Reflected), the
// codes changed after the agent's code-use position and the agent's
// allowances as the hub counts them, all at the same position.
type SnapshotRead struct {
	Codes     uint64 // the tenant's code-use position
	Customers uint64 // the tenant's customer-state position
	// Watermark and Beyond are the agent's facts the code states count:
	// every seq up to Watermark and each in Beyond (ascending).
	Watermark uint64
	Beyond    []uint64
	// States are the codes changed after the position asked for, when
	// StatesOK (false: none asked for, more than the limit changed, or the
	// position is beyond Codes).
	States   map[CodeID]CodeState
	StatesOK bool
	// Escrow is the hub's view of every campaign the agent was granted
	// (store/ledger.Escrow), by campaign, when asked for.
	Escrow []Allowance
}
