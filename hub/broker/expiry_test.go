package broker_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/punchcard/punchcard/hub/broker"
	"github.com/punchcard/punchcard/internal/testutil"
	"github.com/punchcard/punchcard/protocol"
)

// anyAgent accepts every agent whose secret is "s".
type anyAgent struct{}

func (anyAgent) AuthenticateAgent(_ context.Context, _ protocol.TenantID, _ protocol.AgentID, secret string) error {
	if secret != "s" {
		return protocol.NewError(protocol.CodeUnauthenticated)
	}
	return nil
}

func startQuiet(tb testing.TB, opts broker.Options) *broker.Broker {
	tb.Helper()
	opts.Addr, opts.Auth, opts.HubSecret = "127.0.0.1:0", anyAgent{}, hubSecret
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := broker.New(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { b.Close() })
	return b
}

// tillSession connects as a till with a persistent session (as agent/uplink
// does) and subscribes to its down and snapshot topics, counting what it
// receives.
func tillSession(tb testing.TB, b *broker.Broker, agent protocol.AgentID, got *atomic.Int64) paho.Client {
	tb.Helper()
	user := broker.Username("acme", agent)
	o := paho.NewClientOptions().AddBroker(b.URL()).SetClientID(user).SetUsername(user).SetPassword("s").
		SetAutoReconnect(false).SetCleanSession(false).SetProtocolVersion(4).SetConnectTimeout(10 * time.Second)
	o.SetDefaultPublishHandler(func(paho.Client, paho.Message) { got.Add(1) })
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(testutil.Patience(tb)) || tok.Error() != nil {
		tb.Fatalf("connect %s: %v", user, tok.Error())
	}
	tok := c.SubscribeMultiple(map[string]byte{protocol.DownTopic("acme", agent): 1, protocol.SnapshotTopic("acme", agent): 1},
		func(paho.Client, paho.Message) { got.Add(1) })
	if !tok.WaitTimeout(testutil.Patience(tb)) || tok.Error() != nil {
		tb.Fatalf("subscribe %s: %v", user, tok.Error())
	}
	return c
}

func eventually(tb testing.TB, what string, f func() bool, info func() string) {
	tb.Helper()
	testutil.Eventually(tb, what, func() (bool, string) {
		if f() {
			return true, ""
		}
		return false, info()
	})
}

