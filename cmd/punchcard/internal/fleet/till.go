package fleet

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/punchcard/punchcard/agent"
	"github.com/punchcard/punchcard/agent/uplink"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/rules"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/protocol/wire"
	"github.com/punchcard/punchcard/store/agentdb"
)

// The agent's HTTP paths (protocol/wire).
const (
	pathSnapshot  = wire.PathSnapshot
	pathAllowance = wire.PathAllowances
)

const publishTimeout = 10 * time.Second

func mathFloat64bits(f float64) uint64     { return math.Float64bits(f) }
func mathFloat64frombits(b uint64) float64 { return math.Float64frombits(b) }

// till is one simulated till.
type till struct {
	f      *Fleet
	cred   Cred
	mq     paho.Client
	rnd    *rand.Rand // used by the till's own goroutines under mu
	fetchC chan struct{}
	// fetchLater: a fetch is scheduled within an announcement's Spread.
	fetchLater atomic.Bool
	// reconnects, connects, announcedAt: as uplink.Client's.
	reconnects  atomic.Int64
	connects    atomic.Uint64
	announcedAt atomic.Uint64
	ackC        chan struct{} // signalled on every ack
	resend      chan protocol.Resend
	ready       chan struct{} // closed on the first subscription

	pmu sync.Mutex // serialises publishes: batches leave in seq order

	mu      sync.Mutex
	seq     uint64
	pending map[uint64]*sentFact
	lastAck time.Time
	// rto is the wait without an Ack before everything pending is
	// published again: ResendAfter, doubled after each such republish
	// up to maxRTO and reset by an Ack, as the agent backs off its
	// retransmission timeout (agent/uplink), so that an overloaded hub is
	// not sent the fleet's backlog again every ResendAfter.
	rto       time.Duration
	lastRepub time.Time
	version   uint64
	uses      uint64 // the snapshot's code-use position (snapshot.Snapshot.Uses)
	customers uint64 // and its customer-state position (snapshot.Snapshot.Customers)
	etag      string
	store     rules.Store
	codeCamp  protocol.CampaignID // Code's campaign in the snapshot, "" when not listed
	limited   []protocol.CampaignID
	budget    map[protocol.CampaignID]*rules.Budget
	// lastGrant is the size of each campaign's last grant (-1 unlimited,
	// 0 unknown): the base of the low-water mark, as the agent's
	// (agentdb.AllowanceLeft's LastCount and LastAmount).
	lastGrant map[protocol.CampaignID]rules.Budget
	// reqID is each campaign's allowance request id awaiting an answer:
	// a retry after a lost answer reuses it, as the agent's
	// (agent/uplink's RequestAllowance).
	reqID  map[protocol.CampaignID]string
	idBase string // the till's request ids' prefix, as the agent's
	reqN   uint64
	// allowTurn is the till's one allowance exchange with the hub at a
	// time, and refilling its background top-up (the agent's allowTurn
	// and refilling).
	allowTurn chan struct{}
	refilling atomic.Bool
	lastAnn   protocol.SnapshotAnnounce
	readyOK   bool
	// annSeen and fetchSeen hold, in increasing version order, when the
	// till first saw an announcement of each version and applied it.
	annSeen, fetchSeen []verAt
	lat                []time.Duration
	latAt              []time.Time             // when each of lat was acked
	log                [][]protocol.Redemption // with Options.Record

	sales, acked, republish, messages, heartbeats int64
	announces, fetches, notMod, grants            int64
	rejected, badAcks, errors, httpRetries        int64
	downs, verified                               int64 // down messages received, and verified (Options.VerifyEvery)
	grantFailures, connectRetries                 int64
}

type sentFact struct {
	r  protocol.Redemption
	at time.Time // first publish
}

func newTill(f *Fleet, i int, c Cred) *till {
	return &till{f: f, cred: c, rnd: rand.New(rand.NewPCG(uint64(i)+1, 0x9e3779b97f4a7c15)), fetchC: make(chan struct{}, 1), ackC: make(chan struct{}, 1),
		resend: make(chan protocol.Resend, 16), ready: make(chan struct{}), pending: map[uint64]*sentFact{},
		budget: map[protocol.CampaignID]*rules.Budget{}, lastGrant: map[protocol.CampaignID]rules.Budget{}, reqID: map[protocol.CampaignID]string{},
		allowTurn: make(chan struct{}, 1), idBase: strconv.FormatInt(time.Now().UnixNano(), 36)}
}

func (t *till) count(p *int64) {
	t.mu.Lock()
	*p++
	t.mu.Unlock()
}

