// Command agent is Punchcard's edge daemon on a POS terminal: a local
// HTTP+JSON API for the till (see docs/agent.md), a SQLite cache and outbox
// in its data directory, and MQTT/HTTP sync with the hub.
//
// It starts with no network at all when it has a snapshot, and says clearly
// when it has never synced. Every flag has an environment variable
// (PUNCHCARD_*), flags win.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/punchcard/punchcard/agent"
	"github.com/punchcard/punchcard/agent/uplink"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/tlsconf"
	"github.com/punchcard/punchcard/store/agentdb"
)

// Defaults.
const (
	DefaultListen  = "127.0.0.1:8089"
	DefaultDataDir = "punchcard-agent"
	DBFile         = "agent.db"
	// DefaultMemoryLimitMB is the soft memory limit: about twice the live
	// heap of 1,000 campaigns and 100,000 codes.
	DefaultMemoryLimitMB = 32
)

func main() {
	m := NewMain()
	if err := m.ParseFlags(os.Args[1:], os.Getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "agent:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := m.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "agent:", err)
		os.Exit(1)
	}
	<-ctx.Done()
	if err := m.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "agent:", err)
		os.Exit(1)
	}
}

// Config is the agent's configuration.
type Config struct {
	Tenant     string // tenant id (PUNCHCARD_TENANT), required
	Agent      string // agent id (PUNCHCARD_AGENT), required
	Store      string // expected store id (PUNCHCARD_STORE); the snapshot names the store, a mismatch is logged
	HubURL     string // hub HTTP base URL (PUNCHCARD_HUB_URL); empty = never sync
	MQTTURL    string // broker URL (PUNCHCARD_MQTT_URL), e.g. tcp://hub:1883
	Secret     string // agent secret: MQTT password and HTTP bearer key (PUNCHCARD_SECRET)
	SecretFile string // file holding the secret (PUNCHCARD_SECRET_FILE), preferred over a flag
	// HubKey is the hub's public key (the "hub_key" of the agent's
	// registration, unpadded base64url) that every message from the hub
	// must be signed with (PUNCHCARD_HUB_KEY); required to sync.
	HubKey     string
	HubKeyFile string // file holding HubKey (PUNCHCARD_HUB_KEY_FILE), read when set
	DataDir    string // directory of agent.db (PUNCHCARD_DATA_DIR), default DefaultDataDir
	Listen     string // POS API address (PUNCHCARD_LISTEN), default DefaultListen (loopback)
	LogLevel   string // debug, info, warn, error (PUNCHCARD_LOG_LEVEL)
	// MemoryLimitMB is the Go runtime's soft memory limit in MiB
	// (PUNCHCARD_MEMORY_LIMIT_MB), default DefaultMemoryLimitMB; 0 leaves
	// the runtime's default (or GOMEMLIMIT). It keeps the heap's peak, when
	// a large snapshot is decoded, within a till's budget.
	MemoryLimitMB int
	// MinFreeDiskMB is the free space (MiB) the data directory's file
	// system must keep (PUNCHCARD_MIN_FREE_DISK_MB): below it the till
	// refuses new sales with storage_full. Default
	// agentdb.DefaultMinFreeBytes (256 MiB); -1 turns the check off.
	MinFreeDiskMB int
	// POSTokenFile holds the POS API's access token
	// (PUNCHCARD_POS_TOKEN_FILE); default <DataDir>/agent.DefaultPOSTokenFile.
	// The agent creates it (mode 0640) with a random token on first start.
	POSTokenFile string
	// POSTokenOff turns the POS API token off (PUNCHCARD_POS_TOKEN_OFF),
	// for a POS that cannot send it yet: allowed on a loopback listener
	// only. The browser, Host and Content-Type checks stay on.
	POSTokenOff bool
	// POSHosts are extra host names the POS API accepts in the Host
	// header (PUNCHCARD_POS_ALLOWED_HOSTS, comma-separated), for a POS
	// reaching the till over the LAN by name.
	POSHosts []string
	// CAFile is a PEM file of the CA certificates that verify the hub
	// over TLS (PUNCHCARD_CA_FILE), for an https:// -hub-url and an
	// ssl:// (tls://, mqtts://) -mqtt-url; default the system roots. A hub
	// with a self-signed certificate: that certificate is the CA file.
	CAFile string
	// HubCertSHA256 pins the hub: SHA-256 fingerprints
	// (PUNCHCARD_HUB_CERT_SHA256, comma-separated) of which one must be a
	// certificate of the verified chain. It narrows verification, never
	// replaces it.
	HubCertSHA256 []string
	// SyncWindow is the most batches in flight to the hub
	// (PUNCHCARD_SYNC_WINDOW), default uplink.DefaultWindow.
	SyncWindow int
	// PollEvery is how often the snapshot is asked for without an
	// announcement (PUNCHCARD_POLL_EVERY), default uplink.DefaultPollEvery.
	PollEvery time.Duration
	// OnlineMaxAge is the snapshot age past which the till decides offline
	// even with its links up (PUNCHCARD_ONLINE_MAX_AGE), default three
	// polls.
	OnlineMaxAge time.Duration
	// OnlineTimeout bounds how long a till decision waits for the hub when
	// it asks online first (PUNCHCARD_ONLINE_TIMEOUT); then it decides
	// offline. Default agent.DefaultOnlineTimeout; negative never asks.
	OnlineTimeout time.Duration
}

