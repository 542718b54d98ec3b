package hub

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/punchcard/punchcard/hub/snapshots"
	"github.com/punchcard/punchcard/protocol"
	pcatalog "github.com/punchcard/punchcard/protocol/catalog"
	"github.com/punchcard/punchcard/store/catalog"
	"github.com/punchcard/punchcard/store/ledger"
)

// The stores implement what a quiet snapshot poll reads (hub/snapshots,
// quiet.go) and the catalog lists a tenant's agents at once (agents.go); kept apart from wiring.go's list so that the branches that
// add to either merge without conflict.
var (
	_ snapshots.PositionLedger   = (*ledger.Ledger)(nil)
	_ snapshots.CodeFactsCatalog = (*catalog.Catalog)(nil)
	_ snapshots.AgentLister      = (*catalog.Catalog)(nil)
	_ snapshots.SnapshotReader   = (*ledger.Ledger)(nil)
)

// shareAgents hands the agents a change is announced to to the snapshot
// service (snapshots.AnnouncerOptions.Listed, Service.ShareAgents), for
// the fetches the announcement brings.
func (h *Hub) shareAgents(tenant protocol.TenantID, version uint64, agents []pcatalog.Agent) {
	if h.Snapshots != nil {
		h.Snapshots.ShareAgents(tenant, version, agents)
	}
}

// snapshotCounters are the snapshot service's and the announcer's
// counters (docs/operations.md, "Metrics"), read at scrape time.
var snapshotCounters = []struct {
	desc *prometheus.Desc
	v    func(*Hub) int64
}{
	{prometheus.NewDesc("punchcard_snapshot_bodies_total", "Snapshot requests answered with a body (a full snapshot or a delta).", nil, nil),
		func(h *Hub) int64 { return h.Snapshots.Bodies.Load() }},
	{prometheus.NewDesc("punchcard_snapshot_unchanged_total", "Snapshot requests answered 304 because the agent's ETag matched what it would get.", nil, nil),
		func(h *Hub) int64 { return h.Snapshots.Unchanged.Load() }},
	{prometheus.NewDesc("punchcard_snapshot_quiet_total", "Snapshot polls answered 304 although code uses or the till's allowance figures moved: nothing it acts on did (quiet 304).", nil, nil),
		func(h *Hub) int64 { return h.Snapshots.Quiet.Load() }},
	{prometheus.NewDesc("punchcard_snapshot_busy_total", "Snapshot requests refused (503, Retry-After) after waiting the longest for a turn.", nil, nil),
		func(h *Hub) int64 { return h.Snapshots.Busy.Load() }},
	{prometheus.NewDesc("punchcard_snapshot_announcements_total", "Snapshot announcements (a new catalog version) published to agents.", nil, nil),
		func(h *Hub) int64 { return h.Announcer.Sent.Load() }},
}

// snapshotCollector exports snapshotCounters (registered in metrics.go).
type snapshotCollector struct{ h *Hub }

func (c snapshotCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, k := range snapshotCounters {
		ch <- k.desc
	}
}

func (c snapshotCollector) Collect(ch chan<- prometheus.Metric) {
	if c.h.Snapshots == nil || c.h.Announcer == nil {
		return
	}
	for _, k := range snapshotCounters {
		ch <- prometheus.MustNewConstMetric(k.desc, prometheus.CounterValue, float64(k.v(c.h)))
	}
}
