// Package fleet simulates a chain's tills against a hub, for the ingest and
// fleet benchmarks (docs/operations.md, Benchmarks) and `punchcard fleet`.
//
// A simulated till is small but speaks the real protocol with its own
// credentials: its own MQTT client (the agent's client ID, username and
// persistent session), the agent's topics, every down message checked with
// protocol.DecodeDown against the pinned hub key, heartbeats (AgentState),
// snapshot fetches over HTTP as the agent does them (a full one on
// connect, then on every announcement whose version or ETag differs, with
// If-None-Match), an allowance of the limited campaign requested over HTTP
// and topped up as the agent does (at its low-water mark, in the
// background after a sale and after every sync), and sales decided with protocol/rules on the
// fetched rules: 1-2 redemptions per message (the automatic promotion,
// plus the code in about half the sales), each fact carrying its Sale so
// the hub re-derives it, customers on half the sales. What it leaves out is
// the till's own SQLite outbox: unacknowledged facts stay in memory and
// are republished on Resend or after ResendAfter without an ack.
//
// It measures what a till sees: ack latency (publish to the signed Ack
// covering the fact), every fact acknowledged exactly once, the time each
// till first saw each announced snapshot version and fetched it.
package fleet

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/punchcard/punchcard/agent/uplink"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/rules"
	"github.com/punchcard/punchcard/protocol/snapshot"
)

// Cred is one till's registration.
type Cred struct {
	Tenant protocol.TenantID
	Agent  protocol.AgentID
	Secret string
}

// FetchMode says when a till fetches its snapshot after the first.
type FetchMode string

// Fetch modes.
const (
	FetchAgent   FetchMode = "agent"   // as agent/uplink: on every announcement whose version or ETag differs
	FetchVersion FetchMode = "version" // only when the announced version is newer
	FetchNone    FetchMode = "none"    // never (announcements are only recorded)
)

// Defaults.
const (
	DefaultHeartbeat   = 30 * time.Second // agent/uplink.DefaultHeartbeatEvery
	DefaultResendAfter = 10 * time.Second
	DefaultConnects    = 32
	DefaultCustomers   = 2000
	DefaultKeepAlive   = uplink.DefaultKeepAlive // as agent/uplink
	DefaultMaxConns    = 512                     // HTTP connections to the hub, shared by the tills
	DefaultIdleConn    = 30 * time.Second        // an idle HTTP connection is closed after this
	DefaultPollEvery   = 30 * time.Second        // agent/uplink.DefaultPollEvery
	// VerifyFirst is how many of each till's first down messages are
	// verified whatever Options.VerifyEvery says.
	VerifyFirst = 1
)

// Options configure a Fleet.
type Options struct {
	BrokerURL string // the hub's broker, tcp://host:port
	HubURL    string // the hub's HTTP API, http://host:port
	HubKey    ed25519.PublicKey
	Tills     []Cred
	// Heartbeat is the AgentState period (default DefaultHeartbeat); each
	// till's first one comes at a random point of the first period.
	Heartbeat   time.Duration
	ResendAfter time.Duration // republish unacknowledged facts after this long without an ack
	Connects    int           // connections made at once by Start
	Customers   int           // size of the customer pool
	Fetch       FetchMode     // default FetchAgent
	// PollEvery is, with FetchAgent, how often each till asks for its
	// snapshot without an announcement, as the agent does for code uses
	// made elsewhere (a delta since its code-use position, or a 304);
	// each till's first poll comes at a random point of the first period.
	// Default DefaultPollEvery; negative: no poll.
	PollEvery time.Duration
	// Record keeps every message's facts (Sent), for a baseline that
	// applies the same facts without MQTT.
	Record bool
	// VerifyEvery is how often the tills check a down message's Ed25519
	// signature after each till's first VerifyFirst ones: every
	// VerifyEvery-th message the fleet receives (1: every message, the
	// default). Every message is still
	// decoded and checked for its type, tenant and recipient. A real till
	// verifies each one on its own CPU; the simulated tills of a fleet
	// benchmark share the hub's machine, where verifying ~900 Acks a
	// second cost more CPU than anything else the simulator does
	// (~120 µs each), so the benchmark samples (DefaultBenchVerifyEvery).
	VerifyEvery int
	Logger      *slog.Logger
}

