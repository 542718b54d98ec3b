// Package ingest is the hub's MQTT adapter (paho): it receives the agents'
// up messages through any MQTT 3.1.1 broker (the embedded one or an external
// Mosquitto or EMQX), checks that each message speaks for the agent whose
// topic it arrived on, applies redemption batches to the ledger exactly
// once per (agent, seq), and answers on the agent's down topic with an Ack
// of what is durably applied and, when it sees a gap, a Resend. Everything
// it publishes down is signed with the hub's key (protocol.SignDown) for
// the one agent it is for; agents drop anything else.
//
// Batches are decoded fact by fact with each fact's bytes kept: a fact
// that does not decode or validate, but names its seq, is quarantined by
// the ledger and acked like an applied one, so that one bad fact never
// holds back a till's others. Only a message whose envelope cannot be
// decoded or speaks for another agent is dropped (and counted) whole.
//
// Messages are taken off the MQTT client quickly into a queue, and a
// pipeline of three goroutines takes each drain of it (up to
// MaxMessagesPerTx messages of any tills): the first re-derives the
// batches' decisions (Ledger.PrepareDrain) while the second records the
// previous drain, batches and heartbeats, in one transaction
// (Ledger.ApplyDrainStates), so that a burst costs few commits; the
// third signs and publishes the Acks, in commit order. The first stage
// takes each drain when the writer's previous one is about to end (its
// expected duration less a preparation, or when the writer says it is
// free: pace.go), so that what arrives during a transaction joins the
// next drain, not the one after it. The Ack is
// published only after the commit is durable (with a pipelined commit,
// after Ledger.SyncDrains): an agent deletes outbox rows on the hub's
// Ack, never on the broker's PUBACK.
//
// With the embedded broker (Options.Inline) ingest subscribes and
// publishes in-process, through the broker's inline client: no MQTT
// connection of its own, so no packet-id or inflight limit between the
// fleet and the hub, and a till whose messages ingest cannot take yet is
// held back on its own connection (the broker's read of it waits) rather
// than dropped. With an external broker it is an MQTT client (paho).
package ingest

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/ledger"
)

// Ledger is what ingest needs of the ledger (store/ledger implements it;
// hub/hub.go plugs it in). Applying a drain is split in two, so that the
// next drain is prepared while the previous one is written:
// PrepareDrain does the read-only work (validation, re-derivation) of
// the batches, counting those of inflight (the drain being applied
// meanwhile, or nil) as recorded; ApplyDrain records a prepared drain in
// one unit of work and returns a Result per batch, in order. A returned
// error means nothing was recorded. A prepared drain whose inflight did
// not commit is stale: ingest prepares it again with inflight nil.
type Ledger interface {
	PrepareDrain(ctx context.Context, bs []ledger.Batch, inflight ledger.Prepared) (ledger.Prepared, error)
	ApplyDrain(ctx context.Context, p ledger.Prepared) ([]ledger.Result, error)
	// RecordAgentStates records heartbeats in one unit of work and
	// returns each agent's watermark, in order.
	RecordAgentStates(ctx context.Context, sts []ledger.StateRecord) ([]ledger.StateResult, error)
	// ApplyDrainStates is ApplyDrain of p (nil: no batches) and
	// RecordAgentStates of sts in ONE unit of work (one commit): each
	// heartbeat's watermark includes the drain's batches. A returned
	// error means nothing was recorded.
	ApplyDrainStates(ctx context.Context, p ledger.Prepared, sts []ledger.StateRecord) ([]ledger.Result, []ledger.StateResult, error)
	// SyncDrains makes every unit of work recorded so far durable, for a
	// store whose commits are not (a pipelined commit); nil at once
	// otherwise. Ingest publishes a commit's Acks only after it returns
	// nil.
	SyncDrains(ctx context.Context) error
}

// Inline is a broker in the hub's own process (hub/broker), reached
// without an MQTT connection. Subscribe calls fn, on the publishing
// client's goroutine, with every message on a topic matching filter, until
// unsubscribe is called; fn may block, which holds back that client
// alone. Publish delivers a message as the hub (QoS 1).
type Inline interface {
	Subscribe(filter string, fn func(topic string, payload []byte)) (unsubscribe func(), err error)
	Publish(topic string, payload []byte, retain bool) error
}

// Defaults.
const (
	DefaultClientID         = "punchcard-hub"
	DefaultQueueSize        = 16384
	DefaultMaxMessagesPerTx = 256
	// DefaultMaxRedemptionsPerTx stops draining the queue into one ledger
	// transaction once this many redemptions are in it.
	DefaultMaxRedemptionsPerTx = 16384
	DefaultResendInterval      = 2 * time.Second
	DefaultConnectTimeout      = 10 * time.Second
	// DefaultInlineWait bounds how long an in-process delivery (Options.
	// Inline) waits for room in the queue. The wait holds back the
	// publishing till's connection (the broker reads nothing more from it,
	// its keepalive pings included); past it the message is shed, counted
	// in Stats.Shed, and the till publishes it again when no Ack comes.
	DefaultInlineWait    = 5 * time.Second
	DefaultRetryInterval = time.Second
)

