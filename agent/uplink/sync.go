// Package uplink connects an agent to its hub: it publishes the outbox over
// MQTT (paho, QoS 1, persistent session with a fixed client id), deletes
// outbox rows only when the hub's Ack says they were applied, keeps a
// sliding window of batches in flight (acks are taken on their own
// goroutine while it publishes), republishes on Resend and, one batch at a
// time, what was not acknowledged within a timeout measured from the round
// trip, pulls snapshots over HTTP (go-retryablehttp,
// backoff with jitter, ETag and delta since the version in use) when the
// hub's retained SnapshotAnnounce says so and on every reconnect, and asks
// for and returns allowances.
//
// The broker is not trusted: every message from the down and snapshot
// topics must be signed by the hub's key pinned in Options.HubKey and
// addressed to this agent (protocol.DecodeDown); anything else is dropped,
// logged and counted (Rejected), and an Ack of a seq this agent never
// assigned deletes nothing (agentdb.ErrAckBeyondLastSeq).
//
// It is the only agent package that imports paho and retryablehttp; the
// agent sees it through agent.Link.
package uplink

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	gosync "sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/hashicorp/go-retryablehttp"

	"github.com/punchcard/punchcard/agent"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/decide"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/protocol/wire"
	"github.com/punchcard/punchcard/store/agentdb"
)

// Defaults.
const (
	DefaultFlushEvery  = 200 * time.Millisecond // outbox poll when nothing kicks the client
	DefaultResendAfter = time.Second            // retransmission timeout before a round trip is measured (RFC 6298's 1 s)
	DefaultMinRTO      = 200 * time.Millisecond // floor of the measured retransmission timeout
	DefaultMaxRTO      = 60 * time.Second       // ceiling of the timeout and of its backoff
	// DefaultWindow is the batches in flight (published, not yet acked by
	// the hub): 64 of DefaultBatchSize is what the hub's ingest takes into
	// one ledger transaction (ingest.DefaultMaxRedemptionsPerTx). A window
	// is one drain: while it commits the till has nothing more in flight,
	// so the hub cannot prepare the next drain meanwhile (a catch-up of 1M
	// measured 39.3 / 41.9 s at 128 against 47.5 / 43.3 s at 64; 128 would
	// fill the broker's per-till queue of 256 with an Ack and a Resend a
	// batch, so it is left at 64: docs/operations.md, "make bench-catchup").
	DefaultWindow         = 64
	DefaultHeartbeatEvery = 30 * time.Second
	// DefaultPollEvery is how often the client asks for the snapshot
	// without an announcement: the hub announces only catalog changes, and
	// code uses and gift card spending made elsewhere arrive with this
	// poll as a small delta of the codes changed since the agent's
	// position (a 304 when none).
	DefaultPollEvery      = 30 * time.Second
	DefaultPublishTimeout = 10 * time.Second
	DefaultHTTPTimeout    = 30 * time.Second
)

// Hub HTTP paths (protocol/wire).
const (
	PathSnapshot        = wire.PathSnapshot
	PathAllowance       = wire.PathAllowances
	PathAllowanceReturn = wire.PathAllowanceReturn
)

// Agent is what the client needs of the agent.
type Agent interface {
	ApplySnapshot(ctx context.Context, body []byte, etag string) (uint64, error)
	SnapshotVersion() (uint64, string)
	Grant(ctx context.Context, a protocol.Allowance) error
	// RefreshAllowances asks for the allowances the agent lacks or runs
	// low on; called after every sync.
	RefreshAllowances(ctx context.Context) error
}

// usesPositioner is an Agent that knows its snapshot's code-use position
// (agent.Agent.SnapshotUses).
type usesPositioner interface{ SnapshotUses() uint64 }

var _ usesPositioner = (*agent.Agent)(nil)

// customersPositioner is an agent that keeps the customer-state position
// of its snapshot (agent.Agent.SnapshotCustomers).
type customersPositioner interface{ SnapshotCustomers() uint64 }

var _ customersPositioner = (*agent.Agent)(nil)

// Outbox is the agent's durable outbox and counters (store/agentdb).
type Outbox interface {
	Pending(ctx context.Context, after uint64, limit int) ([]protocol.Redemption, error)
	Range(ctx context.Context, from, to uint64, limit int) ([]protocol.Redemption, error)
	Ack(ctx context.Context, watermark uint64, beyond []uint64) (int64, error)
	State(ctx context.Context) (agentdb.State, error)
	MarkSynced(ctx context.Context, at time.Time) error
	Recall(ctx context.Context, campaign protocol.CampaignID) ([]agentdb.AllowanceLeft, error)
}

