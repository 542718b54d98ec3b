package hub_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/punchcard/punchcard/hub"
	"github.com/punchcard/punchcard/hub/broker"
	"github.com/punchcard/punchcard/internal/testutil"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/store/catalog"
	"github.com/punchcard/punchcard/store/ledger"
)

// MustRun opens a hub in a temp directory on loopback port 0 and runs it
// until the test ends.
func MustRun(tb testing.TB) *hub.Hub {
	tb.Helper()
	h, err := hub.Open(context.Background(), hub.Options{
		DataDir: tb.TempDir(), HTTPAddr: "127.0.0.1:0", MQTTAddr: "127.0.0.1:0", MetricsAddr: "127.0.0.1:0",
		BootstrapKey: bootstrapKey,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Error(err)
		}
	})
	return h
}

func get(tb testing.TB, url string) (int, string) {
	tb.Helper()
	var err error
	for i := 0; i < 100; i++ { // Run starts serving asynchronously
		var resp *http.Response
		resp, err = http.Get(url)
		if err == nil {
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	tb.Fatal(err)
	return 0, ""
}

// TestHub runs the whole hub: HTTP health, an agent registered in the
// catalog connecting to the embedded broker with its secret, a batch
// applied to the ledger and acknowledged, and the metrics.
func TestHub(t *testing.T) {
	ctx := context.Background()
	h := MustRun(t)
	if code, body := get(t, "http://"+h.HTTPAddr()+"/healthz"); code != 200 || !strings.Contains(body, "ok") {
		t.Fatalf("healthz = %d %s", code, body)
	}
	if _, err := h.Catalog.CreateTenant(ctx, catalog.System, catalog.Tenant{ID: "acme", Name: "Acme", Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	_, secret, err := h.Catalog.RegisterAgent(ctx, catalog.System, catalog.Agent{Tenant: "acme", ID: "till-1", Store: snapshot.Store{ID: "s1"}})
	if err != nil {
		t.Fatal(err)
	}
	connect := func(pass string) (paho.Client, error) {
		o := paho.NewClientOptions().AddBroker(h.Broker.URL()).SetClientID("acme/till-1").SetUsername("acme/till-1").SetPassword(pass).
			SetProtocolVersion(4).SetAutoReconnect(false)
		c := paho.NewClient(o)
		tok := c.Connect()
		tok.WaitTimeout(10 * time.Second)
		return c, tok.Error()
	}
	if _, err := connect("wrong"); err == nil {
		t.Fatal("connected with a wrong secret")
	}
	c, err := connect(secret)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect(100)
	// The agent verifies every down message against the key registration
	// gave it, as agent/uplink does.
	pub, err := h.Catalog.HubPublicKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	acks := make(chan protocol.Ack, 10)
	c.Subscribe(protocol.DownTopic("acme", "till-1"), 1, func(_ paho.Client, m paho.Message) {
		env, body, err := protocol.DecodeDown(m.Payload(), pub, "acme", "till-1")
		if err != nil {
			t.Errorf("the hub's down message does not verify: %v", err)
			return
		}
		if ack, ok := body.(*protocol.Ack); ok && env.Type == protocol.MsgAck {
			acks <- *ack
		}
	}).Wait()
	r := protocol.Redemption{ID: protocol.RedemptionID{Agent: "till-1", Seq: 1}, Kind: protocol.KindRedeem, Tenant: "acme", Store: "s1",
		TxnID: "t1", Campaign: "c1", Currency: "EUR", Discount: 100, HLC: ledger.HLCFromTime(time.Now()), Offline: true}
	payload, err := protocol.EncodeMessage(protocol.MsgBatch, "acme", "till-1", "m1", 0, protocol.Batch{Redemptions: []protocol.Redemption{r}})
	if err != nil {
		t.Fatal(err)
	}
	c.Publish(protocol.UpTopic("acme", "till-1"), 1, false, payload).Wait()
	select {
	case ack := <-acks:
		if ack.Watermark != 1 {
			t.Fatalf("ack = %+v", ack)
		}
	case <-time.After(testutil.Patience(t)):
		t.Fatal("no ack")
	}
	if b, _ := h.Ledger.Campaign(ctx, "acme", "c1"); b.Count != 1 {
		t.Fatalf("ledger count = %d", b.Count)
	}
	_, metrics := get(t, "http://"+h.MetricsAddr()+"/metrics")
	for _, want := range []string{"punchcard_broker_dropped_total 0", "punchcard_ingest_redemptions_total 1", "punchcard_broker_auth_refused_total 1"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q:\n%s", want, metrics)
		}
	}
}

func TestOpenExternalBroker(t *testing.T) {
	// The hub runs against any broker; here the embedded one of another
	// process stands in for Mosquitto (tested in hub/ingest).
	b, err := broker.New(broker.Options{Addr: "127.0.0.1:0", Auth: denyAll{}, HubSecret: "ext-secret", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	h, err := hub.Open(context.Background(), hub.Options{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", MetricsAddr: "-",
		BrokerURL: b.URL(), MQTTPassword: "ext-secret", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if h.Broker != nil {
		t.Fatal("embedded broker started alongside an external one")
	}
	if b.Stats().Clients != 1 {
		t.Fatalf("external broker clients = %d, want the hub", b.Stats().Clients)
	}
}

type denyAll struct{}

func (denyAll) AuthenticateAgent(context.Context, protocol.TenantID, protocol.AgentID, string) error {
	return protocol.NewError(protocol.CodeUnauthenticated)
}
