package ledger

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// The event log (ledger_015_events.sql): what the ledger tells the rest of
// the business. Every event is written in the transaction of the change it
// reports; the webhook relay (hub/webhooks) reads the log in seq order by a
// cursor of its own. docs/events.md lists the types and their bodies.

// Event types the ledger writes (docs/events.md). A fact's type is
// EventFactPrefix + its kind ("fact.redeem", "fact.earn", ...).
const (
	EventFactPrefix      = "fact."
	EventConflict        = "conflict.recorded"
	EventPointsExpired   = "points.expired"
	EventTierChanged     = "customer.tier_changed"
	EventBudgetThreshold = "campaign.budget_threshold"
)

// EventVersion is the version of the bodies this code writes.
const EventVersion = 1

// Event is one row of an event log, as the relay reads it.
type Event = protocol.Event

// factEvent is the body of a fact.* event.
type factEvent struct {
	Agent      string `json:"agent"`
	Seq        uint64 `json:"seq"`
	Kind       string `json:"kind"`
	Store      string `json:"store,omitempty"`
	Campaign   string `json:"campaign,omitempty"`
	Code       string `json:"code,omitempty"`
	Customer   string `json:"customer,omitempty"`
	OrderID    string `json:"order_id,omitempty"`
	TxnID      string `json:"txn_id,omitempty"`
	Currency   string `json:"currency,omitempty"`
	Discount   int64  `json:"discount,omitempty"`
	Spend      int64  `json:"spend,omitempty"`
	Points     int64  `json:"points,omitempty"`
	OrderTotal int64  `json:"order_total,omitempty"`
	Offline    bool   `json:"offline,omitempty"`
	At         string `json:"at,omitempty"`
	RefAgent   string `json:"ref_agent,omitempty"`
	RefSeq     uint64 `json:"ref_seq,omitempty"`
}

// conflictEvent is the body of conflict.recorded.
type conflictEvent struct {
	ID       int64  `json:"id"`
	Kind     string `json:"kind"`
	Campaign string `json:"campaign,omitempty"`
	Code     string `json:"code,omitempty"`
	Customer string `json:"customer,omitempty"`
	Agent    string `json:"agent"`
	Seq      uint64 `json:"seq"`
	Detail   string `json:"detail"`
}

// tierEvent is the body of customer.tier_changed.
type tierEvent struct {
	Customer string `json:"customer"`
	From     string `json:"from"`
	To       string `json:"to"`
	Reason   string `json:"reason"`
	Agent    string `json:"agent,omitempty"` // the fact that qualified, if any
	Seq      uint64 `json:"seq,omitempty"`
}

// thresholdEvent is the body of campaign.budget_threshold.
type thresholdEvent struct {
	Campaign string `json:"campaign"`
	Measure  string `json:"measure"` // "discount", "count" or "order_value"
	Percent  int    `json:"percent"` // 50, 80 or 100
	Used     int64  `json:"used"`
	Limit    int64  `json:"limit"`
	Agent    string `json:"agent"`
	Seq      uint64 `json:"seq"`
}

// BudgetThresholds are the percentages of a campaign budget whose upward
// crossing writes a campaign.budget_threshold event.
var BudgetThresholds = [...]int64{50, 80, 100}

const insEvent = `INSERT INTO ledger_events (tenant, type, at, v, body) VALUES (?, ?, ?, ?, ?)`

// eventID is the SQL of an event's public id (ledger_015_events.sql).
const eventID = `printf('evt_l%x_%s', seq, salt)`

// parseEventID splits a ledger event id into its seq and salt.
func parseEventID(id string) (int64, string, bool) {
	rest, ok := strings.CutPrefix(id, "evt_l")
	if !ok {
		return 0, "", false
	}
	h, salt, ok := strings.Cut(rest, "_")
	seq, err := strconv.ParseInt(h, 16, 64)
	if !ok || err != nil || seq <= 0 || salt == "" {
		return 0, "", false
	}
	return seq, salt, true
}

