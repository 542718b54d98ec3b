package broker_test

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/punchcard/punchcard/hub/broker"
	"github.com/punchcard/punchcard/internal/testutil"
	"github.com/punchcard/punchcard/protocol"
)

// The tests here speak raw MQTT 3.1.1 where paho would not let them do
// what an attacker does: leave without DISCONNECT (so the broker sends the
// Will), or announce a huge packet without sending it.

func mqttString(s string) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(s)))
	return append(b, s...)
}

func mqttLength(n int) []byte {
	var b []byte
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		b = append(b, d)
		if n == 0 {
			return b
		}
	}
}

// rawConnect opens a TCP connection, sends CONNECT (with a Will when
// willTopic is set) and returns the connection and the CONNACK return
// code, or an error when the broker closed the connection instead.
func rawConnect(t *testing.T, b *broker.Broker, clientID, user, pass, willTopic string, willRetain bool) (net.Conn, byte, error) {
	t.Helper()
	conn, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	flags := byte(0x80 | 0x40 | 0x02) // username, password, clean session
	var payload []byte
	payload = append(payload, mqttString(clientID)...)
	if willTopic != "" {
		flags |= 0x04 | 0x08 // will, will QoS 1
		if willRetain {
			flags |= 0x20
		}
		payload = append(payload, mqttString(willTopic)...)
		payload = append(payload, mqttString("forged will")...)
	}
	payload = append(payload, mqttString(user)...)
	payload = append(payload, mqttString(pass)...)
	vh := append(mqttString("MQTT"), 4, flags, 0, 60)
	body := append(vh, payload...)
	pkt := append([]byte{0x10}, mqttLength(len(body))...)
	if _, err := conn.Write(append(pkt, body...)); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(testutil.Patience(t)))
	ack := make([]byte, 4)
	if _, err := io.ReadFull(conn, ack); err != nil {
		return conn, 0, err
	}
	conn.SetReadDeadline(time.Time{})
	if ack[0] != 0x20 {
		t.Fatalf("not a CONNACK: %x", ack)
	}
	return conn, ack[3], nil
}

// spy subscribes the hub's client to everything and records what arrives.
func spy(t *testing.T, b *broker.Broker) (paho.Client, chan paho.Message) {
	hub := mustConnect(t, b, "hub-spy", broker.DefaultHubUsername, hubSecret)
	got := make(chan paho.Message, 100)
	if tok := hub.Subscribe("#", 1, func(_ paho.Client, m paho.Message) { got <- m }); !tok.WaitTimeout(testutil.Patience(t)) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	return hub, got
}

// flush publishes a marker from the hub and returns every message that
// arrived before it: the broker writes to one client in order, so a
// message published earlier arrives earlier.
func flush(t *testing.T, hub paho.Client, got chan paho.Message) []paho.Message {
	t.Helper()
	marker := "punchcard/v1/test/marker/" + time.Now().Format(time.RFC3339Nano)
	if tok := hub.Publish(marker, 1, false, "marker"); !tok.WaitTimeout(testutil.Patience(t)) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	var before []paho.Message
	for {
		select {
		case m := <-got:
			if m.Topic() == marker {
				return before
			}
			before = append(before, m)
		case <-time.After(testutil.Patience(t)):
			t.Fatal("marker not received")
		}
	}
}

// waitClients waits until the broker has n clients connected.
func waitClients(t *testing.T, b *broker.Broker, n int64) {
	t.Helper()
	testutil.Eventually(t, fmt.Sprintf("%d clients connected", n), func() (bool, string) {
		c := b.Stats().Clients
		return c == n, fmt.Sprintf("%d clients", c)
	})
}

