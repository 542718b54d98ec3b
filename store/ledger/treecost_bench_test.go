package ledger_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	pledger "github.com/punchcard/punchcard/protocol/ledger"
	"github.com/punchcard/punchcard/store"
	"github.com/punchcard/punchcard/store/catalog"
	"github.com/punchcard/punchcard/store/ledger"
	"github.com/punchcard/punchcard/store/ledger/ledgertest"
)

// treeCuts are the B-trees an online basket writes, each with the
// statement that takes it out of a ledger for BenchmarkOnlineTreeCost:
// an index dropped, or a table's inserts skipped by a trigger (RAISE
// (IGNORE): the statement still runs, its row goes nowhere, so the
// difference is the B-tree writes of the row and its indexes, not the
// statement's binding). A ledger so cut answers wrongly: these are
// measurements, never a configuration.
var treeCuts = []struct{ name, sql string }{
	{"journal_report", `DROP INDEX ledger_journal_report`},
	{"journal_txn", `DROP INDEX ledger_journal_txn`},
	{"journal_customer_id", `DROP INDEX ledger_journal_customer_id`},
	{"journal_id", `DROP INDEX ledger_journal_id`},
	{"events_at", `DROP INDEX ledger_events_at`},
	{"events", `CREATE TRIGGER cut BEFORE INSERT ON ledger_events BEGIN SELECT RAISE(IGNORE); END`},
	{"purchases_report", `DROP INDEX ledger_purchases_report`},
	// A customer's rows are one table's (ledger_024_customer_rows.sql), a
	// kind each.
	{"purchases", `CREATE TRIGGER cut BEFORE INSERT ON ledger_customer_rows WHEN NEW.kind = 4 BEGIN SELECT RAISE(IGNORE); END`},
	{"purchase_stores", `CREATE TRIGGER cut BEFORE INSERT ON ledger_customer_rows WHEN NEW.kind = 2 BEGIN SELECT RAISE(IGNORE); END`},
	{"purchase_days", `CREATE TRIGGER cut BEFORE INSERT ON ledger_customer_rows WHEN NEW.kind = 3 BEGIN SELECT RAISE(IGNORE); END`},
	{"lots_customer_live", `DROP INDEX ledger_points_lots_customer_live`},
	{"points_takes_entry", `DROP INDEX ledger_points_takes_entry`},
	{"points_takes", `CREATE TRIGGER cut BEFORE INSERT ON ledger_points_takes BEGIN SELECT RAISE(IGNORE); END`},
	{"customer_campaigns", `CREATE TRIGGER cut BEFORE INSERT ON ledger_customer_rows WHEN NEW.kind = 1 BEGIN SELECT RAISE(IGNORE); END`},
	{"customer_rows", `CREATE TRIGGER cut BEFORE INSERT ON ledger_customer_rows BEGIN SELECT RAISE(IGNORE); END`},
	{"idempotency_norowid", `DROP TABLE catalog_idempotency; CREATE TABLE catalog_idempotency (tenant TEXT NOT NULL, key TEXT NOT NULL,
		request BLOB NOT NULL, status INTEGER NOT NULL, body BLOB NOT NULL, created_at INTEGER NOT NULL, PRIMARY KEY (tenant, key)) STRICT, WITHOUT ROWID`},
	{"journal", `CREATE TRIGGER cut BEFORE INSERT ON ledger_journal BEGIN SELECT RAISE(IGNORE); END`},
	{"journal_report_narrow", `DROP INDEX ledger_journal_report; CREATE INDEX ledger_journal_report ON ledger_journal (tenant, hlc)`},
	{"purchases_report_narrow", `DROP INDEX ledger_purchases_report; CREATE INDEX ledger_purchases_report ON ledger_customer_rows (tenant, n1) WHERE kind = 4`},
	{"none", ``},
}

