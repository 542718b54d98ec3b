package ledger

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/punchcard/punchcard/protocol"
	pledger "github.com/punchcard/punchcard/protocol/ledger"
	"github.com/punchcard/punchcard/store"
)

// Defaults of the online writer (Options.WriterQueue, Options.WriterGroup).
const (
	DefaultWriterQueue = 4096 // baskets waiting for the writer
	DefaultWriterGroup = 256  // baskets at most in one commit
	// writerBusyRetry bounds how long the writer keeps retrying a BEGIN
	// that another writer of the file (ingest, admin) holds off.
	writerBusyRetry = time.Minute
	// writerIdle is how long the writer keeps its own connection
	// (beginGroup) with nothing to write.
	writerIdle = time.Second
)

// job is one basket waiting for the writer.
type job struct {
	ctx       context.Context
	b         Basket
	facts     factSet
	version   uint64 // of facts, when versioned (VersionedFacts)
	versioned bool
	rollbacks bool          // the basket has a rollback
	once      *pledger.Once // RedeemOnce's key, or nil
	out       []protocol.Redemption
	replayed  bool
	status    int    // the answer recorded under once's key
	body      []byte // (this basket's, or the earlier one when replayed)
	err       error
	done      chan struct{}
}

// writer is the online path's single writer: it takes the queued baskets
// and records up to group of them in one transaction (group commit, one
// fsync), each in its own savepoint so that a refused basket undoes only
// itself, and hands every basket its result after the commit.
type writer struct {
	groups, baskets atomic.Int64 // WriterStats
	q               chan *job
	group           int
	stop            chan struct{}
	done            chan struct{}
	once            sync.Once
	// conn is the writer's own connection (beginGroup), used only by the
	// writer goroutine; nil until the first group, or after an error.
	conn *sql.Conn
	// The pipelined commit (writersync.go): with lowered set, conn
	// commits at synchronous=NORMAL (no fsync in the commit) and the
	// syncer makes each group durable before its baskets are answered.
	lowered    bool
	connSerial bool   // serial was on when conn was taken
	poolSync   int    // conn's synchronous setting as the pool set it
	walPath    string // the database's WAL file
	syncq      chan syncGroup
	synced     chan struct{} // closed when the syncer is done
	inflight   atomic.Int64  // groups handed to the syncer, not yet answered
	syncIdle   chan struct{} // the syncer answered what it had (more)
	serial     atomic.Bool   // SetSerialCommit: commit with the fsync in it, as before
	timing     writerTiming
	// Optimistic groups (optimistic.go): groups still to run with
	// savepoints after a restart, and the restarts so far.
	safeLeft int
	restarts atomic.Int64
	// Whether groups take in the baskets queued while they are recorded
	// (takein.go).
	takeIn takeIn
	// raw is conn's driver statements (drainraw.go): a group on conn runs
	// its hot statements without database/sql, as ingest's drains do.
	// Kept with conn, closed before conn goes back to the pool.
	raw    *rawStmts
	rawOff atomic.Bool // SetWriterRaw(false)
}

// beginGroup begins a group's transaction on the writer's own connection,
// whose temporary files SQLite keeps in memory (PRAGMA temp_store =
// MEMORY, on that connection only). The one that matters is the
// savepoint journal: every basket runs in a savepoint, and past 64 KiB of
// journaled pages SQLite spills that journal to a temporary file, one
// pwrite system call per page (about a sixth of the writer's CPU at 16
// clients). The pool's other connections keep their temporary files on
// disk, so that a large sort (Verify, an export) does not grow the heap.
// Without its connection (it could not be had) the group runs on the pool.
func (l *Ledger) beginGroup(ctx context.Context) (*sql.Tx, error) {
	w := l.w
	if w.conn != nil && w.connSerial != w.serial.Load() {
		w.dropConn() // SetSerialCommit changed: a fresh connection takes it
	}
	if w.conn == nil {
		c, err := l.db.Conn(ctx)
		if err != nil {
			return nil, err
		}
		if _, err := c.ExecContext(ctx, `PRAGMA temp_store = MEMORY`); err != nil {
			c.Close()
			return l.db.BeginTx(ctx, nil)
		}
		w.conn = c
		w.lowerSync(ctx) // writersync.go
	}
	tx, err := w.conn.BeginTx(ctx, nil)
	if err != nil && !IsBusy(err) {
		w.dropConn() // the next group takes a fresh one
	}
	return tx, err
}

