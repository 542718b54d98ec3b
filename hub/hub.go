// Package hub ties the hub process together: one SQLite file holding the
// catalog (store/catalog) and the ledger (store/ledger), the embedded MQTT
// broker (hub/broker) unless an external one is configured, the MQTT ingest
// that reconciles the agents' redemptions (hub/ingest), the HTTP API
// (hub/api), and a small metrics endpoint with the broker's and ingest's
// counters. cmd/hub is a thin main around Open, Run and Close, so tests can
// start the whole hub on port 0 in a temp directory.
package hub

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/punchcard/punchcard/hub/api"
	"github.com/punchcard/punchcard/hub/broker"
	"github.com/punchcard/punchcard/hub/distribute"
	"github.com/punchcard/punchcard/hub/ingest"
	"github.com/punchcard/punchcard/hub/manage"
	"github.com/punchcard/punchcard/hub/snapshots"
	"github.com/punchcard/punchcard/hub/webhooks"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store"
	"github.com/punchcard/punchcard/store/catalog"
	"github.com/punchcard/punchcard/store/ledger"
)

// Defaults.
const (
	DefaultDataDir     = "data"
	DefaultDBName      = "hub.db"
	DefaultHTTPAddr    = "127.0.0.1:8080"
	DefaultMQTTAddr    = broker.DefaultAddr
	DefaultMetricsAddr = "127.0.0.1:9464"
	DefaultMQTTTLSAddr = broker.DefaultTLSAddr // the embedded broker's TLS listener, with Options.TLS
	// DefaultShutdownTimeout bounds how long Close waits for open HTTP
	// requests.
	DefaultShutdownTimeout = 10 * time.Second
	// DefaultAnnounceInterval is Options.AnnounceInterval's default.
	DefaultAnnounceInterval = 2 * time.Second
)

