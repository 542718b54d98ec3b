package reports_test

import (
	"bytes"
	"encoding/csv"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/punchcard/punchcard/hub/reports"
	"github.com/punchcard/punchcard/protocol"
	pledger "github.com/punchcard/punchcard/protocol/ledger"
)

// csvExport is the export as encoding/csv writes it (the writer before
// ExportWriter wrote its own bytes): the reference the tests hold it to.
func csvExport(t testing.TB, rows []pledger.ExportRow, mask func(string) string) []byte {
	var buf bytes.Buffer
	cw := csv.NewWriter(&buf)
	if err := cw.Write(reports.ExportHeader); err != nil {
		t.Fatal(err)
	}
	num := func(v int64) string { return strconv.FormatInt(v, 10) }
	for _, r := range rows {
		code := string(r.Code)
		if mask != nil && code != "" {
			code = mask(code)
		}
		off := "0"
		if r.Offline {
			off = "1"
		}
		refSeq := ""
		if r.RefAgent != "" {
			refSeq = strconv.FormatUint(r.RefSeq, 10)
		}
		if err := cw.Write([]string{r.At.Format("2006-01-02T15:04:05.000Z07:00"), r.Entry, string(r.Agent), strconv.FormatUint(r.Seq, 10),
			string(r.Store), r.TxnID, string(r.Campaign), code, string(r.Customer), r.OrderID, string(r.Currency), num(r.Discount),
			num(r.Spend), num(r.Points), num(r.OrderTotal), off, num(r.Sign), string(r.RefAgent), refSeq,
			r.ReceivedAt.Format("2006-01-02T15:04:05.000000Z07:00")}); err != nil {
			t.Fatal(err)
		}
	}
	cw.Flush()
	return buf.Bytes()
}

// exportCSV is the export as ExportWriter writes it, in writes of
// every size (a small buffer behind it is flushed often).
func exportCSV(t testing.TB, rows []pledger.ExportRow, mask func(string) string) []byte {
	var buf bytes.Buffer
	x, err := reports.NewExportWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	x.Mask = mask
	for i := range rows {
		if err := x.Write(&rows[i]); err != nil {
			t.Fatal(err)
		}
		if i%3 == 1 {
			if err := x.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := x.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// oddStrings are fields encoding/csv quotes, or nearly does.
var oddStrings = []string{"", "plain", "a,b", `say "hi"`, "line\nbreak", "cr\rlf\r\n", " lead", "\tlead", "\vv", "\ff",
	"trail ", `\.`, `\..`, `\`, "\u00a0nbsp", "\u0085nel", "\u2003em", "ü", "\xff\xfe", "\x00nul", "\"", ",", "\u3000ideo", "x\u00a0"}

// TestExportWriterCSV: ExportWriter writes exactly what encoding/csv
// wrote for the same rows: odd strings in every text column, numbers at
// their limits, times of every precision, UTC and not, years beyond
// 9999 and before 1970, masked codes.
func TestExportWriterCSV(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	times := []time.Time{
		time.Date(2026, 10, 25, 0, 59, 59, 999_999_999, time.UTC), time.UnixMilli(0).UTC(), time.UnixMicro(-1).UTC(),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 123_456_789, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-5, 3, 1, 0, 0, 0, 0, time.UTC), {},
		time.Date(2026, 3, 29, 2, 30, 0, 5_000_000, berlin), time.Date(2026, 7, 1, 12, 0, 0, 0, time.FixedZone("z", 0)),
	}
	nums := []int64{0, 1, -1, 9, 10, -10, 1<<63 - 1, -1 << 63, 123456789}
	var rows []pledger.ExportRow
	for i := range 3 * len(oddStrings) {
		s := func(k int) string { return oddStrings[(i+k)%len(oddStrings)] }
		n := func(k int) int64 { return nums[(i*7+k)%len(nums)] }
		rows = append(rows, pledger.ExportRow{At: times[i%len(times)], Entry: s(0), Agent: protocol.AgentID(s(1)), Seq: uint64(n(0)),
			Store: protocol.StoreID(s(2)), TxnID: s(3), Campaign: protocol.CampaignID(s(4)), Code: protocol.CodeID(s(5)),
			Customer: protocol.CustomerID(s(6)), OrderID: s(7), Currency: protocol.Currency(s(8)), Discount: n(1), Spend: n(2),
			Points: n(3), OrderTotal: n(4), Offline: i%2 == 0, Sign: n(5), RefAgent: protocol.AgentID(s(9 + i%2)), RefSeq: uint64(n(6)),
			ReceivedAt: times[(i+3)%len(times)]})
	}
	for _, mask := range []func(string) string{nil, func(c string) string { return "****" + c[len(c)/2:] }} {
		want, got := csvExport(t, rows, mask), exportCSV(t, rows, mask)
		if !bytes.Equal(got, want) {
			gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
			for i := range min(len(gl), len(wl)) {
				if gl[i] != wl[i] {
					t.Fatalf("line %d:\n got %q\nwant %q", i, gl[i], wl[i])
				}
			}
			t.Fatalf("%d lines, want %d", len(gl), len(wl))
		}
	}
}

// FuzzExportWriterCSV: any row is written as encoding/csv writes it.
func FuzzExportWriterCSV(f *testing.F) {
	for i, s := range oddStrings {
		f.Add(s, oddStrings[(i+1)%len(oddStrings)], int64(i*1000003-7), int64(1)<<(i%64), i%2 == 0)
	}
	f.Fuzz(func(t *testing.T, a, b string, n, ts int64, off bool) {
		r := pledger.ExportRow{At: time.UnixMilli(ts).UTC(), Entry: a, Agent: protocol.AgentID(b), Seq: uint64(n), Store: protocol.StoreID(a + b),
			TxnID: b + a, Campaign: protocol.CampaignID(a), Code: protocol.CodeID(b), Customer: protocol.CustomerID(a), OrderID: b,
			Currency: protocol.Currency(a), Discount: n, Spend: -n, Points: ts, OrderTotal: n ^ ts, Offline: off, Sign: n % 3,
			RefAgent: protocol.AgentID(a), RefSeq: uint64(ts), ReceivedAt: time.UnixMicro(n).UTC()}
		rows := []pledger.ExportRow{r}
		if want, got := csvExport(t, rows, nil), exportCSV(t, rows, nil); !bytes.Equal(got, want) {
			t.Fatalf("got\n%q\nwant\n%q", got, want)
		}
	})
}
