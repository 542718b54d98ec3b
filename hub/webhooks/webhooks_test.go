package webhooks_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/punchcard/punchcard/hub/webhooks"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store"
	"github.com/punchcard/punchcard/store/ledger"
)

// The test vector of the Standard Webhooks specification (its reference
// libraries' tests): secret, message id, timestamp, payload, signature.
const (
	specSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	specID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	specTS     = 1614265330
	specBody   = `{"test": 2432232314}`
	specSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignSpecVector(t *testing.T) {
	got, err := webhooks.Sign([]string{specSecret}, specID, specTS, []byte(specBody))
	if err != nil || got != specSig {
		t.Fatalf("Sign = %q, %v; want %q", got, err, specSig)
	}
	two, err := webhooks.Sign([]string{webhooks.NewSecret(), specSecret}, specID, specTS, []byte(specBody))
	if err != nil || !strings.HasSuffix(two, " "+specSig) || strings.Count(two, "v1,") != 2 {
		t.Fatalf("two secrets: %q %v", two, err)
	}
	if _, err := webhooks.Sign([]string{"whsec_!!"}, specID, specTS, nil); err == nil {
		t.Fatal("a malformed secret signed")
	}
	if err := verify(specSecret, specID, strconv.Itoa(specTS), specSig, []byte(specBody), time.Unix(specTS, 0)); err != nil {
		t.Fatal(err)
	}
}

// verify is an independent verifier written from the Standard Webhooks
// specification (not from the code under test): the signed content is
// id.timestamp.body, the key is the base64 after "whsec_", the header is
// a space-separated list of "v1,<base64>", any one matching suffices,
// and the timestamp must be within 5 minutes.
func verify(secret, id, ts, header string, body []byte, now time.Time) error {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return err
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("bad timestamp %q", ts)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("timestamp %s too far from now", ts)
	}
	mac := hmac.New(sha256.New, key)
	io.WriteString(mac, id+"."+ts+".")
	mac.Write(body)
	want := mac.Sum(nil)
	for _, part := range strings.Fields(header) {
		version, sig, ok := strings.Cut(part, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(sig)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return errors.New("no valid signature")
}

// receiver is a real HTTP server on 127.0.0.1 that fails a share of the
// requests at random and records the events it accepted with a valid
// signature.
type receiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	secrets []string
	failPct int
	got     map[string]int // event id -> accepted deliveries
	bad     int            // deliveries whose signature did not verify
	tries   int
}

func newReceiver(t *testing.T, failPct int) *receiver {
	r := &receiver{failPct: failPct, got: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.tries++
		if rand.IntN(100) < r.failPct {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		id := req.Header.Get("webhook-id")
		ok := false
		for _, s := range r.secrets {
			if verify(s, id, req.Header.Get("webhook-timestamp"), req.Header.Get("webhook-signature"), body, time.Now()) == nil {
				ok = true
			}
		}
		var p struct {
			ID string `json:"id"`
		}
		if !ok || json.Unmarshal(body, &p) != nil || p.ID != id {
			r.bad++
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		r.got[id]++
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) setSecrets(s ...string) { r.mu.Lock(); r.secrets = s; r.mu.Unlock() }

func (r *receiver) has(ids []string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range ids {
		if r.got[id] == 0 {
			return false
		}
	}
	return true
}

// waitFor polls cond until it holds or the test binary's deadline nears.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline, ok := t.Deadline()
	if !ok {
		deadline = time.Now().Add(10 * time.Minute)
	}
	for !cond() {
		if time.Until(deadline) < 5*time.Second {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type env struct {
	noStart bool // newEnv opens the service but does not start it
	dir     string
	l       *ledger.Ledger
	s       *webhooks.Service
	mu      sync.Mutex
	ev      []string // endpoint_disabled events written
}

func newEnv(t *testing.T, mod func(*webhooks.Options)) *env {
	t.Helper()
	return openEnv(t, mod, false)
}

func openEnv(t *testing.T, mod func(*webhooks.Options), noStart bool) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	l, err := ledger.Open(ctx, filepath.Join(dir, "hub.db"), ledger.Options{Facts: &ledger.MemFacts{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	e := &env{l: l, noStart: noStart, dir: dir}
	opts := webhooks.Options{AllowPrivate: true, Sources: map[string]webhooks.Source{"ledger": l}, Replay: map[string]webhooks.ReplaySource{"ledger": l},
		RetryBase: 10 * time.Millisecond, RetryCap: 100 * time.Millisecond, RelayInterval: 20 * time.Millisecond, PollInterval: 20 * time.Millisecond,
		Timeout: 5 * time.Second,
		OnDisabled: func(ctx context.Context, tenant protocol.TenantID, typ string, body any) error {
			id, err := l.AppendEvent(ctx, tenant, typ, body)
			e.mu.Lock()
			e.ev = append(e.ev, id)
			e.mu.Unlock()
			return err
		}}
	if mod != nil {
		mod(&opts)
	}
	s, err := webhooks.Open(ctx, filepath.Join(dir, "webhooks.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	e.s = s
	if e.noStart {
		return e
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return e
}

// facts applies n redemptions of till seq from..from+n-1 and returns the
// ids of the events they wrote.
func (e *env) facts(t *testing.T, from, n int) []string {
	t.Helper()
	ctx := context.Background()
	before, err := e.l.EventsAfter(ctx, 0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	var rs []protocol.Redemption
	for i := range n {
		seq := uint64(from + i)
		rs = append(rs, protocol.Redemption{ID: protocol.RedemptionID{Agent: "till-1", Seq: seq}, Kind: protocol.KindRedeem, Tenant: "acme",
			Store: "s1", TxnID: fmt.Sprint("t", seq), Campaign: "c", Currency: "EUR", Discount: 100, OrderTot: 1000, HLC: ledger.HLCFromTime(time.Now())})
	}
	if _, _, err := e.l.ApplyBatch(ctx, "acme", "till-1", rs); err != nil {
		t.Fatal(err)
	}
	var after int64
	if len(before) > 0 {
		after = before[len(before)-1].Seq
	}
	es, err := e.l.EventsAfter(ctx, after, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, ev := range es {
		ids = append(ids, ev.ID)
	}
	return ids
}

// TestDeliverAtLeastOnce: a receiver that fails 40 % of the requests at
// random still gets every event, each signature verifying with the
// independent verifier, also across a secret rotation (two signatures).
func TestDeliverAtLeastOnce(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	rcv := newReceiver(t, 40)
	ep, err := e.s.CreateEndpoint(ctx, "acme", protocol.WebhookEndpointInput{URL: rcv.srv.URL + "/hook", Types: []string{"fact.*"}})
	if err != nil {
		t.Fatal(err)
	}
	rcv.setSecrets(ep.Secret)
	other, err := e.s.CreateEndpoint(ctx, "acme", protocol.WebhookEndpointInput{URL: rcv.srv.URL + "/other", Types: []string{"points.expired"}})
	if err != nil {
		t.Fatal(err)
	}
	ids := e.facts(t, 1, 30)
	waitFor(t, "every event delivered", func() bool { return rcv.has(ids) })

	// Rotation: the old secret keeps signing beside the new one; a
	// receiver that knows only the new one verifies too.
	rot, err := e.s.RotateSecret(ctx, "acme", ep.ID)
	if err != nil || rot.Secret == "" || rot.Secret == ep.Secret {
		t.Fatalf("rotate: %+v %v", rot, err)
	}
	rcv.setSecrets(rot.Secret)
	ids2 := e.facts(t, 31, 10)
	waitFor(t, "deliveries after the rotation", func() bool { return rcv.has(ids2) })
	rcv.mu.Lock()
	bad := rcv.bad
	rcv.mu.Unlock()
	if bad != 0 {
		t.Fatalf("%d deliveries did not verify", bad)
	}
	ds, err := e.s.Deliveries(ctx, "acme", ep.ID, 0, 200)
	if err != nil || len(ds) < 40 {
		t.Fatalf("delivery log: %d rows, %v", len(ds), err)
	}
	if ds, err := e.s.Deliveries(ctx, "acme", other.ID, 0, 200); err != nil || len(ds) != 0 {
		t.Fatalf("the filtered endpoint got %d deliveries, %v", len(ds), err)
	}
	if _, err := e.s.Deliveries(ctx, "other", ep.ID, 0, 10); protocol.ErrorCode(err) != protocol.CodeNotFound {
		t.Fatalf("another tenant's endpoint: %v", err)
	}
}

// TestDisableEnableReplay: an endpoint that fails for the whole retry
// window is disabled with a webhook.endpoint_disabled event; enabled
// again, a replay of one event and of a time range deliver.
func TestDisableEnableReplay(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, func(o *webhooks.Options) { o.RetryWindow = 300 * time.Millisecond })
	rcv := newReceiver(t, 100)
	ep, err := e.s.CreateEndpoint(ctx, "acme", protocol.WebhookEndpointInput{URL: rcv.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	rcv.setSecrets(ep.Secret)
	ids := e.facts(t, 1, 3)
	waitFor(t, "the endpoint disabled", func() bool {
		got, err := e.s.Endpoint(ctx, "acme", ep.ID)
		e.mu.Lock()
		defer e.mu.Unlock()
		return err == nil && !got.Enabled && len(e.ev) > 0
	})
	e.mu.Lock()
	nev := len(e.ev)
	e.mu.Unlock()
	if nev != 1 {
		t.Fatalf("%d endpoint_disabled events, want 1", nev)
	}
	if _, err := e.s.Replay(ctx, "acme", ep.ID, protocol.WebhookReplay{EventID: ids[0]}); protocol.ErrorCode(err) != protocol.CodeConflict {
		t.Fatalf("replay to a disabled endpoint: %v", err)
	}
	rcv.mu.Lock()
	rcv.failPct = 0
	rcv.mu.Unlock()
	if got, err := e.s.Enable(ctx, "acme", ep.ID); err != nil || !got.Enabled || got.DisabledReason != "" {
		t.Fatalf("enable: %+v %v", got, err)
	}
	res, err := e.s.Replay(ctx, "acme", ep.ID, protocol.WebhookReplay{EventID: ids[0]})
	if err != nil || res.Queued != 1 {
		t.Fatalf("replay one: %+v %v", res, err)
	}
	waitFor(t, "the replayed event", func() bool { return rcv.has(ids[:1]) })
	from, to := time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	res, err = e.s.Replay(ctx, "acme", ep.ID, protocol.WebhookReplay{From: &from, To: &to})
	if err != nil || res.Queued != 4 { // three facts and the endpoint_disabled event
		t.Fatalf("replay range: %+v %v", res, err)
	}
	waitFor(t, "the replayed range", func() bool { return rcv.has(ids) })
	for _, bad := range []protocol.WebhookReplay{{}, {EventID: "x", From: &from, To: &to}, {From: &to, To: &from}} {
		if _, err := e.s.Replay(ctx, "acme", ep.ID, bad); protocol.ErrorCode(err) != protocol.CodeInvalidInput {
			t.Fatalf("replay %+v: %v", bad, err)
		}
	}
	if _, err := e.s.Replay(ctx, "acme", ep.ID, protocol.WebhookReplay{EventID: "evt_none"}); protocol.ErrorCode(err) != protocol.CodeNotFound {
		t.Fatalf("replay of an unknown event: %v", err)
	}
}

func TestMaxAttemptsCoverThreeDays(t *testing.T) {
	n := webhooks.MaxAttempts(webhooks.DefaultRetryBase, webhooks.DefaultRetryCap, webhooks.DefaultRetryWindow)
	// The shortest jittered waits (75 %) of n-1 retries add up to 3 days.
	var sum time.Duration
	d := webhooks.DefaultRetryBase
	for range n - 1 {
		sum += d * 3 / 4
		d = min(2*d, webhooks.DefaultRetryCap)
	}
	if sum < 72*time.Hour || n > 100 {
		t.Fatalf("%d attempts wait at least %s", n, sum)
	}
}

func TestEndpointInput(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	for _, in := range []protocol.WebhookEndpointInput{
		{URL: ""}, {URL: "ftp://x/y"}, {URL: "/relative"}, {URL: "https://user:pw@x/"}, {URL: "https://x/", Types: []string{""}},
		{URL: "https://x/", Types: []string{"fa*ct"}}, {URL: "https://x/", Types: []string{"a b"}}, {URL: "https://x/" + strings.Repeat("a", 2000)},
	} {
		if _, err := e.s.CreateEndpoint(ctx, "acme", in); protocol.ErrorCode(err) != protocol.CodeInvalidInput {
			t.Errorf("%+v: %v, want invalid_input", in, err)
		}
	}
	if err := e.s.DeleteEndpoint(ctx, "acme", "ep_none"); protocol.ErrorCode(err) != protocol.CodeNotFound {
		t.Fatalf("delete unknown: %v", err)
	}
}

// TestEndpointGetsEventsFromItsCreation pins the defect behind chaos
// TestWebhooksSurviveHubKill's hang under load: whether an endpoint got
// the events written just before its creation depended on when the relay
// last ran (a relay that ran in between had fanned them out to no
// endpoint, one that ran after delivered them), so a receiver waiting for
// them waited forever. Now an endpoint gets exactly the events written
// from its creation on, however late the relay reads them.
func TestEndpointGetsEventsFromItsCreation(t *testing.T) {
	ctx := context.Background()
	e := openEnv(t, nil, true)
	before := e.facts(t, 1, 5) // written, not yet relayed
	rcv := newReceiver(t, 0)
	ep, err := e.s.CreateEndpoint(ctx, "acme", protocol.WebhookEndpointInput{URL: rcv.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	rcv.setSecrets(ep.Secret)
	if _, err := e.s.RelayOnce(ctx, "ledger", e.l); err != nil { // the relay reads them late
		t.Fatal(err)
	}
	after := e.facts(t, 6, 5)
	if err := e.s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.s.Close(context.Background()) })
	waitFor(t, "the events written after the endpoint's creation", func() bool { return rcv.has(after) })
	waitFor(t, "an empty backlog", func() bool { n, err := e.s.Backlog(ctx); return err == nil && n == 0 })
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	for _, id := range before {
		if rcv.got[id] != 0 {
			t.Errorf("event %s, written before the endpoint was created, was delivered to it", id)
		}
	}
}

// TestRunningHandedBackAtStart: deliveries a killed hub left running are
// run again as soon as the hub starts, not after River's leader lease
// and RescueAfter (set to an hour here) have run out.
func TestRunningHandedBackAtStart(t *testing.T) {
	ctx := context.Background()
	e := openEnv(t, nil, true)
	rcv := newReceiver(t, 0)
	ep, err := e.s.CreateEndpoint(ctx, "acme", protocol.WebhookEndpointInput{URL: rcv.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	rcv.setSecrets(ep.Secret)
	ids := e.facts(t, 1, 5)
	if n, err := e.s.RelayOnce(ctx, "ledger", e.l); err != nil || n != len(ids) {
		t.Fatalf("relay: %d %v", n, err)
	}
	e.s.Close(ctx)
	// What a SIGKILL in the middle of the deliveries leaves: running jobs
	// of a process that is gone, and a leader lease not run out.
	db, err := store.Open(ctx, filepath.Join(e.dir, "webhooks.db"), store.Options{MaxOpenConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`UPDATE river_job SET state = 'running', attempt = 1, attempted_at = datetime('now', 'subsec')`,
		`INSERT INTO river_leader (elected_at, expires_at, leader_id) VALUES (datetime('now', 'subsec'), datetime('now', 'subsec', '+1 hour'), 'killed')`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(q, err)
		}
	}
	db.Close()
	s, err := webhooks.Open(ctx, filepath.Join(e.dir, "webhooks.db"), webhooks.Options{AllowPrivate: true, Sources: map[string]webhooks.Source{"ledger": e.l},
		PollInterval: 20 * time.Millisecond, RelayInterval: 20 * time.Millisecond, RescueAfter: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	waitFor(t, "the deliveries left running delivered", func() bool { return rcv.has(ids) })
	waitFor(t, "an empty backlog", func() bool { n, err := s.Backlog(ctx); return err == nil && n == 0 })
}
