// Package ledger is the hub's ledger on SQLite: an append-only journal of
// every redemption fact, allowance movement and conflict, plus the balances
// derived from it (per campaign, code, gift card, customer and agent),
// written in the same transaction as the journal rows they come from.
//
// Agents' redemptions are facts: the cashier already handed over the
// discount, so ApplyBatch records every one of them, once per (agent, seq),
// and flags what offline operation made possible (a single-use code used
// twice, an overdrawn gift card, a per-customer limit broken across stores,
// a redemption after the kill switch, an allowance overrun) as a Conflict.
// The hub's own online redemptions (Redeem) are checked against limits and
// budgets before they are recorded, and budgets are split among agents by
// escrow (GrantAllowance, ReturnAllowance) so that a campaign budget holds
// while stores are offline. Verify recomputes every balance from the journal.
//
// Every write takes SQLite's write lock at BEGIN (store.Open uses
// _txlock=immediate), so checks and writes in one method are serialized
// against every other writer: that is what makes Redeem and GrantAllowance
// strongly consistent.
package ledger

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sync/atomic"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store"
)

//go:embed migrations/ledger_*.sql
var migrationFS embed.FS

// Migrations are the ledger's schema migrations, named ledger_NNN_*.sql so
// that they can share one database file (and one schema_migrations table)
// with other stores such as store/catalog.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrationFS, "migrations")
	if err != nil {
		panic(err) // the embedded directory exists at build time
	}
	return sub
}

// CampaignFacts, StopInterval and CodeFacts are what the catalog tells the
// ledger (protocol/ledgerfacts.go): the two stores share them through
// protocol rather than importing each other.
type (
	CampaignFacts = protocol.CampaignFacts
	StopInterval  = protocol.StopInterval
	CodeFacts     = protocol.CodeFacts
)

// stoppedAt reports whether the campaign was stopped at t: in one of Stops,
// or at or after StoppedAt.
func stoppedAt(f CampaignFacts, t time.Time) bool {
	if !f.StoppedAt.IsZero() && !t.Before(f.StoppedAt) {
		return true
	}
	for _, iv := range f.Stops {
		if !t.Before(iv.From) && (iv.To.IsZero() || t.Before(iv.To)) {
			return true
		}
	}
	return false
}

func stopDetail(f CampaignFacts, t time.Time) string {
	for _, iv := range f.Stops {
		if !t.Before(iv.From) && !iv.To.IsZero() && t.Before(iv.To) {
			return "stopped from " + iv.From.UTC().Format(timeFormat) + " to " + iv.To.UTC().Format(timeFormat)
		}
	}
	if !f.StoppedAt.IsZero() {
		return "stopped at " + f.StoppedAt.UTC().Format(timeFormat)
	}
	for _, iv := range f.Stops {
		if iv.To.IsZero() {
			return "stopped at " + iv.From.UTC().Format(timeFormat)
		}
	}
	return "stopped"
}

// Facts looks up campaign and code facts. The catalog implements it; the
// ledger calls it before it takes the write lock. found is false (and err
// nil) for an unknown campaign or code: its redemptions are still recorded,
// without limit checks.
type Facts interface {
	CampaignFacts(ctx context.Context, tenant protocol.TenantID, campaign protocol.CampaignID) (f CampaignFacts, found bool, err error)
	CodeFacts(ctx context.Context, tenant protocol.TenantID, code protocol.CodeID) (f CodeFacts, found bool, err error)
}

// VersionedFacts is a Facts whose answers change only with a per-tenant
// version that the ledger can read inside its write transaction (the
// catalog's version, which every catalog change bumps). The online writer
// reads it once per group commit and tenant: a basket whose facts were
// looked up at another version has them looked up again there, under the
// write lock, so a kill switch or a limit change committed between
// the hub's decision and the record is never missed, however the Facts
// caches its answers.
type VersionedFacts interface {
	Facts
	// FactsVersion returns a version v such that every answer the Facts
	// gives after FactsVersion returns is of version v or newer.
	FactsVersion(ctx context.Context, tenant protocol.TenantID) (uint64, error)
	// FactsVersionTx reads the tenant's current version in tx; answers
	// given after it returns are of that version or newer.
	FactsVersionTx(ctx context.Context, tx *sql.Tx, tenant protocol.TenantID) (uint64, error)
}

