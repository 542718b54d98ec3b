package netcut_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/punchcard/punchcard/cmd/punchcard/internal/netcut"
	"github.com/punchcard/punchcard/internal/testutil"
)

// echoServer is a real TCP server on loopback that echoes each line.
func echoServer(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	tb.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

func mustProxy(tb testing.TB, target string) *netcut.Proxy {
	tb.Helper()
	p, err := netcut.Listen("127.0.0.1:0", target)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { p.Close() })
	return p
}

// roundTrip writes msg on c and reads the echo within d.
func roundTrip(c net.Conn, msg string, d time.Duration) (string, error) {
	_ = c.SetDeadline(time.Now().Add(d))
	if _, err := io.WriteString(c, msg+"\n"); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSuffix(line, "\n"), err
}

func dial(tb testing.TB, addr string) net.Conn {
	tb.Helper()
	c, err := net.DialTimeout("tcp", addr, testutil.Patience(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// short is how long a check that nothing arrives (a blackhole) waits. A
// check that something arrives — data, or a reset — waits testutil.Patience:
// a loaded machine delays it, and must not fail it.
const short = 300 * time.Millisecond

func TestProxy(t *testing.T) {
	tests := []struct {
		name string
		cut  netcut.Mode
		// what an open connection sees during the cut
		wantOpenErr func(error) bool
		// what a new connection sees during the cut
		wantNewErr func(error) bool
		// patient: the cut's answer arrives (a reset), so wait for it as
		// long as the test may run; else a blackhole's silence, short.
		patient bool
	}{
		{
			name:        "ErrReset",
			cut:         netcut.Reset,
			wantOpenErr: func(err error) bool { return err != nil && !isTimeout(err) },
			wantNewErr:  func(err error) bool { return err != nil && !isTimeout(err) },
			patient:     true,
		},
		{
			name:        "ErrBlackhole",
			cut:         netcut.Blackhole,
			wantOpenErr: isTimeout,
			wantNewErr:  isTimeout,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustProxy(t, echoServer(t))
			before := dial(t, p.Addr())
			during := short
			if tt.patient {
				during = testutil.Patience(t)
			}
			if got, err := roundTrip(before, "hello", testutil.Patience(t)); err != nil || got != "hello" {
				t.Fatalf("up: got %q, %v", got, err)
			}

			p.Cut(tt.cut)
			if got, want := p.Mode(), tt.cut; got != want {
				t.Fatalf("mode = %v, want %v", got, want)
			}
			if _, err := roundTrip(before, "during", during); !tt.wantOpenErr(err) {
				t.Fatalf("open connection during %v cut: err = %v", tt.cut, err)
			}
			// A new connection may be accepted by the kernel (the listener is
			// still there) but must never carry data.
			if c, err := net.DialTimeout("tcp", p.Addr(), testutil.Patience(t)); err == nil {
				if got, err := roundTrip(c, "new", during); !tt.wantNewErr(err) {
					t.Fatalf("new connection during %v cut: got %q, err = %v", tt.cut, got, err)
				}
				c.Close()
			}
			if p.Stats().Refused == 0 {
				t.Fatal("stats: no refused connection counted")
			}

			p.Heal()
			after := dial(t, p.Addr())
			if got, err := roundTrip(after, "back", testutil.Patience(t)); err != nil || got != "back" {
				t.Fatalf("after heal: got %q, %v", got, err)
			}
			// The connection that lived through the cut is closed by now, so
			// its client reconnects rather than read a broken stream.
			if got, err := roundTrip(before, "stale", short); err == nil {
				t.Fatalf("connection from before the cut still works after heal: %q", got)
			}
			// The proxy counts a chunk after writing it, so the client may
			// read it a moment before the counter moves.
			want := int64(len("hello\nback\n"))
			testutil.Eventually(t, fmt.Sprintf("the proxy to count ≥ %d bytes each way", want), func() (bool, string) {
				st := p.Stats()
				return st.BytesUp >= want && st.BytesDn >= want, fmt.Sprintf("%+v", st)
			})
		})
	}
}

func TestProxyTargetDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := ln.Addr().String()
	ln.Close() // nothing listens there any more
	p := mustProxy(t, target)
	// The reset may reach the client while it is still connecting, or on
	// its first read: either way, never data and never a hang.
	c, err := net.DialTimeout("tcp", p.Addr(), testutil.Patience(t))
	if err != nil {
		if isTimeout(err) {
			t.Fatalf("dial = %v, want a reset", err)
		}
		return
	}
	defer c.Close()
	if _, err := roundTrip(c, "anyone?", testutil.Patience(t)); err == nil || isTimeout(err) {
		t.Fatalf("err = %v, want a reset from a down target", err)
	}
}

func TestProxyHTTP(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "till ok")
	}))
	t.Cleanup(srv.Close)
	p := mustProxy(t, strings.TrimPrefix(srv.URL, "http://"))
	get := func(timeout time.Duration) (string, error) {
		client := &http.Client{Timeout: timeout}
		resp, err := client.Get("http://" + p.Addr() + "/")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	if got, err := get(testutil.Patience(t)); err != nil || got != "till ok" {
		t.Fatalf("up: %q, %v", got, err)
	}
	p.Cut(netcut.Reset)
	if _, err := get(short); err == nil {
		t.Fatal("GET through a reset link succeeded")
	}
	p.Cut(netcut.Blackhole)
	if _, err := get(short); err == nil {
		t.Fatal("GET through a blackholed link succeeded")
	}
	p.Heal()
	if got, err := get(testutil.Patience(t)); err != nil || got != "till ok" {
		t.Fatalf("healed: %q, %v", got, err)
	}
}

