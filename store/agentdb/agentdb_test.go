package agentdb_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store"
	"github.com/punchcard/punchcard/store/agentdb"
)

// MustOpen opens a database in a temp directory.
func MustOpen(tb testing.TB) (*agentdb.DB, string) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "agent.db")
	db, err := agentdb.Open(context.Background(), path, agentdb.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db, path
}

func redeemReq(txn string, campaign protocol.CampaignID, code protocol.CodeID, discount int64) agentdb.Request {
	return agentdb.Request{
		Op:    agentdb.OpRedeem,
		TxnID: txn,
		Hash:  []byte("h:" + txn),
		Facts: []agentdb.Fact{{Redemption: protocol.Redemption{
			ID: protocol.RedemptionID{Agent: "a1"}, Kind: protocol.KindRedeem, Tenant: "t1", Store: "s1",
			TxnID: txn, Campaign: campaign, Code: code, Currency: "EUR", Discount: discount,
		}}},
		Result: func(rs []protocol.Redemption) ([]byte, error) {
			return json.Marshal(map[string]any{"seq": rs[0].ID.Seq, "hlc": rs[0].HLC})
		},
	}
}

func seqOf(t *testing.T, res []byte) uint64 {
	t.Helper()
	var v struct{ Seq uint64 }
	if err := json.Unmarshal(res, &v); err != nil {
		t.Fatal(err)
	}
	return v.Seq
}