// Options for New. SigningKey and one of BrokerURL and Inline are required.
type Options struct {
	BrokerURL string // e.g. "tcp://127.0.0.1:1883"
	// Inline, when set, is the embedded broker: ingest subscribes and
	// publishes through it in-process, and BrokerURL, ClientID, Username,
	// Password, ShareGroup and TLS are not used.
	Inline Inline
	// SigningKey is the hub's key (catalog.HubSigningKey); every down
	// message is signed with it.
	SigningKey          ed25519.PrivateKey
	ClientID            string        // default DefaultClientID; the session persists under it
	Username            string        // the hub's MQTT username
	Password            string        // and secret
	ShareGroup          string        // when set, subscribe as $share/<group>/... so replicas split the load
	QueueSize           int           // messages held between the MQTT client and the worker; default DefaultQueueSize
	MaxMessagesPerTx    int           // default DefaultMaxMessagesPerTx
	MaxRedemptionsPerTx int           // default DefaultMaxRedemptionsPerTx
	ResendInterval      time.Duration // minimum time between two Resends of the same gap; default DefaultResendInterval
	ConnectTimeout      time.Duration // first connection; default DefaultConnectTimeout
	Logger              *slog.Logger  // default slog.Default()
	Now                 func() time.Time
	// TLS verifies an external broker reached at an ssl:// (tls://,
	// mqtts://) BrokerURL; nil uses the system roots.
	TLS *tls.Config
	// Eager drains the queue as soon as the writer took the previous
	// drain, as before pace.go, instead of when that drain is about to
	// end: for comparison (BenchmarkIngestPace).
	Eager bool
}

