// Command hub is Punchcard's central server: the HTTP API, the ledger and
// catalog in one SQLite file, and the embedded MQTT broker (or an external
// one) through which agents send their redemptions.
//
//	hub [flags]          run the hub
//	hub verify [flags]   recompute every ledger balance from the journal;
//	                     exit status 1 when any differs
//
// Every flag has an environment variable (PUNCHCARD_*); flags win.
// docs/operations.md describes them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/punchcard/punchcard/hub"
	"github.com/punchcard/punchcard/hub/api"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/tlsconf"
	"github.com/punchcard/punchcard/store"
	"github.com/punchcard/punchcard/store/catalog"
	"github.com/punchcard/punchcard/store/ledger"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m := NewMain()
	code, err := m.Main(ctx, os.Args[1:], os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "hub:", err)
	}
	os.Exit(code)
}

// Main is the program, separated from main() so tests can run it.
type Main struct {
	Options  hub.Options
	LogLevel string
	Verify   bool
	Pprof    string // -pprof: serve net/http/pprof on this address ("" = off)
	memory   memoryFlags
	Stdout   io.Writer
	Stderr   io.Writer
	// OnStart, when set, is called with the open hub before it serves
	// (tests use it to learn the addresses and to stop it).
	OnStart func(*hub.Hub)
}

// NewMain returns a Main writing to the process's stdout and stderr.
func NewMain() *Main { return &Main{Stdout: os.Stdout, Stderr: os.Stderr} }

// Main parses args, then runs the hub until ctx is done (or runs verify).
// It returns the exit status.
func (m *Main) Main(ctx context.Context, args []string, getenv func(string) string) (int, error) {
	if err := m.ParseFlags(args, getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, nil
		}
		return 2, err
	}
	if m.Verify {
		return m.RunVerify(ctx)
	}
	if err := m.memory.apply(ctx, m.Options.Logger); err != nil {
		return 2, err
	}
	if m.Pprof != "" {
		if err := servePprof(ctx, m.Pprof, m.Options.Logger); err != nil {
			return 1, err
		}
	}
	h, err := hub.Open(ctx, m.Options)
	if err != nil {
		return 1, err
	}
	if m.OnStart != nil {
		m.OnStart(h)
	}
	if err := h.Run(ctx); err != nil {
		return 1, err
	}
	return 0, nil
}

