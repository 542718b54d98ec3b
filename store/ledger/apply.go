package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// ApplyBatch records an agent's redemptions. Each (agent, seq) is applied
// once; a repeated one is a no-op. Seqs beyond a gap are recorded too and
// listed in Ack.Beyond; Gap(ack) gives the Resend to ask for. A fact that
// fails protocol.Redemption.ValidateFrom (including one that speaks for
// another tenant or agent) is quarantined, not applied, and counts toward
// the watermark like an applied one; the rest of the batch applies. Only
// a batch whose own tenant or agent is invalid (CodeInvalidInput) or the
// hub's (CodeForbidden) is refused whole, and nothing is recorded.
func (l *Ledger) ApplyBatch(ctx context.Context, tenant protocol.TenantID, agent protocol.AgentID, rs []protocol.Redemption) (protocol.Ack, []Conflict, error) {
	res, err := l.ApplyBatches(ctx, []Batch{{Tenant: tenant, Agent: agent, Redemptions: rs}})
	if err != nil {
		return protocol.Ack{}, nil, err
	}
	return res[0].Ack, res[0].Conflicts, res[0].Err
}

// ApplyBatches applies several batches (of any agents) in one transaction,
// so that ingest can amortize a commit over many MQTT messages. Results are
// in the order of bs. A returned error means nothing was recorded.
func (l *Ledger) ApplyBatches(ctx context.Context, bs []Batch) ([]Result, error) {
	p, err := l.PrepareBatches(ctx, bs, nil)
	if err != nil {
		return nil, err
	}
	return l.ApplyPrepared(ctx, p)
}

// Prepared is batches whose read-only work is done: each fact validated
// (or set aside for quarantine) and its decision re-derived from the sale
// it carries. ApplyPrepared records it. It is used once.
type Prepared struct {
	bs       []Batch
	res      []Result
	bad      [][]Quarantined
	mismatch map[factKey]string
}

// facts is how many facts p's batches hold (0 for a nil p).
func (p *Prepared) facts() int {
	if p == nil {
		return 0
	}
	n := 0
	for _, b := range p.bs {
		n += len(b.Redemptions)
	}
	return n
}

// PrepareBatches does the read-only half of ApplyBatches, without the
// write lock, so that ingest re-derives the next messages while the
// previous ones are written (a pipeline: the re-derivation is about a
// third of the apply). inflight is the Prepared being applied meanwhile
// (nil if none): its facts count as recorded for the re-derivation's
// checks of a till transaction's other facts, as facts earlier in one
// call do, whether or not its commit has happened yet. Should inflight
// not commit, this Prepared is stale: prepare its batches again.
func (l *Ledger) PrepareBatches(ctx context.Context, bs []Batch, inflight *Prepared) (*Prepared, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ctx = stmtContext(ctx)
	res := make([]Result, len(bs))
	for i, b := range bs {
		res[i].Err = validateBatch(b)
	}
	bs, bad := sortFacts(bs, res)
	mismatch, err := l.rederive(ctx, bs, res, inflight)
	if err != nil {
		return nil, err
	}
	return &Prepared{bs: bs, res: res, bad: bad, mismatch: mismatch}, nil
}

// ApplyPrepared records what PrepareBatches prepared, in one transaction,
// as ApplyBatches does. Results are in the order of the prepared batches.
// A returned error means nothing was recorded.
func (l *Ledger) ApplyPrepared(ctx context.Context, p *Prepared) ([]Result, error) {
	res, _, err := l.applyDrain(ctx, p, nil, false)
	return res, err
}