func (o *Options) ensureDefaults() {
	if o.ClientID == "" {
		o.ClientID = DefaultClientID
	}
	if o.QueueSize <= 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.MaxMessagesPerTx <= 0 {
		o.MaxMessagesPerTx = DefaultMaxMessagesPerTx
	}
	if o.MaxRedemptionsPerTx <= 0 {
		o.MaxRedemptionsPerTx = DefaultMaxRedemptionsPerTx
	}
	if o.ResendInterval <= 0 {
		o.ResendInterval = DefaultResendInterval
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Log attribute keys.
const (
	logTopic  = "topic"
	logTenant = "tenant"
	logAgent  = "agent"
	logError  = "error"
	logKind   = "kind"
	logClaims = "claims"
	logSeq    = "seq"
	logCode   = "code"
	logField  = "field"
	logDetail = "detail"
)

// Stats are ingest's counters since start.
type Stats struct {
	Messages    int64 // up messages received
	Batches     int64 // batches applied
	Redemptions int64 // redemptions in applied batches (including repeats)
	States      int64 // heartbeats recorded
	Refused     int64 // messages speaking for another tenant or agent
	Malformed   int64 // messages, or facts naming no usable seq, that could not be decoded or were not valid
	Quarantined int64 // facts recorded in quarantine (not valid, but naming their seq): acked, not applied
	Oversize    int64 // payloads over protocol.MaxMessageBytes, dropped before decoding
	Shed        int64 // in-process deliveries dropped after DefaultInlineWait with the queue full (the till publishes again)
	Damped      int64 // batches re-sent while the same facts were queued or being recorded: dropped, the first one's Ack answers both
	Conflicts   int64 // conflicts the ledger found
	Acks        int64 // Acks published
	Resends     int64 // Resends published
	Errors      int64 // ledger or publish failures (the message is retried by the agent)
	// Where an Ack's time goes (issue 10): Drains is the drains that
	// carried batches or heartbeats; the rest are sums over them.
	// QueueWait sums, per message, the time from its receipt to its
	// drain; Prepare the re-derivation of each drain (Ledger.PrepareDrain);
	// Handoff the prepared drains' wait for the writer; Apply the writer's
	// transaction, commit included (ApplyDrainStates: batches and
	// heartbeats); Publish the time from a commit to its last Ack
	// handed to the broker (the wait behind earlier commits' Acks, the
	// sync of a pipelined commit, signing and publishing); Pace the
	// first stage's waits, before a drain, for the writer's previous
	// drain to near its end (pace.go; part of QueueWait).
	Drains                                            int64
	QueueWait, Prepare, Handoff, Apply, Publish, Pace time.Duration
	// ApplyBuckets[i] counts the drains whose writer transaction
	// (Apply) took at most ApplyBuckets[i] and more than the bound
	// before it (not cumulative), the last one those beyond every bound;
	// SlowApplies those of SlowApply or more, each also logged with what
	// it held.
	ApplyBuckets [len(ApplyBuckets) + 1]int64
	SlowApplies  int64
	// AckBuckets counts the recorded batch messages by the time from
	// their receipt to their Ack handed to the broker (the hub's part of
	// a till's ack latency), in the buckets of ApplyBuckets; AckTime
	// sums it.
	AckBuckets [len(ApplyBuckets) + 1]int64
	AckTime    time.Duration
}

// ApplyBuckets are the upper bounds of Stats.ApplyBuckets.
var ApplyBuckets = [...]time.Duration{time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond,
	50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2500 * time.Millisecond}

// SlowApply is the writer transaction Stats counts as slow and logs.
const SlowApply = 100 * time.Millisecond

type counters struct {
	messages, batches, redemptions, states, refused, malformed, oversize, quarantined, conflicts, acks, resends, errors, shed, damped atomic.Int64
	drains, queueNs, prepareNs, handoffNs, applyNs, publishNs, paceNs                                                                 atomic.Int64
	applyBuckets                                                                                                                      [len(ApplyBuckets) + 1]atomic.Int64
	slowApplies                                                                                                                       atomic.Int64
	ackBuckets                                                                                                                        [len(ApplyBuckets) + 1]atomic.Int64
	ackNs                                                                                                                             atomic.Int64
}

// acked counts the hub's time of the batch messages received at recv,
// whose Acks were handed to the broker at now.
func (in *Ingest) acked(recv []time.Time, now time.Time) {
	for _, t := range recv {
		d := now.Sub(t)
		i := 0
		for i < len(ApplyBuckets) && d > ApplyBuckets[i] {
			i++
		}
		in.c.ackBuckets[i].Add(1)
		in.c.ackNs.Add(int64(d))
	}
}

// applied counts a writer transaction of d and logs a slow one.
func (in *Ingest) applied(j job, d time.Duration) {
	i := 0
	for i < len(ApplyBuckets) && d > ApplyBuckets[i] {
		i++
	}
	in.c.applyBuckets[i].Add(1) // the last: beyond every bound
	if d < SlowApply {
		return
	}
	in.c.slowApplies.Add(1)
	n := 0
	for _, b := range j.batches {
		n += len(b.Redemptions)
	}
	in.opts.Logger.Warn("ingest: slow writer transaction", slog.Duration("took", d), slog.Int("batches", len(j.batches)),
		slog.Int("redemptions", n), slog.Int("states", len(j.states)))
}

// since adds the time since t to a nanosecond sum.
func since(sum *atomic.Int64, t time.Time) { sum.Add(int64(time.Since(t))) }

type message struct {
	topic   string
	payload []byte
}

// down is one message the publisher goroutine signs and publishes: an Ack
// (with the Resend its gap asks for, if any), in commit order.
type down struct {
	at     time.Time   // the commit (the first of a commit's Acks carries it)
	recv   []time.Time // the receipt of the commit's batch messages (the first carries it)
	k      agentKey
	ack    protocol.Ack
	resend bool // ask for the ack's gap (throttled by shouldResend)
}

// DefaultAckQueue is the commits' worth of Acks waiting for the
// publisher goroutine.
const DefaultAckQueue = 64

// Ingest is a running ingest client.
type Ingest struct {
	opts   Options
	ledger Ledger
	client paho.Client // nil with Options.Inline
	unsub  func()      // the inline subscription's end; nil without
	queue  chan up
	jobs   chan job      // drains prepared by run, for write
	acks   chan []down   // to the publisher goroutine
	done   chan struct{} // closed by Close: receive stops blocking
	cancel context.CancelFunc
	wg     sync.WaitGroup
	c      counters
	seq    atomic.Uint64
	idBase string

	// Pacing the drains (pace.go).
	free     chan struct{} // the writer is free
	finished atomic.Uint64 // the id of the last job the writer recorded
	pace     pacer

	mu          sync.Mutex
	lastResends map[agentKey]resendMark

	qmu    sync.Mutex
	queued map[agentKey][]span // seqs in jobs not yet recorded (damp)
}

// span is a run of one agent's seqs in the job numbered job.
type span struct{ lo, hi, job uint64 }

type agentKey struct {
	t protocol.TenantID
	a protocol.AgentID
}

type resendMark struct {
	r  protocol.Resend
	at time.Time
}

// New connects to the broker, subscribes to every agent's up topic and
// starts the worker. Close stops it.
func New(l Ledger, opts Options) (*Ingest, error) {
	opts.ensureDefaults()
	if opts.BrokerURL == "" && opts.Inline == nil {
		return nil, errors.New("ingest: Options.BrokerURL or Options.Inline is required")
	}
	if len(opts.SigningKey) != ed25519.PrivateKeySize {
		return nil, errors.New("ingest: Options.SigningKey is required (an Ed25519 private key)")
	}
	ctx, cancel := context.WithCancel(context.Background())
	in := &Ingest{
		opts: opts, ledger: l, cancel: cancel,
		queue:       make(chan up, opts.QueueSize),
		jobs:        make(chan job),
		free:        make(chan struct{}, 1),
		acks:        make(chan []down, DefaultAckQueue),
		done:        make(chan struct{}),
		idBase:      fmt.Sprintf("%x", opts.Now().UnixNano()),
		lastResends: map[agentKey]resendMark{},
		queued:      map[agentKey][]span{},
	}
	if opts.Inline != nil {
		unsub, err := opts.Inline.Subscribe(protocol.UpFilter(""), in.receiveInline)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("ingest: subscribe in-process: %w", err)
		}
		in.unsub = unsub
		in.start(ctx)
		return in, nil
	}
	filter := protocol.UpFilter(opts.ShareGroup)
	co := paho.NewClientOptions().AddBroker(opts.BrokerURL).SetClientID(opts.ClientID).
		SetUsername(opts.Username).SetPassword(opts.Password).
		SetProtocolVersion(4).SetCleanSession(false).SetOrderMatters(true).
		SetAutoReconnect(true).SetMaxReconnectInterval(5 * time.Second).
		SetConnectRetry(true).SetConnectRetryInterval(DefaultRetryInterval).
		SetKeepAlive(30 * time.Second).SetWriteTimeout(10 * time.Second).
		SetMessageChannelDepth(uint(opts.QueueSize))
	if opts.TLS != nil {
		co.SetTLSConfig(opts.TLS)
	}
	subscribed := make(chan struct{})
	var subOnce sync.Once
	co.SetOnConnectHandler(func(c paho.Client) {
		// Subscribe on every (re)connect: a broker that lost the session
		// (a restarted embedded broker) has forgotten the subscription.
		tok := c.Subscribe(filter, 1, in.receive)
		go func() {
			if tok.WaitTimeout(opts.ConnectTimeout) && tok.Error() == nil {
				subOnce.Do(func() { close(subscribed) })
				return
			}
			opts.Logger.Error("ingest: subscribe failed", slog.String(logTopic, filter), slog.Any(logError, tok.Error()))
		}()
	})
	co.SetConnectionLostHandler(func(_ paho.Client, err error) {
		opts.Logger.Warn("ingest: connection to broker lost", slog.Any(logError, err))
	})
	in.client = paho.NewClient(co)
	tok := in.client.Connect()
	if !tok.WaitTimeout(opts.ConnectTimeout) {
		in.client.Disconnect(0)
		cancel()
		return nil, fmt.Errorf("ingest: connect %s: timeout", opts.BrokerURL)
	}
	if err := tok.Error(); err != nil {
		cancel()
		return nil, fmt.Errorf("ingest: connect %s: %w", opts.BrokerURL, err)
	}
	// New returns once the hub is subscribed, so that nothing published
	// after it returns can miss the hub.
	select {
	case <-subscribed:
	case <-time.After(opts.ConnectTimeout):
		in.client.Disconnect(0)
		cancel()
		return nil, fmt.Errorf("ingest: subscribe %s: timeout", filter)
	}
	in.start(ctx)
	return in, nil
}

func (in *Ingest) start(ctx context.Context) {
	in.wg.Add(3)
	go in.run(ctx)
	go in.write(ctx)
	go in.publisher(ctx)
}

// Close disconnects and stops the worker. Messages still queued are not
// applied; the agents resend what was not acknowledged.
func (in *Ingest) Close() error {
	close(in.done)
	if in.unsub != nil {
		in.unsub()
	} else {
		in.client.Disconnect(250)
	}
	in.cancel()
	in.wg.Wait()
	return nil
}

// Stats returns ingest's counters.
func (in *Ingest) Stats() Stats {
	c := &in.c
	s := Stats{Messages: c.messages.Load(), Batches: c.batches.Load(), Redemptions: c.redemptions.Load(), States: c.states.Load(),
		Refused: c.refused.Load(), Malformed: c.malformed.Load(), Oversize: c.oversize.Load(), Shed: c.shed.Load(), Damped: c.damped.Load(), Quarantined: c.quarantined.Load(), Conflicts: c.conflicts.Load(), Acks: c.acks.Load(),
		Resends: c.resends.Load(), Errors: c.errors.Load(), Drains: c.drains.Load(), QueueWait: time.Duration(c.queueNs.Load()),
		Prepare: time.Duration(c.prepareNs.Load()), Handoff: time.Duration(c.handoffNs.Load()), Apply: time.Duration(c.applyNs.Load()),
		Publish: time.Duration(c.publishNs.Load()), Pace: time.Duration(c.paceNs.Load()), SlowApplies: c.slowApplies.Load()}
	for i := range c.applyBuckets {
		s.ApplyBuckets[i] = c.applyBuckets[i].Load()
		s.AckBuckets[i] = c.ackBuckets[i].Load()
	}
	s.AckTime = time.Duration(c.ackNs.Load())
	return s
}

// receive runs on paho's goroutine: it decodes and checks the message
// (a pipeline stage ahead of the ledger worker) and queues it, blocking
// when the queue is full, which pushes back on the broker.
func (in *Ingest) receive(_ paho.Client, m paho.Message) {
	in.receiveInline(m.Topic(), m.Payload())
}

// receiveInline is receive for Options.Inline: it runs on the publishing
// till's connection goroutine, so decoding is spread over the fleet's
// connections, and a full queue holds back that till alone.
func (in *Ingest) receiveInline(topic string, payload []byte) {
	select {
	case <-in.done:
		return
	default:
	}
	in.c.messages.Add(1)
	// The broker should have refused it (protocol.MaxPacketBytes); an
	// external one configured without a limit may not have. Dropped
	// before any decoding, and not kept.
	if n := len(payload); n > protocol.MaxMessageBytes {
		in.c.oversize.Add(1)
		in.opts.Logger.Warn("ingest: message over the size limit dropped", slog.String(logTopic, topic), slog.Int("bytes", n))
		return
	}
	u, ok := in.decode(message{topic: topic, payload: payload})
	if !ok {
		return
	}
	u.at = time.Now()
	if in.client != nil {
		// paho: blocking pushes back on the broker through the session.
		select {
		case in.queue <- u:
		case <-in.done:
		}
		return
	}
	select {
	case in.queue <- u:
		return
	default:
	}
	t := time.NewTimer(DefaultInlineWait)
	defer t.Stop()
	select {
	case in.queue <- u:
	case <-in.done:
	case <-t.C:
		in.c.shed.Add(1)
	}
}

// job is one drain of the queue, prepared, for the writer.
type job struct {
	id      uint64      // numbers the jobs (damp)
	marked  []agentKey  // the agents whose seqs it marked queued
	recv    []time.Time // the receipt of each of batches
	states  []ledger.StateRecord
	batches []ledger.Batch
	prep    ledger.Prepared // nil without batches, or when preparing failed
	// after is the group the writer was applying when prep was prepared
	// (nil: none): should that one fail, prep is prepared again.
	after ledger.Prepared
}

// run is the pipeline's first stage: it drains the queue and re-derives
// the batches (Ledger.PrepareDrain) while the writer records the
// previous drain, then hands the drain over when the writer is free. It
// drains when the writer is about to be free, not as soon as it took the
// previous drain (pace.go).
func (in *Ingest) run(ctx context.Context) {
	defer in.wg.Done()
	buf := make([]up, 0, in.opts.MaxMessagesPerTx)
	var inflight ledger.Prepared
	var jobs uint64
	var until time.Time // when to drain next (the writer's previous drain about to end); zero: at once
	var handed uint64   // the last job handed to the writer
	for {
		buf = buf[:0]
		n := 0
		select {
		case <-ctx.Done():
			return
		case u := <-in.queue:
			buf = append(buf, u)
			n += u.size()
		}
		if !until.IsZero() && len(in.queue)+1 < cap(buf) {
			t0 := time.Now()
			if !pace(ctx, in.free, until, func() bool { return in.finished.Load() >= handed }) {
				return
			}
			since(&in.c.paceNs, t0)
		}
		until = time.Time{}
	drain:
		for len(buf) < cap(buf) && n < in.opts.MaxRedemptionsPerTx {
			select {
			case u := <-in.queue:
				buf = append(buf, u)
				n += u.size()
			default:
				break drain
			}
		}
		jobs++
		j := job{id: jobs, after: inflight}
		now := time.Now()
		for _, u := range buf {
			in.c.queueNs.Add(int64(now.Sub(u.at)))
			switch {
			case u.batch != nil:
				if in.damp(&j, u) {
					in.c.damped.Add(1)
					continue
				}
				j.batches = append(j.batches, *u.batch)
				j.recv = append(j.recv, u.at)
			case u.state != nil:
				j.states = append(j.states, ledger.StateRecord{Tenant: u.tenant, Agent: u.agent, State: *u.state})
			}
		}
		if len(j.batches) == 0 && len(j.states) == 0 {
			continue // all damped: nothing for the writer
		}
		in.c.drains.Add(1)
		if len(j.batches) > 0 {
			var err error
			t0 := time.Now()
			j.prep, err = in.ledger.PrepareDrain(ctx, j.batches, inflight)
			in.pace.prepared(time.Since(t0))
			since(&in.c.prepareNs, t0)
			if err != nil {
				// Nothing is recorded or acknowledged: the agents publish again.
				in.c.errors.Add(1)
				in.opts.Logger.Error("ingest: prepare batches", slog.Int("batches", len(j.batches)), slog.Any(logError, err))
				j.batches = nil
				in.unmark(j)
				j.marked = nil
			}
		}
		t0 := time.Now()
		select {
		case in.jobs <- j:
		case <-ctx.Done():
			return
		}
		taken := time.Now()
		in.c.handoffNs.Add(int64(taken.Sub(t0)))
		inflight = j.prep
		handed = j.id
		if lead := in.pace.lead(j.size()); lead > 0 && !in.opts.Eager {
			until = taken.Add(lead)
		}
	}
}

// size is what the writer records of j: batches and heartbeats.
func (j *job) size() int { return len(j.batches) + len(j.states) }

// write is the pipeline's second stage: it records each drain, heartbeats
// and batches, and hands the Acks to the publisher.
func (in *Ingest) write(ctx context.Context) {
	defer in.wg.Done()
	prevFailed := false
	var last uint64 // the last job recorded
	for {
		// Free: the first stage need not wait any longer to drain.
		in.finished.Store(last)
		select {
		case in.free <- struct{}{}:
		default:
		}
		var j job
		select {
		case <-ctx.Done():
			return
		case j = <-in.jobs:
		}
		var out []down
		t0 := time.Now()
		if j.prep != nil && j.after != nil && prevFailed {
			// Prepared counting on facts that were not recorded.
			var err error
			if j.prep, err = in.ledger.PrepareDrain(ctx, j.batches, nil); err != nil {
				in.c.errors.Add(1)
				in.opts.Logger.Error("ingest: prepare batches", slog.Int("batches", len(j.batches)), slog.Any(logError, err))
				j.prep = nil
			}
		}
		failed := false
		if j.prep != nil || len(j.states) > 0 {
			t1 := time.Now()
			out, failed = in.applyDrain(ctx, j, out)
			in.applied(j, time.Since(t1))
		}
		in.unmark(j) // recorded (a re-send is applied, a no-op, and acked) or failed (applied again)
		prevFailed = failed
		last = j.id
		took := time.Since(t0)
		in.c.applyNs.Add(int64(took))
		if !failed {
			in.pace.applied(j.size(), took)
		}
		if len(out) == 0 {
			continue
		}
		out[0].at = time.Now()
		if !failed && j.prep != nil {
			out[0].recv = j.recv
		}
		select {
		case in.acks <- out:
		case <-ctx.Done():
			return
		}
	}
}

// damp reports whether u's batch only re-sends facts that are queued in
// a job not yet recorded (the till published again while its first
// message waited: under load, after its ack timeout), so that it need not
// be prepared and recorded twice: the first one's Ack, published after
// its commit, answers both. A first one that fails is unmarked and the
// re-sends after it are applied. Otherwise it marks u's seqs as queued in
// j (when they are one contiguous run, as a till's outbox sends them).
func (in *Ingest) damp(j *job, u up) bool {
	rs := u.batch.Redemptions
	if len(rs) == 0 {
		return false
	}
	lo, hi := rs[0].ID.Seq, rs[0].ID.Seq
	for _, r := range rs {
		lo, hi = min(lo, r.ID.Seq), max(hi, r.ID.Seq)
	}
	k := agentKey{u.tenant, u.agent}
	in.qmu.Lock()
	defer in.qmu.Unlock()
	spans := in.queued[k]
	if lo > 0 {
		all := true
		for _, r := range rs {
			found := false
			for _, sp := range spans {
				if r.ID.Seq >= sp.lo && r.ID.Seq <= sp.hi {
					found = true
					break
				}
			}
			if !found {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	if lo == 0 || hi-lo+1 != uint64(len(rs)) {
		return false // not one run of usable seqs: not marked
	}
	if len(spans) == 0 || spans[len(spans)-1].job != j.id {
		j.marked = append(j.marked, k)
	}
	in.queued[k] = append(spans, span{lo: lo, hi: hi, job: j.id})
	return false
}

// unmark forgets the seqs j marked queued.
func (in *Ingest) unmark(j job) {
	if len(j.marked) == 0 {
		return
	}
	in.qmu.Lock()
	defer in.qmu.Unlock()
	for _, k := range j.marked {
		spans := in.queued[k][:0]
		for _, sp := range in.queued[k] {
			if sp.job != j.id {
				spans = append(spans, sp)
			}
		}
		if len(spans) == 0 {
			delete(in.queued, k)
		} else {
			in.queued[k] = spans
		}
	}
}

// up is one decoded, identity-checked up message.
type up struct {
	at     time.Time // received
	tenant protocol.TenantID
	agent  protocol.AgentID
	batch  *ledger.Batch
	state  *protocol.AgentState
}

func (u up) size() int {
	if u.batch != nil {
		return len(u.batch.Redemptions)
	}
	return 1
}

// decodeBatch decodes a batch body fact by fact, keeping each fact's bytes:
// a fact that does not decode is passed on with the error and the ID it
// still names, for the ledger to quarantine, rather than drop the batch
// and with it every later fact of the till.
func decodeBatch(env protocol.Envelope, tenant protocol.TenantID, agent protocol.AgentID) (*ledger.Batch, error) {
	var raw protocol.RawBatch
	if err := protocol.DecodeBody(env, &raw); err != nil {
		return nil, err
	}
	b := &ledger.Batch{Tenant: tenant, Agent: agent, Redemptions: make([]protocol.Redemption, len(raw.Redemptions)),
		Raw: make([][]byte, len(raw.Redemptions))}
	for i, f := range raw.Redemptions {
		r, id, err := protocol.DecodeFact(f)
		if err != nil {
			if b.Malformed == nil {
				b.Malformed = make([]error, len(raw.Redemptions))
			}
			b.Malformed[i], r = err, protocol.Redemption{ID: id}
		}
		b.Redemptions[i], b.Raw[i] = r, f
	}
	return b, nil
}

// decode checks and decodes one message. It never panics on outside input.
func (in *Ingest) decode(m message) (up, bool) {
	log := in.opts.Logger
	tenant, agent, ok := protocol.ParseUpTopic(m.topic)
	if !ok {
		in.c.malformed.Add(1)
		log.Warn("ingest: message on an unexpected topic", slog.String(logTopic, m.topic))
		return up{}, false
	}
	env, err := protocol.DecodeEnvelope(m.payload)
	if err != nil {
		in.c.malformed.Add(1)
		log.Warn("ingest: bad envelope", slog.String(logTenant, string(tenant)), slog.String(logAgent, string(agent)), slog.Any(logError, err))
		return up{}, false
	}
	if env.Tenant != tenant || env.Sender != agent {
		in.c.refused.Add(1)
		log.Warn("ingest: message refused: sender does not match its topic",
			slog.String(logTenant, string(tenant)), slog.String(logAgent, string(agent)),
			slog.String(logClaims, string(env.Tenant)+"/"+string(env.Sender)), slog.String(logKind, env.Type.String()))
		return up{}, false
	}
	u := up{tenant: tenant, agent: agent}
	switch env.Type {
	case protocol.MsgBatch:
		u.batch, err = decodeBatch(env, tenant, agent)
	case protocol.MsgAgentState:
		u.state = new(protocol.AgentState)
		err = protocol.DecodeBody(env, u.state)
	default:
		err = protocol.Errorf(protocol.CodeMessageMalformed, "%s is not an up message", env.Type)
	}
	if err != nil {
		in.c.malformed.Add(1)
		log.Warn("ingest: bad message body", slog.String(logTenant, string(tenant)), slog.String(logAgent, string(agent)), slog.Any(logError, err))
		return up{}, false
	}
	return u, true
}

// applyDrain records a drain's batches (j.prep, if any) and heartbeats
// in one transaction and answers them: one Ack per agent of the
// batches first (what the tills' outboxes wait for: each Ack is signed in
// turn), then the heartbeats. failed reports that the batches were
// not recorded; should the transaction fail, the heartbeats are
// recorded on their own (their Acks tell a reconnecting till where it
// stands), the batches are published again by their tills.
func (in *Ingest) applyDrain(ctx context.Context, j job, out []down) (_ []down, failed bool) {
	var p ledger.Prepared
	if j.prep != nil {
		p = j.prep
	}
	res, sres, err := in.ledger.ApplyDrainStates(ctx, p, j.states)
	if err != nil {
		if len(j.states) > 0 && p != nil {
			in.opts.Logger.Error("ingest: apply drain", slog.Int("batches", len(j.batches)), slog.Int("states", len(j.states)), slog.Any(logError, err))
			out = in.recordStates(ctx, j.states, out)
		} else if p == nil {
			in.c.errors.Add(int64(len(j.states)))
			in.opts.Logger.Error("ingest: agent states", slog.Int("states", len(j.states)), slog.Any(logError, err))
			return out, false
		}
		if p != nil {
			// Nothing was recorded and nothing is acknowledged: the
			// agents publish again.
			in.c.errors.Add(1)
			in.opts.Logger.Error("ingest: apply batches", slog.Int("batches", len(j.batches)), slog.Any(logError, err))
		}
		return out, p != nil
	}
	if p != nil {
		out = in.answerBatches(j.batches, res, out)
	}
	return in.answerStates(j.states, sres, out), false
}

// recordStates records heartbeats in one transaction and answers each
// with an Ack carrying the agent's watermark, so that an agent learns what
// the hub holds of it as soon as it connects, before it has published
// anything. An agent re-enrolled with a fresh database under an existing
// id uses it to move its sequence counter past every seq the hub already
// applied; reusing one would make the hub drop the new redemption as a
// duplicate.
func (in *Ingest) recordStates(ctx context.Context, states []ledger.StateRecord, out []down) []down {
	res, err := in.ledger.RecordAgentStates(ctx, states)
	if err != nil {
		in.c.errors.Add(int64(len(states)))
		in.opts.Logger.Error("ingest: agent states", slog.Int("states", len(states)), slog.Any(logError, err))
		return out
	}
	return in.answerStates(states, res, out)
}

// answerStates answers recorded heartbeats, each with an Ack carrying
// the agent's watermark.
func (in *Ingest) answerStates(states []ledger.StateRecord, res []ledger.StateResult, out []down) []down {
	for i, s := range states {
		if err := res[i].Err; err != nil {
			in.c.errors.Add(1)
			in.opts.Logger.Error("ingest: agent state", slog.String(logTenant, string(s.Tenant)), slog.String(logAgent, string(s.Agent)), slog.Any(logError, err))
			continue
		}
		in.c.states.Add(1)
		out = append(out, down{k: agentKey{s.Tenant, s.Agent}, ack: protocol.Ack{Watermark: res[i].Watermark}})
	}
	return out
}

// answerBatches answers recorded batches (res from the ledger, in
// order): one Ack per agent.
func (in *Ingest) answerBatches(batches []ledger.Batch, res []ledger.Result, out []down) []down {
	// One Ack per agent: the last result holds its latest watermark.
	last := map[agentKey]int{}
	var order []agentKey
	for i, b := range batches {
		r := res[i]
		if r.Err != nil {
			if protocol.ErrorCode(r.Err) == protocol.CodeForbidden {
				in.c.refused.Add(1)
			} else {
				in.c.malformed.Add(1)
			}
			in.opts.Logger.Warn("ingest: batch refused", slog.String(logTenant, string(b.Tenant)), slog.String(logAgent, string(b.Agent)), slog.Any(logError, r.Err))
			continue
		}
		in.c.batches.Add(1)
		in.c.redemptions.Add(int64(len(b.Redemptions)))
		in.c.conflicts.Add(int64(len(r.Conflicts)))
		in.c.quarantined.Add(int64(len(r.Quarantined)))
		for _, q := range r.Quarantined {
			in.opts.Logger.Warn("ingest: fact quarantined", slog.String(logTenant, string(q.Tenant)), slog.String(logAgent, string(q.Agent)),
				slog.Uint64(logSeq, q.Seq), slog.String(logCode, string(q.Code)), slog.String(logField, q.Field), slog.String(logDetail, q.Message))
		}
		if r.Dropped > 0 {
			in.c.malformed.Add(int64(r.Dropped))
			in.opts.Logger.Warn("ingest: facts without a usable seq dropped", slog.String(logTenant, string(b.Tenant)), slog.String(logAgent, string(b.Agent)),
				slog.Int("facts", r.Dropped))
		}
		for _, c := range r.Conflicts {
			in.opts.Logger.Warn("ledger conflict", slog.String(logTenant, string(c.Tenant)), slog.String(logKind, string(c.Kind)),
				slog.String("redemption", c.Redemption.String()), slog.String(logDetail, c.Detail))
		}
		k := agentKey{b.Tenant, b.Agent}
		if _, ok := last[k]; !ok {
			order = append(order, k)
		}
		last[k] = i
	}
	for _, k := range order {
		out = append(out, down{k: k, ack: res[last[k]].Ack, resend: true})
	}
	return out
}

// publisher signs and publishes the Acks of each commit, in commit order,
// while the worker goes on with the next messages.
func (in *Ingest) publisher(ctx context.Context) {
	defer in.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case ds := <-in.acks:
			if err := in.ledger.SyncDrains(ctx); err != nil {
				// Not acknowledged: the agents publish again.
				in.c.errors.Add(1)
				in.opts.Logger.Error("ingest: sync", slog.Int("acks", len(ds)), slog.Any(logError, err))
				continue
			}
			// The batches' Acks come first (applyDrain): their messages'
			// time ends with the last of them.
			lastBatch := -1
			for i, d := range ds {
				if d.resend {
					lastBatch = i
				}
			}
			for i, d := range ds {
				if i == lastBatch+1 && i > 0 {
					in.acked(ds[0].recv, time.Now())
				}
				if err := in.publish(d.k.t, d.k.a, protocol.MsgAck, d.ack); err != nil {
					continue
				}
				in.c.acks.Add(1)
				if !d.resend {
					continue
				}
				if rs, ok := ledger.Gap(d.ack); ok && in.shouldResend(d.k, rs) {
					if err := in.publish(d.k.t, d.k.a, protocol.MsgResend, rs); err == nil {
						in.c.resends.Add(1)
					}
				}
			}
			if len(ds) > 0 {
				if lastBatch == len(ds)-1 {
					in.acked(ds[0].recv, time.Now())
				}
				since(&in.c.publishNs, ds[0].at)
			}
		}
	}
}

// shouldResend throttles Resends: the same gap is asked for at most once
// per ResendInterval, as batches beyond it keep arriving.
func (in *Ingest) shouldResend(k agentKey, rs protocol.Resend) bool {
	now := in.opts.Now()
	in.mu.Lock()
	defer in.mu.Unlock()
	if prev, ok := in.lastResends[k]; ok && prev.r == rs && now.Sub(prev.at) < in.opts.ResendInterval {
		return false
	}
	in.lastResends[k] = resendMark{r: rs, at: now}
	return true
}

func (in *Ingest) publish(t protocol.TenantID, a protocol.AgentID, typ protocol.MsgType, body any) error {
	topic := protocol.DownTopic(t, a)
	payload, err := in.sign(t, a, typ, body)
	if err != nil {
		in.c.errors.Add(1)
		in.opts.Logger.Error("ingest: encode", slog.String(logKind, typ.String()), slog.Any(logError, err))
		return err
	}
	// Not waited for: a lost Ack makes the agent publish again, which is
	// a no-op here that is acknowledged again.
	if in.opts.Inline != nil {
		if err := in.opts.Inline.Publish(topic, payload, false); err != nil {
			in.c.errors.Add(1)
			in.opts.Logger.Error("ingest: publish", slog.String(logTopic, topic), slog.Any(logError, err))
			return err
		}
		return nil
	}
	tok := in.client.Publish(topic, 1, false, payload)
	if tok.Error() != nil {
		in.c.errors.Add(1)
		in.opts.Logger.Error("ingest: publish", slog.String(logTopic, topic), slog.Any(logError, tok.Error()))
		return tok.Error()
	}
	return nil
}

// AnnounceSnapshot publishes a SnapshotAnnounce on the agent's retained
// snapshot topic and waits for the broker to take it, so that an agent that
// connects later still learns of it.
func (in *Ingest) AnnounceSnapshot(ctx context.Context, t protocol.TenantID, a protocol.AgentID, s protocol.SnapshotAnnounce) error {
	return in.publishWait(ctx, protocol.SnapshotTopic(t, a), true, t, a, protocol.MsgSnapshotAnnounce, s)
}

// RecallAllowance asks an agent to give back its unused allowance of
// campaign (of every campaign when campaign is empty).
func (in *Ingest) RecallAllowance(ctx context.Context, t protocol.TenantID, a protocol.AgentID, campaign protocol.CampaignID) error {
	return in.publishWait(ctx, protocol.DownTopic(t, a), false, t, a, protocol.MsgAllowanceRecall, protocol.AllowanceRecall{Campaign: campaign})
}

// sign encodes a down message for agent a of tenant t, signed with the
// hub's key.
func (in *Ingest) sign(t protocol.TenantID, a protocol.AgentID, typ protocol.MsgType, body any) ([]byte, error) {
	id := fmt.Sprintf("%s-%d", in.idBase, in.seq.Add(1))
	return protocol.SignDown(in.opts.SigningKey, typ, t, a, id, in.opts.Now().UnixMicro(), body)
}

func (in *Ingest) publishWait(ctx context.Context, topic string, retain bool, t protocol.TenantID, a protocol.AgentID, typ protocol.MsgType, body any) error {
	if err := protocol.ValidateID("tenant", string(t)); err != nil {
		return err
	}
	payload, err := in.sign(t, a, typ, body)
	if err != nil {
		return err
	}
	if in.opts.Inline != nil {
		// In-process: the broker has taken it when Publish returns.
		if err := in.opts.Inline.Publish(topic, payload, retain); err != nil {
			return fmt.Errorf("ingest: publish %s: %w", topic, err)
		}
		return nil
	}
	tok := in.client.Publish(topic, 1, retain, payload)
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return fmt.Errorf("ingest: publish %s: %w", topic, err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
