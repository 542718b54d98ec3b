package reports

import (
	"encoding/csv"
	"io"
	"strconv"
	"time"

	pledger "github.com/punchcard/punchcard/protocol/ledger"
)

// CSV: one header row, then one row per result row. Money is in minor
// units, times in RFC 3339 with the tenant's offset (reports) or UTC
// (the export).

// WriteCSV writes r as CSV.
func (r Result) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	i := strconv.FormatInt
	ts := func(t time.Time) string { return t.Format(time.RFC3339) }
	switch {
	case r.Balances != nil:
		b := r.Balances
		_ = cw.Write([]string{"figure", "campaign", "currency", "value"})
		for _, g := range b.GiftCards {
			_ = cw.Write([]string{"gift_card_liability", "", string(g.Currency), i(g.Amount, 10)})
		}
		_ = cw.Write([]string{"points_outstanding", "", "", i(b.PointsOutstanding, 10)})
		_ = cw.Write([]string{"points_expiring_30d", "", "", i(b.PointsExpiring30, 10)})
		_ = cw.Write([]string{"points_expiring_90d", "", "", i(b.PointsExpiring90, 10)})
		for _, u := range b.Budgets {
			c, cur := string(u.Campaign), string(u.Currency)
			for _, f := range []struct {
				name string
				v    *int64
			}{{"max_redemptions", &u.MaxRedemptions}, {"max_discount", &u.MaxDiscount}, {"used_count", &u.UsedCount},
				{"used_discount", &u.UsedDiscount}, {"escrowed_count", &u.EscrowedCount}, {"escrowed_amount", &u.EscrowedAmount},
				{"left_count", u.LeftCount}, {"left_discount", u.LeftDiscount}} {
				if f.v != nil {
					_ = cw.Write([]string{f.name, c, cur, i(*f.v, 10)})
				}
			}
		}
	case r.Report == ReportDistribution:
		_ = cw.Write([]string{"campaign", "distribution", "distributed", "redeemed", "rate"})
		for _, d := range r.Distribution {
			_ = cw.Write([]string{string(d.Campaign), d.Distribution, i(d.Distributed, 10), i(d.Redeemed, 10), strconv.FormatFloat(d.Rate, 'f', 4, 64)})
		}
	case r.Report == ReportAOV:
		_ = cw.Write([]string{"period", "start", "end", "currency", "orders_with_reward", "value_with_reward", "aov_with_reward",
			"orders_without_reward", "value_without_reward", "aov_without_reward"})
		for _, a := range r.AOV {
			_ = cw.Write([]string{a.Period, ts(a.Start), ts(a.End), string(a.Currency), i(a.OrdersWithReward, 10), i(a.ValueWithReward, 10),
				i(a.AOVWithReward, 10), i(a.OrdersWithoutReward, 10), i(a.ValueWithoutReward, 10), i(a.AOVWithoutReward, 10)})
		}
	case r.Report == ReportConflicts:
		_ = cw.Write([]string{"period", "start", "end", "kind", "count"})
		for _, c := range r.Conflicts {
			_ = cw.Write([]string{c.Period, ts(c.Start), ts(c.End), c.Kind, i(c.Count, 10)})
		}
	default:
		_ = cw.Write([]string{"period", "start", "end", "key", "currency", "redemptions", "rollbacks", "discount",
			"order_value", "aov_with_reward", "offline", "points_net", "points_expired"})
		for _, a := range r.Activity {
			_ = cw.Write([]string{a.Period, ts(a.Start), ts(a.End), a.Key, string(a.Currency), i(a.Redemptions, 10), i(a.Rollbacks, 10),
				i(a.Discount, 10), i(a.OrderValue, 10), i(a.AOVWithReward, 10), i(a.Offline, 10), i(a.PointsNet, 10), i(a.PointsExpired, 10)})
		}
	}
	cw.Flush()
	return cw.Error()
}

// ExportHeader is the export's CSV header.
var ExportHeader = []string{"at", "entry", "agent", "seq", "store", "txn_id", "campaign", "code", "customer", "order_id",
	"currency", "discount", "spend", "points", "order_total", "offline", "sign", "ref_agent", "ref_seq", "received_at"}

// ExportWriter writes export rows as CSV; it reuses one record, so a row
// allocates little.
type ExportWriter struct {
	cw   *csv.Writer
	rec  []string
	buf  []byte
	buf2 []byte
	Mask func(string) string // applied to codes when set
}

// NewExportWriter writes the header to w.
func NewExportWriter(w io.Writer) (*ExportWriter, error) {
	x := &ExportWriter{cw: csv.NewWriter(w), rec: make([]string, len(ExportHeader))}
	return x, x.cw.Write(ExportHeader)
}

// Write writes one row.
func (x *ExportWriter) Write(r *pledger.ExportRow) error {
	num := func(v int64) string { return strconv.FormatInt(v, 10) }
	code := string(r.Code)
	if x.Mask != nil && code != "" {
		code = x.Mask(code)
	}
	off := "0"
	if r.Offline {
		off = "1"
	}
	refSeq := ""
	if r.RefAgent != "" {
		refSeq = num(int64(r.RefSeq))
	}
	x.buf = r.At.AppendFormat(x.buf[:0], "2006-01-02T15:04:05.000Z07:00")
	x.buf2 = r.ReceivedAt.AppendFormat(x.buf2[:0], "2006-01-02T15:04:05.000000Z07:00")
	x.rec = append(x.rec[:0], string(x.buf), r.Entry, string(r.Agent), num(int64(r.Seq)), string(r.Store), r.TxnID, string(r.Campaign),
		code, string(r.Customer), r.OrderID, string(r.Currency), num(r.Discount), num(r.Spend), num(r.Points), num(r.OrderTotal),
		off, num(r.Sign), string(r.RefAgent), refSeq, string(x.buf2))
	return x.cw.Write(x.rec)
}

// Flush writes what is buffered and reports a write error.
func (x *ExportWriter) Flush() error {
	x.cw.Flush()
	return x.cw.Error()
}
