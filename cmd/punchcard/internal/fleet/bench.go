package fleet

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/punchcard/punchcard/hub"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store"
)

// BenchOptions configure Bench, the fleet benchmark: a hub binary in a
// process of its own (so its memory is its own), Tills simulated tills in
// this process.
type BenchOptions struct {
	HubBin string // the cmd/hub binary
	Dir    string // data directory and hub.log; must be empty or new
	Tills  int    // default 10,000
	Stores int    // default Tills/10
	// Budget is the automatic campaign's max_redemptions; default
	// AutoBudget (ample: no top-ups in a run). Under 500,000, tills are
	// granted the minimum first and all top up after their 4th sale.
	Budget   int64
	Rate     float64       // redemptions per till per second; default 0.1
	Warmup   time.Duration // load before latencies count; default 20 s
	Duration time.Duration // measured load, the campaign change in its middle; default 60 s
	// Settle bounds the wait for every till to see (and fetch) the new
	// rules after the change; default 2 min. Missing it is reported, not
	// an error.
	Settle time.Duration
	Fetch  FetchMode // default FetchAgent
	// VerifyEvery is Options.VerifyEvery: default DefaultBenchVerifyEvery
	// (the simulated tills share the hub's cores; a real till verifies
	// every down message on its own).
	VerifyEvery int
	// GCPercent is the simulating process's GOGC while Bench runs
	// (debug.SetGCPercent; restored after): default
	// DefaultBenchGCPercent. The tills' garbage is collected on the
	// hub's cores, where a real till's is not; memory is not what the
	// benchmark measures of the simulator. Negative: leave it.
	GCPercent int
	// WindowGC keeps the simulating process's GC on (at GCPercent)
	// through the measured load. By default it is collected once before
	// the warm-up (runtime.GC) and then off (debug.SetGCPercent(-1))
	// under a soft memory limit of WindowMemLimit, restored after: one
	// of its GC cycles at 10,000 tills took about a core for a second
	// on the hub's 2 cores, and its assists held back the tills' receive
	// path, which showed as a spike of the acks' latency that no real
	// till's GC causes (FLEET_WINDOW_GC=1 for the old behaviour).
	WindowGC bool
	// WindowMemLimit is the simulating process's soft memory limit
	// while its GC is off; default DefaultWindowMemLimit. Reaching it
	// runs the GC again.
	WindowMemLimit int64
	Log            io.Writer // progress lines; nil for none
	// Timeline samples the hub and this process every second of the
	// measured load and writes a line per second to Log at the end
	// (timeline.go; FLEET_TIMELINE=1). Each sample scrapes the hub's
	// /metrics, which costs the hub a little CPU.
	Timeline bool
}

// DefaultBenchGCPercent is BenchOptions.GCPercent's default.
const DefaultBenchGCPercent = 400

// DefaultWindowMemLimit is BenchOptions.WindowMemLimit's default.
const DefaultWindowMemLimit = 4 << 30

// DefaultBenchVerifyEvery is BenchOptions.VerifyEvery's default: each
// till verifies the signature of its first down message, and the fleet
// every 16th of the others.
const DefaultBenchVerifyEvery = 16

// Report is what Bench measured.
type Report struct {
	Tills          int
	Rate           float64 // redemptions per till per second asked
	Connect        time.Duration
	Stats          Stats
	Redemptions    float64 // facts acknowledged per second over the measured load
	RSSIdle        int64   // hub VmRSS before any till connected, bytes (the baseline)
	RSSConnected   int64   // hub VmRSS with every till connected and synced, before the load
	RSSMax, RSSEnd int64   // the largest VmRSS sampled during the load, and at its end
	HWM            int64   // VmHWM at the end
	HubCPU         float64 // hub CPU seconds per second of load (cores)
	FleetCPU       float64 // the same for this process, the simulated tills
	Load           string  // /proc/loadavg at the end: how busy the machine was
	Version        uint64  // the catalog version of the change
	// Announce and Fetch are from the change (the API's answer) to the
	// last till seeing it announced / applying it; P50 the median till.
	// Zero with Missing* > 0: some tills never got there within Settle.
	AnnounceAll, FetchAll, AnnounceP50, FetchP50 time.Duration
	MissingAnnounce, MissingFetch                int
	// AckP99Quiet is the ack p99 over the acks that came before the
	// change or more than 10 s after it (the tills' snapshot fetches
	// excluded); Timeline is the ack p99 (ms) of each 5 s of the load.
	AckP99Quiet time.Duration
	Timeline    []float64
	// MemIdle and MemConnected are the hub's Go heap and goroutine stacks
	// in use before any till connected and with every till connected
	// (what each connection costs the broker, by kind); Ingest is where
	// ingest spent an Ack's time over the measured load.
	MemIdle, MemConnected Memory
	Ingest                Ingest
}

