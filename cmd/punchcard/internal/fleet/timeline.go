package fleet

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The per-second timeline of the measured load (BenchOptions.Timeline,
// FLEET_TIMELINE=1): what the tills saw (acks and their p99 by the
// second the Ack came) beside what the hub and this process did in the
// same second, so that a latency spike can be put next to its cause:
// the hub's ingest stages and writer transactions (its /metrics), its
// CPU and GC, the ledger's WAL size, the machine's CPU pressure, the
// tills' allowance grants and snapshot fetches, and the simulator's own
// CPU and GC.

// tick is one sample, taken every second of the measured load.
type tick struct {
	at        time.Time
	hub       map[string]float64 // the hub's /metrics (nil: the scrape failed)
	hubCPU    time.Duration
	selfCPU   time.Duration
	selfGC    uint64  // GC cycles of this process
	selfGCCPU float64 // CPU seconds this process spent in GC
	selfHeap  uint64  // this process's heap objects, bytes
	counts    counts
	wal       int64  // the hub database's WAL file, bytes
	psi       uint64 // /proc/pressure/cpu "some" total, µs
}

// counts are the fleet's cumulative counters the timeline shows.
type counts struct{ messages, heartbeats, grants, fetches, republish int64 }

// counts sums them without the latencies (Stats sorts those).
func (f *Fleet) counts() counts {
	var c counts
	for _, t := range f.tills {
		t.mu.Lock()
		c.messages += t.messages
		c.heartbeats += t.heartbeats
		c.grants += t.grants
		c.fetches += t.fetches + t.notMod
		c.republish += t.republish
		t.mu.Unlock()
	}
	return c
}

// timeline samples every second until stop.
type timeline struct {
	f     *Fleet
	hp    *hubProc
	dir   string
	stopc chan struct{}
	wg    sync.WaitGroup
	ticks []tick
}

func startTimeline(ctx context.Context, f *Fleet, hp *hubProc, dir string) *timeline {
	tl := &timeline{f: f, hp: hp, dir: dir, stopc: make(chan struct{})}
	tl.wg.Add(1)
	go func() {
		defer tl.wg.Done()
		next := time.Now()
		for {
			tl.ticks = append(tl.ticks, tl.sample(ctx))
			next = next.Add(time.Second)
			t := time.NewTimer(time.Until(next))
			select {
			case <-tl.stopc:
				t.Stop()
				return
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	}()
	return tl
}

var selfGCMetrics = []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}, {Name: "/cpu/classes/gc/total:cpu-seconds"}, {Name: "/memory/classes/heap/objects:bytes"}}

func (tl *timeline) sample(ctx context.Context) tick {
	k := tick{at: time.Now()}
	k.hub, _ = tl.hp.metrics.scrape(ctx)
	k.hubCPU, _ = tl.hp.cpu()
	k.selfCPU, _ = procCPU(os.Getpid())
	ms := slices.Clone(selfGCMetrics)
	metrics.Read(ms)
	if ms[0].Value.Kind() == metrics.KindUint64 {
		k.selfGC = ms[0].Value.Uint64()
	}
	if ms[1].Value.Kind() == metrics.KindFloat64 {
		k.selfGCCPU = ms[1].Value.Float64()
	}
	if ms[2].Value.Kind() == metrics.KindUint64 {
		k.selfHeap = ms[2].Value.Uint64()
	}
	k.counts = tl.f.counts()
	if st, err := os.Stat(filepath.Join(tl.dir, "hub.db-wal")); err == nil {
		k.wal = st.Size()
	}
	k.psi = cpuPressure()
	return k
}

// cpuPressure is /proc/pressure/cpu's "some" total (µs), 0 without it.
func cpuPressure() uint64 {
	b, err := os.ReadFile("/proc/pressure/cpu")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, "some ") {
			continue
		}
		for _, f := range strings.Fields(l) {
			if v, ok := strings.CutPrefix(f, "total="); ok {
				n, _ := strconv.ParseUint(v, 10, 64)
				return n
			}
		}
	}
	return 0
}

func (tl *timeline) stop() []tick {
	close(tl.stopc)
	tl.wg.Wait()
	return tl.ticks
}

