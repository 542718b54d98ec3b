package hub_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/punchcard/punchcard/internal/testutil"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/store/catalog"
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

// TestOversizeNeverReachesIngest: an agent announces a 100 MB publish. The
// hub's broker hangs up on the packet's header, so the hub never holds it
// and its ingest never sees it; the agent's next, normal message is the
// first ingest receives.
func TestOversizeNeverReachesIngest(t *testing.T) {
	ctx := context.Background()
	h := MustRun(t)
	if _, err := h.Catalog.CreateTenant(ctx, catalog.System, catalog.Tenant{ID: "acme", Name: "Acme", Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	_, secret, err := h.Catalog.RegisterAgent(ctx, catalog.System, catalog.Agent{Tenant: "acme", ID: "till-1", Store: snapshot.Store{ID: "s1"}})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", h.Broker.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := append(append(mqttStr("MQTT"), 4, 0x80|0x40|0x02, 0, 60), append(append(mqttStr("acme/till-1"), mqttStr("acme/till-1")...), mqttStr(secret)...)...)
	conn.Write(append(append([]byte{0x10}, mqttLen(len(body))...), body...))
	conn.SetReadDeadline(time.Now().Add(testutil.Patience(t)))
	ack := make([]byte, 4)
	if _, err := io.ReadFull(conn, ack); err != nil || ack[3] != 0 {
		t.Fatalf("connect: %x %v", ack, err)
	}
	topic := protocol.UpTopic("acme", "till-1")
	hdr := append([]byte{0x30}, mqttLen(2+len(topic)+(100<<20))...)
	conn.Write(append(append(hdr, mqttStr(topic)...), make([]byte, 64<<10)...))
	_, err = bufio.NewReader(conn).ReadByte()
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("the broker kept reading an oversize packet: %v", err)
	}

	o := paho.NewClientOptions().AddBroker(h.Broker.URL()).SetClientID("acme/till-1").SetUsername("acme/till-1").SetPassword(secret).SetAutoReconnect(false)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(testutil.Patience(t)) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer c.Disconnect(100)
	p, err := protocol.EncodeMessage(protocol.MsgAgentState, "acme", "till-1", "s1", 0, protocol.AgentState{})
	if err != nil {
		t.Fatal(err)
	}
	c.Publish(topic, 1, false, p).WaitTimeout(10 * time.Second)
	testutil.Eventually(t, "the heartbeat counted", func() (bool, string) {
		s := h.Ingest.Stats()
		return s.States == 1, fmt.Sprintf("ingest %+v", s)
	})
	if s := h.Ingest.Stats(); s.Messages != 1 || s.Oversize != 0 || s.Malformed != 0 {
		t.Fatalf("ingest saw more than the one normal message: %+v", s)
	}
}
