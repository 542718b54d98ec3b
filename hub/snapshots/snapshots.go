// Package snapshots assembles the agents' snapshots: what a till holds to
// decide offline (docs/protocol.md). A snapshot is the catalog's view for
// the agent's store at the tenant's catalog version, the ledger's code uses
// and gift card spending (all of them, or the changes since the agent's
// position), the agent's envelope and the allowances the hub counts it as
// holding. The HTTP API serves it (GET /v1/agent/snapshot), and the hub
// announces new versions through Announcer; the agent fetches on its own
// schedule.
//
// Storage sits behind interfaces declared here (Catalog, Ledger,
// CodeLedger), which store/catalog and store/ledger implement (hub/
// wiring.go checks it).
package snapshots

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/punchcard/punchcard/hub/allowance"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/catalog"
	"github.com/punchcard/punchcard/protocol/rules"
	"github.com/punchcard/punchcard/protocol/snapshot"
)

// Catalog is what snapshots need of the catalog store.
type Catalog interface {
	Version(ctx context.Context, tenant protocol.TenantID) (uint64, error)
	Campaigns(ctx context.Context, tenant protocol.TenantID, since uint64) ([]catalog.Campaign, error)
	// Agent returns an agent's record. Every change to it moves the
	// tenant's Version (the service keeps the record per version).
	Agent(ctx context.Context, tenant protocol.TenantID, id protocol.AgentID) (catalog.Agent, error)
	// SnapshotWith builds the agent's snapshot (its store's view) at the
	// current version: a delta since catalog version since (0: full), with
	// states as the codes' uses.
	SnapshotWith(ctx context.Context, tenant protocol.TenantID, agent protocol.AgentID, since uint64, states map[protocol.CodeID]protocol.CodeState) (*snapshot.Snapshot, error)
}

// Ledger is what the allowances in a snapshot need of the ledger store:
// what the agent holds of a campaign as the hub counts it.
type Ledger interface {
	Outstanding(ctx context.Context, tenant protocol.TenantID, agent protocol.AgentID, campaign protocol.CampaignID) (count, amount int64, err error)
}

// CodeLedger is the ledger's code-use sequence (store/ledger/snapshotq.go).
// A ledger without it gets snapshots without code states.
type CodeLedger interface {
	CodeHead(ctx context.Context, tenant protocol.TenantID) (uint64, error)
	CodeStatesAt(ctx context.Context, tenant protocol.TenantID) (map[protocol.CodeID]protocol.CodeState, uint64, error)
	CodeChanges(ctx context.Context, tenant protocol.TenantID, after uint64, limit int) (map[protocol.CodeID]protocol.CodeState, uint64, bool, error)
}

// SnapshotReader reads what a snapshot body needs of the ledger in one
// read at one position (store/ledger.SnapshotRead): the code-use and
// customer-state positions, Reflected, and the codes changed after the
// agent's position (changes; at most limit) and the agent's escrow
// (escrow).
type SnapshotReader interface {
	SnapshotRead(ctx context.Context, tenant protocol.TenantID, agent protocol.AgentID, after uint64, changes, escrow bool, limit int) (protocol.SnapshotRead, error)
}

// ReflectedLedger tells which of an agent's facts the code states at a
// code-use position count (store/ledger/reflected.go): the till adds to
// the hub's figures only its facts outside that set
// (snapshot.Snapshot.Reflected, agentdb.CodeFigure).
type ReflectedLedger interface {
	Reflected(ctx context.Context, tenant protocol.TenantID, agent protocol.AgentID) (head, watermark uint64, beyond []uint64, err error)
}

// Allowances is what the snapshot carries of a till's allowances, with
// the grants the hub made, so the till adopts one whose answer was lost
// (hub/allowance.Service.ForSnapshot).
type Allowances interface {
	ForSnapshot(ctx context.Context, tenant protocol.TenantID, agent protocol.AgentID, camps []allowance.Limited) ([]protocol.Allowance, error)
}

// Defaults for Options.
const (
	// DefaultMaxCodeChanges is Options.MaxCodeChanges' default (the
	// ledger's own, store/ledger.DefaultMaxCodeChanges).
	DefaultMaxCodeChanges = 20_000
	// DefaultBuildMaxAge is Options.BuildMaxAge's default.
	DefaultBuildMaxAge = 10 * time.Second
)