var (
	_ Agent  = (*agent.Agent)(nil)
	_ Outbox = (*agentdb.DB)(nil)
)

// Options for New. Tenant, Agent, BrokerURL, HubURL, Secret and HubKey
// are required; the rest is preset from the Default* constants.
type Options struct {
	Tenant    protocol.TenantID
	Agent     protocol.AgentID
	BrokerURL string // e.g. tcp://hub.example:1883
	HubURL    string // e.g. https://hub.example
	Secret    string // the agent's secret: MQTT password and HTTP bearer key
	// HubKey is the hub's public key, pinned at registration (the
	// "hub_key" of the registration answer): every down message must be
	// signed with it.
	HubKey ed25519.PublicKey
	// ClientID is the MQTT client id; default "<tenant>/<agent>", which is
	// also the username, so the persistent session is the agent's own.
	ClientID   string
	BatchSize  int // redemptions per Batch; default protocol.DefaultBatchSize
	FlushEvery time.Duration
	// ResendAfter is the retransmission timeout until a round trip to
	// the hub's Ack is measured; then the timeout is SRTT + 4·RTTVAR,
	// within MinRTO..MaxRTO. Only the oldest unacknowledged batch is
	// republished on a timeout, and the timeout doubles until progress.
	ResendAfter time.Duration
	MinRTO      time.Duration
	MaxRTO      time.Duration
	// Window is the most batches in flight at once; default DefaultWindow.
	Window         int
	HeartbeatEvery time.Duration
	PollEvery      time.Duration
	// ReconnectFetchSpread is the window within which a reconnected
	// client fetches its snapshot when no announcement came with the
	// reconnect; default ReconnectFetchSpread.
	ReconnectFetchSpread time.Duration
	PublishTimeout       time.Duration
	HTTPRetries          int // default 4
	Logger               *slog.Logger
	// TLS verifies the hub for an https:// HubURL and an ssl:// (tls://,
	// mqtts://) BrokerURL, both with this one configuration (cmd/agent
	// builds it with tlsconf.Client from -ca-file and -hub-cert-sha256);
	// nil uses the system roots.
	TLS *tls.Config
	// ProbeEvery is how often the hub's HTTP API is checked when nothing
	// else was asked of it (default DefaultProbeEvery); ProbeTimeout
	// bounds one check (default DefaultProbeTimeout).
	ProbeEvery   time.Duration
	ProbeTimeout time.Duration
	// HTTPMaxAge is how long an answer of the hub's HTTP API counts as
	// reachability; default 3 × ProbeEvery.
	HTTPMaxAge time.Duration
	// OnlineMaxAge is the snapshot staleness limit for deciding online:
	// a snapshot the hub has not confirmed or replaced within it makes the
	// till decide offline, inside its risk envelope; default 3 ×
	// PollEvery.
	OnlineMaxAge time.Duration
	// Faults, for tests only, lose messages on purpose.
	Faults Faults
}

