package hub_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/punchcard/punchcard/hub"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store"
	"github.com/punchcard/punchcard/store/ledger"
)

// The online-redeem benchmark (make bench-online): a web shop's baskets
// over real HTTP on loopback against a hub whose ledger is pre-filled to
// 0, 100k and 1M rows, at 1, 16 and 64 concurrent clients. Each basket
// names a multi-use code (a campaign with a per-customer limit and a
// budget) and a points burn for one of 100,000 customers, and gets two
// automatic promotions: four ledger rows per basket. Two baselines run in
// the same process, over the same kind of HTTP (net/http on loopback), one
// row per request into a table of their own in a SQLite file with
// synchronous=FULL: "fsync" commits each row in its own transaction,
// "group" hands it to one writer goroutine that commits what is queued
// together (the best this hardware does for a durable one-row write).
//
// Metrics: baskets/commit (the online writer's mean group), redeems/s (or rows/s), p50-ms and p99-ms per request, errors
// (any non-200; the benchmark fails on one), and cpu-us/op: the process's
// CPU time (user and system, server and client together) per request,
// which other load on the machine disturbs less than the rate does, and
// written-KB/op: what the process wrote a request (the WAL's frames and
// the checkpoints' copies, besides the sockets), which other load moves
// far less than the rate (the writer's groups and how many commits land
// between two checkpoint rounds still depend on timing).
// Every redeem run is preceded by the group-commit baseline at the same
// clients and the same count (group-rows/s), and reports its rate over
// that baseline's (x-group): a ratio taken under the same load.
//
// PUNCHCARD_BENCH_ROWS (e.g. "0,100000,1000000", as make bench-online
// sets it) replaces the pre-fill sizes, by default 0 and 100k.
//
// PUNCHCARD_BENCH_CUT, SQL run on the ledger after its pre-fill (e.g. a
// trigger that drops the journal's inserts: "CREATE TRIGGER cut BEFORE
// INSERT ON ledger_journal BEGIN SELECT RAISE(IGNORE); END"), measures
// what some trees cost the whole request; a ledger so cut answers wrongly.
//
// PUNCHCARD_BENCH_STMTS=1 prints, after each redeem run, the writers'
// statements with their executions and wall time per basket
// (dumpStatements; BenchmarkCatchUp too, per fact); the accounting costs
// the writer a clock read each.
//
// PUNCHCARD_BENCH_CUSTOMERS (100,000) is the number of customers the
// baskets burn points of, consecutive baskets' customers far apart in key
// order, as a shop's arrive. PUNCHCARD_BENCH_SCATTER=0 gives basket i
// customer i mod the customers instead: neighbours (c1, c2, ...), whose
// rows share pages, and the shape of the figures before session 27
// (1,000 customers in that order).

var benchCustomers = func() int {
	if n, err := strconv.Atoi(os.Getenv("PUNCHCARD_BENCH_CUSTOMERS")); err == nil && n > 0 {
		return n
	}
	return 100_000
}()

type benchKey struct {
	rows int
	sync store.Sync
}

// benchHub is one pre-filled hub, shared by every run of a -count.
type benchHub struct {
	h         *hub.Hub
	url       string
	secret    string // a support key of tenant "shop"
	customers int
}

var (
	benchMu   sync.Mutex
	benchHubs = map[benchKey]*benchHub{}
)

func benchRows() []int {
	v := os.Getenv("PUNCHCARD_BENCH_ROWS")
	if v == "" {
		return []int{0, 100_000} // make bench-online adds 1M
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err == nil && n >= 0 {
			out = append(out, n)
		}
	}
	return out
}

var benchClient = &http.Client{Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256}}

