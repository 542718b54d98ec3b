package hub

import "time"

// every runs job once at start and then every interval on its own
// goroutine, until Close. The hub's periodic jobs (points expiry, tier
// review, segments) are idempotent runs that log their own errors; a
// non-positive interval turns the job off.
func (h *Hub) every(interval time.Duration, job func()) {
	if interval <= 0 {
		return
	}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			job()
			select {
			case <-h.ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}