func (o *Options) ensureDefaults() {
	if o.ReconnectFetchSpread <= 0 {
		o.ReconnectFetchSpread = ReconnectFetchSpread
	}
	if o.ClientID == "" {
		o.ClientID = string(o.Tenant) + "/" + string(o.Agent)
	}
	if o.BatchSize <= 0 {
		o.BatchSize = protocol.DefaultBatchSize
	}
	if o.FlushEvery <= 0 {
		o.FlushEvery = DefaultFlushEvery
	}
	if o.ResendAfter <= 0 {
		o.ResendAfter = DefaultResendAfter
	}
	if o.MinRTO <= 0 {
		o.MinRTO = DefaultMinRTO
	}
	if o.MaxRTO <= 0 {
		o.MaxRTO = DefaultMaxRTO
	}
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.HeartbeatEvery <= 0 {
		o.HeartbeatEvery = DefaultHeartbeatEvery
	}
	if o.PollEvery <= 0 {
		o.PollEvery = DefaultPollEvery
	}
	if o.PublishTimeout <= 0 {
		o.PublishTimeout = DefaultPublishTimeout
	}
	if o.HTTPRetries <= 0 {
		o.HTTPRetries = 4
	}
	if o.ProbeEvery <= 0 {
		o.ProbeEvery = DefaultProbeEvery
	}
	if o.ProbeTimeout <= 0 {
		o.ProbeTimeout = DefaultProbeTimeout
	}
	if o.HTTPMaxAge <= 0 {
		o.HTTPMaxAge = 3 * o.ProbeEvery
	}
	if o.OnlineMaxAge <= 0 {
		o.OnlineMaxAge = 3 * o.PollEvery
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Client is a running sync client. Close stops it.
type Client struct {
	opts   Options
	agent  Agent
	outbox Outbox
	mq     mqtt.Client
	http   *retryablehttp.Client
	log    *slog.Logger

	connected atomic.Bool
	health    health
	kick      chan struct{}
	events    chan event
	// The receiver hands the publisher what it must act on.
	acked       chan protocol.Ack
	resends     chan protocol.Resend
	reconnected chan struct{}
	// reconnects counts reconnect attempts since the last connect
	// (reconnectWait); connects counts connects and announcedAt is the
	// connect an announcement last came in (reconnectFetch); lastAnn is
	// the last announcement taken.
	reconnects  atomic.Int64
	connects    atomic.Uint64
	announcedAt atomic.Uint64
	lastAnn     atomic.Pointer[protocol.SnapshotAnnounce]
	fetch       chan struct{}
	fetchLater  atomic.Bool // a fetch is scheduled within an announcement's Spread
	msgID       atomic.Uint64
	idBase      string
	// pending is the request id of each allowance request whose answer
	// never arrived, sent again with the next request for the campaign.
	pendMu  gosync.Mutex
	pending map[protocol.CampaignID]string

	ctx    context.Context
	cancel context.CancelFunc
	wg     gosync.WaitGroup

	// Counters, for tests and status.
	Published atomic.Int64 // redemptions published (including republished)
	Acks      atomic.Int64 // Ack messages applied
	// Rejected counts down messages dropped: unsigned, badly signed,
	// for another agent or tenant, undecodable, or an Ack beyond the
	// highest seq assigned.
	Rejected atomic.Int64
}

type event struct {
	connected bool // a (re)connect
	env       protocol.Envelope
}

var _ agent.Link = (*Client)(nil)

// New starts a client: it connects (and keeps reconnecting) in the
// background, so an agent starts and serves the POS with no network.
func New(opts Options, a Agent, outbox Outbox) (*Client, error) {
	opts.ensureDefaults()
	for _, f := range []struct{ name, v string }{{"tenant", string(opts.Tenant)}, {"agent", string(opts.Agent)},
		{"broker URL", opts.BrokerURL}, {"hub URL", opts.HubURL}} {
		if f.v == "" {
			return nil, fmt.Errorf("sync: %s is required", f.name)
		}
	}
	if len(opts.HubKey) != ed25519.PublicKeySize {
		return nil, errors.New("sync: the hub's public key is required to sync (the hub_key of the agent's registration; -hub-key)")
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{opts: opts, agent: a, outbox: outbox, log: opts.Logger,
		kick: make(chan struct{}, 1), events: make(chan event, 1024), fetch: make(chan struct{}, 1),
		acked: make(chan protocol.Ack, 256), resends: make(chan protocol.Resend, 64), reconnected: make(chan struct{}, 1),
		idBase: strconv.FormatInt(time.Now().UnixNano(), 36), ctx: ctx, cancel: cancel, pending: map[protocol.CampaignID]string{}}

	hc := retryablehttp.NewClient()
	hc.RetryMax = opts.HTTPRetries
	hc.RetryWaitMin = 200 * time.Millisecond
	hc.RetryWaitMax = 10 * time.Second
	hc.Backoff = JitterBackoff
	hc.Logger = nil
	hc.HTTPClient.Timeout = DefaultHTTPTimeout
	if opts.TLS != nil {
		tr, ok := hc.HTTPClient.Transport.(*http.Transport)
		if !ok {
			cancel()
			return nil, fmt.Errorf("sync: retryablehttp's transport is a %T, not *http.Transport", hc.HTTPClient.Transport)
		}
		tr.TLSClientConfig = opts.TLS.Clone()
	}
	c.http = hc

	mo := mqtt.NewClientOptions().
		AddBroker(opts.BrokerURL).
		SetClientID(opts.ClientID).
		SetUsername(string(opts.Tenant) + "/" + string(opts.Agent)).
		SetPassword(opts.Secret).
		SetCleanSession(false).
		SetStore(nopStore{}).
		SetOrderMatters(false).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(10 * time.Second).
		SetKeepAlive(DefaultKeepAlive).
		SetPingTimeout(DefaultPingTimeout).
		SetReconnectingHandler(func(mqtt.Client, *mqtt.ClientOptions) { c.reconnectWait() }).
		SetOnConnectHandler(c.onConnect).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			c.connected.Store(false)
			c.log.Warn("sync: connection lost", "err", err)
		})
	if opts.TLS != nil {
		mo.SetTLSConfig(opts.TLS.Clone())
	}
	// A broker that cannot be reached is retried silently by paho; say
	// why once per distinct reason (a refused TLS certificate, say).
	var lastFail atomic.Pointer[string]
	mo.SetConnectionNotificationHandler(func(_ mqtt.Client, n mqtt.ConnectionNotification) {
		switch n := n.(type) {
		case mqtt.ConnectionNotificationBrokerFailed:
			msg := n.Reason.Error()
			if old := lastFail.Swap(&msg); old == nil || *old != msg {
				c.log.Warn("sync: cannot connect to the broker", "broker", opts.BrokerURL, "err", n.Reason)
			}
		case mqtt.ConnectionNotificationConnected:
			lastFail.Store(nil)
		}
	})
	c.mq = mqtt.NewClient(mo)
	c.mq.Connect() // completes in the background (ConnectRetry)
	c.wg.Add(4)
	go c.run()
	go c.receive()
	go c.fetcher()
	go c.prober()
	return c, nil
}

// Close disconnects and waits for the client's goroutines.
func (c *Client) Close() error {
	c.cancel()
	c.wg.Wait()
	c.mq.Disconnect(250)
	return nil
}

// Kick tells the client that the outbox has new rows.
func (c *Client) Kick() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *Client) onConnect(m mqtt.Client) {
	down := protocol.DownTopic(c.opts.Tenant, c.opts.Agent)
	snap := protocol.SnapshotTopic(c.opts.Tenant, c.opts.Agent)
	c.connects.Add(1) // before the retained announcement can arrive
	t := m.SubscribeMultiple(map[string]byte{down: 1, snap: 1}, c.onMessage)
	if !t.WaitTimeout(c.opts.PublishTimeout) || t.Error() != nil {
		c.log.Warn("sync: subscribe failed", "err", t.Error())
		return
	}
	c.connected.Store(true)
	c.reconnects.Store(0)
	c.log.Info("sync: connected", "broker", c.opts.BrokerURL)
	c.events <- event{connected: true}
}

