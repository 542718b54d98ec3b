package hub_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/punchcard/punchcard/hub"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/store/catalog"
	"github.com/punchcard/punchcard/store/ledger"
)

// scrape reads the hub's /metrics and parses it with Prometheus's own
// text parser, which refuses what a Prometheus server would refuse.
func scrape(tb testing.TB, h *hub.Hub) map[string]*dto.MetricFamily {
	tb.Helper()
	get(tb, "http://"+h.MetricsAddr()+"/metrics") // waits until Run serves
	resp, err := http.Get("http://" + h.MetricsAddr() + "/metrics")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("/metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		tb.Fatalf("/metrics does not parse: %v", err)
	}
	return mfs
}

// value is the value of the family's series with exactly these labels.
func value(tb testing.TB, mfs map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	tb.Helper()
	mf, ok := mfs[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range mf.GetMetric() {
		if len(m.GetLabel())*2 != len(labels) {
			continue
		}
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for i := 0; i < len(labels); i += 2 {
			if v, ok := have[labels[i]]; !ok || v != labels[i+1] {
				continue next
			}
		}
		switch mf.GetType() {
		case dto.MetricType_COUNTER:
			return m.GetCounter().GetValue(), true
		case dto.MetricType_GAUGE:
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// runIn runs a hub on data directory dir until the test ends, as MustRun.
func runIn(tb testing.TB, dir string) *hub.Hub {
	tb.Helper()
	h, err := hub.Open(context.Background(), hub.Options{
		DataDir: dir, HTTPAddr: "127.0.0.1:0", MQTTAddr: "127.0.0.1:0", MetricsAddr: "127.0.0.1:0",
		BootstrapKey: bootstrapKey, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Error(err)
		}
	})
	return h
}

type backlog atomic.Int64

func (b *backlog) Backlog(context.Context) (int64, error) {
	return (*atomic.Int64)(b).Load(), nil
}

// TestMetricsPrometheus scrapes a running hub with the Prometheus parser:
// every counter of the hand-written exposition keeps its name and type
// (docs/operations.md; dashboards use them), and the business gauges
// (tills, stale tills, outbox depth from the heartbeats, budget left and
// escrowed of limited campaigns only, webhook backlog once set) hold what
// the stores hold.
func TestMetricsPrometheus(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	h := runIn(t, dir)
	if _, err := h.Catalog.CreateTenant(ctx, catalog.System, catalog.Tenant{ID: "acme", Name: "Acme", Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	for _, doc := range []string{
		`{"schema":1,"id":"limited","tenant":"acme","status":"active","currency":"EUR","reward":{"kind":"amount_off","amount":150},"limits":{"max_redemptions":100,"max_discount":5000}}`,
		`{"schema":1,"id":"open","tenant":"acme","status":"active","currency":"EUR","reward":{"kind":"percent_off","percent_bp":1000}}`,
		`{"schema":1,"id":"draft","tenant":"acme","status":"draft","currency":"EUR","reward":{"kind":"percent_off","percent_bp":1000},"limits":{"max_redemptions":5}}`,
	} {
		if _, err := h.Catalog.CreateCampaign(ctx, catalog.System, "acme", []byte(doc)); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []protocol.AgentID{"till-1", "till-2", "till-3"} {
		if _, _, err := h.Catalog.RegisterAgent(ctx, catalog.System, catalog.Agent{Tenant: "acme", ID: id, Store: snapshot.Store{ID: "s1"}}); err != nil {
			t.Fatal(err)
		}
	}
	// Two redemptions of the limited campaign, and an allowance escrowed
	// at till-2.
	var rs []protocol.Redemption
	for seq := uint64(1); seq <= 2; seq++ {
		rs = append(rs, protocol.Redemption{ID: protocol.RedemptionID{Agent: "till-1", Seq: seq}, Kind: protocol.KindRedeem, Tenant: "acme", Store: "s1",
			TxnID: "t" + string(rune('0'+seq)), Campaign: "limited", Currency: "EUR", Discount: 150, HLC: ledger.HLCFromTime(time.Now()), Offline: true})
	}
	if _, _, err := h.Ledger.ApplyBatch(ctx, "acme", "till-1", rs); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Ledger.GrantAllowance(ctx, "acme", "till-2", "limited"); err != nil {
		t.Fatal(err)
	}
	// Heartbeats: till-1 and till-2 now, till-3 an hour ago (recorded by a
	// second ledger on the same database file whose clock is an hour
	// behind).
	if _, err := h.Ledger.RecordAgentStates(ctx, []ledger.StateRecord{
		{Tenant: "acme", Agent: "till-1", State: protocol.AgentState{OutboxDepth: 7}},
		{Tenant: "acme", Agent: "till-2", State: protocol.AgentState{OutboxDepth: 3}},
	}); err != nil {
		t.Fatal(err)
	}
	old, err := ledger.Open(ctx, filepath.Join(dir, hub.DefaultDBName), ledger.Options{Facts: h.Catalog, Now: func() time.Time { return time.Now().Add(-time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := old.RecordAgentState(ctx, "acme", "till-3", protocol.AgentState{OutboxDepth: 40}); err != nil {
		t.Fatal(err)
	}
	old.Close()

	mfs := scrape(t, h)
	for _, name := range []string{"punchcard_broker_dropped_total", "punchcard_broker_qos_dropped_total", "punchcard_broker_qos_discarded_total",
		"punchcard_broker_write_dropped_total", "punchcard_broker_quota_dropped_total", "punchcard_broker_expired_total",
		"punchcard_broker_auth_refused_total", "punchcard_broker_acl_denied_total", "punchcard_broker_wills_refused_total",
		"punchcard_ingest_messages_total", "punchcard_ingest_batches_total", "punchcard_ingest_redemptions_total", "punchcard_ingest_refused_total",
		"punchcard_ingest_malformed_total", "punchcard_ingest_quarantined_total", "punchcard_ingest_oversize_total", "punchcard_ingest_shed_total",
		"punchcard_ingest_conflicts_total", "punchcard_ingest_acks_total", "punchcard_ingest_resends_total", "punchcard_ingest_errors_total",
		"punchcard_ingest_drains_total", "punchcard_ingest_queue_wait_seconds_total", "punchcard_ingest_prepare_seconds_total",
		"punchcard_ingest_handoff_seconds_total", "punchcard_ingest_apply_seconds_total", "punchcard_ingest_publish_seconds_total"} {
		if mf, ok := mfs[name]; !ok || mf.GetType() != dto.MetricType_COUNTER {
			t.Errorf("%s: missing or not a counter", name)
		}
	}
	// Where a stalled writer shows (metrics_stall.go).
	for name, typ := range map[string]dto.MetricType{"punchcard_ingest_apply_seconds": dto.MetricType_HISTOGRAM, "punchcard_ingest_ack_seconds": dto.MetricType_HISTOGRAM,
		"punchcard_ingest_slow_applies_total": dto.MetricType_COUNTER, "punchcard_ledger_gate_wait_seconds_total": dto.MetricType_COUNTER,
		"punchcard_ledger_gate_hold_seconds": dto.MetricType_HISTOGRAM, "punchcard_ledger_gate_slow_total": dto.MetricType_COUNTER,
		"punchcard_db_checkpoints_total": dto.MetricType_COUNTER, "punchcard_db_checkpoint_frames_total": dto.MetricType_COUNTER,
		"punchcard_db_checkpoint_seconds_total": dto.MetricType_COUNTER, "punchcard_db_checkpoint_busy_total": dto.MetricType_COUNTER} {
		if mf, ok := mfs[name]; !ok || mf.GetType() != typ {
			t.Errorf("%s: missing or not a %s", name, typ)
		}
	}
	// The grant and the heartbeats above held the write gate.
	if mf := mfs["punchcard_ledger_gate_hold_seconds"]; mf == nil || mf.GetMetric()[0].GetHistogram().GetSampleCount() < 2 {
		t.Errorf("punchcard_ledger_gate_hold_seconds: want the grant's and the heartbeats' holds counted: %v", mf)
	}
	if mf, ok := mfs["punchcard_broker_clients"]; !ok || mf.GetType() != dto.MetricType_GAUGE {
		t.Error("punchcard_broker_clients: missing or not a gauge")
	}
	b, err := h.Ledger.Campaign(ctx, "acme", "limited")
	if err != nil {
		t.Fatal(err)
	}
	if b.Count != 2 || b.ReservedCount == 0 {
		t.Fatalf("campaign balance %+v: want 2 used and an allowance escrowed", b)
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"punchcard_tills", []string{"tenant", "acme"}, 3},
		{"punchcard_tills_stale", []string{"tenant", "acme"}, 1},
		{"punchcard_tills_outbox_depth", []string{"tenant", "acme"}, 50},
		{"punchcard_tills_outbox_depth_max", []string{"tenant", "acme"}, 40},
		{"punchcard_campaign_budget_left", []string{"tenant", "acme", "campaign", "limited", "limit", "redemptions"}, float64(100 - 2 - b.ReservedCount)},
		{"punchcard_campaign_budget_left", []string{"tenant", "acme", "campaign", "limited", "limit", "discount"}, float64(5000 - 300 - b.ReservedAmount)},
		{"punchcard_campaign_budget_escrowed", []string{"tenant", "acme", "campaign", "limited", "limit", "redemptions"}, float64(b.ReservedCount)},
		{"punchcard_campaign_budget_truncated", nil, 0},
	} {
		if got, ok := value(t, mfs, c.name, c.labels...); !ok || got != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	// Campaigns without a budget and drafts export no series.
	for _, id := range []string{"open", "draft"} {
		for _, lim := range []string{"redemptions", "discount"} {
			if _, ok := value(t, mfs, "punchcard_campaign_budget_left", "tenant", "acme", "campaign", id, "limit", lim); ok {
				t.Errorf("budget series for campaign %s", id)
			}
		}
	}
	// The hub's own webhook sender (nothing queued) until another is set;
	// without one the series is absent, not a misleading 0.
	if got, ok := value(t, mfs, "punchcard_webhook_backlog"); !ok || got != 0 {
		t.Errorf("punchcard_webhook_backlog = %v (present %v) from the hub's webhook sender, want 0", got, ok)
	}
	h.SetWebhookBacklog(nil)
	if _, ok := scrape(t, h)["punchcard_webhook_backlog"]; ok {
		t.Error("punchcard_webhook_backlog without a webhook sender")
	}
	var bl backlog
	(*atomic.Int64)(&bl).Store(12)
	h.SetWebhookBacklog(&bl)
	if got, ok := value(t, scrape(t, h), "punchcard_webhook_backlog"); !ok || got != 12 {
		t.Errorf("punchcard_webhook_backlog = %v (present %v), want 12", got, ok)
	}
}
