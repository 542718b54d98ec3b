package ingest_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/fxamacker/cbor/v2"

	"github.com/punchcard/punchcard/agent/uplink/mqtttest"
	"github.com/punchcard/punchcard/hub/broker"
	"github.com/punchcard/punchcard/hub/ingest"
	"github.com/punchcard/punchcard/internal/testutil"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store/ledger"
)

// brokerEnv is a running broker the suite talks to: the embedded one or a
// real Mosquitto. Both confine agents with the same username/ACL scheme.
type brokerEnv struct {
	url      string
	hubUser  string
	hubPass  string
	agentPwd func(protocol.AgentID) string
	dropped  func() int64  // broker-side drop counter, nil when the broker has none
	inline   ingest.Inline // set: the hub subscribes in-process (the embedded broker's inline client)
}

const tenant protocol.TenantID = "acme"

var agents = []protocol.AgentID{"till-1", "till-2", "till-3", "till-4", "till-5", "till-6", "till-7", "till-8", "till-9"}

func agentPassword(a protocol.AgentID) string { return "secret-" + string(a) }

// hubKey signs the test hub's down messages; the test agents verify every
// one against its public half, as the real agent does.
var hubKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{42}, ed25519.SeedSize))

type secrets struct{}

func (secrets) AuthenticateAgent(_ context.Context, t protocol.TenantID, a protocol.AgentID, s string) error {
	if t == tenant && s == agentPassword(a) {
		return nil
	}
	return protocol.NewError(protocol.CodeUnauthenticated)
}

// startEmbedded is the embedded broker with the hub as its MQTT client
// (paho). The hub's client takes every agent's messages on its one
// connection, so this broker gets the deep write queue a broker for a
// paho hub needs (broker.DefaultMaxPendingWrites is sized for tills).
func startEmbedded(tb testing.TB) brokerEnv {
	tb.Helper()
	b, err := broker.New(broker.Options{Addr: "127.0.0.1:0", Auth: secrets{}, HubSecret: "hub-pass", Logger: discard(), MaxPendingWrites: 32768})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { b.Close() })
	return brokerEnv{url: b.URL(), hubUser: broker.DefaultHubUsername, hubPass: "hub-pass", agentPwd: agentPassword,
		dropped: func() int64 { return b.Stats().Dropped }}
}