func (r Report) String() string {
	mb := func(b int64) float64 { return float64(b) / (1 << 20) }
	s := r.Stats
	return fmt.Sprintf(`tills %d at %.3g redemptions/s each; connected and synced in %s
load: %.0f redemptions/s acked (%d facts in %d messages, %d republished), %d heartbeats, %d announcements, %d snapshot fetches (%d not modified), %d allowance grants
ack latency: p50 %s  p99 %s  max %s; p99 away from the change %s; p99 per 5 s (ms) %.0f
hub RSS: idle %.0f MB, connected %.0f MB (%.1f KB per till), max under load %.0f MB, end %.0f MB, peak (VmHWM) %.0f MB
CPU: hub %.2f cores, simulated tills %.2f cores; load average %s
campaign change (version %d): every till announced after %s (median %s, %d missing), fetched after %s (median %s, %d missing)
checks: %d pending, %d down messages refused (%d signatures verified), %d acks of unsent seqs, %d errors, %d HTTP requests retried (429, 5xx), %d allowance top-ups failed after retries, %d connects retried (server unavailable)
hub Go memory per connected till: heap %.1f KB, goroutine stacks %.1f KB (connected: heap %.0f MB, stacks %.0f MB)
ingest: %s`,
		r.Tills, r.Rate, r.Connect.Round(time.Millisecond),
		r.Redemptions, s.Sent, s.Messages, s.Republish, s.Heartbeats, s.Announces, s.Fetches, s.NotMod, s.Grants,
		s.AckP50.Round(10*time.Microsecond), s.AckP99.Round(10*time.Microsecond), s.AckMax.Round(time.Millisecond), r.AckP99Quiet.Round(10*time.Microsecond), r.Timeline,
		mb(r.RSSIdle), mb(r.RSSConnected), float64(r.RSSConnected-r.RSSIdle)/1024/float64(max(r.Tills, 1)), mb(r.RSSMax), mb(r.RSSEnd), mb(r.HWM), r.HubCPU, r.FleetCPU, r.Load,
		r.Version, r.AnnounceAll.Round(time.Millisecond), r.AnnounceP50.Round(time.Millisecond), r.MissingAnnounce,
		r.FetchAll.Round(time.Millisecond), r.FetchP50.Round(time.Millisecond), r.MissingFetch,
		s.Pending, s.Rejected, s.Verified, s.BadAcks, s.Errors, s.HTTPRetries, s.GrantFailures, s.ConnectRetries,
		float64(r.MemConnected.HeapInuse-r.MemIdle.HeapInuse)/1024/float64(max(r.Tills, 1)),
		float64(r.MemConnected.StackInuse-r.MemIdle.StackInuse)/1024/float64(max(r.Tills, 1)),
		mb(r.MemConnected.HeapInuse), mb(r.MemConnected.StackInuse), r.Ingest)
}

const benchTenant protocol.TenantID = "chain"