// BenchmarkOnlineTreeCost is what each B-tree of an online basket costs
// the writer: the same baskets as BenchmarkRowsOnline's (an automatic
// promotion, a multi-use code and an earn of one of 2,000 customers,
// from 16 goroutines) plus an idempotency record of their answer
// (RedeemOnce, as the hub's redeem), run chunk by chunk alternately
// against two ledgers, one with the tree and one without (treeCuts), in
// the same run. One op is one basket. It reports the process's CPU per
// basket of each (cpu-ns/basket, cut-cpu-ns/basket) and their
// difference (tree-us/basket), each writer's mean group
// (baskets/commit, cut-baskets/commit: a writer making smaller groups
// spends more per basket, whatever its trees), and the WAL frames each
// wrote per basket (frames/basket, cut-frames/basket: both ledgers
// checkpoint outside the timing after every chunk, so the next chunk
// starts the WAL over). PUNCHCARD_ROWS_DUMP=2 prints which B-trees the
// frames of the ledger with every tree belong to, per basket.
//
// Ledgers start empty, and 2,000 customers keep the trees keyed by
// customer small (a group's baskets share their pages):
// PUNCHCARD_BENCH_PREFILL=n starts both from a copy of one ledger with a
// basket for each of n customers, and the baskets are theirs, each with
// a burn of 10 points besides (as the hub benchmark's baskets).
// PUNCHCARD_BENCH_CUTS=a,b runs only the cuts it names; "none" cuts
// nothing (the noise floor). PUNCHCARD_BENCH_CHUNK sets the baskets a
// chunk (default 128; b.N runs one ledger's baskets after the other's).
func BenchmarkOnlineTreeCost(b *testing.B) {
	customers, template := treeCostSetup(b)
	for _, c := range selectedCuts() {
		b.Run(c.name, func(b *testing.B) { benchTreeCut(b, c.sql, customers, template) })
	}
}

// selectedCuts are the treeCuts PUNCHCARD_BENCH_CUTS names, or all.
func selectedCuts() []struct{ name, sql string } {
	only := map[string]bool{}
	for _, n := range strings.Split(os.Getenv("PUNCHCARD_BENCH_CUTS"), ",") {
		if n != "" {
			only[n] = true
		}
	}
	if len(only) == 0 {
		return treeCuts
	}
	var cs []struct{ name, sql string }
	for _, c := range treeCuts {
		if only[c.name] {
			cs = append(cs, c)
		}
	}
	return cs
}

// treeCostSetup reads PUNCHCARD_BENCH_PREFILL: the customers of the
// baskets, and the ledger file to copy ("": start empty).
func treeCostSetup(b *testing.B) (customers int, template string) {
	v := os.Getenv("PUNCHCARD_BENCH_PREFILL")
	if v == "" {
		return fleetCustomers, ""
	}
	customers, err := strconv.Atoi(v)
	if err != nil || customers <= 0 {
		b.Fatalf("PUNCHCARD_BENCH_PREFILL=%q: want a number of customers", v)
	}
	return customers, prefilledLedger(b, customers)
}

// openTreeLedger opens a ledger at path for BenchmarkOnlineTreeCost, with
// the catalog's tables (the idempotency records) and the hub's serial
// commit; its WAL is checkpointed only when the benchmark says so.
func openTreeLedger(tb testing.TB, path string) *ledger.Ledger {
	tb.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, path, store.Options{Migrations: catalog.Migrations})
	if err != nil {
		tb.Fatal(err)
	}
	db.Close()
	l, err := ledger.Open(ctx, path, ledger.Options{Facts: MustFacts(tb), SerialCommit: true,
		Store: store.Options{NoAutoCheckpoint: true}})
	if err != nil {
		tb.Fatal(err)
	}
	return l
}

// prefilledLedger writes one basket for each of customers customers into
// a ledger file and returns its path, checkpointed and closed: each
// ledger of BenchmarkOnlineTreeCost then starts from a copy, so that its
// baskets touch existing customers spread over trees of that size.
func prefilledLedger(b *testing.B, customers int) string {
	path := filepath.Join(b.TempDir(), "template.db")
	l := openTreeLedger(b, path)
	defer l.Close()
	onlineBaskets(b, l, 0, customers, customers, "pre-", false)
	if _, err := l.DB().Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		b.Fatal(err)
	}
	return path
}