// eventRow is a buffered event of a state, written by flush.
type eventRow struct {
	tenant, typ string
	at          int64
	body        []byte
}

// queueEvent buffers an event in s; flush writes it. The online writer's
// undo drops it with the basket.
func (s *state) queueEvent(tenant protocol.TenantID, typ string, at time.Time, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("event %s: %w", typ, err)
	}
	s.queueEventBody(tenant, typ, at, b)
	return nil
}

// queueEventBody is queueEvent with the body encoded.
func (s *state) queueEventBody(tenant protocol.TenantID, typ string, at time.Time, b []byte) {
	n := len(s.events)
	s.events = append(s.events, eventRow{string(tenant), typ, micros(at), b})
	if s.epoch != 0 {
		s.undoLog = append(s.undoLog, func() {
			clear(s.events[n:])
			s.events = s.events[:n]
		})
	}
}

// insEventN is the INSERT of n events, by row count (upsertChunks): a
// drain's or a group's events go in a few statements, in their order (one
// AUTOINCREMENT update per statement, not per event).
// Each row's salt comes from Go (eventSalt) rather than the column's
// DEFAULT, which SQLite evaluates per row (randomblob, hex, lower).
// OR IGNORE, as in insertJournalN: a multi-row statement that may abort
// half-way has SQLite copy every page it changes into a statement
// journal first; no column is ever bound to NULL and seq is the only
// key, so no row is ever ignored.
var insEventN = upsertN(`INSERT OR IGNORE INTO ledger_events (tenant, type, at, v, body, salt) VALUES `, 6, ``)

// flushEvents writes the buffered events, in order, several per insert.
func (s *state) flushEvents() error {
	if len(s.events) == 0 {
		return nil
	}
	s.l.noteEvents()
	args := make([]any, 0, 6*len(s.events))
	for i, e := range s.events {
		args = append(args, e.tenant, e.typ, e.at, EventVersion, string(e.body), eventSalt())
		s.events[i] = eventRow{}
	}
	s.events = s.events[:0]
	if err := s.execRows(insEventN, 6, args); err != nil {
		return fmt.Errorf("event: %w", err)
	}
	return nil
}

// factEvent queues the event of one recorded fact.
func (s *state) factEvent(r *protocol.Redemption, now time.Time) error {
	e := factEvent{Agent: string(r.ID.Agent), Seq: r.ID.Seq, Kind: entryName(r.Kind), Store: string(r.Store), Campaign: string(r.Campaign),
		Code: string(r.Code), Customer: string(r.Customer), OrderID: r.OrderID, TxnID: r.TxnID, Currency: string(r.Currency),
		Discount: r.Discount, Spend: r.Spend, Points: r.Points, OrderTotal: r.OrderTot, Offline: r.Offline}
	if r.HLC != 0 {
		e.At = s.l.hlcTime(r.HLC).UTC().Format(timeFormat)
	}
	if r.Ref != nil {
		e.RefAgent, e.RefSeq = string(r.Ref.Agent), r.Ref.Seq
	}
	s.queueEventBody(r.Tenant, EventFactPrefix+e.Kind, now, e.appendJSON(make([]byte, 0, 256))) // eventjson.go
	return nil
}

// conflictEvents queues a conflict.recorded event for each of cs.
func (s *state) conflictEvents(cs []Conflict, now time.Time) error {
	for _, c := range cs {
		if err := s.queueEvent(c.Tenant, EventConflict, now, conflictEvent{ID: c.ID, Kind: string(c.Kind), Campaign: string(c.Campaign),
			Code: string(c.Code), Customer: string(c.Customer), Agent: string(c.Redemption.Agent), Seq: c.Redemption.Seq, Detail: c.Detail}); err != nil {
			return err
		}
	}
	return nil
}