// AllowancePolicy sizes allowance grants from an agent's recent rate:
//
//	rate      = the agent's redemptions (and discount) of the campaign
//	            received in the last Window
//	target    = clamp(ceil(rate × Horizon / Window), Min, Max)
//	grant     = min(target − outstanding, budget − used − all outstanding)
//
// so an agent holds enough to cover Horizon of offline selling at its recent
// pace, never less than Min (a quiet till can still sell) nor more than Max
// (one till cannot hoard a budget), and never more than is left. A till's
// first grant of a campaign (it has no pace of it yet) has a target of at
// least (budget − used − all outstanding) / FirstShare within Min and Max:
// see allowance.go's firstTarget.
type AllowancePolicy struct {
	Window    time.Duration // default DefaultAllowanceWindow
	Horizon   time.Duration // default DefaultAllowanceHorizon
	MinCount  int64         // default DefaultAllowanceMinCount
	MaxCount  int64         // default DefaultAllowanceMaxCount
	MinAmount int64         // minor units, default DefaultAllowanceMinAmount
	MaxAmount int64         // minor units, default DefaultAllowanceMaxAmount
	// FirstShare divides what is left of a budget for a till's first
	// grant of the campaign; default DefaultAllowanceFirstShare; negative:
	// first grants are sized like any other (Min for a till with no pace).
	FirstShare int64
}

// Allowance policy defaults.
const (
	DefaultAllowanceWindow    = time.Hour
	DefaultAllowanceHorizon   = 4 * time.Hour
	DefaultAllowanceMinCount  = 5
	DefaultAllowanceMaxCount  = 500
	DefaultAllowanceMinAmount = 50_00
	DefaultAllowanceMaxAmount = 5_000_00
	// DefaultAllowanceFirstShare: a first grant takes at most 1/100,000
	// of what is left, so 10,000 tills' first grants escrow at most ~10 %
	// of it, and a budget changes a first grant only from Min × 100,000
	// on (500,000 redemptions; 5,000,000.00 of discount).
	DefaultAllowanceFirstShare = 100_000
)

func (p *AllowancePolicy) ensureDefaults() {
	if p.Window <= 0 {
		p.Window = DefaultAllowanceWindow
	}
	if p.Horizon <= 0 {
		p.Horizon = DefaultAllowanceHorizon
	}
	if p.MinCount <= 0 {
		p.MinCount = DefaultAllowanceMinCount
	}
	if p.MaxCount <= 0 {
		p.MaxCount = DefaultAllowanceMaxCount
	}
	if p.MinAmount <= 0 {
		p.MinAmount = DefaultAllowanceMinAmount
	}
	if p.MaxAmount <= 0 {
		p.MaxAmount = DefaultAllowanceMaxAmount
	}
	if p.FirstShare == 0 {
		p.FirstShare = DefaultAllowanceFirstShare
	}
	p.MaxCount = max(p.MaxCount, p.MinCount)
	p.MaxAmount = max(p.MaxAmount, p.MinAmount)
}

// MaxAckBeyond bounds the seqs listed in Ack.Beyond; seqs past it are
// acknowledged in a later Ack, once the gap below them is filled.
const MaxAckBeyond = 1000

