// Package agent is the edge daemon's core: it decides at the till, online
// or offline, from the hub's last snapshot, and records every redemption
// durably before the POS gets its answer.
//
// Decisions use the same rules engine as the hub (protocol/rules) and the
// same token verifier (protocol/token) with the snapshot's cached keys. The
// compiled snapshot is held in memory for the hot validate path; SQLite
// (store/agentdb) is the durable truth: the snapshot, redemptions, outbox,
// allowances, code usage, the sequence counter and the clock.
//
// Offline, the agent stays inside its allowances (escrowed budget slices)
// and its offline risk envelope, and refuses everything once its snapshot
// is older than the envelope allows. Syncing with the hub is the job of
// agent/uplink, which talks to the Agent through small interfaces.
package agent

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/decide"
	"github.com/punchcard/punchcard/protocol/rules"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/protocol/token"
	"github.com/punchcard/punchcard/store/agentdb"
)

// Log attribute keys.
const (
	LogKeyTxn      = "txn"
	LogKeyVersion  = "snapshot_version"
	LogKeyCampaign = "campaign"
)

// DefaultLowWater is the fraction of the last grant at or below which the
// agent asks the hub for more allowance, in the background.
const DefaultLowWater = 0.25

// DefaultAllowanceWait bounds how long a redeem waits for the hub to top up
// an exhausted allowance before refusing with allowance_exhausted.
const DefaultAllowanceWait = 2 * time.Second

// Link is the agent's view of its connection to the hub, implemented by
// agent/uplink. A nil Link means offline.
type Link interface {
	// Online reports whether the hub is reachable right now.
	Online() bool
	// RequestAllowance asks the hub for more of a campaign's budget and
	// returns the grant (additive). Reason codes: budget_exhausted,
	// campaign_stopped, unavailable.
	RequestAllowance(ctx context.Context, campaign protocol.CampaignID) (protocol.Allowance, error)
}

// Agent answers the POS. It is safe for concurrent use.
type Agent struct {
	Tenant protocol.TenantID
	ID     protocol.AgentID
	// Now is the wall clock; preset to time.Now.
	Now func() time.Time
	// Logger; preset to slog.Default().
	Logger *slog.Logger
	// AllowanceWait; preset to DefaultAllowanceWait.
	AllowanceWait time.Duration
	// OnlineTimeout bounds how long a decision waits for the hub when the
	// till asks online first (onlinefirst.go); 0 means
	// DefaultOnlineTimeout, negative never asks.
	OnlineTimeout time.Duration
	// LowWater is the fraction of the last grant at or below which the
	// agent tops up an allowance in the background; preset to
	// DefaultLowWater.
	LowWater float64
	// RequireWatermark makes the agent record nothing (redeem, earn) until
	// its database has heard the hub's watermark once (an Ack, which moves
	// the sequence counter past every seq the hub holds for this agent).
	// Set it whenever the agent syncs with a hub: a fresh database under a
	// re-enrolled agent id would otherwise reuse seqs the hub already
	// applied, and the hub would drop those redemptions as duplicates.
	RequireWatermark bool
	// POSToken, when set, is the token every POS API call but GET /healthz
	// must carry (Authorization: Bearer; see LoadPOSToken and posauth.go).
	// Empty turns the check off: cmd/agent allows that on a loopback
	// listener only. Read when Handler is called.
	POSToken string
	// POSHosts are host names (or addresses), besides localhost and
	// loopback addresses, that the POS API accepts in a request's Host
	// header: the till's own name when the POS reaches it over the LAN.
	POSHosts []string

	db        *agentdb.DB
	applyMu   gosync.Mutex // one snapshot apply at a time; sales never take it
	link      atomic.Pointer[linkBox]
	view      atomic.Pointer[view]
	heard     atomic.Bool   // the database heard the hub's watermark (monotonic)
	refilling atomic.Bool   // a background allowance top-up is running
	allowTurn chan struct{} // one allowance exchange with the hub at a time
	kept      keptFigures   // the hub's figures from online-first answers (hubfigure.go)
}

type linkBox struct{ Link }

