package reports

import (
	"encoding/csv"
	"io"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

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

// ExportWriter writes export rows as CSV, byte for byte what
// encoding/csv's Writer writes for the same records (TestExportWriterCSV,
// FuzzExportWriterCSV), without its cost: each row is appended to one
// reused buffer, numbers and times formatted in place, no record of
// strings built per row.
type ExportWriter struct {
	w    io.Writer
	buf  []byte
	err  error
	Mask func(string) string // applied to codes when set
}

// exportBuffer is how much the writer gathers before it writes to w.
const exportBuffer = 32 << 10

// NewExportWriter writes the header to w.
func NewExportWriter(w io.Writer) (*ExportWriter, error) {
	x := &ExportWriter{w: w, buf: make([]byte, 0, exportBuffer+1024)}
	for i, h := range ExportHeader {
		if i > 0 {
			x.buf = append(x.buf, ',')
		}
		x.buf = appendCSVField(x.buf, h)
	}
	x.buf = append(x.buf, '\n')
	return x, x.Flush()
}

// Write writes one row.
func (x *ExportWriter) Write(r *pledger.ExportRow) error {
	if x.err != nil {
		return x.err
	}
	code := string(r.Code)
	if x.Mask != nil && code != "" {
		code = x.Mask(code)
	}
	b := appendTimeMilli(x.buf, r.At)
	b = append(b, ',')
	b = appendCSVField(b, r.Entry)
	b = append(b, ',')
	b = appendCSVField(b, string(r.Agent))
	b = append(b, ',')
	b = strconv.AppendUint(b, r.Seq, 10)
	for _, f := range [...]string{string(r.Store), r.TxnID, string(r.Campaign), code, string(r.Customer), r.OrderID, string(r.Currency)} {
		b = append(b, ',')
		b = appendCSVField(b, f)
	}
	for _, v := range [...]int64{r.Discount, r.Spend, r.Points, r.OrderTotal} {
		b = append(b, ',')
		b = strconv.AppendInt(b, v, 10)
	}
	if r.Offline {
		b = append(b, ",1,"...)
	} else {
		b = append(b, ",0,"...)
	}
	b = strconv.AppendInt(b, r.Sign, 10)
	b = append(b, ',')
	b = appendCSVField(b, string(r.RefAgent))
	b = append(b, ',')
	if r.RefAgent != "" {
		b = strconv.AppendUint(b, r.RefSeq, 10)
	}
	b = append(b, ',')
	b = appendTimeMicro(b, r.ReceivedAt)
	x.buf = append(b, '\n')
	if len(x.buf) >= exportBuffer {
		return x.Flush()
	}
	return nil
}

// Flush writes what is buffered and reports a write error (which also
// stops every later Write).
func (x *ExportWriter) Flush() error {
	if x.err == nil && len(x.buf) > 0 {
		_, x.err = x.w.Write(x.buf)
		x.buf = x.buf[:0]
	}
	return x.err
}

// appendCSVField appends f as encoding/csv's Writer writes a field
// (comma separator, LF line ends): quoted when it holds a comma, quote,
// CR or LF, starts with a space (unicode.IsSpace) or is `\.`; quotes
// doubled inside.
func appendCSVField(b []byte, f string) []byte {
	if !csvNeedsQuotes(f) {
		return append(b, f...)
	}
	b = append(b, '"')
	for i := 0; i < len(f); i++ {
		if f[i] == '"' {
			b = append(b, '"')
		}
		b = append(b, f[i])
	}
	return append(b, '"')
}

func csvNeedsQuotes(f string) bool {
	if f == "" {
		return false
	}
	if f == `\.` {
		return true
	}
	for i := 0; i < len(f); i++ {
		switch f[i] {
		case '\n', '\r', '"', ',':
			return true
		}
	}
	if c := f[0]; c < utf8.RuneSelf {
		return c == ' ' || c == '\t' || c == '\v' || c == '\f' // \n, \r: above
	}
	r, _ := utf8.DecodeRuneInString(f)
	return unicode.IsSpace(r)
}

// appendTimeMilli appends t as t.AppendFormat(b,
// "2006-01-02T15:04:05.000Z07:00"); appendTimeMicro with six digits of
// the second. UTC times of years 0-9999 (the export's) are written here,
// others by AppendFormat.
func appendTimeMilli(b []byte, t time.Time) []byte {
	if t.Location() != time.UTC || t.Year() < 0 || t.Year() > 9999 {
		return t.AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	}
	b = appendDateTime(b, t)
	b = append(b, '.')
	b = appendDigits(b, t.Nanosecond()/1e6, 3)
	return append(b, 'Z')
}

func appendTimeMicro(b []byte, t time.Time) []byte {
	if t.Location() != time.UTC || t.Year() < 0 || t.Year() > 9999 {
		return t.AppendFormat(b, "2006-01-02T15:04:05.000000Z07:00")
	}
	b = appendDateTime(b, t)
	b = append(b, '.')
	b = appendDigits(b, t.Nanosecond()/1e3, 6)
	return append(b, 'Z')
}

// appendDateTime appends "2006-01-02T15:04:05" for a year of 0-9999.
func appendDateTime(b []byte, t time.Time) []byte {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	b = appendDigits(b, y, 4)
	b = append(b, '-')
	b = appendDigits(b, int(mo), 2)
	b = append(b, '-')
	b = appendDigits(b, d, 2)
	b = append(b, 'T')
	b = appendDigits(b, h, 2)
	b = append(b, ':')
	b = appendDigits(b, mi, 2)
	b = append(b, ':')
	return appendDigits(b, s, 2)
}

// appendDigits appends v (0 <= v < 10^n) as n digits.
func appendDigits(b []byte, v, n int) []byte {
	for i := n - 1; i >= 0; i-- {
		b = append(b, 0)
	}
	for i := len(b) - 1; n > 0; i, n = i-1, n-1 {
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return b
}
