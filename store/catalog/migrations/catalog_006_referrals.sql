-- Referral codes (issue 12, referral programs): each customer's one code of
-- a referral campaign (rules.Campaign.Referral). The code itself is a plain
-- code of the campaign in catalog_codes (unlimited uses), so tills get it
-- with the snapshot like any code; this row says whose it is.
CREATE TABLE catalog_referral_codes (
	tenant     TEXT NOT NULL,
	customer   TEXT NOT NULL,
	campaign   TEXT NOT NULL,
	code       TEXT NOT NULL,           -- codes.Normalize of the printed code (catalog_codes.code)
	created_at INTEGER NOT NULL,
	PRIMARY KEY (tenant, customer, campaign)
) STRICT;
CREATE UNIQUE INDEX catalog_referral_codes_code ON catalog_referral_codes (tenant, code);