// Main is the program, separated from main() so tests can run it.
type Main struct {
	Config Config
	Stdout io.Writer

	db     *agentdb.DB
	agent  *agent.Agent
	sync   *uplink.Client
	ln     net.Listener
	server *http.Server
	done   chan error
}

// NewMain returns a Main with defaults.
func NewMain() *Main {
	return &Main{Config: Config{Listen: DefaultListen, DataDir: DefaultDataDir, LogLevel: "info", MemoryLimitMB: DefaultMemoryLimitMB, MinFreeDiskMB: agentdb.DefaultMinFreeBytes >> 20, OnlineTimeout: agent.DefaultOnlineTimeout}, Stdout: os.Stdout}
}

// ParseFlags reads flags, with environment variables as defaults.
func (m *Main) ParseFlags(args []string, getenv func(string) string) error {
	c := &m.Config
	env := func(name, def string) string {
		if v := getenv("PUNCHCARD_" + name); v != "" {
			return v
		}
		return def
	}
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.StringVar(&c.Tenant, "tenant", env("TENANT", c.Tenant), "tenant id ($PUNCHCARD_TENANT)")
	fs.StringVar(&c.Agent, "agent", env("AGENT", c.Agent), "agent id ($PUNCHCARD_AGENT)")
	fs.StringVar(&c.Store, "store", env("STORE", c.Store), "expected store id; the hub's snapshot decides ($PUNCHCARD_STORE)")
	fs.StringVar(&c.HubURL, "hub-url", env("HUB_URL", c.HubURL), "hub HTTP base URL ($PUNCHCARD_HUB_URL)")
	fs.StringVar(&c.MQTTURL, "mqtt-url", env("MQTT_URL", c.MQTTURL), "MQTT broker URL, tcp://host:1883 ($PUNCHCARD_MQTT_URL)")
	fs.StringVar(&c.Secret, "secret", env("SECRET", c.Secret), "agent secret ($PUNCHCARD_SECRET; prefer -secret-file)")
	fs.StringVar(&c.SecretFile, "secret-file", env("SECRET_FILE", c.SecretFile), "file holding the agent secret ($PUNCHCARD_SECRET_FILE)")
	fs.StringVar(&c.HubKey, "hub-key", env("HUB_KEY", c.HubKey), "the hub's public key from the agent's registration (hub_key), pinned to verify every message from the hub ($PUNCHCARD_HUB_KEY)")
	fs.StringVar(&c.HubKeyFile, "hub-key-file", env("HUB_KEY_FILE", c.HubKeyFile), "file holding the hub's public key ($PUNCHCARD_HUB_KEY_FILE)")
	fs.StringVar(&c.DataDir, "data-dir", env("DATA_DIR", c.DataDir), "data directory ($PUNCHCARD_DATA_DIR)")
	fs.StringVar(&c.Listen, "listen", env("LISTEN", c.Listen), "POS API listen address, loopback by default ($PUNCHCARD_LISTEN)")
	fs.StringVar(&c.POSTokenFile, "pos-token-file", env("POS_TOKEN_FILE", c.POSTokenFile), "POS API token file, created on first start; default <data-dir>/"+agent.DefaultPOSTokenFile+" ($PUNCHCARD_POS_TOKEN_FILE)")
	tokenOff, err := strconv.ParseBool(env("POS_TOKEN_OFF", strconv.FormatBool(c.POSTokenOff)))
	if err != nil {
		return fmt.Errorf("PUNCHCARD_POS_TOKEN_OFF: %w", err)
	}
	fs.BoolVar(&c.POSTokenOff, "pos-token-off", tokenOff, "serve the POS API without its token; loopback -listen only ($PUNCHCARD_POS_TOKEN_OFF)")
	fs.StringVar(&c.CAFile, "ca-file", env("CA_FILE", c.CAFile), "PEM CA certificates verifying the hub's TLS; default the system roots ($PUNCHCARD_CA_FILE)")
	pins := fs.String("hub-cert-sha256", env("HUB_CERT_SHA256", strings.Join(c.HubCertSHA256, ",")), "SHA-256 fingerprints, one of which the hub's verified TLS chain must hold, comma-separated ($PUNCHCARD_HUB_CERT_SHA256)")
	hosts := fs.String("pos-allowed-hosts", env("POS_ALLOWED_HOSTS", strings.Join(c.POSHosts, ",")), "host names besides loopback and localhost the POS API answers to, comma-separated ($PUNCHCARD_POS_ALLOWED_HOSTS)")
	fs.StringVar(&c.LogLevel, "log-level", env("LOG_LEVEL", c.LogLevel), "debug, info, warn or error ($PUNCHCARD_LOG_LEVEL)")
	memDef := c.MemoryLimitMB
	if v := getenv("PUNCHCARD_MEMORY_LIMIT_MB"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("PUNCHCARD_MEMORY_LIMIT_MB: %w", err)
		}
		memDef = n
	}
	fs.IntVar(&c.MemoryLimitMB, "memory-limit-mb", memDef, "soft memory limit in MiB, 0 = runtime default ($PUNCHCARD_MEMORY_LIMIT_MB)")
	freeDef := c.MinFreeDiskMB
	if v := getenv("PUNCHCARD_MIN_FREE_DISK_MB"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("PUNCHCARD_MIN_FREE_DISK_MB: %w", err)
		}
		freeDef = n
	}
	fs.IntVar(&c.MinFreeDiskMB, "min-free-disk-mb", freeDef, "free MiB the data directory must keep; below it new sales are refused with storage_full, -1 = no check ($PUNCHCARD_MIN_FREE_DISK_MB)")
	winDef := c.SyncWindow
	if v := getenv("PUNCHCARD_SYNC_WINDOW"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("PUNCHCARD_SYNC_WINDOW: %w", err)
		}
		winDef = n
	}
	fs.IntVar(&c.SyncWindow, "sync-window", winDef, "most batches in flight to the hub, 0 = the default ($PUNCHCARD_SYNC_WINDOW)")
	for _, d := range []struct {
		p         *time.Duration
		name, env string
		usage     string
	}{
		{&c.PollEvery, "poll-every", "POLL_EVERY", "how often to ask the hub for the snapshot without an announcement, 0 = the default (30s)"},
		{&c.OnlineMaxAge, "online-max-age", "ONLINE_MAX_AGE", "snapshot age past which the till decides offline even with its links up, 0 = three polls"},
	} {
		def := *d.p
		if v := getenv("PUNCHCARD_" + d.env); v != "" {
			n, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("PUNCHCARD_%s: %w", d.env, err)
			}
			def = n
		}
		fs.DurationVar(d.p, d.name, def, d.usage+" ($PUNCHCARD_"+d.env+")")
	}
	otDef := c.OnlineTimeout
	if v := getenv("PUNCHCARD_ONLINE_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("PUNCHCARD_ONLINE_TIMEOUT: %w", err)
		}
		otDef = d
	}
	fs.DurationVar(&c.OnlineTimeout, "online-timeout", otDef, "how long a sale waits for the hub when it asks online first (single-use codes, gift cards, per-customer limits, points burns); then it decides offline; negative never asks ($PUNCHCARD_ONLINE_TIMEOUT)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c.POSHosts, c.HubCertSHA256 = splitList(*hosts), splitList(*pins)
	if err := protocol.ValidateID("tenant", c.Tenant); err != nil {
		return err
	}
	if err := protocol.ValidateID("agent", c.Agent); err != nil {
		return err
	}
	if c.SecretFile != "" {
		b, err := os.ReadFile(c.SecretFile)
		if err != nil {
			return fmt.Errorf("secret file: %w", err)
		}
		c.Secret = strings.TrimSpace(string(b))
	}
	if (c.HubURL == "") != (c.MQTTURL == "") {
		return errors.New("set both -hub-url and -mqtt-url, or neither (offline only)")
	}
	if c.HubURL != "" && c.Secret == "" {
		return errors.New("a secret is required to sync (-secret-file or $PUNCHCARD_SECRET)")
	}
	if c.HubKeyFile != "" {
		b, err := os.ReadFile(c.HubKeyFile)
		if err != nil {
			return fmt.Errorf("hub key file: %w", err)
		}
		c.HubKey = strings.TrimSpace(string(b))
	}
	if c.HubURL != "" && c.HubKey == "" {
		return errors.New("the hub's public key is required to sync: pin the hub_key of the agent's registration (-hub-key, -hub-key-file or $PUNCHCARD_HUB_KEY)")
	}
	if c.HubKey != "" {
		if _, err := protocol.ParseHubKey(c.HubKey); err != nil {
			return fmt.Errorf("-hub-key: %w", err)
		}
	}
	if c.CAFile != "" || len(c.HubCertSHA256) > 0 {
		if c.HubURL == "" || !tlsURL(c.HubURL) || !tlsURL(c.MQTTURL) {
			return errors.New("-ca-file and -hub-cert-sha256 verify TLS: use an https:// -hub-url and an ssl:// -mqtt-url")
		}
	}
	return nil
}

