// Package cluster runs a whole Punchcard installation as real processes on
// loopback — a hub, store agents behind cuttable network links, optionally
// an external Mosquitto — and talks to it as its users would: the head
// office through the hub's HTTP API, the tills through each agent's POS
// API. The demo and the fault tests are both built on it.
//
// Each agent reaches the hub's HTTP API and the MQTT broker only through
// its own netcut proxies, so cutting a store's network leaves its process,
// and the till in front of it, running.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/punchcard/punchcard/agent"
	"github.com/punchcard/punchcard/cmd/punchcard/internal/netcut"
	"github.com/punchcard/punchcard/cmd/punchcard/internal/proc"
	"github.com/punchcard/punchcard/protocol"
)

// Binary names under Options.BinDir (what make build produces).
const (
	HubBinary   = "hub"
	AgentBinary = "agent"
)

// Options configure a cluster.
type Options struct {
	BinDir string // where hub and agent binaries are
	Dir    string // data; each process gets a subdirectory
	LogDir string // process logs; default Dir/logs
	// BrokerURL, when set, makes the hub use this external broker
	// ("tcp://127.0.0.1:1883") instead of its embedded one.
	BrokerURL string
	// Mosquitto, instead, makes the cluster run its own Mosquitto (under
	// Dir/mosquitto, log in LogDir) configured as docs/operations.md says —
	// passwords and ACL enforced — put the hub on it, and give the broker
	// each agent's login before starting the agent. BrokerURL is ignored.
	Mosquitto bool
	// Metrics serves the hub's Prometheus /metrics on a free loopback port
	// (Hub.MetricsAddr, Hub.Metric).
	Metrics bool
	// Progress receives waiting lines; nil is silent.
	Progress func(format string, args ...any)
	// ReadyTimeout bounds each process's start (default 30 s).
	ReadyTimeout time.Duration
	// ReadyDeadline, when set, replaces ReadyTimeout: each start and
	// restart is waited for until the process is ready, exits, or this
	// moment passes (proc.Spec.ReadyDeadline). Tests set it a minute
	// before the test binary's deadline (testutil.Patience).
	ReadyDeadline time.Time
	// AgentArgs are added to every agent's command line (cmd/agent -h),
	// e.g. {"-online-max-age", "2s"}.
	AgentArgs []string
}

// Cluster is a running installation.
type Cluster struct {
	opts Options
	Sup  *proc.Supervisor
	Hub  *Hub
	// Agents by ID, in the order they were added.
	Agents []*StoreAgent
	// Platform is the hub API with the platform key.
	Platform HubAPI
	// Mosquitto is the broker the cluster runs (Options.Mosquitto), or nil.
	Mosquitto *Mosquitto
	// hubMQTTPassword is the hub's login on an external broker.
	hubMQTTPassword string
}

// HubMQTTUser is the hub's MQTT username on an external broker (the hub's
// default, cmd/hub -mqtt-user).
const HubMQTTUser = "punchcard-hub"

// FindBinary returns the path of a binary in dir, or an *Unavailable that
// names the command that would provide it.
func FindBinary(dir, name string) (string, error) {
	p := filepath.Join(dir, name)
	st, err := os.Stat(p)
	if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return "", &Unavailable{What: fmt.Sprintf("%s is not built (no executable %s; cmd/%s must exist and `make build` must have run)", name, p, name)}
	}
	return p, nil
}

// BuildBinaries builds cmd/hub and cmd/agent (and whatever else is asked)
// into dir with the go tool, for tests. A command whose package does not
// exist yet is reported as *Unavailable.
func BuildBinaries(ctx context.Context, moduleRoot, dir string, names ...string) error {
	for _, n := range names {
		pkg := filepath.Join(moduleRoot, "cmd", n)
		if _, err := os.Stat(pkg); err != nil {
			return &Unavailable{What: fmt.Sprintf("cmd/%s does not exist", n)}
		}
		cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(dir, n), "./cmd/"+n)
		cmd.Dir = moduleRoot
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("go build ./cmd/%s: %w\n%s", n, err, out)
		}
	}
	return nil
}

