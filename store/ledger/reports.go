package ledger

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/punchcard/punchcard/protocol"
	pledger "github.com/punchcard/punchcard/protocol/ledger"
)

// Reports (issue 13, Deliver 3; ledger_018_reports.sql). Every figure is a
// sum over the journal, by the facts' own time (their HLC): over all time
// a campaign's figures are its ledger_campaigns row and the points its
// ledger_customers rows, which Verify recomputes from the same journal.

// MaxReportBuckets bounds the buckets of one report query.
const MaxReportBuckets = 1000

// hlcAt is the first HLC of the millisecond t falls in.
func hlcAt(t time.Time) int64 { return t.UnixMilli() << 16 }

// reportKey is the journal column a report group keys its rows by.
func reportKey(group string) (string, error) {
	switch group {
	case pledger.GroupNone:
		return "''", nil
	case pledger.GroupCampaign:
		return "j.campaign", nil
	case pledger.GroupStore:
		return "j.store", nil
	case pledger.GroupTill:
		return "j.agent", nil
	}
	return "", protocol.FieldError("group", "unknown group %q", group)
}

// bucketsCTE is the WITH clause of the buckets as (i, lo, hi) rows, in
// the unit of conv.
func bucketsCTE(bs []pledger.Bucket, conv func(time.Time) int64, args []any) (string, []any, error) {
	if len(bs) == 0 || len(bs) > MaxReportBuckets {
		return "", nil, protocol.FieldError("buckets", "a report has 1 to %d periods", MaxReportBuckets)
	}
	var sb strings.Builder
	sb.WriteString("WITH b(i, lo, hi) AS (VALUES ")
	for i, b := range bs {
		if !b.Start.Before(b.End) {
			return "", nil, protocol.FieldError("buckets", "period %d ends before it starts", i)
		}
		if i > 0 {
			sb.WriteString(", ")
		}
		n := len(args) // the args before are ?1..?n
		fmt.Fprintf(&sb, "(?%d, ?%d, ?%d)", n+1, n+2, n+3)
		args = append(args, i, conv(b.Start), conv(b.End))
	}
	sb.WriteString(") ")
	return sb.String(), args, nil
}

// Activity sums the tenant's facts per bucket, group key and currency
// (pledger.ActivityRow). It reads the ledger_journal_report index alone: a
// range scan per bucket.
func (l *Ledger) Activity(ctx context.Context, tenant protocol.TenantID, q pledger.ActivityQuery) ([]pledger.ActivityRow, error) {
	text, args, err := activitySQL(tenant, q)
	if err != nil {
		return nil, err
	}
	rows, err := l.db.QueryContext(ctx, text, args...)
	if err != nil {
		return nil, wrap("activity", err)
	}
	defer rows.Close()
	var out []pledger.ActivityRow
	for rows.Next() {
		var r pledger.ActivityRow
		var cur string
		if err := rows.Scan(&r.Bucket, &r.Key, &cur, &r.Redemptions, &r.Rollbacks, &r.Discount, &r.OrderValue,
			&r.Offline, &r.PointsNet, &r.PointsExpired); err != nil {
			return nil, wrap("activity", err)
		}
		r.Currency = protocol.Currency(cur)
		out = append(out, r)
	}
	return out, wrap("activity", rows.Err())
}

// activitySQL is Activity's statement.
func activitySQL(tenant protocol.TenantID, q pledger.ActivityQuery) (string, []any, error) {
	key, err := reportKey(q.Group)
	if err != nil {
		return "", nil, err
	}
	cte, args, err := bucketsCTE(q.Buckets, hlcAt, []any{string(tenant)})
	if err != nil {
		return "", nil, err
	}
	return cte + `SELECT b.i, ` + key + `, j.currency,
		SUM(j.sign), SUM(j.entry = 'rollback' AND j.sign < 0), SUM(j.sign * j.discount), SUM(j.sign * j.order_total),
		SUM(CASE WHEN j.offline THEN j.sign ELSE 0 END), SUM(j.psign * j.points),
		SUM(CASE WHEN j.entry = '` + pledger.EntryPointsExpired + `' THEN -j.points ELSE 0 END)
		FROM b JOIN ledger_journal j INDEXED BY ledger_journal_report ON j.tenant = ?1 AND j.hlc >= b.lo AND j.hlc < b.hi
		GROUP BY b.i, ` + key + `, j.currency ORDER BY b.i, ` + key + `, j.currency`, args, nil
}