// dropConn gives the writer's connection back to the pool, with the
// pool's setting.
func (w *writer) dropConn() {
	if w.conn == nil {
		return
	}
	if w.raw != nil {
		// Finalized on their own connection, which then goes back to the
		// pool without them.
		w.conn.Raw(func(any) error { w.raw.close(); return nil })
		w.raw = nil
	}
	w.conn.ExecContext(context.Background(), `PRAGMA temp_store = DEFAULT`)
	w.restoreSync()
	w.conn.Close()
	w.conn = nil
}

func (l *Ledger) startWriter(queue, group int) {
	l.w = &writer{q: make(chan *job, queue), group: group, stop: make(chan struct{}), done: make(chan struct{}),
		syncq: make(chan syncGroup, syncQueue), synced: make(chan struct{}), syncIdle: make(chan struct{}, 1)}
	l.w.serial.Store(l.serialCommit)
	go l.runSyncer() // writersync.go
	go l.runWriter()
}

func (l *Ledger) stopWriter() {
	if l.w == nil {
		return
	}
	l.w.once.Do(func() { close(l.w.stop) })
	<-l.w.done
}

var errClosed = errors.New("ledger: closed")

// beforeBegin, when set (tests), is called as the writer begins each
// group's transaction.
var beforeBegin func()

// WriterStats reports how many group commits the online writer made and
// how many baskets they held, for benchmarks and metrics.
func (l *Ledger) WriterStats() (groups, baskets int64) {
	return l.w.groups.Load(), l.w.baskets.Load()
}

func (l *Ledger) runWriter() {
	w := l.w
	defer close(w.done)
	defer func() { close(w.syncq); <-w.synced }() // every group answered
	defer w.dropConn()
	batch := make([]*job, 0, w.group)
	idle := time.NewTimer(writerIdle)
	defer idle.Stop()
	for {
		select {
		case j := <-w.q:
			batch = append(batch[:0], j)
		case <-idle.C:
			w.dropConn() // idle: the pool has it back
			continue
		case <-w.stop:
			for {
				select {
				case j := <-w.q:
					j.err = errClosed
					close(j.done)
				default:
					return
				}
			}
		}
		batch = w.takeQueued(batch) // takein.go
		t0 := time.Now()
		var pending bool
		batch, pending = l.commitGroup(batch, w.more)
		w.timing.busy.Add(int64(time.Since(t0)))
		idle.Reset(writerIdle)
		w.groups.Add(1)
		w.baskets.Add(int64(len(batch)))
		w.takeIn.tally(len(batch), time.Now()) // takein.go
		if pending {
			// Committed without its fsync: the syncer answers the group
			// once the WAL is on disk, while this goroutine goes on.
			w.inflight.Add(1)
			w.syncq <- syncGroup{jobs: slices.Clone(batch), wal: w.walPath}
			continue
		}
		l.answer(batch)
	}
}

// commitGroup records the baskets of one group commit. They share one
// state: the balances they touch are read once and written once for the
// whole group, and their journal rows go in together. Each basket runs
// in its own savepoint with the state's undo log, so a refused basket
// leaves neither rows nor balance changes behind. It reports pending when
// the group committed on the writer's connection at synchronous=NORMAL:
// then the baskets must not be answered before a sync of the WAL
// (writersync.go). With more set, the group takes in baskets more hands
// it after those of batch (those queued while it is recorded, when the
// writer's take-in is on, and those that arrive while the previous
// group's fsync runs) until more returns nil; it returns the baskets of
// the group.
func (l *Ledger) commitGroup(batch []*job, more func(n int) *job) (_ []*job, pending bool) {
	optimistic := l.w.optimistic() // optimistic.go
	batch, pending, again := l.recordGroup(batch, more, optimistic)
	if again {
		l.w.restarted()
		for _, j := range batch {
			j.out, j.replayed, j.err, j.status, j.body = nil, false, nil, 0, nil
		}
		batch, pending, _ = l.recordGroup(batch, more, false)
	}
	return batch, pending
}

