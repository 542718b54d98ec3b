// Package agentdb is the agent's durable state on SQLite: the hub's last
// snapshot, the redemptions the till recorded, the outbox of facts the hub
// has not yet acknowledged, the allowances (escrowed budget slices), local
// code usage, the sequence counter and the hybrid logical clock.
//
// The one rule that matters: a redemption, its outbox row, its allowance
// change, its code usage and its idempotency record are written in one
// transaction (Commit), committed with synchronous=FULL, before the POS gets
// an answer. A crash at any instant leaves either all of them or none.
package agentdb

import (
	"bytes"
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/hlc"
	"github.com/punchcard/punchcard/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is the agent's database. It is safe for concurrent use; writes are
// serialised by SQLite's write lock (transactions begin IMMEDIATE).
type DB struct {
	db    *sql.DB
	now   func() time.Time
	clock *hlc.Clock

	// Every write goes through one connection whose automatic WAL
	// checkpoint is off, so that no POS commit pays for copying the WAL
	// back into the database file; a background loop checkpoints instead.
	wmu   gosync.Mutex
	wconn *sql.Conn
	stop  chan struct{}
	done  chan struct{}
	once  gosync.Once
	cerr  error
	sync  store.Sync
	path  string
	opts  Options
	kick  chan struct{}
	// commits counts commits, for afterCommit.
	commits atomic.Int64
}

// DefaultCheckpointEvery is how often the background loop checkpoints the
// WAL into the database file.
const DefaultCheckpointEvery = time.Second

// beginWrite starts a write transaction on the write connection. The
// returned function ends the writer's turn; call it after Commit or
// Rollback.
func (d *DB) beginWrite(ctx context.Context) (*sql.Tx, func(), error) {
	d.wmu.Lock()
	tx, err := d.wconn.BeginTx(ctx, nil)
	if err != nil {
		d.wmu.Unlock()
		return nil, nil, err
	}
	return tx, func() { tx.Rollback(); d.wmu.Unlock() }, nil
}

// beginRelaxed is beginWrite for changes that may be lost on a power cut
// without harm (acknowledged outbox rows reappear and are resent; the hub
// applies each seq once): the commit skips the fsync, so that the hub's
// acks do not double the disk flushes of the POS path. The next durable
// commit flushes them anyway.
func (d *DB) beginRelaxed(ctx context.Context) (*sql.Tx, func(), error) {
	d.wmu.Lock()
	if _, err := d.wconn.ExecContext(ctx, `PRAGMA synchronous = NORMAL`); err != nil {
		d.wmu.Unlock()
		return nil, nil, err
	}
	restore := func() { d.wconn.ExecContext(context.Background(), `PRAGMA synchronous = `+string(d.sync)) }
	tx, err := d.wconn.BeginTx(ctx, nil)
	if err != nil {
		restore()
		d.wmu.Unlock()
		return nil, nil, err
	}
	return tx, func() { tx.Rollback(); restore(); d.wmu.Unlock() }, nil
}

// exec runs one write statement on the write connection.
func (d *DB) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	return d.wconn.ExecContext(ctx, q, args...)
}

func (d *DB) checkpointer(every, pruneEvery time.Duration) {
	defer close(d.done)
	t := time.NewTicker(every)
	defer t.Stop()
	lastPrune := time.Time{}
	for {
		select {
		case <-d.stop:
			return
		case <-d.kick:
			// A writer saw the WAL past its limit between two ticks.
			d.checkpoint()
		case <-t.C:
			if pruneEvery > 0 && time.Since(lastPrune) >= pruneEvery {
				lastPrune = time.Now()
				if _, err := d.Prune(context.Background()); err != nil {
					d.logf("agentdb: prune", err)
				}
			}
			d.checkpoint()
		}
	}
}

