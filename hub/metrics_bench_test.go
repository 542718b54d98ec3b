package hub_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/punchcard/punchcard/hub"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/catalog"
	"github.com/punchcard/punchcard/store/ledger"
)

// Scrape sizes: 10,000 tills in 20 tenants, each tenant with 10 limited
// campaigns (a budget each, 200 budget campaigns in all) and 10 without.
const (
	scrapeTenants   = 20
	scrapeTills     = 10_000
	scrapeCampaigns = 10
)

// BenchmarkScrape measures one GET /metrics at 10,000 tills' worth of
// data, over loopback HTTP as Prometheus does:
//
//   - handwritten: the exposition this replaced (fmt of the 22 counters,
//     kept here as the same-run baseline), served by an httptest server;
//   - prometheus: the hub's client_golang handler with the Go, process,
//     counter and business collectors (one grouped read of 10,000
//     ledger_agents rows, the limited campaigns, 200 balance reads).
//
// make bench-metrics runs it; ratio = prometheus / handwritten.
func BenchmarkScrape(b *testing.B) {
	ctx := context.Background()
	h := runIn(b, b.TempDir())
	var states []ledger.StateRecord
	for tn := range scrapeTenants {
		tenant := protocol.TenantID(fmt.Sprintf("t%02d", tn))
		if _, err := h.Catalog.CreateTenant(ctx, catalog.System, catalog.Tenant{ID: tenant, Name: string(tenant), Currency: "EUR"}); err != nil {
			b.Fatal(err)
		}
		for c := range scrapeCampaigns {
			for _, doc := range []string{
				`{"schema":1,"id":"lim%d","tenant":"%s","status":"active","currency":"EUR","reward":{"kind":"amount_off","amount":100},"limits":{"max_redemptions":100000,"max_discount":5000000}}`,
				`{"schema":1,"id":"open%d","tenant":"%s","status":"active","currency":"EUR","reward":{"kind":"percent_off","percent_bp":1000}}`,
			} {
				if _, err := h.Catalog.CreateCampaign(ctx, catalog.System, tenant, fmt.Appendf(nil, doc, c, tenant)); err != nil {
					b.Fatal(err)
				}
			}
		}
		for i := range scrapeTills / scrapeTenants {
			states = append(states, ledger.StateRecord{Tenant: tenant, Agent: protocol.AgentID(fmt.Sprintf("till-%05d", i)),
				State: protocol.AgentState{OutboxDepth: int64(i % 7)}})
		}
	}
	for len(states) > 0 {
		n := min(len(states), 1000)
		if _, err := h.Ledger.RecordAgentStates(ctx, states[:n]); err != nil {
			b.Fatal(err)
		}
		states = states[n:]
	}
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { handwritten(w, h.Metrics()) }))
	b.Cleanup(old.Close)
	get(b, "http://"+h.MetricsAddr()+"/metrics") // Run serves
	for _, c := range []struct{ name, url string }{
		{"handwritten", old.URL},
		{"prometheus", "http://" + h.MetricsAddr() + "/metrics"},
	} {
		b.Run(c.name, func(b *testing.B) {
			var n int64
			cpu0 := cpuTime()
			for b.Loop() {
				resp, err := http.Get(c.url)
				if err != nil {
					b.Fatal(err)
				}
				k, err := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK {
					b.Fatal(resp.Status, err)
				}
				n = k
			}
			b.ReportMetric(float64(n), "bytes/scrape")
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/scrape")
		})
	}
}

// handwritten is the hub's exposition before client_golang (hub/metrics.go
// at 778c7f0), kept as the benchmark's baseline.
func handwritten(w http.ResponseWriter, m hub.Metrics) {
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