// startInline is the embedded broker with the hub subscribed in-process,
// as hub.Open wires it.
func startInline(tb testing.TB) brokerEnv {
	tb.Helper()
	b, err := broker.New(broker.Options{Addr: "127.0.0.1:0", Auth: secrets{}, HubSecret: "hub-pass", Logger: discard()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { b.Close() })
	return brokerEnv{url: b.URL(), hubUser: broker.DefaultHubUsername, hubPass: "hub-pass", agentPwd: agentPassword,
		dropped: func() int64 { return b.Stats().Dropped }, inline: b}
}

// mosquittoConf is the configuration the test gives Mosquitto; the same
// settings are documented in docs/operations.md. max_queued_messages is
// raised from its default of 1000 so that a burst to the hub's subscriber
// (or a hub that is briefly away, with its persistent session) is queued,
// not dropped; max_inflight_messages 0 lifts the per-client QoS 1 window.
const mosquittoConf = `allow_anonymous false
password_file %s
acl_file %s
persistence false
user root
max_queued_messages 1000000
max_queued_bytes 0
max_inflight_messages 0
max_packet_size 266240
set_tcp_nodelay true
`

const mosquittoACL = `user punchcard-hub
topic readwrite punchcard/#

pattern write punchcard/v1/%u/up
pattern read punchcard/v1/%u/down
pattern read punchcard/v1/%u/snapshot
`

// startMosquitto runs /usr/sbin/mosquitto on a unix socket with a
// generated configuration, password file and ACL.
func startMosquitto(tb testing.TB) brokerEnv {
	tb.Helper()
	const bin = "/usr/sbin/mosquitto"
	if _, err := os.Stat(bin); err != nil {
		tb.Skipf("mosquitto not installed: %v", err)
	}
	dir := tb.TempDir()
	pw := filepath.Join(dir, "passwd")
	users := map[string]string{broker.DefaultHubUsername: "hub-pass"}
	for _, a := range agents {
		users[broker.Username(tenant, a)] = agentPassword(a)
	}
	var lines []string
	for u, p := range users {
		lines = append(lines, u+":"+p)
	}
	if err := os.WriteFile(pw, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	if out, err := exec.Command("/usr/bin/mosquitto_passwd", "-U", pw).CombinedOutput(); err != nil {
		tb.Fatalf("mosquitto_passwd: %v: %s", err, out)
	}
	acl := filepath.Join(dir, "acl")
	if err := os.WriteFile(acl, []byte(mosquittoACL), 0o600); err != nil {
		tb.Fatal(err)
	}
	// On a unix socket of the test's own: no port is picked and released.
	sock := mqtttest.StartMosquitto(tb, fmt.Sprintf(mosquittoConf, pw, acl))
	return brokerEnv{url: "unix://" + sock, hubUser: broker.DefaultHubUsername, hubPass: "hub-pass", agentPwd: agentPassword}
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// logBuffer collects log output for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}
func (l *logBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.buf.String() }

// hubSide is a ledger on a temp file plus an ingest client.
type hubSide struct {
	ledger *ledger.Ledger
	ingest *ingest.Ingest
	logs   *logBuffer
}

var clientSeq sync.Mutex
var clientN int

func uniqueID(prefix string) string {
	clientSeq.Lock()
	defer clientSeq.Unlock()
	clientN++
	return fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), clientN)
}

func startHub(tb testing.TB, env brokerEnv, facts ledger.Facts) *hubSide {
	tb.Helper()
	if facts == nil {
		facts = &ledger.MemFacts{}
	}
	l, err := ledger.Open(context.Background(), filepath.Join(tb.TempDir(), "hub.db"), ledger.Options{Facts: facts})
	if err != nil {
		tb.Fatal(err)
	}
	logs := &logBuffer{}
	in, err := ingest.New(l, ingest.Options{BrokerURL: env.url, SigningKey: hubKey, ClientID: uniqueID("hub"), Username: env.hubUser, Password: env.hubPass,
		Inline: env.inline, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		l.Close()
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		in.Close()
		if rep, err := l.Verify(context.Background()); err != nil || !rep.OK() {
			tb.Errorf("ledger verify: %+v %v", rep.Diffs, err)
		}
		l.Close()
	})
	return &hubSide{ledger: l, ingest: in, logs: logs}
}

// testAgent is the agent's end of the sync, driven by hand.
type testAgent struct {
	tb    testing.TB
	id    protocol.AgentID
	c     paho.Client
	down  chan protocol.Envelope
	snaps chan protocol.Envelope
	n     int
}

func startAgent(tb testing.TB, env brokerEnv, id protocol.AgentID) *testAgent {
	tb.Helper()
	a := &testAgent{tb: tb, id: id, down: make(chan protocol.Envelope, 1000), snaps: make(chan protocol.Envelope, 10)}
	o := paho.NewClientOptions().AddBroker(env.url).SetClientID(broker.Username(tenant, id)).SetUsername(broker.Username(tenant, id)).
		SetPassword(env.agentPwd(id)).SetProtocolVersion(4).SetCleanSession(true).SetAutoReconnect(false).SetMaxResumePubInFlight(0)
	a.c = paho.NewClient(o)
	if tok := a.c.Connect(); !tok.WaitTimeout(patience(tb)) || tok.Error() != nil {
		tb.Fatalf("agent connect: %v", tok.Error())
	}
	tb.Cleanup(func() { a.c.Disconnect(100) })
	sub := func(topic string, ch chan protocol.Envelope) {
		tok := a.c.Subscribe(topic, 1, func(_ paho.Client, m paho.Message) {
			env, _, err := protocol.DecodeDown(m.Payload(), hubKey.Public().(ed25519.PublicKey), tenant, id)
			if err != nil {
				tb.Errorf("agent got a down message that does not verify: %v", err)
				return
			}
			ch <- env
		})
		if !tok.WaitTimeout(patience(tb)) || tok.Error() != nil {
			tb.Fatalf("agent subscribe: %v", tok.Error())
		}
	}
	sub(protocol.DownTopic(tenant, id), a.down)
	sub(protocol.SnapshotTopic(tenant, id), a.snaps)
	return a
}

// publishAs publishes body on a's own up topic in an envelope claiming
// sender.
func (a *testAgent) publishAs(sender protocol.AgentID, typ protocol.MsgType, body any) {
	a.tb.Helper()
	a.n++
	payload, err := protocol.EncodeMessage(typ, tenant, sender, fmt.Sprintf("%s-%d", a.id, a.n), time.Now().UnixMicro(), body)
	if err != nil {
		a.tb.Fatal(err)
	}
	a.publishRaw(payload)
}

func (a *testAgent) publishRaw(payload []byte) {
	a.tb.Helper()
	if tok := a.c.Publish(protocol.UpTopic(tenant, a.id), 1, false, payload); !tok.WaitTimeout(patience(a.tb)) || tok.Error() != nil {
		a.tb.Fatalf("publish: %v", tok.Error())
	}
}

func (a *testAgent) send(seqs ...uint64) {
	a.tb.Helper()
	a.publishAs(a.id, protocol.MsgBatch, protocol.Batch{Redemptions: redemptions(a.id, seqs...)})
}

func redemptions(agent protocol.AgentID, seqs ...uint64) []protocol.Redemption {
	out := make([]protocol.Redemption, len(seqs))
	for i, s := range seqs {
		out[i] = protocol.Redemption{ID: protocol.RedemptionID{Agent: agent, Seq: s}, Kind: protocol.KindRedeem, Tenant: tenant,
			Store: "store-1", TxnID: fmt.Sprintf("t-%d", s), Campaign: "summer", Currency: "EUR", Discount: 100, OrderTot: 1000,
			HLC: ledger.HLCFromTime(time.Now()), Offline: true}
	}
	return out
}

// next waits for the next down message of type typ, skipping others.
func (a *testAgent) next(typ protocol.MsgType, body any) {
	a.tb.Helper()
	timeout := time.After(patience(a.tb))
	for {
		select {
		case env := <-a.down:
			if env.Type != typ {
				continue
			}
			if env.Sender != protocol.HubSender || env.Tenant != tenant {
				a.tb.Fatalf("down message from %s/%s", env.Tenant, env.Sender)
			}
			if err := protocol.DecodeBody(env, body); err != nil {
				a.tb.Fatal(err)
			}
			return
		case <-timeout:
			a.tb.Fatalf("%s: no %s message within %s", a.id, typ, patience(a.tb))
		}
	}
}

func (a *testAgent) ack() protocol.Ack {
	a.tb.Helper()
	var ack protocol.Ack
	a.next(protocol.MsgAck, &ack)
	return ack
}

// quiet checks that no down message arrives for a while.
func (a *testAgent) quiet(d time.Duration) {
	a.tb.Helper()
	select {
	case env := <-a.down:
		a.tb.Fatalf("unexpected %s", env.Type)
	case <-time.After(d):
	}
}

// patience is how long a wait may last before the test gives up: what the
// test binary has left of its -timeout, less a minute to report, never a
// fixed figure that a loaded machine under -race can exceed (a 5,000
// message burst took over 90 s there). The condition is tested, not the
// time.
func patience(tb testing.TB) time.Duration { return testutil.Patience(tb) }

func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	testutil.Until(tb, what, cond)
}