func (d *DB) checkpoint() {
	// PASSIVE never blocks writers; readers keep their snapshots. Its
	// result row is read: a PRAGMA run with Exec leaves its statement
	// open on the connection, a read transaction that kept every later
	// checkpoint from finishing, and the WAL grew without end (4.3 GB in
	// a day of offline sales).
	var busy, logFrames, done int
	d.db.QueryRow(`PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &logFrames, &done)
	// Readers that always overlap the writer keep SQLite from rewinding
	// the WAL after a PASSIVE checkpoint: past the limit, a TRUNCATE
	// checkpoint on the write connection waits for the readers, copies
	// the rest and empties it.
	if d.walSize() > d.opts.WALLimit {
		if _, err := d.truncateWAL(context.Background()); err != nil {
			d.logf("agentdb: checkpoint", err)
		}
	}
}

// walCheckEvery is how many commits pass between two looks at the WAL's
// size by the writer (a stat): the WAL stays within WALLimit plus that many
// commits even between two ticks of the checkpoint loop.
const walCheckEvery = 32

// afterCommit kicks the checkpoint loop when the WAL has passed its limit.
func (d *DB) afterCommit() {
	if d.commits.Add(1)%walCheckEvery != 0 || d.walSize() <= d.opts.WALLimit {
		return
	}
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// Options for Open. The zero value is usable: Default* values fill in.
type Options struct {
	// Now is the wall clock; nil means time.Now.
	Now func() time.Time
	// Sync is SQLite's synchronous setting; empty means store.SyncFull,
	// which is what makes a commit survive a power cut.
	Sync store.Sync

	// IdempotencyRetention is how long the stored answer of a POS request
	// (its idempotency record) is kept for a retry; default
	// DefaultIdempotencyRetention. See Prune.
	IdempotencyRetention time.Duration
	// RedemptionRetention is how long a redemption the hub acknowledged is
	// kept for rollbacks and earn-after-redeem; default
	// DefaultRedemptionRetention. A negative value keeps them forever.
	RedemptionRetention time.Duration
	// MinFreeBytes is the free space the data directory's file system must
	// keep: below it, Commit refuses new sales (redeem, earn) with
	// storage_full. Default DefaultMinFreeBytes; negative turns the check
	// off.
	MinFreeBytes int64
	// WALLimit is the WAL size (bytes) past which the checkpoint loop
	// empties it with a TRUNCATE checkpoint; also SQLite's
	// journal_size_limit. Default DefaultWALLimit.
	WALLimit int64
	// CheckpointEvery is the checkpoint loop's period; default
	// DefaultCheckpointEvery.
	CheckpointEvery time.Duration
	// PruneEvery is how often the loop prunes (Prune); default
	// DefaultPruneEvery, negative never (tests call Prune).
	PruneEvery time.Duration
	// FreeBytes reports the free bytes of the file system holding dir,
	// and false when unknown (the check then passes); nil means the
	// operating system's (statfs). Tests inject a threshold through
	// MinFreeBytes rather than fill a disk.
	FreeBytes func(dir string) (uint64, bool)
	// Logf reports a background failure (prune, checkpoint); nil drops it.
	Logf func(msg string, err error)
}

func (o *Options) ensureDefaults() {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sync == "" {
		o.Sync = store.SyncFull
	}
	if o.IdempotencyRetention == 0 {
		o.IdempotencyRetention = DefaultIdempotencyRetention
	}
	if o.RedemptionRetention == 0 {
		o.RedemptionRetention = DefaultRedemptionRetention
	}
	if o.MinFreeBytes == 0 {
		o.MinFreeBytes = DefaultMinFreeBytes
	}
	if o.WALLimit == 0 {
		o.WALLimit = DefaultWALLimit
	}
	if o.CheckpointEvery == 0 {
		o.CheckpointEvery = DefaultCheckpointEvery
	}
	if o.PruneEvery == 0 {
		o.PruneEvery = DefaultPruneEvery
	}
	if o.FreeBytes == nil {
		o.FreeBytes = freeBytes
	}
}

// Open opens or creates the database at path, migrates it and restores the
// hybrid logical clock from its persisted value.
func Open(ctx context.Context, path string, opts Options) (*DB, error) {
	opts.ensureDefaults()
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	// Three connections: the write connection and two readers (the POS
	// path and the sync client). Each holds its own page cache, which is
	// most of the agent's memory outside the Go heap.
	sdb, err := store.Open(ctx, path, store.Options{Sync: opts.Sync, Migrations: sub, MaxOpenConns: 3})
	if err != nil {
		return nil, err
	}
	d := &DB{db: sdb, now: opts.Now, stop: make(chan struct{}), done: make(chan struct{}), sync: opts.Sync, path: path, opts: opts, kick: make(chan struct{}, 1)}
	if d.wconn, err = sdb.Conn(ctx); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("agentdb: write connection: %w", err)
	}
	// A small page cache: the writer appends and rarely rereads. The
	// journal size limit trims the WAL file each time SQLite rewinds it.
	if _, err := d.wconn.ExecContext(ctx, fmt.Sprintf(`PRAGMA wal_autocheckpoint = 0; PRAGMA cache_size = -512; PRAGMA journal_size_limit = %d`, opts.WALLimit)); err != nil {
		d.wconn.Close()
		sdb.Close()
		return nil, fmt.Errorf("agentdb: write connection: %w", err)
	}
	go d.checkpointer(opts.CheckpointEvery, opts.PruneEvery)
	var last int64
	if err := sdb.QueryRowContext(ctx, `SELECT hlc FROM agent_state WHERE id = 1`).Scan(&last); err != nil {
		d.Close()
		return nil, fmt.Errorf("agentdb: read clock: %w", err)
	}
	d.clock = hlc.New(hlc.Timestamp(last), opts.Now)
	return d, nil
}

// Close stops the checkpoint loop, checkpoints once more (emptying the
// WAL) and closes the database.
// It is safe to call more than once.
func (d *DB) Close() error {
	d.once.Do(func() {
		close(d.stop)
		<-d.done
		d.wmu.Lock()
		defer d.wmu.Unlock()
		var busy, logFrames, done int
		d.wconn.QueryRowContext(context.Background(), `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logFrames, &done)
		d.cerr = errors.Join(d.wconn.Close(), d.db.Close())
	})
	return d.cerr
}