// Options configure New.
type Options struct {
	// Ledger fills in the allowances; nil leaves them out. When it also
	// implements CodeLedger, it fills in the codes' uses, and when it
	// implements ReflectedLedger, which of the agent's facts they count.
	Ledger Ledger
	// Allowances lists a till's allowances with its grants; default: the
	// allowance service over Ledger when it is an allowance.Store, else
	// the outstanding figures alone.
	Allowances Allowances
	// Now is the clock; default time.Now.
	Now func() time.Time
	// MaxCodeChanges is how many code-use changes a delta lists at most;
	// an agent further behind gets a full snapshot. Default
	// DefaultMaxCodeChanges.
	MaxCodeChanges int
	// BuildMaxAge is how long a store's catalog part (its snapshot
	// without code states, built once per store and catalog versions) is
	// kept for the other agents of the store; default DefaultBuildMaxAge,
	// negative: never.
	BuildMaxAge time.Duration
	// MaxConcurrent bounds the snapshot requests assembled at once; the
	// others wait their turn (or their context), so that a fetch storm
	// after a catalog change leaves the CPU to ingest's acks. Default
	// DefaultMaxConcurrent().
	MaxConcurrent int
	// MaxWait bounds a request's wait for its turn: past it the request
	// is refused with CodeUnavailable (the API answers 503 with
	// Retry-After, and the agent backs off with jitter), so that a queue
	// longer than the hub can serve does not grow without bound while its
	// clients time out and ask again. Default DefaultMaxWait.
	MaxWait time.Duration
	// MaxCustomerChanges is how many changed customers a customer-state
	// delta lists at most; an agent further behind gets the whole lists.
	// Default DefaultMaxCustomerChanges.
	MaxCustomerChanges int
	// QuietMaxAge is how long a poll may be answered 304 although code
	// uses or the agent's allowance figures moved, when nothing moved
	// that the agent acts on (quiet.go), counted from when the body the
	// agent holds was built. Default DefaultQuietMaxAge; negative: a poll
	// is 304 only when nothing at all moved.
	QuietMaxAge time.Duration
}

// DefaultMaxWait is Options.MaxWait's default.
const DefaultMaxWait = 10 * time.Second

// DefaultMaxConcurrent is Options.MaxConcurrent's default: the
// processors the Go scheduler uses, at least two. (One turn on a 2-core
// hub starved the fetches at 10,000 tills: no till had the new rules
// after 2 minutes.)
func DefaultMaxConcurrent() int { return max(2, runtime.GOMAXPROCS(0)) }

func (o *Options) ensureDefaults() {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxCodeChanges <= 0 {
		o.MaxCodeChanges = DefaultMaxCodeChanges
	}
	if o.BuildMaxAge == 0 {
		o.BuildMaxAge = DefaultBuildMaxAge
	}
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = DefaultMaxConcurrent()
	}
	if o.MaxCustomerChanges <= 0 {
		o.MaxCustomerChanges = DefaultMaxCustomerChanges
	}
	if o.MaxWait <= 0 {
		o.MaxWait = DefaultMaxWait
	}
	if o.QuietMaxAge == 0 {
		o.QuietMaxAge = DefaultQuietMaxAge
	}
}