// Options configure Open. The zero value runs everything embedded with the
// Default* values.
type Options struct {
	DataDir  string // directory of the SQLite file (DefaultDBName); default DefaultDataDir
	HTTPAddr string // the HTTP API; default DefaultHTTPAddr, port 0 picks one
	// MQTTAddr is where the embedded broker listens; default
	// DefaultMQTTAddr. Ignored when BrokerURL is set.
	MQTTAddr string
	// BrokerURL points the hub at an external broker (Mosquitto, EMQX),
	// e.g. "tcp://mqtt.example:1883"; the embedded broker is not started.
	BrokerURL string
	// MQTTUsername and MQTTPassword are the hub's own MQTT credentials.
	// The username defaults to broker.DefaultHubUsername; with the
	// embedded broker an empty password is replaced by a random one (only
	// the hub itself uses it). An external broker needs both.
	MQTTUsername string
	MQTTPassword string
	MQTTClientID string // default ingest.DefaultClientID
	ShareGroup   string // MQTT shared-subscription group, for several hub replicas
	// MetricsAddr serves GET /metrics (Prometheus text) with the broker's
	// and ingest's counters; default DefaultMetricsAddr, "-" disables it.
	MetricsAddr string
	// BootstrapKey, when set (20+ characters), is the platform API key
	// created on first start; otherwise a random one is created and logged
	// once.
	BootstrapKey string
	Sync         store.Sync   // SQLite synchronous; default store.SyncFull
	Logger       *slog.Logger // default slog.Default()
	// PipelinedCommit has the online writer sync the WAL while it
	// records the next group, and ingest sync it before it publishes a
	// drain's Acks (ledger.Options.SerialCommit false). Default
	// false: the fsync stays in each group's commit, so no other reader
	// sees a group before it is on disk; on this machine's quiet runs the
	// pipeline gained nothing (docs/operations.md, "Pipelined commit").
	PipelinedCommit bool
	// CommitCheckpoint leaves the WAL checkpoint in the commit that
	// takes the WAL past 1,000 pages, as SQLite does by default (the
	// ingest writer's, at fleet load). Default false: no commit
	// checkpoints, a background checkpointer does (store.Checkpointer).
	CommitCheckpoint bool
	// AnnounceInterval is the least time between two snapshot
	// announcements to one tenant's agents; changes in between are
	// coalesced into one announcement at its end, so a busy store's
	// redemptions do not cause a snapshot storm. Default
	// DefaultAnnounceInterval.
	AnnounceInterval time.Duration
	// TLS, when set, serves the HTTP API over TLS only, and adds the
	// embedded broker's MQTT-over-TLS listener on MQTTTLSAddr (default
	// DefaultMQTTTLSAddr); the plain MQTTAddr listener stays for the hub's
	// own client and should stay on loopback. cmd/hub builds it with
	// tlsconf.Server from -tls-cert and -tls-key.
	TLS         *tls.Config
	MQTTTLSAddr string
	// BrokerTLS verifies an external broker reached at an ssl:// BrokerURL
	// (tlsconf.Client from -broker-ca-file); nil uses the system roots.
	BrokerTLS *tls.Config
	// RateLimit, TenantRateLimit, KeyRateLimits and TenantRateLimits are
	// the API's request limits per minute (api.Config); zero values take
	// api's defaults (api.DefaultRateLimit per key, no tenant limit).
	RateLimit        int
	TenantRateLimit  int
	KeyRateLimits    map[string]int
	TenantRateLimits map[protocol.TenantID]int
	// HoldTTL bounds an online-first till's hold (api.Config.HoldTTL);
	// zero takes the online service's default (2 minutes).
	HoldTTL time.Duration
	// StatementMax caps a points statement's points (api.Config.StatementMax).
	StatementMax int64
	// PointsExpiryInterval is how often the hub expires the points lots
	// that are due (hub/lots.go); default DefaultPointsExpiryInterval,
	// negative: never (burns and balances leave out due points anyway).
	PointsExpiryInterval time.Duration
	// SegmentsInterval is how often the hub recomputes every customer's
	// stored segments for the time-based rules (hub/segmentsrun.go);
	// default DefaultSegmentsInterval, negative: never (each new purchase
	// still recomputes its customer's).
	SegmentsInterval time.Duration
	// TierReviewInterval is how often the hub reviews the customer tiers
	// whose validity and grace period are over (hub/tiers.go); default
	// DefaultTierReviewInterval, negative: never (no tier is lowered).
	TierReviewInterval time.Duration
	// EventRetention is how long events (and webhook delivery records)
	// are kept; default DefaultEventRetention (hub/events.go).
	EventRetention time.Duration
	// IdempotencyRetention is how long the APIs' idempotency records are
	// kept; default DefaultIdempotencyRetention (hub/events.go).
	IdempotencyRetention time.Duration
	Webhooks             WebhookOptions // hub/events.go
	// TillStaleAfter is how long a till may go unheard before a
	// till.stale event (and till.back when it returns) and before
	// punchcard_tills_stale counts it; default DefaultTillStaleAfter,
	// negative: no such events (hub/events.go), the gauge uses the default.
	TillStaleAfter time.Duration
}

