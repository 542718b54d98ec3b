package hub

import (
	"fmt"
	"net/http"

	"github.com/punchcard/punchcard/hub/broker"
	"github.com/punchcard/punchcard/hub/ingest"
)

// Metrics are the hub's counters.
type Metrics struct {
	Broker broker.Stats // zero with an external broker (watch its own metrics)
	Ingest ingest.Stats
}

// Metrics returns the current counters.
func (h *Hub) Metrics() Metrics {
	var m Metrics
	if h.Broker != nil {
		m.Broker = h.Broker.Stats()
	}
	if h.Ingest != nil {
		m.Ingest = h.Ingest.Stats()
	}
	return m
}

// serveMetrics writes the counters in the Prometheus text format.
func (h *Hub) serveMetrics(w http.ResponseWriter, _ *http.Request) {
	m := h.Metrics()
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	for _, c := range []struct {
		name, help string
		v          int64
	}{
		{"punchcard_broker_dropped_total", "MQTT messages the embedded broker dropped (should stay 0).", m.Broker.Dropped},
		{"punchcard_broker_qos_dropped_total", "QoS messages the embedded broker gave up.", m.Broker.QosDropped},
		{"punchcard_broker_qos_discarded_total", "QoS messages in flight to a clean-session client when it left (by design).", m.Broker.QosDiscarded},
		{"punchcard_broker_write_dropped_total", "Messages dropped on a full client write queue.", m.Broker.WriteDropped},
		{"punchcard_broker_quota_dropped_total", "Messages dropped on a full client inflight store.", m.Broker.QuotaDropped},
		{"punchcard_broker_expired_total", "Queued messages for offline tills that expired (by design; not drops).", m.Broker.Expired},
		{"punchcard_broker_auth_refused_total", "MQTT connections refused for bad credentials.", m.Broker.AuthRefused},
		{"punchcard_broker_acl_denied_total", "Publishes or subscriptions refused by the ACL.", m.Broker.ACLDenied},
		{"punchcard_broker_wills_refused_total", "Agents' CONNECTs refused for carrying a Will, and Wills the ACL refused.", m.Broker.WillsRefused},
		{"punchcard_ingest_messages_total", "Up messages received.", m.Ingest.Messages},
		{"punchcard_ingest_batches_total", "Redemption batches applied.", m.Ingest.Batches},
		{"punchcard_ingest_redemptions_total", "Redemptions in applied batches, repeats included.", m.Ingest.Redemptions},
		{"punchcard_ingest_refused_total", "Messages refused for speaking for another agent or tenant.", m.Ingest.Refused},
		{"punchcard_ingest_malformed_total", "Messages, or facts naming no usable seq, that could not be decoded.", m.Ingest.Malformed},
		{"punchcard_ingest_quarantined_total", "Facts quarantined (not valid, but naming their seq): acked, kept, not applied.", m.Ingest.Quarantined},
		{"punchcard_ingest_oversize_total", "Messages over the size limit, dropped before decoding.", m.Ingest.Oversize},
		{"punchcard_ingest_shed_total", "Messages shed with the ingest queue full (the agent publishes again).", m.Ingest.Shed},
		{"punchcard_ingest_conflicts_total", "Conflicts found at reconciliation.", m.Ingest.Conflicts},
		{"punchcard_ingest_acks_total", "Acks published.", m.Ingest.Acks},
		{"punchcard_ingest_resends_total", "Resends published.", m.Ingest.Resends},
		{"punchcard_ingest_errors_total", "Ledger or publish failures.", m.Ingest.Errors},
	} {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n%s %d\n", c.name, c.help, c.name, c.name, c.v)
	}
	fmt.Fprintf(w, "# HELP punchcard_broker_clients Connected MQTT clients.\n# TYPE punchcard_broker_clients gauge\npunchcard_broker_clients %d\n", m.Broker.Clients)
}
