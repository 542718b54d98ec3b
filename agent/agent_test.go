package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/punchcard/punchcard/agent"
	"github.com/punchcard/punchcard/agent/agenttest"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/store/agentdb"
)

// link is a hub connection whose state the test sets. Allowance requests
// are answered with a fresh grant of count redemptions.
type link struct {
	on     atomic.Bool
	grants atomic.Int64
	count  int64
}

func (l *link) Online() bool { return l.on.Load() }
func (l *link) RequestAllowance(ctx context.Context, c protocol.CampaignID) (protocol.Allowance, error) {
	n := l.grants.Add(1)
	return protocol.Allowance{Tenant: agenttest.Tenant, Agent: agenttest.Agent, Campaign: c, Grant: uint64(100 + n), Count: l.count, Amount: -1}, nil
}

type env struct {
	a    *agent.Agent
	db   *agentdb.DB
	srv  *httptest.Server
	link *link
	now  atomic.Pointer[time.Time]
}

func newEnv(t *testing.T, snap *snapshot.Snapshot) *env {
	t.Helper()
	ctx := context.Background()
	db, err := agentdb.Open(ctx, filepath.Join(t.TempDir(), "agent.db"), agentdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	a, err := agent.New(ctx, agenttest.Tenant, agenttest.Agent, db)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{a: a, db: db, link: &link{count: 5}}
	n := time.Now()
	e.now.Store(&n)
	a.Now = func() time.Time { return *e.now.Load() }
	a.SetLink(e.link)
	a.POSToken = agenttest.POSToken
	if snap != nil {
		if _, err := a.ApplySnapshot(ctx, agenttest.Encode(t, snap), "etag"); err != nil {
			t.Fatal(err)
		}
	}
	e.srv = httptest.NewServer(a.Handler())
	t.Cleanup(e.srv.Close)
	return e
}

type reply struct {
	Status int
	Body   map[string]any
	Raw    string
}

func (r reply) code() string {
	if e, ok := r.Body["error"].(map[string]any); ok {
		return fmt.Sprint(e["code"])
	}
	return ""
}

func (e *env) post(t *testing.T, path string, body any) reply {
	t.Helper()
	b, _ := json.Marshal(body)
	return e.do(t, http.MethodPost, path, "application/json", bytes.NewReader(b))
}

func (e *env) get(t *testing.T, path string) reply {
	t.Helper()
	return e.do(t, http.MethodGet, path, "", nil)
}

// do sends a request as the POS does: with the token and, when body is set,
// with ctype.
func (e *env) do(t *testing.T, method, path, ctype string, body io.Reader) reply {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	agenttest.AuthorizePOS(req, agenttest.POSToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return readReply(t, resp)
}

func readReply(t *testing.T, resp *http.Response) reply {
	t.Helper()
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{Status: resp.StatusCode, Raw: string(raw)}
	json.Unmarshal(raw, &r.Body)
	return r
}

func basket(total int64, codes ...string) agent.Basket {
	b := agent.Basket{Order: agenttest.Order("o1", total)}
	for _, c := range codes {
		b.Redeemables = append(b.Redeemables, agent.Input{Code: c})
	}
	return b
}

func redeem(txn string, b agent.Basket) agent.RedeemRequest {
	return agent.RedeemRequest{TxnID: txn, Basket: b}
}

func num(v any) int64 { f, _ := v.(float64); return int64(f) }

func (e *env) status(t *testing.T) map[string]any {
	t.Helper()
	r := e.get(t, "/v1/status")
	if r.Status != 200 {
		t.Fatalf("status: %d %s", r.Status, r.Raw)
	}
	return r.Body
}

func TestNeverSynced(t *testing.T) {
	e := newEnv(t, nil)
	r := e.post(t, "/v1/validate", basket(100_00, agenttest.CodeSummer))
	if got, want := r.code(), string(protocol.CodeNeverSynced); got != want || r.Status != 503 {
		t.Fatalf("validate: %d %s", r.Status, r.Raw)
	}
	if st := e.status(t); st["never_synced"] != true || num(st["snapshot_age_seconds"]) != -1 {
		t.Fatalf("status = %v", st)
	}
	if r := e.get(t, "/healthz"); r.Status != 200 {
		t.Fatalf("healthz: %d", r.Status)
	}
}

func TestValidate(t *testing.T) {
	e := newEnv(t, agenttest.Small(1, 10))
	t.Run("OK", func(t *testing.T) {
		r := e.post(t, "/v1/validate", basket(100_00, "summer10 \r\n"))
		if r.Status != 200 || num(r.Body["discount"]) != 10_00 || r.Body["error"] != nil {
			t.Fatalf("validate: %d %s", r.Status, r.Raw)
		}
		if st := e.status(t); num(st["outbox_depth"]) != 0 {
			t.Fatalf("validate had a side effect: %v", st)
		}
	})
	t.Run("OKToken", func(t *testing.T) {
		r := e.post(t, "/v1/validate", basket(100_00, agenttest.Token(t, agenttest.CampAmount, "S1", 1, "")))
		if r.Status != 200 || num(r.Body["discount"]) != 5_00 {
			t.Fatalf("validate: %d %s", r.Status, r.Raw)
		}
	})
	for _, tc := range []struct {
		name, code string
		want       protocol.Code
	}{
		{"ErrUnknownCode", "NOPE-1", protocol.CodeUnknownCode},
		{"ErrRevoked", agenttest.CodeRevoked, protocol.CodeCodeRevoked},
		{"ErrEmpty", "  ", protocol.CodeTokenEmpty},
		{"ErrTampered", "", protocol.CodeBadSignature},
		{"ErrTokenOtherStore", "", protocol.CodeWrongStore},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code := tc.code
			if tc.name == "ErrTokenOtherStore" {
				// A token's store claim limits where it is valid, at every
				// till as at the hub (which re-derives the fact).
				code = agenttest.Token(t, agenttest.CampAmount, "S3", 1, "another-store")
			}
			if tc.name == "ErrTampered" {
				tok := []byte(agenttest.Token(t, agenttest.CampAmount, "S2", 1, ""))
				i := len(tok) - 10
				if tok[i] == 'A' {
					tok[i] = 'B'
				} else {
					tok[i] = 'A'
				}
				code = string(tok)
			}
			r := e.post(t, "/v1/validate", basket(100_00, code))
			if r.Status != 200 {
				t.Fatalf("validate: %d %s", r.Status, r.Raw)
			}
			res := r.Body["results"].([]any)[0].(map[string]any)
			if got := protocol.Code(fmt.Sprint(res["reason"])); got != tc.want {
				// A flipped character may also break the text's structure.
				if tc.name != "ErrTampered" || !strings.HasPrefix(string(got), "token_") {
					t.Fatalf("reason = %q, want %q (%s)", got, tc.want, r.Raw)
				}
			}
			if res["message"] == "" || r.code() == "" {
				t.Fatalf("no cashier message: %s", r.Raw)
			}
		})
	}
	t.Run("ErrInvalidInput", func(t *testing.T) {
		if r := e.do(t, http.MethodPost, "/v1/validate", "application/json", strings.NewReader(`{"order": 5}`)); r.Status != 400 || r.code() != string(protocol.CodeInvalidInput) {
			t.Fatalf("bad json: %d %s", r.Status, r.Raw)
		}
		if r := e.post(t, "/v1/validate", agent.Basket{Order: protocol.Order{Currency: "eur"}}); r.Status != 400 {
			t.Fatalf("bad order: %d %s", r.Status, r.Raw)
		}
		if r := e.get(t, "/v1/nope"); r.Status != 404 {
			t.Fatalf("unknown path: %d", r.Status)
		}
	})
}