// New returns an agent over db, restoring the stored snapshot if any. An
// agent without a snapshot refuses every reward with never_synced until its
// first sync.
func New(ctx context.Context, tenant protocol.TenantID, id protocol.AgentID, db *agentdb.DB) (*Agent, error) {
	a := &Agent{Tenant: tenant, ID: id, Now: time.Now, Logger: slog.Default(), AllowanceWait: DefaultAllowanceWait, LowWater: DefaultLowWater, db: db,
		allowTurn: make(chan struct{}, 1)}
	s, ok, err := db.LoadSnapshot(ctx)
	if err != nil {
		return nil, err
	}
	if ok {
		snap, err := snapshot.Decode(s.Body)
		if err != nil {
			return nil, fmt.Errorf("agent: stored snapshot: %w", err)
		}
		v, err := a.compile(snap)
		if err != nil {
			return nil, fmt.Errorf("agent: stored snapshot: %w", err)
		}
		deltas, err := db.SnapshotDeltas(ctx)
		if err != nil {
			return nil, err
		}
		for _, b := range deltas {
			d, err := snapshot.Decode(b)
			if err != nil {
				return nil, fmt.Errorf("agent: stored snapshot delta: %w", err)
			}
			if v, err = a.layer(v, d); err != nil {
				return nil, fmt.Errorf("agent: stored snapshot delta: %w", err)
			}
		}
		v.etag = s.ETag
		a.view.Store(v)
	}
	return a, nil
}

// layer applies delta d to the view v: incrementally when it can, else
// merged into a full snapshot and compiled.
func (a *Agent) layer(v *view, d *snapshot.Snapshot) (*view, error) {
	if nv, ok := a.incremental(v, d); ok {
		return nv, nil
	}
	full, err := snapshot.Merge(v.full(), d)
	if err != nil {
		return nil, err
	}
	return a.compile(full)
}

// SnapshotUses is the code-use position of the snapshot in use
// (snapshot.Snapshot.Uses): the sync client asks for the codes changed
// after it.
func (a *Agent) SnapshotUses() uint64 {
	v := a.view.Load()
	if v == nil {
		return 0
	}
	return v.snap.Uses
}

// SnapshotCustomers is the customer-state position of the snapshot in use
// (snapshot.Snapshot.Customers): the sync client asks for the customers
// whose tier or segments changed after it.
func (a *Agent) SnapshotCustomers() uint64 {
	v := a.view.Load()
	if v == nil {
		return 0
	}
	return v.snap.Customers
}

// SetLink connects the agent to its sync client.
func (a *Agent) SetLink(l Link) { a.link.Store(&linkBox{l}) }

// DB is the agent's database, for the sync client.
func (a *Agent) DB() *agentdb.DB { return a.db }

func (a *Agent) online() (Link, bool) {
	b := a.link.Load()
	if b == nil || b.Link == nil {
		return nil, false
	}
	return b.Link, b.Online()
}

// Synced reports whether the agent has a snapshot.
func (a *Agent) Synced() bool { return a.view.Load() != nil }

// SnapshotVersion is the version in use and its ETag (0 and "" before the
// first sync).
func (a *Agent) SnapshotVersion() (uint64, string) {
	v := a.view.Load()
	if v == nil {
		return 0, ""
	}
	return v.snap.Version, v.etag
}

// view is a compiled snapshot: everything the hot path needs, in memory.
// It is never changed once published: an apply builds a new view and
// swaps it in (Agent.view), so a sale reads one consistent view and never
// waits for an apply. Code-use deltas are laid over the compiled base as
// a small overlay (over) instead of recompiling the whole snapshot; snap
// then carries the delta's version, position, keys, envelope and
// allowances but the base's Codes (full() merges them).
type view struct {
	snap     *snapshot.Snapshot
	etag     string
	cat      *rules.Catalog // rules.Cat
	rules    *decide.Rules
	keys     token.KeyMap
	codes    map[protocol.CodeID]*snapshot.Code // by snapshot.LookupID
	over     map[protocol.CodeID]*snapshot.Code // newer entries than codes (and snap.Codes)
	revCode  map[protocol.CodeID]bool           // by snapshot.LookupID
	revToken map[protocol.CodeID]bool
	store    rules.Store
	limited  map[protocol.CampaignID]bool
	env      agentdb.Envelope
	segs     map[protocol.CustomerID][]string // snap.Segments by customer (segments.go)
	tiers    map[protocol.CustomerID]string   // the snapshot's customer tiers (Snapshot.Tiers)
}

