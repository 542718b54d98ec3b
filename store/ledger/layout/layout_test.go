//go:build linux

package layout

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

const (
	customers = 100_000
	campaigns = 20
	stores    = 50
	group     = 8 // baskets a commit: the online writer's at 16 clients
)

// A layout is a schema, its statements and what one basket does with
// them.
type layout struct {
	name   string
	schema string
	stmts  map[string]string
	basket func(w *writer, at int64) error
	// Variants of today's: the journal one row a basket, the fact events
	// one row a basket.
	jBasket, eRef bool
	// Variants with a customer's lots found within the customer's rows
	// (a taken lot by customer, not by id), and with all of a customer's
	// state read as one range (kv).
	custKeyed, kv bool
	// skip: statements an ablation leaves out.
	skip map[string]bool
}

// writer records baskets on one connection, as the online writer does.
type writer struct {
	l    *layout
	conn *sql.Conn
	wal  string
	tx   *sql.Tx
	st   map[string]*sql.Stmt
	txst map[string]*sql.Stmt // st bound to tx
	rng  *rand.Rand
	seq  int64
}

func (w *writer) stmt(name string) *sql.Stmt {
	st := w.txst[name]
	if st == nil {
		st = w.tx.Stmt(w.st[name])
		w.txst[name] = st
	}
	return st
}