// recordGroup is one attempt at commitGroup. With optimistic set the
// baskets (but those with a rollback) run without savepoints; if one is
// refused after it wrote to the database, recordGroup rolls the whole
// transaction back and reports again: the caller records the group anew,
// with savepoints.
func (l *Ledger) recordGroup(batch []*job, more func(n int) *job, optimistic bool) (_ []*job, pending, again bool) {
	ctx := context.Background() // one caller's cancel must not undo the others
	var tx *sql.Tx
	var err error
	if beforeBegin != nil {
		beforeBegin()
	}
	for deadline := time.Now().Add(writerBusyRetry); ; {
		tx, err = l.beginGroup(ctx)
		if !IsBusy(err) || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		for _, j := range batch {
			j.err = wrap("redeem: begin", err)
			if IsBusy(err) {
				j.err = ErrQueueFull
			}
		}
		return batch, false, false
	}
	lowered := l.w.lowered && l.w.conn != nil // this group's tx is on the writer's connection
	defer tx.Rollback()
	g := &group{s: l.groupState(ctx, tx), wm: map[protocol.TenantID]int64{}, pre: map[protocol.TenantID]int64{}, versions: map[protocol.TenantID]uint64{}}
	failAll := func(what string, err error) {
		for _, o := range batch {
			if o.err == nil {
				o.out, o.replayed, o.err = nil, false, wrap(what, err)
			}
		}
	}
	for _, j := range batch {
		g.rows += len(j.b.Redemptions)
	}
	if err := g.s.prefetchGroup(batch); err != nil {
		failAll("redeem: prefetch", err)
		return batch, false, false
	}
	for i := 0; ; i++ {
		if i == len(batch) && more != nil {
			if j := more(len(batch)); j != nil {
				// Taken in with those queued behind it, and their rows
				// loaded together as the group's first were (takein.go).
				batch = l.w.takeQueued(append(batch, j))
				if err := g.s.prefetchGroup(batch[i:]); err != nil {
					failAll("redeem: prefetch", err)
					return batch, false, false
				}
			}
		}
		if i == len(batch) {
			break
		}
		j := batch[i]
		if j.ctx.Err() != nil {
			j.err = j.ctx.Err() // the caller is gone: record nothing
			continue
		}
		if err := l.recheckFacts(ctx, tx, g, j); err != nil {
			j.err = err
			continue
		}
		if j.rollbacks {
			// A rollback reads the journal: write what the group holds
			// first, outside this basket's savepoint.
			if err := g.s.flush(); err != nil {
				failAll("redeem", err)
				return batch, false, false
			}
			g.s.close()
			g.s = l.groupState(ctx, tx)
		}
		// A basket writes to the database only through a conflict row or
		// its Remember (one statement, the last): its savepoint is opened
		// before the first conflict row (state.savepoint), or at once for
		// a rollback, which reads and writes the journal.
		g.s.sp = savepoint{armed: true, optimistic: optimistic && !j.rollbacks}
		if j.rollbacks {
			if err := g.s.savepoint(); err != nil {
				j.err = wrap("redeem: savepoint", err)
				continue
			}
		}
		g.s.begin()
		wm, hadWM := g.wm[j.b.Tenant]
		out, replayed, err := l.applyBasket(ctx, g, j)
		if errors.Is(err, errOnceRecorded) {
			// The key was recorded before: undo this basket, answer the record.
			out, replayed = nil, true
		}
		if err != nil && g.s.sp.wrote {
			// Refused after it wrote, with no savepoint to undo it by:
			// the whole group again (commitGroup), after the rollback.
			g.s.close()
			return batch, false, true
		}
		if err != nil {
			g.s.undo()
			if hadWM {
				g.wm[j.b.Tenant] = wm
			} else {
				delete(g.wm, j.b.Tenant)
			}
			if g.s.sp.open {
				if _, rerr := tx.ExecContext(ctx, `ROLLBACK TO basket`); rerr != nil {
					// The transaction is unusable: fail the whole group.
					failAll("redeem: rollback to savepoint", rerr)
					return batch, false, false
				}
				g.s.requeueEarlier() // the earlier baskets' rows it dropped
			}
		} else {
			g.s.commit()
		}
		if g.s.sp.open {
			if _, rerr := tx.ExecContext(ctx, `RELEASE basket`); rerr != nil {
				failAll("redeem: release savepoint", rerr)
				return batch, false, false
			}
		}
		g.s.sp, g.s.spEarlier = savepoint{}, nil
		if errors.Is(err, errOnceRecorded) {
			err = nil
		}
		j.out, j.replayed, j.err = out, replayed, err
	}
	err = g.s.flush()
	for t := range g.applied {
		// The hub's watermark is the last seq the group gave: every seq
		// from the stored one up to it is recorded (the group's facts
		// took the free ones, applyBasket), so no scan of the journal.
		if err == nil {
			_, err = g.s.exec(upWatermark, string(t), string(protocol.HubSender), g.wm[t], micros(l.now()))
		}
	}
	g.s.close()
	if err == nil {
		c0 := time.Now()
		err = tx.Commit()
		l.w.timing.commit.Add(int64(time.Since(c0)))
		if l.stmts.counting() {
			l.stmts.note("COMMIT", c0) // stmtstats.go
		}
		if err == nil && lowered {
			return batch, true, false // the syncer tells tiers and events after the sync
		}
		if err == nil {
			l.tiersCommitted()
			l.eventsCommitted() // events.go
		}
	}
	if err != nil {
		for _, j := range batch {
			if j.err == nil {
				j.out, j.replayed, j.err = nil, false, wrap("redeem: commit", err)
			}
		}
	}
	return batch, false, false
}