// Start starts the hub and waits until it serves its API.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = 30 * time.Second
	}
	if opts.LogDir == "" {
		opts.LogDir = filepath.Join(opts.Dir, "logs")
	}
	sup, err := proc.New(opts.LogDir)
	if err != nil {
		return nil, err
	}
	sup.Progress = opts.Progress
	c := &Cluster{opts: opts, Sup: sup, hubMQTTPassword: randomSecret()}
	if opts.Mosquitto {
		// Started first, so StopAll stops it last, after the hub and agents.
		c.Mosquitto, err = StartSecureMosquitto(ctx, sup, MosquittoOptions{
			Dir:     filepath.Join(opts.Dir, "mosquitto"),
			LogPath: filepath.Join(opts.LogDir, "mosquitto.log"),
			HubUser: HubMQTTUser, HubPassword: c.hubMQTTPassword,
			Persistent: true, ReadyDeadline: opts.ReadyDeadline,
		})
		if err != nil {
			_ = sup.StopAll()
			return nil, err
		}
		c.opts.BrokerURL = c.Mosquitto.URL()
	}
	h, err := c.startHub(ctx)
	if err != nil {
		_ = sup.StopAll()
		return nil, err
	}
	c.Hub = h
	c.Platform = HubAPI{C: NewClient(h.URL, h.PlatformKey)}
	return c, nil
}

// Close stops every process (agents first) and every proxy.
func (c *Cluster) Close() error {
	err := c.Sup.StopAll()
	for _, a := range c.Agents {
		a.closeProxies()
	}
	if c.Hub != nil {
		c.Hub.closeFronts()
	}
	return err
}

// randomSecret makes a platform key for a fresh hub.
func randomSecret() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return "pk_" + hex.EncodeToString(b)
}

// Hub is the running hub process.
type Hub struct {
	Proc        *proc.Process
	URL         string // http://127.0.0.1:port
	HTTPAddr    string
	MQTTAddr    string // the broker agents connect to (embedded or external)
	MetricsAddr string // /metrics, when Options.Metrics
	DataDir     string
	PlatformKey string

	// The proxies in front of the hub's ports (flags.go, front): every
	// run binds port 0, and these forward to the current run.
	httpFront, mqttFront, metricsFront *netcut.Proxy
}

// LedgerPath is the hub's ledger database file.
func (h *Hub) LedgerPath() string { return filepath.Join(h.DataDir, hubLedgerFile) }

// Restart starts the hub again after a stop or a kill, with the same
// ports and data, and waits until it is ready.
func (h *Hub) Restart(ctx context.Context) error {
	if err := h.Proc.Restart(); err != nil {
		return err
	}
	if err := h.Proc.WaitReady(ctx); err != nil {
		return err
	}
	return h.front(h.metricsFront != nil, h.mqttFront != nil)
}

// StoreAgent is one till's agent, with the network links it talks through.
type StoreAgent struct {
	Tenant protocol.TenantID
	ID     protocol.AgentID
	Store  protocol.StoreID
	Proc   *proc.Process
	URL    string // the POS API, http://127.0.0.1:port
	// POS is the POS API's client; it sends the token the agent keeps in
	// its data dir (agent.DefaultPOSTokenFile), read when the agent is
	// ready, as a POS integration does.
	POS AgentAPI
	// MQTT and HTTP are the links to the broker and to the hub's API.
	MQTT, HTTP *netcut.Proxy
	DataDir    string
	// ClockFile is the agent's fault-injection clock offset file
	// (PUNCHCARD_FAULT_CLOCK_FILE, docs/agent.md); see SetClockOffset.
	ClockFile string
}

// SetClockOffset shifts the agent's wall clock by d (the agent re-reads
// the offset within about 100 ms): a till whose clock jumps.
func (a *StoreAgent) SetClockOffset(d time.Duration) error {
	s := d.String()
	if d >= 0 {
		s = "+" + s
	}
	tmp := a.ClockFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(s+"\n"), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, a.ClockFile)
}

