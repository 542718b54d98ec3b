package api_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
)

// exhaustedListener is a real TCP listener whose first n Accepts fail with
// EMFILE, as they do when the hub has as many connections as its
// open-files limit allows.
type exhaustedListener struct {
	net.Listener
	n atomic.Int32
}

func (l *exhaustedListener) Accept() (net.Conn, error) {
	if l.n.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: fmt.Errorf("accept4: %w", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// TestServeOutOfFiles: running out of file descriptors does not stop the
// API (fasthttp alone gives up and the hub closed itself; seen with 10,000
// tills in make bench-fleet). It waits, warns once, and serves again.
func TestServeOutOfFiles(t *testing.T) {
	e := newEnv(t)
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &exhaustedListener{Listener: tcp}
	ln.n.Store(5)
	done := make(chan error, 1)
	go func() { done <- e.srv.Serve(ln) }()
	t.Cleanup(func() {
		e.srv.Shutdown(t.Context())
		<-done
	})
	type answer struct {
		status int
		body   string
		err    error
	}
	got := make(chan answer, 1)
	go func() {
		resp, err := http.Get("http://" + tcp.Addr().String() + "/healthz")
		if err != nil {
			got <- answer{err: err}
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- answer{status: resp.StatusCode, body: string(body)}
	}()
	select {
	case err := <-done:
		t.Fatalf("Serve gave up on EMFILE: %v", err)
	case a := <-got:
		if a.err != nil || a.status != http.StatusOK {
			t.Fatalf("healthz after EMFILE: %d %s %v", a.status, a.body, a.err)
		}
	}
	if got := strings.Count(e.log.String(), "accept failed for want of resources"); got != 1 {
		t.Fatalf("warned %d times, want once:\n%s", got, e.log.String())
	}
}
