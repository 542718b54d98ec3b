// Package broker is the hub's embedded MQTT broker (mochi-mqtt), so that one
// hub process is a complete installation. It is sized so that a QoS 1
// burst from many agents is queued rather than dropped, counts whatever it
// drops anyway, and confines every agent to its own topics:
//
//   - an agent connects with username "<tenant>/<agent>" and its secret,
//     checked through an Authenticator (the catalog's hashed API keys), and
//     with a client ID exactly equal to that username, so that no one can
//     take over another client's session (acme/till-1 cannot be client
//     acme/till-10);
//   - an agent's CONNECT may not carry a Will: a Will is published by the
//     broker when the client is gone, and would otherwise escape the
//     publish ACL. Every Will is also put through the publish ACL when it
//     is due (OnWill), in case one is ever admitted;
//   - it may publish only to its own up topic and subscribe only to its own
//     down and snapshot topics (exact topics, no wildcards);
//   - no packet may exceed Options.MaxPacketSize (protocol.MaxPacketBytes):
//     a bigger one is refused on its fixed header, before its body is read,
//     and the client is disconnected;
//   - the hub's own client (username Options.HubUsername) has full access;
//   - nothing waits without bound for a till that is offline: the queued
//     copies of what the hub sends down expire (Options.DownExpiry,
//     Options.SnapshotExpiry), while the retained SnapshotAnnounce, the
//     till's state, stays retained. Nothing is lost by it: the agent's
//     SQLite outbox keeps every sale until the hub's Ack, the hub answers
//     the heartbeat of a reconnecting agent with a fresh Ack, and the agent
//     pulls its snapshot on every reconnect;
//   - each connection is small (Options.MaxPendingWrites), so ten thousand
//     tills fit in a few hundred megabytes.
//
// An external broker (Mosquitto, EMQX) can replace it; docs/operations.md
// gives the equivalent settings.
package broker

import (
	"bytes"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/punchcard/punchcard/protocol"
)

// Authenticator checks an agent's MQTT credentials. It returns nil when
// secret is the agent's current secret, and an error otherwise
// (CodeUnauthenticated, or any error when the check itself failed: the
// connection is refused either way).
type Authenticator interface {
	AuthenticateAgent(ctx context.Context, tenant protocol.TenantID, agent protocol.AgentID, secret string) error
}

// Defaults.
const (
	DefaultAddr        = "127.0.0.1:1883"
	DefaultTLSAddr     = "127.0.0.1:8883"
	DefaultHubUsername = "punchcard-hub"
	// DefaultMaxPendingWrites is the per-client queue of packets waiting to
	// be written to the socket (mochi's MaximumClientWritesPending; its own
	// default is 8192). It is a channel of pointers made when a connection
	// is accepted, before its CONNECT says who it is, so mochi v2 sizes it
	// alike for every client: 256 costs 2 KiB per connected till (1024
	// cost 8 KiB, 32768 256 KiB). The channel is scanned by every garbage
	// collection, whatever it holds: at 10,000 tills 1024 was 80 MB, 40%
	// of the hub's live heap. A till is sent a few Acks at a time, at most
	// an Ack and a Resend for each of the batches it has in flight
	// (agent/uplink's DefaultWindow, 64). 128 (1 KiB) stalled hub/ingest's
	// Burst test: a till publishing faster than its Acks are written loses
	// Acks and Resends it waits for. A hub reading through an MQTT
	// connection of its own (ingest over paho, for an external broker)
	// takes every till's messages on that one connection: give a broker
	// it uses a deep queue (Options.MaxPendingWrites); a message dropped
	// beyond it is one the till publishes again when the hub's Ack does
	// not come (agent/uplink's retransmission timeout).
	DefaultMaxPendingWrites = 256
	// DefaultReadBufferSize is each connection's read buffer (mochi's
	// ClientNetReadBufferSize; its own default is 2 KiB). A till's messages
	// are a few hundred bytes; a bigger packet is read past the buffer,
	// straight into its own. Each KiB here is ~10 MB at 10,000 tills.
	DefaultReadBufferSize = 1024
	// DefaultMaxInflight is the QoS 1/2 messages in flight per client
	// (mochi's MaximumInflight and ReceiveMaximum): the MQTT maximum, as a
	// packet id is 16 bits. A bound, not an allocation: an offline till's
	// queue is bounded sooner by DownExpiry.
	DefaultMaxInflight = 65535
	// DefaultDownExpiry is how long a message the hub publishes on an
	// agent's down topic (Ack, Resend, AllowanceRecall) waits for an
	// offline agent. An Ack or Resend is stale by then (a reconnecting
	// agent's heartbeat is answered with a fresh Ack); an AllowanceRecall
	// still reaches a till offline for up to a day.
	DefaultDownExpiry = 24 * time.Hour
	// DefaultSnapshotExpiry is how long a queued copy of a SnapshotAnnounce
	// waits for an offline agent. Queued copies are history: the retained
	// one (never expired) is delivered again when the agent subscribes on
	// reconnect, and the agent pulls its snapshot then anyway.
	DefaultSnapshotExpiry = 5 * time.Second
	// DefaultSessionExpiry is how long the session of a disconnected
	// client (its subscriptions and queue) is kept. Agents and the hub
	// subscribe again on every connect, so an expired session loses
	// nothing; a till offline for longer then costs the broker nothing
	// (each session left costs a little CPU every second: mochi's expiry
	// loops visit every client).
	DefaultSessionExpiry = DefaultDownExpiry
	// DefaultAuthTimeout bounds one credential check.
	DefaultAuthTimeout = 5 * time.Second
	// DefaultMaxPacketSize is the largest MQTT packet the broker reads:
	// an envelope of protocol.MaxMessageBytes with its topic and headers.
	DefaultMaxPacketSize = protocol.MaxPacketBytes
	// refusedWillTopic is where a Will the ACL refuses is sent instead: a
	// '$' topic, which no wildcard matches and no agent may subscribe to.
	refusedWillTopic = "$punchcard/refused-will"
)