// Run opens the database, restores the snapshot, starts sync and serves
// the POS API. It returns once serving.
func (m *Main) Run(ctx context.Context) error {
	c := m.Config
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return fmt.Errorf("log level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)
	if c.MemoryLimitMB > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(int64(c.MemoryLimitMB) << 20)
	}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	now := time.Now
	if path := os.Getenv(FaultClockEnv); path != "" {
		log.Warn("agent: FAULT INJECTION: the wall clock is shifted by the offset in "+FaultClockEnv+"; tests only", "file", path)
		now = newFaultClock(path).Now
	}
	minFree := int64(c.MinFreeDiskMB) << 20
	if c.MinFreeDiskMB < 0 {
		minFree = -1
	}
	db, err := agentdb.Open(ctx, filepath.Join(c.DataDir, DBFile), agentdb.Options{Now: now, MinFreeBytes: minFree,
		Logf: func(msg string, err error) { log.Warn(msg, "err", err) }})
	if err != nil {
		return err
	}
	m.db = db
	a, err := agent.New(ctx, protocol.TenantID(c.Tenant), protocol.AgentID(c.Agent), db)
	if err != nil {
		return err
	}
	a.Logger = log
	a.Now = now
	a.OnlineTimeout = c.OnlineTimeout
	m.agent = a
	if v, _ := a.SnapshotVersion(); v == 0 {
		log.Warn("agent: NEVER SYNCED: this till has no rules yet and refuses every reward (never_synced) until its first sync with the hub")
	} else {
		st, _ := a.Status(ctx)
		log.Info("agent: serving the stored snapshot; no network needed", "snapshot_version", v, "store", st.Store, "synced_at", st.SyncedAt, "outbox", st.OutboxDepth)
		if c.Store != "" && string(st.Store) != c.Store {
			log.Warn("agent: the hub's snapshot is for another store", "snapshot_store", st.Store, "flag_store", c.Store)
		}
	}
	if c.POSTokenOff {
		log.Warn("agent: the POS API token is off (-pos-token-off): any local program can drive the POS API")
	} else {
		path := c.POSTokenFile
		if path == "" {
			path = filepath.Join(c.DataDir, agent.DefaultPOSTokenFile)
		}
		tok, created, err := agent.LoadPOSToken(path)
		if err != nil {
			return err
		}
		if created {
			log.Info("agent: created the POS API token; the POS sends it as Authorization: Bearer", "file", path)
		}
		a.POSToken = tok
	}
	a.POSHosts = c.POSHosts
	if c.POSTokenOff && !loopbackListen(c.Listen) {
		return fmt.Errorf("listen: -listen %s reaches beyond loopback: the POS API needs its token there (drop -pos-token-off)", c.Listen)
	}
	if c.HubURL != "" {
		hubKey, err := protocol.ParseHubKey(c.HubKey)
		if err != nil {
			return fmt.Errorf("-hub-key: %w", err)
		}
		tc, err := tlsconf.Client(c.CAFile, c.HubCertSHA256)
		if err != nil {
			return err
		}
		for _, u := range []string{c.HubURL, c.MQTTURL} {
			if plainRemote(u) {
				log.Warn("agent: SENDS ITS SECRET IN CLEAR: the hub is reached without TLS beyond loopback; use https:// and ssl:// (docs/agent.md)", "url", u)
			}
		}
		s, err := uplink.New(uplink.Options{Tenant: a.Tenant, Agent: a.ID, BrokerURL: c.MQTTURL, HubURL: strings.TrimRight(c.HubURL, "/"),
			Secret: c.Secret, HubKey: hubKey, Logger: log, TLS: tc, Window: c.SyncWindow,
			PollEvery: c.PollEvery, OnlineMaxAge: c.OnlineMaxAge}, a, db)
		if err != nil {
			return err
		}
		m.sync = s
		a.RequireWatermark = true
		a.SetLink(s)
	} else {
		log.Warn("agent: no hub configured: offline only")
	}
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if ta, ok := ln.Addr().(*net.TCPAddr); c.POSTokenOff && (!ok || !ta.IP.IsLoopback()) {
		ln.Close()
		return fmt.Errorf("listen: the POS API listens on %s, beyond loopback: it needs its token there (drop -pos-token-off)", ln.Addr())
	}
	m.ln = ln
	m.server = &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 5 * time.Second}
	m.done = make(chan error, 1)
	go func() { m.done <- m.server.Serve(ln) }()
	fmt.Fprintf(m.Stdout, "punchcard agent listening on http://%s\n", ln.Addr())
	return nil
}

