package ingest

import (
	"testing"
	"time"
)

func TestPacerLead(t *testing.T) {
	ms := time.Millisecond
	type drain struct {
		n int
		d time.Duration
	}
	for _, c := range []struct {
		name   string
		drains []drain
		prep   time.Duration
		n      int
		want   time.Duration // within 5 %
	}{
		{"nothing seen: at once", nil, 0, 10, 0},
		// 2 ms a commit and 0.5 ms a message: 2 + 0.5 × 40 = 22 ms, 0.9 of
		// it less 1.5 × 1 ms and 0.5 ms.
		{"a line", []drain{{4, 4 * ms}, {20, 12 * ms}, {4, 4 * ms}, {20, 12 * ms}, {12, 8 * ms}}, ms, 40, time.Duration(0.9*22e6 - 1.5e6 - 0.5e6)},
		{"one size: in proportion", []drain{{10, 10 * ms}, {10, 10 * ms}}, 0, 20, time.Duration(0.9*20e6 - 0.5e6)},
		{"preparation longer than the drain: at once", []drain{{10, 2 * ms}}, 5 * ms, 10, 0},
		{"bounded", []drain{{10, 5 * time.Second}}, 0, 10, maxLead},
	} {
		t.Run(c.name, func(t *testing.T) {
			var p pacer
			for _, d := range c.drains {
				p.applied(d.n, d.d)
			}
			for range 100 {
				p.prepared(c.prep)
			}
			got := p.lead(c.n)
			if diff := got - c.want; diff < -c.want/20 || diff > c.want/20 {
				t.Fatalf("lead(%d) = %v, want %v", c.n, got, c.want)
			}
		})
	}
}