// Options for New. Auth and HubSecret are required.
type Options struct {
	Addr             string        // TCP listen address; default DefaultAddr, "127.0.0.1:0" picks a port
	Auth             Authenticator // agents' credentials
	HubUsername      string        // default DefaultHubUsername
	HubSecret        string        // the hub client's password
	MaxPendingWrites int32         // default DefaultMaxPendingWrites
	ReadBufferSize   int           // bytes per connection; default DefaultReadBufferSize
	MaxInflight      uint16        // default DefaultMaxInflight
	DownExpiry       time.Duration // whole seconds; default DefaultDownExpiry
	SnapshotExpiry   time.Duration // whole seconds; default DefaultSnapshotExpiry
	SessionExpiry    time.Duration // whole seconds; default DefaultSessionExpiry
	// SweepEvery is how often expired sessions and retained messages are
	// looked for; default DefaultSweepEvery, negative: mochi's second
	// (and for queued copies too, which are otherwise looked for every
	// min(SnapshotExpiry, DownExpiry): slowInflightSweep).
	SweepEvery    time.Duration
	AuthTimeout   time.Duration // default DefaultAuthTimeout
	MaxPacketSize uint32        // bytes; default DefaultMaxPacketSize
	Logger        *slog.Logger  // default slog.Default()
	// TLS, when set, adds a listener speaking MQTT over TLS on TLSAddr
	// (default DefaultTLSAddr), for agents across a network; the plain
	// listener on Addr stays for the hub's own client on loopback.
	TLS     *tls.Config
	TLSAddr string
}