func (a *Agent) compile(s *snapshot.Snapshot) (*view, error) {
	if s.Tenant != a.Tenant || s.Agent != a.ID {
		return nil, protocol.Errorf(protocol.CodeWrongTenant, "snapshot is for %s/%s, this agent is %s/%s", s.Tenant, s.Agent, a.Tenant, a.ID)
	}
	if s.IsDelta() {
		return nil, protocol.Errorf(protocol.CodeConflict, "cannot start from a delta snapshot")
	}
	rs, err := decide.Compile(s.Campaigns)
	if err != nil {
		return nil, err
	}
	st, err := rules.NewStore(s.Store.ID, s.Store.Region, s.Store.TimeZone)
	if err != nil {
		return nil, err
	}
	v := &view{
		snap: s, cat: rs.Cat, rules: rs, store: st,
		keys:     make(token.KeyMap, len(s.Keys)),
		codes:    make(map[protocol.CodeID]*snapshot.Code, len(s.Codes)),
		revCode:  map[protocol.CodeID]bool{},
		revToken: map[protocol.CodeID]bool{},
		limited:  map[protocol.CampaignID]bool{},
		env:      envelope(s.Envelope),
	}
	for _, k := range s.Keys {
		pk := token.PublicKey{Tenant: s.Tenant, KeyID: k.KID, Key: k.Public}
		if k.NotAfter != 0 {
			pk.NotAfter = time.UnixMicro(k.NotAfter)
		}
		v.keys[k.KID] = pk
	}
	for i := range s.Codes {
		v.codes[s.Codes[i].Code] = &s.Codes[i]
	}
	for _, r := range s.Revocations {
		if r.Kind == snapshot.RevokeToken {
			v.revToken[r.ID] = true
		} else {
			v.revCode[r.ID] = true
		}
	}
	for _, c := range s.Campaigns {
		if c.Limits.MaxRedemptions > 0 || c.Limits.MaxDiscount > 0 {
			v.limited[c.ID] = true
		}
	}
	v.segs = segmentIndex(s.Segments)
	if len(s.Tiers) > 0 {
		v.tiers = make(map[protocol.CustomerID]string, len(s.Tiers))
		for _, t := range s.Tiers {
			v.tiers[t.Customer] = t.Tier
		}
	}
	return v, nil
}

// code looks a code up by its snapshot.LookupID.
func (v *view) code(id protocol.CodeID) (*snapshot.Code, bool) {
	if c, ok := v.over[id]; ok {
		return c, true
	}
	c, ok := v.codes[id]
	return c, ok
}

// full is the view's snapshot with the overlay merged into its Codes.
func (v *view) full() *snapshot.Snapshot {
	if len(v.over) == 0 {
		return v.snap
	}
	s := *v.snap
	s.Codes = make([]snapshot.Code, 0, len(v.snap.Codes)+len(v.over))
	for _, c := range v.snap.Codes {
		if _, ok := v.over[c.Code]; !ok {
			s.Codes = append(s.Codes, c)
		}
	}
	for _, c := range v.over {
		s.Codes = append(s.Codes, *c)
	}
	s.Normalize()
	return &s
}