// Bench provisions a hub database in opts.Dir in-process (catalog writes
// with synchronous=NORMAL, for speed), starts opts.HubBin on it (ports
// picked by the hub itself, read from its log), connects the fleet, runs
// the load with a campaign change in the middle and measures.
func Bench(ctx context.Context, o BenchOptions) (Report, error) {
	if o.Tills <= 0 {
		o.Tills = 10_000
	}
	if o.Stores <= 0 {
		o.Stores = max(1, o.Tills/10)
	}
	if o.Rate <= 0 {
		o.Rate = 0.1
	}
	if o.Warmup <= 0 {
		o.Warmup = 20 * time.Second
	}
	if o.Duration <= 0 {
		o.Duration = 60 * time.Second
	}
	if o.Settle <= 0 {
		o.Settle = 2 * time.Minute
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.VerifyEvery <= 0 {
		o.VerifyEvery = DefaultBenchVerifyEvery
	}
	if o.GCPercent == 0 {
		o.GCPercent = DefaultBenchGCPercent
	}
	if o.GCPercent > 0 {
		defer debug.SetGCPercent(debug.SetGCPercent(o.GCPercent))
	}
	r := Report{Tills: o.Tills, Rate: o.Rate}
	const key = "fleet-bench-bootstrap-key-0123456789"
	say := func(format string, args ...any) { fmt.Fprintf(o.Log, "fleet: "+format+"\n", args...) }

	t0 := time.Now()
	setup, err := provisionDir(ctx, o.Dir, key, o.Tills, o.Stores, o.Budget)
	if err != nil {
		return r, err
	}
	say("provisioned %d tills in %s", o.Tills, time.Since(t0).Round(time.Millisecond))

	hp, err := startHub(ctx, o.HubBin, o.Dir, key)
	if err != nil {
		return r, err
	}
	defer hp.stop()
	r.RSSIdle, _ = hp.rss()
	r.MemIdle = hp.metrics.memory(ctx)

	f, err := New(Options{BrokerURL: hp.broker, HubURL: hp.http, HubKey: setup.HubKey, Tills: setup.Tills, Fetch: o.Fetch, VerifyEvery: o.VerifyEvery})
	if err != nil {
		return r, err
	}
	defer f.Close()
	t0 = time.Now()
	if err := f.Start(ctx); err != nil {
		return r, fmt.Errorf("fleet: start: %w; the hub's log ends:\n%s", err, tail(hp.logPath, 2048))
	}
	r.Connect = time.Since(t0)
	r.RSSConnected, _ = hp.rss()
	r.MemConnected = hp.metrics.memory(ctx)
	say("%d tills connected, synced and holding allowances in %s; hub RSS %d MB", o.Tills, r.Connect.Round(time.Millisecond), r.RSSConnected>>20)

	// The simulator's collection comes before the warm-up, not at its end:
	// a forced collection of the connected fleet's heap slowed the tills'
	// own receipt of Acks for about a second and showed as a 0.7-1 s p99
	// in the measured load's first 5 s, whatever the hub.
	if !o.WindowGC {
		runtime.GC()
		if o.WindowMemLimit <= 0 {
			o.WindowMemLimit = DefaultWindowMemLimit
		}
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(o.WindowMemLimit))
		defer debug.SetGCPercent(debug.SetGCPercent(-1))
	}
	f.SetRate(o.Rate)
	if err := sleepCtx(ctx, o.Warmup); err != nil {
		return r, err
	}
	f.ResetLatency()
	before := f.Stats()
	cpu0, _ := hp.cpu()
	self0, _ := procCPU(os.Getpid())
	m0, _ := hp.metrics.scrape(ctx)
	sampler := hp.sample()
	start := time.Now()
	var tl *timeline
	if o.Timeline {
		tl = startTimeline(ctx, f, hp, o.Dir)
	}
	if err := sleepCtx(ctx, o.Duration/2); err != nil {
		return r, err
	}
	changedAt, v, err := changeCampaign(ctx, hp.http, key, 700, o.Budget)
	if err != nil {
		return r, err
	}
	r.Version = v
	say("campaign changed: version %d", v)
	settle, cancel := context.WithTimeout(ctx, o.Settle)
	reached, werr := f.WaitReached(settle, v, o.Fetch != FetchNone)
	cancel()
	if werr != nil && ctx.Err() != nil {
		return r, ctx.Err()
	}
	r.MissingAnnounce, r.MissingFetch = o.Tills-reached.Announced, o.Tills-reached.Fetched
	lag := func(t time.Time) time.Duration {
		if t.IsZero() {
			return 0
		}
		return t.Sub(changedAt)
	}
	r.AnnounceAll, r.FetchAll, r.AnnounceP50, r.FetchP50 = lag(reached.LastAnnounced), lag(reached.LastFetched), lag(reached.P50Announced), lag(reached.P50Fetched)
	if rest := o.Duration - time.Since(start); rest > 0 {
		if err := sleepCtx(ctx, rest); err != nil {
			return r, err
		}
	}
	elapsed := time.Since(start)
	if m1, err := hp.metrics.scrape(ctx); err == nil && m0 != nil {
		r.Ingest = ingestBetween(m0, m1, elapsed)
	}
	cpu1, _ := hp.cpu()
	self1, _ := procCPU(os.Getpid())
	r.FleetCPU = (self1 - self0).Seconds() / elapsed.Seconds()
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		r.Load = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	r.RSSMax = sampler.stop()
	r.RSSEnd, _ = hp.rss()
	r.HWM, _ = hp.status("VmHWM")
	r.HubCPU = (cpu1 - cpu0).Seconds() / elapsed.Seconds()
	after := f.Stats()
	acks := f.Acks()
	r.AckP99Quiet, r.Timeline = ackTimeline(acks, start, changedAt)
	if tl != nil {
		ticks := tl.stop()
		writeTimeline(o.Log, ticks, acks, start, changedAt)
		writeHistograms(o.Log, ticks)
	}
	r.Redemptions = float64(after.Acked-before.Acked) / elapsed.Seconds()
	f.SetRate(0)
	drain, cancel := context.WithTimeout(ctx, 2*time.Minute)
	derr := f.Drain(drain)
	cancel()
	r.Stats = f.Stats()
	r.Stats.AckP50, r.Stats.AckP99, r.Stats.AckMax = after.AckP50, after.AckP99, after.AckMax
	if derr != nil {
		return r, derr
	}
	return r, nil
}

