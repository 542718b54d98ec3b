package ledger

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// RecordAgentStates stores many agents' heartbeats in one transaction and
// returns each agent's watermark read in it, so that ingest answers a
// fleet's heartbeats with one commit rather than one each (at 10,000
// tills on a 30 s heartbeat, 333 fsync'd commits a second). Results are in
// the order of sts; a returned error means nothing was recorded. The
// same agent may appear more than once: the last record wins, as with
// RecordAgentState called in order.
func (l *Ledger) RecordAgentStates(ctx context.Context, sts []StateRecord) ([]StateResult, error) {
	_, res, err := l.applyDrain(ctx, nil, sts, false) // apply.go
	return res, err
}

// validateStates checks each heartbeat; ok reports that one is valid.
func validateStates(sts []StateRecord) (res []StateResult, ok bool) {
	if len(sts) == 0 {
		return nil, false
	}
	res = make([]StateResult, len(sts))
	for i, s := range sts {
		res[i].Err = validateState(s.Tenant, s.Agent, s.State)
		ok = ok || res[i].Err == nil
	}
	return res, ok
}

// recordStatesIn records the valid heartbeats of sts in s's transaction
// and reads each one's watermark there into res.
func recordStatesIn(s *state, sts []StateRecord, res []StateResult, now time.Time) error {
	at := micros(now)
	for i, r := range sts {
		if res[i].Err != nil {
			continue
		}
		st := r.State
		if _, err := s.exec(upAgentState, string(r.Tenant), string(r.Agent), int64(st.SnapshotVersion), int64(st.LastSeq), st.OutboxDepth, int64(st.HLC), at); err != nil {
			return wrap("agent states", err)
		}
		var wm int64
		if err := s.queryRow(qWatermark, []any{&wm}, string(r.Tenant), string(r.Agent)); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return wrap("agent states", err)
		}
		res[i].Watermark = uint64(wm)
	}
	return nil
}

// upAgentState records a heartbeat; the watermark is ingest's, left alone.
const upAgentState = `INSERT INTO ledger_agents (tenant, agent, snapshot_version, last_seq, outbox_depth, hlc, seen_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant, agent) DO UPDATE SET snapshot_version = excluded.snapshot_version,
		last_seq = excluded.last_seq, outbox_depth = excluded.outbox_depth, hlc = excluded.hlc, seen_at = excluded.seen_at`

// validateState is what RecordAgentState(s) refuse.
func validateState(tenant protocol.TenantID, agent protocol.AgentID, st protocol.AgentState) error {
	if err := protocol.ValidateID("tenant", string(tenant)); err != nil {
		return err
	}
	if err := protocol.ValidateID("agent", string(agent)); err != nil {
		return err
	}
	if st.SnapshotVersion > 1<<62 || st.LastSeq > 1<<62 || st.HLC > 1<<63-1 {
		return protocol.FieldError("state", "a value is out of range")
	}
	return nil
}
