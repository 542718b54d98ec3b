//go:build linux

package layout

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib"
)

// The PostgreSQL side of the design benchmark: the same baskets as
// BenchmarkLayout's, recorded by PostgreSQL with concurrent writers (one
// transaction a basket, PostgreSQL's own commits, each client on its own
// connection), as a PostgreSQL ledger behind the hub's interfaces would
// (docs/design.md, "Ledger", option (B)). A server of its own is started
// in a temporary directory, on a Unix socket only, with fsync and
// synchronous_commit on: a basket is answered only once it is on disk.

// pgLayout is a schema in PostgreSQL's dialect and what one basket does.
type pgLayout struct {
	name   string
	schema string
	stmts  map[string]string
	basket func(c *pgClient, at int64) error
	// totals: every basket also adds to one row a tenant (the ledger's
	// points outstanding, ledger_026_points_totals.sql).
	totals bool
}

// pgClient records baskets on one connection: a shop's request handler.
// It talks to the server as a PostgreSQL ledger would with pgx: every
// statement prepared once per connection (pgx's statement cache), the
// reads one at a time (the basket's decision needs them), its writes
// queued and sent together in one round trip (a pgx.Batch) before the
// commit.
type pgClient struct {
	l     *pgLayout
	conn  *pgx.Conn
	tx    pgx.Tx
	batch *pgx.Batch
	rng   *rand.Rand
	seq   *atomic.Int64 // the hub's seqs, shared by every client
}

func (c *pgClient) exec(name string, args ...any) error {
	c.batch.Queue(c.l.stmts[name], args...)
	return nil
}