// Options for Open and New.
type Options struct {
	Facts  Facts            // required
	Policy AllowancePolicy  // zero value: defaults
	Now    func() time.Time // default time.Now
	Store  store.Options    // for Open; Migrations is set by Open
	// HLCTime turns a redemption's hybrid logical clock into a time, for the
	// kill-switch check. Default HLCTime.
	HLCTime func(uint64) time.Time
	// Rules, when set, makes ApplyBatches re-derive every till fact's
	// effect (ConflictEffectMismatch); nil takes them as reported.
	Rules Rules
	// WriterQueue bounds the baskets waiting for the online writer
	// (RedeemBasket); beyond it they are refused with ErrQueueFull.
	// Default DefaultWriterQueue.
	WriterQueue int
	// WriterGroup bounds the baskets of one group commit. Default
	// DefaultWriterGroup.
	WriterGroup int
	// RequestRetention is how long an allowance grant stays recorded under
	// its till's request id (GrantAllowanceFor) for a retry to get it
	// back. Default DefaultRequestRetention.
	RequestRetention time.Duration
	// Segments, when set, lets the ledger recompute a customer's segments
	// on each new purchase, in the fact's transaction (purchases.go).
	Segments SegmentFacts
	// Tiers, when set, keeps customers' tiers by the tenants' tier
	// programmes (tiers.go): upgrades in the transaction of the fact that
	// qualifies, downgrades by ReviewTiers. The catalog, sharing the
	// database file.
	Tiers TierCatalog
	// OnTier is called after a commit that changed customers' tiers, with
	// the catalog version the change made (the hub announces it to the
	// tills). It must not block.
	OnTier func(protocol.TenantID, uint64)
	// NoEvents turns the event log off (events.go): the benchmarks'
	// baseline. Default false: every change writes its events.
	NoEvents bool
	// OnEvents is called after a commit that wrote events to the log
	// (events.go), so that a reader in this process (the webhook relay)
	// need not wait for its poll. It must not block: a non-blocking
	// channel send.
	OnEvents func()
	// SerialCommit has the online writer fsync in each group's commit and
	// wait for it before the next group, instead of the pipelined commit
	// (writersync.go), and ingest's drains fsync in their commits instead
	// of in SyncDrains (drainsync.go). Default false: pipelined.
	SerialCommit bool
}

// Ledger is the hub's ledger. It is safe for concurrent use.
type Ledger struct {
	db      *sql.DB
	ownsDB  bool
	facts   Facts
	policy  AllowancePolicy
	now     func() time.Time
	hlcTime func(uint64) time.Time
	// reqRetention is Options.RequestRetention.
	reqRetention time.Duration
	rules        Rules
	// prepared holds hotStatements prepared on the pool; a transaction
	// binds them with Tx.StmtContext. Read-only after New.
	prepared map[string]*sql.Stmt
	w        *writer // the online writer (basket.go)
	segs     SegmentFacts

	tierCat   TierCatalog                     // Options.Tiers
	onTier    func(protocol.TenantID, uint64) // Options.OnTier
	onEvents  func()                          // Options.OnEvents
	evNoted   atomic.Bool                     // events written by the transaction open (eventsCommitted)
	tierNotes tierNotes                       // tier changes to announce after commit
	noEvents  bool                            // Options.NoEvents
	// serialCommit is Options.SerialCommit.
	serialCommit bool
	gate         writeGate  // writegate.go
	grants       grantGroup // grantgroup.go
	drains       drainSync  // drainsync.go
	stmts        stmtStats  // stmtstats.go
}

// Open opens (creating and migrating) the ledger database at path.
func Open(ctx context.Context, path string, opts Options) (*Ledger, error) {
	so := opts.Store
	so.Migrations = Migrations()
	db, err := store.Open(ctx, path, so)
	if err != nil {
		return nil, err
	}
	l, err := New(ctx, db, opts)
	if err != nil {
		db.Close()
		return nil, err
	}
	l.ownsDB = true
	return l, nil
}

