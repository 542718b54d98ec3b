package cluster_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/punchcard/punchcard/cmd/punchcard/internal/cluster"
	"github.com/punchcard/punchcard/internal/testutil"
	"github.com/punchcard/punchcard/protocol"
)

func mqttStr(s string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(s))), s...)
}

func mqttLen(n int) []byte {
	var b []byte
	for {
		d := byte(n % 128)
		if n /= 128; n > 0 {
			d |= 0x80
		}
		if b = append(b, d); n == 0 {
			return b
		}
	}
}

// rawConnect sends a CONNECT (with a retained QoS 1 Will when willTopic
// is set) and returns the connection and whether the broker accepted it.
func rawConnect(t *testing.T, m *cluster.Mosquitto, clientID, user, pass, willTopic string) (net.Conn, bool) {
	t.Helper()
	conn, err := m.Dial()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	flags := byte(0x80 | 0x40 | 0x02)
	payload := mqttStr(clientID)
	if willTopic != "" {
		flags |= 0x04 | 0x08 | 0x20
		payload = append(append(payload, mqttStr(willTopic)...), mqttStr("forged will")...)
	}
	payload = append(append(payload, mqttStr(user)...), mqttStr(pass)...)
	body := append(append(mqttStr("MQTT"), 4, flags, 0, 60), payload...)
	if _, err := conn.Write(append(append([]byte{0x10}, mqttLen(len(body))...), body...)); err != nil {
		t.Fatal(err)
	}
	// No read deadline: the broker answers with a CONNACK or closes the
	// connection, however loaded the machine.
	ack := make([]byte, 4)
	if _, err := io.ReadFull(conn, ack); err != nil {
		return conn, false
	}
	return conn, ack[0] == 0x20 && ack[3] == 0
}

// TestSecureMosquittoHoles runs the broker holes of issue 9 against the
// Mosquitto configuration of docs/operations.md: a Will on a topic the
// agent may not publish to is never delivered, an agent cannot take over
// another's client ID, and an oversize packet is refused.
func TestSecureMosquittoHoles(t *testing.T) {
	if _, err := cluster.FindMosquitto(); err != nil {
		t.Skipf("%v", err)
	}
	ctx := context.Background()
	m, err := cluster.StartSecureMosquitto(ctx, mustSupervisor(t), cluster.MosquittoOptions{
		Dir: t.TempDir(), HubUser: cluster.HubMQTTUser, HubPassword: "hub-pass", ReadyDeadline: time.Now().Add(testutil.Patience(t))})
	if err != nil {
		t.Fatal(err)
	}
	for u, p := range map[string]string{"acme/till-1": "s1", "acme/till-10": "s10"} {
		if err := m.AddUser(ctx, u, p, testutil.Patience(t)); err != nil {
			t.Fatal(err)
		}
	}
	hub := connect(t, m.URL(), cluster.HubMQTTUser, "hub-pass")
	got := make(chan mqtt.Message, 16)
	if tok := hub.Subscribe("punchcard/#", 1, func(_ mqtt.Client, msg mqtt.Message) { got <- msg }); !tok.WaitTimeout(testutil.Patience(t)) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	// flush returns what the hub received before a marker it publishes.
	flush := func(t *testing.T) []mqtt.Message {
		t.Helper()
		marker := "punchcard/marker/" + t.Name()
		hub.Publish(marker, 1, false, []byte("m")).WaitTimeout(3 * time.Second)
		var before []mqtt.Message
		for {
			select {
			case msg := <-got:
				if msg.Topic() == marker {
					return before
				}
				before = append(before, msg)
			case <-time.After(testutil.Patience(t)):
				t.Fatal("marker lost")
			}
		}
	}
	t.Run("ErrWill", func(t *testing.T) {
		for _, topic := range []string{protocol.UpTopic("beta", "till-1"), protocol.DownTopic("acme", "till-1"), protocol.SnapshotTopic("acme", "till-1")} {
			conn, ok := rawConnect(t, m, "acme/till-1", "acme/till-1", "s1", topic)
			if ok {
				conn.Close() // no DISCONNECT: the broker sends the Will, if it kept it
			}
			// The Will, if any, is sent when the broker sees the socket
			// close; a login afterwards shows it has.
			if err := cluster.MQTTLogin(m.URL(), "acme/till-1", "s1"); err != nil {
				t.Fatal(err)
			}
			if ms := flush(t); len(ms) != 0 {
				t.Fatalf("Will delivered on %s", ms[0].Topic())
			}
		}
	})
	t.Run("ErrClientIDTakeover", func(t *testing.T) {
		victim := connectAs(t, m.URL(), "acme/till-10", "acme/till-10", "s10")
		thief := connectAs(t, m.URL(), "acme/till-10", "acme/till-1", "s1")
		_ = thief
		// use_username_as_clientid: the thief is client acme/till-1, so the
		// victim keeps its connection.
		if tok := victim.Publish(protocol.UpTopic("acme", "till-10"), 1, false, []byte("x")); !tok.WaitTimeout(testutil.Patience(t)) || tok.Error() != nil || !victim.IsConnectionOpen() {
			t.Fatalf("victim kicked off: %v", tok.Error())
		}
		flush(t)
	})
	t.Run("ErrOversize", func(t *testing.T) {
		conn, ok := rawConnect(t, m, "acme/till-1", "acme/till-1", "s1", "")
		if !ok {
			t.Fatal("login refused")
		}
		topic := protocol.UpTopic("acme", "till-1")
		hdr := append([]byte{0x30}, mqttLen(2+len(topic)+(100<<20))...)
		conn.Write(append(append(hdr, mqttStr(topic)...), make([]byte, 4096)...))
		conn.SetReadDeadline(time.Now().Add(testutil.Patience(t)))
		_, err := bufio.NewReader(conn).ReadByte()
		var ne net.Error
		if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
			t.Fatalf("connection still open after an oversize packet header: %v", err)
		}
		if ms := flush(t); len(ms) != 0 {
			t.Fatalf("delivered %s", ms[0].Topic())
		}
	})
}

func connectAs(t *testing.T, url, clientID, user, pass string) mqtt.Client {
	t.Helper()
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID(clientID).SetUsername(user).SetPassword(pass).
		SetCleanSession(true).SetAutoReconnect(false)
	c := mqtt.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(testutil.Patience(t)) || tok.Error() != nil {
		t.Fatalf("connect as %s: %v", user, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c
}
