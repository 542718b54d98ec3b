package ledger_test

import (
	"context"
	"database/sql"
	"reflect"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	pledger "github.com/punchcard/punchcard/protocol/ledger"
)

// TestExportFactsValues: every fact reads back through the export's
// one-column lines (exportSQL) as the journal's columns hold it, read
// one by one here: strings with commas, quotes, line breaks, NULs,
// invalid UTF-8 and digits, empty strings, numbers at their limits and
// negative, a NULL seq and ref_agent/ref_seq, facts of the same
// millisecond.
func TestExportFactsValues(t *testing.T) {
	l, _ := MustOpen(t)
	ctx := context.Background()
	base := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	odd := []string{"", "plain", "a,b", `q"q`, "l\nb", "\x00nul\x00", "\xff\xfe", "12", "-3,4", ",,,", "ü€", " sp"}
	nums := []int64{0, 1, -1, 1<<63 - 1, -1 << 63, 42}
	for i := range 3 * len(odd) {
		s := func(k int) string { return odd[(i+k)%len(odd)] }
		n := func(k int) int64 { return nums[(i+k)%len(nums)] }
		var seq, refSeq, refAgent any = int64(i + 1), n(5), s(9)
		if i%4 == 0 {
			seq = nil
		}
		if i%3 == 0 {
			refSeq, refAgent = nil, nil
		}
		if _, err := l.DB().Exec(`INSERT INTO ledger_journal (tenant, entry, agent, seq, store, txn_id, campaign, code, customer, order_id,
			currency, discount, spend, points, order_total, hlc, offline, sign, psign, ref_agent, ref_seq, received_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)`,
			string(tenant), s(0), s(1), seq, s(2), s(3), s(4), s(5), s(6), s(7), s(8), n(0), n(1), n(2), n(3),
			(base.UnixMilli()+int64(i/2))<<16+int64(i%2), i%2, 0, refAgent, refSeq, n(4)/1000); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := l.DB().Query(`SELECT hlc, entry, agent, seq, store, txn_id, campaign, code, customer, order_id, currency,
		discount, spend, points, order_total, offline, sign, ref_agent, ref_seq, received_at FROM ledger_journal WHERE tenant = ? ORDER BY hlc, id`, string(tenant))
	if err != nil {
		t.Fatal(err)
	}
	var want []pledger.ExportRow
	for rows.Next() {
		var r pledger.ExportRow
		var hlc, recv, offline int64
		var seq, refSeq sql.NullInt64
		var entry, agent, store, txn, campaign, code, customer, order, currency string
		var refAgent sql.NullString
		if err := rows.Scan(&hlc, &entry, &agent, &seq, &store, &txn, &campaign, &code, &customer, &order, &currency,
			&r.Discount, &r.Spend, &r.Points, &r.OrderTotal, &offline, &r.Sign, &refAgent, &refSeq, &recv); err != nil {
			t.Fatal(err)
		}
		r.At, r.ReceivedAt, r.Offline = time.UnixMilli(hlc>>16).UTC(), time.UnixMicro(recv).UTC(), offline != 0
		r.Entry, r.Agent, r.Seq, r.Store, r.TxnID, r.Campaign = entry, protocol.AgentID(agent), uint64(seq.Int64), protocol.StoreID(store), txn, protocol.CampaignID(campaign)
		r.Code, r.Customer, r.OrderID, r.Currency = protocol.CodeID(code), protocol.CustomerID(customer), order, protocol.Currency(currency)
		r.RefAgent, r.RefSeq = protocol.AgentID(refAgent.String), uint64(refSeq.Int64)
		want = append(want, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	var got []pledger.ExportRow
	if err := l.ExportFacts(ctx, tenant, base, base.Add(time.Hour), func(r *pledger.ExportRow) error {
		got = append(got, *r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) || len(want) != 3*len(odd) {
		t.Fatalf("%d rows, want %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Fatalf("row %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}