// TestWillRefused: an agent may not leave a Will, on another tenant's up
// topic (it would be a forged batch the hub applies) or on its own down
// topic (a forged retained Ack). Its CONNECT is refused, and nothing is
// ever delivered, even when it then drops the connection.
func TestWillRefused(t *testing.T) {
	b := MustStart(t)
	hub, got := spy(t, b)
	for _, tc := range []struct {
		name, topic string
		retain      bool
	}{
		{"CrossTenantUp", protocol.UpTopic("beta", "till-1"), false},
		{"OwnDownRetained", protocol.DownTopic("acme", "till-1"), true},
		{"OwnSnapshotRetained", protocol.SnapshotTopic("acme", "till-1"), true},
		{"OwnUp", protocol.UpTopic("acme", "till-1"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := b.Stats().WillsRefused
			conn, code, err := rawConnect(t, b, "acme/till-1", "acme/till-1", "s1", tc.topic, tc.retain)
			if err == nil && code == 0 {
				// Admitted: leave without DISCONNECT, so the broker sends
				// the Will now.
				conn.Close()
			}
			waitClients(t, b, 1) // only the spy; the Will, if any, was sent before the count dropped
			if ms := flush(t, hub, got); len(ms) != 0 {
				t.Fatalf("delivered: %s %q", ms[0].Topic(), ms[0].Payload())
			}
			if err == nil && code == 0 {
				t.Fatal("a CONNECT with a Will was admitted")
			}
			if b.Stats().WillsRefused != before+1 {
				t.Fatal("refused Will not counted")
			}
			// And a retained Will is not waiting for the next subscriber.
			c := mustConnect(t, b, "acme/till-1", "acme/till-1", "s1")
			retained := make(chan paho.Message, 1)
			c.Subscribe(protocol.DownTopic("acme", "till-1"), 1, func(_ paho.Client, m paho.Message) { retained <- m }).WaitTimeout(5 * time.Second)
			hub.Publish(protocol.DownTopic("acme", "till-1"), 1, false, "marker").WaitTimeout(5 * time.Second)
			if m := <-retained; string(m.Payload()) != "marker" {
				t.Fatalf("retained Will delivered: %q", m.Payload())
			}
			c.Disconnect(100)
			waitClients(t, b, 1)
			flush(t, hub, got)
		})
	}
}

// TestClientIDTakeover: acme/till-1 may not connect as client acme/till-10
// (a prefix of it), which would take over till-10's session and kick it
// off.
func TestClientIDTakeover(t *testing.T) {
	b := MustStart(t)
	victim := mustConnect(t, b, "acme/till-10", "acme/till-10", "s10")
	if _, err := connect(t, b, "acme/till-10", "acme/till-1", "s1"); err == nil {
		t.Fatal("acme/till-1 connected as client acme/till-10")
	}
	// The victim is still connected: its session was not taken.
	if tok := victim.Publish(protocol.UpTopic("acme", "till-10"), 1, false, "x"); !tok.WaitTimeout(testutil.Patience(t)) || tok.Error() != nil || !victim.IsConnectionOpen() {
		t.Fatalf("victim lost its connection: %v", tok.Error())
	}
}

// TestOversizePacketRefused: a PUBLISH larger than the maximum packet size
// is refused on its fixed header: the broker closes the connection
// without reading (and so without holding) the announced 100 MB, and
// nothing reaches the hub's subscriber.
func TestOversizePacketRefused(t *testing.T) {
	b := MustStart(t)
	hub, got := spy(t, b)
	conn, code, err := rawConnect(t, b, "acme/till-1", "acme/till-1", "s1", "", false)
	if err != nil || code != 0 {
		t.Fatalf("connect: %v %d", err, code)
	}
	topic := protocol.UpTopic("acme", "till-1")
	const size = 100 << 20
	hdr := append([]byte{0x30}, mqttLength(2+len(topic)+size)...) // PUBLISH QoS 0
	hdr = append(hdr, mqttString(topic)...)
	if _, err := conn.Write(append(hdr, make([]byte, 4096)...)); err != nil {
		t.Fatal(err)
	}
	// The broker hangs up at once; a broker that reads on would keep the
	// connection open, waiting for the rest of the 100 MB.
	conn.SetReadDeadline(time.Now().Add(testutil.Patience(t)))
	_, err = bufio.NewReader(conn).ReadByte()
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("connection still open after an oversize packet header: %v", err)
	}
	waitClients(t, b, 1)
	if ms := flush(t, hub, got); len(ms) != 0 {
		t.Fatalf("delivered %s", ms[0].Topic())
	}
	// A packet of the maximum size still passes.
	c := mustConnect(t, b, "acme/till-1", "acme/till-1", "s1")
	big := make([]byte, protocol.MaxMessageBytes)
	if tok := c.Publish(topic, 1, false, big); !tok.WaitTimeout(testutil.Patience(t)) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	select {
	case m := <-got:
		if len(m.Payload()) != len(big) {
			t.Fatalf("got %s of %d bytes", m.Topic(), len(m.Payload()))
		}
	case <-time.After(testutil.Patience(t)):
		t.Fatal("a maximum-size message was not delivered")
	}
}
