package snapshots

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/catalog"
)

// Publisher sends the hub's signed messages down to one agent; hub/ingest
// implements it over MQTT.
type Publisher interface {
	AnnounceSnapshot(ctx context.Context, tenant protocol.TenantID, agent protocol.AgentID, ann protocol.SnapshotAnnounce) error
	RecallAllowance(ctx context.Context, tenant protocol.TenantID, agent protocol.AgentID, campaign protocol.CampaignID) error
}

// Agents lists a tenant's agents, to announce to each; store/catalog
// implements it.
type Agents interface {
	Version(ctx context.Context, tenant protocol.TenantID) (uint64, error)
	Agents(ctx context.Context, tenant protocol.TenantID) ([]catalog.Agent, error)
}

// DefaultAnnounceInterval is AnnouncerOptions.Interval's default.
const DefaultAnnounceInterval = 2 * time.Second

// Defaults of the fetch spread (AnnouncerOptions.FetchRate, MaxSpread)
// and of the announcements' pace (AnnounceRate, Tail). At 10,000 tills
// the announcements go out at an even 500 a second over 20 s, each asking
// its agent to fetch within 2 s, so that the fetches run at an even ~500
// a second and every till is on the new rules about 22 s after the change
// (plus the fetch), within the 30 s a change may take. Before, every
// agent was told within 5 s (2,000 a second, each with what was left of a
// 16 s window): the signing of 10,000 announcements in those 5 s and the
// fetches ramping to ~750 a second made the 5 s after a change the
// fleet's worst for acks on a 2-core hub (docs/operations.md).
const (
	DefaultFetchRate    = 450
	DefaultMaxSpread    = 22 * time.Second
	DefaultAnnounceRate = 2000
	DefaultTail         = 2 * time.Second
)

// AnnouncerOptions configure NewAnnouncer.
type AnnouncerOptions struct {
	// Interval is the least time between two announcements to one
	// tenant's agents; changes in between are coalesced into one
	// announcement at its end. Default DefaultAnnounceInterval.
	Interval time.Duration
	// FetchRate is the snapshot fetches per second the announcement aims
	// at: it asks the agents to spread their fetches over (agents ÷
	// FetchRate) seconds (SnapshotAnnounce.Spread), at most MaxSpread.
	// Default DefaultFetchRate; negative: no spread, every agent fetches
	// at once.
	FetchRate int
	// MaxSpread caps the spread, so that every till is on the new rules
	// within it (plus the announcement and the fetch). Default
	// DefaultMaxSpread.
	MaxSpread time.Duration
	// AnnounceRate is the announcements per second one Announce sends
	// at most: the agents are told in steps (about every announceStep),
	// and each announcement's Spread is at most what is left of the
	// window when it is sent, so the fetches still end within it.
	// Telling 10,000 tills at once signed and queued 10,000 messages in
	// one burst, and their clients woke at once. Default
	// DefaultAnnounceRate; negative: every agent at once.
	AnnounceRate int
	// Tail is the spread of each announcement when the window is longer
	// than twice Tail: the agents are then told at an even pace over the
	// window less Tail (at most AnnounceRate a second), each asked to
	// fetch within Tail, so that both the announcements (one Ed25519
	// signature each) and the fetches they bring run at an even rate
	// over the whole window. Default DefaultTail; negative: the agents
	// are told at AnnounceRate, each with what is left of the window
	// (their fetches then ramp up while the announcements go out).
	Tail time.Duration
	// Listed, when set, is handed the agents a change is announced to,
	// with the catalog version read before them (so the list is at or
	// after it), before the first announcement goes out: the snapshot
	// service keeps it (Service.ShareAgents) for the fetches the
	// announcement brings, instead of reading the same records again.
	Listed func(tenant protocol.TenantID, version uint64, agents []catalog.Agent)
	Logger *slog.Logger // default slog.Default()
}

// announceStep is about how often a paced Announce sends its next group.
const announceStep = 20 * time.Millisecond

// spread is the window the agents of one announcement fetch within.
func (o *AnnouncerOptions) spread(agents int) time.Duration {
	if o.FetchRate < 0 || agents <= 1 {
		return 0
	}
	return min(o.MaxSpread, time.Duration(agents)*time.Second/time.Duration(o.FetchRate))
}

// pacing is how one Announce tells its agents: step agents per group, a
// group every every, and the Spread of an announcement sent elapsed after
// the first.
type pacing struct {
	step   int
	every  time.Duration
	window time.Duration
	tail   time.Duration // > 0: each announcement's spread is at most tail
}

func (p pacing) spread(elapsed time.Duration) time.Duration {
	d := max(0, p.window-elapsed)
	if p.tail > 0 {
		d = min(d, p.tail)
	}
	return d
}