func (o *Options) ensureDefaults() {
	if o.Addr == "" {
		o.Addr = DefaultAddr
	}
	if o.HubUsername == "" {
		o.HubUsername = DefaultHubUsername
	}
	if o.TLS != nil && o.TLSAddr == "" {
		o.TLSAddr = DefaultTLSAddr
	}
	if o.MaxPendingWrites <= 0 {
		o.MaxPendingWrites = DefaultMaxPendingWrites
	}
	if o.ReadBufferSize <= 0 {
		o.ReadBufferSize = DefaultReadBufferSize
	}
	if o.MaxInflight == 0 {
		o.MaxInflight = DefaultMaxInflight
	}
	if o.SweepEvery == 0 {
		o.SweepEvery = DefaultSweepEvery
	}
	if o.DownExpiry < time.Second {
		o.DownExpiry = DefaultDownExpiry
	}
	if o.SnapshotExpiry < time.Second {
		o.SnapshotExpiry = DefaultSnapshotExpiry
	}
	if o.SessionExpiry < time.Second {
		o.SessionExpiry = DefaultSessionExpiry
	}
	if o.AuthTimeout <= 0 {
		o.AuthTimeout = DefaultAuthTimeout
	}
	if o.MaxPacketSize == 0 {
		o.MaxPacketSize = DefaultMaxPacketSize
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Stats are the broker's counters since start.
type Stats struct {
	Dropped       int64 // messages dropped for any reason (sum of the next three)
	QosDropped    int64 // QoS messages given up (expired, refused, a persistent session cleared)
	QueuedOffline int64 // QoS messages queued for a client while it was offline (each expires: Options.DownExpiry, SnapshotExpiry)
	Expired       int64 // queued QoS messages that expired unsent or unacknowledged (not in Dropped)
	Inflight      int64 // QoS messages held for clients now, online or not
	QosDiscarded  int64 // QoS messages in flight to a clean-session client when it left (by design; not in Dropped)
	WriteDropped  int64 // messages dropped because a client's write queue was full
	QuotaDropped  int64 // messages dropped because a client's inflight store was full
	AuthRefused   int64 // connections refused for bad credentials, a client ID not the username, or a Will
	// AuthUnavailable counts connections answered "server unavailable"
	// because their credentials could not be checked (AuthTimeout, a
	// database error); clients retry them.
	AuthUnavailable int64
	WillsRefused    int64 // agents' CONNECTs refused for carrying a Will, plus Wills the ACL refused when due
	ACLDenied       int64 // publishes, subscriptions or Wills refused by the ACL
	Clients         int64 // connected now
	MessagesRecvd   int64
	MessagesSent    int64
}

// Broker is a running embedded broker.
type Broker struct {
	srv   *mqtt.Server
	tcp   *listeners.TCP
	tls   *listeners.TCP // nil without Options.TLS
	hook  *hook
	subID atomic.Int32 // the last inline subscription identifier handed out
}

// New starts a broker listening on opts.Addr.
func New(opts Options) (*Broker, error) {
	opts.ensureDefaults()
	if opts.Auth == nil {
		return nil, errors.New("broker: Options.Auth is required")
	}
	if opts.HubSecret == "" {
		return nil, errors.New("broker: Options.HubSecret is required")
	}
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumClientWritesPending = opts.MaxPendingWrites
	caps.MaximumInflight = opts.MaxInflight
	caps.ReceiveMaximum = opts.MaxInflight
	// mochi's default (86400 s) deletes retained messages and queued QoS 1
	// messages older than a day: a till offline for a weekend would miss
	// its retained SnapshotAnnounce. 0 disables the forced expiry; the
	// hook's OnPublish gives the hub's down messages their own expiry
	// instead, which mochi applies to queued copies, not retained ones.
	caps.MaximumMessageExpiryInterval = 0
	caps.MaximumPacketSize = opts.MaxPacketSize
	caps.MaximumSessionExpiryInterval = uint32(min(opts.SessionExpiry/time.Second, 1<<32-1))
	srv := mqtt.New(&mqtt.Options{
		// The hub's ingest subscribes and publishes in-process through
		// mochi's inline client (Subscribe, Publish).
		InlineClient:            true,
		Capabilities:            caps,
		ClientNetReadBufferSize: opts.ReadBufferSize,
		Logger:                  opts.Logger.With(slog.String("component", "mqtt")),
		SysTopicResendInterval:  60,
	})
	h := &hook{opts: opts}
	h.srv.Store(srv)
	if err := srv.AddHook(h, nil); err != nil {
		return nil, fmt.Errorf("broker: hook: %w", err)
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "tcp", Address: opts.Addr})
	if err := srv.AddListener(tcp); err != nil {
		return nil, fmt.Errorf("broker: listen %s: %w", opts.Addr, err)
	}
	var tlsl *listeners.TCP
	if opts.TLS != nil {
		tlsl = listeners.NewTCP(listeners.Config{ID: "tls", Address: opts.TLSAddr, TLSConfig: opts.TLS})
		if err := srv.AddListener(tlsl); err != nil {
			srv.Close()
			return nil, fmt.Errorf("broker: listen %s: %w", opts.TLSAddr, err)
		}
	}
	if err := srv.Serve(); err != nil {
		srv.Close()
		return nil, fmt.Errorf("broker: serve: %w", err)
	}
	if opts.SweepEvery > 0 && !slowSweeps(srv, opts.SweepEvery) {
		opts.Logger.Warn("broker: mochi's expiry sweeps not found; they stay at every second")
	}
	if every := min(opts.SnapshotExpiry, opts.DownExpiry); opts.SweepEvery > 0 && every > time.Second && !slowInflightSweep(srv, every) {
		opts.Logger.Warn("broker: mochi's inflight expiry sweep not found; it stays at every second")
	}
	return &Broker{srv: srv, tcp: tcp, tls: tlsl, hook: h}, nil
}

// Addr is the address the broker listens on (with the real port).
func (b *Broker) Addr() string { return b.tcp.Address() }

// URL is the broker's address as an MQTT client wants it.
func (b *Broker) URL() string { return "tcp://" + b.Addr() }

// TLSAddr is the TLS listener's address (with the real port), "" without
// Options.TLS.
func (b *Broker) TLSAddr() string {
	if b.tls == nil {
		return ""
	}
	return b.tls.Address()
}

// TLSURL is the TLS listener as an MQTT client wants it (ssl://), ""
// without Options.TLS.
func (b *Broker) TLSURL() string {
	if b.tls == nil {
		return ""
	}
	return "ssl://" + b.TLSAddr()
}

// Stats returns the broker's counters.
func (b *Broker) Stats() Stats {
	info := b.srv.Info
	s := Stats{
		QosDropped:      b.hook.qosDropped.Load(),
		QosDiscarded:    b.hook.qosDiscarded.Load(),
		QueuedOffline:   b.hook.queuedOffline.Load(),
		Inflight:        atomic.LoadInt64(&info.Inflight),
		Expired:         b.hook.expired.Load(),
		WriteDropped:    atomic.LoadInt64(&info.MessagesDropped),
		QuotaDropped:    atomic.LoadInt64(&info.InflightDropped),
		AuthRefused:     b.hook.authRefused.Load(),
		AuthUnavailable: b.hook.authUnavailable.Load(),
		WillsRefused:    b.hook.willsRefused.Load(),
		ACLDenied:       b.hook.aclDenied.Load(),
		Clients:         atomic.LoadInt64(&info.ClientsConnected),
		MessagesRecvd:   atomic.LoadInt64(&info.MessagesReceived),
		MessagesSent:    atomic.LoadInt64(&info.MessagesSent),
	}
	s.Dropped = s.QosDropped + s.WriteDropped + s.QuotaDropped
	return s
}

// Subscribe delivers every message published on a topic matching filter
// to fn, in the broker's own process (mochi's inline client): the hub's
// ingest takes the agents' messages this way, with no MQTT connection of
// its own and so no packet-id or inflight limit between the fleet and the
// hub. fn runs on the publishing client's goroutine after the broker has
// acknowledged the message to it; while fn blocks, the broker reads
// nothing more from that client. payload is not used by the broker after
// the call and may be kept. unsubscribe ends the subscription.
func (b *Broker) Subscribe(filter string, fn func(topic string, payload []byte)) (unsubscribe func(), err error) {
	id := int(b.subID.Add(1))
	err = b.srv.Subscribe(filter, id, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		fn(pk.TopicName, pk.Payload)
	})
	if err != nil {
		return nil, fmt.Errorf("broker: subscribe %s: %w", filter, err)
	}
	return func() { _ = b.srv.Unsubscribe(filter, id) }, nil
}

