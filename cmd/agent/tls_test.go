package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	gosync "sync"
	"testing"

	"github.com/punchcard/punchcard/agent/agenttest"
	"github.com/punchcard/punchcard/agent/uplink/mqtttest"
	"github.com/punchcard/punchcard/hub"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/tlsconf"
	"github.com/punchcard/punchcard/protocol/tlsconf/tlstest"
)

// wiretap is a TCP proxy on 127.0.0.1 that records every byte crossing it
// both ways: the network between a till and the hub, as an eavesdropper
// sees it.
type wiretap struct {
	ln  net.Listener
	mu  gosync.Mutex
	buf bytes.Buffer
}

func newWiretap(t *testing.T, target string) *wiretap {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w := &wiretap{ln: ln}
	var conns gosync.WaitGroup
	t.Cleanup(func() { ln.Close(); conns.Wait() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			conns.Add(2)
			pipe := func(dst, src net.Conn) {
				defer conns.Done()
				io.Copy(io.MultiWriter(dst, w), src)
				dst.Close()
				src.Close()
			}
			go pipe(u, c)
			go pipe(c, u)
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return w
}

func (w *wiretap) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *wiretap) Addr() string { return w.ln.Addr().String() }

// saw reports whether s crossed the wire in clear, and how many bytes
// crossed.
func (w *wiretap) saw(s string) (bool, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return bytes.Contains(w.buf.Bytes(), []byte(s)), w.buf.Len()
}

// TestTLS runs the agent process against the real hub with TLS on its HTTP
// API and on the embedded broker's MQTT listener (issue 9 item 5): the
// agent verifies the hub against a CA file (and a pinned certificate),
// syncs end to end, and its secret never crosses the wire in clear; an
// agent trusting another CA is refused before it sends anything.
func TestTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs processes")
	}
	ctx := context.Background()
	bin := buildAgent(t)
	ca := tlstest.NewCA(t, "punchcard hub CA")
	cert := ca.Issue(t, "127.0.0.1")
	h, secret := runHubWith(t, func(o *hub.Options) {
		cfg, err := tlsconf.Server(cert.CertFile, cert.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		o.TLS, o.MQTTTLSAddr = cfg, "127.0.0.1:0"
	})
	if !strings.HasPrefix(h.HTTPURL(), "https://") || h.Broker.TLSURL() == "" {
		t.Fatalf("hub without TLS: %s %q", h.HTTPURL(), h.Broker.TLSURL())
	}

	t.Run("OK", func(t *testing.T) {
		web, mq := newWiretap(t, h.HTTPAddr()), newWiretap(t, h.Broker.TLSAddr())
		p := startProcArgs(t, bin, t.TempDir(), "ssl://"+mq.Addr(), "https://"+web.Addr(), secret, hubKeyOf(t, h),
			"-ca-file", ca.File, "-hub-cert-sha256", tlsconf.Fingerprint(cert.DER))
		waitFor(t, "first sync over TLS", func() bool { st := p.status(t); return st.SnapshotVersion > 0 && st.Online && !st.NeverSynced })
		if _, ok, err := p.redeemCode("T1", agenttest.CodeSummer); err != nil || !ok {
			t.Fatalf("redeem: %v %v\n%s", ok, err, p.stderr)
		}
		waitFor(t, "outbox drained over MQTT with TLS", func() bool { return p.status(t).OutboxDepth == 0 })
		b, err := h.Ledger.Campaign(ctx, agenttest.Tenant, "summer")
		if err != nil || b.Count != 1 {
			t.Fatalf("ledger = %+v (%v), want the redemption", b, err)
		}
		for name, w := range map[string]*wiretap{"HTTP": web, "MQTT": mq} {
			leaked, n := w.saw(secret)
			if n == 0 {
				t.Fatalf("%s: nothing crossed the tap", name)
			}
			if leaked {
				t.Fatalf("%s: the agent's secret crossed the wire in clear", name)
			}
			if hello, _ := w.saw("\x16\x03"); !hello {
				t.Fatalf("%s: no TLS handshake on the wire", name)
			}
		}
	})
	t.Run("ErrOtherCA", func(t *testing.T) {
		other := tlstest.NewCA(t, "someone else's CA")
		web, mq := newWiretap(t, h.HTTPAddr()), newWiretap(t, h.Broker.TLSAddr())
		// No client once the OK agent has gone: the hub's ingest is
		// in-process, not a client of its embedded broker.
		waitFor(t, "the broker holding no client", func() bool { return h.Broker.Stats().Clients == 0 })
		const clients = 0
		p := startProcArgs(t, bin, t.TempDir(), "ssl://"+mq.Addr(), "https://"+web.Addr(), secret, hubKeyOf(t, h), "-ca-file", other.File)
		waitFor(t, "the agent refusing the hub's certificate", func() bool {
			return strings.Contains(p.stderr.String(), "certificate signed by unknown authority")
		})
		if st := p.status(t); st.Online || !st.NeverSynced {
			t.Fatalf("an agent trusting another CA synced: %+v", st)
		}
		if got := h.Broker.Stats().Clients; got != clients {
			t.Fatalf("broker clients %d, was %d: the agent logged in", got, clients)
		}
		for name, w := range map[string]*wiretap{"HTTP": web, "MQTT": mq} {
			if leaked, _ := w.saw(secret); leaked {
				t.Fatalf("%s: the secret crossed to a hub the agent does not trust", name)
			}
		}
	})
	t.Run("ErrPinMismatch", func(t *testing.T) {
		web, mq := newWiretap(t, h.HTTPAddr()), newWiretap(t, h.Broker.TLSAddr())
		p := startProcArgs(t, bin, t.TempDir(), "ssl://"+mq.Addr(), "https://"+web.Addr(), secret, hubKeyOf(t, h),
			"-ca-file", ca.File, "-hub-cert-sha256", strings.Repeat("ab", 32))
		waitFor(t, "the agent refusing the unpinned certificate", func() bool {
			return strings.Contains(p.stderr.String(), "no pinned certificate")
		})
		if st := p.status(t); st.Online || !st.NeverSynced {
			t.Fatalf("an agent with another pin synced: %+v", st)
		}
	})
	t.Run("PlainLeaks", func(t *testing.T) {
		// The contrast that shows the tap would see a leak: the same hub
		// reached without TLS (its plain loopback MQTT listener; a second
		// hub serves plain HTTP) carries the secret in clear.
		plain, plainSecret := runHub(t)
		web, mq := newWiretap(t, plain.HTTPAddr()), newWiretap(t, plain.Broker.Addr())
		p := startProcArgs(t, bin, t.TempDir(), "tcp://"+mq.Addr(), "http://"+web.Addr(), plainSecret, hubKeyOf(t, plain))
		waitFor(t, "first sync in clear", func() bool { st := p.status(t); return st.Online && !st.NeverSynced })
		for name, w := range map[string]*wiretap{"HTTP": web, "MQTT": mq} {
			if leaked, _ := w.saw(plainSecret); !leaked {
				t.Fatalf("%s: the tap did not see the secret of a plaintext sync", name)
			}
		}
	})
}