// Fleet is a set of simulated tills.
type Fleet struct {
	opts  Options
	tills []*till
	http  *http.Client
	log   *slog.Logger

	rate  atomic.Uint64 // float64 bits: redemptions per till per second (open loop)
	downs atomic.Uint64 // down messages received past each till's first VerifyFirst

	rmu    sync.Mutex
	rules  map[uint64]*rules.Catalog // compiled rules by catalog version
	stores map[snapshot.Store]rules.Store

	cmu sync.Mutex
	// saleMu is held shared by each open-loop sale and exclusively by
	// SetRate, so that a rate change waits for the sales in progress.
	saleMu  sync.RWMutex
	changed chan struct{} // closed and replaced when rate changes

	wg     sync.WaitGroup
	ctx    context.Context
	cancel context.CancelFunc
}

// New returns a fleet; Start connects it.
func New(opts Options) (*Fleet, error) {
	if opts.BrokerURL == "" || opts.HubURL == "" {
		return nil, errors.New("fleet: broker and hub URLs are required")
	}
	if len(opts.HubKey) != ed25519.PublicKeySize {
		return nil, errors.New("fleet: the hub's public key is required")
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = DefaultHeartbeat
	}
	if opts.ResendAfter <= 0 {
		opts.ResendAfter = DefaultResendAfter
	}
	if opts.Connects <= 0 {
		opts.Connects = DefaultConnects
	}
	if opts.Customers <= 0 {
		opts.Customers = DefaultCustomers
	}
	if opts.Fetch == "" {
		opts.Fetch = FetchAgent
	}
	if opts.PollEvery == 0 {
		opts.PollEvery = DefaultPollEvery
	}
	if opts.VerifyEvery <= 0 {
		opts.VerifyEvery = 1
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// The tills share one pool of at most DefaultMaxConns connections to
	// the hub (requests beyond it wait for one): a fleet of N tills
	// already holds N MQTT connections in this process and in the hub's,
	// and N more HTTP connections at an announcement's burst of fetches
	// would pass a 20,000 open-files limit at N = 10,000 (docs/operations.md,
	// Open files). Idle ones are closed after DefaultIdleConn.
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost, tr.MaxConnsPerHost = DefaultMaxConns, DefaultMaxConns, DefaultMaxConns
	tr.IdleConnTimeout = DefaultIdleConn
	f := &Fleet{opts: opts, http: &http.Client{Transport: tr, Timeout: 60 * time.Second}, log: opts.Logger,
		rules: map[uint64]*rules.Catalog{}, stores: map[snapshot.Store]rules.Store{}, changed: make(chan struct{})}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	for i, c := range opts.Tills {
		f.tills = append(f.tills, newTill(f, i, c))
	}
	return f, nil
}

// Start connects every till (Options.Connects at a time), each then
// subscribes, fetches its snapshot and requests its allowance, as an agent
// does on start. It returns when every till is ready or the first fails.
func (f *Fleet) Start(ctx context.Context) error {
	sem := make(chan struct{}, f.opts.Connects)
	errc := make(chan error, len(f.tills))
	var wg sync.WaitGroup
	for _, t := range f.tills {
		sem <- struct{}{}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := t.start(ctx); err != nil {
				errc <- fmt.Errorf("%s: %w", t.cred.Agent, err)
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, t := range f.tills {
		f.wg.Add(1)
		go t.run()
	}
	return nil
}

// SetRate sets the open-loop load: each till makes a sale (1-2
// redemptions, 1.5 on average) at jittered intervals (uniform between 0.5
// and 1.5 times the mean) so that it sends perTill redemptions per second
// on average. 0 stops the sales: when it returns no open-loop sale is in
// progress and none will start.
func (f *Fleet) SetRate(perTill float64) {
	f.saleMu.Lock()
	f.rate.Store(mathFloat64bits(perTill))
	f.saleMu.Unlock()
	f.cmu.Lock()
	close(f.changed)
	f.changed = make(chan struct{})
	f.cmu.Unlock()
}

func (f *Fleet) rateNow() (float64, <-chan struct{}) {
	f.cmu.Lock()
	defer f.cmu.Unlock()
	return mathFloat64frombits(f.rate.Load()), f.changed
}

// Burst is the closed loop: every till makes sales sales, each as soon as
// the previous one's facts are acknowledged (one message in flight per
// till). It returns when all are acknowledged.
func (f *Fleet) Burst(ctx context.Context, sales int) error {
	errc := make(chan error, len(f.tills))
	var wg sync.WaitGroup
	for _, t := range f.tills {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range sales {
				if err := t.saleAndWait(ctx); err != nil {
					errc <- fmt.Errorf("%s: %w", t.cred.Agent, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	return <-errc
}

// Drain waits until every fact sent is acknowledged.
func (f *Fleet) Drain(ctx context.Context) error {
	for {
		if f.Stats().Pending == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("fleet: %d facts unacknowledged: %w", f.Stats().Pending, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Close stops the tills and disconnects them.
func (f *Fleet) Close() {
	f.cancel()
	f.wg.Wait()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	for _, t := range f.tills {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			t.close()
		}()
	}
	wg.Wait()
	f.http.CloseIdleConnections()
}

// Stats are the fleet's counters so far.
type Stats struct {
	Tills      int
	Sales      int64 // sales that produced facts
	Sent       int64 // facts (redemptions) published, each counted once
	Acked      int64 // facts acknowledged (each exactly once: a fact leaves Pending on its first ack)
	Pending    int64 // facts sent and not yet acknowledged
	Republish  int64 // facts published again (Resend, or no ack within ResendAfter)
	Messages   int64 // batch messages published (first sends)
	Heartbeats int64
	Announces  int64 // SnapshotAnnounce messages received
	Fetches    int64 // snapshot fetches answered 200
	NotMod     int64 // snapshot fetches answered 304
	Grants     int64 // allowance requests answered
	Rejected   int64 // down messages refused by protocol.DecodeDown (must stay 0)
	Verified   int64 // down messages whose signature was checked (Options.VerifyEvery)
	BadAcks    int64 // acks of seqs never sent (must stay 0)
	Errors     int64 // failed publishes, and HTTP requests failed after their retries
	// HTTPRetries are agent requests retried after a 429, a 5xx or a
	// transport error (the hub refused or failed; the agent retries too).
	HTTPRetries int64
	// GrantFailures are allowance top-ups that failed after their
	// retries (an overloaded hub answers 503 by design); the till asks
	// again later and sells meanwhile without the campaign.
	GrantFailures int64
	// ConnectRetries are MQTT connects the broker answered "server
	// unavailable" (credentials not checked in time), retried.
	ConnectRetries int64
	// Ack latency from the publish of a fact's message to the Ack covering
	// it, over every fact acknowledged.
	AckP50, AckP99, AckMax time.Duration
}

// Stats sums the tills' counters; it sorts every latency seen, so call it
// at the end or now and then, not in a hot loop.
func (f *Fleet) Stats() Stats {
	s := Stats{Tills: len(f.tills)}
	var lat []time.Duration
	for _, t := range f.tills {
		t.mu.Lock()
		s.Sales += t.sales
		s.Sent += int64(t.seq)
		s.Acked += t.acked
		s.Pending += int64(len(t.pending))
		s.Republish += t.republish
		s.Messages += t.messages
		s.Heartbeats += t.heartbeats
		s.Announces += t.announces
		s.Fetches += t.fetches
		s.NotMod += t.notMod
		s.Grants += t.grants
		s.Rejected += t.rejected
		s.Verified += t.verified
		s.BadAcks += t.badAcks
		s.Errors += t.errors
		s.HTTPRetries += t.httpRetries
		s.GrantFailures += t.grantFailures
		s.ConnectRetries += t.connectRetries
		lat = append(lat, t.lat...)
		t.mu.Unlock()
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		s.AckP50, s.AckP99, s.AckMax = lat[len(lat)*50/100], lat[min(len(lat)-1, len(lat)*99/100)], lat[len(lat)-1]
	}
	return s
}

// Sent returns, per till, the facts of each message it sent first (with
// Options.Record), and how many allowance grants it got.
func (f *Fleet) Sent() (msgs [][][]protocol.Redemption, grants []int64) {
	for _, t := range f.tills {
		t.mu.Lock()
		msgs = append(msgs, slices.Clone(t.log))
		grants = append(grants, t.grants)
		t.mu.Unlock()
	}
	return msgs, grants
}

// ResetLatency forgets the latencies recorded so far (after a warm-up).
func (f *Fleet) ResetLatency() {
	for _, t := range f.tills {
		t.mu.Lock()
		t.lat, t.latAt = t.lat[:0], t.latAt[:0]
		t.mu.Unlock()
	}
}

// Reached is how far the fleet is on one snapshot version.
type Reached struct {
	Announced, Fetched int // tills that saw an announcement of the version (or newer) / applied a snapshot of it
	// LastAnnounced and LastFetched are when the last of those tills got
	// there (zero while any is missing).
	LastAnnounced, LastFetched time.Time
	// P50Announced and P50Fetched are the median moments.
	P50Announced, P50Fetched time.Time
}

// Reached reports how many tills have seen and fetched version v or newer.
func (f *Fleet) Reached(v uint64) Reached {
	var r Reached
	var ann, fet []time.Time
	for _, t := range f.tills {
		t.mu.Lock()
		if at, ok := firstAt(t.annSeen, v); ok {
			r.Announced++
			ann = append(ann, at)
		}
		if at, ok := firstAt(t.fetchSeen, v); ok {
			r.Fetched++
			fet = append(fet, at)
		}
		t.mu.Unlock()
	}
	sortTimes := func(ts []time.Time) { slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) }) }
	sortTimes(ann)
	sortTimes(fet)
	if len(ann) > 0 {
		r.P50Announced = ann[len(ann)/2]
		if len(ann) == len(f.tills) {
			r.LastAnnounced = ann[len(ann)-1]
		}
	}
	if len(fet) > 0 {
		r.P50Fetched = fet[len(fet)/2]
		if len(fet) == len(f.tills) {
			r.LastFetched = fet[len(fet)-1]
		}
	}
	return r
}

// WaitReached waits until every till has seen an announcement of version
// v or newer, and, with fetched, applied a snapshot of it.
//
// It polls the counts alone every 100 ms (reachedCount) and builds the
// whole Reached, which sorts every till's moments, once at the end: the
// moments are the tills' own, so the poll's period does not change them.
// (Polling Reached every 20 ms took 17 % of the simulator's CPU in a
// 10,000-till benchmark, on the hub's cores, right while the tills
// fetched the new rules.)
func (f *Fleet) WaitReached(ctx context.Context, v uint64, fetched bool) (Reached, error) {
	for {
		ann, fet := f.reachedCount(v)
		if ann == len(f.tills) && (!fetched || fet == len(f.tills)) {
			return f.Reached(v), nil
		}
		select {
		case <-ctx.Done():
			r := f.Reached(v)
			return r, fmt.Errorf("fleet: version %d: announced at %d of %d tills, fetched at %d: %w", v, r.Announced, len(f.tills), r.Fetched, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// reachedCount is Reached's counts alone.
func (f *Fleet) reachedCount(v uint64) (announced, fetched int) {
	for _, t := range f.tills {
		t.mu.Lock()
		if _, ok := firstAt(t.annSeen, v); ok {
			announced++
		}
		if _, ok := firstAt(t.fetchSeen, v); ok {
			fetched++
		}
		t.mu.Unlock()
	}
	return announced, fetched
}

// verAt is the first moment a till saw a version.
type verAt struct {
	v  uint64
	at time.Time
}

// firstAt is the first moment of a version >= v in l (increasing).
func firstAt(l []verAt, v uint64) (time.Time, bool) {
	for _, e := range l {
		if e.v >= v {
			return e.at, true
		}
	}
	return time.Time{}, false
}

// rulesFor returns the compiled rules of version v, nil when not known yet.
func (f *Fleet) rulesFor(v uint64) *rules.Catalog {
	f.rmu.Lock()
	defer f.rmu.Unlock()
	return f.rules[v]
}

// storeOf is rules.NewStore once per store for the whole fleet: it loads
// the store's time zone, which every fetch of every till did before.
func (f *Fleet) storeOf(st snapshot.Store) (rules.Store, error) {
	f.rmu.Lock()
	rs, ok := f.stores[st]
	f.rmu.Unlock()
	if ok {
		return rs, nil
	}
	rs, err := rules.NewStore(st.ID, st.Region, st.TimeZone)
	if err != nil {
		return rules.Store{}, err
	}
	f.rmu.Lock()
	f.stores[st] = rs
	f.rmu.Unlock()
	return rs, nil
}

// learnRules compiles the campaigns of a full snapshot of version v once
// for the whole fleet (the tills of one tenant share their campaigns).
func (f *Fleet) learnRules(v uint64, cs []rules.Campaign) error {
	f.rmu.Lock()
	defer f.rmu.Unlock()
	if f.rules[v] != nil {
		return nil
	}
	cat, err := rules.NewCatalog(cs)
	if err != nil {
		return err
	}
	f.rules[v] = cat
	return nil
}

// AckSample is one acknowledged fact: when its Ack came and how long after
// the publish.
type AckSample struct {
	At      time.Time
	Latency time.Duration
}

// Acks returns every ack latency recorded since ResetLatency, with its time.
func (f *Fleet) Acks() []AckSample {
	var out []AckSample
	for _, t := range f.tills {
		t.mu.Lock()
		for i, l := range t.lat {
			out = append(out, AckSample{At: t.latAt[i], Latency: l})
		}
		t.mu.Unlock()
	}
	return out
}