func (c *pgClient) read(name string, args ...any) error {
	rows, err := c.tx.Query(context.Background(), c.l.stmts[name], args...)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	for rows.Next() {
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// campaigns2 draws a basket's two campaigns in key order: concurrent
// baskets lock campaign rows in one order, so they wait, never deadlock.
func (c *pgClient) campaigns2() [2]string {
	a, b := c.rng.IntN(campaigns), c.rng.IntN(campaigns)
	if a > b {
		a, b = b, a
	}
	return [2]string{"camp-" + strconv.Itoa(a), "camp-" + strconv.Itoa(b)}
}

// pgRows is n rows of width numbered placeholders, each row row with
// its placeholders written %d.
func pgRows(row string, width, n int) string {
	var rs []string
	for i := range n {
		args := make([]any, width)
		for k := range width {
			args[k] = i*width + k + 1
		}
		rs = append(rs, fmt.Sprintf(row, args...))
	}
	return strings.Join(rs, ", ")
}

// pgToday is BenchmarkLayout's today in PostgreSQL: the same tables,
// indexes, key shapes and payloads (WITHOUT ROWID tables are heap
// tables with their primary key).
var pgToday = pgLayout{
	name: "today",
	schema: `
CREATE TABLE journal (id bigserial PRIMARY KEY, tenant text, agent text, seq bigint, customer text, txn text, campaign text, store text, hlc bigint, entry text, discount bigint, points bigint, pad text);
CREATE UNIQUE INDEX j_id ON journal (tenant, agent, seq);
CREATE INDEX j_cust ON journal (tenant, customer, id);
CREATE INDEX j_txn ON journal (tenant, agent, txn);
CREATE INDEX j_report ON journal (tenant, hlc, id, campaign, store, agent, entry, discount, points);
CREATE TABLE events (seq bigserial PRIMARY KEY, tenant text, type text, at bigint, body text);
CREATE INDEX events_at ON events (at);
CREATE TABLE lots (id bigserial PRIMARY KEY, tenant text, customer text, src_seq bigint, expires bigint, remaining bigint);
CREATE INDEX lots_customer ON lots (tenant, customer, expires) WHERE remaining > 0;
CREATE INDEX lots_customer_src ON lots (tenant, customer, src_seq);
CREATE TABLE takes (tenant text, agent text, seq bigint, lot bigint, n bigint);
CREATE INDEX takes_entry ON takes (tenant, agent, seq);
CREATE TABLE cust_camps (tenant text, customer text, campaign text, n bigint, last_seq bigint, PRIMARY KEY (tenant, customer, campaign));
CREATE TABLE idem (tenant text, key text, request bytea, status int, body bytea, created bigint, PRIMARY KEY (tenant, key));
CREATE TABLE purchases (tenant text, customer text, store text, txn text, at bigint, value bigint, agent text, seq bigint, PRIMARY KEY (tenant, customer, store, txn));
CREATE INDEX purchases_at ON purchases (tenant, customer, at);
CREATE INDEX purchases_report ON purchases (tenant, at, value, agent, txn);
CREATE TABLE purchase_stores (tenant text, customer text, store text, last bigint, PRIMARY KEY (tenant, customer, store));
CREATE TABLE purchase_days (tenant text, customer text, day bigint, spend bigint, PRIMARY KEY (tenant, customer, day));
CREATE TABLE customers (tenant text, customer text, points bigint, PRIMARY KEY (tenant, customer));
CREATE TABLE camps (tenant text, campaign text, n bigint, discount bigint, PRIMARY KEY (tenant, campaign));
CREATE TABLE totals (tenant text PRIMARY KEY, points bigint);
INSERT INTO totals VALUES ('t', 0);
`,
	stmts: map[string]string{
		"rCust":    `SELECT points FROM customers WHERE tenant = $1 AND customer = $2`,
		"rCC":      `SELECT n FROM cust_camps WHERE tenant = $1 AND customer = $2 AND campaign = $3`,
		"rLots":    `SELECT id, remaining FROM lots WHERE tenant = $1 AND customer = $2 AND remaining > 0 ORDER BY expires LIMIT 4`,
		"rTxn":     `SELECT 1 FROM journal WHERE tenant = $1 AND agent = $2 AND txn = $3`,
		"rIdem":    `SELECT status FROM idem WHERE tenant = $1 AND key = $2`,
		"journal":  `INSERT INTO journal (tenant, agent, seq, customer, txn, campaign, store, hlc, entry, discount, points, pad) VALUES ` + pgRows(`('t', 'hub', $%d, $%d, $%d, $%d, $%d, $%d, 'redeem', 100, 5, $%d)`, 7, 5),
		"event":    `INSERT INTO events (tenant, type, at, body) VALUES ` + pgRows(`('t', 'fact.redeem', $%d, $%d)`, 2, 5),
		"lot":      `INSERT INTO lots (tenant, customer, src_seq, expires, remaining) VALUES ('t', $1, $2, $3, 10)`,
		"lotTake":  `UPDATE lots SET remaining = remaining - 1 WHERE id = $1`,
		"take":     `INSERT INTO takes (tenant, agent, seq, lot, n) VALUES ('t', 'hub', $1, $2, 1)`,
		"cc":       `INSERT INTO cust_camps VALUES ('t', $1, $2, 1, $3) ON CONFLICT (tenant, customer, campaign) DO UPDATE SET n = cust_camps.n + 1, last_seq = excluded.last_seq`,
		"idem":     `INSERT INTO idem VALUES ('t', $1, $2, 200, $3, $4)`,
		"purchase": `INSERT INTO purchases VALUES ('t', $1, $2, $3, $4, 1000, 'hub', $5) ON CONFLICT DO NOTHING`,
		"pstore":   `INSERT INTO purchase_stores VALUES ('t', $1, $2, $3) ON CONFLICT (tenant, customer, store) DO UPDATE SET last = excluded.last`,
		"pday":     `INSERT INTO purchase_days VALUES ('t', $1, $2, 1000) ON CONFLICT (tenant, customer, day) DO UPDATE SET spend = purchase_days.spend + 1000`,
		"cust":     `INSERT INTO customers VALUES ('t', $1, 5) ON CONFLICT (tenant, customer) DO UPDATE SET points = customers.points + 5`,
		"camp":     `INSERT INTO camps VALUES ('t', $1, 1, 100) ON CONFLICT (tenant, campaign) DO UPDATE SET n = camps.n + 1, discount = camps.discount + 100`,
		"total":    `UPDATE totals SET points = points + 5 WHERE tenant = 't'`,
	},
	basket: func(c *pgClient, at int64) error {
		cu := "cust-" + strconv.Itoa(c.rng.IntN(customers))
		txn, key := fmt.Sprintf("txn-%016x", c.rng.Uint64()), fmt.Sprintf("idem-%016x", c.rng.Uint64())
		store := "store-" + strconv.Itoa(c.rng.IntN(stores))
		cc := c.campaigns2()
		for _, r := range [][]any{{"rCust", cu}, {"rCC", cu, cc[0]}, {"rLots", cu}, {"rTxn", "hub", txn}, {"rIdem", key}} {
			if err := c.read(r[0].(string), append([]any{"t"}, r[1:]...)...); err != nil {
				return err
			}
		}
		seq := c.seq.Add(5)
		var jargs, eargs []any
		for i := range int64(5) {
			cp := "camp-" + strconv.Itoa(c.rng.IntN(campaigns))
			jargs = append(jargs, seq-4+i, cu, txn, cp, store, at, pad(10))
			eargs = append(eargs, at, factEvent)
		}
		if err := c.exec("journal", jargs...); err != nil {
			return err
		}
		if err := c.exec("event", eargs...); err != nil {
			return err
		}
		if err := c.exec("lot", cu, seq, at+365*86400e6); err != nil {
			return err
		}
		if c.rng.IntN(3) == 0 && seq > 100 {
			if err := c.exec("lotTake", c.rng.Int64N(seq/5)+1); err != nil {
				return err
			}
		}
		if err := c.exec("take", seq, seq/5); err != nil {
			return err
		}
		for i := range 1 + c.rng.IntN(3)/2 {
			if err := c.exec("cc", cu, cc[i], seq); err != nil {
				return err
			}
		}
		if err := c.exec("idem", key, []byte(pad(32)), []byte(answer), at); err != nil {
			return err
		}
		if err := c.exec("purchase", cu, store, txn, at, seq); err != nil {
			return err
		}
		if c.rng.IntN(3) < 2 {
			if err := c.exec("pstore", cu, store, at); err != nil {
				return err
			}
		}
		if c.rng.IntN(3) == 0 {
			if err := c.exec("pday", cu, at/86400e6); err != nil {
				return err
			}
		}
		if err := c.exec("cust", cu); err != nil {
			return err
		}
		return pgHotRows(c, c.campaigns2())
	},
}

// pgHotRows adds to the rows many baskets share, last, so that a
// basket holds their locks only for its commit: two campaign balances
// and, with totals, the tenant's points.
func pgHotRows(c *pgClient, cps [2]string) error {
	for _, cp := range cps {
		if err := c.exec("camp", cp); err != nil {
			return err
		}
	}
	if c.l.totals {
		return c.exec("total")
	}
	return nil
}

// pgBasketCustomer is BenchmarkLayout's basket+customer in PostgreSQL:
// one row a basket, one row of state a customer, the fact events one
// row a basket, campaign balances and day rollups.
var pgBasketCustomer = pgLayout{
	name: "basket+customer",
	schema: `
CREATE TABLE baskets (id bigserial PRIMARY KEY, tenant text, key text, txn text, customer text, at bigint, facts bytea, answer bytea);
CREATE UNIQUE INDEX b_key ON baskets (tenant, key);
CREATE INDEX b_txn ON baskets (tenant, txn);
CREATE INDEX b_cust ON baskets (tenant, customer, id);
CREATE TABLE cstate (tenant text, customer text, state bytea, PRIMARY KEY (tenant, customer));
CREATE TABLE rollup (tenant text, campaign text, day bigint, n bigint, discount bigint, PRIMARY KEY (tenant, campaign, day));
CREATE TABLE events (seq bigserial PRIMARY KEY, tenant text, at bigint, basket bigint);
CREATE INDEX events_at ON events (at);
CREATE TABLE camps (tenant text, campaign text, n bigint, discount bigint, PRIMARY KEY (tenant, campaign));
CREATE TABLE totals (tenant text PRIMARY KEY, points bigint);
INSERT INTO totals VALUES ('t', 0);
`,
	stmts: map[string]string{
		"rState": `SELECT state FROM cstate WHERE tenant = $1 AND customer = $2`,
		"rKey":   `SELECT id FROM baskets WHERE tenant = $1 AND key = $2`,
		"rTxn":   `SELECT id FROM baskets WHERE tenant = $1 AND txn = $2`,
		"basket": `INSERT INTO baskets (tenant, key, txn, customer, at, facts, answer) VALUES ('t', $1, $2, $3, $4, $5, $6)`,
		"state":  `INSERT INTO cstate VALUES ('t', $1, $2) ON CONFLICT (tenant, customer) DO UPDATE SET state = excluded.state`,
		"rollup": `INSERT INTO rollup VALUES ('t', $1, $2, 1, 100) ON CONFLICT (tenant, campaign, day) DO UPDATE SET n = rollup.n + 1, discount = rollup.discount + 100`,
		"event":  `INSERT INTO events (tenant, at, basket) VALUES ('t', $1, currval('baskets_id_seq'))`,
		"camp":   `INSERT INTO camps VALUES ('t', $1, 1, 100) ON CONFLICT (tenant, campaign) DO UPDATE SET n = camps.n + 1, discount = camps.discount + 100`,
		"total":  `UPDATE totals SET points = points + 5 WHERE tenant = 't'`,
	},
	basket: func(c *pgClient, at int64) error {
		cu := "cust-" + strconv.Itoa(c.rng.IntN(customers))
		txn, key := fmt.Sprintf("txn-%016x", c.rng.Uint64()), fmt.Sprintf("idem-%016x", c.rng.Uint64())
		for _, r := range [][]any{{"rState", cu}, {"rKey", key}, {"rTxn", txn}} {
			if err := c.read(r[0].(string), append([]any{"t"}, r[1:]...)...); err != nil {
				return err
			}
		}
		c.seq.Add(5)
		if err := c.exec("basket", key, txn, cu, at, []byte(pad(300)), []byte(answer)); err != nil {
			return err
		}
		if err := c.exec("event", at); err != nil {
			return err
		}
		if err := c.exec("state", cu, []byte(custState)); err != nil {
			return err
		}
		cps := c.campaigns2()
		for _, cp := range cps {
			if err := c.exec("rollup", cp, at/86400e6); err != nil {
				return err
			}
		}
		return pgHotRows(c, cps)
	},
}

func withTotals(l pgLayout) pgLayout {
	l.name += "+totals"
	l.totals = true
	return l
}

// pgServer is a PostgreSQL server of the benchmark's own.
type pgServer struct {
	dir, data string
	bin       string // the server's bin directory
	asUser    []string
}

// pgBinDir finds PostgreSQL's programs: PUNCHCARD_PG_BIN, the PATH, or
// Debian's /usr/lib/postgresql/N/bin (the newest).
func pgBinDir() (string, error) {
	if d := os.Getenv("PUNCHCARD_PG_BIN"); d != "" {
		return d, nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Dir(r), nil
		}
		return filepath.Dir(p), nil
	}
	ds, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(ds) == 0 {
		return "", errors.New("no initdb: install PostgreSQL (apt-get install -y postgresql) or set PUNCHCARD_PG_BIN")
	}
	slices.SortFunc(ds, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(a))))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(b))))
		return va - vb
	})
	return filepath.Dir(ds[len(ds)-1]), nil
}