// splitList splits a comma-separated flag value, dropping blanks.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// tlsURL reports whether a hub or broker URL uses TLS.
func tlsURL(u string) bool {
	scheme, _, _ := strings.Cut(strings.ToLower(u), "://")
	switch scheme {
	case "https", "ssl", "tls", "mqtts", "mqtt+ssl", "tcps":
		return true
	}
	return false
}

// plainRemote reports whether u is a plaintext URL to a host beyond
// loopback (a unix:// broker socket is on this machine).
func plainRemote(u string) bool {
	if tlsURL(u) {
		return false
	}
	scheme, rest, _ := strings.Cut(u, "://")
	if strings.EqualFold(scheme, "unix") {
		return false
	}
	host, _, _ := strings.Cut(rest, "/")
	return !loopbackListen(host) && !loopbackListen(host+":0")
}

// loopbackListen reports whether a listen address is on loopback only
// (an empty host or 0.0.0.0 is every interface).
func loopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Addr is the POS API's address once Run returned.
func (m *Main) Addr() string {
	if m.ln == nil {
		return ""
	}
	return m.ln.Addr().String()
}

// Close stops serving, syncing and closes the database.
func (m *Main) Close() error {
	var errs []error
	if m.server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		errs = append(errs, m.server.Shutdown(ctx))
		cancel()
		if err := <-m.done; !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	if m.sync != nil {
		errs = append(errs, m.sync.Close())
	}
	if m.db != nil {
		errs = append(errs, m.db.Close())
	}
	return errors.Join(errs...)
}