func (c *Client) onMessage(_ mqtt.Client, m mqtt.Message) {
	env, _, err := protocol.DecodeDown(m.Payload(), c.opts.HubKey, c.opts.Tenant, c.opts.Agent)
	if err != nil {
		c.Rejected.Add(1)
		c.log.Warn("sync: down message dropped", "topic", m.Topic(), "retained", m.Retained(), "err", err)
		return
	}
	if f := c.opts.Faults.DropDown; f != nil && f(env) {
		return
	}
	select {
	case c.events <- event{env: env}:
	case <-c.ctx.Done():
	}
}

// Faults lose messages on purpose, as a broken network would, for the
// fault tests of catch-up (hub TestCatchUpLosses); Options.Faults. Never
// set in production. The functions are called from the client's goroutines.
type Faults struct {
	// DropPublish loses a batch, by its first seq, for which it is true:
	// counted as published, never sent.
	DropPublish func(first uint64) bool
	// DropDown loses a (verified) message from the hub for which it is true.
	DropDown func(protocol.Envelope) bool
}

// receive applies what the hub sends, on its own goroutine, so that an
// Ack is taken (and its outbox rows deleted) while the publisher is busy:
// the publisher learns of it through c.acked.
func (c *Client) receive() {
	defer c.wg.Done()
	for {
		select {
		case <-c.ctx.Done():
			return
		case ev := <-c.events:
			if ev.connected {
				c.signal(c.reconnected)
				continue
			}
			c.handle(ev.env)
		}
	}
}

func (c *Client) signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// run owns publishing: it is the only goroutine that reads the outbox for
// new batches and publishes, so batches leave in seq order, at most
// Options.Window of them unacknowledged at once.
func (c *Client) run() {
	defer c.wg.Done()
	flush := time.NewTicker(c.opts.FlushEvery)
	defer flush.Stop()
	beat := time.NewTicker(c.opts.HeartbeatEvery)
	defer beat.Stop()
	poll := time.NewTicker(c.opts.PollEvery)
	defer poll.Stop()
	w := newWindow(c.opts.ResendAfter, c.opts.MinRTO, c.opts.MaxRTO)
	// synced is false from a (re)connect until the hub's first Ack (the
	// answer to the heartbeat) or one timeout: what the hub already holds
	// is not published again.
	synced := true
	var connectedAt time.Time
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.reconnected:
			w.reset(0)
			synced, connectedAt = false, time.Now()
			c.reconnectFetch()
			c.heartbeat()
		case a := <-c.acked:
			w.ack(a.Watermark, a.Beyond, time.Now())
			synced = true
			c.drainAcks(w)
		case rs := <-c.resends:
			c.resend(w, rs)
		case <-beat.C:
			c.heartbeat()
			continue
		case <-poll.C:
			c.triggerFetch()
			continue
		case <-c.kick:
		case <-flush.C:
		}
		if !c.mqttUp() {
			continue
		}
		if !synced && time.Since(connectedAt) > c.opts.ResendAfter {
			synced = true
		}
		if !synced {
			continue
		}
		if f, ok := w.due(time.Now()); ok {
			c.log.Info("sync: no ack in time, republishing the oldest batch", "from", f.first, "to", f.last)
			c.republish(f.first, f.last)
		}
		if err := c.fill(w); err != nil {
			c.log.Warn("sync: publish", "err", err)
		}
	}
}