func (s *pgServer) run(name string, args ...string) error {
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	if len(s.asUser) > 0 {
		cmd = exec.Command(s.asUser[0], append(append(s.asUser[1:], filepath.Join(s.bin, name)), args...)...)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", name, err, out)
	}
	return nil
}

// startPostgres starts a server in a new temporary directory, listening
// on a Unix socket there only (no TCP port), durable (fsync and
// synchronous_commit on), and stops and removes it at the benchmark's
// end. PostgreSQL will not run as root: as root it runs as the
// postgres user.
func startPostgres(b *testing.B) *pgServer {
	bin, err := pgBinDir()
	if err != nil {
		b.Skip(err)
	}
	dir, err := os.MkdirTemp("", "punchcard-pg-")
	if err != nil {
		b.Fatal(err)
	}
	s := &pgServer{dir: dir, data: filepath.Join(dir, "data"), bin: bin}
	b.Cleanup(func() { os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			b.Skip("running as root and no postgres user to run PostgreSQL as")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			b.Fatal(err)
		}
		s.asUser = []string{"runuser", "-u", "postgres", "--"}
	}
	if err := s.run("initdb", "-D", s.data, "-A", "trust", "-U", "punchcard", "-E", "UTF8", "--no-sync", "--no-instructions"); err != nil {
		b.Fatal(err)
	}
	// Registered before the start, so that a server that came up while
	// pg_ctl failed (a wait that timed out) is stopped too.
	b.Cleanup(func() {
		if _, err := os.Stat(filepath.Join(s.data, "postmaster.pid")); err != nil {
			return // not running
		}
		if err := s.run("pg_ctl", "-D", s.data, "-m", "fast", "-w", "stop"); err != nil {
			b.Error(err)
		}
	})
	opts := fmt.Sprintf("-c listen_addresses='' -k %s -c shared_buffers=256MB -c max_connections=120 -c fsync=on -c synchronous_commit=on -c max_wal_size=4GB", dir)
	if err := s.run("pg_ctl", "-D", s.data, "-l", filepath.Join(dir, "server.log"), "-w", "-o", opts, "start"); err != nil {
		b.Fatal(err)
	}
	return s
}