// SetWriterRaw turns the online writer's driver statements (groupState)
// off or back on (the default), from its next group: for benchmarks
// comparing the two in one process.
func (l *Ledger) SetWriterRaw(on bool) { l.w.rawOff.Store(!on) }

// groupState is a group's state on tx. When tx is on the writer's own
// connection, its hot statements run on that connection's driver
// statements (drainraw.go), kept from group to group: database/sql's
// copies of each statement's arguments, its per-transaction statement
// wrappers and its results cost the writer as they cost the drains. ctx
// is the group's, never cancelled, so the raw statements' check that the
// transaction is not over never refuses.
func (l *Ledger) groupState(ctx context.Context, tx *sql.Tx) *state {
	s := l.newState(ctx, tx)
	if w := l.w; w.conn != nil && !w.rawOff.Load() {
		if w.raw == nil || w.raw.conn != w.conn {
			w.raw = &rawStmts{conn: w.conn, stmts: map[string]driver.Stmt{}}
		}
		s.raw, s.txCtx = w.raw, ctx
	}
	return s
}

// prefetchGroup loads, with one IN query per kind for the whole group
// (as ingest's drains do, rows.go), what the group's baskets would read
// one row each: their customers' points balances, which earning
// customers have no debt lot (noDebt: addLot then skips qLotDebt), and
// their counts of the campaigns with a per-customer limit (the counts
// nobody checks are added blind, customerCampaignAdd). Measured at 16
// clients: a customer's points, a campaign count and a debt-lot lookup
// per basket, each a statement of ~8-14 µs on the writer's path. A basket
// taken in later, or after a rollback's new state, reads its own as
// before; a cell loaded and not touched (a refused basket) is not
// written back.
func (s *state) prefetchGroup(batch []*job) error {
	var all, limited []protocol.Redemption
	for _, j := range batch {
		if j.ctx.Err() != nil || (j.once != nil && j.once.Answer == nil) {
			continue
		}
		for _, r := range j.b.Redemptions {
			r.Tenant = j.b.Tenant
			r.ID = protocol.RedemptionID{Agent: protocol.HubSender} // no till's allowance to load
			all = append(all, r)
			if cf, ok := j.facts.camps[key2{string(r.Tenant), string(r.Campaign)}]; ok && cf.PerCustomer > 0 && r.Kind == protocol.KindRedeem {
				limited = append(limited, r)
			}
		}
	}
	if len(all) == 0 {
		return nil
	}
	if err := s.prefetchBalances(limited); err != nil {
		return err
	}
	if err := s.prefetchTxns(all); err != nil {
		return err
	}
	return s.prefetchAgentBalances(all)
}