// Service assembles snapshots. It is safe for concurrent use.
type Service struct {
	cat     Catalog
	opts    Options
	led     CodeLedger      // nil without the code-use sequence
	refl    ReflectedLedger // nil: snapshots say nothing of the agent's facts
	cust    CustomerLedger  // nil: customer state by catalog version, segments whole
	tierCat TierCatalog
	pos     PositionLedger   // nil: no quiet 304 (quiet.go)
	news    CodeFactsCatalog // nil: no quiet 304

	tenantNews sync.Map // tenant -> *codeNews
	// Quiet counts the polls answered 304 by the quiet path: the
	// positions read, the allowances not (quiet.go).
	Quiet atomic.Int64
	// Unchanged counts the other 304s (the agent's ETag matched what it
	// would get now), Bodies the snapshots answered with a body, and Busy
	// the requests refused for want of a turn (MaxWait).
	Unchanged, Bodies, Busy atomic.Int64

	builds  *buildCache        // catalog parts built per store, shared by its agents
	agents  sync.Map           // snapKey -> agentAt: each agent's record at a catalog version
	reader  SnapshotReader     // nil: the ledger's reads one by one
	escrow  allowance.Store    // the default Allowances' store: SnapshotRead reads its escrow (held.go)
	lister  AgentLister        // nil: each agent's record read on its own (agents.go)
	lists   sync.Map           // tenant -> *tenantAgents
	misses  sync.Map           // tenant -> *agentMisses
	listing singleflight.Group // one list read per tenant and version
	// wholes keeps each tenant's whole customer lists at the last
	// positions they were read at (customers.go); wholeReads coalesces
	// the reads.
	wholes     sync.Map // tenant -> *wholeLists
	wholeReads singleflight.Group
	turns      chan struct{} // Options.MaxConcurrent requests at once

	mu    sync.Mutex
	snaps map[snapKey]snapEntry                  // each agent's last ETag
	camps map[protocol.TenantID]limitedCampaigns // by tenant, at a version
}

// New returns the service over cat.
func New(cat Catalog, opts Options) (*Service, error) {
	if cat == nil {
		return nil, errors.New("snapshots: a catalog is required")
	}
	opts.ensureDefaults()
	s := &Service{cat: cat, opts: opts, builds: newBuildCache(opts.BuildMaxAge, opts.MaxConcurrent), turns: make(chan struct{}, opts.MaxConcurrent),
		snaps: map[snapKey]snapEntry{}, camps: map[protocol.TenantID]limitedCampaigns{}}
	s.led, _ = opts.Ledger.(CodeLedger)
	s.refl, _ = opts.Ledger.(ReflectedLedger)
	s.pos, _ = opts.Ledger.(PositionLedger)
	s.news, _ = cat.(CodeFactsCatalog)
	s.lister, _ = cat.(AgentLister)
	s.reader, _ = opts.Ledger.(SnapshotReader)
	if tc, ok := cat.(TierCatalog); ok {
		if cl, ok := opts.Ledger.(CustomerLedger); ok {
			s.cust, s.tierCat = cl, tc
		}
	}
	if s.opts.Allowances == nil {
		if st, ok := opts.Ledger.(allowance.Store); ok {
			s.opts.Allowances = allowance.New(st)
			s.escrow = st
		}
	}
	return s, nil
}

// Request is one agent's snapshot request.
type Request struct {
	Tenant protocol.TenantID
	Agent  protocol.AgentID
	// Since is the catalog version the agent holds (0: a full snapshot).
	Since uint64
	// Uses is the agent's code-use position (snapshot.Snapshot.Uses);
	// HasUses is false when it sent none (a delta then lists every used
	// code, as before the sequence).
	Uses    uint64
	HasUses bool
	// Customers is the agent's customer-state position
	// (snapshot.Snapshot.Customers); HasCustomers is false when it sent
	// none (an agent before the sequence: its tiers follow the catalog
	// version and its segments come whole).
	Customers    uint64
	HasCustomers bool
	// IfNoneMatch is the agent's If-None-Match header, "" when none.
	IfNoneMatch string
}

// Answer is a snapshot, or that the agent's is current.
type Answer struct {
	// NotModified: the agent's If-None-Match matched; Snapshot is nil.
	NotModified bool
	ETag        string
	Version     uint64
	// Snapshot is the snapshot with its generation time; the ETag covers
	// everything but that time.
	Snapshot *snapshot.Snapshot
	// Body is Snapshot's canonical CBOR (snapshot.Encode's bytes, with
	// the time): encoded once for the ETag and stamped (snapshot.Stamp),
	// not encoded again to be sent.
	Body []byte
}

