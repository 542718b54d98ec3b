package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// A tenant's time zone (issue 13, reports; catalog_007_tenant_tz.sql):
// reports cut days, weeks and months at the tenant's local midnight. A
// tenant without one is on UTC.

// TenantTimeZone is the tenant's IANA time zone name; "UTC" when none is
// set. It returns not_found for an unknown tenant.
func (c *Catalog) TenantTimeZone(ctx context.Context, tenant protocol.TenantID) (string, error) {
	var tz string
	err := c.db.QueryRowContext(ctx, `SELECT time_zone FROM catalog_tenants WHERE id = ?`, string(tenant)).Scan(&tz)
	if errors.Is(err, sql.ErrNoRows) {
		return "", notFound("tenant", string(tenant))
	}
	if err != nil {
		return "", fmt.Errorf("catalog: time zone: %w", err)
	}
	if tz == "" {
		tz = "UTC"
	}
	return tz, nil
}

// SetTenantTimeZone sets the tenant's time zone (an IANA name that this
// hub's time zone database knows, such as "Europe/Berlin"; "" or "UTC"
// for UTC). It returns invalid_input on field time_zone for a name the
// database does not know, not_found for an unknown tenant.
func (c *Catalog) SetTenantTimeZone(ctx context.Context, actor Actor, tenant protocol.TenantID, tz string) (string, error) {
	if tz == "" {
		tz = "UTC"
	}
	if _, err := LoadTimeZone(tz); err != nil {
		return "", err
	}
	old, err := c.TenantTimeZone(ctx, tenant)
	if err != nil {
		return "", err
	}
	if old == tz {
		return tz, nil
	}
	// Not a change of what the tills run: the catalog version stays (tills
	// fetch nothing), the audit log records it.
	err = c.write(ctx, "", func(tx *sql.Tx, v uint64, now time.Time) error {
		if _, err := tx.ExecContext(ctx, `UPDATE catalog_tenants SET time_zone = ? WHERE id = ?`, tz, string(tenant)); err != nil {
			return fmt.Errorf("catalog: time zone: %w", err)
		}
		return audit(ctx, tx, tenant, actor, "tenant.time_zone", "tenant", old, tz, v, now)
	})
	return tz, err
}

// MaxTimeZone bounds a time zone name's length (the longest IANA name is
// about 32 characters).
const MaxTimeZone = 64

// LoadTimeZone loads an IANA time zone by name; invalid_input on field
// time_zone for a name that is empty, too long, "Local" or unknown.
func LoadTimeZone(name string) (*time.Location, error) {
	if name == "" || len(name) > MaxTimeZone || name == "Local" {
		return nil, protocol.FieldError("time_zone", "not an IANA time zone name such as Europe/Berlin")
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, protocol.FieldError("time_zone", "unknown time zone %q", name)
	}
	return loc, nil
}
