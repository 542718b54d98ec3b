package uplink_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/punchcard/punchcard/agent"
	"github.com/punchcard/punchcard/agent/agenttest"
	"github.com/punchcard/punchcard/agent/uplink"
	"github.com/punchcard/punchcard/agent/uplink/mqtttest"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/agentdb"
)

type node struct {
	a      *agent.Agent
	db     *agentdb.DB
	client *uplink.Client
}

func startAgent(t *testing.T, dir, brokerURL, hubURL string) *node {
	t.Helper()
	ctx := context.Background()
	db, err := agentdb.Open(ctx, filepath.Join(dir, "agent.db"), agentdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(ctx, agenttest.Tenant, agenttest.Agent, db)
	if err != nil {
		t.Fatal(err)
	}
	c, err := uplink.New(uplink.Options{Tenant: agenttest.Tenant, Agent: agenttest.Agent, BrokerURL: brokerURL, HubURL: hubURL,
		Secret: mqtttest.AgentSecret, HubKey: mqtttest.HubPublicKey, FlushEvery: 20 * time.Millisecond, ResendAfter: 500 * time.Millisecond, HTTPRetries: 1}, a, db)
	if err != nil {
		t.Fatal(err)
	}
	a.SetLink(c)
	n := &node{a: a, db: db, client: c}
	t.Cleanup(func() { n.close() })
	return n
}

func (n *node) close() {
	if n.client != nil {
		n.client.Close()
		n.db.Close()
		n.client = nil
	}
}

func eventually(t *testing.T, what string, f func() bool, info ...func() string) {
	t.Helper()
	deadline := time.Now().Add(agenttest.Patience(t))
	for time.Now().Before(deadline) {
		if f() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, i := range info {
		what += ": " + i()
	}
	t.Fatalf("timed out waiting for %s", what)
}

func redeemN(t *testing.T, a *agent.Agent, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		_, err := a.Redeem(context.Background(), agent.RedeemRequest{TxnID: fmt.Sprintf("T%d", i),
			Basket: agent.Basket{Order: agenttest.Order("o", 100_00), Redeemables: []agent.Input{{Code: agenttest.CodeSummer}}}})
		if err != nil {
			t.Fatalf("redeem %d: %v", i, err)
		}
	}
}

func depth(t *testing.T, db *agentdb.DB) int64 {
	st, err := db.State(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st.OutboxDepth
}

// suite runs against every broker.
func suite(t *testing.T, newBroker func(t *testing.T) string) {
	t.Run("OK", func(t *testing.T) {
		url := newBroker(t)
		hub := mqtttest.StartHub(t, agenttest.Tenant, url)
		hub.SetSnapshot(t, agenttest.Small(1, 1000))
		n := startAgent(t, t.TempDir(), url, hub.URL)
		eventually(t, "first snapshot", n.a.Synced)
		if !n.a.Synced() {
			t.Fatal("not synced")
		}
		redeemN(t, n.a, 0, 300)
		eventually(t, "hub applied all and outbox drained", func() bool {
			return len(hub.Applied(agenttest.Agent)) == 300 && depth(t, n.db) == 0
		}, func() string {
			return fmt.Sprintf("applied %d, outbox %d, published %d, acks %d, batches %d", len(hub.Applied(agenttest.Agent)), depth(t, n.db),
				n.client.Published.Load(), n.client.Acks.Load(), hub.Batches.Load())
		})
		if got := hub.Watermark(agenttest.Agent); got != 300 {
			t.Fatalf("watermark = %d", got)
		}
		eventually(t, "heartbeat", func() bool { return hub.States.Load() > 0 })
		// A new snapshot is announced and pulled.
		hub.SetSnapshot(t, agenttest.Small(2, 1000))
		eventually(t, "snapshot v2", func() bool { v, _ := n.a.SnapshotVersion(); return v == 2 })
		// Announced with a spread: pulled at some moment within it, once.
		gets := hub.SnapshotGets.Load()
		hub.Spread.Store(300)
		hub.SetSnapshot(t, agenttest.Small(3, 1000))
		eventually(t, "snapshot v3 within the spread", func() bool { v, _ := n.a.SnapshotVersion(); return v == 3 })
		if got := hub.SnapshotGets.Load() - gets; got < 1 {
			t.Errorf("%d snapshot requests for v3", got)
		}
	})
	t.Run("AckNotPuback", func(t *testing.T) {
		url := newBroker(t)
		hub := mqtttest.StartHub(t, agenttest.Tenant, url)
		hub.AckEnabled.Store(false)
		hub.SetSnapshot(t, agenttest.Small(1, 1000))
		n := startAgent(t, t.TempDir(), url, hub.URL)
		eventually(t, "first snapshot", n.a.Synced)
		redeemN(t, n.a, 0, 20)
		eventually(t, "published", func() bool { return len(hub.Applied(agenttest.Agent)) == 20 })
		time.Sleep(200 * time.Millisecond)
		if got := depth(t, n.db); got != 20 {
			t.Fatalf("outbox = %d after PUBACKs without a hub ack, want 20", got)
		}
		// Without acks the agent republishes (the oldest batch, after
		// ResendAfter and then a doubling timeout: a loaded machine
		// publishes the 20 in many small batches, so wait for the first
		// republish, not for all 20 again).
		eventually(t, "republish", func() bool { return n.client.Published.Load() > 20 })
		hub.AckEnabled.Store(true)
		hub.Ack(agenttest.Agent)
		eventually(t, "drained", func() bool { return depth(t, n.db) == 0 })
	})
	t.Run("Resend", func(t *testing.T) {
		url := newBroker(t)
		hub := mqtttest.StartHub(t, agenttest.Tenant, url)
		hub.AckEnabled.Store(false)
		hub.SetSnapshot(t, agenttest.Small(1, 1000))
		n := startAgent(t, t.TempDir(), url, hub.URL)
		eventually(t, "first snapshot", n.a.Synced)
		redeemN(t, n.a, 0, 5)
		eventually(t, "published", func() bool { return n.client.Published.Load() >= 5 })
		before := hub.Received.Load()
		hub.Resend(agenttest.Agent, 2, 3)
		eventually(t, "resent", func() bool { return hub.Received.Load() >= before+2 })
	})
	t.Run("OfflineThenReconnect", func(t *testing.T) {
		dir := t.TempDir()
		url := newBroker(t)
		hub := mqtttest.StartHub(t, agenttest.Tenant, url)
		hub.SetSnapshot(t, agenttest.Small(1, 1000))
		n := startAgent(t, dir, url, hub.URL)
		eventually(t, "first snapshot", n.a.Synced)
		n.close()
		// Restart with the hub unreachable: the stored snapshot serves.
		dead := "tcp://" + mqtttest.DeadAddr(t)
		n = startAgent(t, dir, dead, "http://"+mqtttest.DeadAddr(t))
		if n.client.Online() || !n.a.Synced() {
			t.Fatalf("online=%v synced=%v", n.client.Online(), n.a.Synced())
		}
		redeemN(t, n.a, 0, 10)
		if got := depth(t, n.db); got != 10 {
			t.Fatalf("outbox = %d", got)
		}
		n.close()
		n = startAgent(t, dir, url, hub.URL)
		eventually(t, "drained after reconnect", func() bool { return depth(t, n.db) == 0 && len(hub.Applied(agenttest.Agent)) == 10 })
		if r := hub.Applied(agenttest.Agent)[1]; !r.Offline {
			t.Fatalf("offline redemption not flagged: %+v", r)
		}
	})
}

func TestEmbeddedBroker(t *testing.T) {
	suite(t, func(t *testing.T) string { return mqtttest.Embedded(t, "127.0.0.1:0").URL() })
}

func TestMosquitto(t *testing.T) {
	suite(t, func(t *testing.T) string { return mqtttest.Mosquitto(t) })
}

func TestSnapshotETag(t *testing.T) {
	url := mqtttest.Embedded(t, "127.0.0.1:0").URL()
	hub := mqtttest.StartHub(t, agenttest.Tenant, url)
	hub.SetSnapshot(t, agenttest.Small(1, 1000))
	n := startAgent(t, t.TempDir(), url, hub.URL)
	eventually(t, "first snapshot", n.a.Synced)
	if err := n.client.FetchSnapshot(context.Background()); err != nil {
		t.Fatal(err)
	}
	if hub.NotModified.Load() == 0 {
		t.Fatal("second fetch did not send the ETag")
	}
}

func TestRequestAllowance(t *testing.T) {
	url := mqtttest.Embedded(t, "127.0.0.1:0").URL()
	hub := mqtttest.StartHub(t, agenttest.Tenant, url)
	hub.SetSnapshot(t, agenttest.Small(1, 1))
	n := startAgent(t, t.TempDir(), url, hub.URL)
	eventually(t, "online", func() bool { return n.a.Synced() && n.client.Online() })
	redeemN(t, n.a, 0, 3) // the allowance of 1 is topped up from the hub
	if hub.GrantRequests.Load() == 0 {
		t.Fatal("no allowance requested")
	}
	// A grant the fake hub answered before the recall may be adopted after
	// it and top the allowance up again (a real hub grants nothing for a
	// recalled campaign; the fake one grants whatever is asked), and an
	// answer the till gave up waiting for is never adopted at all (so
	// waiting for "every grant adopted" can wait forever): recall again
	// whenever a newer grant than the one recalled shows up.
	ctx := context.Background()
	al, _, _ := n.db.Allowance(ctx, agenttest.CampPercent)
	recalled := al.Grant
	hub.Recall(agenttest.Agent, agenttest.CampPercent)
	eventually(t, "recalled", func() bool {
		al, _, _ := n.db.Allowance(ctx, agenttest.CampPercent)
		if al.Count == 0 {
			return true
		}
		if al.Grant > recalled {
			recalled = al.Grant
			hub.Recall(agenttest.Agent, agenttest.CampPercent)
		}
		return false
	})
}

func TestJitterBackoff(t *testing.T) {
	lo, hi := 100*time.Millisecond, 2*time.Second
	for attempt := 0; attempt < 10; attempt++ {
		for range 50 {
			d := uplink.JitterBackoff(lo, hi, attempt, nil)
			if d < lo || d > hi {
				t.Fatalf("attempt %d: %v outside [%v, %v]", attempt, d, lo, hi)
			}
		}
	}
	resp := &http.Response{StatusCode: 429, Header: http.Header{"Retry-After": []string{"1"}}}
	if got := uplink.JitterBackoff(lo, hi, 0, resp); got != time.Second {
		t.Fatalf("retry-after: %v", got)
	}
	seen := map[time.Duration]bool{}
	for range 20 {
		seen[uplink.JitterBackoff(lo, hi, 5, nil)] = true
	}
	if len(seen) < 2 {
		t.Fatal("no jitter")
	}
}

func startClientErr(t *testing.T) (*uplink.Client, error) {
	db, err := agentdb.Open(context.Background(), filepath.Join(t.TempDir(), "agent.db"), agentdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a, err := agent.New(context.Background(), agenttest.Tenant, agenttest.Agent, db)
	if err != nil {
		t.Fatal(err)
	}
	return uplink.New(uplink.Options{Tenant: agenttest.Tenant, Agent: agenttest.Agent, BrokerURL: "tcp://127.0.0.1:1", HubURL: "http://127.0.0.1:1",
		Secret: mqtttest.AgentSecret}, a, db)
}

// TestLargeSales: facts carry their sale's lines (protocol 2), so a
// batch of DefaultBatchSize facts of large baskets exceeds
// MaxMessageBytes; the client splits it and every fact still reaches the
// hub.
func TestLargeSales(t *testing.T) {
	url := mqtttest.Embedded(t, "127.0.0.1:0").URL()
	hub := mqtttest.StartHub(t, agenttest.Tenant, url)
	hub.SetSnapshot(t, agenttest.Small(1, 1000))
	dir := t.TempDir()
	n := startAgent(t, dir, url, hub.URL)
	eventually(t, "first snapshot", n.a.Synced)
	n.close()
	n = startAgent(t, dir, "tcp://"+mqtttest.DeadAddr(t), "http://"+mqtttest.DeadAddr(t))
	const sales = 80
	for i := range sales {
		o := agenttest.Order(fmt.Sprintf("o-%d", i), 100_00)
		for j := range protocol.MaxOrderLines - 1 {
			o.Lines = append(o.Lines, protocol.Line{SKU: fmt.Sprintf("sku-%d", j), Quantity: 1, UnitPrice: 1_00})
		}
		if _, err := n.a.Redeem(context.Background(), agent.RedeemRequest{TxnID: fmt.Sprintf("T%d", i),
			Basket: agent.Basket{Order: o, Redeemables: []agent.Input{{Code: agenttest.CodeSummer}}}}); err != nil {
			t.Fatalf("redeem %d: %v", i, err)
		}
	}
	rs, err := n.db.Pending(context.Background(), 0, protocol.DefaultBatchSize)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := protocol.EncodeMessage(protocol.MsgBatch, agenttest.Tenant, agenttest.Agent, "x", 0, protocol.Batch{Redemptions: rs}); protocol.ErrorCode(err) != protocol.CodeMessageTooLarge {
		t.Fatalf("one batch of the outbox encodes (%v): the test needs larger sales", err)
	}
	n.close()
	n = startAgent(t, dir, url, hub.URL)
	eventually(t, "drained", func() bool { return depth(t, n.db) == 0 && len(hub.Applied(agenttest.Agent)) == sales })
	if r := hub.Applied(agenttest.Agent)[1]; r.Sale == nil || len(r.Sale.Lines) != protocol.MaxOrderLines {
		t.Fatalf("fact without its sale: %+v", r)
	}
}