func (o *Options) ensureDefaults() {
	if o.DataDir == "" {
		o.DataDir = DefaultDataDir
	}
	if o.HTTPAddr == "" {
		o.HTTPAddr = DefaultHTTPAddr
	}
	if o.MQTTAddr == "" {
		o.MQTTAddr = DefaultMQTTAddr
	}
	if o.MQTTUsername == "" {
		o.MQTTUsername = broker.DefaultHubUsername
	}
	if o.MQTTClientID == "" {
		o.MQTTClientID = ingest.DefaultClientID
	}
	if o.MetricsAddr == "" {
		o.MetricsAddr = DefaultMetricsAddr
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.AnnounceInterval <= 0 {
		o.AnnounceInterval = DefaultAnnounceInterval
	}
	if o.TierReviewInterval == 0 {
		o.TierReviewInterval = DefaultTierReviewInterval
	}
	if o.PointsExpiryInterval == 0 {
		o.PointsExpiryInterval = DefaultPointsExpiryInterval
	}
	if o.SegmentsInterval == 0 {
		o.SegmentsInterval = DefaultSegmentsInterval
	}
	if o.EventRetention <= 0 {
		o.EventRetention = DefaultEventRetention
	}
	if o.IdempotencyRetention <= 0 {
		o.IdempotencyRetention = DefaultIdempotencyRetention
	}
	if o.TillStaleAfter == 0 {
		o.TillStaleAfter = DefaultTillStaleAfter
	}
}

// Log attribute keys.
const (
	logErr    = "err"
	logAddr   = "addr"
	logTenant = "tenant"
)

// Hub is an open hub. Its fields are for tests and tools in-process.
type Hub struct {
	Catalog *catalog.Catalog
	Ledger  *ledger.Ledger
	Broker  *broker.Broker // nil with an external broker
	Ingest  *ingest.Ingest
	API     *api.Server
	// Manage and Snapshots are the hub's services (hub/manage,
	// hub/snapshots), which the API calls; Announcer tells the agents of
	// their changes over MQTT.
	Manage    *manage.Service
	Snapshots *snapshots.Service
	Announcer *snapshots.Announcer
	Webhooks  *webhooks.Service // nil with Options.Webhooks.Off
	// Distribute publishes and exports distributions (distributions.go).
	Distribute *distribute.Service

	opts      Options
	db        interface{ Close() error }
	httpLn    net.Listener
	metricsLn net.Listener
	metrics   *http.Server
	backlog   atomic.Pointer[Backlog] // SetWebhookBacklog
	wake      relayWake               // events.go
	ckpt      *store.Checkpointer     // nil with Options.CommitCheckpoint

	ctx    context.Context // cancelled by Close, for background work
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// DefaultDBConns is the hub database's connection pool: ingest holds one
// for its write transaction and one for the next drain's re-derivation,
// the online writer one, and the rest serve the API and the broker's
// credential checks, which at a fleet's reconnect come by the thousand (at
// store.DefaultMaxOpenConns, 4, they waited behind ingest and timed out).
const DefaultDBConns = 16

// Open opens the database, starts the broker (unless external) and ingest,
// and binds the HTTP and metrics listeners. Run serves them.
func Open(ctx context.Context, opts Options) (_ *Hub, err error) {
	opts.ensureDefaults()
	log := opts.Logger
	h := &Hub{opts: opts}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			h.Close()
		}
	}()
	if err := os.MkdirAll(opts.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("hub: data dir: %w", err)
	}
	db, err := store.Open(ctx, filepath.Join(opts.DataDir, DefaultDBName), store.Options{Sync: opts.Sync, SecureDelete: true, MaxOpenConns: DefaultDBConns,
		NoAutoCheckpoint: !opts.CommitCheckpoint})
	if err != nil {
		return nil, err
	}
	h.db = db
	if h.Catalog, err = catalog.New(ctx, db); err != nil {
		return nil, err
	}
	h.wake = h.newRelayWake() // events.go
	if h.Ledger, err = ledger.New(ctx, db, ledger.Options{Facts: h.Catalog, Rules: h.Catalog, Segments: h.Catalog, Tiers: h.Catalog, OnTier: h.tierChanged,
		OnEvents: h.wake.signal, SerialCommit: !opts.PipelinedCommit}); err != nil {
		return nil, err
	}
	if !opts.CommitCheckpoint {
		h.ckpt = store.StartCheckpointer(db, store.CheckpointerOptions{Logger: log, Quiesce: h.Ledger.HoldWriters})
	}
	if err := h.openWebhooks(ctx); err != nil { // events.go
		return nil, err
	}
	if h.Webhooks != nil {
		h.SetWebhookBacklog(h.Webhooks) // punchcard_webhook_backlog
	}
	if _, secret, created, err := h.Catalog.Bootstrap(ctx, opts.BootstrapKey); err != nil {
		return nil, err
	} else if created && opts.BootstrapKey == "" {
		log.Warn("hub: created the platform API key; it is shown only now", slog.String("key", secret))
	}

	brokerURL, password := opts.BrokerURL, opts.MQTTPassword
	if brokerURL == "" {
		if password == "" {
			password = randomSecret()
		}
		h.Broker, err = broker.New(broker.Options{Addr: opts.MQTTAddr, Auth: catalogAuth{h.Catalog}, HubUsername: opts.MQTTUsername,
			HubSecret: password, Logger: log, TLS: opts.TLS, TLSAddr: opts.MQTTTLSAddr})
		if err != nil {
			return nil, err
		}
		brokerURL = h.Broker.URL()
		log.Info("hub: embedded MQTT broker listening", slog.String(logAddr, h.Broker.Addr()))
		if opts.TLS != nil {
			log.Info("hub: embedded MQTT broker listening with TLS", slog.String(logAddr, h.Broker.TLSAddr()))
		}
		warnPlain(log, "the embedded MQTT broker", h.Broker.Addr())
	}
	var brokerTLS *tls.Config
	if opts.BrokerURL != "" {
		brokerTLS = opts.BrokerTLS
	}
	// The key that signs everything sent down to agents: created on first
	// start, kept in the database, so every hub on it signs alike.
	hubKey, err := h.Catalog.HubSigningKey(ctx)
	if err != nil {
		return nil, err
	}
	iopts := ingest.Options{BrokerURL: brokerURL, SigningKey: hubKey, ClientID: opts.MQTTClientID, Username: opts.MQTTUsername,
		Password: password, ShareGroup: opts.ShareGroup, Logger: log, TLS: brokerTLS}
	if h.Broker != nil {
		iopts.Inline = h.Broker // in-process: no MQTT connection of the hub's own
	}
	// Gift cards sold at tills get their catalog codes (giftcards.go).
	h.Ingest, err = ingest.New(issuingLedger{Ledger: h.Ledger, cat: h.Catalog, announce: h.announce, log: log}, iopts)
	if err != nil {
		return nil, err
	}
	h.Announcer = snapshots.NewAnnouncer(h.Catalog, h.Ingest, snapshots.AnnouncerOptions{Interval: opts.AnnounceInterval, Listed: h.shareAgents, Logger: log})
	// The services every adapter calls: the HTTP API today, the console
	// and webhooks next.
	if h.Manage, err = manage.New(h.Catalog, manage.Options{Ledger: h.Ledger, OnChange: h.announce, OnStop: h.recall}); err != nil {
		return nil, err
	}
	if h.Snapshots, err = snapshots.New(h.Catalog, snapshots.Options{Ledger: h.Ledger}); err != nil {
		return nil, err
	}
	h.Distribute = h.newDistribute(log)
	h.API, err = api.New(api.Config{Distribute: h.Distribute, Manage: h.Manage, Snapshots: h.Snapshots, Catalog: h.Catalog, Ledger: h.Ledger, Logger: log, OnChange: h.announce, OnStop: h.recall,
		RateLimit: opts.RateLimit, TenantRateLimit: opts.TenantRateLimit, KeyRateLimits: opts.KeyRateLimits, TenantRateLimits: opts.TenantRateLimits,
		HoldTTL: opts.HoldTTL, StatementMax: opts.StatementMax, Webhooks: h.webhookAPI()})
	if err != nil {
		return nil, err
	}
	if h.httpLn, err = net.Listen("tcp", opts.HTTPAddr); err != nil {
		return nil, fmt.Errorf("hub: http listen: %w", err)
	}
	if opts.TLS != nil {
		h.httpLn = tls.NewListener(h.httpLn, opts.TLS)
	} else {
		warnPlain(log, "the HTTP API", h.httpLn.Addr().String())
	}
	if opts.MetricsAddr != "-" {
		if h.metricsLn, err = net.Listen("tcp", opts.MetricsAddr); err != nil {
			return nil, fmt.Errorf("hub: metrics listen: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", h.newMetricsHandler(log))
		h.metrics = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	}
	return h, nil
}

// HTTPAddr is the HTTP API's address (with the real port).
func (h *Hub) HTTPAddr() string { return h.httpLn.Addr().String() }

// HTTPURL is the HTTP API's base URL: https:// with Options.TLS.
func (h *Hub) HTTPURL() string {
	if h.opts.TLS != nil {
		return "https://" + h.HTTPAddr()
	}
	return "http://" + h.HTTPAddr()
}

// warnPlain logs a warning when a plaintext listener is reachable beyond
// loopback: agents' secrets would cross the network in clear.
func warnPlain(log *slog.Logger, what, addr string) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return
	}
	log.Warn("hub: "+what+" listens without TLS beyond loopback: agents' secrets cross the network in clear (docs/operations.md, TLS)", slog.String(logAddr, addr))
}

