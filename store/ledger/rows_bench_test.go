package ledger_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/ledger"
	"github.com/punchcard/punchcard/store/ledger/ledgertest"
)

// fleetTills, fleetCustomers and fleetDrain shape BenchmarkRowsIngest like
// the hub at fleet scale: many tills, each message one sale of 1-3 facts,
// about 14 messages applied per transaction (ingest's drains at 10,000
// tills).
const (
	fleetTills     = 1000
	fleetCustomers = 2000
	fleetDrain     = 14
)

// fleetSale is one till sale as the fleet's simulated tills make it: an
// automatic promotion always, a multi-use code on every other sale, a
// customer on every other sale (then also an earn with an expiry, and the
// order goes into the purchase history). Seqs from seq on; it returns the
// facts and the next seq.
func fleetSale(till int, seq uint64, i int) ([]protocol.Redemption, uint64) {
	ag := protocol.AgentID(fmt.Sprintf("till-%04d", till))
	base := protocol.Redemption{Tenant: tenant, Store: protocol.StoreID(fmt.Sprintf("store-%03d", till/10)), TxnID: fmt.Sprintf("txn-%d", seq),
		OrderID: fmt.Sprintf("o-%d", seq), Currency: "EUR", OrderTot: 42_00 + int64(i%977), HLC: ledger.HLCFromTime(t0), Offline: true, Snapshot: 7}
	if i%2 == 0 {
		base.Customer = protocol.CustomerID(fmt.Sprintf("cust-%d", (i*7919)%fleetCustomers))
	}
	var rs []protocol.Redemption
	add := func(mod func(*protocol.Redemption)) {
		r := base
		r.ID = protocol.RedemptionID{Agent: ag, Seq: seq}
		seq++
		mod(&r)
		rs = append(rs, r)
	}
	add(func(r *protocol.Redemption) { r.Kind, r.Campaign, r.Discount = protocol.KindRedeem, "loyalty", 150 })
	if i%4 < 2 {
		add(func(r *protocol.Redemption) {
			r.Kind, r.Campaign, r.Code, r.Discount = protocol.KindRedeem, "loyalty", "MULTI", 300
		})
	}
	if base.Customer != "" {
		add(func(r *protocol.Redemption) {
			r.Kind, r.Campaign, r.Points, r.Expires = protocol.KindEarn, "loyalty", 42, t0.AddDate(1, 0, 0).UnixMicro()
		})
	}
	return rs, seq
}

// BenchmarkRowsIngest is the ledger's side of ingest at fleet scale: one
// op is one till message (fleetSale: 1-3 facts, 2 on average), applied
// fleetDrain messages of distinct tills per ApplyBatches (one
// transaction). It reports CPU per message and per fact (the process's
// CPU around ApplyBatches only) and the pages each transaction wrote to
// the WAL per message (a passive checkpoint after every transaction, out
// of the timing, lets the next one start the WAL afresh).
// PUNCHCARD_ROWS_DUMP=1 also logs every table's and index's entries and
// bytes per fact (dbstat).
func BenchmarkRowsIngest(b *testing.B) { benchRowsIngest(b, false) }

// BenchmarkRowsDrain is BenchmarkRowsIngest through ingest's path
// (PUNCHCARD_BENCH_DRAIN sets the messages per drain, 14 by default; the
// fleet's drains at 10,000 tills hold ~2):
// PrepareDrain, ApplyDrainStates (on the drains' own connection, with
// the pipelined commit) and SyncDrains per transaction, the CPU of all
// three. With -benchmem it gives what the hub's ledger allocates per
// message at fleet load (issue 10: its garbage collections delayed Acks).
func BenchmarkRowsDrain(b *testing.B) { benchRowsIngest(b, true) }