// Clock is the agent's hybrid logical clock, restored from the database.
// Commit stamps facts with it and persists its value.
func (d *DB) Clock() *hlc.Clock { return d.clock }

// Op names the kind of POS request an idempotency record belongs to. The
// same POS transaction id may be used once per Op.
type Op string

// Ops.
const (
	OpRedeem   Op = "redeem"
	OpRollback Op = "rollback"
	OpEarn     Op = "earn"
	OpCard     Op = "giftcard" // a gift card sale or top-up (giftcards.go)
)

// Request is everything one POS request changes, committed atomically.
type Request struct {
	Op    Op
	TxnID string
	// Hash identifies the request's content. A retry with the same TxnID
	// and Hash gets the stored result; another Hash is refused with
	// idempotency_key_reused.
	Hash  []byte
	Facts []Fact
	// Envelope bounds the facts whose Risk is positive.
	Envelope Envelope
	// Result builds the response stored for retries from the facts as
	// numbered and stamped. It runs inside the transaction.
	Result func([]protocol.Redemption) ([]byte, error)
}

// Fact is one redemption with its side effects.
type Fact struct {
	// Redemption is recorded and queued; Commit sets ID.Seq and HLC.
	Redemption protocol.Redemption
	// Allowance, when set, is taken from the campaign's allowance.
	Allowance *AllowanceUse
	// Code, when set, is counted against the code's limits.
	Code *CodeUse
	// Risk is the offline exposure (minor units) the fact adds to the
	// offline risk envelope; 0 when the fact carries none.
	Risk int64
	// Voids is the seq of the redemption a rollback cancels; 0 otherwise.
	Voids uint64
	// Statement, when set, is an offline points burn against a points
	// statement (statements.go).
	Statement *StatementUse
}

// AllowanceUse is taken from Redemption.Campaign's allowance. Negative
// values give allowance back (rollbacks).
type AllowanceUse struct {
	Count  int64
	Amount int64
}

