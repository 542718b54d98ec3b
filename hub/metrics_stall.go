package hub

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/punchcard/punchcard/hub/ingest"
	"github.com/punchcard/punchcard/store/ledger"
)

// Where a stalled ingest writer shows (issue 10, the fleet's ack latency
// spikes): the histogram of ingest's writer transactions and the ledger
// write gate's waits and holds (every pooled ledger writer of this
// process: ingest's drains, allowance grant groups, returns).
var (
	descApplySeconds = prometheus.NewDesc("punchcard_ingest_apply_seconds",
		"Ingest's writer transactions (a drain's batches and heartbeats, the wait for the write gate and the commit included).", nil, nil)
	descSlowApplies = prometheus.NewDesc("punchcard_ingest_slow_applies_total",
		"Ingest writer transactions of 100 ms or more (each one logged).", nil, nil)
	descGateWait = prometheus.NewDesc("punchcard_ledger_gate_wait_seconds_total",
		"Time the hub's pooled ledger writers (ingest, allowance grants, returns) waited for each other's transactions.", nil, nil)
	descGateHold = prometheus.NewDesc("punchcard_ledger_gate_hold_seconds",
		"The hub's pooled ledger write transactions (ingest, allowance grants, returns), commit included.", nil, nil)
	descGateSlow = prometheus.NewDesc("punchcard_ledger_gate_slow_total",
		"Pooled ledger write transactions of 100 ms or more.", nil, nil)
)

// stallCollector exports them (read at scrape time from counters kept by
// ingest and the ledger).
type stallCollector struct{ h *Hub }

func (c stallCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descApplySeconds, descSlowApplies, descGateWait, descGateHold, descGateSlow} {
		ch <- d
	}
}

// histogram is a const histogram of per-bucket (not cumulative) counts
// under bounds, total counting the ones beyond the last bound too.
func histogram(d *prometheus.Desc, bounds []time.Duration, counts []int64, total int64, sum time.Duration) prometheus.Metric {
	b := make(map[float64]uint64, len(bounds))
	var cum int64
	for i, le := range bounds {
		cum += counts[i]
		b[le.Seconds()] = uint64(cum)
	}
	return prometheus.MustNewConstHistogram(d, uint64(max(total, cum)), sum.Seconds(), b)
}

func (c stallCollector) Collect(ch chan<- prometheus.Metric) {
	if in := c.h.Ingest; in != nil {
		s := in.Stats()
		ch <- histogram(descApplySeconds, ingest.ApplyBuckets[:], s.ApplyBuckets[:], s.Drains, s.Apply)
		ch <- prometheus.MustNewConstMetric(descSlowApplies, prometheus.CounterValue, float64(s.SlowApplies))
	}
	if l := c.h.Ledger; l != nil {
		g := l.GateStats()
		ch <- prometheus.MustNewConstMetric(descGateWait, prometheus.CounterValue, g.Wait.Seconds())
		ch <- histogram(descGateHold, ledger.GateBuckets[:], g.Buckets[:], g.Holds, g.Hold)
		ch <- prometheus.MustNewConstMetric(descGateSlow, prometheus.CounterValue, float64(g.Slow))
	}
}