// start connects as the agent does (persistent session, its client ID
// and credentials), subscribes to the down and snapshot topics, fetches
// a full snapshot and requests the limited campaigns' allowances.
func (t *till) start(ctx context.Context) error {
	user := string(t.cred.Tenant) + "/" + string(t.cred.Agent)
	// OrderMatters: the agent's client hands each message to a goroutine
	// of its own (SetOrderMatters(false)); here onMessage only decodes and
	// takes the till's lock, so it runs on the client's router goroutine:
	// a new goroutine per message grew its stack again for every decode
	// (copystack was 6 % of the simulator's CPU at 3,000 tills), work a
	// real till does on its own CPU and the hub never sees.
	o := paho.NewClientOptions().AddBroker(t.f.opts.BrokerURL).SetClientID(user).SetUsername(user).SetPassword(t.cred.Secret).
		SetProtocolVersion(4).SetCleanSession(false).SetStore(nopStore{}).SetOrderMatters(true).
		SetAutoReconnect(true).SetConnectRetry(false).SetMaxReconnectInterval(10 * time.Second).SetKeepAlive(DefaultKeepAlive).
		SetPingTimeout(uplink.DefaultPingTimeout).SetReconnectingHandler(func(paho.Client, *paho.ClientOptions) { t.reconnectWait() }).
		SetConnectTimeout(30 * time.Second).SetOnConnectHandler(t.onConnect)
	t.mq = paho.NewClient(o)
	for {
		tok := t.mq.Connect()
		if !tok.WaitTimeout(60 * time.Second) {
			return fmt.Errorf("connect: timeout")
		}
		err := tok.Error()
		if err == nil {
			break
		}
		// As the agent (uplink: ConnectRetry): a broker that could not
		// check the credentials in time answers "server unavailable";
		// try again after the reconnect wait. Wrong credentials
		// ("not authorized") end the start.
		if err != packets.ErrorRefusedServerUnavailable || ctx.Err() != nil {
			return fmt.Errorf("connect: %w", err)
		}
		t.count(&t.connectRetries)
		t.reconnectWait()
	}
	select {
	case <-t.ready:
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(60 * time.Second):
		return fmt.Errorf("subscribe: timeout")
	}
	if err := t.fetch(ctx, true); err != nil {
		return err
	}
	// As the agent after every sync: every limited campaign's allowance.
	// Here a failure ends the start: the fleet starts holding them all.
	return t.refreshAllowances(ctx, true)
}

func (t *till) onConnect(c paho.Client) {
	t.reconnects.Store(0)
	gen := t.connects.Add(1) // before the retained announcement can arrive
	tok := c.SubscribeMultiple(map[string]byte{
		protocol.DownTopic(t.cred.Tenant, t.cred.Agent):     1,
		protocol.SnapshotTopic(t.cred.Tenant, t.cred.Agent): 1,
	}, t.onMessage)
	if !tok.WaitTimeout(publishTimeout) || tok.Error() != nil {
		t.count(&t.errors)
		return
	}
	t.mu.Lock()
	first := !t.readyOK
	t.readyOK = true
	t.mu.Unlock()
	if first {
		close(t.ready)
	} else {
		// As the agent (uplink.reconnectFetch): the retained announcement
		// says whether the till is current; without one, a fetch within
		// a spread.
		t.mu.Lock()
		d := time.Duration(t.rnd.Int64N(int64(uplink.ReconnectFetchSpread)))
		t.mu.Unlock()
		time.AfterFunc(d, func() {
			if t.announcedAt.Load() != gen {
				t.requestFetch()
			}
		})
	}
}

// reconnectWait waits before a reconnect attempt as the agent does
// (uplink's reconnectWait): a random moment within a window doubling
// from uplink.ReconnectSpread to uplink.MaxReconnectSpread.
func (t *till) reconnectWait() {
	n := t.reconnects.Add(1)
	spread := min(uplink.ReconnectSpread<<min(n-1, 8), uplink.MaxReconnectSpread)
	t.mu.Lock()
	d := time.Duration(t.rnd.Int64N(int64(spread)))
	t.mu.Unlock()
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
	case <-t.f.ctx.Done():
	}
}

func (t *till) close() {
	if t.mq != nil {
		t.mq.Disconnect(100)
	}
}