// pace is the pacing of an announcement to agents agents: at
// AnnounceRate a second at most, and, when the window is longer than
// twice Tail, at an even rate over the window less Tail, each asked to
// fetch within Tail.
func (o *AnnouncerOptions) pace(agents int) pacing {
	p := pacing{step: max(1, agents), window: o.spread(agents)}
	rate := float64(o.AnnounceRate) // per second; <= 0: unpaced
	if o.Tail > 0 && p.window > 2*o.Tail {
		p.tail = o.Tail
		even := float64(agents) / (p.window - o.Tail).Seconds()
		if rate <= 0 || even < rate {
			rate = even
		}
	}
	if rate > 0 {
		p.step = max(1, int(math.Ceil(rate*announceStep.Seconds()-1e-9))) // 2,000 a second: 40, not 41 for a rounding
		p.every = time.Duration(float64(p.step) / rate * float64(time.Second))
	}
	return p
}

// Log attribute keys.
const (
	logKeyErr    = "err"
	logKeyTenant = "tenant"
)

// Announcer tells a tenant's agents that its catalog changed
// (SnapshotAnnounce), and asks them to give back the allowance of a
// stopped campaign (AllowanceRecall). Its Changed and Stopped never block:
// the work runs in the background until Close.
//
// Only a new catalog version is announced: code uses and gift card
// spending (ingested batches, online redemptions) are not, because the
// agents pick them up as small increments on their own schedule
// (agent/uplink's UsesEvery poll, a delta of the codes changed since the
// agent's position). Announcing them made every till of the tenant refetch
// every interval under load; and the one decision they matter for, a
// single-use code or gift card at an offline till, only ever sees what the
// till held when it lost the hub, which a poll keeps as fresh.
type Announcer struct {
	agents Agents
	pub    Publisher
	opts   AnnouncerOptions

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// Sent counts the announcements handed to the publisher without an
	// error.
	Sent atomic.Int64

	mu      sync.Mutex
	closed  bool                            // no new background work once set
	lastAnn map[protocol.TenantID]time.Time // last announcement per tenant
	pending map[protocol.TenantID]bool      // an announcement is scheduled
	sentVer map[protocol.TenantID]uint64    // catalog version last announced per tenant
	gen     map[protocol.TenantID]uint64    // Announce calls started per tenant: a paced one stops when a later one starts

	sendMu sync.Mutex // one group of announcements at a time (sendGroup)
}

// NewAnnouncer returns an announcer that lists agents with agents and
// publishes with pub.
func NewAnnouncer(agents Agents, pub Publisher, opts AnnouncerOptions) *Announcer {
	if opts.Interval <= 0 {
		opts.Interval = DefaultAnnounceInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.FetchRate == 0 {
		opts.FetchRate = DefaultFetchRate
	}
	if opts.MaxSpread <= 0 {
		opts.MaxSpread = DefaultMaxSpread
	}
	if opts.AnnounceRate == 0 {
		opts.AnnounceRate = DefaultAnnounceRate
	}
	if opts.Tail == 0 {
		opts.Tail = DefaultTail
	}
	a := &Announcer{agents: agents, pub: pub, opts: opts, lastAnn: map[protocol.TenantID]time.Time{},
		pending: map[protocol.TenantID]bool{}, sentVer: map[protocol.TenantID]uint64{}, gen: map[protocol.TenantID]uint64{}}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	return a
}

// Close stops the background work and waits for it.
func (a *Announcer) Close() error {
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
	a.cancel()
	a.wg.Wait()
	return nil
}

// Changed reports that tenant's catalog is at version v (0: unknown), for
// manage.Options.OnChange. It is coalesced: at most one announcement per
// tenant per Interval, the first at once, later ones at the end of the
// interval; a version already announced is not announced again. The
// version is read again when the announcement is sent.
func (a *Announcer) Changed(tenant protocol.TenantID, v uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed || a.pending[tenant] || (v != 0 && a.sentVer[tenant] == v) {
		return
	}
	wait := a.opts.Interval - time.Since(a.lastAnn[tenant])
	a.pending[tenant] = true
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if wait > 0 {
			t := time.NewTimer(wait)
			defer t.Stop()
			select {
			case <-a.ctx.Done():
				return
			case <-t.C:
			}
		}
		a.mu.Lock()
		a.pending[tenant], a.lastAnn[tenant] = false, time.Now()
		a.mu.Unlock()
		v, err := a.agents.Version(a.ctx, tenant)
		if err == nil {
			err = a.announce(a.ctx, tenant, v, a.opts.Listed)
		}
		if err == nil {
			a.mu.Lock()
			a.sentVer[tenant] = max(a.sentVer[tenant], v)
			a.mu.Unlock()
		}
		if err != nil && a.ctx.Err() == nil {
			a.opts.Logger.Error("hub: snapshot announcement", slog.String(logKeyTenant, string(tenant)), slog.Any(logKeyErr, err))
		}
	}()
}