// Snapshot assembles the snapshot req asks for: a full snapshot or the
// delta after req.Since, for the agent's store.
//
// With req.HasUses a delta lists only the codes whose uses or spending
// changed after req.Uses (an index range), so it costs the changes since,
// not every code ever used. An agent more than MaxCodeChanges changes
// behind, or at a position the ledger does not know, gets a full snapshot.
//
// The catalog part is built once per store and catalog versions
// (buildCache: concurrent requests join the build in flight, later ones
// take the cached part without a lock) and shared by the store's agents
// whatever their code-use positions; the code states are read per request
// and laid over it (compose). At most Options.MaxConcurrent requests are
// assembled at once; the others wait their turn. The
// last ETag of each agent is remembered with the state it was computed at
// (catalog version, code-use position, allowances), so a poll that changes
// nothing costs a version lookup, the allowance queries and one position
// lookup, and answers NotModified. Reason codes: not_found (the agent).
func (s *Service) Snapshot(ctx context.Context, req Request) (Answer, error) {
	select {
	case s.turns <- struct{}{}:
	default:
		wait := time.NewTimer(s.opts.MaxWait)
		select {
		case s.turns <- struct{}{}:
			wait.Stop()
		case <-wait.C:
			s.Busy.Add(1)
			return Answer{}, protocol.Errorf(protocol.CodeUnavailable, "too many snapshot requests at once; retry later")
		case <-ctx.Done():
			wait.Stop()
			return Answer{}, ctx.Err()
		}
	}
	defer func() { <-s.turns }()
	lc, err := s.campaignsAt(ctx, req.Tenant)
	if err != nil {
		return Answer{}, err
	}
	version, camps := lc.version, lc.camps
	now := s.opts.Now()
	if ans, ok, err := s.quiet(ctx, req, version, now); ok || err != nil {
		return ans, err
	}
	eff := req.Since
	if eff > version {
		eff = 0 // as the catalog does: an unknown future version gets a full snapshot
	}
	var allow []protocol.Allowance
	var head uint64
	var refl *snapshot.Reflected
	var pre *protocol.SnapshotRead
	if s.reader != nil && s.refl != nil && s.led != nil {
		// The positions, Reflected, the codes changed after the agent's
		// position and (held.go) its allowances, in one read at one
		// position (quiet.go's reasons: no transaction, one page reload).
		r, err := s.reader.SnapshotRead(ctx, req.Tenant, req.Agent, req.Uses, eff > 0 && req.HasUses, s.escrow != nil, s.opts.MaxCodeChanges)
		if err != nil {
			return Answer{}, err
		}
		pre, head = &r, r.Codes
		refl = &snapshot.Reflected{Watermark: r.Watermark, Beyond: r.Beyond}
	}
	if s.opts.Ledger != nil {
		if allow, err = s.allowances(ctx, req.Tenant, req.Agent, camps, pre); err != nil {
			return Answer{}, err
		}
	}
	switch {
	case pre != nil: // read above
	case s.refl != nil && s.led != nil:
		// The code-use position and which of this agent's facts the code
		// states there count, read together (ledger.Reflected).
		refl = &snapshot.Reflected{}
		if head, refl.Watermark, refl.Beyond, err = s.refl.Reflected(ctx, req.Tenant, req.Agent); err != nil {
			return Answer{}, err
		}
	case s.led != nil:
		if head, err = s.led.CodeHead(ctx, req.Tenant); err != nil {
			return Answer{}, err
		}
	}
	var segs []snapshot.CustomerSegments
	var custHead uint64
	if s.cust != nil && pre != nil {
		custHead = pre.Customers
	} else if s.cust != nil {
		// Customer state has its own position: a poll reads it alone
		// when nothing changed (customers.go).
		if custHead, err = s.cust.CustomerHead(ctx, req.Tenant); err != nil {
			return Answer{}, err
		}
	} else if segs, err = s.segments(ctx, req.Tenant, version); err != nil {
		return Answer{}, err
	}
	ck := snapKey{req.Tenant, req.Agent}
	s.mu.Lock()
	ent, hit := s.snaps[ck]
	s.mu.Unlock()
	// The agent holds the body of ent.etag, so it is at ent's state.
	hit = hit && ent.version == version && ent.head == head && now.Before(ent.validUntil) && slices.Equal(ent.allow, allow) &&
		slices.EqualFunc(ent.segs, segs, sameSegments) && ent.cust == custHead
	if hit && req.IfNoneMatch != "" && ETagMatch(req.IfNoneMatch, ent.etag) {
		s.Unchanged.Add(1)
		return Answer{NotModified: true, ETag: ent.etag, Version: ent.version}, nil
	}
	ag, err := s.agent(ctx, ck, version)
	if err != nil {
		return Answer{}, err
	}
	bk := buildKey{tenant: req.Tenant, store: ag.Store, since: eff, version: version}
	if sig, ok := lc.exclusion(ag.Store); ok {
		// Shared by every store that excludes the same campaigns.
		bk.store, bk.exclusion = snapshot.Store{}, sig
	}
	shared, err := s.compose(ctx, req.Agent, ag.Store, bk, req.Uses, req.HasUses, pre, now)
	if err != nil {
		return Answer{}, err
	}
	snap := *shared // shared lists are read only from here on
	snap.Agent, snap.Envelope, snap.Allowances, snap.Reflected = req.Agent, ag.Envelope, allow, refl
	snap.Segments = segs
	if s.cust != nil {
		if req.HasCustomers || snap.Since == 0 {
			cs, err := s.customerState(ctx, req, version, custHead, snap.Since > 0 && snap.Since == version && snap.Version == version, now)
			if err != nil {
				return Answer{}, err
			}
			snap.Customers, snap.CustomersSince, snap.Tiers, snap.Segments = cs.head, cs.since, cs.tiers, cs.segs
		} else if snap.Segments, err = s.segments(ctx, req.Tenant, version); err != nil {
			// An agent before the sequence: tiers by catalog version
			// (the part's), segments whole.
			return Answer{}, err
		}
	}
	generated := snap.GeneratedAt
	snap.GeneratedAt = 0
	body, err := snapshot.Encode(&snap)
	if err != nil {
		return Answer{}, err
	}
	etag := snapshot.ETag(body)
	if snap.Version == version {
		s.mu.Lock()
		s.snaps[ck] = snapEntry{version: snap.Version, head: snap.Uses, allow: snap.Allowances, segs: segs, cust: custHead, etag: etag, at: now, validUntil: keysValidUntil(&snap, now)}
		s.mu.Unlock()
	}
	if req.IfNoneMatch != "" && ETagMatch(req.IfNoneMatch, etag) {
		s.Unchanged.Add(1)
		return Answer{NotModified: true, ETag: etag, Version: snap.Version}, nil
	}
	snap.GeneratedAt = generated
	if body, err = snapshot.Stamp(body, generated); err != nil {
		return Answer{}, err
	}
	s.Bodies.Add(1)
	return Answer{ETag: etag, Version: snap.Version, Snapshot: &snap, Body: body}, nil
}