func (s *pgServer) dsn(name string) string {
	return fmt.Sprintf("host=%s user=punchcard dbname=%s sslmode=disable", s.dir, name)
}

// open creates database name with l's schema and returns its pool.
func (s *pgServer) open(b *testing.B, name string, l pgLayout) *sql.DB {
	ctx := context.Background()
	admin, err := sql.Open("pgx", s.dsn("postgres"))
	if err != nil {
		b.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		b.Fatal(err)
	}
	db, err := sql.Open("pgx", s.dsn(name))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	if _, err := db.ExecContext(ctx, l.schema); err != nil {
		b.Fatalf("%s: %v", l.name, err)
	}
	return db
}

// pgFixture is one layout's database and its clients.
type pgFixture struct {
	l       pgLayout
	dsn     string
	db      *sql.DB
	clients []*pgClient
	seq     atomic.Int64
	at      atomic.Int64
}

func (f *pgFixture) client(b *testing.B, i int) *pgClient {
	for len(f.clients) <= i {
		conn, err := pgx.Connect(context.Background(), f.dsn)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { conn.Close(context.Background()) })
		f.clients = append(f.clients, &pgClient{l: &f.l, conn: conn, rng: rand.New(rand.NewPCG(uint64(len(f.clients)), 7)), seq: &f.seq})
	}
	return f.clients[i]
}