// ConflictsByKind counts the tenant's conflicts per bucket and kind, by
// the hub's clock when each was recorded.
func (l *Ledger) ConflictsByKind(ctx context.Context, tenant protocol.TenantID, bs []pledger.Bucket) ([]pledger.ConflictRow, error) {
	cte, args, err := bucketsCTE(bs, micros, []any{string(tenant)})
	if err != nil {
		return nil, err
	}
	rows, err := l.db.QueryContext(ctx, cte+`SELECT b.i, c.kind, COUNT(*)
		FROM b JOIN ledger_conflicts c INDEXED BY ledger_conflicts_at ON c.tenant = ?1 AND c.created_at >= b.lo AND c.created_at < b.hi
		GROUP BY b.i, c.kind ORDER BY b.i, c.kind`, args...)
	if err != nil {
		return nil, wrap("conflicts by kind", err)
	}
	defer rows.Close()
	var out []pledger.ConflictRow
	for rows.Next() {
		var r pledger.ConflictRow
		if err := rows.Scan(&r.Bucket, &r.Kind, &r.Count); err != nil {
			return nil, wrap("conflicts by kind", err)
		}
		out = append(out, r)
	}
	return out, wrap("conflicts by kind", rows.Err())
}

// qPointsTotal is the points a tenant's customers hold, in all: one row
// a tenant that triggers keep (ledger_026_points_totals), not a sum over
// every customer's rows.
const qPointsTotal = `SELECT COALESCE((SELECT points FROM ledger_points_totals WHERE tenant = ?), 0)`

