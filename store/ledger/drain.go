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

// Gap returns the Resend to ask for when ack shows missing seqs below
// the ones applied out of order (pledger.Gap).
func Gap(ack protocol.Ack) (protocol.Resend, bool) { return pledger.Gap(ack) }