func TestParseFlagsTLS(t *testing.T) {
	env := func(k string) string {
		return map[string]string{"PUNCHCARD_TENANT": "acme", "PUNCHCARD_AGENT": "till-1", "PUNCHCARD_SECRET": "s",
			"PUNCHCARD_HUB_KEY": protocol.FormatHubKey(mqtttest.HubPublicKey)}[k]
	}
	t.Run("OK", func(t *testing.T) {
		m := NewMain()
		err := m.ParseFlags([]string{"-hub-url", "https://hub.example", "-mqtt-url", "ssl://hub.example:8883", "-ca-file", "/etc/punchcard/ca.pem",
			"-hub-cert-sha256", "AB:CD, ef01"}, env)
		if err != nil {
			t.Fatal(err)
		}
		if c := m.Config; c.CAFile != "/etc/punchcard/ca.pem" || len(c.HubCertSHA256) != 2 {
			t.Fatalf("config = %+v", c)
		}
	})
	t.Run("ErrCAWithPlainURL", func(t *testing.T) {
		for _, urls := range [][2]string{{"http://hub.example", "ssl://hub.example:8883"}, {"https://hub.example", "tcp://hub.example:1883"}} {
			if err := NewMain().ParseFlags([]string{"-hub-url", urls[0], "-mqtt-url", urls[1], "-ca-file", "ca.pem"}, env); err == nil {
				t.Fatalf("-ca-file with %v accepted", urls)
			}
		}
	})
	t.Run("ErrBadCAFile", func(t *testing.T) {
		m := NewMain()
		m.Stdout = io.Discard
		m.Config = Config{Tenant: "acme", Agent: "till-1", DataDir: t.TempDir(), Listen: "127.0.0.1:0", LogLevel: "error",
			HubURL: "https://127.0.0.1:1", MQTTURL: "ssl://127.0.0.1:1", Secret: "s", CAFile: t.TempDir() + "/missing.pem"}
		err := m.Run(context.Background())
		m.Close()
		if err == nil {
			t.Fatal("a missing CA file was accepted")
		}
	})
}