// agentAt is an agent's record read at (or after) a catalog version.
type agentAt struct {
	version uint64
	ag      catalog.Agent
}

// limitedCampaigns are a tenant's active campaigns with a budget that
// allowances escrow, at one catalog version, sorted by ID.
type limitedCampaigns struct {
	version uint64
	camps   []catalog.Campaign
	segs    []string // the segments the active campaigns name, sorted (segments.go)
	// elig is every campaign's ID and store conditions at version, for
	// the stores' exclusion signatures; nil when the version moved while
	// they were read (each store then builds its own).
	elig []campaignElig
}

type campaignElig struct {
	id   protocol.CampaignID
	elig rules.Eligibility
}

// exclusion is the signature of the campaigns a store's snapshot leaves
// out (catalog.StoreExcludes), "" for none: the stores with one signature
// share their catalog parts. ok is false when it is not known at the
// version.
func (lc limitedCampaigns) exclusion(st snapshot.Store) (sig string, ok bool) {
	if lc.elig == nil {
		return "", false
	}
	var b strings.Builder
	for _, c := range lc.elig { // sorted by ID
		if catalog.StoreExcludes(c.elig, st) {
			b.WriteString(string(c.id))
			b.WriteByte(0)
		}
	}
	return b.String(), true
}

// campaignsAt returns the tenant's catalog version with its limited
// campaigns and every campaign's store conditions, read again only when
// the version moved.
func (s *Service) campaignsAt(ctx context.Context, tenant protocol.TenantID) (limitedCampaigns, error) {
	v, err := s.cat.Version(ctx, tenant)
	if err != nil {
		return limitedCampaigns{}, err
	}
	s.mu.Lock()
	lc, ok := s.camps[tenant]
	s.mu.Unlock()
	if ok && lc.version == v {
		return lc, nil
	}
	cps, err := s.cat.Campaigns(ctx, tenant, 0)
	if err != nil {
		return limitedCampaigns{}, err
	}
	lc = limitedCampaigns{version: v}
	if v2, err := s.cat.Version(ctx, tenant); err == nil && v2 == v {
		lc.elig = make([]campaignElig, 0, len(cps))
		for _, cp := range cps {
			lc.elig = append(lc.elig, campaignElig{cp.Rules.ID, cp.Rules.Eligibility})
		}
		slices.SortFunc(lc.elig, func(a, b campaignElig) int { return strings.Compare(string(a.id), string(b.id)) })
	}
	for _, cp := range cps {
		l := cp.Rules.Limits
		if cp.Rules.Status == rules.StatusActive && (l.MaxRedemptions > 0 || l.MaxDiscount > 0) {
			lc.camps = append(lc.camps, cp)
		}
		if cp.Rules.Status == rules.StatusActive {
			lc.segs = addSegments(lc.segs, cp.Rules.Eligibility.Segments)
		}
	}
	slices.SortFunc(lc.camps, func(a, b catalog.Campaign) int { return strings.Compare(string(a.Rules.ID), string(b.Rules.ID)) })
	s.mu.Lock()
	if cur, ok := s.camps[tenant]; !ok || cur.version <= v {
		s.camps[tenant] = lc
	}
	s.mu.Unlock()
	return lc, nil
}