// incremental lays delta d over v without recompiling, when d changes
// no campaign or revocation (a code-use increment, new codes, customer tiers, keys or
// envelope), fits v's version and code-use position, and is for the same
// store and code key. Its cost is d's size plus v's overlay.
func (a *Agent) incremental(v *view, d *snapshot.Snapshot) (*view, bool) {
	b := v.snap
	if !d.IsDelta() || d.Since != b.Version || len(d.Campaigns) > 0 || len(d.Withdrawn) > 0 || len(d.Revocations) > 0 ||
		d.Tenant != b.Tenant || d.Agent != b.Agent || d.Store != b.Store || !bytes.Equal(d.CodeKey, b.CodeKey) || !snapshot.UsesFit(b, d) || !snapshot.CustomersFit(b, d) {
		return nil, false
	}
	nv := *v
	hdr := *b
	hdr.Version, hdr.Uses, hdr.Keys, hdr.Allowances, hdr.Envelope, hdr.GeneratedAt = d.Version, d.Uses, d.Keys, d.Allowances, d.Envelope, d.GeneratedAt
	hdr.Reflected = d.Reflected
	hdr.Customers, hdr.CustomersSince = d.Customers, 0
	// Whole lists, a customer-state delta (laid over), or a hub before
	// the sequence (tiers by catalog version, segments whole).
	snapshot.MergeCustomers(&hdr, b, d)
	nv.segs = segmentIndex(hdr.Segments)
	if len(d.Tiers) > 0 || d.Customers > 0 {
		nv.tiers = nil
		if len(hdr.Tiers) > 0 {
			nv.tiers = make(map[protocol.CustomerID]string, len(hdr.Tiers))
		}
		for _, t := range hdr.Tiers {
			nv.tiers[t.Customer] = t.Tier
		}
	}
	nv.snap = &hdr
	nv.over = make(map[protocol.CodeID]*snapshot.Code, len(v.over)+len(d.Codes))
	for id, c := range v.over {
		nv.over[id] = c
	}
	for i := range d.Codes {
		nv.over[d.Codes[i].Code] = &d.Codes[i]
	}
	nv.keys = make(token.KeyMap, len(d.Keys))
	for _, k := range d.Keys {
		pk := token.PublicKey{Tenant: d.Tenant, KeyID: k.KID, Key: k.Public}
		if k.NotAfter != 0 {
			pk.NotAfter = time.UnixMicro(k.NotAfter)
		}
		nv.keys[k.KID] = pk
	}
	nv.env = envelope(d.Envelope)
	return &nv, true
}

func envelope(e snapshot.RiskEnvelope) agentdb.Envelope {
	f := func(v int64) int64 {
		if v < 0 {
			return math.MaxInt64
		}
		return v
	}
	return agentdb.Envelope{PerRedemption: f(e.PerRedemption), PerCampaign: f(e.PerCampaign), Total: f(e.TotalAmount), Count: f(e.Count)}
}

// applyHook, set by tests only, runs inside ApplySnapshot while it holds
// the apply lock.
var applyHook func()

// DefaultCompactAfter is how many deltas the agent lays over its stored
// snapshot before it folds them into a full one.
const DefaultCompactAfter = 64