// tail is the last n bytes of the file at path.
func tail(path string, n int64) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return string(b[max(0, int64(len(b))-n):])
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// provisionDir opens a hub on dir in-process, provisions the chain and
// closes it again.
func provisionDir(ctx context.Context, dir, key string, tills, stores int, budget int64) (Setup, error) {
	h, err := hub.Open(ctx, hub.Options{DataDir: dir, HTTPAddr: "127.0.0.1:0", MQTTAddr: "127.0.0.1:0", MetricsAddr: "-", BootstrapKey: key,
		Sync: store.SyncNormal, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return Setup{}, err
	}
	s, err := Provision(ctx, h.Catalog, benchTenant, tills, stores, budget)
	if cerr := h.Close(); err == nil {
		err = cerr
	}
	return s, err
}

// changeCampaign changes AutoCampaign's percentage over the admin API, as
// a marketer would, and returns when the hub answered and the new version.
func changeCampaign(ctx context.Context, base, key string, bp int, budget int64) (time.Time, uint64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, base+"/v1/tenants/"+string(benchTenant)+"/campaigns/"+string(AutoCampaign),
		bytes.NewReader(AutoCampaignDoc(benchTenant, bp, budget)))
	if err != nil {
		return time.Time{}, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return time.Time{}, 0, err
	}
	defer resp.Body.Close()
	at := time.Now()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return at, 0, fmt.Errorf("fleet: campaign change: %s: %s", resp.Status, bytes.TrimSpace(body))
	}
	var c struct {
		Version uint64 `json:"version"`
	}
	if err := json.Unmarshal(body, &c); err != nil || c.Version == 0 {
		return at, 0, fmt.Errorf("fleet: campaign change: no version in %s", body)
	}
	return at, c.Version, nil
}

// hubProc is the hub binary running on a data directory.
type hubProc struct {
	cmd          *exec.Cmd
	http, broker string
	logPath      string
	done         chan struct{}
	metrics      hubMetrics
}