// onMessage checks every down message as the agent does (DecodeDown with
// the pinned hub key; with Options.VerifyEvery > 1 the signature of a
// sample only, decode) and handles it.
func (t *till) onMessage(_ paho.Client, m paho.Message) {
	t.mu.Lock()
	t.downs++
	// Each till's first message, and every VerifyEvery-th of the fleet's.
	verify := t.downs <= VerifyFirst || t.f.downs.Add(1)%uint64(t.f.opts.VerifyEvery) == 0
	if verify {
		t.verified++
	}
	t.mu.Unlock()
	body, err := t.decode(m.Payload(), verify)
	if err != nil {
		t.count(&t.rejected)
		t.f.log.Warn("fleet: down message refused", "agent", t.cred.Agent, "topic", m.Topic(), "err", err)
		return
	}
	now := time.Now()
	switch b := body.(type) {
	case *protocol.Ack:
		t.ack(b, now)
	case *protocol.Resend:
		select {
		case t.resend <- *b:
		default:
		}
	case *protocol.SnapshotAnnounce:
		t.announcedAt.Store(t.connects.Load())
		t.mu.Lock()
		t.announces++
		again := t.lastAnn.Version == b.Version && t.lastAnn.ETag == b.ETag && t.version == b.Version
		if n := len(t.annSeen); n == 0 || b.Version > t.annSeen[n-1].v {
			t.annSeen = append(t.annSeen, verAt{b.Version, now})
		}
		t.lastAnn = *b
		var want bool
		switch t.f.opts.Fetch {
		case FetchAgent:
			// As the agent: the retained announcement again, at the
			// version in use, needs no fetch.
			want = !again && (b.Version != t.version || (b.ETag != "" && b.ETag != t.etag))
		case FetchVersion:
			want = b.Version > t.version
		}
		t.mu.Unlock()
		if want {
			t.fetchWithin(time.Duration(b.Spread) * time.Millisecond)
		}
	}
}

// decode is protocol.DecodeDown, or without verify every check of it
// but the signature's (which a real till makes on its own CPU).
func (t *till) decode(p []byte, verify bool) (any, error) {
	if verify {
		_, body, err := protocol.DecodeDown(p, t.f.opts.HubKey, t.cred.Tenant, t.cred.Agent)
		return body, err
	}
	env, err := protocol.DecodeEnvelope(p)
	if err != nil {
		return nil, err
	}
	switch {
	case !env.Type.Down() || env.Sender != protocol.HubSender || env.To != t.cred.Agent:
		return nil, protocol.Errorf(protocol.CodeForbidden, "down message %s from %q for %q", env.Type, env.Sender, env.To)
	case env.Tenant != t.cred.Tenant:
		return nil, protocol.Errorf(protocol.CodeWrongTenant, "down message for tenant %q", env.Tenant)
	case len(env.Sig) != ed25519.SignatureSize:
		return nil, protocol.Errorf(protocol.CodeBadSignature, "down message is not signed")
	}
	body := protocol.NewBody(env.Type)
	if err := protocol.DecodeBody(env, body); err != nil {
		return nil, err
	}
	return body, nil
}

// fetchWithin asks for a fetch at a random moment within spread (at once
// when 0), one at a time, as the agent does (agent/uplink's fetchWithin).
func (t *till) fetchWithin(spread time.Duration) {
	if spread <= 0 {
		t.requestFetch()
		return
	}
	if !t.fetchLater.CompareAndSwap(false, true) {
		return
	}
	t.mu.Lock()
	d := time.Duration(t.rnd.Int64N(int64(spread)))
	t.mu.Unlock()
	time.AfterFunc(d, func() {
		t.fetchLater.Store(false)
		t.requestFetch()
	})
}

func (t *till) requestFetch() {
	select {
	case t.fetchC <- struct{}{}:
	default:
	}
}

// ack removes the facts an Ack covers, each once, recording its latency.
func (t *till) ack(a *protocol.Ack, now time.Time) {
	defer func() {
		select {
		case t.ackC <- struct{}{}:
		default:
		}
	}()
	t.mu.Lock()
	defer t.mu.Unlock()
	if a.Watermark > t.seq {
		t.badAcks++
	}
	t.lastAck = now
	t.rto = 0
	done := func(seq uint64) {
		if sf, ok := t.pending[seq]; ok {
			delete(t.pending, seq)
			t.acked++
			t.lat = append(t.lat, now.Sub(sf.at))
			t.latAt = append(t.latAt, now)
		}
	}
	for seq := range t.pending {
		if seq <= a.Watermark {
			done(seq)
		}
	}
	for _, seq := range a.Beyond {
		if seq > t.seq {
			t.badAcks++
			continue
		}
		done(seq)
	}
}