func TestIngestEmbedded(t *testing.T)  { runSuite(t, startEmbedded(t)) }
func TestIngestInline(t *testing.T)    { runSuite(t, startInline(t)) }
func TestIngestMosquitto(t *testing.T) { runSuite(t, startMosquitto(t)) }

// runSuite is the one suite every broker must pass.
func runSuite(t *testing.T, env brokerEnv) {
	ctx := context.Background()
	t.Run("OK", func(t *testing.T) {
		h := startHub(t, env, nil)
		a := startAgent(t, env, "till-1")
		a.send(1, 2, 3)
		if got := a.ack(); got.Watermark != 3 || len(got.Beyond) != 0 {
			t.Fatalf("ack = %+v, want watermark 3", got)
		}
		b, _ := h.ledger.Campaign(ctx, tenant, "summer")
		if b.Count != 3 {
			t.Fatalf("ledger count = %d, want 3", b.Count)
		}
	})
	t.Run("DuplicateDelivery", func(t *testing.T) {
		h := startHub(t, env, nil)
		a := startAgent(t, env, "till-2")
		for i := 0; i < 3; i++ {
			a.send(1, 2)
			if got := a.ack(); got.Watermark != 2 {
				t.Fatalf("ack %d = %+v, want watermark 2", i, got)
			}
		}
		b, _ := h.ledger.Campaign(ctx, tenant, "summer")
		if b.Count != 2 {
			t.Fatalf("ledger count = %d, want 2", b.Count)
		}
	})
	t.Run("GapResend", func(t *testing.T) {
		h := startHub(t, env, nil)
		a := startAgent(t, env, "till-3")
		a.send(1, 2)
		a.ack()
		a.send(5, 6) // 3 and 4 were lost on the way
		if got := a.ack(); got.Watermark != 2 || fmt.Sprint(got.Beyond) != "[5 6]" {
			t.Fatalf("ack = %+v, want watermark 2 beyond [5 6]", got)
		}
		var rs protocol.Resend
		a.next(protocol.MsgResend, &rs)
		if rs != (protocol.Resend{From: 3, To: 4}) {
			t.Fatalf("resend = %+v, want 3..4", rs)
		}
		a.send(4, 3) // out of order, too
		if got := a.ack(); got.Watermark != 6 || len(got.Beyond) != 0 {
			t.Fatalf("ack = %+v, want watermark 6", got)
		}
		b, _ := h.ledger.Campaign(ctx, tenant, "summer")
		if b.Count != 6 {
			t.Fatalf("ledger count = %d, want 6", b.Count)
		}
	})
	t.Run("ErrImpersonation", func(t *testing.T) {
		h := startHub(t, env, nil)
		x := startAgent(t, env, "till-4")
		// X publishes on its own topic, claiming to be Y in the envelope:
		// refused whole, no seq of X's is known.
		x.publishAs("till-5", protocol.MsgBatch, protocol.Batch{Redemptions: redemptions("till-5", 1)})
		waitFor(t, "a refusal", func() bool { return h.ingest.Stats().Refused == 1 })
		x.quiet(100 * time.Millisecond) // no Ack for a refused message
		if !strings.Contains(h.logs.String(), "sender does not match its topic") || !strings.Contains(h.logs.String(), "claims=acme/till-5") {
			t.Fatalf("refusal not logged:\n%s", h.logs.String())
		}
		// X's envelope is its own but one fact is Y's: that fact is
		// quarantined under X's seq (never applied for Y), X's own facts
		// apply, and the Ack covers all three.
		forged := redemptions("till-5", 2)
		x.publishAs("till-4", protocol.MsgBatch, protocol.Batch{Redemptions: append(append(redemptions("till-4", 1), forged...), redemptions("till-4", 3)...)})
		if got := x.ack(); got.Watermark != 3 {
			t.Fatalf("ack = %+v, want watermark 3", got)
		}
		if st := h.ingest.Stats(); st.Quarantined != 1 || st.Refused != 1 {
			t.Fatalf("stats = %+v", st)
		}
		if s, _ := h.ledger.Agent(ctx, tenant, "till-5"); s.Watermark != 0 {
			t.Fatalf("till-5 watermark = %d after a forged fact", s.Watermark)
		}
		if b, _ := h.ledger.Campaign(ctx, tenant, "summer"); b.Count != 2 {
			t.Fatalf("ledger count = %d, want 2 (X's own facts)", b.Count)
		}
		qs, err := h.ledger.Quarantine(ctx, tenant, 0, 0)
		if err != nil || len(qs) != 1 || qs[0].Agent != "till-4" || qs[0].Seq != 2 || qs[0].Code != protocol.CodeForbidden {
			t.Fatalf("quarantine = %+v, %v", qs, err)
		}
		if !strings.Contains(h.logs.String(), "fact quarantined") {
			t.Fatalf("quarantine not logged:\n%s", h.logs.String())
		}
	})
	t.Run("PoisonFacts", func(t *testing.T) {
		// A tampered or older till sends facts the hub cannot apply: one
		// that fails the fact validator and one that does not even decode
		// but names its seq. Both are quarantined with their bytes and
		// acked; the till's good facts around them apply. (The original hub
		// refused such batches whole, every time they were resent.)
		h := startHub(t, env, nil)
		a := startAgent(t, env, "till-9")
		rs := redemptions("till-9", 1, 2, 3)
		rs[1].OrderID = strings.Repeat("o", protocol.MaxOrderIDLen+1)
		a.publishAs("till-9", protocol.MsgBatch, protocol.Batch{Redemptions: rs})
		if got := a.ack(); got.Watermark != 3 {
			t.Fatalf("ack = %+v, want watermark 3", got)
		}
		good, err := protocol.EncMode.Marshal(redemptions("till-9", 5)[0])
		if err != nil {
			t.Fatal(err)
		}
		damaged := []byte{0xa2, 0x01, 0xa2, 0x01, 0x66, 't', 'i', 'l', 'l', '-', '9', 0x02, 0x04, 0x02, 0x63, 'b', 'a', 'd'} // seq 4, kind "bad"
		a.publishAs("till-9", protocol.MsgBatch, protocol.RawBatch{Redemptions: []cbor.RawMessage{damaged, good}})
		if got := a.ack(); got.Watermark != 5 {
			t.Fatalf("ack = %+v, want watermark 5", got)
		}
		if st := h.ingest.Stats(); st.Quarantined != 2 || st.Malformed != 0 || st.Refused != 0 {
			t.Fatalf("stats = %+v", st)
		}
		if b, _ := h.ledger.Campaign(ctx, tenant, "summer"); b.Count != 3 {
			t.Fatalf("ledger count = %d, want 3", b.Count)
		}
		qs, err := h.ledger.Quarantine(ctx, tenant, 0, 0)
		if err != nil || len(qs) != 2 || qs[0].Seq != 2 || qs[0].Field != "order_id" || qs[1].Seq != 4 || qs[1].Code != protocol.CodeMessageMalformed ||
			!bytes.Equal(qs[1].Raw, damaged) {
			t.Fatalf("quarantine = %+v, %v", qs, err)
		}
		if rep, err := h.ledger.Verify(ctx); err != nil || !rep.OK() {
			t.Fatalf("verify = %+v, %v", rep, err)
		}
	})
	t.Run("ErrForeignTopic", func(t *testing.T) {
		// The broker's ACL keeps X off Y's up topic altogether.
		h := startHub(t, env, nil)
		x := startAgent(t, env, "till-6")
		payload, _ := protocol.EncodeMessage(protocol.MsgBatch, tenant, "till-7", "f-1", 0, protocol.Batch{Redemptions: redemptions("till-7", 1)})
		x.c.Publish(protocol.UpTopic(tenant, "till-7"), 1, false, payload).WaitTimeout(2 * time.Second)
		time.Sleep(200 * time.Millisecond)
		if s, _ := h.ledger.Agent(ctx, tenant, "till-7"); s.Watermark != 0 || h.ingest.Stats().Messages != 0 {
			t.Fatalf("forged publish reached the hub: %+v", h.ingest.Stats())
		}
	})
	t.Run("ErrMalformed", func(t *testing.T) {
		h := startHub(t, env, nil)
		a := startAgent(t, env, "till-8")
		a.publishRaw([]byte{0xff, 0x00, 0x01})
		a.publishAs("till-8", protocol.MsgAck, protocol.Ack{Watermark: 9}) // a down message sent up
		waitFor(t, "malformed count", func() bool { return h.ingest.Stats().Malformed == 2 })
		a.send(1) // ingest is still alive
		if got := a.ack(); got.Watermark != 1 {
			t.Fatalf("ack = %+v", got)
		}
	})
	t.Run("AgentState", func(t *testing.T) {
		h := startHub(t, env, nil)
		a := startAgent(t, env, "till-1")
		a.publishAs("till-1", protocol.MsgAgentState, protocol.AgentState{SnapshotVersion: 7, LastSeq: 12, OutboxDepth: 3, HLC: 99})
		waitFor(t, "agent state", func() bool {
			s, _ := h.ledger.Agent(ctx, tenant, "till-1")
			return s.State.SnapshotVersion == 7
		})
		s, _ := h.ledger.Agent(ctx, tenant, "till-1")
		if got, want := s.State, (protocol.AgentState{SnapshotVersion: 7, LastSeq: 12, OutboxDepth: 3, HLC: 99}); got != want {
			t.Fatalf("state = %+v, want %+v", got, want)
		}
	})
	t.Run("AgentStateAcked", func(t *testing.T) {
		// Every heartbeat is answered with the agent's watermark: a
		// re-enrolled agent learns it before it numbers anything new.
		startHub(t, env, nil)
		a := startAgent(t, env, "till-1")
		a.publishAs("till-1", protocol.MsgAgentState, protocol.AgentState{LastSeq: 0})
		if got := a.ack(); got.Watermark != 0 {
			t.Fatalf("unknown agent: ack = %+v", got)
		}
		a.send(1, 2, 3)
		if got := a.ack(); got.Watermark != 3 {
			t.Fatalf("ack = %+v", got)
		}
		a.publishAs("till-1", protocol.MsgAgentState, protocol.AgentState{LastSeq: 0})
		if got := a.ack(); got.Watermark != 3 {
			t.Fatalf("heartbeat ack = %+v, want watermark 3", got)
		}
	})
	t.Run("SnapshotAnnounceRetained", func(t *testing.T) {
		h := startHub(t, env, nil)
		if err := h.ingest.AnnounceSnapshot(ctx, tenant, "till-2", protocol.SnapshotAnnounce{Version: 42, ETag: "e42"}); err != nil {
			t.Fatal(err)
		}
		a := startAgent(t, env, "till-2") // subscribes after the announcement
		select {
		case env := <-a.snaps:
			var s protocol.SnapshotAnnounce
			if err := protocol.DecodeBody(env, &s); err != nil || s.Version != 42 || env.Type != protocol.MsgSnapshotAnnounce {
				t.Fatalf("snapshot = %+v %v", s, err)
			}
		case <-time.After(patience(t)):
			t.Fatal("retained announcement not delivered")
		}
	})
	t.Run("Conflict", func(t *testing.T) {
		facts := &ledger.MemFacts{}
		facts.SetCode(tenant, "ONCE", ledger.CodeFacts{MaxUses: 1})
		h := startHub(t, env, facts)
		a, b := startAgent(t, env, "till-1"), startAgent(t, env, "till-2")
		r1, r2 := redemptions("till-1", 1), redemptions("till-2", 1)
		r1[0].Code, r2[0].Code = "ONCE", "ONCE"
		a.publishAs("till-1", protocol.MsgBatch, protocol.Batch{Redemptions: r1})
		a.ack()
		b.publishAs("till-2", protocol.MsgBatch, protocol.Batch{Redemptions: r2})
		b.ack() // a conflict is still acknowledged: the fact is recorded
		cs, _ := h.ledger.Conflicts(ctx, tenant, 0, 0)
		if len(cs) != 1 || cs[0].Kind != ledger.ConflictCodeReused || h.ingest.Stats().Conflicts != 1 {
			t.Fatalf("conflicts = %+v", cs)
		}
	})
	t.Run("Burst", func(t *testing.T) {
		// 5,000 single-redemption QoS 1 messages from four agents at once.
		h := startHub(t, env, nil)
		var dropped0 int64
		if env.dropped != nil {
			// Earlier subtests' clean-session agents leave with messages in
			// flight, which the broker counts as given up; only this burst
			// matters here.
			dropped0 = env.dropped()
		}
		const per = 1250
		var wg sync.WaitGroup
		for _, id := range agents[:4] {
			a := startAgent(t, env, id)
			wg.Add(1)
			go func() {
				defer wg.Done()
				toks := make([]paho.Token, 0, per)
				for s := uint64(1); s <= per; s++ {
					payload, _ := protocol.EncodeMessage(protocol.MsgBatch, tenant, id, fmt.Sprint(s), 0, protocol.Batch{Redemptions: redemptions(id, s)})
					toks = append(toks, a.c.Publish(protocol.UpTopic(tenant, id), 1, false, payload))
				}
				for _, tok := range toks {
					tok.WaitTimeout(patience(t))
				}
			}()
		}
		wg.Wait()
		t.Logf("published; ingest %+v", h.ingest.Stats())
		defer func() { t.Logf("ingest %+v", h.ingest.Stats()) }()
		waitFor(t, "every redemption applied", func() bool {
			b, _ := h.ledger.Campaign(ctx, tenant, "summer")
			return b.Count == 4*per
		})
		for _, id := range agents[:4] {
			if s, _ := h.ledger.Agent(ctx, tenant, id); s.Watermark != per {
				t.Fatalf("%s watermark = %d, want %d", id, s.Watermark, per)
			}
		}
		if env.dropped != nil && env.dropped() != dropped0 {
			t.Fatalf("broker dropped %d messages during the burst", env.dropped()-dropped0)
		}
	})
}
