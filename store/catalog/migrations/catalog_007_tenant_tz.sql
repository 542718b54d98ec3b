-- A tenant's time zone (issue 13, reports): an IANA name such as
-- "Europe/Berlin". Reports cut days, weeks and months at the tenant's local
-- midnight. '' means UTC.
ALTER TABLE catalog_tenants ADD COLUMN time_zone TEXT NOT NULL DEFAULT '';
