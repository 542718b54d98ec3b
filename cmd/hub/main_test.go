package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/punchcard/punchcard/hub"
	"github.com/punchcard/punchcard/protocol/tlsconf/tlstest"
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

func TestParseFlagsTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "punchcard hub CA")
	cert := ca.Issue(t)
	parse := func(args []string, env map[string]string) (*Main, error) {
		m := &Main{Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}}
		return m, m.ParseFlags(args, func(k string) string { return env[k] })
	}
	t.Run("OK", func(t *testing.T) {
		m, err := parse([]string{"-tls-cert", cert.CertFile, "-tls-key", cert.KeyFile, "-mqtt-tls", "0.0.0.0:8883"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if m.Options.TLS == nil || m.Options.MQTTTLSAddr != "0.0.0.0:8883" {
			t.Fatalf("options = %+v", m.Options)
		}
	})
	t.Run("OKEnv", func(t *testing.T) {
		m, err := parse(nil, map[string]string{"PUNCHCARD_TLS_CERT_FILE": cert.CertFile, "PUNCHCARD_TLS_KEY_FILE": cert.KeyFile,
			"PUNCHCARD_BROKER_URL": "ssl://mqtt.example:8883", "PUNCHCARD_MQTT_PASSWORD": "p", "PUNCHCARD_BROKER_CA_FILE": ca.File})
		if err != nil {
			t.Fatal(err)
		}
		if m.Options.TLS == nil || m.Options.BrokerTLS == nil || m.Options.MQTTTLSAddr != hub.DefaultMQTTTLSAddr {
			t.Fatalf("options = %+v", m.Options)
		}
	})
	t.Run("ErrCertWithoutKey", func(t *testing.T) {
		if _, err := parse([]string{"-tls-cert", cert.CertFile}, nil); err == nil {
			t.Fatal("no error")
		}
	})
	t.Run("ErrBadFiles", func(t *testing.T) {
		if _, err := parse([]string{"-tls-cert", ca.File, "-tls-key", cert.KeyFile}, nil); err == nil {
			t.Fatal("a key that does not match the certificate was accepted")
		}
		if _, err := parse([]string{"-broker-ca-file", cert.KeyFile}, nil); err == nil {
			t.Fatal("a key file was accepted as a CA file")
		}
	})
}
