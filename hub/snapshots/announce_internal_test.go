package snapshots

import (
	"testing"
	"time"
)

// TestPace: an announcement is paced at AnnounceRate at most and, when
// the window is longer than twice Tail, evenly over the window less Tail,
// so its last group goes out by then and each asks for at most Tail.
func TestPace(t *testing.T) {
	for _, c := range []struct {
		name   string
		opts   AnnouncerOptions
		agents int
		step   int
		every  time.Duration
		tail   time.Duration
		capped bool // the last group goes out after the window
	}{
		// 10,000 tills: a 22 s window, 500 a second over 20 s.
		{"Fleet", AnnouncerOptions{FetchRate: DefaultFetchRate, MaxSpread: DefaultMaxSpread, AnnounceRate: DefaultAnnounceRate, Tail: DefaultTail}, 10_000, 10, 20 * time.Millisecond, DefaultTail, false},
		// 2,000 tills: a 4.44 s window, ~819 a second over 2.44 s.
		{"Small", AnnouncerOptions{FetchRate: DefaultFetchRate, MaxSpread: DefaultMaxSpread, AnnounceRate: DefaultAnnounceRate, Tail: DefaultTail}, 2_000, 17, 20750 * time.Microsecond, DefaultTail, false},
		// The even rate would be above AnnounceRate: AnnounceRate, and
		// the agents told after the window fetch at once.
		{"Capped", AnnouncerOptions{FetchRate: 10_000, MaxSpread: 10 * time.Second, AnnounceRate: 100, Tail: time.Second}, 100_000, 2, 20 * time.Millisecond, time.Second, true},
		// A window of 1 s, not longer than twice Tail: AnnounceRate, each
		// with what is left of the window.
		{"Short", AnnouncerOptions{FetchRate: 1_000, MaxSpread: DefaultMaxSpread, AnnounceRate: 2_000, Tail: DefaultTail}, 1_000, 40, 20 * time.Millisecond, 0, false},
		// A rate below one agent per step: one agent a group, further apart.
		{"Slow", AnnouncerOptions{FetchRate: 1_000, MaxSpread: DefaultMaxSpread, AnnounceRate: 10, Tail: -1}, 1_000, 1, 100 * time.Millisecond, 0, false},
		{"Unpaced", AnnouncerOptions{FetchRate: 1_000, MaxSpread: DefaultMaxSpread, AnnounceRate: -1, Tail: -1}, 1_000, 1_000, 0, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := c.opts.pace(c.agents)
			if p.step != c.step || p.every.Round(250*time.Microsecond) != c.every || p.tail != c.tail {
				t.Errorf("pace(%d) = step %d every %v tail %v, want %d, %v, %v", c.agents, p.step, p.every, p.tail, c.step, c.every, c.tail)
			}
			last := time.Duration((c.agents-1)/p.step) * p.every // when the last group goes out
			if c.capped {
				if got := p.spread(last); got != 0 {
					t.Errorf("the last group's spread %v after the window, want 0", got)
				}
				return
			}
			if p.tail > 0 && last > p.window-p.tail {
				t.Errorf("the last group goes out after %v, want by %v (the window %v less Tail)", last, p.window-p.tail, p.window)
			}
			if got := p.spread(last); p.tail > 0 && got != p.tail {
				t.Errorf("the last group's spread %v, want Tail %v", got, p.tail)
			}
		})
	}
}