// drainAcks takes every Ack already waiting, so that one wake fills the
// window once.
func (c *Client) drainAcks(w *window) {
	for {
		select {
		case a := <-c.acked:
			w.ack(a.Watermark, a.Beyond, time.Now())
		default:
			return
		}
	}
}

// fill publishes new batches while the window has room.
func (c *Client) fill(w *window) error {
	for len(w.flights) < c.opts.Window && c.ctx.Err() == nil {
		rs, err := c.outbox.Pending(c.ctx, w.next, c.opts.BatchSize)
		if err != nil || len(rs) == 0 {
			return err
		}
		if err := c.publishBatch(rs); err != nil {
			return err
		}
		w.sent(rs[0].ID.Seq, rs[len(rs)-1].ID.Seq, time.Now())
	}
	return nil
}

// resend answers a hub's Resend: what is left of the range in the outbox.
func (c *Client) resend(w *window, m protocol.Resend) {
	w.resent(m.From, m.To, time.Now())
	c.republish(m.From, m.To)
}

func (c *Client) republish(from, to uint64) {
	rs, err := c.outbox.Range(c.ctx, from, to, protocol.MaxBatchSize)
	if err != nil {
		c.log.Error("sync: resend", "err", err)
		return
	}
	for len(rs) > 0 {
		n := min(len(rs), c.opts.BatchSize)
		if err := c.publishBatch(rs[:n]); err != nil {
			c.log.Warn("sync: resend", "err", err)
			return
		}
		rs = rs[n:]
	}
}

// publishBatch publishes rs as one message, or, when the facts' sales make
// it larger than protocol.MaxMessageBytes, as two halves (recursively). It
// does not wait for the broker's PUBACK: the hub's Ack is what counts, and
// a batch it never acknowledges times out and is published again.
func (c *Client) publishBatch(rs []protocol.Redemption) error {
	if f := c.opts.Faults.DropPublish; f != nil && f(rs[0].ID.Seq) {
		c.Published.Add(int64(len(rs)))
		return nil
	}
	b, err := c.encode(protocol.MsgBatch, protocol.Batch{Redemptions: rs})
	if protocol.ErrorCode(err) == protocol.CodeMessageTooLarge && len(rs) > 1 {
		h := len(rs) / 2
		if err := c.publishBatch(rs[:h]); err != nil {
			return err
		}
		return c.publishBatch(rs[h:])
	}
	if err != nil {
		return err
	}
	c.mq.Publish(protocol.UpTopic(c.opts.Tenant, c.opts.Agent), 1, false, b)
	c.Published.Add(int64(len(rs)))
	return nil
}

func (c *Client) encode(t protocol.MsgType, body any) ([]byte, error) {
	id := c.idBase + "-" + strconv.FormatUint(c.msgID.Add(1), 36)
	return protocol.EncodeMessage(t, c.opts.Tenant, c.opts.Agent, id, time.Now().UnixMicro(), body)
}

func (c *Client) publish(topic string, t protocol.MsgType, body any) error {
	b, err := c.encode(t, body)
	if err != nil {
		return err
	}
	tok := c.mq.Publish(topic, 1, false, b)
	if !tok.WaitTimeout(c.opts.PublishTimeout) {
		return fmt.Errorf("sync: publish %s: timeout", t)
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("sync: publish %s: %w", t, err)
	}
	return nil
}

