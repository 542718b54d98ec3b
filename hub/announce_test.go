package hub_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/punchcard/punchcard/hub"
	"github.com/punchcard/punchcard/internal/testutil"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/store/catalog"
	"github.com/punchcard/punchcard/store/ledger"
)

const testKey = "bootstrap-key-for-tests-0123456789"

// agentConn is till-1 of tenant acme on the hub's broker, collecting its
// snapshot announcements, allowance recalls and acks.
type agentConn struct {
	c        paho.Client
	announce chan protocol.SnapshotAnnounce
	recall   chan protocol.AllowanceRecall
	acks     chan protocol.Ack
}

func runWithAgent(t *testing.T, interval time.Duration) (*hub.Hub, *agentConn) {
	t.Helper()
	ctx := context.Background()
	h, err := hub.Open(ctx, hub.Options{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", MQTTAddr: "127.0.0.1:0", MetricsAddr: "-",
		BootstrapKey: testKey, AnnounceInterval: interval, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- h.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	if _, err := h.Catalog.CreateTenant(ctx, catalog.System, catalog.Tenant{ID: "acme", Name: "Acme", Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	_, secret, err := h.Catalog.RegisterAgent(ctx, catalog.System, catalog.Agent{Tenant: "acme", ID: "till-1", Store: snapshot.Store{ID: "s1"}})
	if err != nil {
		t.Fatal(err)
	}
	doc := `{"schema":1,"id":"summer","tenant":"acme","status":"active","currency":"EUR","reward":{"kind":"percent_off","percent_bp":1000},"limits":{"max_redemptions":100}}`
	if _, err := h.Catalog.CreateCampaign(ctx, catalog.System, "acme", []byte(doc)); err != nil {
		t.Fatal(err)
	}
	o := paho.NewClientOptions().AddBroker(h.Broker.URL()).SetClientID("acme/till-1").SetUsername("acme/till-1").SetPassword(secret).
		SetProtocolVersion(4).SetAutoReconnect(false)
	a := &agentConn{c: paho.NewClient(o), announce: make(chan protocol.SnapshotAnnounce, 100), recall: make(chan protocol.AllowanceRecall, 10),
		acks: make(chan protocol.Ack, 100)}
	if tok := a.c.Connect(); !tok.WaitTimeout(testutil.Patience(t)) || tok.Error() != nil {
		t.Fatal("connect", tok.Error())
	}
	t.Cleanup(func() { a.c.Disconnect(100) })
	handler := func(_ paho.Client, m paho.Message) {
		env, err := protocol.DecodeEnvelope(m.Payload())
		if err != nil {
			return
		}
		switch env.Type {
		case protocol.MsgSnapshotAnnounce:
			var s protocol.SnapshotAnnounce
			if protocol.DecodeBody(env, &s) == nil {
				a.announce <- s
			}
		case protocol.MsgAllowanceRecall:
			var r protocol.AllowanceRecall
			if protocol.DecodeBody(env, &r) == nil {
				a.recall <- r
			}
		case protocol.MsgAck:
			var ack protocol.Ack
			if protocol.DecodeBody(env, &ack) == nil {
				a.acks <- ack
			}
		}
	}
	a.c.Subscribe(protocol.DownTopic("acme", "till-1"), 1, handler).Wait()
	a.c.Subscribe(protocol.SnapshotTopic("acme", "till-1"), 1, handler).Wait()
	return h, a
}

// send publishes one batch redeeming code at seq and waits for its ack.
func (a *agentConn) send(t *testing.T, seq uint64, code protocol.CodeID) {
	t.Helper()
	r := protocol.Redemption{ID: protocol.RedemptionID{Agent: "till-1", Seq: seq}, Kind: protocol.KindRedeem, Tenant: "acme", Store: "s1",
		TxnID: "t", Campaign: "loyalty", Code: code, Currency: "EUR", Discount: 100, HLC: ledger.HLCFromTime(time.Now()), Offline: true}
	payload, err := protocol.EncodeMessage(protocol.MsgBatch, "acme", "till-1", "m", 0, protocol.Batch{Redemptions: []protocol.Redemption{r}})
	if err != nil {
		t.Fatal(err)
	}
	a.c.Publish(protocol.UpTopic("acme", "till-1"), 1, false, payload).Wait()
	for {
		select {
		case ack := <-a.acks:
			if ack.Watermark >= seq {
				return
			}
		case <-time.After(testutil.Patience(t)):
			t.Fatalf("no ack for seq %d", seq)
		}
	}
}

func (a *agentConn) nextAnnounce(t *testing.T) protocol.SnapshotAnnounce {
	t.Helper()
	select {
	case s := <-a.announce:
		return s
	case <-time.After(testutil.Patience(t)):
		t.Fatal("no snapshot announcement")
	}
	return protocol.SnapshotAnnounce{}
}

// post makes an API call with the bootstrap key, retrying while Run
// starts serving.
func post(t *testing.T, h *hub.Hub, path string) {
	t.Helper()
	var resp *http.Response
	var err error
	for i := 0; i < 100; i++ { // Run starts serving asynchronously
		req, _ := http.NewRequest("POST", "http://"+h.HTTPAddr()+path, strings.NewReader(""))
		req.Header.Set("Authorization", "Bearer "+testKey)
		if resp, err = http.DefaultClient.Do(req); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %d", path, resp.StatusCode)
	}
}

// TestAnnounceCatalogOnly: ingested code uses are not announced (agents
// pick them up as code-use deltas when they poll); a catalog change is,
// with its version, and changes in the interval are coalesced into one
// trailing announcement.
func TestAnnounceCatalogOnly(t *testing.T) {
	t.Run("OK/CodeUsesNotAnnounced", func(t *testing.T) {
		h, a := runWithAgent(t, 100*time.Millisecond)
		v, _ := h.Catalog.Version(context.Background(), "acme")
		for seq := uint64(1); seq <= 5; seq++ {
			a.send(t, seq, protocol.CodeID(fmt.Sprintf("CODE-%d", seq)))
		}
		post(t, h, "/v1/tenants/acme/campaigns/summer/stop")
		// Announcements arrive in order on the one topic: the first is
		// the catalog change's, so none was sent for the code uses.
		if got := a.nextAnnounce(t); got.Version != v+1 {
			t.Fatalf("first announcement %+v, want version %d", got, v+1)
		}
	})
	t.Run("OK/Coalesced", func(t *testing.T) {
		h, a := runWithAgent(t, time.Hour)
		post(t, h, "/v1/tenants/acme/campaigns/summer/stop")
		first := a.nextAnnounce(t)
		post(t, h, "/v1/tenants/acme/campaigns/summer/start") // due at the end of the hour
		select {
		case s := <-a.announce:
			t.Fatalf("a second announcement within the interval: %+v after %+v", s, first)
		default:
		}
	})
}

// TestStopRecallsAllowance: the kill switch through the HTTP API sends
// AllowanceRecall for the campaign to the tenant's agents.
func TestStopRecallsAllowance(t *testing.T) {
	h, a := runWithAgent(t, time.Hour)
	var resp *http.Response
	var err error
	for i := 0; i < 100; i++ { // Run starts serving asynchronously
		req, _ := http.NewRequest("POST", "http://"+h.HTTPAddr()+"/v1/tenants/acme/campaigns/summer/stop", strings.NewReader(""))
		req.Header.Set("Authorization", "Bearer "+testKey)
		if resp, err = http.DefaultClient.Do(req); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("stop: %d", resp.StatusCode)
	}
	select {
	case r := <-a.recall:
		if r.Campaign != "summer" {
			t.Fatalf("recall %+v", r)
		}
	case <-time.After(testutil.Patience(t)):
		t.Fatal("no allowance recall after the kill switch")
	}
}