// ApplySnapshot decodes a snapshot body from the hub (full, or a delta on
// the version in use), stores it durably, applies its allowances and
// switches the decisions to it. It returns the version now in use. A
// delta that does not fit the version in use returns
// snapshot.ErrBaseMismatch; the caller then fetches a full snapshot.
//
// A delta that changes no campaign or revocation (code uses and spending,
// new codes, keys, envelope: the frequent kind) is laid over the view in
// use (incremental) and appended to the database as received, without
// decoding, merging, re-encoding or recompiling the whole snapshot; every
// DefaultCompactAfter such deltas are folded into a full one. Sales never
// wait for an apply: it builds a new view aside and swaps it in, and
// holds the database's write lock only for its own small writes (a full
// snapshot's body is one write of its size).
func (a *Agent) ApplySnapshot(ctx context.Context, body []byte, etag string) (uint64, error) {
	s, err := snapshot.Decode(body)
	if err != nil {
		return 0, err
	}
	a.applyMu.Lock()
	defer a.applyMu.Unlock()
	if applyHook != nil {
		applyHook() // tests: an apply in progress
	}
	var v *view
	if s.IsDelta() {
		cur := a.view.Load()
		if cur == nil {
			return 0, snapshot.ErrBaseMismatch
		}
		if nv, ok := a.incremental(cur, s); ok {
			nv.etag = etag
			n, err := a.db.AppendSnapshotDelta(ctx, agentdb.Snapshot{Version: s.Version, ETag: etag, Body: body, At: a.Now(), Reflected: reflectedWM(s)})
			if err != nil {
				return 0, err
			}
			if err := a.grants(ctx, s.Allowances); err != nil {
				return 0, err
			}
			a.view.Store(nv)
			if n >= DefaultCompactAfter {
				if err := a.compact(ctx, nv); err != nil {
					a.Logger.Warn("agent: snapshot compaction", "err", err)
				}
			}
			a.Logger.Debug("agent: snapshot delta applied", LogKeyVersion, s.Version, "codes", len(s.Codes))
			return s.Version, nil
		}
		if s, err = snapshot.Merge(cur.full(), s); err != nil {
			return 0, err
		}
		if body, err = snapshot.Encode(s); err != nil {
			return 0, err
		}
	}
	if v, err = a.compile(s); err != nil {
		return 0, err
	}
	v.etag = etag
	if err := a.db.SaveSnapshot(ctx, agentdb.Snapshot{Version: s.Version, ETag: etag, Body: body, At: a.Now(), Reflected: reflectedWM(s)}); err != nil {
		return 0, err
	}
	if err := a.grants(ctx, s.Allowances); err != nil {
		return 0, err
	}
	a.view.Store(v)
	a.Logger.Info("agent: snapshot applied", LogKeyVersion, s.Version, "campaigns", len(s.Campaigns), "codes", len(s.Codes))
	return s.Version, nil
}

// grants reconciles the allowances with the hub's view of this till's
// grants in the snapshot: a grant whose answer was lost is adopted here
// (agentdb.DB.Adopt), so the till gets its share without asking again.
func (a *Agent) grants(ctx context.Context, als []protocol.Allowance) error {
	for _, al := range als {
		if al.Campaign == "" || al.Grant == 0 {
			continue
		}
		if ok, err := a.db.Adopt(ctx, al); err != nil {
			return err
		} else if ok {
			a.Logger.Info("agent: allowance adopted from the snapshot", LogKeyCampaign, al.Campaign, "grant", al.Grant)
		}
	}
	return nil
}

// compact folds the deltas laid over v into one full stored snapshot and
// swaps in its compiled view. The caller holds applyMu.
func (a *Agent) compact(ctx context.Context, v *view) error {
	full := v.full()
	body, err := snapshot.Encode(full)
	if err != nil {
		return err
	}
	nv, err := a.compile(full)
	if err != nil {
		return err
	}
	nv.etag = v.etag
	if err := a.db.SaveSnapshot(ctx, agentdb.Snapshot{Version: full.Version, ETag: v.etag, Body: body, At: a.Now(), Reflected: reflectedWM(full)}); err != nil {
		return err
	}
	a.view.Store(nv)
	return nil
}

// Grant applies an allowance grant from the hub.
func (a *Agent) Grant(ctx context.Context, al protocol.Allowance) error {
	_, err := a.db.Grant(ctx, al)
	return err
}

// Input is one thing the customer presents: a scanned token text, a plain
// code or a gift card number, with the amount to spend for gift cards.
type Input struct {
	Code string `json:"code,omitempty"`
	// Campaign is a points burn as payment in this points campaign
	// (exactly one of Code and Campaign).
	Campaign protocol.CampaignID `json:"campaign,omitempty"`
	Amount   int64               `json:"amount,omitempty"` // gift card spend or points burn asked for; 0 = as much as the order can use
}

// Basket is the POS's question: the order, who is buying, what they present.
type Basket struct {
	Order       protocol.Order     `json:"order"`
	Customer    *protocol.Customer `json:"customer,omitempty"`
	Redeemables []Input            `json:"redeemables,omitempty"`
	// Statement is a points statement's text as scanned from the
	// customer's QR (statement.go): what lets an offline till take their
	// points as payment.
	Statement string `json:"points_statement,omitempty"`
}