// ParseFlags reads the configuration from args, with environment variables
// (read through getenv) as defaults.
func (m *Main) ParseFlags(args []string, getenv func(string) string) error {
	if len(args) > 0 && args[0] == "verify" {
		m.Verify = true
		args = args[1:]
	}
	fs := flag.NewFlagSet("hub", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	env := func(name, def string) string {
		if v := getenv("PUNCHCARD_" + name); v != "" {
			return v
		}
		return def
	}
	o := &m.Options
	fs.StringVar(&o.DataDir, "data", env("DATA_DIR", hub.DefaultDataDir), "data directory holding "+hub.DefaultDBName+" (PUNCHCARD_DATA_DIR)")
	fs.StringVar(&o.HTTPAddr, "http", env("HTTP_ADDR", hub.DefaultHTTPAddr), "HTTP API listen address (PUNCHCARD_HTTP_ADDR)")
	fs.StringVar(&o.MQTTAddr, "mqtt", env("MQTT_ADDR", hub.DefaultMQTTAddr), "embedded MQTT broker listen address (PUNCHCARD_MQTT_ADDR)")
	fs.StringVar(&o.BrokerURL, "broker", env("BROKER_URL", ""), "external MQTT broker URL, e.g. tcp://mosquitto:1883; disables the embedded broker (PUNCHCARD_BROKER_URL)")
	fs.StringVar(&o.MQTTUsername, "mqtt-user", env("MQTT_USER", ""), "the hub's MQTT username, default punchcard-hub (PUNCHCARD_MQTT_USER)")
	fs.StringVar(&o.MQTTPassword, "mqtt-password", env("MQTT_PASSWORD", ""), "the hub's MQTT password; required with -broker (PUNCHCARD_MQTT_PASSWORD)")
	fs.StringVar(&o.MQTTClientID, "mqtt-client-id", env("MQTT_CLIENT_ID", ""), "the hub's MQTT client id, unique per replica (PUNCHCARD_MQTT_CLIENT_ID)")
	fs.StringVar(&o.ShareGroup, "share-group", env("SHARE_GROUP", ""), "MQTT shared-subscription group for several hub replicas (PUNCHCARD_SHARE_GROUP)")
	fs.StringVar(&o.MetricsAddr, "metrics", env("METRICS_ADDR", hub.DefaultMetricsAddr), "Prometheus /metrics listen address, - to disable (PUNCHCARD_METRICS_ADDR)")
	fs.StringVar(&o.BootstrapKey, "bootstrap-key", env("BOOTSTRAP_KEY", ""), "platform API key to create on first start, 20+ characters (PUNCHCARD_BOOTSTRAP_KEY)")
	certFile := fs.String("tls-cert", env("TLS_CERT_FILE", ""), "PEM certificate chain: serve the HTTP API and an MQTT listener (-mqtt-tls) over TLS; reloaded when renewed (PUNCHCARD_TLS_CERT_FILE)")
	keyFile := fs.String("tls-key", env("TLS_KEY_FILE", ""), "PEM private key of -tls-cert (PUNCHCARD_TLS_KEY_FILE)")
	fs.StringVar(&o.MQTTTLSAddr, "mqtt-tls", env("MQTT_TLS_ADDR", hub.DefaultMQTTTLSAddr), "embedded broker's MQTT-over-TLS listen address, with -tls-cert (PUNCHCARD_MQTT_TLS_ADDR)")
	brokerCA := fs.String("broker-ca-file", env("BROKER_CA_FILE", ""), "PEM CA certificates verifying an external broker at an ssl:// -broker URL; default the system roots (PUNCHCARD_BROKER_CA_FILE)")
	sync := fs.String("sync", env("SYNC", string(store.SyncFull)), "SQLite synchronous: FULL or NORMAL (PUNCHCARD_SYNC)")
	fs.IntVar(&o.RateLimit, "rate-limit", envInt(env("RATE_LIMIT", ""), api.DefaultRateLimit), "API requests per key per minute (PUNCHCARD_RATE_LIMIT)")
	fs.IntVar(&o.TenantRateLimit, "tenant-rate-limit", envInt(env("TENANT_RATE_LIMIT", ""), 0), "API requests per tenant per minute, all its keys together; 0 = no tenant limit (PUNCHCARD_TENANT_RATE_LIMIT)")
	keyLimits := fs.String("key-rate-limits", env("KEY_RATE_LIMITS", ""), "per-key overrides of -rate-limit: key-id=n,key-id=n (PUNCHCARD_KEY_RATE_LIMITS)")
	tenantLimits := fs.String("tenant-rate-limits", env("TENANT_RATE_LIMITS", ""), "per-tenant overrides of -tenant-rate-limit: tenant=n,tenant=n (PUNCHCARD_TENANT_RATE_LIMITS)")
	holdTTL, _ := time.ParseDuration(env("HOLD_TTL", "0s"))
	fs.DurationVar(&o.HoldTTL, "hold-ttl", holdTTL, "how long an online-first till's hold counts when its sale does not reach the hub; 0 = 2m (PUNCHCARD_HOLD_TTL)")
	fs.Int64Var(&o.StatementMax, "points-statement-max", int64(envInt(env("POINTS_STATEMENT_MAX", ""), 0)), "most points one points statement states (what an offline till may take on it); 0 = 10000 (PUNCHCARD_POINTS_STATEMENT_MAX)")
	fs.StringVar(&m.Pprof, "pprof", env("PPROF_ADDR", ""), "serve Go's profiler (/debug/pprof/) on this address, e.g. 127.0.0.1:6060; off when empty (PUNCHCARD_PPROF_ADDR)")
	fs.DurationVar(&o.PointsExpiryInterval, "points-expiry-every", envDuration(env("POINTS_EXPIRY_EVERY", ""), hub.DefaultPointsExpiryInterval),
		"how often to expire the points lots that are due, e.g. 1h; negative: never (PUNCHCARD_POINTS_EXPIRY_EVERY)")
	m.memory.defaults(getenv)
	fs.IntVar(&m.memory.gcPercent, "gc-percent", envInt(env("GC_PERCENT", ""), m.memory.gcPercent), "the collector's target heap growth in percent, -1 off; default 100, or Go's GOGC when set (PUNCHCARD_GC_PERCENT)")
	fs.StringVar(&m.memory.memoryLimit, "memory-limit", env("MEMORY_LIMIT", m.memory.memoryLimit), "soft memory limit, e.g. 900MiB, or off: the collector works harder near it; default "+DefaultMemoryBudget+" (a budget never collecting more often than -gc-percent 50), or Go's GOMEMLIMIT when set (PUNCHCARD_MEMORY_LIMIT)")
	fs.DurationVar(&o.SegmentsInterval, "segments-every", envDuration(env("SEGMENTS_EVERY", ""), hub.DefaultSegmentsInterval),
		"how often to recompute every customer's segments for the time-based rules, e.g. 1h; negative: never (PUNCHCARD_SEGMENTS_EVERY)")
	fs.DurationVar(&o.TierReviewInterval, "tier-review-every", envDuration(env("TIER_REVIEW_EVERY", ""), hub.DefaultTierReviewInterval),
		"how often to review the customer tiers whose validity and grace are over (downgrades), e.g. 1h; negative: never (PUNCHCARD_TIER_REVIEW_EVERY)")
	fs.DurationVar(&o.EventRetention, "event-retention", envDuration(env("EVENT_RETENTION", ""), hub.DefaultEventRetention),
		"how long events and webhook delivery records are kept (and replayable), e.g. 720h (PUNCHCARD_EVENT_RETENTION)")
	fs.DurationVar(&o.IdempotencyRetention, "idempotency-retention", envDuration(env("IDEMPOTENCY_RETENTION", ""), hub.DefaultIdempotencyRetention),
		"how long the APIs' answers are kept under their Idempotency-Key, e.g. 72h; a retry after it runs again, but an online redeem is never recorded twice (PUNCHCARD_IDEMPOTENCY_RETENTION)")
	fs.DurationVar(&o.TillStaleAfter, "till-stale-after", envDuration(env("TILL_STALE_AFTER", ""), hub.DefaultTillStaleAfter),
		"a till unheard this long is reported stale (event till.stale, then till.back); negative: never (PUNCHCARD_TILL_STALE_AFTER)")
	fs.BoolVar(&o.PipelinedCommit, "pipelined-commit", env("PIPELINED_COMMIT", "") == "1", "the online writer syncs the WAL while it records the next group, and ingest before it publishes a drain's Acks, instead of inside each commit; for disks with slow fsync (PUNCHCARD_PIPELINED_COMMIT=1)")
	fs.BoolVar(&o.Webhooks.Off, "webhooks-off", env("WEBHOOKS_OFF", "") == "1", "deliver no webhooks (events are still logged); the webhook routes answer 503 (PUNCHCARD_WEBHOOKS_OFF=1)")
	fs.BoolVar(&o.Webhooks.AllowPrivate, "webhook-allow-private", env("WEBHOOK_ALLOW_PRIVATE", "") == "1",
		"let webhook URLs name loopback, private, link-local and other internal addresses (tests, demos, receivers on the hub's own network); by default they are refused (PUNCHCARD_WEBHOOK_ALLOW_PRIVATE=1)")
	fs.DurationVar(&o.Webhooks.RetryBase, "webhook-retry-base", envDuration(env("WEBHOOK_RETRY_BASE", ""), 0), "wait before a failed delivery's first retry, doubling to -webhook-retry-cap; 0 = 2s (PUNCHCARD_WEBHOOK_RETRY_BASE)")
	fs.DurationVar(&o.Webhooks.RetryCap, "webhook-retry-cap", envDuration(env("WEBHOOK_RETRY_CAP", ""), 0), "longest wait between two delivery attempts; 0 = 2h (PUNCHCARD_WEBHOOK_RETRY_CAP)")
	fs.DurationVar(&o.Webhooks.RetryWindow, "webhook-retry-window", envDuration(env("WEBHOOK_RETRY_WINDOW", ""), 0),
		"how long a delivery is retried at least, and how long an endpoint may fail before it is disabled; 0 = 72h (PUNCHCARD_WEBHOOK_RETRY_WINDOW)")
	fs.DurationVar(&o.Webhooks.Timeout, "webhook-timeout", envDuration(env("WEBHOOK_TIMEOUT", ""), 0), "one delivery's time limit; 0 = 15s (PUNCHCARD_WEBHOOK_TIMEOUT)")
	fs.DurationVar(&o.Webhooks.RescueAfter, "webhook-rescue-after", envDuration(env("WEBHOOK_RESCUE_AFTER", ""), 0),
		"when a delivery stuck in this running hub is tried again (one left running by a killed hub is handed back at start); 0 = the timeout + 1m (PUNCHCARD_WEBHOOK_RESCUE_AFTER)")
	fs.StringVar(&m.LogLevel, "log-level", env("LOG_LEVEL", "info"), "debug, info, warn or error (PUNCHCARD_LOG_LEVEL)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "memory-limit" {
			m.memory.budget = false // asked for, even if it equals the budget
		}
	})
	if env("MEMORY_LIMIT", "") != "" {
		m.memory.budget = false
	}
	if err := m.memory.check(); err != nil {
		return err
	}
	kl, err := parseLimits(*keyLimits)
	if err != nil {
		return fmt.Errorf("-key-rate-limits: %w", err)
	}
	o.KeyRateLimits = kl
	tl, err := parseLimits(*tenantLimits)
	if err != nil {
		return fmt.Errorf("-tenant-rate-limits: %w", err)
	}
	if len(tl) > 0 {
		o.TenantRateLimits = map[protocol.TenantID]int{}
		for t, n := range tl {
			o.TenantRateLimits[protocol.TenantID(t)] = n
		}
	}
	switch s := store.Sync(strings.ToUpper(*sync)); s {
	case store.SyncFull, store.SyncNormal:
		o.Sync = s
	default:
		return fmt.Errorf("-sync must be FULL or NORMAL, not %q", *sync)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(m.LogLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	o.Logger = slog.New(slog.NewJSONHandler(m.Stderr, &slog.HandlerOptions{Level: level}))
	if o.BrokerURL != "" && o.MQTTPassword == "" {
		return errors.New("-broker needs -mqtt-password (or PUNCHCARD_MQTT_PASSWORD)")
	}
	if (*certFile == "") != (*keyFile == "") {
		return errors.New("-tls-cert and -tls-key go together")
	}
	if *certFile != "" && !m.Verify {
		cfg, err := tlsconf.Server(*certFile, *keyFile)
		if err != nil {
			return err
		}
		o.TLS = cfg
	}
	if *brokerCA != "" {
		cfg, err := tlsconf.Client(*brokerCA, nil)
		if err != nil {
			return err
		}
		o.BrokerTLS = cfg
	}
	return nil
}

// RunVerify recomputes the ledger's balances from its journal and prints
// the differences. Exit status 1 when any balance differs.
func (m *Main) RunVerify(ctx context.Context) (int, error) {
	path := filepath.Join(m.Options.DataDir, hub.DefaultDBName)
	if _, err := os.Stat(path); err != nil {
		return 1, err
	}
	db, err := store.Open(ctx, path, store.Options{})
	if err != nil {
		return 1, err
	}
	defer db.Close()
	cat, err := catalog.New(ctx, db)
	if err != nil {
		return 1, err
	}
	l, err := ledger.New(ctx, db, ledger.Options{Facts: cat})
	if err != nil {
		return 1, err
	}
	rep, err := l.Verify(ctx)
	if err != nil {
		return 1, err
	}
	fmt.Fprintf(m.Stdout, "journal entries: %d, balance rows: %d, differences: %d\n", rep.Entries, rep.Rows, len(rep.Diffs))
	for _, d := range rep.Diffs {
		fmt.Fprintln(m.Stdout, d)
	}
	if !rep.OK() {
		return 1, nil
	}
	return 0, nil
}

// envInt is an integer flag's default from the environment (def when unset
// or not a number; flag parsing reports a bad -flag value itself).
func envInt(v string, def int) int {
	if n, err := strconv.Atoi(v); err == nil {
		return n
	}
	return def
}

// parseLimits reads "name=n,name=n" (n > 0).
func parseLimits(s string) (map[string]int, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	out := map[string]int{}
	for _, part := range strings.Split(s, ",") {
		name, num, ok := strings.Cut(strings.TrimSpace(part), "=")
		n, err := strconv.Atoi(num)
		if !ok || name == "" || err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not name=n with n > 0", part)
		}
		out[name] = n
	}
	return out, nil
}