// MetricsAddr is the metrics endpoint's address, "" when disabled.
func (h *Hub) MetricsAddr() string {
	if h.metricsLn == nil {
		return ""
	}
	return h.metricsLn.Addr().String()
}

// Run serves HTTP until ctx is done or a listener fails, then closes the
// hub.
func (h *Hub) Run(ctx context.Context) error {
	errc := make(chan error, 2)
	h.opts.Logger.Info("hub: HTTP API listening", slog.String(logAddr, h.HTTPAddr()))
	go func() { errc <- h.API.Serve(h.httpLn) }()
	if h.metrics != nil {
		h.opts.Logger.Info("hub: metrics listening", slog.String(logAddr, h.MetricsAddr()))
		go func() { errc <- h.metrics.Serve(h.metricsLn) }()
	}
	h.runPointsExpiry(h.opts.PointsExpiryInterval)
	h.runSegments(h.opts.SegmentsInterval)
	h.runTierReview(h.opts.TierReviewInterval)
	h.runEvents() // events.go
	h.runDistributor()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
	}
	if cerr := h.Close(); err == nil {
		err = cerr
	}
	return err
}

// Close stops everything Open started, in reverse order. It is safe to
// call more than once.
func (h *Hub) Close() error {
	var errs []error
	h.once.Do(func() {
		h.cancel()
		ctx, cancel := context.WithTimeout(context.Background(), DefaultShutdownTimeout)
		defer cancel()
		if h.API != nil && h.httpLn != nil {
			errs = append(errs, h.API.Shutdown(ctx))
			h.httpLn.Close()
		}
		if h.metrics != nil {
			errs = append(errs, h.metrics.Shutdown(ctx))
		} else if h.metricsLn != nil {
			h.metricsLn.Close()
		}
		if h.Announcer != nil {
			errs = append(errs, h.Announcer.Close())
		}
		h.wg.Wait()
		// The webhook service gets its own DefaultShutdownTimeout: slow HTTP
		// clients that used up the API's must not leave it no time to stop
		// its workers and save the relay's cursor.
		wctx, wcancel := context.WithTimeout(context.Background(), DefaultShutdownTimeout)
		defer wcancel()
		errs = append(errs, h.closeWebhooks(wctx)) // events.go
		if h.Ingest != nil {
			errs = append(errs, h.Ingest.Close())
		}
		if h.Broker != nil {
			errs = append(errs, h.Broker.Close())
		}
		if h.Ledger != nil {
			errs = append(errs, h.Ledger.Close()) // stops the online writer
		}
		if h.ckpt != nil {
			errs = append(errs, h.ckpt.Close())
		}
		if h.db != nil {
			errs = append(errs, h.db.Close())
		}
	})
	return errors.Join(errs...)
}

