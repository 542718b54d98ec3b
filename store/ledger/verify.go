package ledger

import (
	"context"
	"database/sql"
	"slices"
	"strings"

	"github.com/punchcard/punchcard/protocol"
)

// balanceCheck pairs a balance table with the query that recomputes it
// from the journal. Both return the key columns first, then the values.
type balanceCheck struct {
	table   string
	keys    int
	columns []string
	stored  string
	derived string
}

var hubAgent = string(protocol.HubSender)

var checks = []balanceCheck{
	{"ledger_campaigns", 2, []string{"count", "discount", "order_value"},
		`SELECT tenant, campaign, count, discount, order_value FROM ledger_campaigns`,
		`SELECT tenant, campaign, SUM(sign), SUM(sign * discount), SUM(sign * order_total) FROM ledger_journal
		 WHERE seq IS NOT NULL AND campaign != '' GROUP BY tenant, campaign`},
	{"ledger_codes", 2, []string{"uses"},
		`SELECT tenant, code, uses FROM ledger_codes`,
		`SELECT tenant, code, SUM(sign) FROM ledger_journal WHERE seq IS NOT NULL AND code != '' GROUP BY tenant, code`},
	{"ledger_giftcards", 2, []string{"spent"},
		`SELECT tenant, code, spent FROM ledger_giftcards`,
		`SELECT tenant, code, SUM(CASE WHEN entry = 'giftcard_cashout' THEN spend ELSE sign * spend END) FROM ledger_journal
		 WHERE seq IS NOT NULL AND code != '' AND spend != 0 GROUP BY tenant, code`},
	{"ledger_giftcards", 2, []string{"loaded"},
		`SELECT tenant, code, loaded FROM ledger_giftcards WHERE loaded != 0`,
		// Every load but a card's first sale (its value is the card's
		// catalog balance): giftcards.go.
		`SELECT tenant, code, SUM(spend) - COALESCE((SELECT f.spend FROM ledger_journal f WHERE f.tenant = j.tenant AND f.code = j.code
			AND f.entry = 'giftcard_issue' ORDER BY f.id LIMIT 1), 0) AS l
		 FROM ledger_journal j WHERE seq IS NOT NULL AND entry IN ('giftcard_issue', 'giftcard_topup') GROUP BY tenant, code HAVING l != 0`},
	// What the sold cards owe (giftcards.go), per tenant: the cards'
	// figures against the journal's sum over every row of a sold card
	// (per tenant, not per currency: the cards count a card in its
	// sale's currency, the journal each row in its own).
	{"ledger_giftcards", 1, []string{"liability"},
		`SELECT f.tenant, SUM(` + cardOwes + `) FROM ` + soldCards + ` GROUP BY f.tenant`,
		`SELECT j.tenant, SUM(CASE WHEN j.entry IN ('giftcard_issue', 'giftcard_topup') THEN j.spend WHEN j.entry = 'giftcard_cashout' THEN -j.spend ELSE -j.sign * j.spend END)
		 FROM ledger_journal j WHERE j.seq IS NOT NULL AND j.code IN (SELECT f.code FROM ledger_journal f WHERE f.tenant = j.tenant AND f.entry = 'giftcard_issue')
		 GROUP BY j.tenant`},
	{"ledger_customers", 2, []string{"points"},
		`SELECT tenant, customer, points FROM ledger_customers`,
		`SELECT tenant, customer, SUM(psign * points) FROM ledger_journal WHERE (seq IS NOT NULL OR entry IN ('points_expired', 'referral_reward', 'referral_reversed')) AND customer != '' AND points != 0
		 GROUP BY tenant, customer`},
	// The tenant's points in all (ledger_026), kept by triggers.
	{"ledger_points_totals", 1, []string{"points"},
		`SELECT tenant, points FROM ledger_points_totals WHERE points != 0`,
		`SELECT tenant, SUM(points) FROM ledger_customers GROUP BY tenant HAVING SUM(points) != 0`},
	// Points lots (lots.go): a balance is the sum of its lots, and what
	// the lots say expired is what the journal's points_expired entries
	// took.
	{"ledger_points_lots", 2, []string{"points"},
		`SELECT tenant, customer, points FROM ledger_customers`,
		`SELECT tenant, customer, SUM(remaining) FROM ledger_points_lots GROUP BY tenant, customer`},
	{"ledger_points_lots", 2, []string{"expired"},
		`SELECT tenant, customer, SUM(expired) FROM ledger_points_lots GROUP BY tenant, customer HAVING SUM(expired) != 0`,
		`SELECT tenant, customer, -SUM(points) FROM ledger_journal WHERE entry = 'points_expired' GROUP BY tenant, customer`},
	{"ledger_customer_campaigns", 3, []string{"count"},
		`SELECT tenant, customer, campaign, count FROM ledger_customer_campaigns`,
		`SELECT tenant, customer, campaign, SUM(sign) FROM ledger_journal WHERE seq IS NOT NULL AND customer != '' AND campaign != ''
		 GROUP BY tenant, customer, campaign`},
	{"ledger_allowances", 3, []string{"grants", "granted_count", "granted_amount", "returned_count", "returned_amount", "used_count", "used_amount"},
		`SELECT tenant, agent, campaign, grants, granted_count, granted_amount, returned_count, returned_amount, used_count, used_amount FROM ledger_allowances`,
		`SELECT tenant, agent, campaign,
			SUM(entry = 'allowance_grant'),
			SUM(CASE WHEN entry = 'allowance_grant' THEN count ELSE 0 END),
			SUM(CASE WHEN entry = 'allowance_grant' THEN discount ELSE 0 END),
			SUM(CASE WHEN entry = 'allowance_return' THEN count ELSE 0 END),
			SUM(CASE WHEN entry = 'allowance_return' THEN discount ELSE 0 END),
			SUM(CASE WHEN seq IS NOT NULL THEN sign ELSE 0 END),
			SUM(CASE WHEN seq IS NOT NULL THEN sign * discount ELSE 0 END)
		 FROM ledger_journal WHERE campaign != '' AND agent != '` + hubAgent + `' GROUP BY tenant, agent, campaign`},
	// The campaigns' summed allowances (ledger_021_fleet) against their rows.
	{"ledger_allowance_totals", 2, []string{"outstanding_count", "outstanding_amount"},
		`SELECT tenant, campaign, outstanding_count, outstanding_amount FROM ledger_allowance_totals`,
		`SELECT tenant, campaign, SUM(MAX(0, granted_count - returned_count - used_count)),
			SUM(MAX(0, granted_amount - returned_amount - used_amount)) FROM ledger_allowances GROUP BY tenant, campaign`},
	{"ledger_customer_periods", 6, []string{"points"},
		`SELECT tenant, customer, campaign, rule, period, start, points FROM ledger_customer_periods`,
		`SELECT p.tenant, p.customer, p.campaign, p.rule, p.period, p.start, SUM(CASE WHEN p.rule = '' THEN j.sign ELSE j.psign * j.points END)
		 FROM ledger_earn_periods p
		 JOIN (SELECT tenant, agent AS fa, seq AS fs, sign, psign, points FROM ledger_journal WHERE entry IN ('earn', 'redeem')
		       UNION ALL SELECT tenant, ref_agent, ref_seq, sign, psign, points FROM ledger_journal WHERE entry = 'rollback' AND ref_agent IS NOT NULL) j
		   ON j.tenant = p.tenant AND j.fa = p.agent AND j.fs = p.seq
		 GROUP BY p.tenant, p.customer, p.campaign, p.rule, p.period, p.start`},
}