// applyDrain records p (nil: no batches) and the heartbeats sts in one
// transaction (drain.go): the batches first, so that each heartbeat's
// watermark includes them. A returned error means nothing was recorded.
// With pipelined, and the ledger's commit pipelined (drainsync.go), the
// commit is not synced: the caller calls SyncDrains before it tells
// anyone outside; otherwise it is durable when applyDrain returns.
func (l *Ledger) applyDrain(ctx context.Context, p *Prepared, sts []StateRecord, pipelined bool) ([]Result, []StateResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	sctx := stmtContext(ctx)
	sres, states := validateStates(sts)
	var (
		res   []Result
		facts factSet
	)
	if p != nil {
		res = slices.Clone(p.res)
		var err error
		if facts, err = l.lookupFacts(sctx, p.bs, res); err != nil {
			return nil, nil, err
		}
		facts.mismatch = p.mismatch
	}
	if p == nil && !states {
		return res, sres, nil
	}
	l.gate.lock() // writegate.go
	locked := true
	defer func() {
		if locked {
			l.gate.unlock()
		}
	}()
	// On the drains' own connection, kept from drain to drain
	// (drainsync.go); with the pipelined commit it is at
	// synchronous=NORMAL: the caller syncs (SyncDrains) before it
	// acknowledges.
	conn, normal := l.drainConn(ctx, pipelined)
	var tx *sql.Tx
	var err error
	if conn != nil {
		l.sizeDrainCache(sctx, conn, p.facts()) // drainsync.go
		tx, err = conn.BeginTx(ctx, nil)
	} else {
		tx, err = l.db.BeginTx(ctx, nil)
	}
	committed := false
	if conn != nil {
		defer func() { l.releaseDrainConn(conn, committed) }() // after the Rollback below
	}
	if err != nil {
		return nil, nil, wrap("apply: begin", err)
	}
	defer tx.Rollback()
	s := l.newState(sctx, tx)
	defer s.close()
	if s.raw = l.rawDrain(conn); s.raw != nil { // drainraw.go
		s.txCtx = ctx
	}
	fail := func(err error) ([]Result, []StateResult, error) { return nil, nil, err }
	now := l.now()
	if p != nil {
		if err := l.applyPreparedIn(s, p, res, facts, now); err != nil {
			return fail(err)
		}
	}
	if states {
		if err := recordStatesIn(s, sts, sres, now); err != nil {
			return fail(err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fail(wrap("apply: commit", err))
	}
	committed = true
	if normal {
		l.drains.commits.Add(1)
	}
	l.gate.unlock()
	locked = false
	if p != nil {
		l.tiersCommitted()
	}
	l.eventsCommitted() // events.go
	return res, sres, nil
}

// stmtContext is ctx for the statements of a drain (its preparation and
// its transaction): ctx's values without its cancellation. modernc's
// driver starts a goroutine for every statement run with a context that
// can be cancelled (to interrupt SQLite when it is), ~10 a drain: at the
// fleet's 10,000 tills 2 MB/s of garbage and a goroutine start and
// switch each. A drain's statements take microseconds to milliseconds;
// ctx still ends its transaction (database/sql rolls it back when ctx is
// done, so nothing half-written is ever committed) and is checked
// before the drain starts.
func stmtContext(ctx context.Context) context.Context {
	if ctx.Done() == nil {
		return ctx
	}
	return context.WithoutCancel(ctx)
}

// applyPreparedIn records p's batches in s's transaction, filling res.
func (l *Ledger) applyPreparedIn(s *state, p *Prepared, res []Result, facts factSet, now time.Time) error {
	bs, bad := p.bs, p.bad
	var err error
	// The balances of the whole drain's facts, a few IN queries for all
	// (rows.go); then per batch its seqs and rollbacks.
	all := l.drains.all[:0] // under the write gate: one buffer for every drain
	defer func() {
		clear(all)
		if cap(all) > maxKeptFacts {
			all = nil // a burst's list is not kept
		}
		l.drains.all = all[:0]
	}()
	var agents []key2
	seenAgent := map[key2]bool{}
	for i, b := range bs {
		if res[i].Err != nil {
			continue
		}
		all = append(all, b.Redemptions...)
		if k := (key2{string(b.Tenant), string(b.Agent)}); !seenAgent[k] {
			seenAgent[k] = true
			agents = append(agents, k)
		}
	}
	if err := s.prefetchBalances(all); err != nil {
		return wrap("apply", err)
	}
	if err := s.prefetchAgentBalances(all); err != nil {
		return wrap("apply", err)
	}
	marks, err := s.loadAgents(facts, agents)
	if err != nil {
		return wrap("apply", err)
	}
	for i, b := range bs {
		if res[i].Err != nil {
			continue
		}
		if k := (key2{string(b.Tenant), string(b.Agent)}); marks[k].known {
			s.markSeqs(k, marks[k], b.Redemptions, bad[i]) // its voided seqs too (loadAgents)
		} else {
			if err := s.prefetch(b.Tenant, b.Agent, b.Redemptions); err != nil {
				return wrap("apply", err)
			}
			if err := loadVoided(s, facts, b.Tenant, b.Agent, b.Redemptions); err != nil {
				return wrap("apply", err)
			}
		}
		for _, r := range b.Redemptions {
			cs, _, err := l.applyOne(s, facts, r, now)
			if err != nil {
				return wrap("apply", err)
			}
			res[i].Conflicts = append(res[i].Conflicts, cs...)
		}
		if res[i].Quarantined, err = quarantine(s, bad[i], now); err != nil {
			return wrap("apply: quarantine", err)
		}
	}
	if err := s.flush(); err != nil {
		return wrap("apply", err)
	}
	acks, err := advanceWatermarks(s, agents, marks, now) // once per agent, after all its batches
	if err != nil {
		return wrap("apply: watermark", err)
	}
	for i, b := range bs {
		if res[i].Err == nil {
			res[i].Ack = acks[key2{string(b.Tenant), string(b.Agent)}]
		}
	}
	return nil
}

// validateBatch checks what is refused of a batch as a whole: the
// identity it arrived under. Each fact is judged on its own (sortFacts).
func validateBatch(b Batch) error {
	if err := protocol.ValidateID("tenant", string(b.Tenant)); err != nil {
		return err
	}
	if err := protocol.ValidateID("agent", string(b.Agent)); err != nil {
		return err
	}
	if b.Agent == protocol.HubSender {
		return protocol.Errorf(protocol.CodeForbidden, "agent id %q is reserved for the hub", b.Agent)
	}
	return nil
}

// factSet holds facts looked up before the write lock is taken.
type factSet struct {
	camps map[key2]CampaignFacts // missing: unknown campaign
	codes map[key2]CodeFacts
	// voided holds, per (tenant, agent), the seqs a rollback of that agent
	// names that are voided on arrival (see signs); nil for Redeem.
	voided map[key2]map[uint64]bool
	// mismatch holds the facts whose effect the rules do not give, with
	// the conflict's detail (see rederive).
	mismatch map[factKey]string
}

func (l *Ledger) lookupFacts(ctx context.Context, bs []Batch, res []Result) (factSet, error) {
	fs := factSet{camps: map[key2]CampaignFacts{}, codes: map[key2]CodeFacts{}, voided: map[key2]map[uint64]bool{}}
	seenC, seenK := map[key2]bool{}, map[key2]bool{}
	for i, b := range bs {
		if res != nil && res[i].Err != nil {
			continue
		}
		for _, r := range b.Redemptions {
			if err := fs.add(ctx, l.facts, r, seenC, seenK); err != nil {
				return fs, err
			}
		}
	}
	return fs, nil
}

func (fs factSet) add(ctx context.Context, f Facts, r protocol.Redemption, seenC, seenK map[key2]bool) error {
	if r.Campaign != "" {
		k := key2{string(r.Tenant), string(r.Campaign)}
		if !seenC[k] {
			seenC[k] = true
			cf, ok, err := f.CampaignFacts(ctx, r.Tenant, r.Campaign)
			if err != nil {
				return fmt.Errorf("ledger: campaign facts %s: %w", r.Campaign, err)
			}
			if ok {
				fs.camps[k] = cf
			}
		}
	}
	if r.Code != "" {
		k := key2{string(r.Tenant), string(r.Code)}
		if !seenK[k] {
			seenK[k] = true
			cf, ok, err := f.CodeFacts(ctx, r.Tenant, r.Code)
			if err != nil {
				return fmt.Errorf("ledger: code facts %s: %w", r.Code, err)
			}
			if ok {
				fs.codes[k] = cf
			}
		}
	}
	return nil
}

// ConflictRollbackForeign flags an agent's rollback of a redemption made
// by another agent (or the hub): it is recorded with no effect. A till
// only voids its own sales (agent.Rollback); the hub's online rollback is
// the way to void another's.
const ConflictRollbackForeign ConflictKind = "rollback_foreign"

// signs decides the effect of r on the count balances and on points; see
// the sign and psign columns. For a rollback it also copies the voided
// redemption's fields into r (what a rollback reverses is what the
// original applied, never what the rollback claims), and returns the
// conflict kind to flag, if any.
//
// A rollback:
//   - of an agent must name a redemption of the same agent (the tenant is
//     the batch's), or it has no effect and is flagged
//     ConflictRollbackForeign; the hub's (Redeem) may name any;
//   - whose original is recorded reverses exactly what the original applied
//     (−sign, −psign), once: a repeated one, or one of a rollback, has none;
//   - whose original has not arrived yet (batches out of order) is recorded
//     with no effect, and the original is voided on arrival: it is
//     recorded with sign and psign 0, so the pair nets to zero and a later
//     rollback of it has nothing left to reverse.
func signs(s *state, fs factSet, r *protocol.Redemption) (sign, psign int64, kind ConflictKind, err error) {
	switch r.Kind {
	case protocol.KindIssue, protocol.KindTopUp, protocol.KindCashOut:
		return 0, 0, "", nil // no count, no points: giftcards.go
	case protocol.KindRedeem, protocol.KindEarn, protocol.KindBurn:
		if fs.voided[key2{string(r.Tenant), string(r.ID.Agent)}][r.ID.Seq] {
			return 0, 0, "", nil // its rollback arrived first
		}
		if r.Kind == protocol.KindRedeem {
			return 1, 1, "", nil
		}
		return 0, 1, "", nil
	}
	if r.ID.Agent != protocol.HubSender && r.Ref.Agent != r.ID.Agent {
		return 0, 0, ConflictRollbackForeign, nil
	}
	if err := s.flushJournal(); err != nil {
		return 0, 0, "", err
	}
	var n int64
	err = s.tx.QueryRowContext(s.ctx, `SELECT COUNT(*) FROM ledger_journal WHERE tenant = ? AND ref_agent = ? AND ref_seq = ? AND psign != 0`,
		string(r.Tenant), string(r.Ref.Agent), int64(r.Ref.Seq)).Scan(&n)
	if err != nil {
		return 0, 0, "", err
	}
	if n > 0 {
		return 0, 0, "", nil // a repeated rollback changes nothing
	}
	var entry, campaign, code, customer, currency string
	var oSign, oPsign int64
	var o protocol.Redemption
	err = s.tx.QueryRowContext(s.ctx, `SELECT entry, sign, psign, campaign, code, customer, currency, discount, spend, points, order_total
		FROM ledger_journal WHERE tenant = ? AND agent = ? AND seq = ?`, string(r.Tenant), string(r.Ref.Agent), int64(r.Ref.Seq)).
		Scan(&entry, &oSign, &oPsign, &campaign, &code, &customer, &currency, &o.Discount, &o.Spend, &o.Points, &o.OrderTot)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		// Not arrived yet: record the rollback, void the original when it
		// comes (in this transaction through fs.voided, later through
		// loadVoided).
		if fs.voided != nil {
			k := key2{string(r.Tenant), string(r.Ref.Agent)}
			if fs.voided[k] == nil {
				fs.voided[k] = map[uint64]bool{}
			}
			fs.voided[k][r.Ref.Seq] = true
		}
		return 0, 0, "", nil
	case err != nil:
		return 0, 0, "", err
	case entry == entryName(protocol.KindRollback):
		return 0, 0, "", nil // a rollback of a rollback changes nothing
	}
	r.Campaign, r.Code, r.Customer, r.Currency = protocol.CampaignID(campaign), protocol.CodeID(code), protocol.CustomerID(customer), protocol.Currency(currency)
	r.Discount, r.Spend, r.Points, r.OrderTot = o.Discount, o.Spend, o.Points, o.OrderTot
	return -oSign, -oPsign, "", nil
}

// loadVoided adds to fs.voided the seqs of rs that an earlier rollback of
// the same agent names: one range query on the ref index per batch.
func loadVoided(s *state, fs factSet, t protocol.TenantID, a protocol.AgentID, rs []protocol.Redemption) error {
	var lo, hi uint64
	for _, r := range rs {
		if r.Kind == protocol.KindRollback {
			continue
		}
		if lo == 0 || r.ID.Seq < lo {
			lo = r.ID.Seq
		}
		hi = max(hi, r.ID.Seq)
	}
	if lo == 0 {
		return nil
	}
	rows, err := s.tx.QueryContext(s.ctx, `SELECT ref_seq FROM ledger_journal WHERE tenant = ? AND ref_agent = ? AND ref_seq BETWEEN ? AND ?
		AND agent = ref_agent AND entry = 'rollback'`, string(t), string(a), int64(lo), int64(hi))
	if err != nil {
		return err
	}
	defer rows.Close()
	k := key2{string(t), string(a)}
	for rows.Next() {
		var seq int64
		if err := rows.Scan(&seq); err != nil {
			return err
		}
		if fs.voided[k] == nil {
			fs.voided[k] = map[uint64]bool{}
		}
		fs.voided[k][uint64(seq)] = true
	}
	return rows.Err()
}

func entryName(k protocol.RedemptionKind) string { return k.String() }

// journalColumns are the columns of a redemption row, in insert order.
const journalColumns = `tenant, entry, agent, seq, store, txn_id, campaign, code, customer, order_id, currency,
	discount, spend, points, order_total, hlc, offline, ref_agent, ref_seq, snapshot, sign, psign, received_at`

const journalArity = 23

// journalChunks are the row counts of the multi-row journal INSERTs, largest
// first: the per-statement cost of database/sql and the driver is paid once
// per chunk, and a batch of any size is written with few statements (256
// rows: 4; 255 rows: 3 + 3 + 3 + 3). Each size is a hot statement, prepared
// once per connection.
var journalChunks = [...]int{64, 16, 4, 1}

// insertJournalN is the INSERT of n rows. OR IGNORE rather than ABORT: the
// (tenant, agent, seq) duplicates it would skip were already excluded by
// state.recorded under the write lock, no NOT NULL column is ever bound to
// NULL, and a multi-row statement that cannot abort half-way needs no
// statement journal (which SQLite spills to a temporary file past 64 KiB).
func insertJournalN(n int) string {
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", journalArity), ", ") + ")"
	rows := strings.TrimSuffix(strings.Repeat(row+", ", n), ", ")
	return "INSERT OR IGNORE INTO ledger_journal (" + journalColumns + ") VALUES " + rows
}

