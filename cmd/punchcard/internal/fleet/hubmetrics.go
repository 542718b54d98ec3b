package fleet

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Ingest is where the hub's ingest spent an Ack's time over the measured
// load, from its counters (hub/ingest Stats, punchcard_ingest_*): the
// mean queue wait of a message and the mean of each stage per drain (one
// writer transaction for a drain's batches, one for its heartbeats). All
// zero with a hub that does not count them.
type Ingest struct {
	Drains                           float64 // drains per second
	MessagesPerDrain                 float64
	QueueWait                        time.Duration // per message
	Prepare, Handoff, Apply, Publish time.Duration // per drain
}

func (i Ingest) String() string {
	r := func(d time.Duration) time.Duration { return d.Round(10 * time.Microsecond) }
	return fmt.Sprintf("%.0f drains/s of %.1f messages; per message queue wait %s; per drain prepare %s, wait for the writer %s, transactions %s, Acks %s",
		i.Drains, i.MessagesPerDrain, r(i.QueueWait), r(i.Prepare), r(i.Handoff), r(i.Apply), r(i.Publish))
}

// Memory is the hub's Go memory (its /metrics: go_memstats_*), bytes.
type Memory struct{ HeapInuse, StackInuse int64 }

// hubMetrics is the hub's /metrics address, logged at start.
type hubMetrics struct {
	mu   sync.Mutex
	addr string
}

func (m *hubMetrics) set(addr string) {
	m.mu.Lock()
	m.addr = addr
	m.mu.Unlock()
}

// scrape reads the hub's metrics: name value lines, a labelled one
// under its name with its labels (name{le="0.1"}).
func (m *hubMetrics) scrape(ctx context.Context) (map[string]float64, error) {
	m.mu.Lock()
	addr := m.addr
	m.mu.Unlock()
	if addr == "" {
		return nil, fmt.Errorf("fleet: the hub logged no metrics address")
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if l == "" || l[0] == '#' {
			continue
		}
		// name value, or name{labels} value (kept whole as the key).
		i := strings.LastIndexByte(l, ' ')
		if i < 0 {
			continue
		}
		name, v := l[:i], l[i+1:]
		if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
			out[name] = f
		}
	}
	return out, sc.Err()
}

func (m *hubMetrics) memory(ctx context.Context) Memory {
	v, err := m.scrape(ctx)
	if err != nil {
		return Memory{}
	}
	return Memory{HeapInuse: int64(v["go_memstats_heap_inuse_bytes"]), StackInuse: int64(v["go_memstats_stack_inuse_bytes"])}
}

// ingestBetween is Ingest from two scrapes elapsed apart.
func ingestBetween(a, b map[string]float64, elapsed time.Duration) Ingest {
	d := func(n string) float64 { return b[n] - a[n] }
	drains := d("punchcard_ingest_drains_total")
	if drains <= 0 {
		return Ingest{}
	}
	per := func(n string, by float64) time.Duration {
		if by <= 0 {
			return 0
		}
		return time.Duration(d(n) / by * float64(time.Second))
	}
	msgs := d("punchcard_ingest_messages_total")
	return Ingest{Drains: drains / elapsed.Seconds(), MessagesPerDrain: msgs / drains,
		QueueWait: per("punchcard_ingest_queue_wait_seconds_total", msgs),
		Prepare:   per("punchcard_ingest_prepare_seconds_total", drains), Handoff: per("punchcard_ingest_handoff_seconds_total", drains),
		Apply: per("punchcard_ingest_apply_seconds_total", drains), Publish: per("punchcard_ingest_publish_seconds_total", drains)}
}