func (w *writer) exec(name string, args ...any) error {
	if w.l.skip[name] {
		return nil
	}
	if _, err := w.stmt(name).Exec(args...); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

func (w *writer) read(name string, args ...any) error {
	if w.l.skip[name] {
		return nil
	}
	rows, err := w.stmt(name).Query(args...)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	for rows.Next() {
	}
	rows.Close()
	return rows.Err()
}

// keys draws a basket's customer, transaction id and idempotency key.
func (w *writer) keys() (cust, txn, key string) {
	return "cust-" + strconv.Itoa(w.rng.IntN(customers)), fmt.Sprintf("txn-%016x", w.rng.Uint64()), fmt.Sprintf("idem-%016x", w.rng.Uint64())
}

func (w *writer) campaign() string { return "camp-" + strconv.Itoa(w.rng.IntN(campaigns)) }

func pad(n int) string { return strings.Repeat("x", n) }

func rows(row string, n int) string { return strings.TrimSuffix(strings.Repeat(row+", ", n), ", ") }

// Payloads of the sizes the trees dump measured: an answer kept for its
// idempotency key 750 B, a fact event 266 B.
var answer, factEvent, custState = pad(700), pad(230), pad(200)

// today is the ledger's layout (store/ledger/migrations), cut to the
// trees an online basket writes: per basket 5 journal rows in 5 trees, 5
// fact events in 2, a points lot in 3, a take in 2, 1-2 per-customer
// campaign counts, the idempotency record in 2, the purchase in 3, its
// store and day, the customer's points, 2 campaign balances; and the
// point reads the writer makes before them.
var today = layout{
	name: "today",
	schema: `
CREATE TABLE journal (id INTEGER PRIMARY KEY, tenant TEXT, agent TEXT, seq INTEGER, customer TEXT, txn TEXT, campaign TEXT, store TEXT, hlc INTEGER, entry TEXT, discount INTEGER, points INTEGER, pad TEXT);
CREATE UNIQUE INDEX j_id ON journal (tenant, agent, seq);
CREATE INDEX j_cust ON journal (tenant, customer, id);
CREATE INDEX j_txn ON journal (tenant, agent, txn);
CREATE INDEX j_report ON journal (tenant, hlc, id, campaign, store, agent, entry, discount, points);
CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT, type TEXT, at INTEGER, body TEXT);
CREATE INDEX events_at ON events (at);
CREATE TABLE lots (id INTEGER PRIMARY KEY, tenant TEXT, customer TEXT, src_seq INTEGER, expires INTEGER, remaining INTEGER);
CREATE INDEX lots_customer ON lots (tenant, customer, expires) WHERE remaining > 0;
CREATE INDEX lots_customer_src ON lots (tenant, customer, src_seq);
CREATE TABLE takes (tenant TEXT, agent TEXT, seq INTEGER, lot INTEGER, n INTEGER);
CREATE INDEX takes_entry ON takes (tenant, agent, seq);
CREATE TABLE cust_camps (tenant TEXT, customer TEXT, campaign TEXT, n INTEGER, last_seq INTEGER, PRIMARY KEY (tenant, customer, campaign)) WITHOUT ROWID;
CREATE TABLE idem (tenant TEXT, key TEXT, request BLOB, status INTEGER, body BLOB, created INTEGER, PRIMARY KEY (tenant, key));
CREATE TABLE purchases (tenant TEXT, customer TEXT, store TEXT, txn TEXT, at INTEGER, value INTEGER, agent TEXT, seq INTEGER, PRIMARY KEY (tenant, customer, store, txn)) WITHOUT ROWID;
CREATE INDEX purchases_at ON purchases (tenant, customer, at);
CREATE INDEX purchases_report ON purchases (tenant, at, value, agent, txn);
CREATE TABLE purchase_stores (tenant TEXT, customer TEXT, store TEXT, last INTEGER, PRIMARY KEY (tenant, customer, store)) WITHOUT ROWID;
CREATE TABLE purchase_days (tenant TEXT, customer TEXT, day INTEGER, spend INTEGER, PRIMARY KEY (tenant, customer, day)) WITHOUT ROWID;
CREATE TABLE customers (tenant TEXT, customer TEXT, points INTEGER, PRIMARY KEY (tenant, customer)) WITHOUT ROWID;
CREATE TABLE camps (tenant TEXT, campaign TEXT, n INTEGER, discount INTEGER, PRIMARY KEY (tenant, campaign)) WITHOUT ROWID;
`,
	stmts: map[string]string{
		"rCust":    `SELECT points FROM customers WHERE tenant = ? AND customer = ?`,
		"rCC":      `SELECT n FROM cust_camps WHERE tenant = ? AND customer = ? AND campaign = ?`,
		"rLots":    `SELECT id, remaining FROM lots WHERE tenant = ? AND customer = ? AND remaining > 0 ORDER BY expires LIMIT 4`,
		"rTxn":     `SELECT 1 FROM journal WHERE tenant = ? AND agent = ? AND txn = ?`,
		"rIdem":    `SELECT status FROM idem WHERE tenant = ? AND key = ?`,
		"journal":  `INSERT INTO journal (tenant, agent, seq, customer, txn, campaign, store, hlc, entry, discount, points, pad) VALUES ` + rows(`('t', 'hub', ?, ?, ?, ?, ?, ?, 'redeem', 100, 5, ?)`, 5),
		"event":    `INSERT INTO events (tenant, type, at, body) VALUES ` + rows(`('t', 'fact.redeem', ?, ?)`, 5),
		"lot":      `INSERT INTO lots (tenant, customer, src_seq, expires, remaining) VALUES ('t', ?, ?, ?, 10)`,
		"lotTake":  `UPDATE lots SET remaining = remaining - 1 WHERE id = ?`,
		"take":     `INSERT INTO takes (tenant, agent, seq, lot, n) VALUES ('t', 'hub', ?, ?, 1)`,
		"cc":       `INSERT INTO cust_camps VALUES ('t', ?, ?, 1, ?) ON CONFLICT DO UPDATE SET n = n + 1, last_seq = excluded.last_seq`,
		"idem":     `INSERT INTO idem VALUES ('t', ?, ?, 200, ?, ?)`,
		"purchase": `INSERT OR IGNORE INTO purchases VALUES ('t', ?, ?, ?, ?, 1000, 'hub', ?)`,
		"pstore":   `INSERT INTO purchase_stores VALUES ('t', ?, ?, ?) ON CONFLICT DO UPDATE SET last = excluded.last`,
		"pday":     `INSERT INTO purchase_days VALUES ('t', ?, ?, 1000) ON CONFLICT DO UPDATE SET spend = spend + 1000`,
		"cust":     `INSERT INTO customers VALUES ('t', ?, 5) ON CONFLICT DO UPDATE SET points = points + 5`,
		"camp":     `INSERT INTO camps VALUES ('t', ?, 1, 100) ON CONFLICT DO UPDATE SET n = n + 1, discount = discount + 100`,
	},
	basket: todayBasket,
}

func todayBasket(w *writer, at int64) error {
	c, txn, key := w.keys()
	store := "store-" + strconv.Itoa(w.rng.IntN(stores))
	reads := [][]any{{"rCust", c}, {"rCC", c, w.campaign()}, {"rLots", c}}
	if w.l.kv {
		reads = [][]any{{"rState", c}}
	}
	for _, r := range append(reads, []any{"rTxn", "hub", txn}, []any{"rIdem", key}) {
		if err := w.read(r[0].(string), append([]any{"t"}, r[1:]...)...); err != nil {
			return err
		}
	}
	var jargs, eargs []any
	for i := range 5 {
		w.seq++
		cp := w.campaign()
		jargs = append(jargs, w.seq, c, txn, cp, store, at, pad(10))
		eargs = append(eargs, at, factEvent)
		if i < 2 {
			if err := w.exec("camp", cp); err != nil {
				return err
			}
		}
	}
	if w.l.jBasket {
		if err := w.exec("journal", w.seq, c, txn, at, pad(300)); err != nil {
			return err
		}
		for range 2 {
			if err := w.exec("rollup", w.campaign(), at/86400e6); err != nil {
				return err
			}
		}
	} else if err := w.exec("journal", jargs...); err != nil {
		return err
	}
	if w.l.eRef {
		if err := w.exec("event", at); err != nil {
			return err
		}
	} else if err := w.exec("event", eargs...); err != nil {
		return err
	}
	if err := w.exec("lot", c, w.seq, at+365*86400e6); err != nil {
		return err
	}
	if w.rng.IntN(3) == 0 && w.seq > 100 {
		var lot any = c
		if !w.l.custKeyed {
			lot = w.rng.Int64N(w.seq/5) + 1
		}
		if err := w.exec("lotTake", lot); err != nil {
			return err
		}
	}
	if err := w.exec("take", w.seq, w.seq/5); err != nil {
		return err
	}
	for range 1 + w.rng.IntN(3)/2 {
		if err := w.exec("cc", c, w.campaign(), w.seq); err != nil {
			return err
		}
	}
	if err := w.exec("idem", key, pad(32), answer, at); err != nil {
		return err
	}
	if err := w.exec("purchase", c, store, txn, at, w.seq); err != nil {
		return err
	}
	if w.rng.IntN(3) < 2 {
		if err := w.exec("pstore", c, store, at); err != nil {
			return err
		}
	}
	if w.rng.IntN(3) == 0 {
		if err := w.exec("pday", c, at/86400e6); err != nil {
			return err
		}
	}
	return w.exec("cust", c)
}

// variant is today's layout with the journal, or the fact events, one
// row a basket.
func variant(name string, jBasket, eRef bool) layout {
	l := today
	l.name, l.jBasket, l.eRef = name, jBasket, eRef
	l.stmts = maps.Clone(today.stmts)
	if jBasket {
		l.schema = strings.Replace(l.schema, `CREATE INDEX j_report ON journal (tenant, hlc, id, campaign, store, agent, entry, discount, points);`,
			`CREATE TABLE rollup (tenant TEXT, campaign TEXT, day INTEGER, n INTEGER, discount INTEGER, PRIMARY KEY (tenant, campaign, day)) WITHOUT ROWID;`, 1)
		l.stmts["journal"] = `INSERT INTO journal (tenant, agent, seq, customer, txn, hlc, entry, pad) VALUES ('t', 'hub', ?, ?, ?, ?, 'basket', ?)`
		l.stmts["rollup"] = `INSERT INTO rollup VALUES ('t', ?, ?, 1, 100) ON CONFLICT DO UPDATE SET n = n + 1, discount = discount + 100`
	}
	if eRef {
		l.stmts["event"] = `INSERT INTO events (tenant, type, at, body) VALUES ('t', 'basket', ?, '')`
	}
	return l
}

// basketCustomer is one row a basket, indexed by idempotency key,
// transaction and customer; one clustered row of state a customer; the
// fact events one row a basket; campaign balances and day rollups.
var basketCustomer = layout{
	name: "basket+customer",
	schema: `
CREATE TABLE baskets (id INTEGER PRIMARY KEY, tenant TEXT, key TEXT, txn TEXT, customer TEXT, at INTEGER, facts BLOB, answer BLOB);
CREATE UNIQUE INDEX b_key ON baskets (tenant, key);
CREATE INDEX b_txn ON baskets (tenant, txn);
CREATE INDEX b_cust ON baskets (tenant, customer, id);
CREATE TABLE cstate (tenant TEXT, customer TEXT, state BLOB, PRIMARY KEY (tenant, customer)) WITHOUT ROWID;
CREATE TABLE rollup (tenant TEXT, campaign TEXT, day INTEGER, n INTEGER, discount INTEGER, PRIMARY KEY (tenant, campaign, day)) WITHOUT ROWID;
CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT, at INTEGER, basket INTEGER);
CREATE INDEX events_at ON events (at);
CREATE TABLE camps (tenant TEXT, campaign TEXT, n INTEGER, discount INTEGER, PRIMARY KEY (tenant, campaign)) WITHOUT ROWID;
`,
	stmts: map[string]string{
		"rState": `SELECT state FROM cstate WHERE tenant = ? AND customer = ?`,
		"rKey":   `SELECT id FROM baskets WHERE tenant = ? AND key = ?`,
		"rTxn":   `SELECT id FROM baskets WHERE tenant = ? AND txn = ?`,
		"basket": `INSERT INTO baskets (tenant, key, txn, customer, at, facts, answer) VALUES ('t', ?, ?, ?, ?, ?, ?)`,
		"state":  `INSERT INTO cstate VALUES ('t', ?, ?) ON CONFLICT DO UPDATE SET state = excluded.state`,
		"rollup": `INSERT INTO rollup VALUES ('t', ?, ?, 1, 100) ON CONFLICT DO UPDATE SET n = n + 1, discount = discount + 100`,
		"event":  `INSERT INTO events (tenant, at, basket) VALUES ('t', ?, last_insert_rowid())`,
		"camp":   `INSERT INTO camps VALUES ('t', ?, 1, 100) ON CONFLICT DO UPDATE SET n = n + 1, discount = discount + 100`,
	},
	basket: func(w *writer, at int64) error {
		c, txn, key := w.keys()
		for _, r := range [][]any{{"rState", c}, {"rKey", key}, {"rTxn", txn}} {
			if err := w.read(r[0].(string), append([]any{"t"}, r[1:]...)...); err != nil {
				return err
			}
		}
		w.seq += 5
		if err := w.exec("basket", key, txn, c, at, pad(300), answer); err != nil {
			return err
		}
		if err := w.exec("event", at); err != nil {
			return err
		}
		if err := w.exec("state", c, custState); err != nil {
			return err
		}
		for range 2 {
			cp := w.campaign()
			if err := w.exec("rollup", cp, at/86400e6); err != nil {
				return err
			}
			if err := w.exec("camp", cp); err != nil {
				return err
			}
		}
		return nil
	},
}

// basketCustomerLots is basketCustomer with the customer's points lots
// out of line, in a table clustered by customer (a customer with many
// active lots would otherwise rewrite them all with every basket): a
// lot added a basket, one in three baskets taking from one.
var basketCustomerLots = func() layout {
	l := basketCustomer
	l.name = "basket+customer+lots"
	l.schema += `CREATE TABLE lots (tenant TEXT, customer TEXT, expires INTEGER, id INTEGER, remaining INTEGER, PRIMARY KEY (tenant, customer, expires, id)) WITHOUT ROWID;
`
	l.stmts = maps.Clone(basketCustomer.stmts)
	l.stmts["rLots"] = `SELECT id, remaining FROM lots WHERE tenant = ? AND customer = ? AND remaining > 0 ORDER BY expires LIMIT 4`
	l.stmts["lot"] = `INSERT INTO lots VALUES ('t', ?, ?, ?, 10)`
	l.stmts["lotTake"] = `UPDATE lots SET remaining = remaining - 1 WHERE tenant = 't' AND customer = ? AND expires = (SELECT min(expires) FROM lots WHERE tenant = 't' AND customer = ?1 AND remaining > 0)`
	l.basket = func(w *writer, at int64) error {
		c := "cust-" + strconv.Itoa(w.rng.IntN(customers))
		if err := w.read("rLots", "t", c); err != nil {
			return err
		}
		if err := w.exec("lot", c, at+365*86400e6, w.seq); err != nil {
			return err
		}
		if w.rng.IntN(3) == 0 {
			if err := w.exec("lotTake", c); err != nil {
				return err
			}
		}
		return basketCustomer.basket(w, at)
	}
	return l
}()

// clustered is today's layout with the points lots and the purchases
// clustered by customer (WITHOUT ROWID tables keyed by tenant and
// customer first), so that their customer indexes go: the lots'
// (tenant, customer, expires) and (tenant, customer, src_seq), the
// purchases' (tenant, customer, at). Reads scan the customer's range.
var clustered = func() layout {
	l := today
	l.name = "clustered"
	l.schema = strings.NewReplacer(
		`CREATE TABLE lots (id INTEGER PRIMARY KEY, tenant TEXT, customer TEXT, src_seq INTEGER, expires INTEGER, remaining INTEGER);
CREATE INDEX lots_customer ON lots (tenant, customer, expires) WHERE remaining > 0;
CREATE INDEX lots_customer_src ON lots (tenant, customer, src_seq);`,
		`CREATE TABLE lots (tenant TEXT, customer TEXT, id INTEGER, src_seq INTEGER, expires INTEGER, remaining INTEGER, PRIMARY KEY (tenant, customer, id)) WITHOUT ROWID;`,
		`CREATE INDEX purchases_at ON purchases (tenant, customer, at);`, ``).Replace(l.schema)
	l.stmts = maps.Clone(today.stmts)
	l.stmts["rLots"] = `SELECT id, remaining FROM lots WHERE tenant = ? AND customer = ? AND remaining > 0 ORDER BY expires LIMIT 4`
	l.stmts["lot"] = `INSERT INTO lots VALUES ('t', ?1, ?2, ?2, ?3, 10)`
	l.stmts["lotTake"] = `UPDATE lots SET remaining = remaining - 1 WHERE tenant = 't' AND customer = ?1 AND id = (SELECT min(id) FROM lots WHERE tenant = 't' AND customer = ?1 AND remaining > 0)`
	l.custKeyed = true
	return l
}()

// custKV is today's layout with every customer-keyed table (the
// customer's points, per-campaign counts, points lots, purchases, their
// stores and days) one clustered table keyed by (tenant, customer, kind,
// key): a customer's state is adjacent, so a basket dirties one leaf page
// for all of it instead of one a table and index. The purchases' report
// index stays (a partial index by time: appended).
var custKV = func() layout {
	l := today
	l.name = "customer-kv"
	var keep []string
	for _, q := range strings.Split(strings.TrimSpace(today.schema), "\n") {
		if strings.Contains(q, " journal ") || strings.Contains(q, " events ") || strings.Contains(q, " idem ") || strings.Contains(q, " camps ") || strings.Contains(q, " takes ") {
			keep = append(keep, q)
		}
	}
	l.schema = strings.Join(keep, "\n") + `
CREATE TABLE ckv (tenant TEXT, customer TEXT, kind INTEGER, k TEXT, a INTEGER, b INTEGER, c TEXT, PRIMARY KEY (tenant, customer, kind, k)) WITHOUT ROWID;
CREATE INDEX ckv_report ON ckv (tenant, b, a, c) WHERE kind = 3;
`
	l.stmts = maps.Clone(today.stmts)
	for _, k := range []string{"rCust", "rCC", "rLots"} {
		delete(l.stmts, k)
	}
	l.stmts["rState"] = `SELECT kind, k, a, b FROM ckv WHERE tenant = ? AND customer = ? AND kind < 3`
	l.stmts["lot"] = `INSERT INTO ckv VALUES ('t', ?1, 1, printf('%020d', ?2), 10, ?3, NULL)`
	l.stmts["lotTake"] = `UPDATE ckv SET a = a - 1 WHERE tenant = 't' AND customer = ?1 AND kind = 1 AND k = (SELECT min(k) FROM ckv WHERE tenant = 't' AND customer = ?1 AND kind = 1 AND a > 0)`
	l.stmts["cc"] = `INSERT INTO ckv VALUES ('t', ?, 2, ?, 1, ?, NULL) ON CONFLICT DO UPDATE SET a = a + 1, b = excluded.b`
	l.stmts["purchase"] = `INSERT OR IGNORE INTO ckv VALUES ('t', ?1, 3, ?2 || '/' || ?3, 1000, ?4, 'hub/' || ?5)`
	l.stmts["pstore"] = `INSERT INTO ckv VALUES ('t', ?, 4, ?, 1, ?, NULL) ON CONFLICT DO UPDATE SET b = excluded.b`
	l.stmts["pday"] = `INSERT INTO ckv VALUES ('t', ?, 5, ?, 1000, 1, NULL) ON CONFLICT DO UPDATE SET a = a + 1000`
	l.stmts["cust"] = `INSERT INTO ckv VALUES ('t', ?, 0, '', 5, 0, NULL) ON CONFLICT DO UPDATE SET a = a + 5`
	l.custKeyed, l.kv = true, true
	return l
}()

// ablate is today's layout without the statements skip and the schema
// lines that contain drop: what one part of a basket costs.
func ablate(name string, drop []string, skip ...string) layout {
	l := today
	l.name = "no-" + name
	var keep []string
	for _, q := range strings.Split(strings.TrimSpace(today.schema), "\n") {
		if !slices.ContainsFunc(drop, func(d string) bool { return strings.Contains(q, d) }) {
			keep = append(keep, q)
		}
	}
	l.schema = strings.Join(keep, "\n")
	l.skip = map[string]bool{}
	for _, k := range skip {
		l.skip[k] = true
	}
	return l
}

func open(b *testing.B, l layout) *writer {
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "ledger.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)")
	if err != nil {
		b.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	b.Cleanup(func() { db.Close() })
	if _, err := db.Exec(l.schema); err != nil {
		b.Fatalf("%s: %v", l.name, err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	w := &writer{l: &l, conn: conn, wal: path + "-wal", st: map[string]*sql.Stmt{}, rng: rand.New(rand.NewPCG(1, 2))}
	for k, q := range l.stmts {
		if w.st[k], err = conn.PrepareContext(ctx, q); err != nil {
			b.Fatalf("%s %s: %v", l.name, k, err)
		}
	}
	return w
}

// group records n baskets in one transaction.
func (w *writer) group(n int, at *int64) error {
	tx, err := w.conn.BeginTx(context.Background(), nil)
	if err != nil {
		return err
	}
	w.tx, w.txst = tx, map[string]*sql.Stmt{}
	for range n {
		*at += 1000
		if err := w.l.basket(w, *at); err != nil {
			tx.Rollback()
			return err
		}
	}
	return tx.Commit()
}

// history records n baskets in groups of 1,000, without syncing.
func (w *writer) history(b *testing.B, n int, at *int64) {
	w.pragma(b, "PRAGMA synchronous = OFF")
	for done := 0; done < n; done += 1000 {
		if err := w.group(min(1000, n-done), at); err != nil {
			b.Fatal(err)
		}
	}
	w.pragma(b, "PRAGMA synchronous = FULL")
}

func (w *writer) pragma(b *testing.B, q string) {
	if _, err := w.conn.ExecContext(context.Background(), q); err != nil {
		b.Fatalf("%s: %v", q, err)
	}
}

func threadCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_THREAD, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// BenchmarkLayout reports, per basket, the wall time, the writer
// thread's CPU time and the WAL bytes of one writer recording groups of 8
// baskets at synchronous=FULL, after a history of
// PUNCHCARD_LAYOUT_HISTORY baskets (200,000: ~1M journal rows in today's
// layout), the layouts (PUNCHCARD_LAYOUTS, a comma list; all by default)
// alternated for PUNCHCARD_LAYOUT_ROUNDS (3) rounds, each with its CPU as
// a ratio to today's in the same round.
func BenchmarkLayout(b *testing.B) {
	if os.Getenv("PUNCHCARD_LAYOUT_BENCH") != "1" {
		b.Skip("set PUNCHCARD_LAYOUT_BENCH=1 (make bench-layout): builds a history of minutes first")
	}
	hist := envInt("PUNCHCARD_LAYOUT_HISTORY", 200_000)
	rounds := envInt("PUNCHCARD_LAYOUT_ROUNDS", 3)
	all := []layout{today, variant("events-by-ref", false, true), variant("journal-per-basket", true, false),
		variant("journal+events-per-basket", true, true), basketCustomer, basketCustomerLots, clustered, custKV,
		ablate("events", nil, "event"), ablate("j-report", []string{"j_report"}), ablate("j-cust", []string{"j_cust"}),
		ablate("j-txn", []string{"j_txn"}, "rTxn"), ablate("idem", nil, "idem"), ablate("purchases", nil, "purchase"),
		ablate("lots", nil, "lot", "lotTake", "take"), ablate("cust-counts", nil, "cc", "pstore", "pday", "cust")}
	type fixture struct {
		w  *writer
		at int64
	}
	var fs []*fixture
	for _, l := range all {
		if names := os.Getenv("PUNCHCARD_LAYOUTS"); names != "" && l.name != "today" && !slices.Contains(strings.Split(names, ","), l.name) {
			continue
		}
		w := open(b, l)
		f := &fixture{w: w, at: time.Now().UnixMicro()}
		t0 := time.Now()
		w.history(b, hist, &f.at)
		var pages int64
		if err := w.conn.QueryRowContext(context.Background(), "PRAGMA page_count").Scan(&pages); err != nil {
			b.Fatal(err)
		}
		b.Logf("%s: a history of %d baskets in %v: %.0f B a basket on disk", l.name, hist, time.Since(t0).Round(time.Millisecond), float64(pages*4096)/float64(hist))
		fs = append(fs, f)
	}
	for r := range rounds {
		var base float64 // today's CPU a basket in this round
		for _, f := range fs {
			b.Run(fmt.Sprintf("round=%d/layout=%s", r, f.w.l.name), func(b *testing.B) {
				w := f.w
				w.pragma(b, "PRAGMA wal_checkpoint(TRUNCATE)")
				w.pragma(b, "PRAGMA wal_autocheckpoint = 0") // the WAL's growth is the round's frames
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				c0, t0 := threadCPU(), time.Now()
				for n := 0; n < b.N; n += group {
					if err := w.group(min(group, b.N-n), &f.at); err != nil {
						b.Fatal(err)
					}
				}
				wall, cpu := time.Since(t0), threadCPU()-c0
				st, err := os.Stat(w.wal)
				if err != nil {
					b.Fatal(err)
				}
				w.pragma(b, "PRAGMA wal_autocheckpoint = 1000")
				per := func(v float64) float64 { return v / float64(b.N) }
				b.ReportMetric(per(float64(wall.Microseconds())), "wall-us/basket")
				b.ReportMetric(per(float64(cpu.Microseconds())), "cpu-us/basket")
				b.ReportMetric(per(float64(st.Size())), "wal-B/basket")
				if w.l.name == "today" {
					base = per(float64(cpu.Microseconds()))
				} else if base > 0 {
					b.ReportMetric(per(float64(cpu.Microseconds()))/base, "x-today-cpu")
				}
			})
		}
	}
}