// decision is a full evaluation, ready to answer or commit.
type decision struct {
	v        *view
	out      *decide.Outcome
	dec      rules.Decision // out.Decision: one result per input in order, then automatic campaigns
	offline  bool
	customer *protocol.Customer
	grants   map[protocol.CampaignID]uint64 // allowance grant numbers evaluated with
	sale     *protocol.Sale                 // the request as a fact carries it (sale), made once
	opts     evalOpts
	hubRef   string // the hub's reference when it was asked online first
	stmt     *stmt  // the basket's points statement, nil when none
}

// item is the resolution of input i.
func (d *decision) item(i int) *decide.Item {
	if i < 0 || i >= len(d.out.Items) {
		return nil
	}
	return &d.out.Items[i]
}

// saleOf is what the decision's facts carry for the hub to re-derive it,
// made on first use: Validate never needs it.
func (d *decision) saleOf() *protocol.Sale {
	if d.sale == nil {
		d.sale = saleOf(d.v.cat, d.out.Request)
		d.sale.Earned = d.out.SaleEarned()
	}
	return d.sale
}

// prepareAs checks the preconditions every decision shares; offline set
// means offline whatever the link says (the hub did not answer in time).
func (a *Agent) prepareAs(offline bool) (*view, bool, error) {
	v := a.view.Load()
	if v == nil {
		return nil, false, protocol.NewError(protocol.CodeNeverSynced)
	}
	_, on := a.online()
	on = on && !offline
	if !on {
		max := v.snap.Envelope.MaxStaleSeconds
		if max < 0 {
			return v, true, nil
		}
		syncedAt, err := a.db.SyncedAt(context.Background())
		if err != nil {
			return nil, false, err
		}
		if a.Now().Sub(syncedAt) > time.Duration(max)*time.Second {
			return nil, false, protocol.NewError(protocol.CodeSnapshotStale)
		}
	}
	return v, !on, nil
}

// evaluate runs the one decision pipeline (protocol/decide) with what the
// till knows (tillFacts): its snapshot, its own facts and its allowances.
func (a *Agent) evaluate(ctx context.Context, b Basket, noEarn bool) (*decision, error) {
	return a.evaluateWith(ctx, b, noEarn, evalOpts{})
}

// evalOpts are the variants of a till decision: offline although the link
// is up (the hub did not answer in time), or with the hub's figures (it
// did).
type evalOpts struct {
	offline bool
	hub     *decide.AuthorizeResponse
}

func (a *Agent) evaluateWith(ctx context.Context, b Basket, noEarn bool, opts evalOpts) (*decision, error) {
	v, offline, err := a.prepareAs(opts.offline)
	if err != nil {
		return nil, err
	}
	// Milliseconds, as the fact's Sale carries the moment: the hub then
	// re-derives with the very time the till decided with.
	now := time.UnixMilli(a.Now().UnixMilli())
	src := &tillFacts{a: a, v: v, now: now, hub: opts.hub}
	if offline && opts.hub == nil {
		// Only an offline decision takes points on a statement
		// (statement.go); online, the hub knows the points.
		src.stmt = a.statementOf(v, b, now)
	}
	if st := src.stmt; st != nil {
		if st.err != nil {
			return nil, st.err
		}
		if b.Customer == nil {
			b.Customer = &protocol.Customer{ID: st.s.Customer} // the statement's customer is the one buying
		}
	}
	req := decide.Request{Tenant: a.Tenant, Where: decide.Where{Store: v.store, Group: v.snap.Store.Group}, Order: b.Order,
		Customer: b.Customer, Now: now, NoEarn: noEarn}
	for _, in := range b.Redeemables {
		// The till's scanner field cannot tell a code from a token: the
		// pipeline resolves a token-prefixed text that is no known code
		// as a token.
		req.Presented = append(req.Presented, decide.Presented{Code: in.Code, Campaign: in.Campaign, Amount: in.Amount})
	}
	out, err := decide.Decide(ctx, src, v.rules, req)
	if err != nil {
		return nil, err
	}
	d := &decision{v: v, out: out, dec: out.Decision, offline: offline, customer: out.Customer, grants: src.grants, opts: opts, stmt: src.stmt}
	if opts.hub != nil {
		d.hubRef = opts.hub.Ref
		d.hubRefusals(opts.hub.Decision)
		d.laggingCodes(opts.hub) // fresh.go
	}
	return d, nil
}