// seqSlack is how many seqs past its own baskets' a group checks free
// with its first range query (applyBasket), for the baskets it takes in
// (commitGroup's more): about half of a group's baskets at 16 clients,
// each of which otherwise ran a range query of its own (~0.6 a basket).
// Checking a seq that is never given costs a map entry.
const seqSlack = 64

// group is what the baskets of one group commit share.
type group struct {
	s        *state
	rows     int                          // redemptions in the group, at most
	wm       map[protocol.TenantID]int64  // the hub's last seq per tenant, as assigned so far
	pre      map[protocol.TenantID]int64  // the hub's seqs known free up to (prefetchRange)
	applied  map[protocol.TenantID]bool   // tenants whose watermark moves
	versions map[protocol.TenantID]uint64 // facts versions read in the transaction
}

// recheckFacts looks j's facts up again, under the write lock, when they
// were looked up at another version than the one stored now
// (VersionedFacts): what the basket is checked against is then what is
// committed, whatever the Facts cached.
func (l *Ledger) recheckFacts(ctx context.Context, tx *sql.Tx, g *group, j *job) error {
	vf, ok := l.facts.(VersionedFacts)
	if !ok || !j.versioned {
		return nil
	}
	v, ok := g.versions[j.b.Tenant]
	if !ok {
		var err error
		if v, err = vf.FactsVersionTx(ctx, tx, j.b.Tenant); err != nil {
			return wrap("redeem: facts version", err)
		}
		g.versions[j.b.Tenant] = v
	}
	if v == j.version {
		return nil
	}
	fs := factSet{camps: map[key2]CampaignFacts{}, codes: map[key2]CodeFacts{}}
	seenC, seenK := map[key2]bool{}, map[key2]bool{}
	for _, r := range j.b.Redemptions {
		r.Tenant = j.b.Tenant
		if err := fs.add(ctx, l.facts, r, seenC, seenK); err != nil {
			return err
		}
	}
	j.facts, j.version = fs, v
	return nil
}

// RedeemBasket records a basket of the hub's own redemptions (see Redeem
// for the checks each one gets), all or nothing, through the online
// writer: concurrent callers share group commits. It returns the
// redemptions as recorded, or replayed when Basket.Recall found the basket
// already answered. A refused redemption comes back as *ItemError;
// ErrQueueFull when the writer's queue is full.
//
// Reason codes: those of Redeem, and unavailable.
func (l *Ledger) RedeemBasket(ctx context.Context, b Basket) (out []protocol.Redemption, replayed bool, err error) {
	j, err := l.submit(ctx, b, nil)
	if err != nil {
		return nil, false, err
	}
	return j.out, j.replayed, j.err
}

// RedeemOnce is RedeemBasket under an idempotency key: the writer looks
// the key up and records once.Answer in the basket's own transaction,
// last (INSERT … ON CONFLICT DO NOTHING); a key recorded meanwhile (also
// earlier in the same group commit) undoes the basket and answers the
// record found (Outcome.Replayed). With once.Answer nil the basket must be
// empty, and the writer only looks the key up, in its order.
//
// Reason codes: those of RedeemBasket, and idempotency_key_reused.
func (l *Ledger) RedeemOnce(ctx context.Context, b Basket, once pledger.Once) (pledger.Outcome, error) {
	if once.Answer == nil && len(b.Redemptions) > 0 {
		return pledger.Outcome{}, errors.New("ledger: a lookup-only RedeemOnce with redemptions")
	}
	j, err := l.submit(ctx, b, &once)
	if err == nil {
		err = j.err
	}
	if err != nil {
		return pledger.Outcome{}, err
	}
	return pledger.Outcome{Recorded: j.out, Replayed: j.replayed, Status: j.status, Body: j.body}, nil
}

