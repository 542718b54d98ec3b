package catalog

import (
	"context"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store"
)

// Recall returns the answer remembered for a tenant's idempotency key.
// found is false for a new key. A key used before for a different request
// (another request hash) is refused with CodeIdempotencyReuse.
func (c *Catalog) Recall(ctx context.Context, tenant protocol.TenantID, key string, request []byte) (Remembered, bool, error) {
	st, body, found, err := store.RecallIdem(ctx, c.db, tenant, key, request)
	return Remembered{Status: st, Body: body}, found, err
}

// Remember stores the answer to a request with an idempotency key. The
// first answer stored wins; a later one for the same key is ignored. The
// online writer records its own (ledger.RedeemOnce) through the same
// functions of package store, in the basket's transaction.
func (c *Catalog) Remember(ctx context.Context, tenant protocol.TenantID, key string, request []byte, r Remembered) error {
	_, err := store.RememberIdem(ctx, c.db, tenant, key, request, r.Status, r.Body, c.now())
	return err
}

// PruneIdempotency deletes up to limit idempotency records written
// before before (the catalog's and the ledger's: one table), oldest
// first, and reports how many it deleted (store.PruneIdem).
func (c *Catalog) PruneIdempotency(ctx context.Context, before time.Time, limit int) (int64, error) {
	return store.PruneIdem(ctx, c.db, before, limit)
}