func TestProxyClose(t *testing.T) {
	p, err := netcut.Listen("127.0.0.1:0", echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, p.Addr())
	if _, err := roundTrip(c, "x", testutil.Patience(t)); err != nil {
		t.Fatal(err)
	}
	p.Cut(netcut.Blackhole)
	held := dial(t, p.Addr())
	_ = held
	done := make(chan error, 1)
	go func() { done <- p.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Close = %v", err)
		}
	case <-time.After(testutil.Patience(t)):
		t.Fatal("Close hung with open and held connections")
	}
	if _, err := roundTrip(c, "y", short); err == nil {
		t.Fatal("connection survived Close")
	}
	if _, err := net.DialTimeout("tcp", p.Addr(), short); err == nil {
		t.Fatal("listener survived Close")
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
}

func BenchmarkProxyRoundTrip(b *testing.B) {
	p := mustProxy(b, echoServer(b))
	c := dial(b, p.Addr())
	r := bufio.NewReader(c)
	msg := []byte(strings.Repeat("x", 255) + "\n")
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := r.ReadString('\n'); err != nil {
			b.Fatal(err)
		}
	}
}

// TestProxyDelay: with a delay, answers arrive no sooner than the delay
// (a client with a shorter timeout gives up, the link otherwise up); the
// request reached the target all the same; without it, at once again.
func TestProxyDelay(t *testing.T) {
	p := mustProxy(t, echoServer(t))
	c := dial(t, p.Addr())
	if got, err := roundTrip(c, "hello", testutil.Patience(t)); err != nil || got != "hello" {
		t.Fatalf("up: got %q, %v", got, err)
	}
	p.Delay(time.Second)
	if _, err := roundTrip(c, "slow", short); !isTimeout(err) {
		t.Fatalf("answer within %s through a 1s delay: err = %v, want a timeout", short, err)
	}
	// The request passes (the delay holds the answer): the proxy counts it
	// a moment after forwarding it.
	testutil.Eventually(t, "the request to pass the delayed link", func() (bool, string) {
		got := p.Stats().BytesUp
		return got >= int64(len("hello\nslow\n")), fmt.Sprintf("bytes up = %d", got)
	})
	// The held answer arrives late on a fresh connection with a patient
	// client.
	c2 := dial(t, p.Addr())
	start := time.Now()
	if got, err := roundTrip(c2, "late", testutil.Patience(t)); err != nil || got != "late" {
		t.Fatalf("patient client: got %q, %v", got, err)
	}
	if waited := time.Since(start); waited < time.Second {
		t.Fatalf("answer after %s, want no sooner than the 1s delay", waited)
	}
	p.Delay(0)
	c3 := dial(t, p.Addr())
	if got, err := roundTrip(c3, "fast", testutil.Patience(t)); err != nil || got != "fast" {
		t.Fatalf("delay ended: got %q, %v", got, err)
	}
}
