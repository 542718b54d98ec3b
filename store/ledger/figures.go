package ledger

import (
	"context"
	"strconv"
	"strings"

	"github.com/punchcard/punchcard/protocol"
)

// FiguresQuery names the ledger figures one online decision needs: a
// customer's points and per-campaign counts, codes' uses and gift card
// spending, campaigns' balances.
type FiguresQuery struct {
	Customer  protocol.CustomerID // "" = none
	Codes     []protocol.CodeID
	Counts    []protocol.CampaignID // the customer's count of each
	Campaigns []protocol.CampaignID // balances
}

// Figures are the answers to a FiguresQuery, as one statement read them.
type Figures struct {
	Points    int64
	Uses      map[protocol.CodeID]int64
	Spent     map[protocol.CodeID]int64
	Counts    map[protocol.CampaignID]int64
	Campaigns map[protocol.CampaignID]CampaignBalance
}

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
	if len(q.Codes) == 0 && len(q.Counts) == 0 && len(q.Campaigns) == 0 && q.Customer == "" {
		return f, nil
	}
	sqlText, args := figuresSQL(tenant, q)
	rows, err := l.db.QueryContext(ctx, sqlText, args...)
	if err != nil {
		return f, wrap("figures", err)
	}
	defer rows.Close()
	for rows.Next() {
		var kind, key string
		var a, b, c, d, e int64
		if err := rows.Scan(&kind, &key, &a, &b, &c, &d, &e); err != nil {
			return f, wrap("figures", err)
		}
		switch kind {
		case "p":
			f.Points = a
		case "u":
			f.Uses[protocol.CodeID(key)], f.Spent[protocol.CodeID(key)] = a, b
		case "k":
			f.Counts[protocol.CampaignID(key)] = a
		case "b":
			f.Campaigns[protocol.CampaignID(key)] = CampaignBalance{Count: a, Discount: b, OrderValue: c, ReservedCount: d, ReservedAmount: e}
		}
	}
	return f, wrap("figures", rows.Err())
}

// figuresSQL is Figures' statement: one row per figure, UNION ALL of the
// single reads (the text depends only on how many of each are asked, so
// the statement cache keeps a few shapes).
func figuresSQL(tenant protocol.TenantID, q FiguresQuery) (string, []any) {
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
		part(`SELECT 'p', '', COALESCE((SELECT points FROM ledger_customers WHERE tenant = ?1 AND customer = ?2), 0), 0, 0, 0, 0`)
	}
	for _, c := range q.Codes {
		p := param(string(c))
		part(`SELECT 'u', ` + p + `, COALESCE((SELECT uses FROM ledger_codes WHERE tenant = ?1 AND code = ` + p + `), 0),
			COALESCE((SELECT spent FROM ledger_giftcards WHERE tenant = ?1 AND code = ` + p + `), 0), 0, 0, 0`)
	}
	for _, c := range q.Counts {
		p := param(string(c))
		part(`SELECT 'k', ` + p + `, COALESCE((SELECT count FROM ledger_customer_campaigns WHERE tenant = ?1 AND customer = ?2 AND campaign = ` + p + `), 0), 0, 0, 0, 0`)
	}
	for _, c := range q.Campaigns {
		p := param(string(c))
		part(`SELECT 'b', ` + p + `,
			COALESCE((SELECT count FROM ledger_campaigns WHERE tenant = ?1 AND campaign = ` + p + `), 0),
			COALESCE((SELECT discount FROM ledger_campaigns WHERE tenant = ?1 AND campaign = ` + p + `), 0),
			COALESCE((SELECT order_value FROM ledger_campaigns WHERE tenant = ?1 AND campaign = ` + p + `), 0),
			COALESCE((SELECT SUM(MAX(0, granted_count - returned_count - used_count)) FROM ledger_allowances WHERE tenant = ?1 AND campaign = ` + p + `), 0),
			COALESCE((SELECT SUM(MAX(0, granted_amount - returned_amount - used_amount)) FROM ledger_allowances WHERE tenant = ?1 AND campaign = ` + p + `), 0)`)
	}
	return sb.String(), args
}