// budgetEvents queues a campaign.budget_threshold event for every
// threshold of a limited budget that the change from before to after
// crossed upward (a rollback that goes back below and a later redemption
// that crosses again write it again).
func (s *state) budgetEvents(r *protocol.Redemption, cf CampaignFacts, before, after campBal, now time.Time) error {
	for _, m := range [...]struct {
		name          string
		limit, b0, b1 int64
	}{{"discount", cf.MaxDiscount, before.discount, after.discount}, {"count", cf.MaxCount, before.count, after.count},
		{"order_value", cf.MaxOrderValue, before.orderValue, after.orderValue}} {
		if m.limit <= 0 || m.b1 <= m.b0 {
			continue
		}
		for _, p := range BudgetThresholds {
			if m.b0*100 < p*m.limit && m.b1*100 >= p*m.limit {
				if err := s.queueEvent(r.Tenant, EventBudgetThreshold, now, thresholdEvent{Campaign: string(r.Campaign), Measure: m.name,
					Percent: int(p), Used: m.b1, Limit: m.limit, Agent: string(r.ID.Agent), Seq: r.ID.Seq}); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// AppendEvent writes one event in a transaction of its own, for events of
// changes outside the ledger (webhook.endpoint_disabled).
func (l *Ledger) AppendEvent(ctx context.Context, tenant protocol.TenantID, typ string, body any) (string, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return "", fmt.Errorf("ledger: event %s: %w", typ, err)
	}
	var id string
	err = l.db.QueryRowContext(ctx, insEvent+` RETURNING `+eventID, string(tenant), typ, micros(l.now()), EventVersion, string(b)).Scan(&id)
	if err == nil && l.onEvents != nil {
		l.onEvents()
	}
	return id, wrap("append event", err)
}

// insertEventTx writes one event in tx (tier changes, points expiry).
func insertEventTx(ctx context.Context, tx *sql.Tx, tenant protocol.TenantID, typ string, at time.Time, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("event %s: %w", typ, err)
	}
	if _, err := tx.ExecContext(ctx, insEvent, string(tenant), typ, micros(at), EventVersion, string(b)); err != nil {
		return fmt.Errorf("event %s: %w", typ, err)
	}
	return nil
}

// EventsAfter lists up to limit events with seq > after, in seq order:
// the relay's read.
func (l *Ledger) EventsAfter(ctx context.Context, after int64, limit int) ([]Event, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT seq, `+eventID+`, tenant, type, at, v, body FROM ledger_events WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, wrap("events", err)
	}
	return scanEvents(rows)
}

// EventsHead is the seq of the log's last event (0: none): where a relay
// with no endpoint to feed moves its cursor.
func (l *Ledger) EventsHead(ctx context.Context) (int64, error) {
	return l.scalar(ctx, `SELECT COALESCE(MAX(seq), 0) FROM ledger_events`)
}

// EventsBetween lists up to limit events of tenant written in [from, to),
// in seq order, after seq after: a replay's read.
func (l *Ledger) EventsBetween(ctx context.Context, tenant protocol.TenantID, from, to time.Time, after int64, limit int) ([]Event, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT seq, `+eventID+`, tenant, type, at, v, body FROM ledger_events
		WHERE at >= ? AND at < ? AND seq > ? AND tenant = ? ORDER BY seq LIMIT ?`, micros(from), micros(to), after, string(tenant), limit)
	if err != nil {
		return nil, wrap("events", err)
	}
	return scanEvents(rows)
}

// EventByID finds one event of tenant by its id (ok false: none).
func (l *Ledger) EventByID(ctx context.Context, tenant protocol.TenantID, id string) (Event, bool, error) {
	seq, salt, ok := parseEventID(id)
	if !ok {
		return Event{}, false, nil
	}
	rows, err := l.db.QueryContext(ctx, `SELECT seq, `+eventID+`, tenant, type, at, v, body FROM ledger_events WHERE seq = ? AND salt = ? AND tenant = ?`, seq, salt, string(tenant))
	if err != nil {
		return Event{}, false, wrap("event", err)
	}
	es, err := scanEvents(rows)
	if err != nil || len(es) == 0 {
		return Event{}, false, err
	}
	return es[0], true, nil
}

// PruneEvents deletes the events written before before, at most limit of
// them, and reports how many it deleted: the retention job.
func (l *Ledger) PruneEvents(ctx context.Context, before time.Time, limit int) (int64, error) {
	res, err := l.db.ExecContext(ctx, `DELETE FROM ledger_events WHERE seq IN (SELECT seq FROM ledger_events WHERE at < ? ORDER BY at LIMIT ?)`, micros(before), limit)
	if err != nil {
		return 0, wrap("prune events", err)
	}
	return res.RowsAffected()
}

func scanEvents(rows *sql.Rows) ([]Event, error) {
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		var at int64
		var t, body string
		if err := rows.Scan(&e.Seq, &e.ID, &t, &e.Type, &at, &e.V, &body); err != nil {
			return nil, wrap("events", err)
		}
		e.Tenant, e.At, e.Body = protocol.TenantID(t), time.UnixMicro(at).UTC(), json.RawMessage(body)
		out = append(out, e)
	}
	return out, wrap("events", rows.Err())
}

// Event types of the tills' liveness (ReviewTills).
const (
	EventTillStale = "till.stale"
	EventTillBack  = "till.back"
)

// ReviewTills marks the tills not heard from (a heartbeat or a fact)
// since now-after as stale, and the stale ones heard from since as back,
// writing a till.stale or till.back event for each in the same
// transaction. It reports how many went each way; run it periodically.
func (l *Ledger) ReviewTills(ctx context.Context, now time.Time, after time.Duration) (stale, back int64, err error) {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, 0, wrap("review tills", err)
	}
	defer tx.Rollback()
	cut, at, hub, on := micros(now.Add(-after)), micros(now), string(protocol.HubSender), !l.noEvents
	seen := `'last_seen', strftime('%Y-%m-%dT%H:%M:%fZ', seen_at / 1000000.0, 'unixepoch')`
	for _, st := range []struct {
		q    string
		args []any
		n    *int64
	}{
		{`INSERT INTO ledger_events (tenant, type, at, v, body) SELECT tenant, '` + EventTillStale + `', ?, 1, json_object('agent', agent, ` + seen + `)
			FROM ledger_agents WHERE stale = 0 AND seen_at < ? AND agent != ? AND ? ORDER BY tenant, agent`, []any{at, cut, hub, on}, nil},
		{`UPDATE ledger_agents SET stale = 1 WHERE stale = 0 AND seen_at < ? AND agent != ?`, []any{cut, hub}, &stale},
		{`INSERT INTO ledger_events (tenant, type, at, v, body) SELECT tenant, '` + EventTillBack + `', ?, 1, json_object('agent', agent, ` + seen + `)
			FROM ledger_agents WHERE stale = 1 AND seen_at >= ? AND ? ORDER BY tenant, agent`, []any{at, cut, on}, nil},
		{`UPDATE ledger_agents SET stale = 0 WHERE stale = 1 AND seen_at >= ?`, []any{cut}, &back},
	} {
		res, err := tx.ExecContext(ctx, st.q, st.args...)
		if err != nil {
			return 0, 0, wrap("review tills", err)
		}
		if st.n != nil {
			*st.n, _ = res.RowsAffected()
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, 0, wrap("review tills: commit", err)
	}
	if on && stale+back > 0 && l.onEvents != nil {
		l.onEvents()
	}
	return stale, back, nil
}

// noteEvents marks that the transaction open wrote events; eventsCommitted
// calls Options.OnEvents after its commit. SQLite has one writer, so no
// other transaction's commit comes between the note and that commit (as
// with tiersCommitted); a note of a transaction rolled back wakes the
// reader for nothing, which costs one empty read.
func (l *Ledger) noteEvents() {
	if l.onEvents != nil {
		l.evNoted.Store(true)
	}
}

// eventsCommitted calls Options.OnEvents when the transaction just
// committed wrote events: one atomic swap per commit, one call when it
// wrote some.
func (l *Ledger) eventsCommitted() {
	if l.onEvents != nil && l.evNoted.Swap(false) {
		l.onEvents()
	}
}