// Publish publishes a message as the hub, in-process, at QoS 1 (and
// retained when retain is set), through the same hooks as a message the
// hub's MQTT client would publish: down messages get their expiry. It
// returns when every subscriber's copy is queued (or dropped and counted).
func (b *Broker) Publish(topic string, payload []byte, retain bool) error {
	if err := b.srv.Publish(topic, payload, retain, 1); err != nil {
		return fmt.Errorf("broker: publish %s: %w", topic, err)
	}
	return nil
}

// Close stops the broker and disconnects every client.
//
// It closes the listeners and their clients itself before mochi's Close:
// mochi v2.7.9 closes a listener's clients through Clients.GetByListener,
// which takes the clients' read lock twice (it calls Len inside), so a
// client leaving at that moment (Clients.Delete waiting for the write
// lock) deadlocks the close (seen in agent/uplink's tests on a clean clone).
// closeClients takes the read lock once; CloseAll then waits for every
// client goroutine, and mochi's own pass finds its listeners closed.
func (b *Broker) Close() error {
	b.srv.Listeners.CloseAll(b.closeClients)
	return b.srv.Close()
}

func (b *Broker) closeClients(listener string) {
	for _, cl := range b.srv.Clients.GetAll() {
		if cl.Net.Listener == listener && !cl.Closed() {
			_ = b.srv.DisconnectClient(cl, packets.ErrServerShuttingDown)
		}
	}
}