func benchRowsIngest(b *testing.B, drain bool) {
	ctx := context.Background()
	fleetDrain := fleetDrain
	if v, err := strconv.Atoi(os.Getenv("PUNCHCARD_BENCH_DRAIN")); err == nil && v > 0 {
		fleetDrain = v // messages per transaction: ~2 in the fleet's drains at 10,000 tills
	}
	l, _ := MustOpen(b)
	db := l.DB()
	seqs := make([]uint64, fleetTills)
	for i := range seqs {
		seqs[i] = 1
	}
	var cpu time.Duration
	var facts, frames int64
	b.ResetTimer()
	for done := 0; done < b.N; done += fleetDrain {
		bs, nf := fleetBatches(seqs, done, min(fleetDrain, b.N-done), nil)
		facts += nf
		c0 := ledgertest.CPUTime()
		var res []ledger.Result
		var err error
		if drain {
			res, err = applyDrain(ctx, l, bs)
		} else {
			res, err = l.ApplyBatches(ctx, bs)
		}
		cpu += ledgertest.CPUTime() - c0
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil || len(r.Conflicts) > 0 {
				b.Fatalf("result %+v", r)
			}
		}
		if countPages {
			b.StopTimer()
			if dumpPages && done+fleetDrain >= b.N && b.N >= 100 {
				walPagesByTree(b, db) // the last drain's
			}
			frames += walFrames(b, db)
			b.StartTimer()
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/msg")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(facts), "cpu-ns/fact")
	b.ReportMetric(float64(frames)/float64(b.N), "pages/msg")
	b.ReportMetric(float64(facts)/float64(b.N), "facts/msg")
	if os.Getenv("PUNCHCARD_ROWS_DUMP") != "" && b.N >= 100 {
		dumpRows(b, db, facts)
	}
}

// applyDrain applies bs as ingest does a drain without heartbeats.
func applyDrain(ctx context.Context, l *ledger.Ledger, bs []ledger.Batch) ([]ledger.Result, error) {
	p, err := l.PrepareDrain(ctx, bs, nil)
	if err != nil {
		return nil, err
	}
	res, _, err := l.ApplyDrainStates(ctx, p, nil)
	if err != nil {
		return nil, err
	}
	return res, l.SyncDrains(ctx)
}

// BenchmarkRowsOnline is the online writer's basket alone: one op is one
// basket (an automatic promotion, a multi-use code and an earn for one
// of 2,000 customers) through RedeemBasket, from 16 goroutines at once as
// the hub's 16 clients, so that the writer commits them in groups. It
// reports the process's CPU per basket (the writer's and the callers').
func BenchmarkRowsOnline(b *testing.B) { rowsOnline(b, true) }

// BenchmarkOnlineWriterRaw is BenchmarkRowsOnline with the writer's hot
// statements through database/sql (raw=false) and as driver statements
// on its connection (raw=true, the default; Ledger.SetWriterRaw),
// alternated in rounds (PUNCHCARD_BENCH_ROUNDS, default 3), each on a
// fresh ledger.
func BenchmarkOnlineWriterRaw(b *testing.B) {
	rounds := 3
	if n, err := strconv.Atoi(os.Getenv("PUNCHCARD_BENCH_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	for r := range rounds {
		for _, raw := range []bool{false, true} {
			b.Run(fmt.Sprintf("round=%d/raw=%v", r, raw), func(b *testing.B) { rowsOnline(b, raw) })
		}
	}
}

func rowsOnline(b *testing.B, raw bool) {
	ctx := context.Background()
	l, err := ledger.Open(ctx, filepath.Join(b.TempDir(), "hub.db"), ledger.Options{Facts: MustFacts(b)})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	l.SetWriterRaw(raw)
	const clients = 16
	var next atomic.Int64
	errs := make(chan error, clients)
	b.ResetTimer()
	c0 := ledgertest.CPUTime()
	for range clients {
		go func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					errs <- nil
					return
				}
				cust := protocol.CustomerID(fmt.Sprintf("c%d", (i*7919)%fleetCustomers))
				txn := fmt.Sprint("web-", i)
				basket := ledger.Basket{Tenant: tenant, Redemptions: []protocol.Redemption{
					{Kind: protocol.KindRedeem, Store: "web", TxnID: txn, Campaign: "loyalty", Customer: cust, Currency: "EUR", Discount: 100, OrderTot: 42_00},
					{Kind: protocol.KindRedeem, Store: "web", TxnID: txn, Campaign: "loyalty", Code: "MULTI", Customer: cust, Currency: "EUR", Discount: 100, OrderTot: 42_00},
					{Kind: protocol.KindEarn, Store: "web", TxnID: txn, Campaign: "loyalty", Customer: cust, Currency: "EUR", Points: 42, OrderTot: 42_00},
				}}
				if _, _, err := l.RedeemBasket(ctx, basket); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for range clients {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	cpu := ledgertest.CPUTime() - c0
	b.StopTimer()
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/basket")
	if os.Getenv("PUNCHCARD_ROWS_DUMP") != "" && b.N >= 100 {
		dumpRows(b, l.DB(), int64(b.N))
	}
}

// countPages is false with PUNCHCARD_ROWS_PAGES=0: no checkpoint after
// each transaction (pages/op then reads 0), so that SQLite's automatic
// checkpoint runs inside the commits, as in the hub.
var countPages = os.Getenv("PUNCHCARD_ROWS_PAGES") != "0"

// dumpPages (PUNCHCARD_ROWS_DUMP=2) prints which B-trees the last
// drain's WAL frames belong to.
var dumpPages = os.Getenv("PUNCHCARD_ROWS_DUMP") == "2"

// walPagesByTree prints, per table and index, how many of the WAL's
// frames (pages written since the last checkpoint) belong to it: the
// frame headers' page numbers, mapped by dbstat.
func walPagesByTree(tb testing.TB, db *sql.DB) {
	tb.Helper()
	printTrees(walFramesByTree(tb, db), 1, "pages")
}

// walFramesByTree counts the WAL's frames per table and index.
func walFramesByTree(tb testing.TB, db *sql.DB) map[string]int {
	tb.Helper()
	var file string
	if err := db.QueryRow(`SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&file); err != nil {
		tb.Fatal(err)
	}
	wal, err := os.ReadFile(file + "-wal")
	if err != nil {
		tb.Fatal(err)
	}
	const pageSize = 4096
	owner := map[int64]string{}
	rows, err := db.Query(`SELECT name, pageno FROM dbstat`)
	if err != nil {
		tb.Logf("dbstat: %v", err)
		return nil
	}
	for rows.Next() {
		var name string
		var pg int64
		if err := rows.Scan(&name, &pg); err != nil {
			tb.Fatal(err)
		}
		owner[pg] = name
	}
	rows.Close()
	count := map[string]int{}
	for off := 32; off+24+pageSize <= len(wal); off += 24 + pageSize {
		pg := int64(wal[off])<<24 | int64(wal[off+1])<<16 | int64(wal[off+2])<<8 | int64(wal[off+3])
		if pg == 0 || string(wal[off+8:off+16]) != string(wal[16:24]) {
			break // a frame of an earlier generation of the WAL (salts differ)
		}
		n := owner[pg]
		if n == "" {
			n = "(free or new)"
		}
		count[n]++
	}
	return count
}

// printTrees prints count per tree, most first, each divided by per
// (the units: baskets, say), and their total.
func printTrees(count map[string]int, per float64, unit string) {
	names := make([]string, 0, len(count))
	total := 0
	for n, c := range count {
		names = append(names, n)
		total += c
	}
	sort.Slice(names, func(i, j int) bool { return count[names[i]] > count[names[j]] })
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "%-40s %7.2f %s\n", n, float64(count[n])/per, unit)
	}
	fmt.Fprintf(os.Stderr, "%-40s %7.2f %s (the WAL's frames)\n", "TOTAL", float64(total)/per, unit)
}

// walFrames is the number of frames (pages) in the WAL, checkpointed
// after: with no reader in the way the next writer restarts the WAL, so
// called after every transaction it counts each one's pages.
func walFrames(tb testing.TB, db *sql.DB) int64 {
	tb.Helper()
	var busy, log, done int64
	if err := db.QueryRow(`PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &log, &done); err != nil {
		tb.Fatal(err)
	}
	return log
}

// dumpRows logs, per table and index of the ledger, its entries and
// bytes per unit (a fact, a basket): the rows and index entries the
// write path adds (dbstat).
func dumpRows(tb testing.TB, db *sql.DB, units int64) {
	tb.Helper()
	rows, err := db.Query(`SELECT name, SUM(ncell), SUM(payload), SUM(pgsize) FROM dbstat WHERE pagetype = 'leaf' GROUP BY name`)
	if err != nil {
		tb.Logf("dbstat: %v", err)
		return
	}
	defer rows.Close()
	type line struct {
		name                 string
		cells, payload, size int64
	}
	var ls []line
	for rows.Next() {
		var x line
		if err := rows.Scan(&x.name, &x.cells, &x.payload, &x.size); err != nil {
			tb.Fatal(err)
		}
		if x.cells > 0 {
			ls = append(ls, x)
		}
	}
	sort.Slice(ls, func(i, j int) bool { return ls[i].payload > ls[j].payload })
	var tc, tp int64
	for _, x := range ls {
		tc += x.cells
		tp += x.payload
		fmt.Fprintf(os.Stderr, "%-40s %8.2f entries/unit %8.1f payload B/unit %8.1f leaf B/unit\n", x.name, float64(x.cells)/float64(units),
			float64(x.payload)/float64(units), float64(x.size)/float64(units))
	}
	fmt.Fprintf(os.Stderr, "%-40s %8.2f entries/unit %8.1f payload B/unit\n", "TOTAL", float64(tc)/float64(units), float64(tp)/float64(units))
}

// fleetBatches is a fleet drain of n messages, from message done on: a
// batch a message, each the next sale of a till (fleetSale, advancing
// seqs). customer, when not nil, names the customer of message i's facts
// that have one. It returns the batches and how many facts they hold.
func fleetBatches(seqs []uint64, done, n int, customer func(i int) protocol.CustomerID) ([]ledger.Batch, int64) {
	bs := make([]ledger.Batch, n)
	var facts int64
	for k := range n {
		i := done + k
		till := (i * 131) % fleetTills
		var rs []protocol.Redemption
		rs, seqs[till] = fleetSale(till, seqs[till], i)
		if customer != nil {
			for j := range rs {
				if rs[j].Customer != "" {
					rs[j].Customer = customer(i)
				}
			}
		}
		facts += int64(len(rs))
		bs[k] = ledger.Batch{Tenant: tenant, Agent: rs[0].ID.Agent, Redemptions: rs}
	}
	return bs, facts
}
