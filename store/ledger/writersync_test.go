package ledger

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store"
)

// TestPipelinedCommit: at synchronous=FULL the online writer commits on
// its own connection without the fsync and the syncer fsyncs the WAL
// before the basket is answered: every basket answered one at a time was
// answered after a sync of its own. SetSerialCommit (and
// Options.SerialCommit) puts the fsync back in the commit; a ledger at
// synchronous=NORMAL has no fsync to move. The writer's lowered setting
// never reaches the pool: once the writer has given its connection back,
// every pooled connection syncs as the pool was opened.
func TestPipelinedCommit(t *testing.T) {
	const tn = protocol.TenantID("acme")
	for _, tc := range []struct {
		name   string
		sync   store.Sync
		serial bool
		want   func(i int) int64 // syncs after the i-th basket (from 1)
	}{
		{"Full", store.SyncFull, false, func(i int) int64 { return int64(i) }},
		{"FullSerial", store.SyncFull, true, func(int) int64 { return 0 }},
		{"Normal", store.SyncNormal, false, func(int) int64 { return 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			f := &MemFacts{}
			f.SetCampaign(tn, "loyalty", CampaignFacts{Currency: "EUR"})
			l, err := Open(ctx, filepath.Join(t.TempDir(), "l.db"), Options{Facts: f, SerialCommit: tc.serial, Store: store.Options{Sync: tc.sync}})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			redeem := func(i int) {
				t.Helper()
				_, _, err := l.RedeemBasket(ctx, Basket{Tenant: tn, Redemptions: []protocol.Redemption{{Kind: protocol.KindRedeem, Store: "web",
					TxnID: fmt.Sprint("t", i), Campaign: "loyalty", Customer: "c1", Currency: "EUR", Discount: 10, OrderTot: 100}}})
				if err != nil {
					t.Fatal(err)
				}
			}
			for i := 1; i <= 4; i++ {
				redeem(i)
				if _, _, _, syncs := l.WriterTimes(); syncs != tc.want(i) {
					t.Fatalf("after basket %d: %d syncs by the syncer, want %d", i, syncs, tc.want(i))
				}
			}
			if tc.name == "Full" {
				// Serial from the next group on, then pipelined again.
				l.SetSerialCommit(true)
				redeem(5)
				if _, _, _, syncs := l.WriterTimes(); syncs != 4 {
					t.Fatalf("serial: %d syncs by the syncer, want still 4", syncs)
				}
				l.SetSerialCommit(false)
				redeem(6)
				if _, _, _, syncs := l.WriterTimes(); syncs != 5 {
					t.Fatalf("pipelined again: %d syncs by the syncer, want 5", syncs)
				}
			}
			busy, commit, _, _ := l.WriterTimes()
			if busy <= 0 || commit <= 0 || commit > busy {
				t.Fatalf("writer busy %v, commit %v", busy, commit)
			}
			l.stopWriter() // gives the writer's connection back
			want := 2      // FULL
			if tc.sync == store.SyncNormal {
				want = 1
			}
			conns := make([]*sql.Conn, store.DefaultMaxOpenConns) // every connection of the pool at once
			for i := range conns {
				c, err := l.DB().Conn(ctx)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				conns[i] = c
				var got int
				if err := c.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&got); err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Fatalf("pooled connection %d: synchronous = %d, want %d", i, got, want)
				}
			}
			var n int
			if err := conns[0].QueryRowContext(ctx, `SELECT COUNT(*) FROM ledger_journal`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if wantN := map[bool]int{true: 6, false: 4}[tc.name == "Full"]; n != wantN {
				t.Fatalf("%d journal rows, want %d", n, wantN)
			}
		})
	}
}

// TestSyncFile: the syncer's fsync of a WAL that is gone (the last
// connection checkpointed and removed it) syncs the database file.
func TestSyncFile(t *testing.T) {
	db := filepath.Join(t.TempDir(), "l.db")
	if err := syncFile(db + "-wal"); err == nil {
		t.Fatal("no database file and no WAL: want an error")
	}
	l, err := Open(context.Background(), db, Options{Facts: &MemFacts{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := syncFile(db + "-wal"); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if err := syncFile(db + "-wal"); err != nil { // removed at close
		t.Fatal(err)
	}
}

// TestWriterTakeIn: the writer's group takes in baskets queued after it
// began only while its take-in is on (writer.more), and the take-in is on
// for the windows of groups after it measured a rate of baskets a second
// more than takeInMargin above the rate without, but for one window in
// takeInExplore, which tries the other choice (takeIn.tally).
func TestWriterTakeIn(t *testing.T) {
	const basket = 10 * time.Millisecond // a group off: 1 basket in 10 ms
	for _, tc := range []struct {
		name    string
		onN     int           // baskets a group while on
		onTime  time.Duration // a group's time while on
		windows int           // windows tallied
		ons     []int         // the windows run with the take-in on
	}{
		{"OnPays", 2, basket, 12, []int{1, 2, 3, 4, 5, 6, 7, 9, 10, 11}},
		{"OnCosts", 1, 2 * basket, 12, []int{1, 8}},
		{"OnWithinMargin", 1, basket * 98 / 100, 12, []int{1, 8}}, // 2 % faster
		{"OnBeyondMargin", 1, basket * 90 / 100, 12, []int{1, 2, 3, 4, 5, 6, 7, 9, 10, 11}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ti takeIn
			now := time.Unix(0, 0)
			ti.tally(1, now) // the first group starts the clock
			var ons []int
			for win := range tc.windows {
				if ti.on {
					ons = append(ons, win)
				}
				for range takeInWindow {
					n, d := 1, basket
					if ti.on {
						n, d = tc.onN, tc.onTime
					}
					now = now.Add(d)
					ti.tally(n, now)
				}
			}
			if !slices.Equal(ons, tc.ons) {
				t.Errorf("windows with the take-in on %v, want %v", ons, tc.ons)
			}
		})
	}
	t.Run("More", func(t *testing.T) {
		for _, on := range []bool{false, true} {
			w := &writer{q: make(chan *job, 4), group: 256}
			w.takeIn.on = on
			for range 3 {
				w.q <- &job{}
			}
			taken := 0
			for w.more(1+taken) != nil {
				taken++
			}
			if want := map[bool]int{false: 0, true: 3}[on]; taken != want {
				t.Errorf("on %v: took in %d of 3 queued, want %d", on, taken, want)
			}
		}
	})
}