// handle applies one message from the hub. An Ack deletes outbox rows here
// and then reaches the publisher's window; a Resend is the publisher's.
func (c *Client) handle(env protocol.Envelope) {
	body := protocol.NewBody(env.Type)
	if body == nil {
		return
	}
	if err := protocol.DecodeBody(env, body); err != nil {
		c.log.Warn("sync: bad body", "type", env.Type, "err", err)
		return
	}
	switch m := body.(type) {
	case *protocol.Ack:
		n, err := c.outbox.Ack(c.ctx, m.Watermark, m.Beyond)
		if errors.Is(err, agentdb.ErrAckBeyondLastSeq) {
			c.Rejected.Add(1)
			c.log.Error("sync: ack refused: beyond the highest seq this agent assigned", "watermark", m.Watermark, "beyond", len(m.Beyond), "err", err)
			return
		}
		if err != nil {
			c.log.Error("sync: apply ack", "err", err)
			return
		}
		c.Acks.Add(1)
		c.log.Debug("sync: ack", "watermark", m.Watermark, "removed", n)
		select {
		case c.acked <- *m:
		case <-c.ctx.Done():
		}
	case *protocol.Resend:
		select {
		case c.resends <- *m:
		case <-c.ctx.Done():
		}
	case *protocol.SnapshotAnnounce:
		// The announcement after a reconnect (the retained one) replaces
		// the reconnect's own fetch (reconnectFetch).
		c.announcedAt.Store(c.connects.Load())
		v, etag := c.agent.SnapshotVersion()
		last := c.lastAnn.Swap(&protocol.SnapshotAnnounce{Version: m.Version, ETag: m.ETag})
		if last != nil && last.Version == m.Version && last.ETag == m.ETag && v == m.Version && v != 0 {
			// The retained announcement again, at the version in use: the
			// till is current (the poll still revalidates).
			return
		}
		if m.Version != v || (m.ETag != "" && m.ETag != etag) {
			c.fetchWithin(time.Duration(m.Spread) * time.Millisecond)
		}
	case *protocol.AllowanceRecall:
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.returnAllowance(m.Campaign)
		}()
	}
}

func (c *Client) heartbeat() {
	if !c.mqttUp() {
		return
	}
	st, err := c.outbox.State(c.ctx)
	if err != nil {
		return
	}
	v, _ := c.agent.SnapshotVersion()
	if err := c.publish(protocol.UpTopic(c.opts.Tenant, c.opts.Agent), protocol.MsgAgentState,
		protocol.AgentState{SnapshotVersion: v, LastSeq: st.LastSeq, OutboxDepth: st.OutboxDepth, HLC: st.HLC}); err != nil {
		c.log.Warn("sync: heartbeat", "err", err)
	}
}

// Reconnect defaults: a hub that dropped thousands of tills at once (a
// restart, a starved keepalive) must not get them all back, and all their
// snapshot requests, in the same second.
const (
	// DefaultKeepAlive is the MQTT keepalive: long enough that a loaded
	// hub answering pings late does not drop its tills (the broker waits
	// 1.5 keepalives).
	DefaultKeepAlive = 30 * time.Second
	// DefaultPingTimeout is how long the client waits for a ping's answer
	// before it calls the connection lost.
	DefaultPingTimeout = 30 * time.Second
	// ReconnectSpread is the first window a reconnect attempt waits a
	// random moment within; it doubles with each failed attempt up to
	// MaxReconnectSpread.
	ReconnectSpread    = 5 * time.Second
	MaxReconnectSpread = 30 * time.Second
	// ReconnectFetchSpread is the window within which a reconnected
	// client fetches its snapshot when no announcement came with the
	// reconnect (the retained one says whether it is current).
	ReconnectFetchSpread = 10 * time.Second
)

// reconnectWait runs before each reconnect attempt (paho's
// ReconnectingHandler): it waits a random moment within a window that
// doubles with each attempt (ReconnectSpread .. MaxReconnectSpread), so
// that the tills a hub dropped at once come back spread out. Close ends
// the wait.
func (c *Client) reconnectWait() {
	n := c.reconnects.Add(1)
	spread := min(ReconnectSpread<<min(n-1, 8), MaxReconnectSpread)
	t := time.NewTimer(rand.N(spread))
	defer t.Stop()
	select {
	case <-t.C:
	case <-c.ctx.Done():
	}
}

// reconnectFetch schedules the snapshot check of a (re)connect: at once
// without a snapshot, else at a random moment within
// ReconnectFetchSpread unless an announcement arrives first (the retained
// one is delivered on subscribe): that one says whether the till is
// current, and fetches within its own spread when it is not.
func (c *Client) reconnectFetch() {
	gen := c.connects.Load()
	if v, _ := c.agent.SnapshotVersion(); v == 0 {
		c.triggerFetch()
		return
	}
	time.AfterFunc(rand.N(c.opts.ReconnectFetchSpread), func() {
		if c.announcedAt.Load() != gen && c.ctx.Err() == nil {
			c.triggerFetch()
		}
	})
}

// fetchWithin asks for a fetch at a random moment within spread (at once
// when 0), as the hub's SnapshotAnnounce.Spread asks: the hub tells every
// till at once, and spreading their fetches keeps the hub's CPU for its
// acks. One such fetch is scheduled at a time; a reconnect still fetches
// at once.
func (c *Client) fetchWithin(spread time.Duration) {
	if spread <= 0 {
		c.triggerFetch()
		return
	}
	if !c.fetchLater.CompareAndSwap(false, true) {
		return
	}
	time.AfterFunc(rand.N(spread), func() {
		c.fetchLater.Store(false)
		c.triggerFetch()
	})
}

