package hub

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

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

// Backlog is what a webhook sender (or any queue the hub drains) tells the
// metrics: the deliveries waiting. Declared here, by its consumer, so that
// the metrics do not import the sender; SetWebhookBacklog registers one.
type Backlog interface {
	Backlog(context.Context) (int64, error)
}

// SetWebhookBacklog exports b's Backlog as punchcard_webhook_backlog from
// the next scrape on; nil removes it. Without one the series is absent
// rather than a misleading 0.
func (h *Hub) SetWebhookBacklog(b Backlog) {
	if b == nil {
		h.backlog.Store(nil)
		return
	}
	h.backlog.Store(&b)
}

// MaxBudgetCampaigns bounds the budget gauges' cardinality: at most this
// many campaigns (active, with a budget, in tenant and id order) get
// punchcard_campaign_budget_* series, two limits each; when there are
// more, punchcard_campaign_budget_truncated is 1 and the report API has
// the rest. Campaigns without a budget, drafts and stopped ones export
// nothing, so a tenant's thousands of open-ended promotions cost no series.
const MaxBudgetCampaigns = 1000

// metricsTimeout bounds the database reads of one scrape.
const metricsTimeout = 10 * time.Second

// newMetricsHandler builds the /metrics handler: a registry of our own
// (not the global default, so that two hubs in one test process do not
// collide) with the Go runtime and process collectors, the broker's and
// ingest's counters, read at scrape time as before, and the business
// gauges read from the stores at scrape time.
func (h *Hub) newMetricsHandler(log *slog.Logger) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		counterCollector{h},
		businessCollector{h},
		snapshotCollector{h},
		stallCollector{h}, // metrics_stall.go
	)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      slogPromLogger{log},
		ErrorHandling: promhttp.ContinueOnError, // a failed store read drops its gauges, not the counters
	})
}

// slogPromLogger adapts slog to promhttp's Logger.
type slogPromLogger struct{ log *slog.Logger }

func (l slogPromLogger) Println(v ...any) { l.log.Warn("metrics", slog.Any(logErr, v)) }

// counter is one of the counters kept by broker.Stats and ingest.Stats.
type counter struct {
	desc *prometheus.Desc
	v    func(Metrics) int64
}

func newCounter(name, help string, v func(Metrics) int64) counter {
	return counter{prometheus.NewDesc(name, help, nil, nil), v}
}

// counters keep the names of the hand-written exposition they replace
// (docs/operations.md, "Metrics"; dashboards use them).
var counters = []counter{
	newCounter("punchcard_broker_dropped_total", "MQTT messages the embedded broker dropped (should stay 0).", func(m Metrics) int64 { return m.Broker.Dropped }),
	newCounter("punchcard_broker_qos_dropped_total", "QoS messages the embedded broker gave up.", func(m Metrics) int64 { return m.Broker.QosDropped }),
	newCounter("punchcard_broker_qos_discarded_total", "QoS messages in flight to a clean-session client when it left (by design).", func(m Metrics) int64 { return m.Broker.QosDiscarded }),
	newCounter("punchcard_broker_write_dropped_total", "Messages dropped on a full client write queue.", func(m Metrics) int64 { return m.Broker.WriteDropped }),
	newCounter("punchcard_broker_quota_dropped_total", "Messages dropped on a full client inflight store.", func(m Metrics) int64 { return m.Broker.QuotaDropped }),
	newCounter("punchcard_broker_expired_total", "Queued messages for offline tills that expired (by design; not drops).", func(m Metrics) int64 { return m.Broker.Expired }),
	newCounter("punchcard_broker_auth_refused_total", "MQTT connections refused for bad credentials.", func(m Metrics) int64 { return m.Broker.AuthRefused }),
	newCounter("punchcard_broker_auth_unavailable_total", "MQTT connections answered server unavailable: their credentials could not be checked in time.", func(m Metrics) int64 { return m.Broker.AuthUnavailable }),
	newCounter("punchcard_broker_acl_denied_total", "Publishes or subscriptions refused by the ACL.", func(m Metrics) int64 { return m.Broker.ACLDenied }),
	newCounter("punchcard_broker_wills_refused_total", "Agents' CONNECTs refused for carrying a Will, and Wills the ACL refused.", func(m Metrics) int64 { return m.Broker.WillsRefused }),
	newCounter("punchcard_ingest_messages_total", "Up messages received.", func(m Metrics) int64 { return m.Ingest.Messages }),
	newCounter("punchcard_ingest_batches_total", "Redemption batches applied.", func(m Metrics) int64 { return m.Ingest.Batches }),
	newCounter("punchcard_ingest_redemptions_total", "Redemptions in applied batches, repeats included.", func(m Metrics) int64 { return m.Ingest.Redemptions }),
	newCounter("punchcard_ingest_refused_total", "Messages refused for speaking for another agent or tenant.", func(m Metrics) int64 { return m.Ingest.Refused }),
	newCounter("punchcard_ingest_malformed_total", "Messages, or facts naming no usable seq, that could not be decoded.", func(m Metrics) int64 { return m.Ingest.Malformed }),
	newCounter("punchcard_ingest_quarantined_total", "Facts quarantined (not valid, but naming their seq): acked, kept, not applied.", func(m Metrics) int64 { return m.Ingest.Quarantined }),
	newCounter("punchcard_ingest_oversize_total", "Messages over the size limit, dropped before decoding.", func(m Metrics) int64 { return m.Ingest.Oversize }),
	newCounter("punchcard_ingest_shed_total", "Messages shed with the ingest queue full (the agent publishes again).", func(m Metrics) int64 { return m.Ingest.Shed }),
	newCounter("punchcard_ingest_damped_total", "Batches re-sent while the same facts waited to be recorded: dropped, the first one's Ack answers both.", func(m Metrics) int64 { return m.Ingest.Damped }),
	newCounter("punchcard_ingest_conflicts_total", "Conflicts found at reconciliation.", func(m Metrics) int64 { return m.Ingest.Conflicts }),
	newCounter("punchcard_ingest_acks_total", "Acks published.", func(m Metrics) int64 { return m.Ingest.Acks }),
	newCounter("punchcard_ingest_resends_total", "Resends published.", func(m Metrics) int64 { return m.Ingest.Resends }),
	newCounter("punchcard_ingest_errors_total", "Ledger or publish failures.", func(m Metrics) int64 { return m.Ingest.Errors }),
}