func benchDo(tb testing.TB, method, url, secret string, body any, hdr ...string) (int, []byte) {
	tb.Helper()
	var r io.Reader
	if body != nil {
		j, err := json.Marshal(body)
		if err != nil {
			tb.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+secret)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := benchClient.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

func mustDo(tb testing.TB, want int, method, url, secret string, body any) []byte {
	tb.Helper()
	st, b := benchDo(tb, method, url, secret, body)
	if st != want {
		tb.Fatalf("%s %s: %d %s", method, url, st, b)
	}
	return b
}

// openBenchHub starts a hub (synchronous=FULL, as shipped) and fills its
// ledger with rows journal entries by direct SQL: online redemptions of
// the campaign the benchmark redeems, by the hub's own sender, with
// distinct transaction ids, spread over the customers, and the hub's
// watermark past them. Balances are set from the filled journal, so
// Verify stays clean (it is checked).
func openBenchHub(b testing.TB, rows int) *benchHub {
	return openBenchHubSync(b, rows, store.SyncFull)
}

func openBenchHubSync(b testing.TB, rows int, sync store.Sync) *benchHub {
	benchMu.Lock()
	defer benchMu.Unlock()
	if bh := benchHubs[benchKey{rows, sync}]; bh != nil {
		return bh
	}
	dir, err := benchTempDir("punchcard-bench-online-")
	if err != nil {
		b.Fatal(err)
	}
	bh := startBenchHub(context.Background(), b, dir, rows, benchCustomers, sync)
	benchHubs[benchKey{rows, sync}] = bh
	return bh
}

// startBenchHub opens the benchmark's hub in dir, serving until ctx is
// done, with its tenant, campaigns and customers, and its ledger
// pre-filled to rows rows and verified, with customers customers.
func startBenchHub(ctx context.Context, b testing.TB, dir string, rows, customers int, sync store.Sync) *benchHub {
	h, err := hub.Open(context.Background(), hub.Options{
		DataDir: dir, HTTPAddr: "127.0.0.1:0", MQTTAddr: "127.0.0.1:0", MetricsAddr: "-",
		BootstrapKey: bootstrapKey, RateLimit: 1 << 30, Sync: sync,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	go h.Run(ctx) // the benchmarks': until the process ends
	url := h.HTTPURL()
	for i := 0; ; i++ { // Run starts serving asynchronously
		if c, err := net.Dial("tcp", h.HTTPAddr()); err == nil {
			c.Close()
			break
		}
		if i > 500 {
			b.Fatal("the hub does not serve")
		}
		time.Sleep(10 * time.Millisecond)
	}
	var tr struct {
		AdminSecret string `json:"admin_secret"`
	}
	json.Unmarshal(mustDo(b, 201, "POST", url+"/v1/tenants", bootstrapKey, map[string]any{"id": "shop", "name": "Shop", "currency": "EUR", "admin_key_name": "first"}), &tr)
	var k struct {
		Secret string `json:"secret"`
	}
	json.Unmarshal(mustDo(b, 201, "POST", url+"/v1/tenants/shop/keys", tr.AdminSecret, map[string]any{"role": "marketer"}), &k)
	mk := k.Secret
	json.Unmarshal(mustDo(b, 201, "POST", url+"/v1/tenants/shop/keys", tr.AdminSecret, map[string]any{"role": "support"}), &k)
	sup := k.Secret
	camp := func(id, trigger, reward, limits string) {
		var rw, lm any
		json.Unmarshal([]byte(reward), &rw)
		doc := map[string]any{"schema": 1, "id": id, "tenant": "shop", "status": "active", "currency": "EUR", "reward": rw, "trigger": trigger}
		if limits != "" {
			json.Unmarshal([]byte(limits), &lm)
			doc["limits"] = lm
		}
		mustDo(b, 201, "POST", url+"/v1/tenants/shop/campaigns", mk, doc)
	}
	camp("promo", "code", `{"kind":"amount_off","amount":500}`, `{"max_discount":1000000000000,"per_customer":1000000000}`)
	camp("auto-a", "auto", `{"kind":"amount_off","amount":100}`, "")
	camp("auto-b", "auto", `{"kind":"percent_off","percent_bp":200}`, "")
	camp("club", "auto", `{"kind":"points","points":{"earn":[{"id":"spend","on":"spend","per_amount":100,"milli_points":1000}],"burn_points":100,"burn_value":100}}`, "")
	mustDo(b, 201, "POST", url+"/v1/tenants/shop/campaigns/promo/codes/import", mk, map[string]any{"codes": []string{"PROMO"}, "uses": -1})
	for i := range min(customers, 1000) {
		mustDo(b, 201, "POST", url+"/v1/tenants/shop/customers", sup, map[string]any{"id": fmt.Sprintf("c%d", i)})
	}
	if customers > 1000 { // the rest directly: the API takes ~1 ms each
		if _, err := h.Ledger.DB().Exec(`WITH RECURSIVE s(i) AS (SELECT 1000 UNION ALL SELECT i + 1 FROM s WHERE i < ?1 - 1)
			INSERT INTO catalog_customers (tenant, id, created_at, updated_at) SELECT 'shop', 'c' || i, ?2, ?2 FROM s`, customers, time.Now().UnixMicro()); err != nil {
			b.Fatal(err)
		}
	}
	start := time.Now()
	if err := fillLedger(h.Ledger.DB(), rows, customers); err != nil {
		b.Fatal(err)
	}
	b.Logf("pre-filled %d ledger rows in %s", rows, time.Since(start).Round(time.Millisecond))
	if rep, err := h.Ledger.Verify(context.Background()); err != nil || !rep.OK() {
		b.Fatalf("the pre-filled ledger does not verify: %v, %d differences, the first: %+v", err, len(rep.Diffs), rep.Diffs[:min(len(rep.Diffs), 3)])
	}
	if cut := os.Getenv("PUNCHCARD_BENCH_CUT"); cut != "" {
		// A measurement of what some trees cost the whole request (the
		// ledger package's treeCuts do it for the writer alone): a ledger
		// so cut answers wrongly, never a configuration.
		if _, err := h.Ledger.DB().Exec(cut); err != nil {
			b.Fatalf("PUNCHCARD_BENCH_CUT: %v", err)
		}
		b.Logf("cut: %s", cut)
	}
	return &benchHub{h: h, url: url, secret: sup, customers: customers}
}

// fillLedger writes rows journal entries in one transaction with a
// recursive CTE, then gives every customer points to burn (an earn entry
// and its points lot each) and sets the balances the entries imply, so
// that the ledger verifies (openBenchHub checks it).
func fillLedger(db *sql.DB, rows, customers int) error {
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	now := time.Now().UnixMicro()
	hlc := uint64(time.Now().UnixMilli()) << 16
	stmts := []string{
		`WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ?1)
		INSERT INTO ledger_journal (tenant, entry, agent, seq, store, txn_id, campaign, code, customer, order_id, currency,
			discount, order_total, hlc, sign, psign, received_at)
		SELECT 'shop', 'redeem', ?2, i, 'web', 'fill-' || i, 'promo', 'PROMO', 'c' || (i % ?3), 'o-' || i, 'EUR', 500, 10000, ?4, 1, 1, ?5 FROM s`,
		`WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < ?3 - 1)
		INSERT INTO ledger_journal (tenant, entry, agent, seq, store, txn_id, campaign, customer, currency, points, hlc, sign, psign, received_at)
		SELECT 'shop', 'earn', ?2, ?1 + 1 + i, 'web', 'earn-' || i, 'club', 'c' || i, 'EUR', 1000000000, ?4, 1, 1, ?5 FROM s`,
		`INSERT INTO ledger_agents (tenant, agent, watermark, seen_at) VALUES ('shop', ?2, ?1 + ?3, ?5)`,
		`INSERT INTO ledger_campaigns (tenant, campaign, count, discount, order_value)
		SELECT tenant, campaign, COUNT(*), SUM(discount), SUM(order_total) FROM ledger_journal GROUP BY tenant, campaign`,
		`INSERT INTO ledger_codes (tenant, code, uses) SELECT tenant, code, COUNT(*) FROM ledger_journal WHERE entry = 'redeem' GROUP BY tenant, code`,
		`INSERT INTO ledger_customer_campaigns (tenant, customer, campaign, count)
		SELECT tenant, customer, campaign, COUNT(*) FROM ledger_journal GROUP BY tenant, customer, campaign`,
		`INSERT INTO ledger_customers (tenant, customer, points) SELECT tenant, customer, SUM(points) FROM ledger_journal WHERE entry = 'earn' GROUP BY tenant, customer`,
		// Each earn is a lot, as a real earn's is (lots.go addLot): the
		// burns take from it, not from a debt lot, and the balances equal
		// the lots (Verify).
		`INSERT INTO ledger_points_lots (tenant, customer, campaign, amount, remaining, earned_at, expires_at, src_agent, src_seq, debt)
		SELECT tenant, customer, campaign, points, points, ?5, 0, agent, seq, 0 FROM ledger_journal WHERE entry = 'earn'`,
	}
	for _, q := range stmts {
		if rows == 0 && strings.Contains(q, "'redeem', ?2") {
			continue
		}
		if _, err := tx.ExecContext(ctx, q, rows, string(protocol.HubSender), customers, int64(hlc), now); err != nil {
			return fmt.Errorf("fill: %w\n%s", err, q)
		}
	}
	return tx.Commit()
}

// load runs n requests from clients goroutines with do, and reports
// requests/s under unit, p50 and p99 latency, and errors.
func load(b *testing.B, clients int, unit string, do func(i int) error) {
	b.ResetTimer()
	r := measure(clients, b.N, do)
	b.StopTimer()
	b.ReportMetric(r.cpuPerOp, "cpu-us/op")
	if r.writtenPerOp > 0 {
		b.ReportMetric(r.writtenPerOp/1024, "written-KB/op")
	}
	b.ReportMetric(r.rate, unit+"/s")
	b.ReportMetric(r.p50, "p50-ms")
	b.ReportMetric(r.p99, "p99-ms")
	b.ReportMetric(float64(r.errs), "errors")
	if r.errs > 0 {
		b.Errorf("%d errors, the first: %v", r.errs, r.firstErr)
	}
}

// measured is one load's figures.
type measured struct {
	rate, p50, p99, cpuPerOp float64
	// writtenPerOp is the bytes the process wrote a request (WAL frames,
	// checkpoints, sockets): other load moves it far less than the rate.
	writtenPerOp float64
	errs         int64
	firstErr     any
}

// measure runs n requests from clients goroutines with do.
func measure(clients, n int, do func(i int) error) measured {
	lat := make([]time.Duration, n)
	var next, errs atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	cpu0, w0 := cpuTime(), written()
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t0 := time.Now()
				if err := do(i); err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	cpu, w := cpuTime()-cpu0, written()-w0
	slices.Sort(lat)
	return measured{
		rate: float64(n) / el.Seconds(), cpuPerOp: float64(cpu.Microseconds()) / float64(n), writtenPerOp: float64(w) / float64(n),
		p50: float64(lat[n/2].Microseconds()) / 1000, p99: float64(lat[min(n-1, n*99/100)].Microseconds()) / 1000,
		errs: errs.Load(), firstErr: firstErr.Load(),
	}
}

// cpuTime is the process's CPU time so far, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// written is the bytes the process has written so far (/proc/self/io's
// wchar: every write and pwrite, to files and sockets), 0 where there is
// no /proc.
func written() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "wchar: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

var benchRun atomic.Int64 // makes idempotency keys unique across runs

func BenchmarkOnlineRedeem(b *testing.B) {
	base := openBaselines(b)
	for _, rows := range benchRows() {
		bh := openBenchHub(b, rows)
		for _, clients := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("rows=%d/clients=%d/redeem", rows, clients), func(b *testing.B) {
				benchRedeem(b, base, bh, clients)
			})
		}
	}
	for _, clients := range []int{1, 16, 64} {
		for _, mode := range []string{"fsync", "group"} {
			b.Run(fmt.Sprintf("baseline=%s/clients=%d", mode, clients), func(b *testing.B) {
				load(b, clients, "rows", base.do(mode))
			})
		}
	}
}

// benchRedeem is one run of baskets against bh from clients clients,
// preceded by the group-commit baseline at the same clients and count.
func benchRedeem(b *testing.B, base *baselines, bh *benchHub, clients int) {
	run := benchRun.Add(1)
	// The group-commit baseline at the same clients right
	// before, so that the ratio is taken under the same load.
	gb := measure(clients, b.N, base.do("group"))
	if gb.errs > 0 {
		b.Fatalf("baseline: %v", gb.firstErr)
	}
	defer func() {
		if r := b.Elapsed(); r > 0 {
			b.ReportMetric(gb.rate, "group-rows/s")
			b.ReportMetric(float64(b.N)/r.Seconds()/gb.rate, "x-group")
		}
	}()
	g0, b0 := bh.h.Ledger.WriterStats()
	busy0, commit0, sync0, syncs0 := bh.h.Ledger.WriterTimes()
	defer func() {
		g1, b1 := bh.h.Ledger.WriterStats()
		if g1 > g0 {
			b.ReportMetric(float64(b1-b0)/float64(g1-g0), "baskets/commit")
		}
		// The writer's share of the run's wall time, and the share of
		// that spent in COMMIT: a writer busy ~100 % of the time is the
		// bottleneck.
		busy1, commit1, sync1, syncs1 := bh.h.Ledger.WriterTimes()
		if el := b.Elapsed(); el > 0 && busy1 > busy0 {
			b.ReportMetric(100*float64(busy1-busy0)/float64(el), "writer-busy-%")
			b.ReportMetric(100*float64(commit1-commit0)/float64(busy1-busy0), "commit-%")
		}
		// The same per basket: the serial path's wall time, which must
		// stay under 1/rate (500 µs at 2,000 redeems/s), and its COMMIT.
		if n := b1 - b0; n > 0 && busy1 > busy0 {
			b.ReportMetric(float64((busy1-busy0).Microseconds())/float64(n), "writer-us/basket")
			b.ReportMetric(float64((commit1-commit0).Microseconds())/float64(n), "commit-us/basket")
		}
		if syncs1 > syncs0 {
			b.ReportMetric(float64((sync1-sync0).Microseconds())/1000/float64(syncs1-syncs0), "ms/fsync")
		}
	}()
	stop := profileRedeems(b)
	_, s0 := bh.h.Ledger.WriterStats()
	counting := os.Getenv("PUNCHCARD_BENCH_STMTS") != "" && b.N >= 100
	bh.h.Ledger.CountStatements(counting)
	load(b, clients, "redeems", func(i int) error { return bh.redeem(b, run, i) })
	stop()
	if counting {
		bh.h.Ledger.CountStatements(false)
		_, s1 := bh.h.Ledger.WriterStats()
		dumpStatements(bh.h.Ledger.StatementCounts(), s1-s0, "basket")
	}
	if os.Getenv("PUNCHCARD_BENCH_TREES") != "" && b.N >= 100 {
		_, b1 := bh.h.Ledger.WriterStats()
		dumpTrees(b, bh.h.Ledger.DB(), b1)
	}
}

// dumpStatements (PUNCHCARD_BENCH_STMTS=1) prints what the writers'
// statements cost a run of n units (baskets, facts): executions and wall
// time of each per unit, the costliest first (ledger.CountStatements).
// The online writer's time beyond their sum (writer-us/basket) is its Go
// work and its waits for a core.
func dumpStatements(counts []ledger.StatementCount, n int64, unit string) {
	if n <= 0 {
		return
	}
	var runs int64
	var d time.Duration
	for _, c := range counts {
		runs += c.Count
		d += c.Time
	}
	per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 / float64(n) }
	fmt.Printf("%9s %12s %12s  statement (%d %ss)\n", "a "+unit, "µs a "+unit, "µs each", n, unit)
	for _, c := range counts {
		q := c.SQL
		if len(q) > 110 {
			q = q[:110] + "…"
		}
		fmt.Printf("%9.2f %12.1f %12.1f  %s\n", float64(c.Count)/float64(n), per(c.Time), float64(c.Time.Nanoseconds())/1e3/float64(c.Count), q)
	}
	fmt.Printf("%9.2f %12.1f %12s  in all\n", float64(runs)/float64(n), per(d), "")
}

// profileRedeems (PUNCHCARD_BENCH_PROFILE=file) writes a CPU profile of
// the redeems (or the catch-up's drain) alone to file (the run's name
// appended when several runs write one), leaving out the pre-fill and
// the baseline that -cpuprofile would count. It returns the function
// that stops it.
func profileRedeems(b *testing.B) (stop func()) {
	path := os.Getenv("PUNCHCARD_BENCH_PROFILE")
	if path == "" {
		return func() {}
	}
	if _, err := os.Stat(path); err == nil {
		path += "." + strings.NewReplacer("/", "_", "=", "").Replace(b.Name())
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			b.Error(err)
		}
	}
}

