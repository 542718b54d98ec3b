package catalog

import "context"

// Health reports whether the catalog's database answers, for the hub's
// health check.
func (c *Catalog) Health(ctx context.Context) error { return c.db.PingContext(ctx) }