// hook is the broker's auth, ACL and drop-counting hook.
type hook struct {
	mqtt.HookBase
	opts         Options
	qosDropped   atomic.Int64
	qosDiscarded atomic.Int64
	authRefused  atomic.Int64
	// authUnavailable counts connections answered "server unavailable":
	// their credentials could not be checked.
	authUnavailable atomic.Int64
	srv             atomic.Pointer[mqtt.Server] // for OnConnect's CONNACK
	verdicts        sync.Map                    // *mqtt.Client -> authVerdict, from OnConnect to OnConnectAuthenticate
	willsRefused    atomic.Int64
	aclDenied       atomic.Int64
	queuedOffline   atomic.Int64
	expired         atomic.Int64
}

func (h *hook) ID() string { return "punchcard" }

func (h *hook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnect, mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnWill, mqtt.OnQosDropped, mqtt.OnPublish, mqtt.OnQosPublish}, []byte{b})
}

// Identity is who a connected client is, from its username.
type Identity struct {
	Hub    bool
	Tenant protocol.TenantID
	Agent  protocol.AgentID
}

// ParseUsername splits an agent's username "<tenant>/<agent>". It returns
// false for anything else, including the hub's reserved agent ID.
func ParseUsername(u string) (protocol.TenantID, protocol.AgentID, bool) {
	t, a, ok := strings.Cut(u, "/")
	if !ok || protocol.ValidateID("tenant", t) != nil || protocol.ValidateID("agent", a) != nil || protocol.AgentID(a) == protocol.HubSender {
		return "", "", false
	}
	return protocol.TenantID(t), protocol.AgentID(a), true
}

// Username is an agent's MQTT username.
func Username(t protocol.TenantID, a protocol.AgentID) string { return string(t) + "/" + string(a) }

func (h *hook) identity(username []byte) (Identity, bool) {
	if string(username) == h.opts.HubUsername {
		return Identity{Hub: true}, true
	}
	t, a, ok := ParseUsername(string(username))
	return Identity{Tenant: t, Agent: a}, ok
}

// OnConnect checks the credentials (authenticate) before mochi asks
// OnConnectAuthenticate, so that a check that could not be made (the
// catalog did not answer within AuthTimeout: an overloaded hub, a
// database error) is answered "server unavailable", which clients retry,
// and not "not authorized", which says the credentials are wrong.
func (h *hook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	v := h.authenticate(cl, pk)
	if v == authUnavailable {
		h.authUnavailable.Add(1)
		h.opts.Logger.Warn("mqtt connection refused: credentials not checked in time", slog.String("username", string(pk.Connect.Username)),
			slog.String("remote", cl.Net.Remote))
		if srv := h.srv.Load(); srv != nil {
			_ = srv.SendConnack(cl, packets.ErrServerUnavailable, false, nil)
		}
		return packets.ErrServerUnavailable
	}
	h.verdicts.Store(cl, v)
	return nil
}

func (h *hook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	var v authVerdict
	if x, ok := h.verdicts.LoadAndDelete(cl); ok {
		v = x.(authVerdict)
	} else {
		v = h.authenticate(cl, pk) // not reached: OnConnect always runs first
	}
	if v != authOK {
		h.authRefused.Add(1)
		h.opts.Logger.Warn("mqtt connection refused", slog.String("username", string(pk.Connect.Username)), slog.String("remote", cl.Net.Remote))
	}
	return v == authOK
}

// authVerdict is what a credential check concluded.
type authVerdict int

const (
	authRefused     authVerdict = iota // wrong credentials, client ID or a Will
	authOK                             // the credentials are right
	authUnavailable                    // the check could not be made
)