// allowances lists what the agent holds of every active limited campaign,
// as the hub sees it (granted − returned − used and synced), by campaign.
// pre, when not nil and it carries them, is the ledger's read of the
// agent's escrow (held.go).
func (s *Service) allowances(ctx context.Context, tenant protocol.TenantID, agent protocol.AgentID, camps []catalog.Campaign, pre *protocol.SnapshotRead) ([]protocol.Allowance, error) {
	if s.opts.Allowances != nil {
		lim := make([]allowance.Limited, 0, len(camps))
		for _, cp := range camps {
			l := cp.Rules.Limits
			lim = append(lim, allowance.Limited{ID: cp.Rules.ID, Currency: cp.Rules.Currency, Count: l.MaxRedemptions > 0, Amount: l.MaxDiscount > 0})
		}
		if pre != nil && s.escrow != nil {
			return allowance.New(heldStore{Store: s.escrow, held: pre.Escrow}).ForSnapshot(ctx, tenant, agent, lim)
		}
		return s.opts.Allowances.ForSnapshot(ctx, tenant, agent, lim)
	}
	var out []protocol.Allowance
	for _, cp := range camps {
		l := cp.Rules.Limits
		n, amt, err := s.opts.Ledger.Outstanding(ctx, tenant, agent, cp.Rules.ID)
		if err != nil {
			return nil, err
		}
		a := protocol.Allowance{Tenant: tenant, Agent: agent, Campaign: cp.Rules.ID, Count: max(n, 0), Amount: max(amt, 0), Currency: cp.Rules.Currency}
		if l.MaxRedemptions == 0 {
			a.Count = -1
		}
		if l.MaxDiscount == 0 {
			a.Amount = -1
		}
		if a.Count == 0 || a.Amount == 0 {
			continue // nothing to redeem offline
		}
		out = append(out, a)
	}
	return out, nil
}

// snapKey and snapEntry remember each agent's last snapshot ETag.
type snapKey struct {
	tenant protocol.TenantID
	agent  protocol.AgentID
}

type snapEntry struct {
	version    uint64
	head       uint64 // the code-use position of the body
	allow      []protocol.Allowance
	segs       []snapshot.CustomerSegments // without a CustomerLedger
	cust       uint64                      // the customer-state position read before the body
	etag       string
	at         time.Time // when the body was built (Options.QuietMaxAge)
	validUntil time.Time // a retired key drops out of the snapshot then
}

// maxETagAge bounds how long a remembered ETag is trusted without a
// rebuild, whatever the keys say.
const maxETagAge = 10 * time.Minute

func keysValidUntil(snap *snapshot.Snapshot, now time.Time) time.Time {
	until := now.Add(maxETagAge)
	for _, k := range snap.Keys {
		if k.NotAfter != 0 {
			if t := time.UnixMicro(k.NotAfter); t.Before(until) {
				until = t
			}
		}
	}
	return until
}

// ETagMatch implements If-None-Match: a list of tags or "*"; weak
// comparison, as RFC 9110 asks for If-None-Match.
func ETagMatch(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}
