package cluster_test

import (
	"strings"
	"testing"

	"github.com/punchcard/punchcard/cmd/punchcard/internal/cluster"
)

func TestCheckAcked(t *testing.T) {
	redeem := func(agent string, seq int64, txn string, discount int64) cluster.Entry {
		return cluster.Entry{Agent: agent, Seq: seq, Entry: "redeem", TxnID: txn, Discount: discount, Sign: 1}
	}
	acked := []cluster.Acked{
		{Agent: "till-1", Seq: 1, TxnID: "t1", Discount: 500},
		{Agent: "till-1", Seq: 2, TxnID: "t1", Discount: 120},
		{Agent: "hub", Seq: 1, TxnID: "web-1", Discount: 300},
	}
	acked = append(acked, cluster.Acked{Agent: "till-1", Seq: 3, Kind: "earn", TxnID: "t1-points", Points: 42})
	base := []cluster.Entry{redeem("till-1", 1, "t1", 500), redeem("till-1", 2, "t1", 120), redeem("hub", 1, "web-1", 300),
		{Agent: "till-1", Seq: 3, Entry: "earn", TxnID: "t1-points", Points: 42}}
	tests := []struct {
		name    string
		acked   []cluster.Acked
		entries []cluster.Entry
		want    []string // prefixes of the violations, in order
	}{
		{name: "OK", acked: acked, entries: base},
		{name: "OKEmpty"},
		{name: "ErrLost", acked: acked, entries: base[1:], want: []string{"LOST: till-1/1"}},
		{name: "ErrDouble", acked: acked, entries: append(append([]cluster.Entry{}, base...), redeem("till-1", 4, "t1", 500)), want: []string{"DOUBLE: till-1/4"}},
		{name: "ErrUnknown", acked: acked, entries: append(append([]cluster.Entry{}, base...), redeem("till-2", 1, "t9", 500)), want: []string{"UNKNOWN: till-2/1"}},
		{name: "ErrChanged", acked: acked, entries: []cluster.Entry{redeem("till-1", 1, "t1", 499), base[1], base[2], base[3]}, want: []string{"CHANGED: till-1/1"}},
		{name: "ErrPointsChanged", acked: acked, entries: []cluster.Entry{base[0], base[1], base[2], {Agent: "till-1", Seq: 3, Entry: "earn", TxnID: "t1-points", Points: 84}}, want: []string{"CHANGED: till-1/3"}},
		{name: "ErrKindChanged", acked: acked, entries: []cluster.Entry{base[0], base[1], base[2], {Agent: "till-1", Seq: 3, Entry: "burn", TxnID: "t1-points", Points: 42}}, want: []string{"CHANGED: till-1/3"}},
		{name: "ErrEarnLost", acked: acked, entries: base[:3], want: []string{"LOST: till-1/3"}},
		{name: "ErrReceiptTwice", acked: append(append([]cluster.Acked{}, acked...), acked[0]), entries: base, want: []string{"RECEIPT: till-1/1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := cluster.CheckAcked(tt.acked, tt.entries)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d violations %q, want %d", len(got), got, len(tt.want))
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.want[i]) {
					t.Errorf("violation %d = %q, want prefix %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}