// startHub starts bin with its listeners on 127.0.0.1 port 0 and reads the
// ports it got from its log.
func startHub(ctx context.Context, bin, dir, key string) (*hubProc, error) {
	logPath := filepath.Join(dir, "hub.log")
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-data", dir, "-http", "127.0.0.1:0", "-mqtt", "127.0.0.1:0", "-metrics", "127.0.0.1:0", "-bootstrap-key", key, "-log-level", "info")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		lf.Close()
		return nil, err
	}
	cmd.Stdout = lf
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, err
	}
	p := &hubProc{cmd: cmd, logPath: logPath, done: make(chan struct{})}
	addrs := make(chan [2]string, 2)
	go func() {
		defer lf.Close()
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			lf.Write(append(line, '\n'))
			var m struct{ Msg, Addr string }
			if json.Unmarshal(line, &m) == nil && m.Addr != "" && strings.Contains(m.Msg, "metrics listening") {
				p.metrics.set(m.Addr)
			} else if m.Addr != "" {
				select {
				case addrs <- [2]string{m.Msg, m.Addr}:
				default:
				}
			}
		}
	}()
	go func() { cmd.Wait(); close(p.done) }()
	deadline := time.NewTimer(2 * time.Minute)
	defer deadline.Stop()
	for p.http == "" || p.broker == "" {
		select {
		case a := <-addrs:
			switch {
			case strings.Contains(a[0], "HTTP API listening"):
				p.http = "http://" + a[1]
			case strings.Contains(a[0], "MQTT broker listening") && !strings.Contains(a[0], "TLS"):
				p.broker = "tcp://" + a[1]
			}
		case <-p.done:
			return nil, fmt.Errorf("fleet: hub exited at start: %v (log %s)", cmd.ProcessState, logPath)
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		case <-deadline.C:
			p.stop()
			return nil, fmt.Errorf("fleet: hub did not log its addresses (log %s)", logPath)
		}
	}
	// Ready when the API answers.
	for {
		resp, err := http.Get(p.http + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("fleet: hub exited at start (log %s)", logPath)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (p *hubProc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// status reads a "kB" field of /proc/<pid>/status, in bytes.
func (p *hubProc) status(field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("fleet: no " + field + " in /proc status")
}

func (p *hubProc) rss() (int64, error) { return p.status("VmRSS") }

// cpu is the hub's user+system CPU time (/proc/<pid>/stat, clock ticks
// of 10 ms).
func (p *hubProc) cpu() (time.Duration, error) { return procCPU(p.cmd.Process.Pid) }

func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0, errors.New("fleet: short /proc stat")
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	k, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+k) * 10 * time.Millisecond, nil
}

// rssSampler samples VmRSS every 250 ms and keeps the largest.
type rssSampler struct {
	stopc chan struct{}
	wg    sync.WaitGroup
	max   int64
}

func (p *hubProc) sample() *rssSampler {
	s := &rssSampler{stopc: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			if v, err := p.rss(); err == nil && v > s.max {
				s.max = v
			}
			select {
			case <-s.stopc:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *rssSampler) stop() int64 {
	close(s.stopc)
	s.wg.Wait()
	return s.max
}

// ackTimeline is the ack p99 away from the change (before it, or 10 s and
// more after it) and the p99 in ms of each 5 s from start.
func ackTimeline(acks []AckSample, start, changedAt time.Time) (quiet time.Duration, timeline []float64) {
	p99 := func(l []time.Duration) time.Duration {
		if len(l) == 0 {
			return 0
		}
		slices.Sort(l)
		return l[min(len(l)-1, len(l)*99/100)]
	}
	var q []time.Duration
	var slots [][]time.Duration
	for _, a := range acks {
		if a.At.Before(changedAt) || a.At.Sub(changedAt) >= 10*time.Second {
			q = append(q, a.Latency)
		}
		i := max(0, int(a.At.Sub(start)/(5*time.Second)))
		for len(slots) <= i {
			slots = append(slots, nil)
		}
		slots[i] = append(slots[i], a.Latency)
	}
	for _, l := range slots {
		timeline = append(timeline, float64(p99(l))/float64(time.Millisecond))
	}
	return p99(q), timeline
}