// Cut takes the store off the network: both links break the same way.
func (a *StoreAgent) Cut(m netcut.Mode) {
	a.MQTT.Cut(m)
	a.HTTP.Cut(m)
}

// Heal puts the store back on the network.
func (a *StoreAgent) Heal() {
	a.MQTT.Heal()
	a.HTTP.Heal()
}

// Restart starts the agent again after a stop or kill and waits for its
// POS API.
func (a *StoreAgent) Restart(ctx context.Context) error {
	if err := a.Proc.Restart(); err != nil {
		return err
	}
	if err := a.Proc.WaitReady(ctx); err != nil {
		return err
	}
	// The agent bound port 0 again and reported it (no port is released
	// and handed back to it); the POS client follows.
	a.URL = "http://" + a.Proc.Reported()[1]
	return a.readPOSToken()
}

// readPOSToken points a.POS at the agent's POS API with its token.
func (a *StoreAgent) readPOSToken() error {
	token, err := agent.ReadPOSToken(filepath.Join(a.DataDir, agent.DefaultPOSTokenFile))
	if err != nil {
		return fmt.Errorf("agent %s: %w", a.ID, err)
	}
	a.POS = AgentAPI{C: NewClient(a.URL, token)}
	return nil
}

func (a *StoreAgent) closeProxies() {
	if a.MQTT != nil {
		a.MQTT.Close()
	}
	if a.HTTP != nil {
		a.HTTP.Close()
	}
}

// AddAgent starts an agent registered as reg behind two fresh proxies and
// waits for its POS API (not for its first sync).
func (c *Cluster) AddAgent(ctx context.Context, reg RegisteredAgent) (*StoreAgent, error) {
	a := &StoreAgent{Tenant: reg.Tenant, ID: reg.ID, Store: reg.Store.ID,
		DataDir: filepath.Join(c.opts.Dir, "agent-"+string(reg.ID)), ClockFile: filepath.Join(c.opts.Dir, "clock-"+string(reg.ID))}
	var err error
	if a.MQTT, err = netcut.Listen("127.0.0.1:0", c.Hub.MQTTAddr); err != nil {
		return nil, err
	}
	if a.HTTP, err = netcut.Listen("127.0.0.1:0", c.Hub.HTTPAddr); err != nil {
		a.closeProxies()
		return nil, err
	}
	spec, err := c.agentSpec(a, reg, "127.0.0.1:0")
	if err != nil {
		a.closeProxies()
		return nil, err
	}
	if c.Mosquitto != nil {
		// What an operator does when a till is registered: its login goes
		// into the broker's password file.
		wait := c.opts.ReadyTimeout
		if !c.opts.ReadyDeadline.IsZero() {
			wait = time.Until(c.opts.ReadyDeadline)
		}
		if err := c.Mosquitto.AddUser(ctx, string(reg.Tenant)+"/"+string(reg.ID), reg.Secret, wait); err != nil {
			a.closeProxies()
			return nil, err
		}
	}
	if a.Proc, err = c.Sup.StartReady(ctx, spec); err != nil {
		a.closeProxies()
		return nil, err
	}
	// The agent bound port 0 and reported it, as it does on a restart.
	a.URL = "http://" + a.Proc.Reported()[1]
	if err := a.readPOSToken(); err != nil {
		a.closeProxies()
		return nil, err
	}
	c.Agents = append(c.Agents, a)
	return a, nil
}

// WaitSynced waits until the agent has a snapshot of at least version
// (0: any) and an empty outbox is not required.
func (a *StoreAgent) WaitSynced(ctx context.Context, version uint64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		st, err := a.POS.Status(ctx)
		if err == nil && !st.NeverSynced && st.SnapshotVersion >= version && st.Online {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("agent %s not synced after %s: %w", a.ID, timeout, err)
			}
			return fmt.Errorf("agent %s not synced after %s: online=%v version=%d (want ≥ %d): %s", a.ID, timeout, st.Online, st.SnapshotVersion, version, st.Message)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
