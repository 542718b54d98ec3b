package api_test

import (
	"context"
	"net"
	"testing"
	"time"
)

// TestShutdownClosesConnsWithoutHandler: a connection that sent part of a
// request and no more keeps no handler running, and Shutdown closes it
// instead of waiting out the read timeout (30 s) past its context (a hub
// test failed in CI with "no handler running (a connection still open)").
func TestShutdownClosesConnsWithoutHandler(t *testing.T) {
	e := newEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- e.srv.Serve(ln) }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n")); err != nil {
		t.Fatal(err)
	}
	for e.srv.ActiveConns() != 1 { // the server is reading the request
		time.Sleep(time.Millisecond)
	}
	// Well under the read timeout: the old Shutdown waited for it.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	<-done
	if n := e.srv.OpenConns(); n != 0 {
		t.Fatalf("%d connections left open", n)
	}
}