// CodeUse counts one use of a limited code (Redemption.Code).
type CodeUse struct {
	Uses  int64 // 1 for a use, -1 for a rollback
	Spend int64 // gift card minor units (negative on rollback)
	// MaxUses is the code's limit, 0 when unlimited. KnownUses is the
	// hub's figure of its uses (the snapshot's), every till's: the uses
	// compared with MaxUses are that figure plus this till's own uses it
	// does not count (CodeFigure, with Reflected).
	MaxUses   int64
	KnownUses int64
	// Balance is the gift card balance per the snapshot, -1 when the code
	// has none. KnownSpent is the hub's figure of what was spent (every
	// till's); Balance less that figure and this till's own spending it
	// does not count is what is left.
	Balance    int64
	KnownSpent int64
	// Reflected says which of this till's facts KnownUses and KnownSpent
	// count (the snapshot's); nil counts every own fact on top (tokens).
	Reflected *Reflected
}

// Envelope is the offline risk envelope: caps on the Risk of facts not yet
// acknowledged by the hub. A zero cap allows nothing.
type Envelope struct {
	PerRedemption int64 // minor units of one fact
	PerCampaign   int64 // minor units outstanding for one campaign
	Total         int64 // minor units outstanding in all
	Count         int64 // number of risky facts outstanding
}

// Commit records r's facts in one transaction and returns the stored
// result; replayed is true when the TxnID was already committed (the facts
// are then not recorded again). Every fact, numbered and stamped, must pass
// protocol.Redemption.Validate, the check the hub applies: otherwise
// nothing is recorded and the validator's invalid_input error (its Field
// the fact's, such as "order_id") is returned. It returns protocol errors
// invalid_input, idempotency_key_reused, allowance_exhausted, code_already_used,
// insufficient_balance, offline_limit_reached and already_rolled_back; and
// storage_full for a redeem or earn when the data directory's free space is
// below Options.MinFreeBytes (rollbacks still pass: they give value back).
// A TxnID whose idempotency record was pruned (Prune) but whose
// redemptions are still kept is refused with idempotency_key_reused.
func (d *DB) Commit(ctx context.Context, r Request) (result []byte, replayed bool, err error) {
	if r.Op != OpRollback {
		if err := d.checkFree(); err != nil {
			return nil, false, err
		}
	}
	tx, end, err := d.beginWrite(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("agentdb: begin: %w", err)
	}
	defer end()
	if res, ok, err := lookupTxn(ctx, tx, r.Op, r.TxnID, r.Hash); err != nil || ok {
		return res, ok, err
	}
	if r.Op != OpRollback {
		if err := checkPruned(ctx, tx, r.Op, r.TxnID); err != nil {
			return nil, false, err
		}
	}
	var next int64
	if err := tx.QueryRowContext(ctx, `SELECT next_seq FROM agent_state WHERE id = 1`).Scan(&next); err != nil {
		return nil, false, fmt.Errorf("agentdb: read seq: %w", err)
	}
	out := make([]protocol.Redemption, len(r.Facts))
	for i, f := range r.Facts {
		rd := f.Redemption
		rd.ID.Seq = uint64(next)
		rd.HLC = uint64(d.clock.Now())
		next++
		// The hub's own fact validator, on the fact exactly as it will
		// leave: what the hub would not apply never enters the outbox.
		if err := rd.Validate(); err != nil {
			return nil, false, err
		}
		if err := d.applyFact(ctx, tx, r, f, rd); err != nil {
			return nil, false, err
		}
		out[i] = rd
	}
	if r.Result != nil {
		if result, err = r.Result(out); err != nil {
			return nil, false, err
		}
	}
	if result == nil {
		result = []byte{}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO txns (op, txn_id, req_hash, result, created_ms) VALUES (?, ?, ?, ?, ?)`,
		string(r.Op), r.TxnID, r.Hash, result, d.now().UnixMilli()); err != nil {
		return nil, false, fmt.Errorf("agentdb: record txn: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE agent_state SET next_seq = ?, hlc = MAX(hlc, ?) WHERE id = 1`,
		next, int64(d.clock.Last())); err != nil {
		return nil, false, fmt.Errorf("agentdb: advance seq: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, false, fmt.Errorf("agentdb: commit: %w", err)
	}
	d.afterCommit()
	return result, false, nil
}

func lookupTxn(ctx context.Context, tx *sql.Tx, op Op, txnID string, hash []byte) ([]byte, bool, error) {
	var h, res []byte
	err := tx.QueryRowContext(ctx, `SELECT req_hash, result FROM txns WHERE op = ? AND txn_id = ?`, string(op), txnID).Scan(&h, &res)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("agentdb: lookup txn: %w", err)
	}
	if !bytes.Equal(h, hash) {
		return nil, false, protocol.NewError(protocol.CodeIdempotencyReuse)
	}
	return res, true, nil
}

