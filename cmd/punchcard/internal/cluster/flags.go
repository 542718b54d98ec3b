package cluster

import (
	"context"
	"fmt"
	"path/filepath"

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
	httpPort, err := proc.FreePort()
	if err != nil {
		return nil, err
	}
	h := &Hub{
		HTTPAddr:    fmt.Sprintf("127.0.0.1:%d", httpPort),
		DataDir:     filepath.Join(c.opts.Dir, "hub"),
		PlatformKey: randomSecret(),
	}
	h.URL = "http://" + h.HTTPAddr
	metrics := "-"
	if c.opts.Metrics {
		port, err := proc.FreePort()
		if err != nil {
			return nil, err
		}
		h.MetricsAddr = fmt.Sprintf("127.0.0.1:%d", port)
		metrics = h.MetricsAddr
	}
	args := []string{"-http", h.HTTPAddr, "-data", h.DataDir, "-metrics", metrics}
	env := []string{"PUNCHCARD_BOOTSTRAP_KEY=" + h.PlatformKey}
	if c.opts.BrokerURL != "" {
		args = append(args, "-broker", c.opts.BrokerURL)
		// The chaos tests' broker admits anyone, the cluster's own Mosquitto
		// checks this login; the hub needs a password either way.
		args = append(args, "-mqtt-user", HubMQTTUser)
		env = append(env, "PUNCHCARD_MQTT_PASSWORD="+c.hubMQTTPassword)
		h.MQTTAddr = trimScheme(c.opts.BrokerURL)
	} else {
		mqttPort, err := proc.FreePort()
		if err != nil {
			return nil, err
		}
		h.MQTTAddr = fmt.Sprintf("127.0.0.1:%d", mqttPort)
		args = append(args, "-mqtt", h.MQTTAddr)
	}
	h.Proc, err = c.Sup.StartReady(ctx, proc.Spec{
		Name:         "hub",
		Path:         bin,
		Args:         args,
		Env:          env,
		ReadyURL:     h.URL + "/healthz",
		ReadyTimeout: c.opts.ReadyTimeout,
	})
	if err != nil {
		return nil, err
	}
	return h, nil
}

func (c *Cluster) agentSpec(a *StoreAgent, reg RegisteredAgent, port int) (proc.Spec, error) {
	bin, err := FindBinary(c.opts.BinDir, AgentBinary)
	if err != nil {
		return proc.Spec{}, err
	}
	return proc.Spec{
		Name: "agent-" + string(reg.ID),
		Path: bin,
		Args: []string{
			"-listen", fmt.Sprintf("127.0.0.1:%d", port),
			"-hub-url", "http://" + a.HTTP.Addr(),
			"-mqtt-url", "tcp://" + a.MQTT.Addr(),
			"-tenant", string(reg.Tenant),
			"-agent", string(reg.ID),
			"-store", string(reg.Store.ID),
			"-data-dir", a.DataDir,
		},
		// The secret travels in the environment, not on the command line
		// where ps would show it; the hub key, from the same registration
		// answer, is pinned to verify everything the hub sends down.
		Env: []string{"PUNCHCARD_SECRET=" + reg.Secret, "PUNCHCARD_HUB_KEY=" + reg.HubKey,
			"PUNCHCARD_FAULT_CLOCK_FILE=" + a.ClockFile},
		ReadyURL:     fmt.Sprintf("http://127.0.0.1:%d/healthz", port),
		ReadyTimeout: c.opts.ReadyTimeout,
	}, nil
}

func trimScheme(u string) string {
	for _, p := range []string{"tcp://", "mqtt://"} {
		if len(u) > len(p) && u[:len(p)] == p {
			return u[len(p):]
		}
	}
	return u
}