// writeTimeline prints one line per second between ticks: acks seen by
// the tills in that second and their p99; the hub's ingest (drains,
// messages per drain, queue wait per message, writer transaction per
// drain, its slowest bucket, slow transactions), the write gate (wait,
// holds of 100 ms or more), the hub's CPU, GC cycles and pause, heap
// and goroutines; the WAL's size; CPU pressure; the tills' grants,
// snapshot fetches, messages, heartbeats and re-sends; and the
// simulator's CPU and GC.
func writeTimeline(w io.Writer, ticks []tick, acks []AckSample, start, changedAt time.Time) {
	if len(ticks) < 2 {
		return
	}
	type sec struct{ lat []time.Duration }
	secs := make([]sec, len(ticks))
	for _, a := range acks {
		i := int(a.At.Sub(ticks[0].at) / time.Second)
		if i >= 0 && i < len(secs) {
			secs[i].lat = append(secs[i].lat, a.Latency)
		}
	}
	fmt.Fprintf(w, "timeline (per second; change at %+.1fs): t acks p99ms | hub: ack-p99<=ms cpu drains msg/dr qwait-ms apply-ms/dr apply>=100ms gatewait-ms gate>=100ms gc gcpause-ms heapMB gor | walMB ckpt-pages ckpt-ms psi%% | grants fetches msgs beats resent | sim: cpu gc gccpu heapMB\n",
		changedAt.Sub(start).Seconds())
	for i := 1; i < len(ticks); i++ {
		a, b := ticks[i-1], ticks[i]
		el := b.at.Sub(a.at).Seconds()
		d := func(n string) float64 {
			if a.hub == nil || b.hub == nil {
				return 0
			}
			return b.hub[n] - a.hub[n]
		}
		g := func(n string) float64 {
			if b.hub == nil {
				return 0
			}
			return b.hub[n]
		}
		l := secs[i-1].lat
		slices.Sort(l)
		p99 := 0.0
		if len(l) > 0 {
			p99 = float64(l[min(len(l)-1, len(l)*99/100)]) / float64(time.Millisecond)
		}
		drains := d("punchcard_ingest_drains_total")
		per := func(n string, by float64) float64 {
			if by <= 0 {
				return 0
			}
			return d(n) / by * 1000
		}
		msgs := d("punchcard_ingest_messages_total")
		slow := d("punchcard_ingest_slow_applies_total")
		fmt.Fprintf(w, "%5.0f %5d %6.0f | %5.0f %4.2f %4.0f %4.1f %6.1f %6.2f %3.0f %6.1f %3.0f %2.0f %5.1f %4.0f %5.0f | %5.1f %5.0f %4.0f %3.0f | %4d %4d %5d %5d %4d | %4.2f %2d %4.2f %5.0f\n",
			b.at.Sub(start).Seconds(), len(l), p99, bucketP99(a.hub, b.hub, "punchcard_ingest_ack_seconds"),
			(b.hubCPU-a.hubCPU).Seconds()/el, drains, ratio(msgs, drains), per("punchcard_ingest_queue_wait_seconds_total", msgs),
			per("punchcard_ingest_apply_seconds_total", drains), slow,
			d("punchcard_ledger_gate_wait_seconds_total")*1000, d("punchcard_ledger_gate_slow_total"),
			d("go_gc_duration_seconds_count"), d("go_gc_duration_seconds_sum")*1000, g("go_memstats_heap_alloc_bytes")/(1<<20), g("go_goroutines"),
			float64(b.wal)/(1<<20), d("punchcard_db_checkpoint_frames_total"), d("punchcard_db_checkpoint_seconds_total")*1000, float64(b.psi-a.psi)/1e4/el,
			b.counts.grants-a.counts.grants, b.counts.fetches-a.counts.fetches, b.counts.messages-a.counts.messages,
			b.counts.heartbeats-a.counts.heartbeats, b.counts.republish-a.counts.republish,
			(b.selfCPU-a.selfCPU).Seconds()/el, b.selfGC-a.selfGC, b.selfGCCPU-a.selfGCCPU, float64(b.selfHeap)/(1<<20))
	}
}

func ratio(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return a / b
}

// writeHistograms prints, from the first and last tick, how the hub's
// writer transactions and write-gate holds spread over their buckets
// during the load (punchcard_ingest_apply_seconds,
// punchcard_ledger_gate_hold_seconds; absent from an older hub).
func writeHistograms(w io.Writer, ticks []tick) {
	if len(ticks) < 2 || ticks[0].hub == nil || ticks[len(ticks)-1].hub == nil {
		return
	}
	a, b := ticks[0].hub, ticks[len(ticks)-1].hub
	for _, name := range []string{"punchcard_ingest_ack_seconds", "punchcard_ingest_apply_seconds", "punchcard_ledger_gate_hold_seconds"} {
		type bucket struct {
			le string
			n  float64
		}
		var bs []bucket
		for k, v := range b {
			le, ok := strings.CutPrefix(k, name+`_bucket{le="`)
			if !ok {
				continue
			}
			bs = append(bs, bucket{strings.TrimSuffix(le, `"}`), v - a[k]})
		}
		if len(bs) == 0 {
			continue
		}
		f := func(s string) float64 {
			if s == "+Inf" {
				return 1e300
			}
			x, _ := strconv.ParseFloat(s, 64)
			return x
		}
		slices.SortFunc(bs, func(x, y bucket) int { return cmp.Compare(f(x.le), f(y.le)) })
		fmt.Fprintf(w, "%s (cumulative, over the load):", name)
		for _, x := range bs {
			fmt.Fprintf(w, " <=%s:%.0f", x.le, x.n)
		}
		fmt.Fprintln(w)
	}
}

// bucketP99 is the bound (ms) of the bucket holding the p99 of a hub
// histogram's observations between two scrapes: 0 without any, -1 past
// the last bound.
func bucketP99(a, b map[string]float64, name string) float64 {
	if a == nil || b == nil {
		return 0
	}
	total := b[name+"_count"] - a[name+"_count"]
	if total <= 0 {
		return 0
	}
	best := math.Inf(1)
	for k, v := range b {
		le, ok := strings.CutPrefix(k, name+`_bucket{le="`)
		if !ok {
			continue
		}
		x, err := strconv.ParseFloat(strings.TrimSuffix(le, `"}`), 64)
		if err != nil || math.IsInf(x, 1) {
			continue
		}
		if v-a[k] >= 0.99*total && x < best {
			best = x
		}
	}
	if math.IsInf(best, 1) {
		return -1
	}
	return best * 1000
}