// Announce publishes SnapshotAnnounce{Version: v} to every agent of
// tenant, starting now. Its ETag is "C" and the version, never a real
// snapshot ETag: it differs from the agent's, so an agent already at
// version v revalidates with If-None-Match (a 304 when nothing changed
// for it). Its Spread asks the agents to fetch within a window that keeps
// the fetches near FetchRate per second (at most MaxSpread). The agents
// are told in groups, at most AnnounceRate a second, each with what is
// left of the window (at least nothing), so the window ends for all at
// once. A later Announce to the tenant (a newer version, which the agents
// would fetch anyway) ends this one before its next group: no agent is
// told an older version after a newer one.
func (a *Announcer) Announce(ctx context.Context, tenant protocol.TenantID, v uint64) error {
	return a.announce(ctx, tenant, v, nil)
}

// announce is Announce; listed, when not nil, is handed the agents read
// (Options.Listed: only where v was read from the catalog before them).
func (a *Announcer) announce(ctx context.Context, tenant protocol.TenantID, v uint64, listed func(protocol.TenantID, uint64, []catalog.Agent)) error {
	a.mu.Lock()
	a.gen[tenant]++
	gen := a.gen[tenant]
	a.mu.Unlock()
	agents, err := a.agents.Agents(ctx, tenant)
	if err != nil {
		return err
	}
	if listed != nil {
		listed(tenant, v, agents)
	}
	start := time.Now()
	p := a.opts.pace(len(agents))
	ann := protocol.SnapshotAnnounce{Version: v, ETag: fmt.Sprintf(`"C%d"`, v), Spread: uint32(p.spread(0) / time.Millisecond)}
	var errs []error
	for i, g := 0, 0; i < len(agents); i, g = i+p.step, g+1 {
		if i > 0 {
			if err := sleepUntil(ctx, start.Add(time.Duration(g)*p.every)); err != nil {
				errs = append(errs, err)
				break
			}
			ann.Spread = uint32(p.spread(time.Since(start)) / time.Millisecond)
		}
		if !a.sendGroup(ctx, tenant, gen, agents[i:min(i+p.step, len(agents))], ann, &errs) {
			break // the later one tells the rest
		}
	}
	return errors.Join(errs...)
}

// sendGroup publishes ann to the group unless a later Announce to tenant
// started (false). Groups are sent one at a time (sendMu), so a later
// Announce's first group waits for one in progress.
func (a *Announcer) sendGroup(ctx context.Context, tenant protocol.TenantID, gen uint64, group []catalog.Agent, ann protocol.SnapshotAnnounce, errs *[]error) bool {
	a.sendMu.Lock()
	defer a.sendMu.Unlock()
	a.mu.Lock()
	current := a.gen[tenant] == gen
	a.mu.Unlock()
	if !current {
		return false
	}
	for _, ag := range group {
		err := a.pub.AnnounceSnapshot(ctx, tenant, ag.ID, ann)
		if err == nil {
			a.Sent.Add(1)
		}
		*errs = append(*errs, err)
	}
	return true
}

// sleepUntil waits until at or ctx's end.
func sleepUntil(ctx context.Context, at time.Time) error {
	d := time.Until(at)
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Stopped asks every agent of tenant to give back its allowance of a
// campaign just stopped, in the background, for manage.Options.OnStop. An
// agent offline now gets it when it reconnects only if its session
// persisted; otherwise its next snapshot no longer offers the campaign and
// its allowance is returned when it next syncs.
func (a *Announcer) Stopped(tenant protocol.TenantID, campaign protocol.CampaignID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if err := a.Recall(a.ctx, tenant, campaign); err != nil && a.ctx.Err() == nil {
			a.opts.Logger.Error("hub: allowance recall", slog.String(logKeyTenant, string(tenant)), slog.Any(logKeyErr, err))
		}
	}()
}

// Recall publishes AllowanceRecall{Campaign: campaign} to every agent of
// tenant, now.
func (a *Announcer) Recall(ctx context.Context, tenant protocol.TenantID, campaign protocol.CampaignID) error {
	agents, err := a.agents.Agents(ctx, tenant)
	if err != nil {
		return err
	}
	var errs []error
	for _, ag := range agents {
		errs = append(errs, a.pub.RecallAllowance(ctx, tenant, ag.ID, campaign))
	}
	return errors.Join(errs...)
}