func (c *Client) triggerFetch() {
	select {
	case c.fetch <- struct{}{}:
	default:
	}
}

// refreshTimeout bounds the allowance requests after one sync.
const refreshTimeout = 30 * time.Second

// fetcher pulls snapshots one at a time, then refreshes allowances.
func (c *Client) fetcher() {
	defer c.wg.Done()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.fetch:
		}
		if err := c.FetchSnapshot(c.ctx); err != nil {
			if c.ctx.Err() == nil {
				c.log.Warn("sync: snapshot", "err", err)
			}
			continue
		}
		// Synced (a snapshot applied or confirmed, on every reconnect too):
		// take a share of every limited campaign now, while online, so the
		// till can sell it if it goes offline before its first sale of it.
		ctx, cancel := context.WithTimeout(c.ctx, refreshTimeout)
		if err := c.agent.RefreshAllowances(ctx); err != nil && c.ctx.Err() == nil {
			c.log.Warn("sync: allowances", "err", err)
		}
		cancel()
	}
}

// FetchSnapshot pulls the snapshot now: a delta since the version in use,
// or a full one, and applies it. A 304 (ETag unchanged) only marks the
// agent synced.
func (c *Client) FetchSnapshot(ctx context.Context) error {
	v, etag := c.agent.SnapshotVersion()
	err := c.fetchSnapshot(ctx, v, etag)
	if errors.Is(err, snapshot.ErrBaseMismatch) && v != 0 {
		return c.fetchSnapshot(ctx, 0, "")
	}
	return err
}