// saleOf is what the fact carries of req for the hub to re-run the
// decision: the compacted order lines, the redeemables as presented (the
// hub looks up their campaigns and limits itself), the customer, the
// moment and the allowances.
func saleOf(cat *rules.Catalog, req rules.Request) *protocol.Sale {
	o := cat.CompactOrder(req.Order)
	s := &protocol.Sale{Lines: o.Lines, Shipping: o.Shipping, Customer: req.Customer, At: req.Now.UnixMilli(), Points: req.Points}
	for _, r := range req.Redeemables {
		k := protocol.PresentedCode
		switch r.Kind {
		case rules.RedeemToken:
			k = protocol.PresentedToken
		case rules.RedeemGiftCard:
			k = protocol.PresentedGiftCard
		case rules.RedeemPoints:
			s.Presented = append(s.Presented, protocol.Presented{Kind: protocol.PresentedPoints, Code: protocol.CodeID(r.Campaign), Amount: r.Amount})
			continue
		}
		s.Presented = append(s.Presented, protocol.Presented{Kind: k, Code: r.Code, Amount: r.Amount})
	}
	for id, b := range req.Budgets {
		s.Budgets = append(s.Budgets, protocol.SaleBudget{Campaign: id, Count: b.Count, Amount: b.Amount})
	}
	slices.SortFunc(s.Budgets, func(a, b protocol.SaleBudget) int { return strings.Compare(string(a.Campaign), string(b.Campaign)) })
	return s
}

// reflectedOf is the snapshot's account of this agent's facts its code
// figures count, for agentdb.CodeFigure; nil from a hub before it.
func reflectedOf(s *snapshot.Snapshot) *agentdb.Reflected {
	if s.Reflected == nil {
		return nil
	}
	return &agentdb.Reflected{Watermark: s.Reflected.Watermark, Beyond: s.Reflected.Beyond}
}

func reflectedWM(s *snapshot.Snapshot) uint64 {
	if s.Reflected == nil {
		return 0
	}
	return s.Reflected.Watermark
}

// Outcome is one redeemable's answer.
type Outcome struct {
	Code     string              `json:"code,omitempty"`
	Campaign protocol.CampaignID `json:"campaign,omitempty"`
	Applied  bool                `json:"applied"`
	Reason   protocol.Code       `json:"reason,omitempty"`
	Message  string              `json:"message,omitempty"`
	Discount int64               `json:"discount,omitempty"`
	Spend    int64               `json:"spend,omitempty"`
}

// Quote is the answer to validate: what the basket gets, per redeemable.
type Quote struct {
	Offline  bool           `json:"offline"`
	Currency string         `json:"currency"`
	Subtotal int64          `json:"subtotal"`
	Discount int64          `json:"discount"`
	Total    int64          `json:"total"`
	Paid     int64          `json:"paid,omitempty"`
	Due      int64          `json:"due"`
	Points   int64          `json:"points_earned,omitempty"`
	Results  []Outcome      `json:"results"`
	Decision rules.Decision `json:"decision"`
	// HubRef is the hub's reference of an online-first decision (the hub
	// was asked and answered); empty when the till decided alone.
	HubRef string `json:"hub_ref,omitempty"`
	// Error is the first refusal, when any redeemable was refused.
	Error *protocol.Error `json:"error,omitempty"`
}