// dumpTrees (PUNCHCARD_BENCH_TREES=1) logs, per table and index of the
// hub's database, its entries per basket the writer recorded so far and
// their mean payload: which B-trees an online basket writes, and how
// much. The pre-fill counts too (at rows=0, one earn and one lot per
// customer, and the catalog's setup): run enough baskets.
func dumpTrees(tb testing.TB, db *sql.DB, baskets int64) {
	tb.Helper()
	rows, err := db.Query(`SELECT name, SUM(ncell), SUM(payload), COUNT(*) FROM dbstat WHERE pagetype = 'leaf'
		GROUP BY name HAVING SUM(ncell) > 0 ORDER BY 2 DESC, 1`)
	if err != nil {
		tb.Logf("dbstat: %v", err)
		return
	}
	defer rows.Close()
	var sb strings.Builder
	fmt.Fprintf(&sb, "entries per basket after %d baskets:\n", baskets)
	for rows.Next() {
		var name string
		var cells, payload, leaves int64
		if err := rows.Scan(&name, &cells, &payload, &leaves); err != nil {
			tb.Fatal(err)
		}
		fmt.Fprintf(&sb, "%-40s %8.2f entries/basket %6d B/entry %7d leaf pages\n", name, float64(cells)/float64(max(baskets, 1)), payload/cells, leaves)
	}
	tb.Log(sb.String())
}