func (h *hook) authenticate(cl *mqtt.Client, pk packets.Packet) authVerdict {
	id, ok := h.identity(pk.Connect.Username)
	if !ok {
		return authRefused
	}
	secret := pk.Connect.Password
	if id.Hub {
		if subtle.ConstantTimeCompare(secret, []byte(h.opts.HubSecret)) == 1 {
			return authOK
		}
		return authRefused
	}
	if pk.Connect.ClientIdentifier != Username(id.Tenant, id.Agent) {
		return authRefused
	}
	if pk.Connect.WillFlag {
		h.willsRefused.Add(1)
		h.opts.Logger.Warn("mqtt connection refused: agents may not set a Will", slog.String("username", string(pk.Connect.Username)),
			slog.String("topic", pk.Connect.WillTopic))
		return authRefused
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.opts.AuthTimeout)
	defer cancel()
	if err := h.opts.Auth.AuthenticateAgent(ctx, id.Tenant, id.Agent, string(secret)); err != nil {
		if code := protocol.ErrorCode(err); code == protocol.CodeUnauthenticated || code == protocol.CodeForbidden {
			return authRefused
		}
		h.opts.Logger.Error("mqtt credential check failed", slog.String("username", string(pk.Connect.Username)), slog.Any("error", err))
		return authUnavailable
	}
	return authOK
}

// OnWill puts a Will through the publish ACL when the broker is about to
// send it: a Will the client could not have published itself goes to
// refusedWillTopic instead, empty and not retained (mochi has no way to
// cancel a Will from a hook). Agents' Wills are refused at CONNECT already;
// this is defence in depth.
func (h *hook) OnWill(cl *mqtt.Client, will mqtt.Will) (mqtt.Will, error) {
	if h.OnACLCheck(cl, will.TopicName, true) {
		return will, nil
	}
	h.willsRefused.Add(1)
	return mqtt.Will{TopicName: refusedWillTopic, Flag: will.Flag}, nil
}

func (h *hook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	id, ok := h.identity(cl.Properties.Username)
	switch {
	case ok && id.Hub:
		return true
	case ok && write && topic == protocol.UpTopic(id.Tenant, id.Agent):
		return true
	case ok && !write && (topic == protocol.DownTopic(id.Tenant, id.Agent) || topic == protocol.SnapshotTopic(id.Tenant, id.Agent)):
		return true
	}
	h.aclDenied.Add(1)
	h.opts.Logger.Warn("mqtt access denied", slog.String("username", string(cl.Properties.Username)), slog.String("topic", topic), slog.Bool("write", write))
	return false
}

// OnPublish gives what the hub publishes on an agent's down or snapshot
// topic a message expiry (MQTT v5's Message Expiry Interval; the hub's
// client speaks 3.1.1, so the broker sets it), unless the publisher set
// one. mochi computes each subscriber's queued copy's deadline from it
// when it fans the message out, after keeping the retained copy, which
// thus never expires; it drops a queued copy past its deadline only for
// a message marked as version 5, hence the mark (the version a packet is
// written with is always the receiving client's own).
func (h *hook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.Properties.MessageExpiryInterval != 0 {
		return pk, nil
	}
	var exp time.Duration
	switch {
	case strings.HasSuffix(pk.TopicName, "/down"):
		exp = h.opts.DownExpiry
	case strings.HasSuffix(pk.TopicName, "/snapshot"):
		exp = h.opts.SnapshotExpiry
	default:
		return pk, nil
	}
	if !strings.HasPrefix(pk.TopicName, protocol.TopicRoot+"/") {
		return pk, nil
	}
	pk.Properties.MessageExpiryInterval = uint32(exp / time.Second)
	pk.ProtocolVersion = 5
	return pk, nil
}

// OnQosPublish counts the QoS messages queued for clients that are offline.
func (h *hook) OnQosPublish(cl *mqtt.Client, pk packets.Packet, sent int64, resends int) {
	if resends == 0 && cl.Closed() {
		h.queuedOffline.Add(1)
	}
}

// OnQosDropped counts QoS messages the broker gave up on. Those of a
// clean-session client that has gone are discarded by design (MQTT drops
// the session with the client) and counted apart, and so are those that
// expired (OnPublish): neither is a drop to alert on.
func (h *hook) OnQosDropped(cl *mqtt.Client, pk packets.Packet) {
	switch {
	case pk.FixedHeader.Type == 0 && pk.TopicName == "":
		// mochi v2.7.9 reports each expired message twice, the second
		// time by its packet ID alone: counted once, below.
		return
	case pk.FixedHeader.Type == packets.Publish && pk.Expiry > 0 && pk.Expiry <= time.Now().Unix():
		h.expired.Add(1)
	case cl.Properties.Clean && cl.Closed():
		h.qosDiscarded.Add(1)
	default:
		h.qosDropped.Add(1)
	}
}