func (c *Client) fetchSnapshot(ctx context.Context, since uint64, etag string) error {
	var uses uint64
	p, hasUses := c.agent.(usesPositioner)
	if hasUses && since > 0 {
		uses = p.SnapshotUses() // only the codes changed after the agent's code-use position
	}
	u := c.opts.HubURL + wire.SnapshotPath(since, uses, hasUses && since > 0)
	if cp, ok := c.agent.(customersPositioner); ok && since > 0 {
		// Only the customers whose state changed after the agent's
		// customer-state position.
		u = c.opts.HubURL + wire.SnapshotPathCustomers(since, uses, hasUses, cp.SnapshotCustomers())
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.opts.Secret)
	req.Header.Set("Accept", wire.ContentTypeCBOR)
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.httpFailed(err)
		return fmt.Errorf("sync: get snapshot: %w", err)
	}
	c.httpAnswered()
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotModified:
		c.snapshotSynced()
		return c.outbox.MarkSynced(ctx, time.Now())
	case http.StatusOK:
	default:
		return hubError(resp)
	}
	// Read into a buffer of the announced size: io.ReadAll's doubling
	// would hold up to twice a multi-megabyte snapshot at once.
	var buf bytes.Buffer
	if n := resp.ContentLength; n > 0 && n <= protocol.MaxSnapshotBytes {
		buf.Grow(int(n) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(io.LimitReader(resp.Body, protocol.MaxSnapshotBytes+1)); err != nil {
		c.httpFailed(err)
		return fmt.Errorf("sync: read snapshot: %w", err)
	}
	body := buf.Bytes()
	if len(body) > protocol.MaxSnapshotBytes {
		return protocol.Errorf(protocol.CodeMessageTooLarge, "snapshot is larger than %d bytes", protocol.MaxSnapshotBytes)
	}
	ver, err := c.agent.ApplySnapshot(ctx, body, resp.Header.Get("ETag"))
	if err != nil {
		return err
	}
	c.snapshotSynced()
	c.log.Info("sync: snapshot", "version", ver, "bytes", len(body), "since", since)
	return nil
}

// RequestAllowance implements agent.Link: POST /v1/agent/allowances
// (wire.AllowanceRequest) answered with the protocol.Allowance
// granted. The request carries an id: an answer that never arrived (a
// dropped response, a timeout) leaves the id pending, and the next request
// for the campaign sends it again, so the hub answers with the same grant
// rather than a second one; the snapshot fetched at once carries the
// hub's view of the grants too (agentdb.DB.Adopt).
func (c *Client) RequestAllowance(ctx context.Context, campaign protocol.CampaignID) (protocol.Allowance, error) {
	c.pendMu.Lock()
	id, ok := c.pending[campaign]
	if !ok {
		id = c.idBase + "-a" + strconv.FormatUint(c.msgID.Add(1), 36)
		c.pending[campaign] = id
	}
	c.pendMu.Unlock()
	var a protocol.Allowance
	err := c.postJSON(ctx, PathAllowance, wire.AllowanceRequest{Campaign: campaign, RequestID: id}, &a)
	var pe *protocol.Error
	if err != nil && (!errors.As(err, &pe) || pe.Code == protocol.CodeUnavailable) {
		c.triggerFetch() // the grant may have been made: the snapshot says
		return a, err
	}
	c.pendMu.Lock()
	delete(c.pending, campaign) // answered: a grant or a refusal
	c.pendMu.Unlock()
	return a, err
}

func (c *Client) returnAllowance(campaign protocol.CampaignID) {
	left, err := c.outbox.Recall(c.ctx, campaign)
	if err != nil {
		c.log.Error("sync: recall", "err", err)
		return
	}
	for _, l := range left {
		ret := wire.AllowanceReturn{Campaign: l.Campaign, Count: max(l.Count, 0), Amount: max(l.Amount, 0)}
		var out protocol.Allowance
		if err := c.postJSON(c.ctx, PathAllowanceReturn, ret, &out); err != nil {
			c.log.Warn("sync: return allowance", "campaign", l.Campaign, "err", err)
		}
	}
}

func (c *Client) postJSON(ctx context.Context, path string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodPost, c.opts.HubURL+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.opts.Secret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		c.httpFailed(err)
		return protocol.Errorf(protocol.CodeUnavailable, "hub unreachable: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		c.httpAnswered()
		return hubError(resp)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out); err != nil {
		c.httpFailed(err) // an answer cut short: not received
		return protocol.Errorf(protocol.CodeUnavailable, "hub answer lost: %v", err)
	}
	c.httpAnswered()
	return nil
}

// hubError turns a hub error response (the problem body wire.Problem that
// hub/api writes) into its protocol.Error.
func hubError(resp *http.Response) error { return wire.ReadProblem(resp) }

// nopStore is paho's message store, keeping nothing. The SQLite outbox is
// the source of truth and everything unacknowledged is republished after a
// reconnect, so paho's own persistence adds nothing; and its resume of
// stored publishes races with its outgoing writer (paho v1.5.1, seen with
// the race detector).
type nopStore struct{}

func (nopStore) Open()                             {}
func (nopStore) Put(string, packets.ControlPacket) {}
func (nopStore) Get(string) packets.ControlPacket  { return nil }
func (nopStore) All() []string                     { return nil }
func (nopStore) Del(string)                        {}
func (nopStore) Close()                            {}
func (nopStore) Reset()                            {}

var _ mqtt.Store = nopStore{}

// JitterBackoff is exponential backoff with full jitter, honouring a 429 or
// 503 Retry-After: a fleet of agents reconnecting after an outage spreads
// out instead of hitting the hub in waves.
func JitterBackoff(lo, hi time.Duration, attempt int, resp *http.Response) time.Duration {
	if resp != nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			return min(time.Duration(s)*time.Second, hi)
		}
	}
	ceil := hi
	if attempt < 30 {
		ceil = min(lo<<attempt, hi)
	}
	if ceil <= lo {
		return lo
	}
	return lo + rand.N(ceil-lo)
}

// Authorize asks the hub online first (decide.PathAuthorize) what only it
// knows of a till decision, and with req.Hold to hold it for this till's
// transaction. The caller bounds it with ctx (the agent's OnlineTimeout).
func (c *Client) Authorize(ctx context.Context, req decide.AuthorizeRequest) (decide.AuthorizeResponse, error) {
	var out decide.AuthorizeResponse
	err := c.postJSON(ctx, decide.PathAuthorize, req, &out)
	return out, err
}

// GiftCard asks the hub a gift card's balance (wire.PathAgentGiftCard).
// The caller bounds it with ctx (the agent's OnlineTimeout).
func (c *Client) GiftCard(ctx context.Context, code string) (wire.GiftCard, error) {
	var out wire.GiftCard
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodGet, c.opts.HubURL+wire.PathAgentGiftCard+"/"+url.PathEscape(code), nil)
	if err != nil {
		return out, err
	}
	req.Header.Set("Authorization", "Bearer "+c.opts.Secret)
	resp, err := c.http.Do(req)
	if err != nil {
		c.httpFailed(err)
		return out, protocol.Errorf(protocol.CodeUnavailable, "hub unreachable: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		c.httpAnswered()
		return out, hubError(resp)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil {
		c.httpFailed(err)
		return out, protocol.Errorf(protocol.CodeUnavailable, "hub answer lost: %v", err)
	}
	c.httpAnswered()
	return out, nil
}
