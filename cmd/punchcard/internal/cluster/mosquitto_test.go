package cluster_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/punchcard/punchcard/cmd/punchcard/internal/cluster"
	"github.com/punchcard/punchcard/cmd/punchcard/internal/proc"
	"github.com/punchcard/punchcard/internal/testutil"
)

func mustSupervisor(tb testing.TB) *proc.Supervisor {
	tb.Helper()
	s, err := proc.New(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	s.Progress = tb.Logf
	tb.Cleanup(func() { _ = s.StopAll() })
	return s
}

// mqttConnect sends a minimal MQTT 3.1.1 CONNECT and returns the CONNACK's
// return code: proof the broker speaks MQTT on its socket, not only that
// it accepts a connection. It waits for the answer as long as the test
// binary may run: a loaded machine can be slow, and a broker that closes
// the connection instead fails the test.
func mqttConnect(t *testing.T, m *cluster.Mosquitto) byte {
	t.Helper()
	c, err := m.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	id := "probe"
	vh := []byte{0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 30} // clean session, keepalive 30 s
	payload := append([]byte{0, byte(len(id))}, id...)
	pkt := append([]byte{0x10, byte(len(vh) + len(payload))}, append(vh, payload...)...)
	if _, err := c.Write(pkt); err != nil {
		t.Fatal(err)
	}
	ack := make([]byte, 4)
	if _, err := io.ReadFull(c, ack); err != nil {
		t.Fatalf("read CONNACK: %v", err)
	}
	if ack[0] != 0x20 {
		t.Fatalf("got packet type %#x, want CONNACK", ack[0])
	}
	return ack[3]
}

func TestMosquitto(t *testing.T) {
	if _, err := cluster.FindMosquitto(); err != nil {
		t.Skip(err)
	}
	for _, tt := range []struct {
		name       string
		persistent bool
		crash      bool
	}{
		{name: "OKPersistentCrash", persistent: true, crash: true},
		{name: "OKVolatileStop", persistent: false, crash: false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sup := mustSupervisor(t)
			dir := t.TempDir()
			m, err := cluster.StartMosquittoWith(context.Background(), sup, cluster.MosquittoOptions{Dir: dir, Persistent: tt.persistent,
				ReadyDeadline: time.Now().Add(testutil.Patience(t))})
			if err != nil {
				t.Fatal(err)
			}
			if rc := mqttConnect(t, m); rc != 0 {
				t.Fatalf("CONNACK rc = %d", rc)
			}
			if err := m.Restart(context.Background(), tt.crash); err != nil {
				t.Fatal(err)
			}
			if got, want := m.Proc.Runs(), 2; got != want {
				t.Fatalf("runs = %d, want %d", got, want)
			}
			if rc := mqttConnect(t, m); rc != 0 {
				t.Fatalf("after restart CONNACK rc = %d", rc)
			}
			log, _ := os.ReadFile(filepath.Join(dir, "mosquitto.log"))
			if got := strings.Count(string(log), "==== mosquitto: start"); got != 2 {
				t.Fatalf("log shows %d starts:\n%s", got, log)
			}
			if tt.crash && !strings.Contains(string(log), "signal: killed") {
				t.Fatalf("log does not show the SIGKILL:\n%s", log)
			}
		})
	}
}

// TestSecureMosquitto checks the broker the demo's -broker mosquitto runs:
// logins from the password file only, added at run time, and the ACL of
// docs/operations.md (an agent reaches its own topics, not another's).
func TestSecureMosquitto(t *testing.T) {
	if _, err := cluster.FindMosquitto(); err != nil {
		t.Fatalf("%v — install it to run this test", err)
	}
	sup := mustSupervisor(t)
	ctx := context.Background()
	m, err := cluster.StartSecureMosquitto(ctx, sup, cluster.MosquittoOptions{
		Dir: t.TempDir(), HubUser: cluster.HubMQTTUser, HubPassword: "hub-pass", Persistent: true,
		ReadyDeadline: time.Now().Add(testutil.Patience(t))})
	if err != nil {
		t.Fatal(err)
	}
	const a, b = "acme/till-1", "acme/till-2"
	t.Run("OKHub", func(t *testing.T) {
		if err := cluster.MQTTLogin(m.URL(), cluster.HubMQTTUser, "hub-pass"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ErrAnonymous", func(t *testing.T) {
		if err := cluster.MQTTLogin(m.URL(), "", ""); err == nil {
			t.Fatal("anonymous login accepted")
		}
	})
	t.Run("ErrWrongPassword", func(t *testing.T) {
		if err := cluster.MQTTLogin(m.URL(), cluster.HubMQTTUser, "guess"); err == nil {
			t.Fatal("wrong password accepted")
		}
	})
	t.Run("ErrUnknownAgent", func(t *testing.T) {
		if err := cluster.MQTTLogin(m.URL(), a, "secret-1"); err == nil {
			t.Fatal("an agent not yet in the password file logged in")
		}
	})
	t.Run("OKAddUser", func(t *testing.T) {
		for u, p := range map[string]string{a: "secret-1", b: "secret-2"} {
			if err := m.AddUser(ctx, u, p, testutil.Patience(t)); err != nil {
				t.Fatal(err)
			}
		}
		if err := cluster.MQTTLogin(m.URL(), a, "secret-2"); err == nil {
			t.Fatal("till-1 logged in with till-2's secret")
		}
		// The hub's login survives the rewrite of the password file.
		if err := cluster.MQTTLogin(m.URL(), cluster.HubMQTTUser, "hub-pass"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("OKACL", func(t *testing.T) {
		// till-1 subscribes to its own and to till-2's down topic; the hub
		// publishes to both: only its own reaches it.
		got := make(chan string, 4)
		sub := connect(t, m.URL(), a, "secret-1")
		for _, topic := range []string{"punchcard/v1/acme/till-1/down", "punchcard/v1/acme/till-2/down"} {
			tok := sub.Subscribe(topic, 1, func(_ mqtt.Client, msg mqtt.Message) { got <- msg.Topic() })
			if !tok.WaitTimeout(testutil.Patience(t)) || tok.Error() != nil {
				t.Fatalf("subscribe %s: %v", topic, tok.Error())
			}
		}
		hub := connect(t, m.URL(), cluster.HubMQTTUser, "hub-pass")
		for _, topic := range []string{"punchcard/v1/acme/till-2/down", "punchcard/v1/acme/till-1/down"} {
			tok := hub.Publish(topic, 1, false, []byte("x"))
			if !tok.WaitTimeout(testutil.Patience(t)) || tok.Error() != nil {
				t.Fatalf("publish %s: %v", topic, tok.Error())
			}
		}
		select {
		case topic := <-got:
			if topic != "punchcard/v1/acme/till-1/down" {
				t.Fatalf("till-1 received %s", topic)
			}
		case <-time.After(testutil.Patience(t)):
			t.Fatal("till-1 did not receive its own message")
		}
		// till-2's message was published first; had the ACL let it through it
		// would have arrived by now, and certainly within a moment.
		select {
		case topic := <-got:
			t.Fatalf("till-1 received %s", topic)
		case <-time.After(300 * time.Millisecond):
		}
	})
}

func connect(t *testing.T, url, user, pass string) mqtt.Client {
	t.Helper()
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID(user + "-test").SetUsername(user).SetPassword(pass).
		SetCleanSession(true).SetAutoReconnect(false).SetOrderMatters(true)
	c := mqtt.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(testutil.Patience(t)) || tok.Error() != nil {
		t.Fatalf("connect as %s: %v", user, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c
}