// TestOfflineQueueExpires: what the hub publishes to a till that is
// offline (Acks on its down topic, SnapshotAnnounces on its retained
// snapshot topic) is queued in its persistent session only until it
// expires: the queue empties by itself, nothing counts as dropped, and
// when the till comes back it gets only the retained announce, once. On
// the old broker every announce waited for ever (1.3 GB in a minute with
// 4,999 offline tills). Expiry of 1 s here; it waits on the condition.
func TestOfflineQueueExpires(t *testing.T) {
	b := startQuiet(t, broker.Options{DownExpiry: time.Second, SnapshotExpiry: time.Second})
	var got atomic.Int64
	till := tillSession(t, b, "till-1", &got)
	till.Disconnect(100)
	eventually(t, "the till gone", func() bool { return b.Stats().Clients == 0 }, func() string { return fmt.Sprint(b.Stats()) })

	hub := mustConnect(t, b, "punchcard-hub", broker.DefaultHubUsername, hubSecret)
	const n = 50
	for i := range n {
		topic := protocol.DownTopic("acme", "till-1")
		retain := i%2 == 1
		if retain {
			topic = protocol.SnapshotTopic("acme", "till-1")
		}
		if tok := hub.Publish(topic, 1, retain, []byte(fmt.Sprint(i))); !tok.WaitTimeout(testutil.Patience(t)) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	// QueuedOffline and Inflight may miss the first: mochi counts a client
	// out a moment before it marks it closed (seen under load).
	if s := b.Stats(); s.QueuedOffline < n-1 || s.Inflight < n-1 {
		t.Fatalf("queued for the offline till: %+v, want %d", s, n)
	}
	eventually(t, "the offline queue to expire", func() bool { s := b.Stats(); return s.Inflight == 0 && s.Expired >= n-1 },
		func() string { return fmt.Sprintf("%+v", b.Stats()) })
	if s := b.Stats(); s.Dropped != 0 {
		t.Fatalf("expired messages counted as drops: %+v", s)
	}

	// Back online: the retained announce, nothing else.
	got.Store(0)
	tillSession(t, b, "till-1", &got)
	eventually(t, "the retained announce", func() bool { return got.Load() >= 1 }, func() string { return fmt.Sprint(got.Load()) })
	// A down message published now proves the session delivers; by the
	// time it arrives (in order, after anything still queued) nothing
	// else may have come.
	if tok := hub.Publish(protocol.DownTopic("acme", "till-1"), 1, false, []byte("now")); !tok.WaitTimeout(testutil.Patience(t)) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	eventually(t, "the live message", func() bool { return got.Load() >= 2 }, func() string { return fmt.Sprint(got.Load()) })
	if g := got.Load(); g != 2 {
		t.Fatalf("the till received %d messages, want 2 (the retained announce and the live one)", g)
	}
}

// connectIdle connects n idle tills (persistent sessions, subscribed like
// agent/uplink) from this process.
func connectIdle(tb testing.TB, b *broker.Broker, n int) []paho.Client {
	tb.Helper()
	cs := make([]paho.Client, 0, n)
	var dummy atomic.Int64
	for i := range n {
		cs = append(cs, tillSession(tb, b, protocol.AgentID(fmt.Sprintf("till-%d", i)), &dummy))
	}
	return cs
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// BenchmarkBrokerMemoryPerTill: heap and stacks in use per connected idle
// till at 1,000 and 5,000 tills, in bytes/till. The tills' paho clients
// run in this process too, so the broker's share is measured apart: the
// same clients connected to a plain TCP sink that only accepts (the
// client side alone) are the baseline, subtracted.
//
// config=old is the same run with the old per-client write queue (32768),
// the baseline of the ratio.
func BenchmarkBrokerMemoryPerTill(b *testing.B) {
	for _, n := range []int{1000, 5000} {
		for _, cfg := range []struct {
			name string
			opts broker.Options
		}{{"default", broker.Options{}}, {"old", broker.Options{MaxPendingWrites: 32768}}} {
			benchMemory(b, n, cfg.name, cfg.opts)
		}
	}
}

func benchMemory(b *testing.B, n int, name string, opts broker.Options) {
	{
		b.Run(fmt.Sprintf("tills=%d/config=%s", n, name), func(b *testing.B) {
			raiseFileLimit(b, n)
			var per []float64
			for range b.N {
				br := startQuiet(b, opts)
				before := heapInUse()
				cs := connectIdle(b, br, n)
				withBroker := heapInUse()
				for _, c := range cs {
					c.Disconnect(0)
				}
				eventually(b, "disconnects", func() bool { return br.Stats().Clients == 0 }, func() string { return fmt.Sprint(br.Stats()) })
				clientOnly := clientSideBytes(b, n)
				per = append(per, (float64(withBroker)-float64(before)-clientOnly)/float64(n))
			}
			slices.Sort(per)
			b.ReportMetric(per[len(per)/2], "broker-bytes/till")
		})
	}
}

// clientSideBytes is the heap and stacks of n paho clients connected to a
// TCP listener that answers each CONNECT with a CONNACK and each
// SUBSCRIBE with a SUBACK and does nothing else: the client side of
// BenchmarkBrokerMemoryPerTill, without a broker.
func clientSideBytes(tb testing.TB, n int) float64 {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
			go fakeBroker(c)
		}
	}()
	before := heapInUse()
	cs := make([]paho.Client, 0, n)
	for i := range n {
		user := fmt.Sprintf("acme/till-%d", i)
		o := paho.NewClientOptions().AddBroker("tcp://" + ln.Addr().String()).SetClientID(user).SetUsername(user).SetPassword("s").
			SetAutoReconnect(false).SetCleanSession(false).SetProtocolVersion(4).SetConnectTimeout(10 * time.Second)
		c := paho.NewClient(o)
		if tok := c.Connect(); !tok.WaitTimeout(testutil.Patience(tb)) || tok.Error() != nil {
			tb.Fatalf("connect: %v", tok.Error())
		}
		tok := c.SubscribeMultiple(map[string]byte{protocol.DownTopic("acme", protocol.AgentID(fmt.Sprintf("till-%d", i))): 1}, func(paho.Client, paho.Message) {})
		if !tok.WaitTimeout(testutil.Patience(tb)) || tok.Error() != nil {
			tb.Fatalf("subscribe: %v", tok.Error())
		}
		cs = append(cs, c)
	}
	after := heapInUse()
	for _, c := range cs {
		c.Disconnect(0)
	}
	ln.Close()
	<-done
	for _, c := range conns {
		c.Close()
	}
	return float64(after) - float64(before)
}

