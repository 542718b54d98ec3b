// Package catalog is the hub's catalog on SQLite: tenants, API keys and
// their roles, agents and their credentials, campaigns (the rules JSON with
// status and revisions), plain codes, issued tokens, customers, tenant
// signing keys and an audit log.
//
// It shares one database file with store/ledger: its migrations are named
// catalog_NNN_*.sql and its tables catalog_*, so the hub opens one file with
// store.Open and hands the *sql.DB to both (New applies the catalog's
// migrations; ledger.New applies the ledger's).
//
// Every change runs in one transaction that also writes an audit row (who,
// what, when, before, after) and bumps the tenant's catalog version. Rows an
// agent snapshot carries remember the version that last changed them, so a
// delta snapshot since version N is a "version > N" query.
package catalog

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"
	"time"

	"github.com/punchcard/punchcard/protocol"
	pcatalog "github.com/punchcard/punchcard/protocol/catalog"
	pledger "github.com/punchcard/punchcard/protocol/ledger"
	"github.com/punchcard/punchcard/store"
)

//go:embed migrations/catalog_*.sql
var migrationFS embed.FS

// Migrations are the catalog's schema migrations (catalog_NNN_*.sql), for
// callers that migrate a shared database themselves; New applies them too.
var Migrations fs.FS = mustSub(migrationFS, "migrations")

func mustSub(f embed.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err) // the embedded directory exists at build time
	}
	return sub
}

// Catalog is the hub's catalog. It is safe for concurrent use.
type Catalog struct {
	db *sql.DB

	// Now is the clock; default time.Now.
	Now func() time.Time
	// Rand is the source of secrets, serials and signing keys; default
	// crypto/rand.Reader.
	Rand io.Reader
	// MaxTokenTTL bounds a token's lifetime; default DefaultMaxTokenTTL.
	MaxTokenTTL time.Duration
	// RulesRetention is how long a campaign's superseded state stays in
	// the rules history for re-deriving tills' facts (RulesAt); default
	// DefaultRulesRetention.
	RulesRetention time.Duration

	// CacheTTL bounds how long the read cache (cache.go) trusts a
	// tenant's catalog version without reading it again; default
	// DefaultCacheTTL, negative turns the cache off.
	CacheTTL time.Duration
	// OnEvents, when set, is called after each committed change of a
	// tenant's catalog (the changes that write events do so in that
	// transaction, catalog_008_events.sql), so that a reader in this
	// process (the webhook relay) need not wait for its poll. A change
	// without an event wakes it for one empty read. It must not block.
	OnEvents func()

	rules  rulesCache
	stores sync.Map // agentKey -> rules.Store
	cache  readCache
}

// Defaults.
const (
	DefaultMaxTokenTTL = 400 * 24 * time.Hour
	DefaultTokenTTL    = 90 * 24 * time.Hour
	DefaultListLimit   = 100
	MaxListLimit       = pcatalog.MaxListLimit
)

// New uses db (opened by store.Open, possibly shared with store/ledger) and
// applies the catalog's migrations to it. The caller closes db.
func New(ctx context.Context, db *sql.DB) (*Catalog, error) {
	if err := store.Migrate(ctx, db, Migrations); err != nil {
		return nil, err
	}
	return &Catalog{db: db, Now: time.Now, Rand: rand.Reader, MaxTokenTTL: DefaultMaxTokenTTL, RulesRetention: DefaultRulesRetention}, nil
}

// DB is the underlying database.
func (c *Catalog) DB() *sql.DB { return c.db }

// now is the catalog's clock cut to protocol.TimePrecision, so that a
// time answered on a write is the time a later read answers.
func (c *Catalog) now() time.Time { return protocol.APITime(c.Now()) }

func notFound(what, id string) error {
	return protocol.Errorf(protocol.CodeNotFound, "%s %q not found", what, id)
}

func conflict(field, format string, args ...any) error {
	return &protocol.Error{Code: protocol.CodeConflict, Message: fmt.Sprintf(format, args...), Field: field}
}