// customer is basket i's customer: i*7919 mod the customers, so that
// consecutive baskets' are far apart in key order (7919 is prime), or i
// mod the customers with PUNCHCARD_BENCH_SCATTER=0.
func (bh *benchHub) customer(i int) int {
	if os.Getenv("PUNCHCARD_BENCH_SCATTER") == "0" {
		return i % bh.customers
	}
	return i * 7919 % bh.customers
}

// redeem posts the benchmark's basket i of run run: the code PROMO and
// a burn of 100 points of customer bh.customer(i).
func (bh *benchHub) redeem(tb testing.TB, run int64, i int) error {
	body := map[string]any{
		"store":    map[string]any{"id": "web", "time_zone": "Europe/Berlin"},
		"customer": fmt.Sprintf("c%d", bh.customer(i)),
		"order": map[string]any{"id": fmt.Sprintf("o-%d-%d", run, i), "currency": "EUR", "lines": []any{
			map[string]any{"sku": "shirt", "quantity": 2, "unit_price": 25_00},
			map[string]any{"sku": "socks", "quantity": 1, "unit_price": 50_00}}},
		"redeemables": []any{map[string]any{"code": "PROMO"}, map[string]any{"campaign": "club", "amount": 100}},
	}
	st, out := benchDo(tb, "POST", bh.url+"/v1/tenants/shop/redeem", bh.secret, body, "Idempotency-Key", fmt.Sprintf("b-%d-%d", run, i))
	if st != 200 {
		return fmt.Errorf("%d %s", st, out)
	}
	return nil
}

