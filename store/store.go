// Package store is Punchcard's persistence on SQLite (modernc.org/sqlite,
// pure Go). It is the only package tree that imports the SQLite driver.
//
// Open applies the pragmas every database here needs (WAL, foreign keys, a
// busy timeout) and the embedded migrations of its caller, in order, each in
// its own transaction. The hub's ledger (store/ledger) and the agent's cache
// and outbox (store/agentdb) are built on it.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"sort"
	"strings"

	_ "modernc.org/sqlite" // the SQLite driver, registered as "sqlite"
)

// Sync is SQLite's synchronous setting. Punchcard's agent commits
// redemptions with SyncFull so that a power cut after the POS got its answer
// loses nothing; WAL with SyncNormal can lose the last commits on power loss
// (never corrupts).
type Sync string

// Synchronous settings.
const (
	SyncFull   Sync = "FULL"
	SyncNormal Sync = "NORMAL"
)

// Options for Open. The zero value is usable: Default* values fill in.
type Options struct {
	Sync          Sync  // default SyncFull
	BusyTimeoutMS int   // default DefaultBusyTimeoutMS
	MaxOpenConns  int   // default DefaultMaxOpenConns
	Migrations    fs.FS // *.sql files applied in lexical order; may be nil
	// SecureDelete has SQLite overwrite deleted and replaced content with
	// zeros (PRAGMA secure_delete), so that an erased customer's data does
	// not linger in free space of the file. It costs some write I/O; the
	// hub turns it on, the agent does not need it. Default off.
	SecureDelete bool
	// NoAutoCheckpoint turns SQLite's checkpoint on commit off
	// (PRAGMA wal_autocheckpoint=0 on every connection): no committing
	// writer copies the WAL into the database file. The WAL then grows
	// without bound unless a Checkpointer (checkpointer.go) runs.
	NoAutoCheckpoint bool
	// Trace, when set, is called with the text of every statement the
	// database prepares or runs, on the caller's goroutine: tests use it
	// to check the query plan of every statement a path runs. Default nil.
	Trace func(query string)
}

// Defaults.
const (
	DefaultBusyTimeoutMS = 5000
	DefaultMaxOpenConns  = 4
)

func (o *Options) ensureDefaults() {
	if o.Sync == "" {
		o.Sync = SyncFull
	}
	if o.BusyTimeoutMS == 0 {
		o.BusyTimeoutMS = DefaultBusyTimeoutMS
	}
	if o.MaxOpenConns == 0 {
		o.MaxOpenConns = DefaultMaxOpenConns
	}
}

// Open opens (creating if needed) the SQLite database at path and migrates
// it. Every pooled connection gets the same pragmas through the DSN.
func Open(ctx context.Context, path string, opts Options) (*sql.DB, error) {
	opts.ensureDefaults()
	if path == "" {
		return nil, errors.New("store: empty database path")
	}
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", opts.BusyTimeoutMS))
	q.Add("_pragma", "synchronous("+string(opts.Sync)+")")
	if opts.SecureDelete {
		q.Add("_pragma", "secure_delete(ON)")
	}
	if opts.NoAutoCheckpoint {
		q.Add("_pragma", "wal_autocheckpoint(0)")
	}
	q.Add("_txlock", "immediate")
	dsn := "file:" + path + "?" + q.Encode()
	db := sql.OpenDB(connector{dsn: dsn, trace: opts.Trace}) // stmtcache.go
	db.SetMaxOpenConns(opts.MaxOpenConns)
	// Idle connections are kept, with their prepared statements: the
	// default of 2 closed and reopened the others under load.
	db.SetMaxIdleConns(opts.MaxOpenConns)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	if opts.Migrations != nil {
		if err := Migrate(ctx, db, opts.Migrations); err != nil {
			db.Close()
			return nil, err
		}
	}
	return db, nil
}

// Checkpoint copies the WAL into the database file and truncates the WAL
// to zero bytes (PRAGMA wal_checkpoint(TRUNCATE)), so that content an
// erase overwrote is gone from the WAL too. It reports false, without an
// error, when a reader kept it from completing (SQLITE_BUSY); the WAL is
// then truncated by a later checkpoint.
func Checkpoint(ctx context.Context, db *sql.DB) (bool, error) {
	var busy, logFrames, done int
	if err := db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logFrames, &done); err != nil {
		return false, fmt.Errorf("store: checkpoint: %w", err)
	}
	return busy == 0, nil
}

// Migrate applies the *.sql files of migrations that are not yet recorded
// in the schema_migrations table, in lexical order, each in one transaction.
func Migrate(ctx context.Context, db *sql.DB, migrations fs.FS) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)`); err != nil {
		return fmt.Errorf("store: migrations table: %w", err)
	}
	names, err := fs.Glob(migrations, "*.sql")
	if err != nil {
		return fmt.Errorf("store: list migrations: %w", err)
	}
	sort.Strings(names)
	if err := refuseNewer(ctx, db, names); err != nil {
		return err
	}
	for _, name := range names {
		if err := migrateOne(ctx, db, migrations, name); err != nil {
			return err
		}
	}
	return nil
}

// ErrSchemaNewer: the database records a migration of this binary's
// families that the binary does not have. It was migrated by a newer
// Punchcard; this one would run its statements against tables and views
// it does not know. Open and Migrate refuse it before they change
// anything.
var ErrSchemaNewer = errors.New("store: database schema is newer than this binary")

// migrationFamily is a migration's name up to its first digit
// ("ledger_", "catalog_"; "" for the agent's): the databases the hub
// shares between packages keep each package's migrations apart by it.
func migrationFamily(name string) string {
	if i := strings.IndexAny(name, "0123456789"); i >= 0 {
		return name[:i]
	}
	return name
}

// refuseNewer returns ErrSchemaNewer, naming the migrations, when the
// database records one of names' families that names does not hold: a
// downgrade. Migrations of other families (another package's, in the
// same file) are not this call's to judge.
func refuseNewer(ctx context.Context, db *sql.DB, names []string) error {
	known := make(map[string]bool, len(names))
	families := map[string]bool{}
	for _, n := range names {
		known[n] = true
		families[migrationFamily(n)] = true
	}
	rows, err := db.QueryContext(ctx, `SELECT name FROM schema_migrations ORDER BY name`)
	if err != nil {
		return fmt.Errorf("store: read migrations: %w", err)
	}
	defer rows.Close()
	var unknown []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return fmt.Errorf("store: read migrations: %w", err)
		}
		if families[migrationFamily(n)] && !known[n] {
			unknown = append(unknown, n)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: read migrations: %w", err)
	}
	if len(unknown) > 0 {
		return fmt.Errorf("%w: it records %s, which this binary does not have (a newer Punchcard migrated it); run that version, or restore a backup taken before the upgrade",
			ErrSchemaNewer, strings.Join(unknown, ", "))
	}
	return nil
}

func migrateOne(ctx context.Context, db *sql.DB, migrations fs.FS, name string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: migrate %s: %w", name, err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE name = ?`, name).Scan(&n); err != nil {
		return fmt.Errorf("store: migrate %s: %w", name, err)
	}
	if n > 0 {
		return nil
	}
	body, err := fs.ReadFile(migrations, name)
	if err != nil {
		return fmt.Errorf("store: migrate %s: %w", name, err)
	}
	if strings.TrimSpace(string(body)) != "" {
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			return fmt.Errorf("store: migrate %s: %w", name, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (name) VALUES (?)`, name); err != nil {
		return fmt.Errorf("store: migrate %s: %w", name, err)
	}
	return tx.Commit()
}
