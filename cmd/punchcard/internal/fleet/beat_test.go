package fleet

import (
	"testing"
	"time"
)

// TestNextBeat: a till's heartbeats keep its phase whatever the publish
// took, as the agent's ticker does (the simulator timed the next one from
// the end of the publish, so a stall lined tills up for good).
func TestNextBeat(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	p := 30 * time.Second
	for _, c := range []struct {
		name string
		now  time.Duration // after t0, the beat due at t0 just published
		want time.Duration // after t0
	}{
		{"published at once", 10 * time.Millisecond, 30 * time.Second},
		{"published late, before the next tick", 4 * time.Second, 30 * time.Second},
		{"one tick missed: at once", 31 * time.Second, 30 * time.Second},
		{"several missed: one at once, the last", 95 * time.Second, 90 * time.Second},
		{"exactly on the next tick", 30 * time.Second, 30 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			now := t0.Add(c.now)
			got := nextBeat(t0, p, now)
			if want := t0.Add(c.want); !got.Equal(want) {
				t.Fatalf("nextBeat = +%v, want +%v", got.Sub(t0), c.want)
			}
			if got.Before(now) {
				// The one after it is on the phase, in the future.
				if n := nextBeat(got, p, now); !n.After(now) || n.Sub(t0)%p != 0 {
					t.Fatalf("after a missed tick: +%v", n.Sub(t0))
				}
			}
		})
	}
}