func (d *decision) quote(in []Input) Quote {
	q := Quote{Offline: d.offline, Currency: string(d.dec.Currency), Subtotal: d.dec.Subtotal,
		Discount: d.dec.Discount + d.dec.ShippingDiscount, Total: d.dec.Total, Paid: d.dec.Paid, Due: d.dec.Due,
		Points: d.dec.PointsEarned, Decision: d.dec, HubRef: d.hubRef}
	for _, res := range d.dec.Results {
		if res.Index < 0 {
			if res.Applied {
				q.Results = append(q.Results, Outcome{Campaign: res.Campaign, Applied: true, Discount: res.Discount + res.ShippingDiscount, Spend: res.Spend})
			}
			continue
		}
		o := Outcome{Code: in[res.Index].Code, Campaign: res.Campaign, Applied: res.Applied, Discount: res.Discount + res.ShippingDiscount, Spend: res.Spend}
		if it := d.item(res.Index); it != nil && it.Refused != nil {
			o.Campaign = ""
		}
		if !res.Applied {
			o.Reason, o.Message = res.Reason, res.Message
			if o.Reason == protocol.CodeBudgetExhausted && d.v.limited[res.Campaign] {
				o.Reason, o.Message = protocol.CodeAllowanceExhausted, protocol.CodeAllowanceExhausted.Message()
			}
			if o.Message == "" {
				o.Message = o.Reason.Message()
			}
			if q.Error == nil {
				q.Error = &protocol.Error{Code: o.Reason, Message: o.Message, Field: fmt.Sprintf("redeemables[%d]", res.Index)}
			}
		}
		q.Results = append(q.Results, o)
	}
	return q
}

// Validate answers "what does this basket get?" without side effects.
// Reason codes: never_synced, snapshot_stale, invalid_input,
// too_many_redeemables, and per redeemable every code of token.Verify and
// rules.Evaluate, code_unknown, code_revoked and allowance_exhausted.
//
// It reports the decision Redeem would make in the same state: online, an
// exhausted allowance is topped up first exactly as Redeem does, points
// are those Redeem records, and a redeemable that needs the hub offline is
// refused with needs_hub. What it cannot foresee is what changes before
// the redeem (other sales using the allowance or a single-use code, an
// allowance recall, the connection dropping) and the offline risk
// envelope's running totals (offline_limit_reached), checked only when
// the redemption is recorded.
func (a *Agent) Validate(ctx context.Context, b Basket) (Quote, error) {
	d, q, err := a.decide(ctx, b, "", false)
	if err != nil {
		return Quote{}, err
	}
	if q.Error == nil {
		for _, res := range d.dec.Results {
			if !res.Applied {
				continue
			}
			if i, ok := d.needsHub(res); ok {
				e := protocol.NewError(protocol.CodeNeedsHub)
				q.Results[i].Applied, q.Results[i].Reason, q.Results[i].Message = false, e.Code, e.Message
				q.Error = &protocol.Error{Code: e.Code, Message: e.Message, Field: fmt.Sprintf("redeemables[%d]", i)}
				break
			}
		}
	}
	return q, nil
}

// decide evaluates the basket as Validate and Redeem both do: online, an
// exhausted allowance is topped up once before the answer.
//
// Online, a decision that depends on what only the hub knows (a
// single-use code or token, a gift card, a per-customer limit, a points
// burn: decide.Outcome.NeedsHub) is asked of the hub first
// (onlinefirst.go), with a hold for txn when hold is set (a redeem).
func (a *Agent) decide(ctx context.Context, b Basket, txn string, hold bool) (*decision, Quote, error) {
	d, err := a.evaluate(ctx, b, false)
	if err != nil {
		return nil, Quote{}, err
	}
	if !d.offline {
		if d, err = a.onlineFirst(ctx, b, d, txn, hold); err != nil {
			return nil, Quote{}, err
		}
	}
	q := d.quote(b.Redeemables)
	if q.Error != nil && q.Error.Code == protocol.CodeAllowanceExhausted && a.topUp(ctx, d) {
		if d, err = a.evaluateWith(ctx, b, false, d.opts); err != nil {
			return nil, Quote{}, err
		}
		q = d.quote(b.Redeemables)
	}
	return d, q, nil
}

// needsHub reports whether an applied result may only be recorded online
// (a single-use code or gift card not bound to this store, while offline,
// with an envelope that allows no such risk), and the input it came from.
func (d *decision) needsHub(res rules.Result) (int, bool) {
	it := d.item(res.Index)
	if !d.offline || it == nil {
		return 0, false
	}
	return res.Index, it.Single && !it.Bound && (d.v.env.PerRedemption == 0 || d.v.env.Count == 0)
}
