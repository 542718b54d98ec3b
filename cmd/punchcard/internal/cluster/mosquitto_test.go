package cluster_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/punchcard/punchcard/cmd/punchcard/internal/cluster"
	"github.com/punchcard/punchcard/cmd/punchcard/internal/proc"
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
// return code: proof the broker speaks MQTT on that port, not only that it
// accepts TCP.
func mqttConnect(t *testing.T, addr string) byte {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	id := "probe"
	vh := []byte{0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 30} // clean session, keepalive 30 s
	payload := append([]byte{0, byte(len(id))}, id...)
	pkt := append([]byte{0x10, byte(len(vh) + len(payload))}, append(vh, payload...)...)
	if _, err := c.Write(pkt); err != nil {
		t.Fatal(err)
	}
	ack := make([]byte, 4)
	if _, err := c.Read(ack); err != nil {
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
			m, err := cluster.StartMosquitto(context.Background(), sup, dir, tt.persistent)
			if err != nil {
				t.Fatal(err)
			}
			if rc := mqttConnect(t, m.Addr); rc != 0 {
				t.Fatalf("CONNACK rc = %d", rc)
			}
			if err := m.Restart(context.Background(), tt.crash); err != nil {
				t.Fatal(err)
			}
			if got, want := m.Proc.Runs(), 2; got != want {
				t.Fatalf("runs = %d, want %d", got, want)
			}
			if rc := mqttConnect(t, m.Addr); rc != 0 {
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