// TestBenchLedgerVerifies checks the benchmark's pre-filled ledger: it
// verifies (every balance equals its lots), and the baskets' burns take
// from the earns' lots, not from a debt lot, and leave it verifying.
func TestBenchLedgerVerifies(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a hub with 1,000 customers")
	}
	ctx, cancel := context.WithCancel(context.Background())
	bh := startBenchHub(ctx, t, t.TempDir(), 2000, 1000, store.SyncFull)
	t.Cleanup(func() { cancel(); bh.h.Close() })
	for i := range 20 {
		if err := bh.redeem(t, 0, i); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := bh.h.Ledger.Verify(ctx)
	if err != nil || !rep.OK() {
		t.Fatalf("after the baskets: %v, %d differences, the first: %+v", err, len(rep.Diffs), rep.Diffs[:min(len(rep.Diffs), 3)])
	}
	var debts, taken int
	db := bh.h.Ledger.DB()
	if err := db.QueryRow(`SELECT COUNT(*) FROM ledger_points_lots WHERE debt = 1`).Scan(&debts); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT COUNT(*) FROM ledger_points_lots WHERE debt = 0 AND remaining < amount`).Scan(&taken); err != nil {
		t.Fatal(err)
	}
	if debts != 0 || taken != 20 {
		t.Errorf("debt lots %d, earns' lots burned from %d; want 0 and 20", debts, taken)
	}
}

// do is one request to the baseline mode ("fsync" or "group").
func (bl *baselines) do(mode string) func(int) error {
	return func(int) error {
		res, err := benchClient.Post(bl.url+"/"+mode, "text/plain", strings.NewReader("x"))
		if err != nil {
			return err
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			return fmt.Errorf("baseline %s: %d", mode, res.StatusCode)
		}
		return nil
	}
}

// baselines serves the two one-row baselines over net/http on loopback.
type baselines struct {
	url string
	db  *sql.DB
	q   chan chan error
}

var (
	baseOnce sync.Once
	base     *baselines
)

func openBaselines(b *testing.B) *baselines {
	baseOnce.Do(func() {
		dir, err := benchTempDir("punchcard-bench-baseline-")
		if err != nil {
			b.Fatal(err)
		}
		db, err := store.Open(context.Background(), filepath.Join(dir, "base.db"), store.Options{Sync: store.SyncFull})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := db.Exec(`CREATE TABLE rows (id INTEGER PRIMARY KEY, v TEXT NOT NULL, at INTEGER NOT NULL)`); err != nil {
			b.Fatal(err)
		}
		bl := &baselines{db: db, q: make(chan chan error, 4096)}
		go bl.writer()
		mux := http.NewServeMux()
		mux.HandleFunc("POST /fsync", func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			if _, err := db.ExecContext(r.Context(), `INSERT INTO rows (v, at) VALUES ('x', ?)`, time.Now().UnixMicro()); err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			w.Write([]byte("ok"))
		})
		mux.HandleFunc("POST /group", func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			done := make(chan error, 1)
			bl.q <- done
			if err := <-done; err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			w.Write([]byte("ok"))
		})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		go http.Serve(ln, mux)
		bl.url = "http://" + ln.Addr().String()
		base = bl
	})
	return base
}

// writer is the group-commit baseline: one row per queued request, one
// commit for all that are queued, each answered after the commit.
func (bl *baselines) writer() {
	for first := range bl.q {
		group := []chan error{first}
	fill:
		for len(group) < 256 {
			select {
			case d := <-bl.q:
				group = append(group, d)
			default:
				break fill
			}
		}
		err := func() error {
			tx, err := bl.db.Begin()
			if err != nil {
				return err
			}
			defer tx.Rollback()
			now := time.Now().UnixMicro()
			for range group {
				if _, err := tx.Exec(`INSERT INTO rows (v, at) VALUES ('x', ?)`, now); err != nil {
					return err
				}
			}
			return tx.Commit()
		}()
		for _, d := range group {
			d <- err
		}
	}
}

// BenchmarkOnlineRedeemCommit answers whether the online writer waits on
// its commits' fsyncs: the same baskets at 16 clients against one hub,
// its writer committing serially (each group's fsync inside its commit,
// the writer waiting for it: the code before the pipelined commit) and
// pipelined (the syncer fsyncs while the writer records the next group),
// alternated in rounds (PUNCHCARD_BENCH_ROUNDS, default 3) so that both
// see the same load; then a hub at synchronous=NORMAL (no fsync at all:
// the upper bound of what taking the fsync off the path can gain) in the
// same rounds (make bench-online-commit; PUNCHCARD_BENCH_NOSYNC=off
// leaves it out; PUNCHCARD_BENCH_MODES, e.g. "serial", runs only the
// modes it names).
func BenchmarkOnlineRedeemCommit(b *testing.B) {
	base := openBaselines(b)
	rows := benchRows()[0]
	rounds := 3
	if n, err := strconv.Atoi(os.Getenv("PUNCHCARD_BENCH_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	modes := []string{"serial", "pipelined", "nosync"}
	if os.Getenv("PUNCHCARD_BENCH_NOSYNC") == "off" { // no second pre-filled hub
		modes = modes[:2]
	}
	if m := os.Getenv("PUNCHCARD_BENCH_MODES"); m != "" { // e.g. "serial"
		// sqldb, only when named: serial, with the writer's hot
		// statements through database/sql (Ledger.SetWriterRaw(false)).
		all := append(slices.Clone(modes), "sqldb")
		modes = slices.DeleteFunc(strings.Split(m, ","), func(s string) bool { return !slices.Contains(all, s) })
	}
	full := openBenchHubSync(b, rows, store.SyncFull)
	var normal *benchHub
	if slices.Contains(modes, "nosync") {
		normal = openBenchHubSync(b, rows, store.SyncNormal)
	}
	for r := range rounds {
		for _, mode := range modes {
			bh := full
			if mode == "nosync" {
				bh = normal
			}
			b.Run(fmt.Sprintf("rows=%d/clients=16/round=%d/commit=%s", rows, r, mode), func(b *testing.B) {
				bh.h.Ledger.SetSerialCommit(mode == "serial" || mode == "sqldb")
				bh.h.Ledger.SetWriterRaw(mode != "sqldb")
				benchRedeem(b, base, bh, 16)
			})
		}
	}
	full.h.Ledger.SetSerialCommit(false)
	full.h.Ledger.SetWriterRaw(true)
}