// submit checks b, queues it for the writer and waits for its answer.
func (l *Ledger) submit(ctx context.Context, b Basket, once *pledger.Once) (*job, error) {
	if err := protocol.ValidateID("tenant", string(b.Tenant)); err != nil {
		return nil, err
	}
	j := &job{ctx: ctx, b: b, once: once, done: make(chan struct{}),
		facts: factSet{camps: map[key2]CampaignFacts{}, codes: map[key2]CodeFacts{}}}
	if vf, ok := l.facts.(VersionedFacts); ok {
		// Read before the facts: they are of this version or newer, and
		// the writer looks them up again unless it is still the stored one.
		v, err := vf.FactsVersion(ctx, b.Tenant)
		if err != nil {
			return nil, wrap("redeem: facts version", err)
		}
		j.version, j.versioned = v, true
	}
	seenC, seenK := map[key2]bool{}, map[key2]bool{}
	for i := range j.b.Redemptions {
		r := j.b.Redemptions[i]
		r.Tenant = b.Tenant
		r.ID = protocol.RedemptionID{Agent: protocol.HubSender, Seq: 1}
		if err := r.Validate(); err != nil {
			return nil, &ItemError{Index: i, Err: err}
		}
		if r.Kind == protocol.KindBurn && r.Points > 0 {
			return nil, &ItemError{Index: i, Err: protocol.FieldError("points", "points burned are negative")}
		}
		if r.Kind == protocol.KindRollback {
			j.rollbacks = true
		}
		if err := j.facts.add(ctx, l.facts, r, seenC, seenK); err != nil {
			return nil, err
		}
	}
	select {
	case l.w.q <- j:
	default:
		return nil, ErrQueueFull
	}
	select {
	case <-j.done:
	case <-l.w.done: // closed: the writer answered j while draining, or never saw it
		select {
		case <-j.done:
		default:
			return nil, errClosed
		}
	}
	return j, nil
}

