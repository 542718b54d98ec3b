package api

import (
	"net"
	"sync"

	"github.com/valyala/fasthttp"
)

// conns keeps the server's open connections (fasthttp's ConnState hook),
// so that Shutdown can close the ones no handler is using. fasthttp's own
// shutdown closes a connection only once it is idle between requests, or 5
// s after it was accepted with nothing read; one caught between (a
// request's first bytes read, or a keep-alive client's next request
// arriving as the listener closed) was waited for until the read timeout
// (30 s), past Close's 10 s: a hub test failed on it once in CI
// ("api: shutdown: context deadline exceeded: no handler running").
type conns struct {
	mu sync.Mutex
	m  map[net.Conn]fasthttp.ConnState
}

func (c *conns) track(nc net.Conn, st fasthttp.ConnState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch st {
	case fasthttp.StateClosed, fasthttp.StateHijacked:
		delete(c.m, nc)
	default:
		if c.m == nil {
			c.m = map[net.Conn]fasthttp.ConnState{}
		}
		c.m[nc] = st
	}
}

// closeAll closes every open connection and reports how many it closed.
func (c *conns) closeAll() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for nc := range c.m {
		nc.Close()
		delete(c.m, nc)
		n++
	}
	return n
}

// count is the number of open connections in state st.
func (c *conns) count(st fasthttp.ConnState) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, s := range c.m {
		if s == st {
			n++
		}
	}
	return n
}

// ActiveConns is the number of the server's connections reading or
// answering a request (fasthttp.StateActive), for tests.
func (s *Server) ActiveConns() int { return s.conns.count(fasthttp.StateActive) }

// OpenConns is the number of the server's open connections, for tests.
func (s *Server) OpenConns() int {
	s.conns.mu.Lock()
	defer s.conns.mu.Unlock()
	return len(s.conns.m)
}
