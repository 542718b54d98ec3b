package catalog

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/codes"
	"github.com/punchcard/punchcard/protocol/segment"
)

// The read cache of the online path. Every catalog change of a tenant bumps
// its stored version (write), so what the catalog read of a tenant stays
// true until the stored version moves: the cache keeps, per tenant, the
// campaign and code facts, codes, customers and API keys it read at one
// version, and drops them all when it sees a newer one.
//
// It sees a newer version at once when this process made the change
// (write) or when FactsVersionTx reads the stored version (the ledger's
// online writer, inside its transaction, once per group commit), and
// otherwise at most CacheTTL after the last time it looked: another
// process writing the same file (a second hub) never goes unnoticed for
// longer than that, and Version, the online decision's rules and every
// cached lookup follow it. The ledger's online writer re-checks inside its
// write transaction that the facts it records under are of the stored
// version (ledger.VersionedFacts), so a kill switch or a new limit
// committed between the decision and the record still refuses the basket.
//
// An entry is stored only into the per-tenant generation it was looked up
// in, which was current when the lookup began, so the cache never holds
// data older than its version. Platform keys (no tenant, no version) are
// not cached, nor unknown secrets.

// DefaultCacheTTL bounds how long the cache trusts a tenant's version
// without reading it again (Catalog.CacheTTL).
const DefaultCacheTTL = time.Second

// maxCached bounds each per-tenant map (codes, customers, ...); a full map
// is emptied and filled again.
const maxCached = 100_000

// gen is what the cache holds of one tenant at one catalog version.
type gen struct {
	version uint64
	checked atomic.Int64 // UnixNano of the last time the stored version was seen equal

	mu        sync.RWMutex
	camps     map[protocol.CampaignID]campEntry
	codeFacts map[protocol.CodeID]codeFactsEntry
	codes     map[string]codeEntry // by normalized code
	customers map[protocol.CustomerID]customerEntry
	// segs is the tenant's segment definitions (SegmentDefs), read once
	// per version: every online decision and purchase asks for them.
	segs   []segment.Definition
	segsOK bool
	// agentSecrets are the agents' verified secret hashes (sha256) at
	// the version: a key rotation or revocation moves the version.
	agentSecrets map[protocol.AgentID][]byte
	// custStamp moves with every customer-state change within the
	// version (CustomerChanged): a customer read before it is not stored.
	custStamp atomic.Uint64
}

type (
	campEntry struct {
		f     protocol.CampaignFacts
		found bool
	}
	codeFactsEntry struct {
		f     protocol.CodeFacts
		found bool
	}
	codeEntry struct {
		cd    Code
		found bool
	}
	customerEntry struct {
		cu    Customer
		found bool
	}
	keyEntry struct {
		k Key
		g *gen // the tenant's generation it was read in
	}
)

func newGen(v uint64, now time.Time) *gen {
	g := &gen{version: v}
	g.checked.Store(now.UnixNano())
	return g
}

type readCache struct {
	mu      sync.Mutex
	tenants map[protocol.TenantID]*gen
	keys    map[[32]byte]keyEntry
	stmts   sync.Map // query -> *sql.Stmt, prepared on the pool
	// keyLoads coalesces the reads of a tenant's keys, keyMisses counts
	// the keys read one at a time per tenant and version (keybulk.go).
	keyLoads  singleflight.Group
	keyMisses sync.Map // tenant -> *keyMisses
}

func (c *Catalog) ttl() time.Duration {
	if c.CacheTTL == 0 {
		return DefaultCacheTTL
	}
	return c.CacheTTL
}

// observe records that the tenant's stored version is v (read now, or just
// written by this process) and returns the generation for v, a new empty
// one if v is newer than the cached one.
func (c *Catalog) observe(tenant protocol.TenantID, v uint64) *gen {
	now := time.Now()
	c.cache.mu.Lock()
	defer c.cache.mu.Unlock()
	if c.cache.tenants == nil {
		c.cache.tenants = map[protocol.TenantID]*gen{}
	}
	g := c.cache.tenants[tenant]
	switch {
	case g == nil || v > g.version:
		g = newGen(v, now)
		c.cache.tenants[tenant] = g
	case v == g.version:
		g.checked.Store(now.UnixNano())
	default:
		// An older read that lost a race with a newer one: keep the newer.
	}
	return g
}