// insertJournal holds insertJournalN(n) for every n in journalChunks.
var insertJournal = func() map[int]string {
	m := map[int]string{}
	for _, n := range journalChunks {
		m[n] = insertJournalN(n)
	}
	return m
}()

// applyOne records r and updates the balances in s. It returns false for a
// redemption already recorded. The journal row is buffered in s and
// written by s.flushJournal, before any query that must see it.
func (l *Ledger) applyOne(s *state, facts factSet, r protocol.Redemption, now time.Time) ([]Conflict, bool, error) {
	cs, ok, err := l.applyFact(s, facts, r, now)
	if err != nil || !ok || l.noEvents || len(cs) == 0 {
		return cs, ok, err
	}
	return cs, ok, s.conflictEvents(cs, now) // events.go
}

// applyFact is applyOne but for the conflicts' events.
func (l *Ledger) applyFact(s *state, facts factSet, r protocol.Redemption, now time.Time) ([]Conflict, bool, error) {
	dup, err := s.recorded(r.Tenant, r.ID)
	if err != nil || dup {
		return nil, false, err
	}
	if !l.noEvents {
		if err := s.factEvent(&r, now); err != nil { // events.go
			return nil, false, err
		}
	}
	sign, psign, rbKind, err := signs(s, facts, &r)
	if err != nil {
		return nil, false, err
	}
	if err := l.applyLots(s, &r, psign, now); err != nil { // lots.go
		return nil, false, fmt.Errorf("points lots: %w", err)
	}
	if err := l.recordPurchase(s, &r, now); err != nil { // purchases.go
		return nil, false, fmt.Errorf("purchase history: %w", err)
	}
	var refAgent, refSeq any
	if r.Ref != nil {
		refAgent, refSeq = string(r.Ref.Agent), int64(r.Ref.Seq)
	}
	s.queueJournal(string(r.Tenant), entryName(r.Kind), string(r.ID.Agent), int64(r.ID.Seq), string(r.Store), r.TxnID,
		string(r.Campaign), string(r.Code), string(r.Customer), r.OrderID, string(r.Currency),
		r.Discount, journalSpend(r), r.Points, r.OrderTot, int64(r.HLC), r.Offline, refAgent, refSeq, int64(r.Snapshot), sign, psign, micros(now))
	if err := l.applyTier(s, &r, now); err != nil { // tiers.go
		return nil, false, fmt.Errorf("tiers: %w", err)
	}

	var cs []Conflict
	conflict := func(kind ConflictKind, other *protocol.RedemptionID, format string, args ...any) {
		cs = append(cs, Conflict{Tenant: r.Tenant, Kind: kind, Campaign: r.Campaign, Code: r.Code, Customer: r.Customer,
			Redemption: r.ID, Other: other, Detail: fmt.Sprintf(format, args...), At: now})
	}
	if d, ok := facts.mismatch[factKey{r.Tenant, r.ID.Agent, r.ID.Seq}]; ok {
		conflict(ConflictEffectMismatch, nil, "agent %s: %s", r.ID.Agent, d)
	}
	if rbKind == ConflictRollbackForeign {
		conflict(rbKind, r.Ref, "agent %s cannot roll back %s; recorded without effect", r.ID.Agent, r.Ref)
	}
	cf, campKnown := facts.camps[key2{string(r.Tenant), string(r.Campaign)}]
	kf, codeKnown := facts.codes[key2{string(r.Tenant), string(r.Code)}]
	if r.Kind.Loads() {
		if err := applyLoad(s, r, conflict); err != nil { // giftcards.go
			return nil, false, err
		}
		return insertConflicts(s, cs)
	}
	if r.Kind == protocol.KindCashOut {
		if err := applyCashOut(s, r, kf, codeKnown, conflict); err != nil { // giftcards.go
			return nil, false, err
		}
		return insertConflicts(s, cs)
	}

	if r.HLC != 0 && l.hlcTime(r.HLC).After(now.Add(MaxClockSkew)) {
		conflict(ConflictFutureTime, nil, "redemption time %s is ahead of the hub's %s", l.hlcTime(r.HLC).UTC().Format(timeFormat), now.UTC().Format(timeFormat))
	}
	if sign > 0 && campKnown {
		if at := l.hlcTime(r.HLC); stoppedAt(cf, at) {
			conflict(ConflictAfterKillSwitch, nil, "redeemed at %s, when the campaign was stopped (%s)", at.UTC().Format(timeFormat), stopDetail(cf, at))
		}
	}
	if r.Campaign != "" && sign != 0 {
		c, err := s.campaign(r.Tenant, r.Campaign)
		if err != nil {
			return nil, false, err
		}
		before := c.v
		c.v.count += sign
		c.v.discount += sign * r.Discount
		c.v.orderValue += sign * r.OrderTot
		if sign > 0 && campKnown && !l.noEvents {
			if err := s.budgetEvents(&r, cf, before, c.v, now); err != nil { // events.go
				return nil, false, err
			}
		}
		if sign > 0 && campKnown && cf.MaxOrderValue > 0 && c.v.orderValue > cf.MaxOrderValue && r.ID.Agent != protocol.HubSender {
			conflict(ConflictOrderValueExceeded, nil, "order value budget of %d spent to %d", cf.MaxOrderValue, c.v.orderValue)
		}
		if r.ID.Agent != protocol.HubSender {
			a, err := s.allowance(r.Tenant, r.ID.Agent, r.Campaign)
			if err != nil {
				return nil, false, err
			}
			if sign > 0 && campKnown && cf.Limited() {
				switch {
				case cf.MaxCount > 0 && a.v.outstandingCount() < 1:
					conflict(ConflictAllowanceOverrun, nil, "agent had %d redemptions of allowance left", max(0, a.v.outstandingCount()))
				case cf.MaxDiscount > 0 && a.v.outstandingAmount() < r.Discount:
					conflict(ConflictAllowanceOverrun, nil, "discount %d beyond the agent's remaining allowance of %d", r.Discount, max(0, a.v.outstandingAmount()))
				}
			}
			a.v.usedCount += sign
			a.v.usedAmount += sign * r.Discount
		}
	}
	if r.Code != "" && sign != 0 {
		c, err := s.code(r.Tenant, r.Code)
		if err != nil {
			return nil, false, err
		}
		c.v += sign
		if sign > 0 && codeKnown && kf.MaxUses > 0 && c.v > kf.MaxUses && !kf.GiftCard {
			conflict(ConflictCodeReused, other(c.last), "code allows %d uses, this is use %d", kf.MaxUses, c.v)
		}
		if sign > 0 { // only a redeem counts with sign > 0
			c.last = r.ID
		}
		if r.Spend != 0 {
			g, err := s.card(r.Tenant, r.Code)
			if err != nil {
				return nil, false, err
			}
			g.v += sign * r.Spend
			if sign > 0 && codeKnown && kf.GiftCard && g.v > kf.InitialBalance {
				loaded, err := cardLoaded(s, r.Tenant, r.Code) // giftcards.go
				if err != nil {
					return nil, false, err
				}
				if g.v > kf.InitialBalance+loaded {
					conflict(ConflictGiftCardOverdraw, other(g.last), "gift card of %d spent to %d", kf.InitialBalance+loaded, g.v)
				}
			}
			if sign > 0 { // r.Spend > 0: amounts are never negative
				g.last = r.ID
			}
		}
	}
	if r.Customer != "" && r.Campaign != "" && sign != 0 {
		var c *cell[int64]
		if campKnown && cf.PerCustomer > 0 {
			if c, err = s.customerCampaign(r.Tenant, r.Customer, r.Campaign); err != nil {
				return nil, false, err
			}
		} else {
			c = s.customerCampaignAdd(r.Tenant, r.Customer, r.Campaign) // nobody checks it
		}
		c.v += sign
		if sign > 0 && campKnown && cf.PerCustomer > 0 && c.v > cf.PerCustomer {
			conflict(ConflictCustomerLimit, other(c.last), "customer limit is %d, this is redemption %d", cf.PerCustomer, c.v)
		}
		if sign > 0 {
			c.last = r.ID
		}
	}
	if r.Customer != "" && r.Points != 0 && psign != 0 {
		c, err := s.customer(r.Tenant, r.Customer)
		if err != nil {
			return nil, false, err
		}
		c.v += psign * r.Points
		if psign > 0 && r.Points < 0 && c.v < 0 {
			conflict(ConflictPointsOverdrawn, nil, "points balance went to %d", c.v)
		}
	}
	if kind, d, err := applyPeriod(s, r, sign, psign); err != nil {
		return nil, false, err
	} else if kind != "" {
		conflict(kind, nil, "%s", d)
	}
	if err := l.applyReferral(s, &r, cf, campKnown, kf, sign, now, conflict); err != nil { // referrals.go
		return nil, false, err
	}
	for i := range cs {
		if cs[i].ID, err = insertConflict(s, cs[i]); err != nil {
			return nil, false, err
		}
	}
	return cs, true, nil
}