func TestRedeem(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		e := newEnv(t, agenttest.Small(1, 10))
		r := e.post(t, "/v1/redeem", redeem("T1", basket(100_00, agenttest.CodeSummer)))
		if r.Status != 200 {
			t.Fatalf("redeem: %d %s", r.Status, r.Raw)
		}
		facts := r.Body["redemptions"].([]any)
		if len(facts) != 1 || num(facts[0].(map[string]any)["discount"]) != 10_00 {
			t.Fatalf("facts = %v", facts)
		}
		again := e.post(t, "/v1/redeem", redeem("T1", basket(100_00, agenttest.CodeSummer)))
		if again.Status != 200 || again.Body["replayed"] != true {
			t.Fatalf("retry: %d %s", again.Status, again.Raw)
		}
		if fmt.Sprint(again.Body["redemptions"]) != fmt.Sprint(facts) {
			t.Fatalf("retry answered differently:\n%v\n%v", again.Body["redemptions"], facts)
		}
		st := e.status(t)
		if num(st["outbox_depth"]) != 1 || num(st["last_seq"]) != 1 {
			t.Fatalf("status = %v", st)
		}
		al := st["allowances"].([]any)[0].(map[string]any)
		if num(al["count_left"]) != 9 {
			t.Fatalf("allowance = %v", al)
		}
	})
	t.Run("ErrIdempotencyReuse", func(t *testing.T) {
		e := newEnv(t, agenttest.Small(1, 10))
		e.post(t, "/v1/redeem", redeem("T1", basket(100_00, agenttest.CodeSummer)))
		r := e.post(t, "/v1/redeem", redeem("T1", basket(200_00, agenttest.CodeSummer)))
		if r.code() != string(protocol.CodeIdempotencyReuse) {
			t.Fatalf("reuse: %d %s", r.Status, r.Raw)
		}
	})
	t.Run("ErrCodeUsed", func(t *testing.T) {
		e := newEnv(t, agenttest.Small(1, 10))
		if r := e.post(t, "/v1/redeem", redeem("T1", basket(100_00, agenttest.CodeOnce))); r.Status != 200 {
			t.Fatalf("first: %d %s", r.Status, r.Raw)
		}
		r := e.post(t, "/v1/redeem", redeem("T2", basket(100_00, agenttest.CodeOnce)))
		if r.Status != 409 || r.code() != string(protocol.CodeCodeUsed) || r.Body["quote"] == nil {
			t.Fatalf("second: %d %s", r.Status, r.Raw)
		}
	})
	t.Run("ErrAllowanceExhausted", func(t *testing.T) {
		e := newEnv(t, agenttest.Small(1, 1))
		e.link.on.Store(false)
		if r := e.post(t, "/v1/redeem", redeem("T1", basket(100_00, agenttest.CodeSummer))); r.Status != 200 {
			t.Fatalf("first: %d %s", r.Status, r.Raw)
		}
		r := e.post(t, "/v1/redeem", redeem("T2", basket(100_00, agenttest.CodeSummer)))
		if r.Status != 409 || r.code() != string(protocol.CodeAllowanceExhausted) {
			t.Fatalf("offline, exhausted: %d %s", r.Status, r.Raw)
		}
		// Online, the agent asks the hub for more first.
		e.link.on.Store(true)
		if r := e.post(t, "/v1/redeem", redeem("T2", basket(100_00, agenttest.CodeSummer))); r.Status != 200 {
			t.Fatalf("online top-up: %d %s", r.Status, r.Raw)
		}
		if e.link.grants.Load() != 1 {
			t.Fatalf("grants asked = %d", e.link.grants.Load())
		}
	})
	t.Run("Offline", func(t *testing.T) {
		s := agenttest.Small(1, 10)
		s.Envelope.PerRedemption = 0 // single-use codes need the hub unless bound
		e := newEnv(t, s)
		e.link.on.Store(false)
		r := e.post(t, "/v1/redeem", redeem("T1", basket(100_00, agenttest.CodeOnce)))
		if r.Status != 503 || r.code() != string(protocol.CodeNeedsHub) {
			t.Fatalf("unbound single use offline: %d %s", r.Status, r.Raw)
		}
		r = e.post(t, "/v1/redeem", redeem("T2", basket(100_00, agenttest.CodeBound)))
		if r.Status != 200 || r.Body["offline"] != true {
			t.Fatalf("bound single use offline: %d %s", r.Status, r.Raw)
		}
		r = e.post(t, "/v1/redeem", redeem("T3", basket(100_00, agenttest.Token(t, agenttest.CampAmount, "S9", 1, agenttest.StoreID))))
		if r.Status != 200 {
			t.Fatalf("store-bound token offline: %d %s", r.Status, r.Raw)
		}
		e.link.on.Store(true)
		if r := e.post(t, "/v1/redeem", redeem("T1", basket(100_00, agenttest.CodeOnce))); r.Status != 200 {
			t.Fatalf("online: %d %s", r.Status, r.Raw)
		}
	})
	t.Run("ErrOfflineCap", func(t *testing.T) {
		s := agenttest.Small(1, 10)
		s.Envelope.Count = 1
		e := newEnv(t, s)
		e.link.on.Store(false)
		if r := e.post(t, "/v1/redeem", redeem("T1", basket(100_00, agenttest.Token(t, agenttest.CampAmount, "S1", 1, "")))); r.Status != 200 {
			t.Fatalf("first: %d %s", r.Status, r.Raw)
		}
		r := e.post(t, "/v1/redeem", redeem("T2", basket(100_00, agenttest.Token(t, agenttest.CampAmount, "S2", 1, ""))))
		if r.code() != string(protocol.CodeOfflineCap) {
			t.Fatalf("second: %d %s", r.Status, r.Raw)
		}
	})
	t.Run("ErrSnapshotStale", func(t *testing.T) {
		e := newEnv(t, agenttest.Small(1, 10))
		e.link.on.Store(false)
		later := time.Now().Add(25 * time.Hour)
		e.now.Store(&later)
		r := e.post(t, "/v1/redeem", redeem("T1", basket(100_00, agenttest.CodeSummer)))
		if r.Status != 503 || r.code() != string(protocol.CodeSnapshotStale) {
			t.Fatalf("stale: %d %s", r.Status, r.Raw)
		}
		if st := e.status(t); st["stale"] != true {
			t.Fatalf("status = %v", st)
		}
	})
	t.Run("GiftCard", func(t *testing.T) {
		e := newEnv(t, agenttest.Small(1, 10))
		b := basket(30_00, agenttest.CodeGift)
		r := e.post(t, "/v1/redeem", redeem("T1", b))
		if r.Status != 200 || num(r.Body["redemptions"].([]any)[0].(map[string]any)["spend"]) != 30_00 {
			t.Fatalf("first spend: %d %s", r.Status, r.Raw)
		}
		r = e.post(t, "/v1/validate", b)
		if res := r.Body["results"].([]any)[0].(map[string]any); num(res["spend"]) != 20_00 {
			t.Fatalf("balance after spend: %s", r.Raw)
		}
	})
}

