package uplink

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/punchcard/punchcard/agent"
)

// Health defaults.
const (
	// DefaultProbeEvery is how often the client checks that the hub's
	// HTTP API answers (GET /healthz) when no other exchange told it.
	DefaultProbeEvery = 10 * time.Second
	// DefaultProbeTimeout bounds one probe.
	DefaultProbeTimeout = 5 * time.Second
)

// health is what the client knows of its links besides the MQTT session.
type health struct {
	httpOK     atomic.Bool
	httpLastOK atomic.Int64 // Unix nanoseconds of the last answer, 0 never
	httpErr    atomic.Pointer[string]
	syncedAt   atomic.Int64 // Unix nanoseconds of the last snapshot applied or confirmed
}

// httpAnswered records that the hub's HTTP API answered (any status: it is
// reachable).
func (c *Client) httpAnswered() {
	c.health.httpLastOK.Store(time.Now().UnixNano())
	c.health.httpOK.Store(true)
	c.health.httpErr.Store(nil)
}

// httpFailed records an exchange that got no answer.
func (c *Client) httpFailed(err error) {
	c.health.httpOK.Store(false)
	msg := err.Error()
	c.health.httpErr.Store(&msg)
}

func (c *Client) snapshotSynced() { c.health.syncedAt.Store(time.Now().UnixNano()) }

// httpUp: the last exchange was answered, within HTTPMaxAge.
func (c *Client) httpUp(now time.Time) bool {
	last := c.health.httpLastOK.Load()
	return c.health.httpOK.Load() && last != 0 && now.Sub(time.Unix(0, last)) <= c.opts.HTTPMaxAge
}

// snapshotFresh: the snapshot was applied or confirmed within
// OnlineMaxAge.
func (c *Client) snapshotFresh(now time.Time) bool {
	at := c.health.syncedAt.Load()
	return at != 0 && now.Sub(time.Unix(0, at)) <= c.opts.OnlineMaxAge
}

// Online implements agent.Link: the till can reach the hub for what it must
// ask. The MQTT session is up, the hub's HTTP API answered its last
// exchange (and one within HTTPMaxAge), and the snapshot was confirmed
// within OnlineMaxAge. Anything else is offline: the agent then decides
// inside its risk envelope and marks its decisions offline.
func (c *Client) Online() bool {
	now := time.Now()
	return c.mqttUp() && c.httpUp(now) && c.snapshotFresh(now)
}

// mqttUp: the MQTT session is up (what publishing needs).
func (c *Client) mqttUp() bool { return c.connected.Load() && c.mq.IsConnectionOpen() }

// Health reports the links part by part, for the agent's status.
func (c *Client) Health() agent.LinkHealth {
	now := time.Now()
	h := agent.LinkHealth{MQTT: agent.MQTTHealth{Up: c.mqttUp()}}
	h.HTTP.Up = c.httpUp(now)
	if last := c.health.httpLastOK.Load(); last != 0 {
		t := time.Unix(0, last).UTC()
		h.HTTP.LastOK = &t
	}
	if e := c.health.httpErr.Load(); e != nil && !h.HTTP.Up {
		h.HTTP.Error = *e
	}
	h.Snapshot.Fresh = c.snapshotFresh(now)
	h.Snapshot.MaxAgeSeconds = c.opts.OnlineMaxAge.Seconds()
	h.Snapshot.AgeSeconds = -1
	if at := c.health.syncedAt.Load(); at != 0 {
		t := time.Unix(0, at).UTC()
		h.Snapshot.SyncedAt = &t
		h.Snapshot.AgeSeconds = now.Sub(t).Seconds()
	}
	return h
}

// prober checks the hub's HTTP API every ProbeEvery (unless another
// exchange was answered meanwhile), without retries, so that a cut HTTP
// link is noticed within ProbeEvery + ProbeTimeout even while MQTT stays
// up. At 10,000 tills the default costs the hub at most 1,000 GET /healthz
// a second.
func (c *Client) prober() {
	defer c.wg.Done()
	t := time.NewTicker(c.opts.ProbeEvery)
	defer t.Stop()
	for {
		c.probe()
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (c *Client) probe() {
	if last := c.health.httpLastOK.Load(); c.health.httpOK.Load() && last != 0 && time.Since(time.Unix(0, last)) < c.opts.ProbeEvery {
		return // another exchange was answered since the last probe
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.opts.ProbeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.opts.HubURL+"/healthz", nil)
	if err != nil {
		return
	}
	resp, err := c.http.HTTPClient.Do(req)
	if err != nil {
		if c.ctx.Err() == nil {
			c.httpFailed(err)
		}
		return
	}
	resp.Body.Close()
	c.httpAnswered()
}