// run is the till's own loop: open-loop sales at the fleet's rate,
// heartbeats, snapshot fetches, resends.
func (t *till) run() {
	defer t.f.wg.Done()
	t.mu.Lock()
	first := time.Duration(t.rnd.Int64N(int64(t.f.opts.Heartbeat)))
	t.mu.Unlock()
	beat := time.NewTimer(first)
	defer beat.Stop()
	due := time.Now().Add(first) // the heartbeat's phase
	check := time.NewTicker(t.f.opts.ResendAfter / 2)
	defer check.Stop()
	// The agent's poll (agent/uplink's PollEvery), FetchAgent only.
	var pollC <-chan time.Time
	every := t.f.opts.PollEvery
	var poll *time.Timer
	if every > 0 && t.f.opts.Fetch == FetchAgent {
		t.mu.Lock()
		first := time.Duration(t.rnd.Int64N(int64(every)))
		t.mu.Unlock()
		poll = time.NewTimer(first)
		defer poll.Stop()
		pollC = poll.C
	}
	var sale *time.Timer
	stopSale := func() {
		if sale != nil {
			sale.Stop()
			sale = nil
		}
	}
	defer stopSale()
	firstSale := true
	for {
		rate, changed := t.f.rateNow()
		var saleC <-chan time.Time
		if rate > 0 {
			if sale == nil {
				mean := 1.5 / rate // 1.5 redemptions per sale on average
				t.mu.Lock()
				k := 0.5 + t.rnd.Float64()
				if firstSale {
					k = t.rnd.Float64() // spread the tills' phases
				}
				t.mu.Unlock()
				firstSale = false
				sale = time.NewTimer(time.Duration(k * mean * float64(time.Second)))
			}
			saleC = sale.C
		}
		select {
		case <-t.f.ctx.Done():
			return
		case <-changed:
			stopSale()
			firstSale = true
		case <-saleC:
			sale = nil
			// The sale holds the rate's read lock and re-reads the rate
			// under it: once SetRate(0) returns no sale is in progress
			// and none starts (select may pick this timer over changed).
			t.f.saleMu.RLock()
			if r, _ := t.f.rateNow(); r > 0 {
				if _, err := t.sale(t.f.ctx); err != nil && t.f.ctx.Err() == nil {
					t.count(&t.errors)
					t.f.log.Warn("fleet: sale", "agent", t.cred.Agent, "err", err)
				}
			}
			t.f.saleMu.RUnlock()
		case <-beat.C:
			t.heartbeat()
			due = nextBeat(due, t.f.opts.Heartbeat, time.Now())
			beat.Reset(time.Until(due))
		case <-check.C:
			t.checkResend()
		case <-pollC:
			poll.Reset(every)
			t.requestFetch()
		case <-t.fetchC:
			if err := t.fetch(t.f.ctx, false); err != nil {
				if t.f.ctx.Err() == nil {
					t.count(&t.errors)
					t.f.log.Warn("fleet: snapshot", "agent", t.cred.Agent, "err", err)
				}
				break
			}
			// As the agent's fetcher: after every sync (a snapshot
			// applied or confirmed), the allowances lacking or low.
			ctx, cancel := context.WithTimeout(t.f.ctx, refreshTimeout)
			t.refreshAllowances(ctx, false)
			cancel()
		case r := <-t.resend:
			t.republishRange(r.From, r.To)
		}
	}
}

// saleAndWait makes one sale and waits for its facts' acks (Burst).
func (t *till) saleAndWait(ctx context.Context) error {
	if _, err := t.sale(ctx); err != nil {
		return err
	}
	for {
		t.mu.Lock()
		n := len(t.pending)
		t.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.ackC:
		case <-time.After(time.Second): // a resend may have been acked meanwhile
		}
	}
}

// sale decides one sale with the till's rules and publishes its facts as
// one message. It returns the number of facts.
func (t *till) sale(ctx context.Context) (int, error) {
	// As the agent's topUp: a limited campaign whose allowance is used
	// up is asked for at once, the sale waiting for it (at most
	// allowanceWait). The agent asks when the decision refused the
	// campaign for its budget; every sale of the fleet gets the
	// automatic campaign, so that is when its allowance is used up.
	t.mu.Lock()
	var out []protocol.CampaignID
	for _, c := range t.limited {
		if b := t.budget[c]; b == nil || b.Count == 0 || b.Amount == 0 {
			out = append(out, c)
		}
	}
	t.mu.Unlock()
	if len(out) > 0 {
		t.topUp(ctx, out)
	}
	rs, err := t.decide(time.Now())
	if err != nil || len(rs) == 0 {
		return 0, err
	}
	err = t.publishBatch(rs, true)
	// As the agent after a sale that used an allowance: a top-up in the
	// background if what is left has fallen to the low-water mark.
	if t.usesAllowance(rs) {
		t.kickRefresh()
	}
	return len(rs), err
}

// usesAllowance reports whether rs redeem a limited campaign.
func (t *till) usesAllowance(rs []protocol.Redemption) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range rs {
		if r.Kind == protocol.KindRedeem && slices.Contains(t.limited, r.Campaign) {
			return true
		}
	}
	return false
}

