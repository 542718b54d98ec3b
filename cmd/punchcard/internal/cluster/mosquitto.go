package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/punchcard/punchcard/cmd/punchcard/internal/proc"
)

// MosquittoPaths are where the Debian package installs the broker; PATH is
// searched first.
var MosquittoPaths = []string{"/usr/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/sbin/mosquitto"}

// FindMosquitto returns the mosquitto binary, or an *Unavailable.
func FindMosquitto() (string, error) {
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p, nil
	}
	for _, p := range MosquittoPaths {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", &Unavailable{What: "mosquitto is not installed (Debian: apt-get install mosquitto)"}
}

// Mosquitto is an external broker run by the supervisor, for the tests that
// restart the broker under the hub and the agents.
type Mosquitto struct {
	Proc *proc.Process
	Addr string // 127.0.0.1:port
	// Persistent says whether the broker keeps sessions and queued messages
	// on disk across restarts (persistence true).
	Persistent bool
	Dir        string
}

// URL is the broker address as an MQTT client option wants it.
func (m *Mosquitto) URL() string { return "tcp://" + m.Addr }

// StartMosquitto runs mosquitto on a free loopback port with its config,
// data and log under dir. Anonymous clients are allowed: the broker is on
// loopback for a test, and identity is checked by the hub on every message.
func StartMosquitto(ctx context.Context, sup *proc.Supervisor, dir string, persistent bool) (*Mosquitto, error) {
	bin, err := FindMosquitto()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	port, err := proc.FreePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	var conf strings.Builder
	fmt.Fprintf(&conf, "listener %d 127.0.0.1\n", port)
	conf.WriteString("allow_anonymous true\n")
	conf.WriteString("log_dest stdout\n")
	conf.WriteString("log_type error\nlog_type warning\nlog_type notice\nlog_type information\n")
	conf.WriteString("max_queued_messages 100000\n")
	if persistent {
		conf.WriteString("persistence true\n")
		fmt.Fprintf(&conf, "persistence_location %s/\n", dir)
		// Write the database on every change, so a SIGKILL loses nothing the
		// broker acknowledged: the tests kill it.
		conf.WriteString("autosave_interval 1\nautosave_on_changes true\n")
	} else {
		conf.WriteString("persistence false\n")
	}
	cfgPath := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(cfgPath, []byte(conf.String()), 0o644); err != nil {
		return nil, err
	}
	p, err := sup.StartReady(ctx, proc.Spec{
		Name:      "mosquitto",
		Path:      bin,
		Args:      []string{"-c", cfgPath},
		LogPath:   filepath.Join(dir, "mosquitto.log"),
		ReadyAddr: addr,
	})
	if err != nil {
		return nil, err
	}
	return &Mosquitto{Proc: p, Addr: addr, Persistent: persistent, Dir: dir}, nil
}

// Restart stops the broker (SIGKILL when crash is true, else SIGTERM) and
// starts it again on the same port, waiting until it accepts connections.
func (m *Mosquitto) Restart(ctx context.Context, crash bool) error {
	if crash {
		if err := m.Proc.Kill(); err != nil {
			return err
		}
	} else if err := m.Proc.Stop(); err != nil {
		return err
	}
	if err := m.Proc.Restart(); err != nil {
		return err
	}
	return m.Proc.WaitReady(ctx)
}
