package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/punchcard/punchcard/hub"
)

func noenv(string) string { return "" }

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// TestRunAndVerify runs the hub program on port 0 until its context ends, then
// verifies its ledger with the verify command.
func TestRunAndVerify(t *testing.T) {
	dir := t.TempDir()
	// mochi's listener goroutine may log after Close returns: lock.
	var out bytes.Buffer
	errb := &lockedBuffer{}
	m := &Main{Stdout: &out, Stderr: errb}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m.OnStart = func(h *hub.Hub) {
		if h.HTTPAddr() == "" || h.Broker == nil {
			t.Error("hub started without its listeners")
		}
		cancel() // Run serves, then stops at once
	}
	args := []string{"-data", dir, "-http", "127.0.0.1:0", "-mqtt", "127.0.0.1:0", "-metrics", "-", "-log-level", "warn"}
	if code, err := m.Main(ctx, args, noenv); code != 0 || err != nil {
		t.Fatalf("run: %d %v\n%s", code, err, errb.String())
	}
	if !strings.Contains(errb.String(), "platform API key") {
		t.Fatalf("bootstrap key not shown:\n%s", errb.String())
	}
	v := &Main{Stdout: &out, Stderr: &bytes.Buffer{}}
	code, err := v.Main(context.Background(), []string{"verify", "-data", dir}, noenv)
	if code != 0 || err != nil {
		t.Fatalf("verify: %d %v", code, err)
	}
	if !strings.Contains(out.String(), "differences: 0") {
		t.Fatalf("verify output: %s", out.String())
	}
}

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		ok   bool
	}{
		{"OK", nil, nil, true},
		{"OKEnv", nil, map[string]string{"PUNCHCARD_BROKER_URL": "tcp://x:1883", "PUNCHCARD_MQTT_PASSWORD": "p"}, true},
		{"ErrBrokerWithoutPassword", []string{"-broker", "tcp://x:1883"}, nil, false},
		{"ErrSync", []string{"-sync", "OFF"}, nil, false},
		{"ErrLogLevel", []string{"-log-level", "loud"}, nil, false},
		{"ErrArgument", []string{"extra"}, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &Main{Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}}
			err := m.ParseFlags(tc.args, func(k string) string { return tc.env[k] })
			if got := err == nil; got != tc.ok {
				t.Fatalf("err = %v, want ok %v", err, tc.ok)
			}
		})
	}
}

func TestVerifyMissing(t *testing.T) {
	m := &Main{Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}}
	if code, err := m.Main(context.Background(), []string{"verify", "-data", filepath.Join(t.TempDir(), "nope")}, noenv); code != 1 || err == nil {
		t.Fatalf("verify of a missing ledger: %d %v", code, err)
	}
}
