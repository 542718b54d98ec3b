package catalog

import (
	"context"
	"database/sql"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// After a catalog change every till of the tenant fetches its snapshot
// within the announcement's spread, and each request authenticates with
// the till's key, which the cache kept at the old version (keyEntry: any
// change of the tenant moves past it, a revocation among them). Instead of
// one read per key, once enough keys were read again one at a time at the
// new version (BulkKeysAfter, or an eighth of the keys the last such read
// found), the next request reads every key of the tenant once, at the new
// version, for the others (reloadKeys). A version that few keys are used
// at (one of many changes made one after the other) costs no such read.

// BulkKeysAfter is how many of a tenant's keys at least are read again one
// at a time at a catalog version before all of them are.
const BulkKeysAfter = 32

// keyMisses counts a tenant's keys read again one at a time at version;
// live is how many keys the tenant's last bulk read found.
type keyMisses struct {
	version uint64
	n       atomic.Int64
	live    atomic.Int64
}

// keyMissed counts one key of tenant read again on its own at version and
// reports whether enough were to read all of them instead.
func (c *Catalog) keyMissed(tenant protocol.TenantID, version uint64) bool {
	m, _ := c.cache.keyMisses.Load(tenant)
	var live int64
	if m != nil {
		live = m.(*keyMisses).live.Load()
	}
	if m == nil || m.(*keyMisses).version != version {
		fresh := &keyMisses{version: version}
		fresh.live.Store(live)
		if m == nil || m.(*keyMisses).version < version {
			c.cache.keyMisses.Store(tenant, fresh)
		}
		m = fresh
	}
	return m.(*keyMisses).n.Add(1) > max(BulkKeysAfter, live/8)
}

const queryTenantKeys = `SELECT k.hash, k.id, k.tenant, k.role, k.name, k.agent, k.created_at, k.revoked_at, COALESCE(t.version, 0)
	FROM catalog_keys k LEFT JOIN catalog_tenants t ON t.id = k.tenant WHERE k.tenant = ?`

// reloadKeys caches every live key of tenant at the tenant's current
// version, once per tenant and version (concurrent callers share the
// read). It does nothing when the keys would overflow the cache.
func (c *Catalog) reloadKeys(ctx context.Context, tenant protocol.TenantID, g *gen) {
	ch := c.cache.keyLoads.DoChan(fmt.Sprintf("%s\x00%d", tenant, g.version), func() (any, error) {
		return nil, c.loadKeys(context.WithoutCancel(ctx), tenant)
	})
	select {
	case <-ch:
	case <-ctx.Done():
	}
}

func (c *Catalog) loadKeys(ctx context.Context, tenant protocol.TenantID) error {
	rows, err := c.db.QueryContext(ctx, queryTenantKeys, string(tenant))
	if err != nil {
		return err
	}
	defer rows.Close()
	type row struct {
		h [32]byte
		k Key
	}
	var live []row
	var v uint64
	for rows.Next() {
		var r row
		var hash []byte
		var created int64
		var revoked sql.NullInt64
		if err := rows.Scan(&hash, &r.k.ID, &r.k.Tenant, &r.k.Role, &r.k.Name, &r.k.Agent, &created, &revoked, &v); err != nil {
			return err
		}
		if revoked.Valid || len(hash) != len(r.h) {
			continue
		}
		copy(r.h[:], hash)
		r.k.CreatedAt, r.k.RevokedAt = time.UnixMicro(created).UTC(), time.Time{}
		live = append(live, r)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	g := c.observe(tenant, v)
	if g.version != v {
		return nil // a newer version was seen meanwhile: these may be stale
	}
	if m, ok := c.cache.keyMisses.Load(tenant); ok && m.(*keyMisses).version == v {
		m.(*keyMisses).live.Store(int64(len(live)))
	}
	c.cache.mu.Lock()
	defer c.cache.mu.Unlock()
	if c.cache.keys == nil {
		return nil
	}
	// The tenant's entries of older versions go: a key not live now (a
	// revoked one) must not bring every later request of it here again.
	for h, e := range c.cache.keys {
		if e.k.Tenant == tenant && e.g != g {
			delete(c.cache.keys, h)
		}
	}
	if len(c.cache.keys)+len(live) > maxCached {
		return nil
	}
	for _, r := range live {
		c.cache.keys[r.h] = keyEntry{r.k, g}
	}
	return nil
}