// cutLedgers opens the two ledgers of a cut, empty or copies of
// template, and cuts the second.
func cutLedgers(b *testing.B, cut, template string) (with, without *ledger.Ledger) {
	open := func(name string) *ledger.Ledger {
		path := filepath.Join(b.TempDir(), name+".db")
		if template != "" {
			if err := copyFile(template, path); err != nil {
				b.Fatal(err)
			}
		}
		l := openTreeLedger(b, path)
		b.Cleanup(func() { l.Close() })
		return l
	}
	with, without = open("with"), open("without")
	if cut != "" {
		if _, err := without.DB().ExecContext(context.Background(), cut); err != nil {
			b.Fatal(err)
		}
	}
	return with, without
}

func benchTreeCut(b *testing.B, cut string, customers int, template string) {
	with, without := cutLedgers(b, cut, template)
	chunk := 128
	if v, err := strconv.Atoi(os.Getenv("PUNCHCARD_BENCH_CHUNK")); err == nil && v > 0 {
		chunk = v
	}
	var cpu [2]time.Duration
	var frames [2]int64
	byTree := map[string]int{}
	b.ResetTimer()
	for done := 0; done < b.N; done += chunk {
		n := min(chunk, b.N-done)
		for k := range 2 {
			i := k
			if (done/chunk)%2 == 1 { // alternate which goes first
				i = 1 - k
			}
			l := []*ledger.Ledger{with, without}[i]
			c0 := ledgertest.CPUTime()
			onlineBaskets(b, l, done, n, customers, "", template != "")
			cpu[i] += ledgertest.CPUTime() - c0
			b.StopTimer()
			if dumpPages && i == 0 {
				for n, c := range walFramesByTree(b, l.DB()) {
					byTree[n] += c
				}
			}
			frames[i] += walFrames(b, l.DB())
			b.StartTimer()
		}
	}
	b.StopTimer()
	if dumpPages {
		printTrees(byTree, float64(b.N), "frames/basket")
	}
	b.ReportMetric(float64(cpu[0].Nanoseconds())/float64(b.N), "cpu-ns/basket")
	b.ReportMetric(float64(cpu[1].Nanoseconds())/float64(b.N), "cut-cpu-ns/basket")
	b.ReportMetric(float64((cpu[0]-cpu[1]).Microseconds())/float64(b.N), "tree-us/basket")
	b.ReportMetric(float64(frames[0])/float64(b.N), "frames/basket")
	b.ReportMetric(float64(frames[1])/float64(b.N), "cut-frames/basket")
	for i, l := range []*ledger.Ledger{with, without} {
		groups, baskets := l.WriterStats()
		b.ReportMetric(float64(baskets)/float64(groups), []string{"baskets/commit", "cut-baskets/commit"}[i])
	}
}