// The agent's allowance timing (agent: DefaultLowWater,
// DefaultAllowanceWait, and its refresh's timeout).
const (
	lowWater       = agent.DefaultLowWater
	allowanceWait  = agent.DefaultAllowanceWait
	refreshTimeout = 30 * time.Second
)

// lowLocked reports whether the till holds no allowance of campaign c or
// what is left has fallen to the low-water mark of the last grant, as
// agentdb.AllowanceLeft.Low (grants do not expire: the hub sets no
// Expires). Called under mu.
func (t *till) lowLocked(c protocol.CampaignID) bool {
	b := t.budget[c]
	if b == nil {
		return true
	}
	last := t.lastGrant[c]
	return agentdb.AllowanceLeft{Count: b.Count, Amount: b.Amount, LastCount: last.Count, LastAmount: last.Amount}.Low(lowWater, 0)
}

// kickRefresh runs refreshAllowances in the background, once at a time,
// as the agent's kickRefresh.
func (t *till) kickRefresh() {
	if !t.refilling.CompareAndSwap(false, true) {
		return
	}
	t.f.wg.Add(1) // called from run, which holds the group open
	go func() {
		defer t.f.wg.Done()
		defer t.refilling.Store(false)
		ctx, cancel := context.WithTimeout(t.f.ctx, refreshTimeout)
		defer cancel()
		t.refreshAllowances(ctx, false)
	}()
}

// refreshAllowances asks for every limited campaign the till holds none
// of or runs low on, as the agent's RefreshAllowances, in its turn. With
// strict the first failure is returned at once (the fleet's start);
// otherwise failures are counted (an overloaded hub answers 503 by
// design) and the sale goes on with what is left, as the agent's.
func (t *till) refreshAllowances(ctx context.Context, strict bool) error {
	select {
	case t.allowTurn <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-t.allowTurn }()
	t.mu.Lock()
	ids := slices.Clone(t.limited)
	t.mu.Unlock()
	slices.Sort(ids)
	for _, c := range ids {
		t.mu.Lock()
		low := t.lowLocked(c)
		t.mu.Unlock()
		if !low {
			continue
		}
		if err := t.grant(ctx, c); err != nil {
			if strict {
				return err
			}
			t.count(&t.grantFailures)
			if t.f.ctx.Err() == nil {
				t.f.log.Warn("fleet: allowance", "agent", t.cred.Agent, "err", err)
			}
		}
	}
	return nil
}

// topUp asks for the campaigns whose allowance is used up, as the agent's
// topUp: in the till's turn, skipping one a background refresh filled
// meanwhile, within allowanceWait.
func (t *till) topUp(ctx context.Context, camps []protocol.CampaignID) {
	ctx, cancel := context.WithTimeout(ctx, allowanceWait)
	defer cancel()
	select {
	case t.allowTurn <- struct{}{}:
	case <-ctx.Done():
		return
	}
	defer func() { <-t.allowTurn }()
	for _, c := range camps {
		t.mu.Lock()
		b := t.budget[c]
		filled := b != nil && b.Count != 0 && b.Amount != 0 // -1: unlimited
		t.mu.Unlock()
		if filled {
			continue
		}
		if err := t.grant(ctx, c); err != nil {
			t.count(&t.grantFailures)
			if t.f.ctx.Err() == nil {
				t.f.log.Warn("fleet: allowance", "agent", t.cred.Agent, "err", err)
			}
		}
	}
}