// other is the other side of a conflict: the last earlier redemption that
// counted against the same code, gift card or customer campaign, as its
// balance row remembers it (nil if none did). It is the journal's most
// recent entry of that code with entry = 'redeem' and sign > 0, of that gift card with
// spend > 0 and sign > 0, of that customer and campaign with sign > 0:
// applyOne sets last exactly for those entries, in journal order, under
// the write lock.
func other(last protocol.RedemptionID) *protocol.RedemptionID {
	if last.Agent == "" {
		return nil
	}
	return &last
}

func insertConflict(s *state, c Conflict) (int64, error) {
	var oa, os any
	if c.Other != nil {
		oa, os = string(c.Other.Agent), int64(c.Other.Seq)
	}
	if err := s.savepoint(); err != nil {
		return 0, err
	}
	res, err := s.tx.ExecContext(s.ctx, `INSERT INTO ledger_conflicts (tenant, kind, campaign, code, customer, agent, seq, other_agent, other_seq, detail, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, string(c.Tenant), string(c.Kind), string(c.Campaign), string(c.Code), string(c.Customer),
		string(c.Redemption.Agent), int64(c.Redemption.Seq), oa, os, c.Detail, micros(c.At))
	if err != nil {
		return 0, fmt.Errorf("conflict: %w", err)
	}
	return res.LastInsertId()
}

// The statements of the watermark.
const (
	qWatermark      = `SELECT watermark FROM ledger_agents WHERE tenant = ? AND agent = ?`
	qAfterWatermark = `SELECT seq FROM ledger_journal WHERE tenant = ?1 AND agent = ?2 AND seq > ?3
		UNION ALL SELECT seq FROM ledger_quarantine WHERE tenant = ?1 AND agent = ?2 AND seq > ?3 ORDER BY seq LIMIT 4096` // afterWatermarkPage
	upWatermark = `INSERT INTO ledger_agents (tenant, agent, watermark, seen_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (tenant, agent) DO UPDATE SET watermark = excluded.watermark, seen_at = excluded.seen_at`
)

// advanceWatermark moves the agent's contiguous watermark over every seq
// now recorded, applied or quarantined, and returns the Ack: the watermark
// and the seqs recorded beyond it (at most MaxAckBeyond).
func advanceWatermark(s *state, t protocol.TenantID, a protocol.AgentID, now time.Time) (protocol.Ack, error) {
	var wm int64
	err := s.queryRow(qWatermark, []any{&wm}, string(t), string(a))
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return protocol.Ack{}, err
	}
	orig := wm
	wm, beyond, err := watermarkFrom(s, t, a, wm)
	if err != nil {
		return protocol.Ack{}, err
	}
	if wm != orig {
		if _, err := s.exec(upWatermark, string(t), string(a), wm, micros(now)); err != nil {
			return protocol.Ack{}, err
		}
	}
	return protocol.Ack{Watermark: uint64(wm), Beyond: beyond}, nil
}

// watermarkFrom moves a stored watermark wm over the agent's seqs
// recorded after it, contiguous, and lists (sorted, at most MaxAckBeyond)
// the seqs recorded beyond the new one.
func watermarkFrom(s *state, t protocol.TenantID, a protocol.AgentID, wm int64) (int64, []uint64, error) {
	var beyond []uint64
	for {
		rows, err := s.query(qAfterWatermark, string(t), string(a), wm)
		if err != nil {
			return 0, nil, err
		}
		n, contiguous := 0, true
		for rows.Next() {
			var seq int64
			if err := rows.Scan(&seq); err != nil {
				rows.Close()
				return 0, nil, err
			}
			n++
			if contiguous && seq == wm+1 {
				wm = seq
				continue
			}
			contiguous = false
			if len(beyond) < MaxAckBeyond {
				beyond = append(beyond, uint64(seq))
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return 0, nil, err
		}
		if !contiguous || n < afterWatermarkPage {
			break
		}
	}
	sort.Slice(beyond, func(i, j int) bool { return beyond[i] < beyond[j] })
	return wm, beyond, nil
}