func TestCommit(t *testing.T) {
	ctx := context.Background()
	t.Run("OK", func(t *testing.T) {
		db, _ := MustOpen(t)
		r1, replay, err := db.Commit(ctx, redeemReq("T1", "c1", "", 100))
		if err != nil || replay {
			t.Fatalf("commit: %v replay=%v", err, replay)
		}
		r2, _, err := db.Commit(ctx, redeemReq("T2", "c1", "", 100))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := seqOf(t, r1), uint64(1); got != want {
			t.Fatalf("seq = %d, want %d", got, want)
		}
		if got, want := seqOf(t, r2), uint64(2); got != want {
			t.Fatalf("seq = %d, want %d", got, want)
		}
		st, err := db.State(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.LastSeq != 2 || st.OutboxDepth != 2 || st.HLC == 0 {
			t.Fatalf("state = %+v", st)
		}
		p, err := db.Pending(ctx, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(p) != 2 || p[0].ID.Seq != 1 || p[1].ID.Seq != 2 || p[0].HLC >= p[1].HLC || p[0].TxnID != "T1" {
			t.Fatalf("pending = %+v", p)
		}
	})
	t.Run("Replay", func(t *testing.T) {
		db, _ := MustOpen(t)
		r1, _, err := db.Commit(ctx, redeemReq("T1", "c1", "", 100))
		if err != nil {
			t.Fatal(err)
		}
		r2, replay, err := db.Commit(ctx, redeemReq("T1", "c1", "", 100))
		if err != nil || !replay || string(r1) != string(r2) {
			t.Fatalf("replay: %v %v %s %s", err, replay, r1, r2)
		}
		if st, _ := db.State(ctx); st.LastSeq != 1 || st.OutboxDepth != 1 {
			t.Fatalf("replay recorded again: %+v", st)
		}
	})
	t.Run("ErrIdempotencyReuse", func(t *testing.T) {
		db, _ := MustOpen(t)
		if _, _, err := db.Commit(ctx, redeemReq("T1", "c1", "", 100)); err != nil {
			t.Fatal(err)
		}
		r := redeemReq("T1", "c1", "", 200)
		r.Hash = []byte("other")
		_, _, err := db.Commit(ctx, r)
		if got, want := protocol.ErrorCode(err), protocol.CodeIdempotencyReuse; got != want {
			t.Fatalf("code = %q, want %q", got, want)
		}
	})
	t.Run("ErrAllowanceExhausted", func(t *testing.T) {
		db, _ := MustOpen(t)
		if ok, err := db.Grant(ctx, protocol.Allowance{Campaign: "c1", Grant: 1, Count: 2, Amount: 250}); err != nil || !ok {
			t.Fatalf("grant: %v %v", ok, err)
		}
		use := func(txn string, amount int64) error {
			r := redeemReq(txn, "c1", "", amount)
			r.Facts[0].Allowance = &agentdb.AllowanceUse{Count: 1, Amount: amount}
			_, _, err := db.Commit(ctx, r)
			return err
		}
		if err := use("T1", 100); err != nil {
			t.Fatal(err)
		}
		if err := use("T2", 200); protocol.ErrorCode(err) != protocol.CodeAllowanceExhausted {
			t.Fatalf("amount over: %v", err)
		}
		if err := use("T3", 150); err != nil {
			t.Fatal(err)
		}
		if err := use("T4", 0); protocol.ErrorCode(err) != protocol.CodeAllowanceExhausted {
			t.Fatalf("count over: %v", err)
		}
		// The failed commits left nothing behind.
		if st, _ := db.State(ctx); st.LastSeq != 2 || st.OutboxDepth != 2 {
			t.Fatalf("state after refusals = %+v", st)
		}
		if ok, _ := db.Grant(ctx, protocol.Allowance{Campaign: "c1", Grant: 1, Count: 5, Amount: 500}); ok {
			t.Fatal("old grant applied twice")
		}
		if ok, _ := db.Grant(ctx, protocol.Allowance{Campaign: "c1", Grant: 2, Count: 1, Amount: 10}); !ok {
			t.Fatal("new grant not applied")
		}
		a, _, _ := db.Allowance(ctx, "c1")
		if a.Count != 1 || a.Amount != 10 || a.Grant != 2 {
			t.Fatalf("allowance = %+v", a)
		}
		back, err := db.Recall(ctx, "c1")
		if err != nil || len(back) != 1 || back[0].Amount != 10 {
			t.Fatalf("recall = %+v %v", back, err)
		}
		if err := use("T5", 1); protocol.ErrorCode(err) != protocol.CodeAllowanceExhausted {
			t.Fatalf("after recall: %v", err)
		}
	})
	t.Run("ErrCodeUsed", func(t *testing.T) {
		db, _ := MustOpen(t)
		use := func(txn string, known int64) error {
			r := redeemReq(txn, "c1", "ONCE1", 100)
			r.Facts[0].Code = &agentdb.CodeUse{Uses: 1, MaxUses: 1, KnownUses: known, Balance: -1}
			_, _, err := db.Commit(ctx, r)
			return err
		}
		if err := use("T0", 1); protocol.ErrorCode(err) != protocol.CodeCodeUsed {
			t.Fatalf("used per snapshot: %v", err)
		}
		if err := use("T1", 0); err != nil {
			t.Fatal(err)
		}
		if err := use("T2", 0); protocol.ErrorCode(err) != protocol.CodeCodeUsed {
			t.Fatalf("second use: %v", err)
		}
	})
	t.Run("ErrInsufficientBalance", func(t *testing.T) {
		db, _ := MustOpen(t)
		spend := func(txn string, amount int64) error {
			r := redeemReq(txn, "gc", "GIFT-1", 0)
			r.Facts[0].Redemption.Spend = amount
			r.Facts[0].Code = &agentdb.CodeUse{Uses: 1, Spend: amount, Balance: 500}
			_, _, err := db.Commit(ctx, r)
			return err
		}
		if err := spend("T1", 300); err != nil {
			t.Fatal(err)
		}
		if err := spend("T2", 201); protocol.ErrorCode(err) != protocol.CodeInsufficientFunds {
			t.Fatalf("overspend: %v", err)
		}
		if err := spend("T3", 200); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ErrOfflineCap", func(t *testing.T) {
		db, _ := MustOpen(t)
		env := agentdb.Envelope{PerRedemption: 500, PerCampaign: 800, Total: 1000, Count: 3}
		risky := func(txn string, c protocol.CampaignID, risk int64) error {
			r := redeemReq(txn, c, "", risk)
			r.Facts[0].Risk = risk
			r.Envelope = env
			_, _, err := db.Commit(ctx, r)
			return err
		}
		if err := risky("T1", "c1", 501); protocol.ErrorCode(err) != protocol.CodeOfflineCap {
			t.Fatalf("per redemption: %v", err)
		}
		if err := risky("T2", "c1", 500); err != nil {
			t.Fatal(err)
		}
		if err := risky("T3", "c1", 301); protocol.ErrorCode(err) != protocol.CodeOfflineCap {
			t.Fatalf("per campaign: %v", err)
		}
		if err := risky("T4", "c2", 400); err != nil {
			t.Fatal(err)
		}
		if err := risky("T5", "c3", 101); protocol.ErrorCode(err) != protocol.CodeOfflineCap {
			t.Fatalf("total: %v", err)
		}
		if err := risky("T6", "c3", 100); err != nil {
			t.Fatal(err)
		}
		if err := risky("T7", "c3", 1); protocol.ErrorCode(err) != protocol.CodeOfflineCap {
			t.Fatalf("count: %v", err)
		}
		// The hub's ack frees the envelope.
		if _, err := db.Ack(ctx, 3, nil); err != nil {
			t.Fatal(err)
		}
		if err := risky("T8", "c1", 500); err != nil {
			t.Fatalf("after ack: %v", err)
		}
	})
	// A fact the hub's validator refuses is never committed: nothing is
	// recorded, no seq is used, the outbox stays empty. (The original
	// Commit queued it, and the hub refused the till's batches for ever.)
	for _, tc := range []struct {
		name, field string
		mod         func(*protocol.Redemption)
	}{
		{"ErrOrderIDTooLong", "order_id", func(r *protocol.Redemption) { r.OrderID = strings.Repeat("o", 129) }},
		{"ErrCustomerSpace", "customer", func(r *protocol.Redemption) { r.Customer = "a b" }},
		{"ErrNoTenant", "tenant", func(r *protocol.Redemption) { r.Tenant = "" }},
		{"ErrNegativeDiscount", "discount", func(r *protocol.Redemption) { r.Discount = -1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, _ := MustOpen(t)
			r := redeemReq("T1", "c1", "", 100)
			r.Facts = append(r.Facts, r.Facts[0])
			tc.mod(&r.Facts[1].Redemption)
			_, _, err := db.Commit(ctx, r)
			var pe *protocol.Error
			if !errors.As(err, &pe) || pe.Code != protocol.CodeInvalidInput || pe.Field != tc.field {
				t.Fatalf("err = %v, want invalid_input on %s", err, tc.field)
			}
			st, err := db.State(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.OutboxDepth != 0 || st.LastSeq != 0 {
				t.Fatalf("state after a refused fact: %+v", st)
			}
			if fs, _ := db.Facts(ctx, agentdb.OpRedeem, "T1"); len(fs) != 0 {
				t.Fatalf("recorded %d facts", len(fs))
			}
			// The POS may retry the same txn id with a valid request.
			if _, _, err := db.Commit(ctx, redeemReq("T1", "c1", "", 100)); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("ErrAlreadyRolledBack", func(t *testing.T) {
		db, _ := MustOpen(t)
		if _, _, err := db.Commit(ctx, redeemReq("T1", "c1", "", 100)); err != nil {
			t.Fatal(err)
		}
		rb := func(txn string) error {
			r := agentdb.Request{Op: agentdb.OpRollback, TxnID: txn, Hash: []byte(txn), Facts: []agentdb.Fact{{
				Redemption: protocol.Redemption{ID: protocol.RedemptionID{Agent: "a1"}, Tenant: "t1", Kind: protocol.KindRollback, Ref: &protocol.RedemptionID{Agent: "a1", Seq: 1}},
				Voids:      1,
			}}}
			_, _, err := db.Commit(ctx, r)
			return err
		}
		if err := rb("R1"); err != nil {
			t.Fatal(err)
		}
		if err := rb("R2"); protocol.ErrorCode(err) != protocol.CodeAlreadyRolledBack {
			t.Fatalf("second rollback: %v", err)
		}
		f, err := db.Facts(ctx, agentdb.OpRedeem, "T1")
		if err != nil || len(f) != 1 || f[0].VoidedBy != 2 {
			t.Fatalf("facts = %+v %v", f, err)
		}
	})
}

func TestAck(t *testing.T) {
	ctx := context.Background()
	db, _ := MustOpen(t)
	for i := 1; i <= 6; i++ {
		if _, _, err := db.Commit(ctx, redeemReq(fmt.Sprint("T", i), "c1", "", 1)); err != nil {
			t.Fatal(err)
		}
	}
	n, err := db.Ack(ctx, 2, []uint64{4, 6})
	if err != nil || n != 4 {
		t.Fatalf("ack = %d %v", n, err)
	}
	p, _ := db.Pending(ctx, 0, 10)
	if len(p) != 2 || p[0].ID.Seq != 3 || p[1].ID.Seq != 5 {
		t.Fatalf("pending = %+v", p)
	}
	r, _ := db.Range(ctx, 3, 4, 10)
	if len(r) != 1 || r[0].ID.Seq != 3 {
		t.Fatalf("range = %+v", r)
	}
	// A watermark past the agent's counter is refused: nothing deleted,
	// the counter unchanged.
	if n, err := db.Ack(ctx, 100, nil); !errors.Is(err, agentdb.ErrAckBeyondLastSeq) || n != 0 {
		t.Fatalf("ack beyond = %d %v", n, err)
	}
	if p, _ := db.Pending(ctx, 0, 10); len(p) != 2 {
		t.Fatalf("an ack beyond the last seq deleted rows: %+v", p)
	}
	res, _, err := db.Commit(ctx, redeemReq("T7", "c1", "", 1))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := seqOf(t, res), uint64(7); got != want {
		t.Fatalf("seq after a refused ack = %d, want %d", got, want)
	}
}

func TestSnapshot(t *testing.T) {
	ctx := context.Background()
	db, path := MustOpen(t)
	if _, ok, err := db.LoadSnapshot(ctx); err != nil || ok {
		t.Fatalf("fresh db has a snapshot: %v %v", ok, err)
	}
	at := time.UnixMilli(1_800_000_000_000)
	if err := db.SaveSnapshot(ctx, agentdb.Snapshot{Version: 7, ETag: `"v7"`, Body: []byte("body"), At: at}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db2, err := agentdb.Open(ctx, path, agentdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	s, ok, err := db2.LoadSnapshot(ctx)
	if err != nil || !ok || s.Version != 7 || string(s.Body) != "body" || !s.At.Equal(at) || s.ETag != `"v7"` {
		t.Fatalf("snapshot = %+v %v %v", s, ok, err)
	}
	st, _ := db2.State(ctx)
	if !st.SyncedAt.Equal(at) || st.SnapshotVersion != 7 {
		t.Fatalf("state = %+v", st)
	}
}

func TestClockPersisted(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "agent.db")
	future := time.Now().Add(time.Hour)
	db, err := agentdb.Open(ctx, path, agentdb.Options{Now: func() time.Time { return future }})
	if err != nil {
		t.Fatal(err)
	}
	res, _, err := db.Commit(ctx, redeemReq("T1", "c1", "", 1))
	if err != nil {
		t.Fatal(err)
	}
	var first struct{ HLC uint64 }
	json.Unmarshal(res, &first)
	db.Close()
	// The wall clock is an hour behind after the restart.
	db, err = agentdb.Open(ctx, path, agentdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	res, _, err = db.Commit(ctx, redeemReq("T2", "c1", "", 1))
	if err != nil {
		t.Fatal(err)
	}
	var second struct{ HLC uint64 }
	json.Unmarshal(res, &second)
	if second.HLC <= first.HLC {
		t.Fatalf("hlc went back across restart: %d then %d", first.HLC, second.HLC)
	}
}

// The crash test runs the test binary itself as a child that commits in a
// loop and prints each committed txn, kills it with SIGKILL, and checks that
// every printed txn is in the database exactly once, with contiguous seqs.
const childEnv = "AGENTDB_CRASH_CHILD"

func TestCrashChild(t *testing.T) {
	path := os.Getenv(childEnv)
	if path == "" {
		t.Skip("helper process for TestCrashSafety")
	}
	ctx := context.Background()
	db, err := agentdb.Open(ctx, path, agentdb.Options{})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(2)
	}
	start, _ := strconv.Atoi(os.Getenv(childEnv + "_START"))
	w := bufio.NewWriter(os.Stdout)
	for i := start; ; i++ {
		// Every txn is retried once, as a POS would after a timeout.
		for range 2 {
			res, _, err := db.Commit(ctx, redeemReq(fmt.Sprintf("T%06d", i), "c1", "", 1))
			if err != nil {
				fmt.Fprintln(w, "ERR", err)
				w.Flush()
				os.Exit(2)
			}
			var v struct{ Seq uint64 }
			json.Unmarshal(res, &v)
			fmt.Fprintf(w, "OK T%06d %d\n", i, v.Seq)
			w.Flush()
		}
	}
}

func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "agent.db")
	acked := map[string]uint64{} // txn -> seq the "POS" was told
	next := 0
	for round := 0; round < 4; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), childEnv+"="+path, fmt.Sprintf("%s_START=%d", childEnv, next))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		lines := 0
		killAt := 50 + 37*round
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) > 0 && f[0] == "ERR" {
				t.Fatalf("child: %s", sc.Text())
			}
			if len(f) != 3 || f[0] != "OK" {
				continue
			}
			seq, _ := strconv.ParseUint(f[2], 10, 64)
			if prev, ok := acked[f[1]]; ok && prev != seq {
				t.Fatalf("%s answered with seq %d, then %d", f[1], prev, seq)
			}
			acked[f[1]] = seq
			n, _ := strconv.Atoi(f[1][1:])
			next = n // restart with the last txn: its retry must replay
			if lines++; lines == killAt {
				cmd.Process.Signal(syscall.SIGKILL)
			}
		}
		cmd.Wait()
		if lines < killAt {
			t.Fatalf("round %d: child stopped after %d lines", round, lines)
		}
	}
	db, err := agentdb.Open(ctx, path, agentdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p, err := db.Pending(ctx, 0, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]uint64{}
	for i, r := range p {
		if r.ID.Seq != uint64(i+1) {
			t.Fatalf("outbox seq %d at position %d: gap or duplicate", r.ID.Seq, i)
		}
		if _, dup := seen[r.TxnID]; dup {
			t.Fatalf("%s recorded twice", r.TxnID)
		}
		seen[r.TxnID] = r.ID.Seq
	}
	for txn, seq := range acked {
		if got, ok := seen[txn]; !ok || got != seq {
			t.Fatalf("%s acknowledged with seq %d, stored %d (present %v)", txn, seq, got, ok)
		}
	}
	if len(acked) < 100 {
		t.Fatalf("only %d txns acknowledged", len(acked))
	}
}

func BenchmarkCommit(b *testing.B) {
	ctx := context.Background()
	db, _ := MustOpen(b)
	if _, err := db.Grant(ctx, protocol.Allowance{Campaign: "c1", Grant: 1, Count: -1, Amount: -1}); err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		i++
		r := redeemReq(fmt.Sprint("T", i), "c1", protocol.CodeID(fmt.Sprint("C", i)), 100)
		r.Facts[0].Allowance = &agentdb.AllowanceUse{Count: 1, Amount: 100}
		r.Facts[0].Code = &agentdb.CodeUse{Uses: 1, MaxUses: 1, Balance: -1}
		if _, _, err := db.Commit(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
}

// TestPendingDamagedRow: an outbox row whose body no longer decodes (a
// damaged or tampered database) does not stop the rows after it: it comes
// back as a bare fact under its seq, for the hub to quarantine and ack.
// The original Pending failed on it, and the till published nothing more.
func TestPendingDamagedRow(t *testing.T) {
	ctx := context.Background()
	db, path := MustOpen(t)
	for _, txn := range []string{"T1", "T2", "T3"} {
		if _, _, err := db.Commit(ctx, redeemReq(txn, "c1", "", 100)); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := store.Open(ctx, path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.ExecContext(ctx, `UPDATE outbox SET body = x'ff00' WHERE seq = 2`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	for _, get := range []func() ([]protocol.Redemption, error){
		func() ([]protocol.Redemption, error) { return db.Pending(ctx, 0, 10) },
		func() ([]protocol.Redemption, error) { return db.Range(ctx, 1, 0, 10) },
	} {
		p, err := get()
		if err != nil {
			t.Fatal(err)
		}
		if len(p) != 3 || p[0].ID.Seq != 1 || p[0].Tenant != "t1" || p[2].ID.Seq != 3 || p[2].Tenant != "t1" {
			t.Fatalf("pending = %+v", p)
		}
		if p[1] != (protocol.Redemption{ID: protocol.RedemptionID{Seq: 2}}) {
			t.Fatalf("damaged row = %+v, want a bare fact under seq 2", p[1])
		}
	}
}