// announce tells every agent of the tenant that its catalog changed
// (snapshots.Announcer.Changed: coalesced, in the background). It must
// not block.
func (h *Hub) announce(tenant protocol.TenantID, v uint64) {
	if h.Announcer != nil {
		h.Announcer.Changed(tenant, v)
	}
}

// Announce publishes SnapshotAnnounce{Version: v} to every agent of
// tenant now (snapshots.Announcer.Announce).
func (h *Hub) Announce(ctx context.Context, tenant protocol.TenantID, v uint64) error {
	return h.Announcer.Announce(ctx, tenant, v)
}

// recall asks every agent of tenant to give back its allowance of a
// campaign just stopped, in the background (snapshots.Announcer.Stopped).
func (h *Hub) recall(tenant protocol.TenantID, campaign protocol.CampaignID) {
	if h.Announcer != nil {
		h.Announcer.Stopped(tenant, campaign)
	}
}

// Recall publishes AllowanceRecall{Campaign: campaign} to every agent of
// tenant now (snapshots.Announcer.Recall).
func (h *Hub) Recall(ctx context.Context, tenant protocol.TenantID, campaign protocol.CampaignID) error {
	return h.Announcer.Recall(ctx, tenant, campaign)
}

// catalogAuth checks agents' MQTT passwords against the catalog.
type catalogAuth struct{ c *catalog.Catalog }

var _ broker.Authenticator = catalogAuth{}

func (a catalogAuth) AuthenticateAgent(ctx context.Context, t protocol.TenantID, ag protocol.AgentID, secret string) error {
	ok, err := a.c.CheckAgentSecret(ctx, t, ag, secret)
	if err != nil {
		return err
	}
	if !ok {
		return protocol.NewError(protocol.CodeUnauthenticated)
	}
	return nil
}

func randomSecret() string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b)
}
