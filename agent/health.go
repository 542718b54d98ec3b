package agent

import "time"

// LinkHealth is the state of the till's connection to the hub, each part
// on its own: a till is online only when all three are up (the MQTT
// session, the hub's HTTP API, a snapshot younger than the online age
// limit); otherwise it decides offline, inside its risk envelope, and says
// so. agent/uplink reports it (Health).
type LinkHealth struct {
	MQTT     MQTTHealth     `json:"mqtt"`
	HTTP     HTTPHealth     `json:"http"`
	Snapshot SnapshotHealth `json:"snapshot"`
}

// MQTTHealth is the MQTT session to the hub's broker.
type MQTTHealth struct {
	Up bool `json:"up"`
}

// HTTPHealth is the reachability of the hub's HTTP API (snapshots,
// allowances, online decisions): up when the last exchange got an answer
// and one did within the age limit.
type HTTPHealth struct {
	Up     bool       `json:"up"`
	LastOK *time.Time `json:"last_ok,omitempty"`
	Error  string     `json:"error,omitempty"` // the last failure, while down
}

// SnapshotHealth is how current the snapshot is: fresh when the hub
// confirmed or replaced it within MaxAgeSeconds.
type SnapshotHealth struct {
	Fresh         bool       `json:"fresh"`
	SyncedAt      *time.Time `json:"synced_at,omitempty"`
	AgeSeconds    float64    `json:"age_seconds"` // -1 before the first sync
	MaxAgeSeconds float64    `json:"max_age_seconds"`
}

// healthReporter is a Link that reports its parts (agent/uplink).
type healthReporter interface {
	Health() LinkHealth
}

// linkHealth is the link's health, and false without a link that reports.
func (a *Agent) linkHealth() (LinkHealth, bool) {
	b := a.link.Load()
	if b == nil || b.Link == nil {
		return LinkHealth{}, false
	}
	h, ok := b.Link.(healthReporter)
	if !ok {
		return LinkHealth{}, false
	}
	return h.Health(), true
}