// Verify recomputes every balance from the journal and reports each
// difference. It reads in one transaction, so it sees one consistent state
// while ingest keeps writing.
func (l *Ledger) Verify(ctx context.Context) (Report, error) {
	var rep Report
	tx, err := l.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return rep, wrap("verify: begin", err)
	}
	defer tx.Rollback()
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM ledger_journal`).Scan(&rep.Entries); err != nil {
		return rep, wrap("verify", err)
	}
	for _, c := range checks {
		stored, err := readBalances(ctx, tx, c.stored, c.keys, len(c.columns))
		if err != nil {
			return rep, wrap("verify "+c.table, err)
		}
		derived, err := readBalances(ctx, tx, c.derived, c.keys, len(c.columns))
		if err != nil {
			return rep, wrap("verify "+c.table+" from journal", err)
		}
		keys := make([]string, 0, len(stored)+len(derived))
		for k := range stored {
			keys = append(keys, k)
		}
		for k := range derived {
			if _, ok := stored[k]; !ok {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		zero := make([]int64, len(c.columns))
		for _, k := range keys {
			rep.Rows++
			s, d := stored[k], derived[k]
			if s == nil {
				s = zero
			}
			if d == nil {
				d = zero
			}
			for i, col := range c.columns {
				if s[i] != d[i] {
					rep.Diffs = append(rep.Diffs, Diff{Table: c.table, Key: k, Column: col, Journal: d[i], Balance: s[i]})
				}
			}
		}
	}
	return rep, nil
}

func readBalances(ctx context.Context, tx *sql.Tx, q string, nkeys, nvals int) (map[string][]int64, error) {
	rows, err := tx.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]int64{}
	keys := make([]string, nkeys)
	for rows.Next() {
		vals := make([]int64, nvals)
		dest := make([]any, 0, nkeys+nvals)
		for i := range keys {
			dest = append(dest, &keys[i])
		}
		for i := range vals {
			dest = append(dest, &vals[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		out[strings.Join(keys, "/")] = vals
	}
	return out, rows.Err()
}
