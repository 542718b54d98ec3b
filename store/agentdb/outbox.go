package agentdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/punchcard/punchcard/protocol"
)

var decMode = func() interface {
	Unmarshal([]byte, any) error
} {
	dm, err := protocol.NewDecMode(protocol.MessageLimits)
	if err != nil {
		panic(fmt.Sprintf("agentdb: cbor dec mode: %v", err))
	}
	return dm
}()

func decodeRedemption(b []byte, rd *protocol.Redemption) error { return decMode.Unmarshal(b, rd) }

// Pending returns up to limit outbox redemptions with seq > after, in seq
// order: what the sync client publishes next.
//
// A row whose body no longer decodes (a damaged or tampered database) is
// returned as a bare fact that carries only the row's seq: the hub
// quarantines it under that seq and acknowledges it, so that the rows
// after it still reach the hub. Its body stays in the redemptions table.
func (d *DB) Pending(ctx context.Context, after uint64, limit int) ([]protocol.Redemption, error) {
	return d.outboxQuery(ctx, `SELECT seq, body FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
}

// Range returns the outbox redemptions with from <= seq <= to (to == 0
// means no upper bound), at most limit, for a Resend.
func (d *DB) Range(ctx context.Context, from, to uint64, limit int) ([]protocol.Redemption, error) {
	if to == 0 {
		return d.outboxQuery(ctx, `SELECT seq, body FROM outbox WHERE seq >= ? ORDER BY seq LIMIT ?`, from, limit)
	}
	return d.outboxQuery(ctx, `SELECT seq, body FROM outbox WHERE seq >= ? AND seq <= ? ORDER BY seq LIMIT ?`, from, to, limit)
}

func (d *DB) outboxQuery(ctx context.Context, q string, args ...any) ([]protocol.Redemption, error) {
	rows, err := d.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("agentdb: outbox: %w", err)
	}
	defer rows.Close()
	var out []protocol.Redemption
	for rows.Next() {
		var seq int64
		var body []byte
		if err := rows.Scan(&seq, &body); err != nil {
			return nil, fmt.Errorf("agentdb: outbox: %w", err)
		}
		var rd protocol.Redemption
		if err := decodeRedemption(body, &rd); err != nil || rd.ID.Seq != uint64(seq) {
			// Damaged: a bare fact under the row's seq (see Pending).
			rd = protocol.Redemption{ID: protocol.RedemptionID{Seq: uint64(seq)}}
		}
		out = append(out, rd)
	}
	return out, rows.Err()
}

// ErrAckBeyondLastSeq is returned by Ack for an acknowledgement of a seq
// the agent never assigned.
var ErrAckBeyondLastSeq = errors.New("agentdb: ack beyond the highest seq this agent assigned")

// Ack removes from the outbox what the hub says it has applied: every seq
// up to watermark and the listed seqs beyond it. It returns how many rows
// left the outbox.
//
// An agent that has not numbered anything yet (a wiped database
// re-enrolled under the same agent id) takes the hub's watermark, and
// every seq listed beyond it, as the ids the hub already holds, and moves
// its counter past them so that it never reuses one. Once it has numbered
// something, an ack of a seq beyond the highest it assigned cannot be a
// true account of its outbox: Ack changes nothing and returns
// ErrAckBeyondLastSeq.
func (d *DB) Ack(ctx context.Context, watermark uint64, beyond []uint64) (int64, error) {
	tx, end, err := d.beginRelaxed(ctx)
	if err != nil {
		return 0, fmt.Errorf("agentdb: ack: %w", err)
	}
	defer end()
	n, err := ackTx(ctx, tx, watermark, beyond, d.now())
	if err != nil {
		return 0, err
	}
	return n, tx.Commit()
}

func ackTx(ctx context.Context, tx *sql.Tx, watermark uint64, beyond []uint64, now time.Time) (int64, error) {
	top := watermark
	for _, s := range beyond {
		top = max(top, s)
	}
	if top > 1<<62 {
		return 0, protocol.FieldError("watermark", "ack beyond the sequence range")
	}
	var next uint64
	if err := tx.QueryRowContext(ctx, `SELECT next_seq FROM agent_state WHERE id = 1`).Scan(&next); err != nil {
		return 0, fmt.Errorf("agentdb: ack: %w", err)
	}
	if last := next - 1; last > 0 && top > last {
		return 0, fmt.Errorf("%w: ack of seq %d, last assigned %d", ErrAckBeyondLastSeq, top, last)
	}
	var total int64
	res, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE seq <= ?`, watermark)
	if err != nil {
		return 0, fmt.Errorf("agentdb: ack: %w", err)
	}
	n, _ := res.RowsAffected()
	total += n
	for _, s := range beyond {
		res, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE seq = ?`, s)
		if err != nil {
			return 0, fmt.Errorf("agentdb: ack: %w", err)
		}
		n, _ := res.RowsAffected()
		total += n
	}
	if _, err := tx.ExecContext(ctx, `UPDATE agent_state SET
		acked_watermark = MAX(acked_watermark, ?1),
		acked_at_ms = ?2,
		next_seq = MAX(next_seq, ?3 + 1)
		WHERE id = 1`, watermark, now.UnixMilli(), top); err != nil {
		return 0, fmt.Errorf("agentdb: ack: %w", err)
	}
	return total, nil
}

// State is the agent's durable counters, for status and heartbeats.
type State struct {
	LastSeq         uint64 // highest seq assigned, 0 before the first
	HLC             uint64
	AckedWatermark  uint64
	AckedAt         time.Time // zero when the hub never acknowledged
	SyncedAt        time.Time // last successful contact with the hub's snapshot endpoint
	SnapshotVersion uint64    // 0 when the agent never synced
	SnapshotETag    string
	SnapshotAt      time.Time // when the snapshot was stored
	OutboxDepth     int64
}

// State reads the counters.
func (d *DB) State(ctx context.Context) (State, error) {
	var s State
	var next, hlc, wm, ackedAt, syncedAt, ver, snapAt int64
	err := d.db.QueryRowContext(ctx, `SELECT next_seq, hlc, acked_watermark, acked_at_ms, synced_at_ms,
		COALESCE((SELECT version FROM snapshot WHERE id = 1), 0), COALESCE((SELECT etag FROM snapshot WHERE id = 1), ''), COALESCE((SELECT at_ms FROM snapshot WHERE id = 1), 0),
		(SELECT COUNT(*) FROM outbox) FROM agent_state WHERE id = 1`).Scan(&next, &hlc, &wm, &ackedAt, &syncedAt, &ver, &s.SnapshotETag, &snapAt, &s.OutboxDepth)
	if err != nil {
		return State{}, fmt.Errorf("agentdb: state: %w", err)
	}
	s.LastSeq = uint64(next - 1)
	s.HLC = uint64(hlc)
	s.AckedWatermark = uint64(wm)
	s.AckedAt = msTime(ackedAt)
	s.SyncedAt = msTime(syncedAt)
	s.SnapshotVersion = uint64(ver)
	s.SnapshotAt = msTime(snapAt)
	return s, nil
}

// HeardHub reports whether the hub ever acknowledged this database (an Ack,
// whose watermark moves the sequence counter past every seq the hub holds
// for this agent id). A fresh database that has not must not number
// redemptions: under a re-enrolled agent id they could reuse seqs the hub
// already applied, and the hub would drop them as duplicates.
func (d *DB) HeardHub(ctx context.Context) (bool, error) {
	var ms int64
	if err := d.db.QueryRowContext(ctx, `SELECT acked_at_ms FROM agent_state WHERE id = 1`).Scan(&ms); err != nil {
		return false, fmt.Errorf("agentdb: heard hub: %w", err)
	}
	return ms != 0, nil
}

// SyncedAt is when the agent last heard from the hub's snapshot endpoint
// (zero when never): the start of the staleness clock. Cheaper than State.
func (d *DB) SyncedAt(ctx context.Context) (time.Time, error) {
	var ms int64
	if err := d.db.QueryRowContext(ctx, `SELECT synced_at_ms FROM agent_state WHERE id = 1`).Scan(&ms); err != nil {
		return time.Time{}, fmt.Errorf("agentdb: synced at: %w", err)
	}
	return msTime(ms), nil
}

func msTime(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// Snapshot is the hub's rules snapshot as fetched: its version, ETag and
// encoded body (keys, campaigns, codes, revocations, used codes). The agent
// decodes and compiles it in memory; this copy is what a restart without
// network starts from.
type Snapshot struct {
	Version uint64
	ETag    string
	Body    []byte
	At      time.Time
	// Reflected is the watermark of the snapshot's code figures
	// (snapshot.Reflected): own facts at or below it may be pruned.
	Reflected uint64
}

// SaveSnapshot replaces the stored snapshot and marks the agent synced,
// in one transaction.
func (d *DB) SaveSnapshot(ctx context.Context, s Snapshot) error {
	if s.At.IsZero() {
		s.At = d.now()
	}
	tx, end, err := d.beginWrite(ctx)
	if err != nil {
		return fmt.Errorf("agentdb: save snapshot: %w", err)
	}
	defer end()
	if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO snapshot (id, version, etag, at_ms, body) VALUES (1, ?, ?, ?, ?)`,
		s.Version, s.ETag, s.At.UnixMilli(), s.Body); err != nil {
		return fmt.Errorf("agentdb: save snapshot: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM snapshot_deltas`); err != nil {
		return fmt.Errorf("agentdb: save snapshot: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE agent_state SET synced_at_ms = ?, reflected_wm = MAX(reflected_wm, ?) WHERE id = 1`, s.At.UnixMilli(), int64(s.Reflected)); err != nil {
		return fmt.Errorf("agentdb: save snapshot: %w", err)
	}
	return tx.Commit()
}

// LoadSnapshot returns the stored snapshot, and false when the agent never
// synced.
func (d *DB) LoadSnapshot(ctx context.Context) (Snapshot, bool, error) {
	var s Snapshot
	var at int64
	err := d.db.QueryRowContext(ctx, `SELECT version, etag, body, at_ms FROM snapshot WHERE id = 1`).Scan(&s.Version, &s.ETag, &s.Body, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return Snapshot{}, false, nil
	}
	if err != nil {
		return Snapshot{}, false, fmt.Errorf("agentdb: load snapshot: %w", err)
	}
	s.At = msTime(at)
	return s, true, nil
}

// MarkSynced records a successful contact with the hub that confirmed the
// snapshot is current (HTTP 304), which resets the staleness clock.
func (d *DB) MarkSynced(ctx context.Context, at time.Time) error {
	if _, err := d.exec(ctx, `UPDATE agent_state SET synced_at_ms = MAX(synced_at_ms, ?) WHERE id = 1`, at.UnixMilli()); err != nil {
		return fmt.Errorf("agentdb: mark synced: %w", err)
	}
	return nil
}

// AllowanceLeft is what remains of one campaign's allowance; -1 is
// unlimited.
type AllowanceLeft struct {
	Campaign protocol.CampaignID `json:"campaign"`
	Grant    uint64              `json:"grant"`
	Count    int64               `json:"count_left"`
	Amount   int64               `json:"amount_left"`
	Currency protocol.Currency   `json:"currency,omitempty"`
	Expires  int64               `json:"expires,omitempty"` // Unix microseconds, 0 = until returned
	// LastCount and LastAmount are the size of the last grant (-1
	// unlimited, 0 unknown): the base of the low-water mark.
	LastCount  int64 `json:"last_grant_count,omitempty"`
	LastAmount int64 `json:"last_grant_amount,omitempty"`
}

// Low reports whether what is left has fallen to the low-water mark: at
// most frac (0..1] of the last grant, or nothing, in a limited dimension.
// An expired allowance is low.
func (a AllowanceLeft) Low(frac float64, nowMicros int64) bool {
	if a.Expires != 0 && nowMicros >= a.Expires {
		return true
	}
	low := func(left, last int64) bool {
		if left < 0 {
			return false // unlimited
		}
		return left == 0 || (last > 0 && float64(left) <= frac*float64(last))
	}
	return low(a.Count, a.LastCount) || low(a.Amount, a.LastAmount)
}

// Allowance returns what is left for a campaign, and false when the agent
// holds no allowance for it.
func (d *DB) Allowance(ctx context.Context, c protocol.CampaignID) (AllowanceLeft, bool, error) {
	a := AllowanceLeft{Campaign: c}
	var cur string
	err := d.db.QueryRowContext(ctx, `SELECT grant_no, count_left, amount_left, currency, expires_us, last_count, last_amount FROM allowances WHERE campaign = ?`, string(c)).
		Scan(&a.Grant, &a.Count, &a.Amount, &cur, &a.Expires, &a.LastCount, &a.LastAmount)
	if errors.Is(err, sql.ErrNoRows) {
		return AllowanceLeft{}, false, nil
	}
	if err != nil {
		return AllowanceLeft{}, false, fmt.Errorf("agentdb: allowance: %w", err)
	}
	a.Currency = protocol.Currency(cur)
	return a, true, nil
}

// Allowances lists every allowance the agent holds.
func (d *DB) Allowances(ctx context.Context) ([]AllowanceLeft, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT campaign, grant_no, count_left, amount_left, currency, expires_us, last_count, last_amount FROM allowances ORDER BY campaign`)
	if err != nil {
		return nil, fmt.Errorf("agentdb: allowances: %w", err)
	}
	defer rows.Close()
	var out []AllowanceLeft
	for rows.Next() {
		var a AllowanceLeft
		var c, cur string
		if err := rows.Scan(&c, &a.Grant, &a.Count, &a.Amount, &cur, &a.Expires, &a.LastCount, &a.LastAmount); err != nil {
			return nil, fmt.Errorf("agentdb: allowances: %w", err)
		}
		a.Campaign, a.Currency = protocol.CampaignID(c), protocol.Currency(cur)
		out = append(out, a)
	}
	return out, rows.Err()
}

// Recall stops using the allowance of campaign (every campaign when empty)
// and returns what was left, for the agent to report back to the hub. The
// rows stay, emptied, so that their grant numbers keep old grants out.
func (d *DB) Recall(ctx context.Context, campaign protocol.CampaignID) ([]AllowanceLeft, error) {
	tx, end, err := d.beginWrite(ctx)
	if err != nil {
		return nil, fmt.Errorf("agentdb: recall: %w", err)
	}
	defer end()
	rows, err := tx.QueryContext(ctx, `SELECT campaign, grant_no, count_left, amount_left, currency, expires_us FROM allowances WHERE (?1 = '' OR campaign = ?1) AND (count_left != 0 OR amount_left != 0)`, string(campaign))
	if err != nil {
		return nil, fmt.Errorf("agentdb: recall: %w", err)
	}
	var out []AllowanceLeft
	for rows.Next() {
		var a AllowanceLeft
		var c, cur string
		if err := rows.Scan(&c, &a.Grant, &a.Count, &a.Amount, &cur, &a.Expires); err != nil {
			rows.Close()
			return nil, fmt.Errorf("agentdb: recall: %w", err)
		}
		a.Campaign, a.Currency = protocol.CampaignID(c), protocol.Currency(cur)
		out = append(out, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("agentdb: recall: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE allowances SET count_left = 0, amount_left = 0 WHERE (?1 = '' OR campaign = ?1)`, string(campaign)); err != nil {
		return nil, fmt.Errorf("agentdb: recall: %w", err)
	}
	return out, tx.Commit()
}

// CodeUses returns the local uses and spend of a code.
func (d *DB) CodeUses(ctx context.Context, code protocol.CodeID) (uses, spent int64, err error) {
	err = d.db.QueryRowContext(ctx, `SELECT uses, spent FROM code_uses WHERE code = ?`, string(code)).Scan(&uses, &spent)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("agentdb: code uses: %w", err)
	}
	return uses, spent, nil
}
