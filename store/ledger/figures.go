package ledger

import (
	"context"
	"strconv"
	"strings"

	"github.com/punchcard/punchcard/protocol"
)

// Figures reads what q names in one statement: what Points, CodeUses,
// GiftCardSpent, CustomerCount and Campaign read one statement each (the
// online decision of a basket with a code and a customer made four or
// five reads). Each part is an indexed lookup (TestFiguresPlan).
func (l *Ledger) Figures(ctx context.Context, tenant protocol.TenantID, q FiguresQuery) (Figures, error) {
	f := Figures{Uses: map[protocol.CodeID]int64{}, Spent: map[protocol.CodeID]int64{},
		Counts: map[protocol.CampaignID]int64{}, Campaigns: map[protocol.CampaignID]CampaignBalance{}}
	if q.Customer == "" {
		q.Counts = nil
	}
	if len(q.Codes) == 0 && len(q.Cards) == 0 && len(q.Counts) == 0 && len(q.Campaigns) == 0 && q.Customer == "" {
		return f, nil
	}
	// What has no row is 0 (the single reads' answer too).
	for _, c := range q.Codes {
		f.Uses[c] = 0
	}
	for _, c := range q.Cards {
		f.Spent[c] = 0
	}
	for _, c := range q.Counts {
		f.Counts[c] = 0
	}
	for _, c := range q.Campaigns {
		f.Campaigns[c] = CampaignBalance{}
	}
	sqlText, args := figuresSQL(tenant, q, micros(l.now()))
	rows, err := l.db.QueryContext(ctx, sqlText, args...)
	if err != nil {
		return f, wrap("figures", err)
	}
	defer rows.Close()
	for rows.Next() {
		var kind, key string
		var a, b, c int64
		if err := rows.Scan(&kind, &key, &a, &b, &c); err != nil {
			return f, wrap("figures", err)
		}
		switch kind {
		case "p":
			f.Points = a
		case "u":
			f.Uses[protocol.CodeID(key)] = a
		case "s":
			f.Spent[protocol.CodeID(key)] = a
		case "k":
			f.Counts[protocol.CampaignID(key)] = a
		case "b":
			cb := f.Campaigns[protocol.CampaignID(key)]
			cb.Count, cb.Discount, cb.OrderValue = a, b, c
			f.Campaigns[protocol.CampaignID(key)] = cb
		case "r":
			cb := f.Campaigns[protocol.CampaignID(key)]
			cb.ReservedCount, cb.ReservedAmount = a, b
			f.Campaigns[protocol.CampaignID(key)] = cb
		}
	}
	return f, wrap("figures", rows.Err())
}

// figuresSQL is Figures' statement: one row per figure found, UNION ALL
// of the single reads (the text depends only on how many of each are asked, so
// the statement cache keeps a few shapes).
func figuresSQL(tenant protocol.TenantID, q FiguresQuery, now int64) (string, []any) {
	var sb strings.Builder
	args := []any{string(tenant), string(q.Customer)}
	part := func(s string) {
		if sb.Len() > 0 {
			sb.WriteString("\nUNION ALL ")
		}
		sb.WriteString(s)
	}
	param := func(v string) string {
		args = append(args, v)
		return "?" + strconv.Itoa(len(args))
	}
	if q.Customer != "" {
		// The balance less the lots due and not yet expired (lots.go,
		// qPointsLive: a range of the live key).
		args = append(args, now)
		part(`SELECT 'p', '', points - COALESCE((SELECT SUM(remaining) FROM ledger_points_lots
			WHERE tenant = ?1 AND customer = ?2 AND (remaining > 0) = 1 AND (expires_at = 0) = 0 AND expires_at <= ?3), 0), 0, 0
			FROM ledger_customers WHERE tenant = ?1 AND customer = ?2`)
	}
	for _, c := range q.Codes {
		p := param(string(c))
		part(`SELECT 'u', ` + p + `, uses, 0, 0 FROM ledger_codes WHERE tenant = ?1 AND code = ` + p)
	}
	for _, c := range q.Cards {
		p := param(string(c))
		part(`SELECT 's', ` + p + `, spent, 0, 0 FROM ledger_giftcards WHERE tenant = ?1 AND code = ` + p)
	}
	for _, c := range q.Counts {
		p := param(string(c))
		part(`SELECT 'k', ` + p + `, count, 0, 0 FROM ledger_customer_campaigns WHERE tenant = ?1 AND customer = ?2 AND campaign = ` + p)
	}
	for _, c := range q.Campaigns {
		// The balance row once (not a subquery per column; absent when
		// never redeemed), and the allowances' two sums (the one row of
		// ledger_allowance_totals, through an aggregate so that a row
		// comes back when none was granted).
		p := param(string(c))
		part(`SELECT 'b', ` + p + `, count, discount, order_value FROM ledger_campaigns WHERE tenant = ?1 AND campaign = ` + p)
		part(`SELECT 'r', ` + p + `, COALESCE(SUM(outstanding_count), 0), COALESCE(SUM(outstanding_amount), 0), 0
			FROM ledger_allowance_totals WHERE tenant = ?1 AND campaign = ` + p)
	}
	return sb.String(), args
}
