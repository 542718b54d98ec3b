package hub_test

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/punchcard/punchcard/hub"
	"github.com/punchcard/punchcard/hub/broker"
	"github.com/punchcard/punchcard/protocol/tlsconf"
	"github.com/punchcard/punchcard/protocol/tlsconf/tlstest"
)

// TestOpenTLS: with Options.TLS the HTTP API speaks only TLS and the
// embedded broker adds an MQTT-over-TLS listener.
func TestOpenTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "punchcard hub CA")
	h, err := hub.Open(context.Background(), hub.Options{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", MQTTAddr: "127.0.0.1:0",
		MQTTTLSAddr: "127.0.0.1:0", MetricsAddr: "-", TLS: ca.Issue(t).Config(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	if !strings.HasPrefix(h.HTTPURL(), "https://") {
		t.Fatalf("HTTPURL = %s", h.HTTPURL())
	}
	cfg, err := tlsconf.Client(ca.File, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	resp, err := c.Get(h.HTTPURL() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz over TLS: %d", resp.StatusCode)
	}
	plain := &http.Client{Timeout: 10 * time.Second}
	if resp, err := plain.Get("http://" + h.HTTPAddr() + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("the HTTP API answered in clear")
		}
	}
	conn, err := tls.Dial("tcp", h.Broker.TLSAddr(), cfg)
	if err != nil {
		t.Fatalf("MQTT TLS listener: %v", err)
	}
	conn.Close()
	if got := h.Broker.TLSURL(); got != "ssl://"+h.Broker.TLSAddr() {
		t.Fatalf("TLSURL = %s", got)
	}
}

// TestOpenExternalBrokerTLS: the hub's ingest reaches an external broker
// at an ssl:// URL, verified against Options.BrokerTLS.
func TestOpenExternalBrokerTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "broker CA")
	b, err := broker.New(broker.Options{Addr: "127.0.0.1:0", TLSAddr: "127.0.0.1:0", TLS: ca.Issue(t).Config(), Auth: denyAll{},
		HubSecret: "ext-secret", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cfg, err := tlsconf.Client(ca.File, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := hub.Open(context.Background(), hub.Options{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", MetricsAddr: "-",
		BrokerURL: b.TLSURL(), BrokerTLS: cfg, MQTTPassword: "ext-secret", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if b.Stats().Clients != 1 {
		t.Fatalf("external broker clients = %d, want the hub", b.Stats().Clients)
	}
}