func TestRollback(t *testing.T) {
	e := newEnv(t, agenttest.Small(1, 10))
	if r := e.post(t, "/v1/redeem", redeem("T1", basket(100_00, agenttest.CodeOnce, agenttest.CodeSummer))); r.Status != 200 {
		t.Fatalf("redeem: %d %s", r.Status, r.Raw)
	}
	r := e.post(t, "/v1/rollback", agent.RollbackRequest{TxnID: "T1", Reason: "customer changed mind"})
	if r.Status != 200 || len(r.Body["redemptions"].([]any)) != 2 {
		t.Fatalf("rollback: %d %s", r.Status, r.Raw)
	}
	again := e.post(t, "/v1/rollback", agent.RollbackRequest{TxnID: "T1"})
	if again.Status != 200 || again.Body["replayed"] != true || fmt.Sprint(again.Body["redemptions"]) != fmt.Sprint(r.Body["redemptions"]) {
		t.Fatalf("retry: %d %s", again.Status, again.Raw)
	}
	st := e.status(t)
	if num(st["outbox_depth"]) != 4 {
		t.Fatalf("outbox = %v", st["outbox_depth"])
	}
	if al := st["allowances"].([]any)[0].(map[string]any); num(al["count_left"]) != 10 {
		t.Fatalf("allowance not given back: %v", al)
	}
	// The single-use code is usable again.
	if r := e.post(t, "/v1/redeem", redeem("T2", basket(100_00, agenttest.CodeOnce))); r.Status != 200 {
		t.Fatalf("after rollback: %d %s", r.Status, r.Raw)
	}
	if r := e.post(t, "/v1/rollback", agent.RollbackRequest{TxnID: "T9"}); r.Status != 404 || r.code() != string(protocol.CodeNotFound) {
		t.Fatalf("unknown txn: %d %s", r.Status, r.Raw)
	}
	p, err := e.db.Pending(context.Background(), 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if p[2].Kind != protocol.KindRollback || p[2].Ref == nil || p[2].Ref.Seq != 1 {
		t.Fatalf("rollback fact = %+v", p[2])
	}
}

func TestEarn(t *testing.T) {
	e := newEnv(t, agenttest.Small(1, 10))
	r := e.post(t, "/v1/earn", agent.EarnRequest{TxnID: "E1", Order: agenttest.Order("o1", 10_00)})
	if r.code() != string(protocol.CodeCustomerRequired) {
		t.Fatalf("anonymous: %d %s", r.Status, r.Raw)
	}
	r = e.post(t, "/v1/earn", agent.EarnRequest{TxnID: "E1", Order: agenttest.Order("o1", 10_00), Customer: &protocol.Customer{ID: "cust-1"}})
	if r.code() != string(protocol.CodeNoEffect) { // the fixture has no points program
		t.Fatalf("no program: %d %s", r.Status, r.Raw)
	}
}

func TestRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "agent.db")
	db, err := agentdb.Open(ctx, path, agentdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := agent.New(ctx, agenttest.Tenant, agenttest.Agent, db)
	if _, err := a.ApplySnapshot(ctx, agenttest.Encode(t, agenttest.Small(3, 10)), "e3"); err != nil {
		t.Fatal(err)
	}
	rc, err := a.Redeem(ctx, redeem("T1", basket(100_00, agenttest.CodeOnce)))
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = agentdb.Open(ctx, path, agentdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a, err = agent.New(ctx, agenttest.Tenant, agenttest.Agent, db)
	if err != nil {
		t.Fatal(err)
	}
	if v, etag := a.SnapshotVersion(); v != 3 || etag != "e3" {
		t.Fatalf("restored snapshot %d %q", v, etag)
	}
	again, err := a.Redeem(ctx, redeem("T1", basket(100_00, agenttest.CodeOnce)))
	if err != nil || !again.Replayed || again.Facts[0].ID != rc.Facts[0].ID {
		t.Fatalf("retry after restart: %+v %v", again, err)
	}
	if _, err := a.Redeem(ctx, redeem("T2", basket(100_00, agenttest.CodeOnce))); protocol.ErrorCode(err) != protocol.CodeCodeUsed {
		t.Fatalf("reuse after restart: %v", err)
	}
}

func TestDeltaSnapshot(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, agenttest.Small(1, 10))
	d := agenttest.Small(2, 10)
	d.Since = 1
	d.Campaigns, d.Codes, d.Revocations = nil, []snapshot.Code{{Code: "NEW1", Campaign: agenttest.CampAmount, Uses: -1}}, nil
	if v, err := e.a.ApplySnapshot(ctx, agenttest.Encode(t, d), "e2"); err != nil || v != 2 {
		t.Fatalf("delta: %d %v", v, err)
	}
	for _, c := range []string{"NEW-1", agenttest.CodeSummer} {
		if r := e.post(t, "/v1/validate", basket(100_00, c)); r.Body["error"] != nil {
			t.Fatalf("%s after delta: %s", c, r.Raw)
		}
	}
	d.Since, d.Version = 5, 6
	if _, err := e.a.ApplySnapshot(ctx, agenttest.Encode(t, d), "e6"); err != snapshot.ErrBaseMismatch {
		t.Fatalf("mismatched delta: %v", err)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestRedeemConcurrentRetry sends the same redeem many times at once, as a
// POS that times out and retries: one redemption, every answer the same.
func TestRedeemConcurrentRetry(t *testing.T) {
	s := agenttest.Small(1, 10)
	for i := range 20 {
		s.Codes = append(s.Codes, snapshot.Code{Code: protocol.CodeID(fmt.Sprintf("RACE%d", i)), Campaign: agenttest.CampAmount, Uses: 1})
	}
	e := newEnv(t, s)
	for i := range 20 {
		req := redeem(fmt.Sprintf("T%d", i), basket(100_00, fmt.Sprintf("RACE%d", i)))
		const n = 16
		out := make(chan reply, n)
		for range n {
			go func() { out <- e.post(t, "/v1/redeem", req) }()
		}
		var first string
		for range n {
			r := <-out
			if r.Status != 200 {
				t.Fatalf("retry refused: %d %s", r.Status, r.Raw)
			}
			got := fmt.Sprint(r.Body["redemptions"])
			if first == "" {
				first = got
			} else if got != first {
				t.Fatalf("answers differ:\n%s\n%s", first, got)
			}
		}
	}
	if st := e.status(t); num(st["outbox_depth"]) != 20 {
		t.Fatalf("outbox = %v", st["outbox_depth"])
	}
}