// timeCounters are ingest's time sums (ingest.Stats: where an Ack's time
// goes), in seconds; with punchcard_ingest_drains_total they give the
// mean of each stage per drain, and the queue wait per message.
var timeCounters = []struct {
	desc *prometheus.Desc
	v    func(Metrics) time.Duration
}{
	{prometheus.NewDesc("punchcard_ingest_queue_wait_seconds_total", "Sum over up messages of their wait in ingest's queue before a drain took them.", nil, nil),
		func(m Metrics) time.Duration { return m.Ingest.QueueWait }},
	{prometheus.NewDesc("punchcard_ingest_prepare_seconds_total", "Time spent re-deriving drains' batches before their transaction.", nil, nil),
		func(m Metrics) time.Duration { return m.Ingest.Prepare }},
	{prometheus.NewDesc("punchcard_ingest_handoff_seconds_total", "Time prepared drains waited for the writer.", nil, nil),
		func(m Metrics) time.Duration { return m.Ingest.Handoff }},
	{prometheus.NewDesc("punchcard_ingest_apply_seconds_total", "Time in the writer's transactions (batches and heartbeats), commits included.", nil, nil),
		func(m Metrics) time.Duration { return m.Ingest.Apply }},
	{prometheus.NewDesc("punchcard_ingest_publish_seconds_total", "Time from a drain's commit to its last Ack handed to the broker.", nil, nil),
		func(m Metrics) time.Duration { return m.Ingest.Publish }},
}

var ingestDrains = newCounter("punchcard_ingest_drains_total", "Drains of ingest's queue (each one writer transaction for its batches, one for its heartbeats).",
	func(m Metrics) int64 { return m.Ingest.Drains })

var brokerClients = prometheus.NewDesc("punchcard_broker_clients", "Connected MQTT clients.", nil, nil)

// counterCollector reads the broker's and ingest's counters once per
// scrape (Hub.Metrics): they are atomics kept by their owners, so there is
// nothing to update on the hot path.
type counterCollector struct{ h *Hub }

func (c counterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, k := range counters {
		ch <- k.desc
	}
	for _, k := range timeCounters {
		ch <- k.desc
	}
	ch <- ingestDrains.desc
	ch <- brokerClients
}

func (c counterCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.h.Metrics()
	for _, k := range counters {
		ch <- prometheus.MustNewConstMetric(k.desc, prometheus.CounterValue, float64(k.v(m)))
	}
	for _, k := range timeCounters {
		ch <- prometheus.MustNewConstMetric(k.desc, prometheus.CounterValue, k.v(m).Seconds())
	}
	ch <- prometheus.MustNewConstMetric(ingestDrains.desc, prometheus.CounterValue, float64(ingestDrains.v(m)))
	ch <- prometheus.MustNewConstMetric(brokerClients, prometheus.GaugeValue, float64(m.Broker.Clients))
}