// onlineBaskets runs baskets from..from+n-1 through l's writer from 16
// goroutines, each under an idempotency key with its answer recorded
// and the key its transaction id (as the hub's redeem),
// basket i for customer (i*7919) % customers; prefix makes the baskets'
// transaction ids and keys differ from another run's. With burn each
// basket also burns 10 points (the hub benchmark's basket burns), which
// its customer must hold before it.
func onlineBaskets(tb testing.TB, l *ledger.Ledger, from, n, customers int, prefix string, burn bool) {
	tb.Helper()
	const clients = 16
	ctx := context.Background()
	var next atomic.Int64
	errs := make(chan error, clients)
	for range clients {
		go func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					errs <- nil
					return
				}
				i += from
				cust := protocol.CustomerID(fmt.Sprintf("c%d", (i*7919)%customers))
				key := fmt.Sprintf("%skey-%08x", prefix, uint32(i)*2654435761) // random, as a client's
				basket := ledger.Basket{Tenant: tenant, Redemptions: []protocol.Redemption{
					{Kind: protocol.KindRedeem, Store: "web", TxnID: key, Campaign: "loyalty", Customer: cust, Currency: "EUR", Discount: 100, OrderTot: 42_00},
					{Kind: protocol.KindRedeem, Store: "web", TxnID: key, Campaign: "loyalty", Code: "MULTI", Customer: cust, Currency: "EUR", Discount: 100, OrderTot: 42_00},
					{Kind: protocol.KindEarn, Store: "web", TxnID: key, Campaign: "loyalty", Customer: cust, Currency: "EUR", Points: 42, OrderTot: 42_00},
				}}
				if burn {
					basket.Redemptions = append(basket.Redemptions, protocol.Redemption{Kind: protocol.KindBurn, Store: "web", TxnID: key,
						Campaign: "loyalty", Customer: cust, Currency: "EUR", Points: -10})
				}
				once := pledger.Once{Key: key, Request: []byte("0123456789abcdef0123456789abcdef"), At: time.Now(),
					Answer: func(rec []protocol.Redemption) (int, []byte, error) {
						body, err := json.Marshal(map[string]any{"redemptions": rec, "basket": basket.Redemptions})
						return 200, body, err
					}}
				if out, err := l.RedeemOnce(ctx, basket, once); err != nil || out.Replayed {
					errs <- fmt.Errorf("basket %d: replayed %v: %w", i, out.Replayed, err)
					return
				}
			}
		}()
	}
	for range clients {
		if err := <-errs; err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkIngestTreeCost is BenchmarkOnlineTreeCost's cuts on ingest's
// path, where nothing depends on timing: BenchmarkRowsIngest's till
// messages (fleetSale, customers as PUNCHCARD_BENCH_PREFILL's, or
// 2,000 of them on empty ledgers), a drain of 14 at a time through
// ApplyBatches, alternately on the ledger with every tree and on the cut
// one. One op is one message; it reports the CPU per fact of each around
// ApplyBatches (cpu-ns/fact, cut-cpu-ns/fact, and tree-ns/fact their
// difference), and the WAL frames per message of each (a checkpoint
// after every drain, outside the timing).
func BenchmarkIngestTreeCost(b *testing.B) {
	customers, template := treeCostSetup(b)
	for _, c := range selectedCuts() {
		b.Run(c.name, func(b *testing.B) { benchIngestCut(b, c.sql, customers, template) })
	}
}

func benchIngestCut(b *testing.B, cut string, customers int, template string) {
	ctx := context.Background()
	with, without := cutLedgers(b, cut, template)
	seqs := make([]uint64, fleetTills)
	for i := range seqs {
		seqs[i] = 1
	}
	var cpu [2]time.Duration
	var frames [2]int64
	var facts int64
	b.ResetTimer()
	for done := 0; done < b.N; done += fleetDrain {
		bs, nf := fleetBatches(seqs, done, min(fleetDrain, b.N-done), func(i int) protocol.CustomerID {
			return protocol.CustomerID(fmt.Sprintf("c%d", (i*7919)%customers))
		})
		facts += nf
		for k := range 2 {
			i := k
			if (done/fleetDrain)%2 == 1 { // alternate which goes first
				i = 1 - k
			}
			l := []*ledger.Ledger{with, without}[i]
			c0 := ledgertest.CPUTime()
			res, err := l.ApplyBatches(ctx, bs)
			cpu[i] += ledgertest.CPUTime() - c0
			if err != nil {
				b.Fatal(err)
			}
			for _, r := range res {
				if r.Err != nil {
					b.Fatalf("result %+v", r)
				}
			}
			b.StopTimer()
			frames[i] += walFrames(b, l.DB())
			b.StartTimer()
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(cpu[0].Nanoseconds())/float64(facts), "cpu-ns/fact")
	b.ReportMetric(float64(cpu[1].Nanoseconds())/float64(facts), "cut-cpu-ns/fact")
	b.ReportMetric(float64((cpu[0]-cpu[1]).Nanoseconds())/float64(facts), "tree-ns/fact")
	b.ReportMetric(float64(frames[0])/float64(b.N), "pages/msg")
	b.ReportMetric(float64(frames[1])/float64(b.N), "cut-pages/msg")
}