// decide evaluates a random basket and returns its facts, seqs assigned.
func (t *till) decide(now time.Time) ([]protocol.Redemption, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	cat := t.f.rulesFor(t.version)
	if cat == nil {
		return nil, fmt.Errorf("no rules for version %d", t.version)
	}
	n := t.sales + 1
	o := protocol.Order{ID: fmt.Sprintf("o-%d", n), Currency: Currency}
	for range 1 + t.rnd.IntN(3) {
		k := t.rnd.IntN(50)
		o.Lines = append(o.Lines, protocol.Line{SKU: fmt.Sprintf("sku-%02d", k), Category: fmt.Sprintf("cat-%d", k%7),
			Quantity: 1 + t.rnd.Int64N(3), UnitPrice: 199 + t.rnd.Int64N(4800)})
	}
	req := rules.Request{Tenant: t.cred.Tenant, Order: o, Store: t.store, Now: now, Budgets: map[protocol.CampaignID]rules.Budget{}}
	if t.rnd.IntN(2) == 0 {
		req.Customer = &protocol.Customer{ID: protocol.CustomerID(fmt.Sprintf("cust-%d", t.rnd.IntN(t.f.opts.Customers)))}
	}
	if t.codeCamp != "" && t.rnd.IntN(2) == 0 {
		req.Redeemables = []rules.Redeemable{{Kind: rules.RedeemCode, Code: Code, Campaign: t.codeCamp}}
	}
	for _, c := range t.limited {
		// As the agent's: a limited campaign it holds no allowance of
		// has nothing left (agent/facts.go's Budget).
		var b rules.Budget
		if have := t.budget[c]; have != nil {
			b = *have
		}
		req.Budgets[c] = b
	}
	// The decision is read here only (its figures are copied into the
	// facts): into a pooled Buffer, so that thousands of simulated tills
	// make no garbage per sale.
	buf := decisionBufs.Get().(*rules.Buffer)
	defer decisionBufs.Put(buf)
	d := buf.Evaluate(cat, req)
	if d.Error != nil {
		return nil, d.Error
	}
	sale := saleOf(cat, req)
	base := protocol.Redemption{Tenant: t.cred.Tenant, Store: t.store.ID, TxnID: fmt.Sprintf("txn-%d", n), OrderID: o.ID, Currency: o.Currency,
		OrderTot: o.Subtotal(), HLC: uint64(now.UnixMilli()) << 16, Snapshot: t.version, Sale: sale}
	if req.Customer != nil {
		base.Customer = req.Customer.ID
	}
	var rs []protocol.Redemption
	for _, res := range d.Results {
		if !res.Applied {
			continue
		}
		r := base
		r.Kind, r.Campaign, r.Code = protocol.KindRedeem, res.Campaign, res.Code
		r.Discount, r.Spend = res.Discount+res.ShippingDiscount, res.Spend
		if res.PointsBurned > 0 {
			r.Points = -res.PointsBurned
		}
		if b := t.budget[res.Campaign]; b != nil {
			if b.Count > 0 {
				b.Count--
			}
			if b.Amount > 0 {
				b.Amount = max(0, b.Amount-r.Discount)
			}
		}
		rs = append(rs, r)
	}
	for _, e := range d.Earnings {
		if e.Points > 0 {
			r := base
			r.Kind, r.Campaign, r.Points = protocol.KindEarn, e.Campaign, e.Points
			rs = append(rs, r)
		}
	}
	if len(rs) == 0 {
		return nil, nil
	}
	t.sales++
	for i := range rs {
		t.seq++
		rs[i].ID = protocol.RedemptionID{Agent: t.cred.Agent, Seq: t.seq}
		t.pending[t.seq] = &sentFact{r: rs[i], at: now}
	}
	if t.f.opts.Record {
		t.log = append(t.log, slices.Clone(rs))
	}
	return rs, nil
}

// decisionBufs are the tills' rules.Buffers: one per sale in progress.
var decisionBufs = sync.Pool{New: func() any { return new(rules.Buffer) }}

// saleOf is agent.saleOf: what the hub needs to re-run the decision.
func saleOf(cat *rules.Catalog, req rules.Request) *protocol.Sale {
	o := cat.CompactOrder(req.Order)
	s := &protocol.Sale{Lines: o.Lines, Shipping: o.Shipping, Customer: req.Customer, At: req.Now.UnixMilli()}
	for _, r := range req.Redeemables {
		s.Presented = append(s.Presented, protocol.Presented{Kind: protocol.PresentedCode, Code: r.Code, Amount: r.Amount})
	}
	for id, b := range req.Budgets {
		s.Budgets = append(s.Budgets, protocol.SaleBudget{Campaign: id, Count: b.Count, Amount: b.Amount})
	}
	slices.SortFunc(s.Budgets, func(a, b protocol.SaleBudget) int { return strings.Compare(string(a.Campaign), string(b.Campaign)) })
	return s
}

// publishBatch publishes rs as one Batch message.
func (t *till) publishBatch(rs []protocol.Redemption, first bool) error {
	t.pmu.Lock()
	defer t.pmu.Unlock()
	err := t.publish(protocol.MsgBatch, protocol.Batch{Redemptions: rs})
	t.mu.Lock()
	if err != nil {
		t.errors++
	} else if first {
		t.messages++
	} else {
		t.republish += int64(len(rs))
	}
	t.mu.Unlock()
	return err
}

func (t *till) publish(typ protocol.MsgType, body any) error {
	id := strconv.FormatInt(time.Now().UnixNano(), 36)
	b, err := protocol.EncodeMessage(typ, t.cred.Tenant, t.cred.Agent, id, time.Now().UnixMicro(), body)
	if err != nil {
		return err
	}
	tok := t.mq.Publish(protocol.UpTopic(t.cred.Tenant, t.cred.Agent), 1, false, b)
	if !tok.WaitTimeout(publishTimeout) {
		return fmt.Errorf("publish %s: timeout", typ)
	}
	return tok.Error()
}

