package uplink_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/punchcard/punchcard/agent"
	"github.com/punchcard/punchcard/agent/agenttest"
	"github.com/punchcard/punchcard/agent/uplink"
	"github.com/punchcard/punchcard/agent/uplink/mqtttest"
	"github.com/punchcard/punchcard/internal/testutil"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/agentdb"
)

// TestReconnectCurrent pins issue 10's reconnect storm: a till that
// reconnects while the retained announcement says it is current does
// not fetch its snapshot (on the old code every reconnect fetched at
// once, so a hub that dropped 10,000 tills got 10,000 snapshot requests
// in the same second); without an announcement it still fetches, within
// Options.ReconnectFetchSpread.
func TestReconnectCurrent(t *testing.T) {
	b := mqtttest.Embedded(t, "127.0.0.1:0")
	hub := mqtttest.StartHub(t, agenttest.Tenant, b.URL())
	hub.SetSnapshot(t, agenttest.Small(1, 1000))
	ctx := context.Background()
	db, err := agentdb.Open(ctx, filepath.Join(t.TempDir(), "agent.db"), agentdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	a, err := agent.New(ctx, agenttest.Tenant, agenttest.Agent, db)
	if err != nil {
		t.Fatal(err)
	}
	const spread = 300 * time.Millisecond
	c, err := uplink.New(uplink.Options{Tenant: agenttest.Tenant, Agent: agenttest.Agent, BrokerURL: b.URL(), HubURL: hub.URL,
		Secret: mqtttest.AgentSecret, HubKey: mqtttest.HubPublicKey, FlushEvery: 20 * time.Millisecond, HTTPRetries: 1,
		PollEvery: time.Hour, HeartbeatEvery: time.Hour, ReconnectFetchSpread: spread}, a, db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	a.SetLink(c)
	eventually(t, "first snapshot", a.Synced)
	// The retained announcement of the version in use has been taken.
	eventually(t, "the announcement taken", func() bool { return hub.SnapshotGets.Load() >= 1 && c.Online() })

	// kick takes the till's session over with its own client ID (the
	// broker drops the till), then leaves: the till reconnects.
	kick := func() {
		t.Helper()
		states := hub.States.Load()
		o := paho.NewClientOptions().AddBroker(b.URL()).SetClientID(string(agenttest.Tenant) + "/" + string(agenttest.Agent)).
			SetUsername(string(agenttest.Tenant) + "/" + string(agenttest.Agent)).SetPassword(mqtttest.AgentSecret).SetAutoReconnect(false)
		k := paho.NewClient(o)
		if tok := k.Connect(); !tok.WaitTimeout(testutil.Patience(t)) || tok.Error() != nil {
			t.Fatal("kick", tok.Error())
		}
		// The till, dropped, reconnects (taking the session back) and
		// says so with a heartbeat.
		eventually(t, "the till back", func() bool { return c.Online() && hub.States.Load() > states })
		k.Disconnect(50)
	}
	// A first reconnect lets any fetch the start queued (the announcement
	// may arrive before the first snapshot is applied) finish.
	kick()
	gets := hub.SnapshotGets.Load()
	kick()
	// Past the fallback window, nothing was fetched.
	back := time.Now()
	eventually(t, "the fallback window over", func() bool { return time.Since(back) > 3*spread })
	if got := hub.SnapshotGets.Load() - gets; got != 0 {
		t.Fatalf("%d snapshot requests after a reconnect while the retained announcement said the till is current, want 0", got)
	}

	// Without a retained announcement the reconnect still checks.
	if err := b.Publish(protocol.SnapshotTopic(agenttest.Tenant, agenttest.Agent), nil, true); err != nil {
		t.Fatal(err)
	}
	gets = hub.SnapshotGets.Load()
	kick()
	eventually(t, "a fetch within the spread", func() bool { return hub.SnapshotGets.Load() > gets })
}