// New uses db, opened by store.Open and possibly shared with other stores,
// and applies the ledger's migrations to it. Close does not close db.
func New(ctx context.Context, db *sql.DB, opts Options) (*Ledger, error) {
	if opts.Facts == nil {
		return nil, errors.New("ledger: Options.Facts is required")
	}
	if err := store.Migrate(ctx, db, Migrations()); err != nil {
		return nil, err
	}
	opts.Policy.ensureDefaults()
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.HLCTime == nil {
		opts.HLCTime = HLCTime
	}
	if opts.RequestRetention <= 0 {
		opts.RequestRetention = DefaultRequestRetention
	}
	l := &Ledger{db: db, facts: opts.Facts, policy: opts.Policy, now: opts.Now, hlcTime: opts.HLCTime, rules: opts.Rules, prepared: map[string]*sql.Stmt{}, reqRetention: opts.RequestRetention, segs: opts.Segments,
		tierCat: opts.Tiers, onTier: opts.OnTier, onEvents: opts.OnEvents, noEvents: opts.NoEvents,
		serialCommit: opts.SerialCommit}
	if _, ok := opts.Tiers.(customerChanger); ok && l.onTier == nil {
		l.onTier = func(protocol.TenantID, uint64) {} // the catalog's cache is still told (tiersCommitted)
	}
	// Prepared here, before any transaction: preparing on the pool while
	// a transaction holds a connection could wait for another one.
	for _, q := range hotStatements() {
		st, err := db.PrepareContext(ctx, q)
		if err != nil {
			l.closeStatements()
			return nil, fmt.Errorf("ledger: prepare: %w", err)
		}
		l.prepared[q] = st
	}
	if opts.WriterQueue <= 0 {
		opts.WriterQueue = DefaultWriterQueue
	}
	if opts.WriterGroup <= 0 {
		opts.WriterGroup = DefaultWriterGroup
	}
	l.startWriter(opts.WriterQueue, opts.WriterGroup)
	return l, nil
}

// hotStatements are the statements ApplyBatches runs in every transaction,
// and a grant group's (grantStatements).
func hotStatements() []string {
	qs := []string{qRecorded, qPrefetch, qCampaign, qCode, qCard, qCustomer, qCustCamp, qAllowance,
		upCampaign, upCode, upCard, qWatermark, qAfterWatermark, upWatermark,
		qCodesIn, qCustCampsIn, qTxnFacts, qTxnFactsIn, qByTxnIn,
		qByTxn, qReserved, qCodeUses, qCardSpent, qCustCount, qCampaignBalance,
		qPeriod, upPeriod, insEarnP, qEarnP, insEvent, upPointsTotal}
	qs = append(qs, lotStatements...)      // lots.go
	qs = append(qs, grantStatements...)    // allowance.go
	qs = append(qs, purchaseStatements...) // purchases.go
	qs = append(qs, referralStatements...) // referrals.go
	qs = append(qs, rowsStatements()...)   // rows.go
	qs = append(qs, inStatements()...)     // inchunks.go
	for _, n := range journalChunks {
		qs = append(qs, insertJournal[n])
	}
	for _, n := range upsertChunks {
		qs = append(qs, upCustCampN[n], addCustCampN[n], insEventN[n])
	}
	return qs
}

func (l *Ledger) closeStatements() {
	for _, st := range l.prepared {
		st.Close()
	}
}

// Close releases the prepared statements, and the database if Open opened
// it.
func (l *Ledger) Close() error {
	l.stopWriter()
	l.gate.lock()
	l.dropDrainConn() // drainsync.go
	l.gate.unlock()
	l.closeStatements()
	if l.ownsDB {
		return l.db.Close()
	}
	return nil
}

// DB is the underlying database, for stores that share the file.
func (l *Ledger) DB() *sql.DB { return l.db }

// HLCTime is the wall-clock part of a hybrid logical clock value as the
// agent packs it: Unix milliseconds in the top 48 bits, a logical counter in
// the low 16.
func HLCTime(h uint64) time.Time { return time.UnixMilli(int64(h >> 16)) }

// HLCFromTime packs t with a zero logical counter, for the hub's own
// redemptions.
func HLCFromTime(t time.Time) uint64 { return uint64(t.UnixMilli()) << 16 }

// MaxClockSkew is how far ahead of the hub's clock a redemption's time may
// be before it is flagged (ConflictFutureTime): the hub never trusts an
// agent's clock alone.
const MaxClockSkew = 5 * time.Minute

func micros(t time.Time) int64 { return t.UnixMicro() }

func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return err
	}
	return fmt.Errorf("ledger: %s: %w", op, err)
}

const timeFormat = "2006-01-02T15:04:05.000Z"