// The business gauges. Labels: tenant (one per tenant, a chain: tens, not
// thousands), campaign (bounded by MaxBudgetCampaigns) and limit
// ("redemptions" or "discount"). Nothing is labelled by till or customer.
var (
	descTills = prometheus.NewDesc("punchcard_tills",
		"Tills (agents) the ledger knows, per tenant.", []string{"tenant"}, nil)
	descTillsStale = prometheus.NewDesc("punchcard_tills_stale",
		"Tills not heard from (heartbeat or facts) within the hub's till stale time (default 5m), per tenant.", []string{"tenant"}, nil)
	descOutbox = prometheus.NewDesc("punchcard_tills_outbox_depth",
		"Sum of the outbox depths (sales not yet acknowledged) the tills last reported in their heartbeats, per tenant.", []string{"tenant"}, nil)
	descOutboxMax = prometheus.NewDesc("punchcard_tills_outbox_depth_max",
		"Deepest outbox a till last reported, per tenant.", []string{"tenant"}, nil)
	descBudgetLeft = prometheus.NewDesc("punchcard_campaign_budget_left",
		"What an active limited campaign has left: its limit less redemptions (or discount, minor units) used and escrowed in tills' allowances; negative after offline overspending.",
		[]string{"tenant", "campaign", "limit"}, nil)
	descBudgetEscrowed = prometheus.NewDesc("punchcard_campaign_budget_escrowed",
		"Redemptions (or discount, minor units) of an active limited campaign escrowed in tills' allowances and not used yet.",
		[]string{"tenant", "campaign", "limit"}, nil)
	descBudgetTruncated = prometheus.NewDesc("punchcard_campaign_budget_truncated",
		"1 when more active limited campaigns exist than the budget gauges export (hub.MaxBudgetCampaigns).", nil, nil)
	descWebhookBacklog = prometheus.NewDesc("punchcard_webhook_backlog",
		"Webhook deliveries waiting (present only when the hub has a webhook sender).", nil, nil)
)

// businessCollector reads the gauges from the stores at scrape time: one
// grouped pass over the ledger's agents, one catalog read of the limited
// campaigns and one indexed balance read per such campaign. It is an
// unchecked collector for the webhook backlog, which comes and goes.
type businessCollector struct{ h *Hub }

func (c businessCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descTills, descTillsStale, descOutbox, descOutboxMax, descBudgetLeft, descBudgetEscrowed, descBudgetTruncated} {
		ch <- d
	}
}

func (c businessCollector) Collect(ch chan<- prometheus.Metric) {
	h := c.h
	ctx, cancel := context.WithTimeout(h.ctx, metricsTimeout)
	defer cancel()
	if bp := h.backlog.Load(); bp != nil {
		if n, err := (*bp).Backlog(ctx); err != nil {
			ch <- prometheus.NewInvalidMetric(descWebhookBacklog, err)
		} else {
			ch <- prometheus.MustNewConstMetric(descWebhookBacklog, prometheus.GaugeValue, float64(n))
		}
	}
	stale := h.opts.TillStaleAfter
	if stale <= 0 { // no till events (hub/events.go); the gauge still counts
		stale = DefaultTillStaleAfter
	}
	tills, err := h.Ledger.TillsByTenant(ctx, time.Now().Add(-stale))
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descTills, err)
	}
	for _, t := range tills {
		tn := string(t.Tenant)
		ch <- prometheus.MustNewConstMetric(descTills, prometheus.GaugeValue, float64(t.Tills), tn)
		ch <- prometheus.MustNewConstMetric(descTillsStale, prometheus.GaugeValue, float64(t.Stale), tn)
		ch <- prometheus.MustNewConstMetric(descOutbox, prometheus.GaugeValue, float64(t.OutboxDepth), tn)
		ch <- prometheus.MustNewConstMetric(descOutboxMax, prometheus.GaugeValue, float64(t.MaxOutbox), tn)
	}
	cps, err := h.Catalog.LimitedCampaigns(ctx, MaxBudgetCampaigns+1)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descBudgetLeft, err)
		return
	}
	truncated := 0.0
	if len(cps) > MaxBudgetCampaigns {
		cps, truncated = cps[:MaxBudgetCampaigns], 1
	}
	ch <- prometheus.MustNewConstMetric(descBudgetTruncated, prometheus.GaugeValue, truncated)
	for _, cp := range cps {
		b, err := h.Ledger.Campaign(ctx, cp.Tenant, cp.Campaign)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(descBudgetLeft, err)
			return
		}
		tn, id := string(cp.Tenant), string(cp.Campaign)
		if cp.MaxRedemptions > 0 {
			ch <- prometheus.MustNewConstMetric(descBudgetLeft, prometheus.GaugeValue, float64(cp.MaxRedemptions-b.Count-b.ReservedCount), tn, id, "redemptions")
			ch <- prometheus.MustNewConstMetric(descBudgetEscrowed, prometheus.GaugeValue, float64(b.ReservedCount), tn, id, "redemptions")
		}
		if cp.MaxDiscount > 0 {
			ch <- prometheus.MustNewConstMetric(descBudgetLeft, prometheus.GaugeValue, float64(cp.MaxDiscount-b.Discount-b.ReservedAmount), tn, id, "discount")
			ch <- prometheus.MustNewConstMetric(descBudgetEscrowed, prometheus.GaugeValue, float64(b.ReservedAmount), tn, id, "discount")
		}
	}
}