func (d *DB) applyFact(ctx context.Context, tx *sql.Tx, r Request, f Fact, rd protocol.Redemption) error {
	campaign := string(rd.Campaign)
	if f.Voids != 0 {
		res, err := tx.ExecContext(ctx, `UPDATE redemptions SET voided_by = ? WHERE seq = ? AND voided_by IS NULL`, rd.ID.Seq, f.Voids)
		if err != nil {
			return fmt.Errorf("agentdb: void: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return protocol.NewError(protocol.CodeAlreadyRolledBack)
		}
	}
	if f.Voids != 0 {
		if err := voidStatementBurn(ctx, tx, f.Voids); err != nil {
			return err
		}
	}
	if f.Statement != nil {
		if err := useStatement(ctx, tx, rd.ID.Seq, *f.Statement); err != nil {
			return err
		}
	}
	if f.Allowance != nil {
		if err := useAllowance(ctx, tx, campaign, *f.Allowance); err != nil {
			return err
		}
	}
	if f.Code != nil {
		if err := useCode(ctx, tx, string(rd.Code), rd.ID.Seq, *f.Code); err != nil {
			return err
		}
	}
	if f.Risk > 0 {
		if err := checkEnvelope(ctx, tx, campaign, f.Risk, r.Envelope); err != nil {
			return err
		}
	}
	if err := recordEarnPeriod(ctx, tx, rd); err != nil {
		return err
	}
	if err := recordLoad(ctx, tx, rd); err != nil { // giftcards.go
		return err
	}
	body, err := protocol.EncMode.Marshal(rd)
	if err != nil {
		return fmt.Errorf("agentdb: encode redemption: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO redemptions (seq, op, txn_id, kind, campaign, code, hlc, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		rd.ID.Seq, string(r.Op), r.TxnID, int(rd.Kind), campaign, string(rd.Code), int64(rd.HLC), body); err != nil {
		return fmt.Errorf("agentdb: insert redemption: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO outbox (seq, campaign, risk, body) VALUES (?, ?, ?, ?)`,
		rd.ID.Seq, campaign, max(f.Risk, 0), body); err != nil {
		return fmt.Errorf("agentdb: insert outbox: %w", err)
	}
	return nil
}

func useAllowance(ctx context.Context, tx *sql.Tx, campaign string, u AllowanceUse) error {
	// -1 is unlimited and stays so; a take needs enough left, a give-back
	// (negative use) always succeeds.
	res, err := tx.ExecContext(ctx, `UPDATE allowances SET
		count_left  = CASE WHEN count_left  < 0 THEN count_left  ELSE count_left  - ?1 END,
		amount_left = CASE WHEN amount_left < 0 THEN amount_left ELSE amount_left - ?2 END
		WHERE campaign = ?3
		AND (count_left  < 0 OR count_left  >= ?1)
		AND (amount_left < 0 OR amount_left >= ?2)`, u.Count, u.Amount, campaign)
	if err != nil {
		return fmt.Errorf("agentdb: use allowance: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		if u.Count <= 0 && u.Amount <= 0 {
			return nil // giving back to an allowance that was since recalled
		}
		return protocol.NewError(protocol.CodeAllowanceExhausted)
	}
	return nil
}

func useCode(ctx context.Context, tx *sql.Tx, code string, seq uint64, u CodeUse) error {
	if (u.Uses > 0 && u.MaxUses > 0) || (u.Spend > 0 && u.Balance >= 0) {
		if err := checkFresh(ctx, tx, u.Reflected); err != nil {
			return err
		}
		fig, err := codeFigure(ctx, tx, code, HubFigure{Used: u.KnownUses, Spent: u.KnownSpent, Reflected: u.Reflected})
		if err != nil {
			return err
		}
		if u.Uses > 0 && u.MaxUses > 0 && fig.Uses+u.Uses > u.MaxUses {
			return protocol.NewError(protocol.CodeCodeUsed)
		}
		if u.Spend > 0 && u.Balance >= 0 && u.Balance-fig.Spent < u.Spend {
			return protocol.NewError(protocol.CodeInsufficientFunds)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO code_uses (code, uses, spent) VALUES (?1, MAX(?2, 0), MAX(?3, 0))
		ON CONFLICT (code) DO UPDATE SET uses = MAX(uses + ?2, 0), spent = MAX(spent + ?3, 0)`, code, u.Uses, u.Spend); err != nil {
		return fmt.Errorf("agentdb: record code use: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO own_uses (code, seq, uses, spent) VALUES (?, ?, ?, ?)`, code, int64(seq), u.Uses, u.Spend); err != nil {
		return fmt.Errorf("agentdb: record own use: %w", err)
	}
	return nil
}

func checkEnvelope(ctx context.Context, tx *sql.Tx, campaign string, risk int64, e Envelope) error {
	if risk > e.PerRedemption {
		return protocol.Errorf(protocol.CodeOfflineCap, "This is more than the till may give offline in one go. Try again when online.")
	}
	var n, total, camp int64
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(risk), 0), COALESCE(SUM(CASE WHEN campaign = ? THEN risk END), 0) FROM outbox WHERE risk > 0`,
		campaign).Scan(&n, &total, &camp); err != nil {
		return fmt.Errorf("agentdb: read offline exposure: %w", err)
	}
	if n+1 > e.Count || total+risk > e.Total || camp+risk > e.PerCampaign {
		return protocol.NewError(protocol.CodeOfflineCap)
	}
	return nil
}

// Lookup returns the stored result of a committed request and the hash
// it was committed with, and false when there is none.
func (d *DB) Lookup(ctx context.Context, op Op, txnID string) (result, hash []byte, ok bool, err error) {
	err = d.db.QueryRowContext(ctx, `SELECT result, req_hash FROM txns WHERE op = ? AND txn_id = ?`, string(op), txnID).Scan(&result, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, false, nil
	}
	if err != nil {
		return nil, nil, false, fmt.Errorf("agentdb: lookup: %w", err)
	}
	return result, hash, true, nil
}

// Recorded is a redemption as stored, with whether it was voided.
type Recorded struct {
	Redemption protocol.Redemption
	VoidedBy   uint64 // seq of the rollback, 0 when not voided
}

// Facts returns the redemptions a committed request recorded, in seq order.
func (d *DB) Facts(ctx context.Context, op Op, txnID string) ([]Recorded, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT body, COALESCE(voided_by, 0) FROM redemptions WHERE op = ? AND txn_id = ? ORDER BY seq`, string(op), txnID)
	if err != nil {
		return nil, fmt.Errorf("agentdb: facts: %w", err)
	}
	defer rows.Close()
	var out []Recorded
	for rows.Next() {
		var body []byte
		var voided int64
		if err := rows.Scan(&body, &voided); err != nil {
			return nil, fmt.Errorf("agentdb: facts: %w", err)
		}
		var rd protocol.Redemption
		if err := decodeRedemption(body, &rd); err != nil {
			return nil, fmt.Errorf("agentdb: decode fact: %w", err)
		}
		out = append(out, Recorded{Redemption: rd, VoidedBy: uint64(voided)})
	}
	return out, rows.Err()
}