// baskets records n baskets, each in its own transaction; a basket
// PostgreSQL aborts for a deadlock or a serialization failure is tried
// again (counted in retries).
func (c *pgClient) baskets(n int, at *atomic.Int64, retries *atomic.Int64, async bool) error {
	ctx := context.Background()
	for range n {
		for {
			tx, err := c.conn.Begin(ctx)
			if err != nil {
				return err
			}
			c.tx, c.batch = tx, &pgx.Batch{}
			if async {
				c.batch.Queue("SET LOCAL synchronous_commit = off")
			}
			err = c.l.basket(c, at.Add(1000))
			if err == nil {
				err = tx.SendBatch(ctx, c.batch).Close()
			}
			if err == nil {
				err = tx.Commit(ctx)
			} else {
				tx.Rollback(ctx)
			}
			var pe *pgconn.PgError
			if err != nil && errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001") {
				retries.Add(1)
				continue
			}
			if err != nil {
				return err
			}
			break
		}
	}
	return nil
}

// serverCPU is the CPU time of the server's processes (the postmaster
// and its children: the clients' backends, the WAL writer, the
// checkpointer), from /proc.
func (s *pgServer) serverCPU(b *testing.B) time.Duration {
	raw, err := os.ReadFile(filepath.Join(s.data, "postmaster.pid"))
	if err != nil {
		b.Fatal(err)
	}
	pm := strings.SplitN(string(raw), "\n", 2)[0]
	tick := 100 // USER_HZ
	var total int64
	ps, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range ps {
		st, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ... utime(14) stime(15)
		i := strings.LastIndexByte(string(st), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(st[i+1:]))
		pid := filepath.Base(filepath.Dir(p))
		if len(f) < 13 || (pid != pm && f[1] != pm) {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		sy, _ := strconv.ParseInt(f[12], 10, 64)
		total += u + sy
	}
	return time.Duration(total) * time.Second / time.Duration(tick)
}

// processCPU is this process's CPU time (the clients, and SQLite's
// writer for the baseline).
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// walLSN is the server's current WAL position, in bytes.
func walLSN(b *testing.B, db *sql.DB) int64 {
	var n int64
	if err := db.QueryRow(`SELECT pg_current_wal_lsn() - '0/0'::pg_lsn`).Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}

// BenchmarkLayoutPostgres reports, per layout (today's and one row a
// basket and one a customer, each also with the tenant's points total as
// one row every basket adds to) and per number of clients
// (PUNCHCARD_PG_CLIENTS, "1,16"), the baskets a second that concurrent
// clients record in PostgreSQL, one durable transaction a basket, after
// a history of PUNCHCARD_LAYOUT_HISTORY (50,000) baskets; the CPU a
// basket of the server's processes and of this one (the clients); the
// WAL bytes a basket; the baskets retried after a deadlock. In the same
// round, as the baseline: SQLite with today's layout and one writer in
// groups of 8 (BenchmarkLayout's), its baskets a second and the ratio
// to it (x-sqlite). Rounds alternate the layouts (PUNCHCARD_LAYOUT_ROUNDS,
// 3). PUNCHCARD_PG_ASYNC=1 commits without waiting for the WAL's flush
// (synchronous_commit off: not durable; what the flush costs).
func BenchmarkLayoutPostgres(b *testing.B) {
	if os.Getenv("PUNCHCARD_LAYOUT_PG") != "1" {
		b.Skip("set PUNCHCARD_LAYOUT_PG=1 (make bench-layout-pg): starts a PostgreSQL server and builds a history first")
	}
	hist := envInt("PUNCHCARD_LAYOUT_HISTORY", 50_000)
	rounds := envInt("PUNCHCARD_LAYOUT_ROUNDS", 3)
	async := os.Getenv("PUNCHCARD_PG_ASYNC") == "1"
	var nclients []int
	for _, s := range strings.Split(cmp.Or(os.Getenv("PUNCHCARD_PG_CLIENTS"), "1,16"), ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil && n > 0 {
			nclients = append(nclients, n)
		}
	}
	srv := startPostgres(b)
	top := b
	var fs []*pgFixture
	for i, l := range []pgLayout{pgToday, withTotals(pgToday), pgBasketCustomer, withTotals(pgBasketCustomer)} {
		if names := os.Getenv("PUNCHCARD_LAYOUTS"); names != "" && !slices.Contains(strings.Split(names, ","), l.name) {
			continue
		}
		name := "layout" + strconv.Itoa(i)
		f := &pgFixture{l: l, dsn: srv.dsn(name), db: srv.open(b, name, l)}
		f.at.Store(time.Now().UnixMicro())
		t0 := time.Now()
		var wg sync.WaitGroup
		var retries atomic.Int64
		errs := make([]error, 4)
		for k := range 4 { // the history, written by 4 clients without waiting for flushes
			c := f.client(b, k)
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[k] = c.baskets(hist/4, &f.at, &retries, true)
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			b.Fatal(err)
		}
		if _, err := f.db.Exec("VACUUM ANALYZE"); err != nil {
			b.Fatal(err)
		}
		var size int64
		if err := f.db.QueryRow("SELECT pg_database_size(current_database())").Scan(&size); err != nil {
			b.Fatal(err)
		}
		b.Logf("%s: a history of %d baskets in %v: %.0f B a basket on disk", l.name, hist, time.Since(t0).Round(time.Millisecond), float64(size)/float64(hist))
		fs = append(fs, f)
	}
	sq := open(b, today) // the SQLite baseline, BenchmarkLayout's today
	sqAt := time.Now().UnixMicro()
	sq.history(b, hist, &sqAt)
	for r := range rounds {
		var sqRate float64
		b.Run(fmt.Sprintf("round=%d/sqlite-today/clients=1", r), func(b *testing.B) {
			c0, t0 := processCPU(), time.Now()
			for n := 0; n < b.N; n += group {
				if err := sq.group(min(group, b.N-n), &sqAt); err != nil {
					b.Fatal(err)
				}
			}
			wall, cpu := time.Since(t0), processCPU()-c0
			sqRate = float64(b.N) / wall.Seconds()
			b.ReportMetric(sqRate, "baskets/s")
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/basket")
		})
		for _, f := range fs {
			for _, nc := range nclients {
				b.Run(fmt.Sprintf("round=%d/layout=%s/clients=%d", r, f.l.name, nc), func(b *testing.B) {
					cs := make([]*pgClient, nc)
					for i := range cs {
						cs[i] = f.client(top, i) // connections kept for the rounds after
					}
					var retries atomic.Int64
					w0, s0, c0, t0 := walLSN(b, f.db), srv.serverCPU(b), processCPU(), time.Now()
					var wg sync.WaitGroup
					errs := make([]error, nc)
					for i, c := range cs {
						n := b.N / nc
						if i < b.N%nc {
							n++
						}
						wg.Add(1)
						go func() {
							defer wg.Done()
							errs[i] = c.baskets(n, &f.at, &retries, async)
						}()
					}
					wg.Wait()
					wall := time.Since(t0)
					if err := errors.Join(errs...); err != nil {
						b.Fatal(err)
					}
					scpu, ccpu, wal := srv.serverCPU(b)-s0, processCPU()-c0, walLSN(b, f.db)-w0
					per := func(v float64) float64 { return v / float64(b.N) }
					rate := float64(b.N) / wall.Seconds()
					b.ReportMetric(rate, "baskets/s")
					b.ReportMetric(per(float64(scpu.Microseconds())), "server-cpu-us/basket")
					b.ReportMetric(per(float64(ccpu.Microseconds())), "client-cpu-us/basket")
					b.ReportMetric(per(float64(wal)), "wal-B/basket")
					b.ReportMetric(float64(retries.Load()), "retries")
					if sqRate > 0 {
						b.ReportMetric(rate/sqRate, "x-sqlite")
					}
				})
			}
		}
	}
}
