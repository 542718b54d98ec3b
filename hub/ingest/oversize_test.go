package ingest_test

import (
	"fmt"
	"testing"

	"github.com/punchcard/punchcard/hub/broker"
	"github.com/punchcard/punchcard/internal/testutil"
	"github.com/punchcard/punchcard/protocol"
)

// TestOversizeDropped: a broker that lets a payload over
// protocol.MaxMessageBytes through (an external one without
// max_packet_size; here the embedded one with its limit raised) does not
// make ingest decode it: it is counted and dropped, and the next message
// is applied as usual.
func TestOversizeDropped(t *testing.T) {
	b, err := broker.New(broker.Options{Addr: "127.0.0.1:0", Auth: secrets{}, HubSecret: "hub-pass", Logger: discard(), MaxPacketSize: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	env := brokerEnv{url: b.URL(), hubUser: broker.DefaultHubUsername, hubPass: "hub-pass", agentPwd: agentPassword}
	h := startHub(t, env, nil)
	a := startAgent(t, env, "till-1")
	a.publishRaw(make([]byte, protocol.MaxMessageBytes+1))
	a.send(1)
	var ack protocol.Ack
	a.next(protocol.MsgAck, &ack)
	if ack.Watermark != 1 {
		t.Fatalf("ack %+v", ack)
	}
	testutil.Eventually(t, "the oversize message counted", func() (bool, string) {
		s := h.ingest.Stats()
		return s.Oversize == 1, fmt.Sprintf("%+v", s)
	})
	if s := h.ingest.Stats(); s.Malformed != 0 {
		t.Fatalf("the oversize payload reached the decoder: %+v", s)
	}
}