// current returns the tenant's generation, reading the stored version when
// the cached one is older than the TTL (or unknown). A nil generation
// (caching off) means "read the database".
func (c *Catalog) current(ctx context.Context, tenant protocol.TenantID) (*gen, error) {
	if c.CacheTTL < 0 {
		return nil, nil
	}
	c.cache.mu.Lock()
	g := c.cache.tenants[tenant]
	c.cache.mu.Unlock()
	if g != nil && time.Since(time.Unix(0, g.checked.Load())) < c.ttl() {
		return g, nil
	}
	v, err := c.storedVersion(ctx, nil, tenant)
	if err != nil {
		return nil, err
	}
	return c.observe(tenant, v), nil
}

const queryVersion = `SELECT version FROM catalog_tenants WHERE id = ?`

// storedVersion reads the tenant's version in tx, or on the pool when tx is
// nil.
func (c *Catalog) storedVersion(ctx context.Context, tx *sql.Tx, tenant protocol.TenantID) (uint64, error) {
	var v uint64
	var err error
	if tx != nil {
		if st, perr := c.stmt(ctx, queryVersion); perr == nil {
			err = tx.StmtContext(ctx, st).QueryRowContext(ctx, string(tenant)).Scan(&v)
		} else {
			err = tx.QueryRowContext(ctx, queryVersion, string(tenant)).Scan(&v)
		}
	} else {
		err = c.queryRow(ctx, queryVersion, string(tenant)).Scan(&v)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return 0, notFound("tenant", string(tenant))
	}
	if err != nil {
		return 0, fmt.Errorf("catalog: version: %w", err)
	}
	return v, nil
}

// queryRow runs a hot read with a statement prepared once on the pool
// (modernc's SQLite otherwise parses the text on every call).
func (c *Catalog) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	st, err := c.stmt(ctx, q)
	if err != nil {
		return c.db.QueryRowContext(ctx, q, args...) // reports the error
	}
	return st.QueryRowContext(ctx, args...)
}

// stmt returns q prepared on the pool, once.
func (c *Catalog) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	if st, ok := c.cache.stmts.Load(q); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := c.db.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if prev, loaded := c.cache.stmts.LoadOrStore(q, st); loaded {
		st.Close()
		st = prev.(*sql.Stmt)
	}
	return st, nil
}

// stmtQuerier runs QueryRowContext through queryRow, for the get* helpers.
type stmtQuerier struct{ c *Catalog }

func (q stmtQuerier) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return q.c.queryRow(ctx, query, args...)
}

func (q stmtQuerier) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return q.c.db.QueryContext(ctx, query, args...)
}