// write runs fn in a write transaction for tenant: it bumps the tenant's
// catalog version first (so fn can stamp rows with it), and commits only if
// fn succeeds. A tenant of "" is a platform change without a version.
func (c *Catalog) write(ctx context.Context, tenant protocol.TenantID, fn func(tx *sql.Tx, v uint64, now time.Time) error) error {
	tx, err := c.db.BeginTx(ctx, nil)
	// A catalog change is rare and nothing is written before BEGIN
	// IMMEDIATE takes the lock: when the ledger's writers hold the file
	// past the busy timeout (a loaded machine), wait a few timeouts more
	// rather than fail the change.
	for try := 0; try < beginRetries && pledger.IsBusy(err) && ctx.Err() == nil; try++ {
		tx, err = c.db.BeginTx(ctx, nil)
	}
	if err != nil {
		return fmt.Errorf("catalog: begin: %w", err)
	}
	defer tx.Rollback()
	now := c.now()
	var v uint64
	if tenant != "" {
		if v, err = bump(ctx, tx, tenant, now); err != nil {
			return err
		}
	}
	if err := fn(tx, v, now); err != nil {
		if errors.Is(err, errNoChange) {
			return nil // rolled back: no version bump for a no-op
		}
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("catalog: commit: %w", err)
	}
	if tenant != "" && c.CacheTTL >= 0 {
		c.observe(tenant, v) // this process's own change: drop the cache at once
	}
	if tenant != "" && c.OnEvents != nil {
		c.OnEvents()
	}
	return nil
}

// beginRetries is how many busy timeouts more a catalog change waits for
// the write lock.
const beginRetries = 5

// errNoChange, returned by a write's fn, rolls the transaction back and
// reports success: the change was already in place.
var errNoChange = errors.New("catalog: no change")

// read runs fn in a read transaction, so it sees one consistent state.
func (c *Catalog) read(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := c.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("catalog: begin: %w", err)
	}
	defer tx.Rollback()
	return fn(tx)
}

// bump increments the tenant's catalog version and returns the new one.
func bump(ctx context.Context, tx *sql.Tx, tenant protocol.TenantID, now time.Time) (uint64, error) {
	var v uint64
	err := tx.QueryRowContext(ctx, `UPDATE catalog_tenants SET version = version + 1, changed_at = ? WHERE id = ? RETURNING version`,
		now.UnixMicro(), string(tenant)).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, notFound("tenant", string(tenant))
	}
	if err != nil {
		return 0, fmt.Errorf("catalog: bump version: %w", err)
	}
	return v, nil
}

// audit writes one audit row in tx. before and after are marshalled to
// JSON; nil stays NULL.
func audit(ctx context.Context, tx *sql.Tx, tenant protocol.TenantID, actor Actor, action, target string, before, after any, v uint64, now time.Time) error {
	b, err := jsonOrNil(before)
	if err != nil {
		return err
	}
	a, err := jsonOrNil(after)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO catalog_audit (tenant, actor, action, target, before, after, version, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		string(tenant), actor.String(), action, target, b, a, v, now.UnixMicro())
	if err != nil {
		return fmt.Errorf("catalog: audit %s: %w", action, err)
	}
	return nil
}

func jsonOrNil(v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("catalog: audit json: %w", err)
	}
	return string(b), nil
}

// Audit lists a tenant's audit entries with an ID above after, oldest
// first, at most limit (DefaultListLimit when 0).
func (c *Catalog) Audit(ctx context.Context, tenant protocol.TenantID, after int64, limit int) ([]AuditEntry, error) {
	limit = clampLimit(limit)
	rows, err := c.db.QueryContext(ctx, `SELECT id, tenant, actor, action, target, before, after, version, at FROM catalog_audit WHERE tenant = ? AND id > ? ORDER BY id LIMIT ?`,
		string(tenant), after, limit)
	if err != nil {
		return nil, fmt.Errorf("catalog: audit: %w", err)
	}
	defer rows.Close()
	out := []AuditEntry{}
	for rows.Next() {
		var e AuditEntry
		var before, afterJ sql.NullString
		var at int64
		if err := rows.Scan(&e.ID, &e.Tenant, &e.Actor, &e.Action, &e.Target, &before, &afterJ, &e.Version, &at); err != nil {
			return nil, fmt.Errorf("catalog: audit: %w", err)
		}
		if before.Valid {
			e.Before = json.RawMessage(before.String)
		}
		if afterJ.Valid {
			e.After = json.RawMessage(afterJ.String)
		}
		e.At = time.UnixMicro(at).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

func clampLimit(n int) int {
	if n <= 0 {
		return DefaultListLimit
	}
	return min(n, MaxListLimit)
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// random returns n random bytes as lower-case base-32 text.
func (c *Catalog) random(n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(c.Rand, b); err != nil {
		return "", fmt.Errorf("catalog: random: %w", err)
	}
	return strings.ToLower(b32.EncodeToString(b)), nil
}

func hashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

func micros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

func fromMicros(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.UnixMicro(n.Int64).UTC()
}

// isUnique reports whether err is a UNIQUE or PRIMARY KEY violation.
func isUnique(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "UNIQUE constraint failed") || strings.Contains(err.Error(), "PRIMARY KEY"))
}
