package ledger

import (
	"context"
	"fmt"

	"github.com/punchcard/punchcard/protocol"
	pledger "github.com/punchcard/punchcard/protocol/ledger"
)

// Batches implements pledger.Prepared.
func (p *Prepared) Batches() []Batch { return p.bs }

var _ pledger.Prepared = (*Prepared)(nil)

// PrepareDrain is PrepareBatches behind the store-neutral pledger.Prepared
// (hub/ingest's Ledger): inflight is nil or a Prepared of this ledger.
func (l *Ledger) PrepareDrain(ctx context.Context, bs []Batch, inflight pledger.Prepared) (pledger.Prepared, error) {
	in, ok := inflight.(*Prepared)
	if inflight != nil && !ok {
		return nil, fmt.Errorf("ledger: prepare: a %T is not this ledger's", inflight)
	}
	p, err := l.PrepareBatches(ctx, bs, in)
	if p == nil || err != nil {
		return nil, err
	}
	return p, nil
}

// ApplyDrain is ApplyPrepared of a Prepared that PrepareDrain made.
func (l *Ledger) ApplyDrain(ctx context.Context, p pledger.Prepared) ([]Result, error) {
	pp, ok := p.(*Prepared)
	if !ok || pp == nil {
		return nil, fmt.Errorf("ledger: apply: a %T is not this ledger's", p)
	}
	return l.ApplyPrepared(ctx, pp)
}

// ApplyDrainStates records a prepared drain (p nil: none) and the
// drain's heartbeats in one transaction, one commit (and fsync) for
// both: ApplyDrain and RecordAgentStates in one. Each heartbeat's
// watermark is read after the drain's batches are recorded. A returned
// error means nothing was recorded. With the pipelined commit
// (Options.SerialCommit false) the commit is durable only once
// SyncDrains returns: call it before acknowledging anything recorded
// (drainsync.go). ApplyDrain, ApplyBatches and RecordAgentStates are
// durable when they return.
func (l *Ledger) ApplyDrainStates(ctx context.Context, p pledger.Prepared, sts []StateRecord) ([]Result, []StateResult, error) {
	var pp *Prepared
	if p != nil {
		var ok bool
		if pp, ok = p.(*Prepared); !ok || pp == nil {
			return nil, nil, fmt.Errorf("ledger: apply: a %T is not this ledger's", p)
		}
	}
	return l.applyDrain(ctx, pp, sts, true) // apply.go
}

// Gap returns the Resend to ask for when ack shows missing seqs below
// the ones applied out of order (pledger.Gap).
func Gap(ack protocol.Ack) (protocol.Resend, bool) { return pledger.Gap(ack) }