// applyBasket records one basket in the group's state; the caller undoes
// it on an error.
func (l *Ledger) applyBasket(ctx context.Context, g *group, j *job) ([]protocol.Redemption, bool, error) {
	b := j.b
	s := g.s
	if j.once != nil && j.once.Answer == nil {
		st, body, found, err := store.RecallIdem(ctx, s.tx, b.Tenant, j.once.Key, j.once.Request)
		if err != nil || !found {
			return nil, false, err
		}
		j.status, j.body = st, body
		return nil, true, nil
	}
	now := l.now()
	out := make([]protocol.Redemption, len(b.Redemptions))
	fresh := make([]bool, len(b.Redemptions))
	// Repeats by transaction id first, before this basket's own rows.
	var prior []protocol.Redemption
	priorRead := false
	for i, r := range b.Redemptions {
		r.Tenant = b.Tenant
		out[i] = r
		if r.TxnID == "" {
			fresh[i] = true
			continue
		}
		if !priorRead {
			var err error
			if prior, err = findTxn(s, b.Tenant, r.TxnID); err != nil {
				return nil, false, wrap("redeem", err)
			}
			priorRead = true
		}
		prev, found := matchTxn(prior, r)
		if !found {
			fresh[i] = true
			continue
		}
		// A rollback's amounts are copied from what it voids.
		if r.Kind != protocol.KindRollback && (prev.Discount != r.Discount || prev.Spend != r.Spend || prev.Points != r.Points || prev.Customer != r.Customer || prev.OrderTot != r.OrderTot) {
			return nil, false, &ItemError{Index: i, Err: protocol.NewError(protocol.CodeIdempotencyReuse)}
		}
		out[i] = prev
	}
	wm, ok := g.wm[b.Tenant]
	if !ok {
		if err := s.queryRow(qWatermark, []any{&wm}, string(b.Tenant), string(protocol.HubSender)); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, false, wrap("redeem: seq", err)
		}
		// The seqs this group may give, checked in one query rather than
		// one each (they are all new but for a damaged watermark), with
		// room for the baskets it takes in (seqSlack).
		hi := wm + int64(g.rows) + seqSlack
		if err := s.prefetchRange(b.Tenant, protocol.HubSender, uint64(wm)+1, uint64(hi)); err != nil {
			return nil, false, wrap("redeem: seq", err)
		}
		g.wm[b.Tenant], g.pre[b.Tenant] = wm, hi
	}
	if need := wm + int64(len(b.Redemptions)); need > g.pre[b.Tenant] {
		// A basket taken in after the group began (commitGroup's more):
		// its seqs in one query too.
		if err := s.prefetchRange(b.Tenant, protocol.HubSender, uint64(max(wm, g.pre[b.Tenant]))+1, uint64(need)); err != nil {
			return nil, false, wrap("redeem: seq", err)
		}
		g.pre[b.Tenant] = need
	}
	applied := false
	for i := range out {
		if !fresh[i] {
			continue
		}
		r := out[i]
		if r.Kind == protocol.KindRollback {
			orig, err := l.rollbackSource(s, r)
			if err != nil {
				return nil, false, &ItemError{Index: i, Err: err}
			}
			r.Campaign, r.Code, r.Customer, r.Currency = orig.Campaign, orig.Code, orig.Customer, orig.Currency
			r.Discount, r.Spend, r.Points, r.OrderTot = orig.Discount, orig.Spend, orig.Points, orig.OrderTot
		} else {
			var err error
			if r, err = clampEarn(s, r); err != nil {
				return nil, false, wrap("redeem", err)
			}
			if err := l.checkOnline(s, j.facts, r, now); err != nil {
				return nil, false, &ItemError{Index: i, Err: err}
			}
			if err := checkPeriod(s, r); err != nil {
				return nil, false, &ItemError{Index: i, Err: err}
			}
		}
		if r.HLC == 0 {
			r.HLC = HLCFromTime(now)
		}
		r.Offline = false
		for {
			wm++
			r.ID = protocol.RedemptionID{Agent: protocol.HubSender, Seq: uint64(wm)}
			_, ok, err := l.applyOne(s, j.facts, r, now)
			if err != nil {
				return nil, false, wrap("redeem", err)
			}
			if ok {
				break
			}
			// The seq is in the journal already: the stored watermark is
			// behind it (a ledger restored or edited by hand, or another
			// writer). The fact takes the next free seq rather than
			// going unrecorded under an older fact's ID; the group then
			// stores the last seq it gave as the watermark (recordGroup).
		}
		s.pendTxn(r, len(b.Redemptions))
		out[i] = r
		applied = true
	}
	if applied {
		g.wm[b.Tenant] = wm
		if g.applied == nil {
			g.applied = map[protocol.TenantID]bool{}
		}
		g.applied[b.Tenant] = true
	}
	if j.once != nil {
		if err := l.rememberOnce(ctx, s.tx, j, out); err != nil {
			return nil, false, err
		}
	}
	return out, false, nil
}

// errOnceRecorded is rememberOnce's answer when the key was recorded
// before: commitGroup undoes the basket and answers the record.
var errOnceRecorded = errors.New("ledger: idempotency key recorded before")

// rememberOnce records j's answer under its key, the basket's last
// statement; a key recorded before sets the answer found and returns
// errOnceRecorded.
func (l *Ledger) rememberOnce(ctx context.Context, tx *sql.Tx, j *job, recorded []protocol.Redemption) error {
	o := j.once
	st, body, err := o.Answer(recorded)
	if err != nil {
		return err
	}
	at := o.At
	if at.IsZero() {
		at = l.now()
	}
	added, err := store.RememberIdem(ctx, tx, j.b.Tenant, o.Key, o.Request, st, body, at)
	if err != nil {
		return wrap("redeem", err)
	}
	if added {
		j.status, j.body = st, body
		return nil
	}
	st, body, found, err := store.RecallIdem(ctx, tx, j.b.Tenant, o.Key, o.Request)
	if err != nil {
		return err
	}
	if !found { // cannot be: the insert met the key
		return fmt.Errorf("ledger: idempotency record %q conflicts but is not found", o.Key)
	}
	j.status, j.body = st, body
	return errOnceRecorded
}
