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
	descAckSeconds = prometheus.NewDesc("punchcard_ingest_ack_seconds",
		"From a recorded batch message's receipt to its Ack handed to the broker (the hub's part of a till's ack latency).", nil, nil)
	descSlowApplies = prometheus.NewDesc("punchcard_ingest_slow_applies_total",
		"Ingest writer transactions of 100 ms or more (each one logged).", nil, nil)
	descGateWait = prometheus.NewDesc("punchcard_ledger_gate_wait_seconds_total",
		"Time the hub's pooled ledger writers (ingest, allowance grants, returns) waited for each other's transactions.", nil, nil)
	descGateHold = prometheus.NewDesc("punchcard_ledger_gate_hold_seconds",
		"The hub's pooled ledger write transactions (ingest, allowance grants, returns), commit included.", nil, nil)
	descGateSlow = prometheus.NewDesc("punchcard_ledger_gate_slow_total",
		"Pooled ledger write transactions of 100 ms or more.", nil, nil)
	descCkptRounds = prometheus.NewDesc("punchcard_db_checkpoints_total",
		"Background WAL checkpoints of the hub database that copied frames (none in commits).", nil, nil)
	descCkptFrames = prometheus.NewDesc("punchcard_db_checkpoint_frames_total",
		"WAL frames (pages) the background checkpoints copied into the hub database.", nil, nil)
	descCkptSeconds = prometheus.NewDesc("punchcard_db_checkpoint_seconds_total",
		"Time in background checkpoints that copied frames.", nil, nil)
	descCkptBusy = prometheus.NewDesc("punchcard_db_checkpoint_busy_total",
		"Background checkpoints that left frames for the next (a reader still needed them).", nil, nil)
	descCkptHeld = prometheus.NewDesc("punchcard_db_checkpoint_held_seconds_total",
		"Time the background checkpointer held the ledger's writers back to finish a round.", nil, nil)
	descCkptDeferred = prometheus.NewDesc("punchcard_db_checkpoint_deferred_total",
		"Background checkpoint rounds that did not hold the writers back because too many frames were left (a reader in the way, or a backlog to copy first).", nil, nil)
)

// (and the background checkpointer's rounds: hub.go, store.Checkpointer.)

// stallCollector exports them (read at scrape time from counters kept by
// ingest and the ledger).
type stallCollector struct{ h *Hub }

func (c stallCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descApplySeconds, descAckSeconds, descSlowApplies, descGateWait, descGateHold, descGateSlow, descCkptRounds, descCkptFrames, descCkptSeconds, descCkptBusy, descCkptHeld, descCkptDeferred} {
		ch <- d
	}
}

// histogram is a const histogram of per-bucket (not cumulative) counts
// under bounds, with one more count for those beyond the last bound.
func histogram(d *prometheus.Desc, bounds []time.Duration, counts []int64, sum time.Duration) prometheus.Metric {
	b := make(map[float64]uint64, len(bounds))
	var cum int64
	for i, le := range bounds {
		cum += counts[i]
		b[le.Seconds()] = uint64(cum)
	}
	return prometheus.MustNewConstHistogram(d, uint64(cum+counts[len(bounds)]), sum.Seconds(), b)
}

func (c stallCollector) Collect(ch chan<- prometheus.Metric) {
	if in := c.h.Ingest; in != nil {
		s := in.Stats()
		ch <- histogram(descApplySeconds, ingest.ApplyBuckets[:], s.ApplyBuckets[:], s.Apply)
		ch <- histogram(descAckSeconds, ingest.ApplyBuckets[:], s.AckBuckets[:], s.AckTime)
		ch <- prometheus.MustNewConstMetric(descSlowApplies, prometheus.CounterValue, float64(s.SlowApplies))
	}
	if l := c.h.Ledger; l != nil {
		g := l.GateStats()
		ch <- prometheus.MustNewConstMetric(descGateWait, prometheus.CounterValue, g.Wait.Seconds())
		ch <- histogram(descGateHold, ledger.GateBuckets[:], g.Buckets[:], g.Hold)
		ch <- prometheus.MustNewConstMetric(descGateSlow, prometheus.CounterValue, float64(g.Slow))
	}
	if c.h.ckpt != nil {
		s := c.h.ckpt.Stats()
		ch <- prometheus.MustNewConstMetric(descCkptRounds, prometheus.CounterValue, float64(s.Rounds))
		ch <- prometheus.MustNewConstMetric(descCkptFrames, prometheus.CounterValue, float64(s.Frames))
		ch <- prometheus.MustNewConstMetric(descCkptSeconds, prometheus.CounterValue, s.Time.Seconds())
		ch <- prometheus.MustNewConstMetric(descCkptBusy, prometheus.CounterValue, float64(s.Busy))
		ch <- prometheus.MustNewConstMetric(descCkptHeld, prometheus.CounterValue, s.HeldTime.Seconds())
		ch <- prometheus.MustNewConstMetric(descCkptDeferred, prometheus.CounterValue, float64(s.Deferred))
	}
}