// FactsVersion implements ledger.VersionedFacts: the version every facts
// answer given after it returns is of, or newer (the cached generation's).
// An unknown tenant is at version 0 (it has no campaigns nor codes).
func (c *Catalog) FactsVersion(ctx context.Context, tenant protocol.TenantID) (uint64, error) {
	g, err := c.current(ctx, tenant)
	if protocol.ErrorCode(err) == protocol.CodeNotFound {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if g == nil {
		return c.storedVersion(ctx, nil, tenant)
	}
	return g.version, nil
}

// FactsVersionTx implements ledger.VersionedFacts: the stored version read
// in tx (the ledger's write transaction), which the cache then follows.
func (c *Catalog) FactsVersionTx(ctx context.Context, tx *sql.Tx, tenant protocol.TenantID) (uint64, error) {
	v, err := c.storedVersion(ctx, tx, tenant)
	if protocol.ErrorCode(err) == protocol.CodeNotFound {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if c.CacheTTL >= 0 {
		c.observe(tenant, v)
	}
	return v, nil
}

// lookup answers key from the generation's map m, or loads it and stores
// the answer in m (made when nil, emptied when full). The generation was
// taken before load runs, so what load reads is of its version or newer.
func lookup[K comparable, V any](g *gen, m *map[K]V, key K, load func() (V, error)) (V, error) {
	g.mu.RLock()
	v, ok := (*m)[key]
	g.mu.RUnlock()
	if ok {
		return v, nil
	}
	v, err := load()
	if err != nil {
		return v, err
	}
	g.mu.Lock()
	if *m == nil || len(*m) >= maxCached {
		*m = map[K]V{}
	}
	(*m)[key] = v
	g.mu.Unlock()
	return v, nil
}

// CampaignFacts implements ledger.Facts from the stored campaign: its
// limits, its currency, its kill switch time and every interval it was
// stopped in (so a restart does not clear the flag of redemptions made
// while it was stopped). Answers are cached per catalog version.
func (c *Catalog) CampaignFacts(ctx context.Context, tenant protocol.TenantID, campaign protocol.CampaignID) (protocol.CampaignFacts, bool, error) {
	g, err := c.current(ctx, tenant)
	if err != nil || g == nil {
		if protocol.ErrorCode(err) == protocol.CodeNotFound {
			err = nil // an unknown tenant has no campaigns
		}
		if err != nil {
			return protocol.CampaignFacts{}, false, err
		}
		return c.campaignFacts(ctx, tenant, campaign)
	}
	e, err := lookup(g, &g.camps, campaign, func() (campEntry, error) {
		f, found, err := c.campaignFacts(ctx, tenant, campaign)
		return campEntry{f, found}, err
	})
	return e.f, e.found, err
}

// CodeFacts implements ledger.Facts for plain codes (by key) and token
// serials. Answers are cached per catalog version.
func (c *Catalog) CodeFacts(ctx context.Context, tenant protocol.TenantID, code protocol.CodeID) (protocol.CodeFacts, bool, error) {
	g, err := c.current(ctx, tenant)
	if protocol.ErrorCode(err) == protocol.CodeNotFound {
		g, err = nil, nil
	}
	if err != nil {
		return protocol.CodeFacts{}, false, err
	}
	if g == nil {
		return c.codeFacts(ctx, tenant, code)
	}
	e, err := lookup(g, &g.codeFacts, code, func() (codeFactsEntry, error) {
		f, found, err := c.codeFacts(ctx, tenant, code)
		return codeFactsEntry{f, found}, err
	})
	return e.f, e.found, err
}

// Code returns a code by its printed or typed form, cached per catalog
// version (callers must not modify the result's slices). Reason codes:
// not_found.
func (c *Catalog) Code(ctx context.Context, tenant protocol.TenantID, code string) (Code, error) {
	g, err := c.current(ctx, tenant)
	if err != nil || g == nil {
		if err != nil && protocol.ErrorCode(err) != protocol.CodeNotFound {
			return Code{}, err
		}
		return getCode(ctx, stmtQuerier{c}, tenant, code)
	}
	e, err := lookup(g, &g.codes, codes.Normalize(code), func() (codeEntry, error) {
		cd, err := getCode(ctx, stmtQuerier{c}, tenant, code)
		if protocol.ErrorCode(err) == protocol.CodeNotFound {
			return codeEntry{}, nil
		}
		return codeEntry{cd, err == nil}, err
	})
	if err != nil {
		return Code{}, err
	}
	if !e.found {
		return Code{}, notFound("code", code)
	}
	return e.cd, nil
}

// Customer returns a customer (an erased one keeps only its ID and times),
// cached per catalog version (callers must not modify its Attributes).
// Reason codes: not_found.
func (c *Catalog) Customer(ctx context.Context, tenant protocol.TenantID, id protocol.CustomerID) (Customer, error) {
	g, err := c.current(ctx, tenant)
	if err != nil || g == nil {
		if err != nil && protocol.ErrorCode(err) != protocol.CodeNotFound {
			return Customer{}, err
		}
		return getCustomer(ctx, stmtQuerier{c}, tenant, id)
	}
	stamp := g.custStamp.Load()
	e, err := lookup(g, &g.customers, id, func() (customerEntry, error) {
		cu, err := getCustomer(ctx, stmtQuerier{c}, tenant, id)
		if protocol.ErrorCode(err) == protocol.CodeNotFound {
			return customerEntry{}, nil
		}
		return customerEntry{cu, err == nil}, err
	})
	if err == nil && g.custStamp.Load() != stamp {
		// A tier changed while this was read: keep nothing of that time.
		g.mu.Lock()
		delete(g.customers, id)
		g.mu.Unlock()
	}
	if err != nil {
		return Customer{}, err
	}
	if !e.found {
		return Customer{}, notFound("customer", string(id))
	}
	return e.cu, nil
}

// queryKeyByHash reads a key and its tenant's version in one statement,
// so that the key is as of that version.
const queryKeyByHash = `SELECT k.id, k.tenant, k.role, k.name, k.agent, k.created_at, k.revoked_at, COALESCE(t.version, 0)
	FROM catalog_keys k LEFT JOIN catalog_tenants t ON t.id = k.tenant WHERE k.hash = ?`

// Authenticate returns the key whose secret this is. It returns ErrBadKey
// (unauthenticated) for an unknown or revoked secret. A tenant's key is
// cached until its tenant's catalog version moves (revoking a key bumps
// it), so a key revoked by this process fails at once, and one revoked by
// another process sharing the file within CacheTTL.
func (c *Catalog) Authenticate(ctx context.Context, secret string) (Key, error) {
	if secret == "" || len(secret) > 200 {
		return Key{}, ErrBadKey
	}
	h := sha256.Sum256([]byte(secret))
	if c.CacheTTL >= 0 {
		c.cache.mu.Lock()
		e, ok := c.cache.keys[h]
		c.cache.mu.Unlock()
		if ok {
			g, err := c.current(ctx, e.k.Tenant)
			if err == nil && g == e.g {
				return e.k, nil
			}
			if err == nil && g != nil && g.version > e.g.version && c.keyMissed(e.k.Tenant, g.version) {
				// Kept at an older version, like enough others: the
				// tenant's keys are read again at once for every till
				// that asks next (keybulk.go).
				c.reloadKeys(ctx, e.k.Tenant, g)
				c.cache.mu.Lock()
				e, ok = c.cache.keys[h]
				c.cache.mu.Unlock()
				if ok && e.g == g {
					return e.k, nil
				}
			}
		}
	}
	var k Key
	var created int64
	var revoked sql.NullInt64
	var v uint64
	err := c.queryRow(ctx, queryKeyByHash, h[:]).Scan(&k.ID, &k.Tenant, &k.Role, &k.Name, &k.Agent, &created, &revoked, &v)
	if errors.Is(err, sql.ErrNoRows) {
		return Key{}, ErrBadKey
	}
	if err != nil {
		return Key{}, fmt.Errorf("catalog: key: %w", err)
	}
	k.CreatedAt, k.RevokedAt = time.UnixMicro(created).UTC(), fromMicros(revoked)
	if !k.RevokedAt.IsZero() {
		return Key{}, ErrBadKey
	}
	if c.CacheTTL >= 0 && k.Tenant != "" {
		// Cached under the generation of the version read with the key:
		// any later change of the tenant (a revocation) moves past it.
		if g := c.observe(k.Tenant, v); g.version == v {
			c.cache.mu.Lock()
			if c.cache.keys == nil || len(c.cache.keys) >= maxCached {
				c.cache.keys = map[[32]byte]keyEntry{}
			}
			c.cache.keys[h] = keyEntry{k, g}
			c.cache.mu.Unlock()
		}
	}
	return k, nil
}

// CustomerChanged tells the read cache that customer state (a tier the
// ledger set) changed in a committed transaction without moving the
// tenant's catalog version: the customers cached at the version are read
// again.
func (c *Catalog) CustomerChanged(tenant protocol.TenantID) {
	c.cache.mu.Lock()
	g := c.cache.tenants[tenant]
	c.cache.mu.Unlock()
	if g == nil {
		return
	}
	g.custStamp.Add(1)
	g.mu.Lock()
	g.customers = nil
	g.mu.Unlock()
}

// cachedAgentSecret compares hash with the agent's secret hash verified
// at the tenant's current version; found is false when none is kept.
func (c *Catalog) cachedAgentSecret(ctx context.Context, tenant protocol.TenantID, agent protocol.AgentID, hash []byte) (ok, found bool) {
	g, err := c.current(ctx, tenant)
	if err != nil || g == nil {
		return false, false
	}
	g.mu.RLock()
	h, found := g.agentSecrets[agent]
	g.mu.RUnlock()
	if !found {
		return false, false
	}
	if subtle.ConstantTimeCompare(h, hash) == 1 {
		return true, true
	}
	return false, false // another secret: read again (a rotation this process has not seen)
}

// cacheAgentSecret keeps an agent's verified secret hash, read with the
// tenant's version v, in the generation of v.
func (c *Catalog) cacheAgentSecret(tenant protocol.TenantID, agent protocol.AgentID, v uint64, hash []byte) {
	if c.CacheTTL < 0 {
		return
	}
	g := c.observe(tenant, v)
	if g.version != v {
		return
	}
	g.mu.Lock()
	if g.agentSecrets == nil || len(g.agentSecrets) >= maxCached {
		g.agentSecrets = map[protocol.AgentID][]byte{}
	}
	g.agentSecrets[agent] = hash
	g.mu.Unlock()
}
