package ledger

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/punchcard/punchcard/protocol"
)

// Allowance grants are group-committed: at fleet scale tills ask for
// hundreds a second, and one fsync'd transaction each held SQLite's
// write lock most of the time, so that ingest's drains waited behind
// them (in SQLite's sleeping busy handler). A grant request joins the
// pending group; one requester at a time leads: it takes every pending
// request (at most maxGrantGroup), decides and records them one after
// the other in one transaction (each sees the ones before it, as with
// one transaction each: the same state, the same write lock), commits,
// and only then answers them all. Then it hands the lead to the oldest
// request still pending, or clears it. No goroutine of its own: nothing
// to stop. A database error in a group rolls it back and each of its
// requests is retried in a transaction of its own, so that one bad
// request fails alone.
var maxGrantGroup = 64 // a var for the benchmark's baseline (export_grants_test.go)

type grantGroup struct {
	mu      sync.Mutex
	pending []*grantReq
	leading bool         // a requester is running a group
	txs     atomic.Int64 // group transactions committed
}

// grantReq is one grant request, checked and with its campaign's facts
// looked up, waiting for its group.
type grantReq struct {
	ctx       context.Context
	tenant    protocol.TenantID
	agent     protocol.AgentID
	campaign  protocol.CampaignID
	requestID string
	cf        CampaignFacts
	a         protocol.Allowance // the answer, filled in by the group
	err       error
	done      chan struct{} // closed when answered
	lead      chan struct{} // the lead handed over (buffered)
}

// grant runs r in a group and returns when it is answered.
func (l *Ledger) grant(r *grantReq) {
	g := &l.grants
	r.done, r.lead = make(chan struct{}), make(chan struct{}, 1)
	g.mu.Lock()
	g.pending = append(g.pending, r)
	lead := !g.leading
	g.leading = true
	g.mu.Unlock()
	if !lead {
		select {
		case <-r.done:
			return
		case <-r.lead:
		}
	}
	// Leading: r is pending (the lead goes only to a pending request).
	g.mu.Lock()
	n := min(len(g.pending), maxGrantGroup)
	batch := g.pending[:n:n]
	g.pending = g.pending[n:]
	g.mu.Unlock()
	l.runGrants(r.ctx, batch)
	g.mu.Lock()
	if len(g.pending) == 0 {
		g.leading = false
		g.pending = nil
		g.mu.Unlock()
	} else {
		next := g.pending[0]
		g.mu.Unlock()
		next.lead <- struct{}{}
	}
	<-r.done // in batch: answered by runGrants
}

// runGrants decides and records batch in one transaction and answers
// every request of it.
func (l *Ledger) runGrants(ctx context.Context, batch []*grantReq) {
	// The group is not the leader's alone: its cancellation stops only
	// its own request.
	ctx = context.WithoutCancel(ctx)
	live := batch[:0:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.err = err
			close(r.done)
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	if err := l.grantTx(ctx, live); err != nil {
		if len(live) == 1 {
			live[0].err = err
		} else {
			for _, r := range live {
				if e := l.grantTx(ctx, []*grantReq{r}); e != nil {
					r.err = e
				}
			}
		}
	}
	for _, r := range live {
		close(r.done)
	}
}

// grantTx runs rs in one transaction: each request's answer (a grant, or
// a reason code) is set in it; an error means nothing was recorded and
// no answer is final.
func (l *Ledger) grantTx(ctx context.Context, rs []*grantReq) error {
	l.gate.lock()
	defer l.gate.unlock()
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return wrap("grant: begin", err)
	}
	defer tx.Rollback()
	s := l.newState(ctx, tx)
	defer s.close()
	for _, r := range rs {
		r.a, r.err = r.base(), nil
		if err := l.grantIn(s, r); err != nil {
			return err
		}
	}
	if err := s.flush(); err != nil {
		return wrap("grant", err)
	}
	if err := tx.Commit(); err != nil {
		return wrap("grant: commit", err)
	}
	l.grants.txs.Add(1)
	l.eventsCommitted() // events.go
	return nil
}

// base is the answer before any decision.
func (r *grantReq) base() protocol.Allowance {
	return protocol.Allowance{Tenant: r.tenant, Agent: r.agent, Campaign: r.campaign, Count: -1, Amount: -1, Currency: r.cf.Currency}
}

// grantOfTx is grantOf inside the group's transaction: a retry of a
// request granted since the check outside it (or earlier in the group)
// gets that grant.
func grantOfTx(s *state, r *grantReq) (protocol.Allowance, bool, error) {
	a := protocol.Allowance{Tenant: r.tenant, Agent: r.agent}
	var c, cur string
	var g int64
	err := s.queryRow(qGrantOf, []any{&c, &g, &a.Count, &a.Amount, &a.GrantedCount, &a.GrantedAmount, &cur},
		string(r.tenant), string(r.agent), r.requestID)
	if errors.Is(err, sql.ErrNoRows) {
		return a, false, nil
	}
	if err != nil {
		return a, false, wrap("grant: request", err)
	}
	a.Campaign, a.Grant, a.Currency = protocol.CampaignID(c), uint64(g), protocol.Currency(cur)
	return a, true, nil
}