func (t *till) heartbeat() {
	t.mu.Lock()
	st := protocol.AgentState{SnapshotVersion: t.version, LastSeq: t.seq, OutboxDepth: int64(len(t.pending)), HLC: uint64(time.Now().UnixMilli()) << 16}
	t.mu.Unlock()
	t.pmu.Lock()
	err := t.publish(protocol.MsgAgentState, st)
	t.pmu.Unlock()
	if err != nil {
		t.count(&t.errors)
		return
	}
	t.count(&t.heartbeats)
}

// nextBeat is when the heartbeat after the one due at due goes out, at
// now, every period: as the agent's time.Ticker (agent/uplink), on the
// till's own phase whatever the publish took (it waits for the broker's
// PUBACK, late on a loaded hub), and once at once for the ticks missed
// meanwhile (a ticker holds one). Timed from the end of the publish
// instead, every till held up in the same stall beat in the same second
// ever after: waves of heartbeats the agent does not make.
func nextBeat(due time.Time, period time.Duration, now time.Time) time.Time {
	due = due.Add(period)
	if due.After(now) {
		return due
	}
	for due.Add(period).Before(now) {
		due = due.Add(period)
	}
	return due // in the past: at once
}

// maxRTO bounds a till's backed-off republish wait (agent/uplink's
// retransmission timeout is at most 60 s).
const maxRTO = 60 * time.Second

// checkResend republishes everything unacknowledged when nothing was
// acknowledged for the till's rto (ResendAfter at first).
func (t *till) checkResend() {
	t.mu.Lock()
	var oldest time.Time
	for _, sf := range t.pending {
		if oldest.IsZero() || sf.at.Before(oldest) {
			oldest = sf.at
		}
	}
	if t.rto == 0 {
		t.rto = t.f.opts.ResendAfter
	}
	stale := !oldest.IsZero() && time.Since(oldest) > t.rto && time.Since(t.lastAck) > t.rto && time.Since(t.lastRepub) > t.rto
	if stale {
		t.lastRepub = time.Now()
		t.rto = min(2*t.rto, maxRTO)
	}
	t.mu.Unlock()
	if stale {
		t.republishRange(1, 0)
	}
}

// republishRange publishes again the pending facts from..to (to 0: all).
func (t *till) republishRange(from, to uint64) {
	t.mu.Lock()
	var rs []protocol.Redemption
	for seq, sf := range t.pending {
		if seq >= from && (to == 0 || seq <= to) {
			rs = append(rs, sf.r)
		}
	}
	t.mu.Unlock()
	slices.SortFunc(rs, func(a, b protocol.Redemption) int { return int(a.ID.Seq - b.ID.Seq) })
	for len(rs) > 0 {
		n := min(len(rs), protocol.DefaultBatchSize)
		if err := t.publishBatch(rs[:n], false); err != nil {
			return
		}
		rs = rs[n:]
	}
}

// do sends an agent request with the agent's retry policy
// (agent/uplink: retryablehttp with jittered backoff): 429 and 5xx answers
// and transport errors are retried up to 5 times, each retry counted in
// Stats.HTTPRetries. It returns the final answer's status and body.
func (t *till) do(ctx context.Context, method, path string, body []byte, hdr map[string]string) (*http.Response, []byte, error) {
	var lastErr error
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			t.count(&t.httpRetries)
			t.mu.Lock()
			d := time.Duration(float64(200*time.Millisecond<<min(attempt-1, 5)) * (0.5 + t.rnd.Float64()))
			t.mu.Unlock()
			if err := sleepCtx(ctx, d); err != nil {
				return nil, nil, err
			}
		}
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, t.f.opts.HubURL+path, rd)
		if err != nil {
			return nil, nil, err
		}
		req.Header.Set("Authorization", "Bearer "+t.cred.Secret)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := t.f.http.Do(req)
		if err == nil {
			b, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil && resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode < 500 {
				return resp, b, nil
			}
			err = rerr
			if err == nil {
				err = fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
			}
		}
		lastErr = err
		if attempt == 5 || ctx.Err() != nil {
			return nil, nil, lastErr
		}
	}
}

