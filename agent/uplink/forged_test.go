package uplink_test

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/punchcard/punchcard/agent/agenttest"
	"github.com/punchcard/punchcard/agent/uplink/mqtttest"
	"github.com/punchcard/punchcard/hub/broker"
	"github.com/punchcard/punchcard/internal/testutil"
	"github.com/punchcard/punchcard/protocol"
)

// TestForgedDownMessages: someone with full access to the broker (the
// hub's MQTT credentials, or an external broker with a bad ACL) publishes
// retained forged messages on a till's down and snapshot topics. The till
// acts on none of them: its unsent sales stay in the outbox, it fetches
// no snapshot, resends nothing and returns no allowance. Each is dropped
// and counted.
func TestForgedDownMessages(t *testing.T) {
	b := mqtttest.Embedded(t, "127.0.0.1:0")
	hub := mqtttest.StartHub(t, agenttest.Tenant, b.URL())
	hub.SetSnapshot(t, agenttest.Small(1, 1000))
	n := startAgent(t, t.TempDir(), b.URL(), hub.URL)
	eventually(t, "first snapshot", n.a.Synced)
	// Sales the hub does not acknowledge: they stay in the outbox.
	hub.AckEnabled.Store(false)
	redeemN(t, n.a, 0, 3)
	eventually(t, "published", func() bool { return len(hub.Applied(agenttest.Agent)) == 3 })

	o := paho.NewClientOptions().AddBroker(b.URL()).SetClientID("forger").SetUsername(broker.DefaultHubUsername).
		SetPassword(mqtttest.HubSecret).SetAutoReconnect(false)
	forger := paho.NewClient(o)
	if tok := forger.Connect(); !tok.WaitTimeout(testutil.Patience(t)) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer forger.Disconnect(100)
	down := protocol.DownTopic(agenttest.Tenant, agenttest.Agent)
	snap := protocol.SnapshotTopic(agenttest.Tenant, agenttest.Agent)
	otherKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize))
	unsigned := func(typ protocol.MsgType, body any) []byte {
		p, err := protocol.EncodeMessage(typ, agenttest.Tenant, protocol.HubSender, "forged", time.Now().UnixMicro(), body)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	signed := func(key ed25519.PrivateKey, tenant protocol.TenantID, to protocol.AgentID, typ protocol.MsgType, body any) []byte {
		p, err := protocol.SignDown(key, typ, tenant, to, "forged", time.Now().UnixMicro(), body)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	bigAck := protocol.Ack{Watermark: 1000000}
	forged := []struct {
		name, topic string
		payload     []byte
	}{
		{"UnsignedAck", down, unsigned(protocol.MsgAck, bigAck)},
		{"AckSignedByAnotherKey", down, signed(otherKey, agenttest.Tenant, agenttest.Agent, protocol.MsgAck, bigAck)},
		{"GenuineAckForAnotherTill", down, signed(mqtttest.HubKey, agenttest.Tenant, "till-2", protocol.MsgAck, bigAck)},
		{"GenuineAckForAnotherTenant", down, signed(mqtttest.HubKey, "beta", agenttest.Agent, protocol.MsgAck, bigAck)},
		{"UnsignedResend", down, unsigned(protocol.MsgResend, protocol.Resend{From: 1})},
		{"UnsignedRecall", down, unsigned(protocol.MsgAllowanceRecall, protocol.AllowanceRecall{})},
		{"UnsignedAnnounce", snap, unsigned(protocol.MsgSnapshotAnnounce, protocol.SnapshotAnnounce{Version: 99, ETag: `"x"`})},
		{"AnnounceSignedByAnotherKey", snap, signed(otherKey, agenttest.Tenant, agenttest.Agent, protocol.MsgSnapshotAnnounce, protocol.SnapshotAnnounce{Version: 99})},
	}
	gets, received, returns := hub.SnapshotGets.Load(), hub.Received.Load(), hub.Returns.Load()
	rejected := n.client.Rejected.Load()
	for _, f := range forged {
		if tok := forger.Publish(f.topic, 1, true, f.payload); !tok.WaitTimeout(testutil.Patience(t)) || tok.Error() != nil {
			t.Fatalf("%s: %v", f.name, tok.Error())
		}
	}
	eventually(t, "every forged message rejected", func() bool { return n.client.Rejected.Load() == rejected+int64(len(forged)) },
		func() string { return fmt.Sprint(n.client.Rejected.Load() - rejected) })
	// A genuine message sent after them is handled, so they were all
	// processed before it: the hub's own resend request.
	hub.Resend(agenttest.Agent, 1, 1)
	eventually(t, "genuine resend", func() bool { return hub.Received.Load() > received })
	if got := depth(t, n.db); got != 3 {
		t.Fatalf("outbox = %d after forged acks, want 3", got)
	}
	if got := hub.Received.Load(); got != received+1 {
		t.Fatalf("the agent resent %d redemptions, want 1 (the genuine request)", got-received)
	}
	if hub.SnapshotGets.Load() != gets || hub.Returns.Load() != returns {
		t.Fatalf("acted on a forged announce (gets %d→%d) or recall (returns %d→%d)", gets, hub.SnapshotGets.Load(), returns, hub.Returns.Load())
	}

	t.Run("AckBeyondLastSeq", func(t *testing.T) {
		// Even signed by the hub, an ack of seqs the till never assigned
		// deletes nothing.
		before := n.client.Rejected.Load()
		forger.Publish(down, 1, false, signed(mqtttest.HubKey, agenttest.Tenant, agenttest.Agent, protocol.MsgAck, bigAck)).WaitTimeout(5 * time.Second)
		eventually(t, "refused", func() bool { return n.client.Rejected.Load() == before+1 })
		if got := depth(t, n.db); got != 3 {
			t.Fatalf("outbox = %d, want 3", got)
		}
		// A true ack still works.
		hub.AckEnabled.Store(true)
		hub.Ack(agenttest.Agent)
		eventually(t, "drained", func() bool { return depth(t, n.db) == 0 })
	})
}

// TestHubKeyRequired: an agent refuses to sync without a pinned hub key.
func TestHubKeyRequired(t *testing.T) {
	_, err := startClientErr(t)
	if err == nil {
		t.Fatal("sync started without a hub key")
	}
}