// fakeBroker answers CONNECT and SUBSCRIBE on c, the least a paho client
// needs to sit connected.
func fakeBroker(c net.Conn) {
	buf := make([]byte, 4096)
	for {
		h := make([]byte, 2)
		if _, err := io.ReadFull(c, h[:1]); err != nil {
			return
		}
		// Remaining length (variable byte integer).
		var rem, mul int = 0, 1
		for {
			if _, err := io.ReadFull(c, h[1:2]); err != nil {
				return
			}
			rem += int(h[1]&127) * mul
			if h[1]&128 == 0 {
				break
			}
			mul *= 128
		}
		if rem > len(buf) {
			return
		}
		if _, err := io.ReadFull(c, buf[:rem]); err != nil {
			return
		}
		switch h[0] >> 4 {
		case 1: // CONNECT -> CONNACK
			c.Write([]byte{0x20, 2, 0, 0})
		case 8: // SUBSCRIBE -> SUBACK with QoS 1 for each filter
			id := buf[:2]
			c.Write([]byte{0x90, 3, id[0], id[1], 1})
		case 12: // PINGREQ
			c.Write([]byte{0xd0, 0})
		case 14: // DISCONNECT
			return
		}
	}
}

func raiseFileLimit(tb testing.TB, n int) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		tb.Skip(err)
	}
	if want := uint64(3*n + 256); rl.Cur < want {
		rl.Cur = min(want, rl.Max)
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur < want {
			tb.Skipf("open files limit %d, need %d", rl.Cur, want)
		}
	}
}

// BenchmarkIdleOffline: CPU the broker burns per second with n registered
// tills offline (persistent sessions, subscribed, then gone) while the
// hub announces to all of them every 2 s as the old hub did on every
// ingested batch: cpu-ms/s of the whole test process over 5 s after the
// queues settle. tills=0 (a broker with no sessions) is the same-run
// baseline; sweep=1s is mochi's own once-a-second expiry sweep of every
// session and retained message (Options.SweepEvery -1), sweep=30s the
// broker's default (DefaultSweepEvery).
func BenchmarkIdleOffline(b *testing.B) {
	for _, n := range []int{0, 1000, 10000} {
		for _, sweep := range []time.Duration{-1, broker.DefaultSweepEvery} {
			name := "sweep=1s"
			if sweep > 0 {
				name = "sweep=" + sweep.String()
			}
			b.Run(fmt.Sprintf("tills=%d/%s", n, name), func(b *testing.B) { idleOffline(b, n, sweep) })
		}
	}
}

func idleOffline(b *testing.B, n int, sweep time.Duration) {
	raiseFileLimit(b, 64)
	var cpu []float64
	for range b.N {
		br := startQuiet(b, broker.Options{SweepEvery: sweep})
		// Register n sessions, a few at a time (one client at a time).
		var dummy atomic.Int64
		for i := range n {
			c := tillSession(b, br, protocol.AgentID(fmt.Sprintf("till-%d", i)), &dummy)
			c.Disconnect(0)
		}
		eventually(b, "all offline", func() bool { return br.Stats().Clients == 0 }, func() string { return fmt.Sprint(br.Stats()) })
		hub := mustConnect(b, br, "punchcard-hub", broker.DefaultHubUsername, hubSecret)
		// Three rounds of announcements, 2 s apart.
		for round := range 3 {
			if n == 0 {
				break
			}
			var last paho.Token
			for i := range n {
				a := protocol.AgentID(fmt.Sprintf("till-%d", i))
				last = hub.Publish(protocol.SnapshotTopic("acme", a), 1, true, []byte(fmt.Sprint("announce ", round)))
			}
			last.Wait()
			time.Sleep(2 * time.Second)
		}
		// Let the queued copies expire (DefaultSnapshotExpiry), then measure.
		eventually(b, "queues expired", func() bool { return br.Stats().Inflight == 0 }, func() string { return fmt.Sprint(br.Stats()) })
		t0, c0 := time.Now(), cpuTime()
		time.Sleep(5 * time.Second)
		cpu = append(cpu, float64((cpuTime()-c0).Milliseconds())/time.Since(t0).Seconds())
		hub.Disconnect(0)
	}
	slices.Sort(cpu)
	b.ReportMetric(cpu[len(cpu)/2], "cpu-ms/s")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
