package fleet

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestBucketP99(t *testing.T) {
	h := func(le1, le5, inf float64) map[string]float64 {
		return map[string]float64{`x_bucket{le="0.001"}`: le1, `x_bucket{le="0.005"}`: le5, `x_bucket{le="+Inf"}`: inf, "x_count": inf}
	}
	for _, c := range []struct {
		a, b map[string]float64
		want float64
	}{
		{h(0, 0, 0), h(100, 100, 100), 1},   // all within 1 ms
		{h(0, 0, 0), h(98, 100, 100), 5},    // the 99th within 5 ms
		{h(0, 0, 0), h(90, 98, 100), -1},    // past the last bound
		{h(10, 10, 10), h(10, 10, 10), 0},   // nothing in between
		{h(50, 50, 50), h(50, 150, 150), 5}, // only the difference counts
		{nil, h(1, 1, 1), 0},
	} {
		if got := bucketP99(c.a, c.b, "x"); got != c.want {
			t.Errorf("bucketP99(%v, %v) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}

// writeTimeline prints one line per second, the tills' acks of that
// second and the hub's counters' differences.
func TestWriteTimeline(t *testing.T) {
	t0 := time.Now()
	ticks := []tick{
		{at: t0, hub: map[string]float64{"punchcard_ingest_drains_total": 10, "punchcard_ingest_messages_total": 20}},
		{at: t0.Add(time.Second), hub: map[string]float64{"punchcard_ingest_drains_total": 110, "punchcard_ingest_messages_total": 320}, counts: counts{grants: 7}},
		{at: t0.Add(2 * time.Second), hub: nil},
	}
	acks := []AckSample{{At: t0.Add(100 * time.Millisecond), Latency: 5 * time.Millisecond}, {At: t0.Add(200 * time.Millisecond), Latency: 250 * time.Millisecond},
		{At: t0.Add(1500 * time.Millisecond), Latency: time.Millisecond}}
	var b bytes.Buffer
	writeTimeline(&b, ticks, acks, t0, t0.Add(time.Second))
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want a header and 2:\n%s", len(lines), b.String())
	}
	f := strings.Fields(lines[1])
	if f[0] != "1" || f[1] != "2" || f[2] != "250" || f[6] != "100" || f[7] != "3.0" {
		t.Errorf("first second: %q, want t 1, 2 acks, p99 250 ms, 100 drains of 3.0 messages", lines[1])
	}
	if !strings.Contains(lines[1], "|    7 ") {
		t.Errorf("first second: %q, want 7 grants", lines[1])
	}
	if f := strings.Fields(lines[2]); f[1] != "1" || f[2] != "1" {
		t.Errorf("second second: %q, want 1 ack of 1 ms (and no hub scrape)", lines[2])
	}
}
