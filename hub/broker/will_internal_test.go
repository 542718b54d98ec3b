package broker

import (
	"io"
	"log/slog"
	"testing"

	mqtt "github.com/mochi-mqtt/server/v2"

	"github.com/punchcard/punchcard/protocol"
)

// TestOnWillACL: should a Will ever get past CONNECT, the broker puts it
// through the publish ACL when it is due: an agent's Will on another
// tenant's up topic or on its own down topic is sent nowhere.
func TestOnWillACL(t *testing.T) {
	h := &hook{opts: Options{HubUsername: DefaultHubUsername, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}}
	agent := &mqtt.Client{}
	agent.Properties.Username = []byte("acme/till-1")
	for _, topic := range []string{protocol.UpTopic("beta", "till-1"), protocol.DownTopic("acme", "till-1"), protocol.SnapshotTopic("acme", "till-1")} {
		w, err := h.OnWill(agent, mqtt.Will{TopicName: topic, Payload: []byte("forged"), Retain: true, Qos: 1, Flag: 1})
		if err != nil {
			t.Fatal(err)
		}
		if w.TopicName != refusedWillTopic || w.Retain || len(w.Payload) != 0 {
			t.Fatalf("Will on %s passed: %+v", topic, w)
		}
	}
	own := mqtt.Will{TopicName: protocol.UpTopic("acme", "till-1"), Payload: []byte("x"), Flag: 1}
	if w, _ := h.OnWill(agent, own); w.TopicName != own.TopicName {
		t.Fatalf("a Will the agent could publish was changed: %+v", w)
	}
	if h.willsRefused.Load() != 3 {
		t.Fatalf("refused = %d", h.willsRefused.Load())
	}
}
