package broker_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/punchcard/punchcard/hub/broker"
	"github.com/punchcard/punchcard/internal/testutil"
	"github.com/punchcard/punchcard/protocol"
)

// secrets is an Authenticator over a map, standing in for the catalog's
// API keys.
type secrets map[string]string

func (s secrets) AuthenticateAgent(_ context.Context, t protocol.TenantID, a protocol.AgentID, secret string) error {
	if want, ok := s[broker.Username(t, a)]; ok && want == secret {
		return nil
	}
	return protocol.NewError(protocol.CodeUnauthenticated)
}

const hubSecret = "hub-secret"

// MustStart starts a broker on 127.0.0.1:0 with two agents.
func MustStart(tb testing.TB) *broker.Broker {
	tb.Helper()
	b, err := broker.New(broker.Options{
		Addr:      "127.0.0.1:0",
		Auth:      secrets{"acme/till-1": "s1", "acme/till-2": "s2", "acme/till-10": "s10", "beta/till-1": "b1"},
		HubSecret: hubSecret,
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { b.Close() })
	return b
}

func connect(tb testing.TB, b *broker.Broker, clientID, user, pass string) (paho.Client, error) {
	tb.Helper()
	o := paho.NewClientOptions().AddBroker(b.URL()).SetClientID(clientID).SetUsername(user).SetPassword(pass).
		SetAutoReconnect(false).SetConnectRetry(false).SetCleanSession(true).SetConnectTimeout(5 * time.Second).
		SetMaxResumePubInFlight(0).SetProtocolVersion(4)
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(testutil.Patience(tb)) {
		return nil, fmt.Errorf("connect timeout")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	tb.Cleanup(func() { c.Disconnect(100) })
	return c, nil
}

func mustConnect(tb testing.TB, b *broker.Broker, clientID, user, pass string) paho.Client {
	tb.Helper()
	c, err := connect(tb, b, clientID, user, pass)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func TestAuth(t *testing.T) {
	b := MustStart(t)
	for _, tc := range []struct {
		name, clientID, user, pass string
		ok                         bool
	}{
		{"OK", "acme/till-1", "acme/till-1", "s1", true},
		{"ErrSuffixedClientID", "acme/till-1-sync", "acme/till-1", "s1", false},
		{"ErrPrefixOfOthersClientID", "acme/till-10", "acme/till-1", "s1", false},
		{"OKHub", "hub-1", broker.DefaultHubUsername, hubSecret, true},
		{"ErrBadSecret", "acme/till-1", "acme/till-1", "s2", false},
		{"ErrUnknownAgent", "acme/till-9", "acme/till-9", "s1", false},
		{"ErrNoTenant", "till-1", "till-1", "s1", false},
		{"ErrHubAgentID", "acme/hub", "acme/hub", "s1", false},
		{"ErrOthersClientID", "acme/till-2", "acme/till-1", "s1", false},
		{"ErrHubBadSecret", "hub-1", broker.DefaultHubUsername, "nope", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := b.Stats().AuthRefused
			_, err := connect(t, b, tc.clientID, tc.user, tc.pass)
			if got := err == nil; got != tc.ok {
				t.Fatalf("connected = %v (%v), want %v", got, err, tc.ok)
			}
			if refused := b.Stats().AuthRefused - before; refused != map[bool]int64{true: 0, false: 1}[tc.ok] {
				t.Fatalf("auth refused counter moved by %d", refused)
			}
		})
	}
}

func TestACL(t *testing.T) {
	b := MustStart(t)
	hub := mustConnect(t, b, "hub", broker.DefaultHubUsername, hubSecret)
	got := make(chan string, 10)
	if tok := hub.Subscribe(protocol.UpFilter(""), 1, func(_ paho.Client, m paho.Message) { got <- m.Topic() }); !tok.WaitTimeout(testutil.Patience(t)) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	t.Run("OKOwnUp", func(t *testing.T) {
		c := mustConnect(t, b, "acme/till-1", "acme/till-1", "s1")
		if tok := c.Publish(protocol.UpTopic("acme", "till-1"), 1, false, []byte("x")); !tok.WaitTimeout(testutil.Patience(t)) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
		select {
		case topic := <-got:
			if topic != protocol.UpTopic("acme", "till-1") {
				t.Fatalf("hub got %s", topic)
			}
		case <-time.After(testutil.Patience(t)):
			t.Fatal("hub did not receive")
		}
	})
	t.Run("OKOwnDown", func(t *testing.T) {
		c := mustConnect(t, b, "acme/till-1", "acme/till-1", "s1")
		down := make(chan []byte, 1)
		tok := c.Subscribe(protocol.DownTopic("acme", "till-1"), 1, func(_ paho.Client, m paho.Message) { down <- m.Payload() })
		if !tok.WaitTimeout(testutil.Patience(t)) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
		if r := tok.(*paho.SubscribeToken).Result()[protocol.DownTopic("acme", "till-1")]; r != 1 {
			t.Fatalf("suback = %d, want granted QoS 1", r)
		}
		hub.Publish(protocol.DownTopic("acme", "till-1"), 1, false, []byte("ack")).Wait()
		select {
		case p := <-down:
			if string(p) != "ack" {
				t.Fatalf("got %q", p)
			}
		case <-time.After(testutil.Patience(t)):
			t.Fatal("agent did not receive its down message")
		}
	})
	t.Run("ErrOthersUp", func(t *testing.T) {
		before := b.Stats().ACLDenied
		c := mustConnect(t, b, "acme/till-2", "acme/till-2", "s2")
		c.Publish(protocol.UpTopic("acme", "till-1"), 1, false, []byte("forged")).WaitTimeout(time.Second)
		select {
		case topic := <-got:
			t.Fatalf("hub received a forged publish on %s", topic)
		case <-time.After(300 * time.Millisecond):
		}
		if b.Stats().ACLDenied == before {
			t.Fatal("ACL denial not counted")
		}
	})
	for _, topic := range []string{protocol.DownTopic("acme", "till-1"), protocol.SnapshotTopic("acme", "till-1"), "punchcard/v1/acme/+/down", "#"} {
		t.Run("ErrSubscribe "+topic, func(t *testing.T) {
			c := mustConnect(t, b, "acme/till-2", "acme/till-2", "s2")
			tok := c.Subscribe(topic, 1, func(paho.Client, paho.Message) {})
			tok.WaitTimeout(5 * time.Second)
			if r := tok.(*paho.SubscribeToken).Result()[topic]; r != 0x80 {
				t.Fatalf("suback = %#x, want 0x80 (refused)", r)
			}
		})
	}
}

// TestBurst publishes 5,000 QoS 1 messages from one agent as fast as paho
// sends them. The hub's subscriber receives each one, or, when it falls
// behind by more than the write queue (DefaultMaxPendingWrites, kept small
// for memory; the agents publish a dropped message again), the broker
// counts it as dropped: nothing vanishes uncounted.
func TestBurst(t *testing.T) {
	const n = 5000
	b := MustStart(t)
	hub := mustConnect(t, b, "hub", broker.DefaultHubUsername, hubSecret)
	var got atomic.Int64
	seen := make([]atomic.Bool, n)
	done := make(chan struct{})
	tok := hub.Subscribe(protocol.UpFilter(""), 1, func(_ paho.Client, m paho.Message) {
		var i int
		fmt.Sscan(string(m.Payload()), &i)
		if i >= 0 && i < n && !seen[i].Swap(true) {
			if got.Add(1) == n {
				close(done)
			}
		}
	})
	if !tok.WaitTimeout(testutil.Patience(t)) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	agent := mustConnect(t, b, "acme/till-1", "acme/till-1", "s1")
	toks := make([]paho.Token, n)
	var wg sync.WaitGroup
	for i := range n {
		toks[i] = agent.Publish(protocol.UpTopic("acme", "till-1"), 1, false, fmt.Sprint(i))
	}
	wg.Wait()
	for i, tok := range toks {
		if !tok.WaitTimeout(testutil.Patience(t)) || tok.Error() != nil {
			t.Fatalf("publish %d: %v", i, tok.Error())
		}
	}
	for {
		s := b.Stats()
		if got.Load()+s.WriteDropped == n {
			if s.Dropped != s.WriteDropped {
				t.Fatalf("broker dropped messages for another reason: %+v", s)
			}
			t.Logf("hub received %d, write queue dropped %d", got.Load(), s.WriteDropped)
			return
		}
		select {
		case <-done:
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// failingAuth is an Authenticator whose check cannot be made: the
// catalog's database failed, or did not answer within AuthTimeout.
type failingAuth struct{ err error }

func (a failingAuth) AuthenticateAgent(ctx context.Context, _ protocol.TenantID, _ protocol.AgentID, _ string) error {
	if a.err == nil {
		<-ctx.Done() // an overloaded catalog: no answer within AuthTimeout
		return fmt.Errorf("catalog: check agent secret: %w", ctx.Err())
	}
	return a.err
}

// TestAuthUnavailable: a credential check that could not be made is
// answered "server unavailable" (MQTT 3.1.1 return code 3), which clients
// retry, not "not authorized" (code 5), which says the secret is wrong;
// the hub's own credentials do not depend on the catalog.
func TestAuthUnavailable(t *testing.T) {
	for _, tc := range []struct {
		name string
		auth failingAuth
	}{
		{"DatabaseError", failingAuth{err: fmt.Errorf("catalog: check agent secret: disk I/O error")}},
		{"Timeout", failingAuth{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := broker.New(broker.Options{Addr: "127.0.0.1:0", Auth: tc.auth, HubSecret: hubSecret, AuthTimeout: 50 * time.Millisecond,
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			_, err = connect(t, b, "acme/till-1", "acme/till-1", "s1")
			if err != packets.ErrorRefusedServerUnavailable {
				t.Fatalf("connect: %v, want %v", err, packets.ErrorRefusedServerUnavailable)
			}
			if st := b.Stats(); st.AuthUnavailable != 1 || st.AuthRefused != 0 {
				t.Fatalf("unavailable %d, refused %d; want 1, 0", st.AuthUnavailable, st.AuthRefused)
			}
			mustConnect(t, b, "hub-1", broker.DefaultHubUsername, hubSecret)
		})
	}
}