// fetch gets the till's snapshot as the agent does: a delta since its
// version with If-None-Match, or a full one (full, or when the fleet does
// not know the delta's rules yet).
func (t *till) fetch(ctx context.Context, full bool) error {
	t.mu.Lock()
	since, etag, uses, customers := t.version, t.etag, t.uses, t.customers
	t.mu.Unlock()
	if full {
		since, etag = 0, ""
	}
	hdr := map[string]string{"Accept": "application/cbor"}
	if etag != "" {
		hdr["If-None-Match"] = etag
	}
	// As the agent: a delta lists the codes, and the customers' state,
	// changed after its positions.
	resp, body, err := t.do(ctx, http.MethodGet, wire.SnapshotPathCustomers(since, uses, since > 0, customers), nil, hdr)
	if err != nil {
		return err
	}
	now := time.Now()
	switch resp.StatusCode {
	case http.StatusNotModified:
		t.mu.Lock()
		t.notMod++
		t.mu.Unlock()
		return nil
	case http.StatusOK:
	default:
		return fmt.Errorf("snapshot: %s: %s", resp.Status, bytes.TrimSpace(body))
	}
	snap, err := snapshot.Decode(body)
	if err != nil {
		return err
	}
	if !snap.IsDelta() {
		if err := t.f.learnRules(snap.Version, snap.Campaigns); err != nil {
			return err
		}
	} else if t.f.rulesFor(snap.Version) == nil {
		return t.fetch(ctx, true)
	}
	st, err := t.f.storeOf(snap.Store)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.fetches++
	if snap.Version < t.version {
		return nil // an older answer overtaken by a newer one
	}
	t.version, t.etag, t.store, t.uses, t.customers = snap.Version, resp.Header.Get("ETag"), st, snap.Uses, snap.Customers
	if n := len(t.fetchSeen); n == 0 || snap.Version > t.fetchSeen[n-1].v {
		t.fetchSeen = append(t.fetchSeen, verAt{snap.Version, now})
	}
	if !snap.IsDelta() {
		t.codeCamp = ""
		id := snap.LookupID(Code)
		for _, c := range snap.Codes {
			if c.Code == id {
				t.codeCamp = c.Campaign
			}
		}
		t.limited = t.limited[:0]
		for _, c := range snap.Campaigns {
			if c.Status == rules.StatusActive && (c.Limits.MaxRedemptions > 0 || c.Limits.MaxDiscount > 0) {
				t.limited = append(t.limited, c.ID)
			}
		}
	}
	return nil
}

// grant requests an allowance of campaign and adds it to the till's, as
// the agent's RequestAllowance and agentdb.DB.Grant: a zero grant adds
// nothing and leaves the low-water base as it was.
func (t *till) grant(ctx context.Context, campaign protocol.CampaignID) error {
	a, err := t.requestGrant(ctx, campaign)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.grants++
	if a.Grant == 0 {
		return nil
	}
	b := t.budget[campaign]
	if b == nil {
		b = &rules.Budget{}
		t.budget[campaign] = b
	}
	add := func(have *int64, n int64) {
		if n < 0 || *have < 0 {
			*have = -1
			return
		}
		*have += n
	}
	add(&b.Count, a.Count)
	add(&b.Amount, a.Amount)
	if a.Count != 0 || a.Amount != 0 {
		t.lastGrant[campaign] = rules.Budget{Count: a.Count, Amount: a.Amount}
	}
	return nil
}

// requestGrant posts the request under the campaign's pending request id,
// as agent/uplink's RequestAllowance: a new id once the last one was
// answered (a grant or a refusal), the same again after a transport
// failure or an unavailable hub (the grant may have been made).
func (t *till) requestGrant(ctx context.Context, campaign protocol.CampaignID) (protocol.Allowance, error) {
	t.mu.Lock()
	id, ok := t.reqID[campaign]
	if !ok {
		t.reqN++
		id = t.idBase + "-a" + strconv.FormatUint(t.reqN, 36)
		t.reqID[campaign] = id
	}
	t.mu.Unlock()
	in, _ := json.Marshal(wire.AllowanceRequest{Campaign: campaign, RequestID: id})
	resp, body, err := t.do(ctx, http.MethodPost, pathAllowance, in, map[string]string{"Content-Type": "application/json"})
	if err != nil {
		return protocol.Allowance{}, err
	}
	t.mu.Lock()
	delete(t.reqID, campaign) // answered
	t.mu.Unlock()
	if resp.StatusCode != http.StatusOK {
		return protocol.Allowance{}, fmt.Errorf("allowance: %s: %s", resp.Status, bytes.TrimSpace(body))
	}
	var a protocol.Allowance
	if err := json.Unmarshal(body, &a); err != nil {
		return protocol.Allowance{}, err
	}
	return a, nil
}

// nopStore keeps no in-flight MQTT state, as agent/uplink's: the facts
// themselves are what the till resends.
type nopStore struct{}

func (nopStore) Open()                             {}
func (nopStore) Put(string, packets.ControlPacket) {}
func (nopStore) Get(string) packets.ControlPacket  { return nil }
func (nopStore) All() []string                     { return nil }
func (nopStore) Del(string)                        {}
func (nopStore) Close()                            {}
func (nopStore) Reset()                            {}