// Balances reads the tenant's liabilities at now: gift card liability per
// currency (GiftCardLiability's rule), points outstanding (the sum of
// ledger_customers) and expiring within 30 and 90 days, and each
// campaign's budget use and escrow.
func (l *Ledger) Balances(ctx context.Context, tenant protocol.TenantID, now time.Time) (pledger.Balances, error) {
	b := pledger.Balances{GiftCardLiability: map[protocol.Currency]int64{}, Campaigns: map[protocol.CampaignID]pledger.BudgetUse{}}
	t := string(tenant)
	rows, err := l.db.QueryContext(ctx, qLiabilities, t)
	if err != nil {
		return b, wrap("balances", err)
	}
	for rows.Next() {
		var cur string
		var v int64
		if err := rows.Scan(&cur, &v); err != nil {
			rows.Close()
			return b, wrap("balances", err)
		}
		b.GiftCardLiability[protocol.Currency(cur)] = v
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return b, wrap("balances", err)
	}
	if b.PointsOutstanding, err = l.scalar(ctx, qPointsTotal, t); err != nil {
		return b, err
	}
	due := func(d time.Duration) (int64, error) {
		return l.scalar(ctx, `SELECT COALESCE(SUM(remaining), 0) FROM ledger_points_lots INDEXED BY ledger_points_lots_due
			WHERE remaining > 0 AND expires_at > 0 AND expires_at <= ? AND tenant = ?`, micros(now.Add(d)), t)
	}
	if b.PointsExpiring30, err = due(30 * 24 * time.Hour); err != nil {
		return b, err
	}
	if b.PointsExpiring90, err = due(90 * 24 * time.Hour); err != nil {
		return b, err
	}
	rows, err = l.db.QueryContext(ctx, `SELECT c.campaign, c.count, c.discount,
		COALESCE((SELECT SUM(MAX(a.granted_count - a.returned_count - a.used_count, 0)) FROM ledger_allowances a WHERE a.tenant = c.tenant AND a.campaign = c.campaign), 0),
		COALESCE((SELECT SUM(MAX(a.granted_amount - a.returned_amount - a.used_amount, 0)) FROM ledger_allowances a WHERE a.tenant = c.tenant AND a.campaign = c.campaign), 0)
		FROM ledger_campaigns c WHERE c.tenant = ?
		UNION ALL
		SELECT a.campaign, 0, 0, SUM(MAX(a.granted_count - a.returned_count - a.used_count, 0)), SUM(MAX(a.granted_amount - a.returned_amount - a.used_amount, 0))
		FROM ledger_allowances a WHERE a.tenant = ?1 AND NOT EXISTS (SELECT 1 FROM ledger_campaigns c WHERE c.tenant = a.tenant AND c.campaign = a.campaign)
		GROUP BY a.campaign`, t)
	if err != nil {
		return b, wrap("balances", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c string
		var u pledger.BudgetUse
		if err := rows.Scan(&c, &u.Count, &u.Discount, &u.EscrowedCount, &u.EscrowedAmount); err != nil {
			return b, wrap("balances", err)
		}
		b.Campaigns[protocol.CampaignID(c)] = u
	}
	return b, wrap("balances", rows.Err())
}

// exportSQL is ExportFacts' statement for the page after (lastHLC,
// lastID); 0, 0 for the first. Each fact comes back as ONE text column
// (exportLine): the driver's cost is per column (every column read takes
// the connection's lock twice and goes through database/sql's
// conversions), and 21 columns cost more than the rest of the export
// together. The integers are SQLite's decimal text, which the reader
// parses back; the strings follow one another after their byte lengths,
// so any byte in them (commas, quotes, NULs) reads back unchanged.
func exportSQL(tenant protocol.TenantID, from, to time.Time, lastHLC, lastID int64) (string, []any) {
	if lastHLC == 0 {
		lastHLC, lastID = hlcAt(from)-1, 1<<62
	}
	return `SELECT concat(concat_ws(',', id, hlc, COALESCE(seq, 0), discount, spend, points, order_total, offline, sign,
				COALESCE(ref_seq, 0), received_at, octet_length(entry), octet_length(agent), octet_length(store),
				octet_length(txn_id), octet_length(campaign), octet_length(code), octet_length(customer),
				octet_length(order_id), octet_length(currency), octet_length(COALESCE(ref_agent, ''))), ',',
				entry, agent, store, txn_id, campaign, code, customer, order_id, currency, COALESCE(ref_agent, ''))
			FROM ledger_journal INDEXED BY ledger_journal_report
			WHERE tenant = ? AND (hlc, id) > (?, ?) AND hlc < ? AND hlc > 0 ORDER BY hlc, id LIMIT ?`,
		[]any{string(tenant), lastHLC, lastID, hlcAt(to), ExportPage}
}

// exportInts and exportStrings are how many integers (the first 11 of
// them values, then one byte length per string) and strings a line of
// exportSQL holds.
const (
	exportInts    = 11 + exportStrings
	exportStrings = 10
)

// exportLine fills r from one line of exportSQL and returns the fact's
// id and HLC. r's strings are slices of line (no copies).
func exportLine(line string, r *pledger.ExportRow) (id, hlc int64, err error) {
	var v [exportInts]int64
	rest := line
	for i := range v {
		k := strings.IndexByte(rest, ',')
		if k < 0 {
			return 0, 0, fmt.Errorf("export: a line with %d of %d numbers", i, exportInts)
		}
		if v[i], err = strconv.ParseInt(rest[:k], 10, 64); err != nil {
			return 0, 0, fmt.Errorf("export: number %d of a line: %w", i, err)
		}
		rest = rest[k+1:]
	}
	var str [exportStrings]string
	for i := range str {
		n := v[11+i]
		if n < 0 || n > int64(len(rest)) {
			return 0, 0, fmt.Errorf("export: string %d of a line is %d bytes, %d left", i, n, len(rest))
		}
		str[i], rest = rest[:n], rest[n:]
	}
	if rest != "" {
		return 0, 0, fmt.Errorf("export: %d bytes after a line's strings", len(rest))
	}
	id, hlc = v[0], v[1]
	r.Seq, r.Discount, r.Spend, r.Points, r.OrderTotal, r.Offline, r.Sign, r.RefSeq =
		uint64(v[2]), v[3], v[4], v[5], v[6], v[7] != 0, v[8], uint64(v[9])
	r.At, r.ReceivedAt = time.UnixMilli(hlc>>16).UTC(), time.UnixMicro(v[10]).UTC()
	r.Entry, r.Agent, r.Store, r.TxnID, r.Campaign = str[0], protocol.AgentID(str[1]), protocol.StoreID(str[2]), str[3], protocol.CampaignID(str[4])
	r.Code, r.Customer, r.OrderID, r.Currency, r.RefAgent = protocol.CodeID(str[5]), protocol.CustomerID(str[6]), str[7], protocol.Currency(str[8]), protocol.AgentID(str[9])
	return id, hlc, nil
}

// ExportPage is how many facts ExportFacts reads per statement: between
// pages no read transaction is held, so a slow reader of the export never
// holds back the WAL's checkpoints for long.
const ExportPage = 5000

// ExportFacts calls fn for every fact of the tenant from from (inclusive)
// to to (exclusive) by the facts' time, oldest first, reading ExportPage
// facts at a time (keyset paging on (hlc, id)): memory stays flat
// whatever the range holds. fn's error stops the export and is returned.
// The row passed to fn is reused: it is valid until fn returns.
func (l *Ledger) ExportFacts(ctx context.Context, tenant protocol.TenantID, from, to time.Time, fn func(*pledger.ExportRow) error) error {
	lastHLC, lastID := int64(0), int64(0)
	var r pledger.ExportRow
	var line string
	for {
		text, args := exportSQL(tenant, from, to, lastHLC, lastID)
		rows, err := l.db.QueryContext(ctx, text, args...)
		if err != nil {
			return wrap("export", err)
		}
		n := 0
		for rows.Next() {
			if err := rows.Scan(&line); err != nil {
				rows.Close()
				return wrap("export", err)
			}
			if lastID, lastHLC, err = exportLine(line, &r); err != nil {
				rows.Close()
				return err
			}
			n++
			if err := fn(&r); err != nil {
				rows.Close()
				return err
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return wrap("export", err)
		}
		if n < ExportPage {
			return nil
		}
	}
}
