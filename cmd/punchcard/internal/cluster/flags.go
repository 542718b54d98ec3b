package cluster

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"

	"github.com/punchcard/punchcard/cmd/punchcard/internal/netcut"
	"github.com/punchcard/punchcard/cmd/punchcard/internal/proc"
)

// This file is the one place that knows the hub's and the agent's command
// lines (docs/operations.md, cmd/hub and cmd/agent -h).

// hubLedgerFile is the ledger database's name inside the hub's data dir.
const hubLedgerFile = "hub.db"

func (c *Cluster) startHub(ctx context.Context) (*Hub, error) {
	bin, err := FindBinary(c.opts.BinDir, HubBinary)
	if err != nil {
		return nil, err
	}
	// The hub binds port 0 and logs the addresses it got: no port is
	// picked, released and handed over for another process to take
	// meanwhile. A restarted hub binds port 0 again: the addresses the
	// cluster hands out are its front proxies' (Hub.front), which
	// this process holds for the cluster's life.
	h := &Hub{
		DataDir:     filepath.Join(c.opts.Dir, "hub"),
		PlatformKey: randomSecret(),
	}
	metrics := "-"
	if c.opts.Metrics {
		metrics = "127.0.0.1:0"
	}
	args := []string{"-http", "127.0.0.1:0", "-data", h.DataDir, "-metrics", metrics}
	env := []string{"PUNCHCARD_BOOTSTRAP_KEY=" + h.PlatformKey}
	if c.opts.BrokerURL != "" {
		args = append(args, "-broker", c.opts.BrokerURL)
		// The chaos tests' broker admits anyone, the cluster's own Mosquitto
		// checks this login; the hub needs a password either way.
		args = append(args, "-mqtt-user", HubMQTTUser)
		env = append(env, "PUNCHCARD_MQTT_PASSWORD="+c.hubMQTTPassword)
		h.MQTTAddr = trimScheme(c.opts.BrokerURL)
	} else {
		args = append(args, "-mqtt", "127.0.0.1:0")
	}
	h.Proc, err = c.Sup.StartReady(ctx, proc.Spec{
		Name:          "hub",
		Path:          bin,
		Args:          args,
		Env:           env,
		ReadyLog:      hubHTTPLine,
		ReadyURL:      "http://{addr}/healthz",
		ReadyTimeout:  c.opts.ReadyTimeout,
		ReadyDeadline: c.opts.ReadyDeadline,
	})
	if err != nil {
		return nil, err
	}
	if err := h.front(c.opts.Metrics, c.opts.BrokerURL == ""); err != nil {
		_ = h.Proc.Kill()
		return nil, err
	}
	h.URL = "http://" + h.HTTPAddr
	return h, nil
}

// The lines of the hub's JSON log that report the addresses it bound.
var (
	hubHTTPLine    = regexp.MustCompile(`"msg":"hub: HTTP API listening","addr":"([^"]+)"`)
	hubMQTTLine    = regexp.MustCompile(`"msg":"hub: embedded MQTT broker listening","addr":"([^"]+)"`)
	hubMetricsLine = regexp.MustCompile(`"msg":"hub: metrics listening","addr":"([^"]+)"`)
	// agentListenLine is cmd/agent's report of its POS API address.
	agentListenLine = regexp.MustCompile(`punchcard agent listening on http://(\S+)`)
)

// agentSpec is the agent's command line; listen is its POS API address,
// "127.0.0.1:0" for the first run (the agent reports the port it got).
func (c *Cluster) agentSpec(a *StoreAgent, reg RegisteredAgent, listen string) (proc.Spec, error) {
	bin, err := FindBinary(c.opts.BinDir, AgentBinary)
	if err != nil {
		return proc.Spec{}, err
	}
	return proc.Spec{
		Name: "agent-" + string(reg.ID),
		Path: bin,
		Args: append([]string{
			"-listen", listen,
			"-hub-url", "http://" + a.HTTP.Addr(),
			"-mqtt-url", "tcp://" + a.MQTT.Addr(),
			"-tenant", string(reg.Tenant),
			"-agent", string(reg.ID),
			"-store", string(reg.Store.ID),
			"-data-dir", a.DataDir,
		}, c.opts.AgentArgs...),
		// The secret travels in the environment, not on the command line
		// where ps would show it; the hub key, from the same registration
		// answer, is pinned to verify everything the hub sends down.
		Env: []string{"PUNCHCARD_SECRET=" + reg.Secret, "PUNCHCARD_HUB_KEY=" + reg.HubKey,
			"PUNCHCARD_FAULT_CLOCK_FILE=" + a.ClockFile},
		ReadyLog:      agentListenLine,
		ReadyURL:      "http://{addr}/healthz",
		ReadyTimeout:  c.opts.ReadyTimeout,
		ReadyDeadline: c.opts.ReadyDeadline,
	}, nil
}

// trimScheme turns a broker URL into what a netcut.Proxy forwards to:
// host:port, or a unix socket's path ("unix:///…/mosquitto.sock").
func trimScheme(u string) string {
	for _, p := range []string{"tcp://", "mqtt://", "unix://"} {
		if len(u) > len(p) && u[:len(p)] == p {
			return u[len(p):]
		}
	}
	return u
}

// front puts a proxy in front of each address the hub's current run
// reported (its API, and its embedded broker and metrics where it has
// them), so that those addresses stay the cluster's for its whole life.
func (h *Hub) front(metrics, broker bool) error {
	ends := []struct {
		line *regexp.Regexp
		p    **netcut.Proxy
		addr *string
	}{{hubHTTPLine, &h.httpFront, &h.HTTPAddr}}
	if metrics {
		ends = append(ends, struct {
			line *regexp.Regexp
			p    **netcut.Proxy
			addr *string
		}{hubMetricsLine, &h.metricsFront, &h.MetricsAddr})
	}
	if broker {
		ends = append(ends, struct {
			line *regexp.Regexp
			p    **netcut.Proxy
			addr *string
		}{hubMQTTLine, &h.mqttFront, &h.MQTTAddr})
	}
	for _, e := range ends {
		m := h.Proc.FindLog(e.line)
		if m == nil {
			h.closeFronts()
			return fmt.Errorf("hub: no line matching %s in its log %s", e.line, h.Proc.LogPath())
		}
		if *e.p != nil {
			(*e.p).Retarget(m[1])
			continue
		}
		p, err := netcut.Listen("127.0.0.1:0", m[1])
		if err != nil {
			h.closeFronts()
			return err
		}
		*e.p, *e.addr = p, p.Addr()
	}
	return nil
}

func (h *Hub) closeFronts() {
	for _, p := range []*netcut.Proxy{h.httpFront, h.metricsFront, h.mqttFront} {
		if p != nil {
			p.Close()
		}
	}
}
