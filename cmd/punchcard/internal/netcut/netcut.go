// Package netcut is a loopback TCP proxy whose link can be cut and healed.
// The demo and the fault tests put one between a store's agent and the
// broker (and the hub's HTTP API), so an outage cuts the store's network and
// not its process: the till keeps running, exactly as in a real outage.
//
// Two ways to cut, because real outages come in both shapes:
//
//   - Reset: every open connection is closed with a TCP reset and every new
//     one is reset at once. The client notices immediately (a router that
//     rejects, a cable the OS sees unplugged).
//   - Blackhole: open connections stay open but carry nothing, and new ones
//     are accepted and then ignored. The client notices only through its
//     own timeouts and keep-alives (a dead uplink, a silent firewall).
//
// And a third for lost answers: DropReplies forwards what the client sends
// but drops what comes back (a request that reaches the hub and commits,
// its response lost on the way).
//
// And a slow link: Delay holds every answer (target → client) for a
// while before passing it on, the link otherwise up (a hub that answers,
// but too late for a till's online-first timeout).
//
// Heal restores forwarding for new connections and closes every connection
// that lived through a blackhole, since bytes were dropped from its stream.
package netcut

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Mode is the state of the link.
type Mode int32

// Link states.
const (
	Up          Mode = iota // forwarding
	Reset                   // cut: reset open and new connections
	Blackhole               // cut: swallow traffic silently
	DropReplies             // requests pass, answers are dropped
)

func (m Mode) String() string {
	switch m {
	case Up:
		return "up"
	case Reset:
		return "reset"
	case Blackhole:
		return "blackhole"
	case DropReplies:
		return "drop-replies"
	}
	return fmt.Sprintf("mode(%d)", int32(m))
}

// Stats counts what the proxy saw, for tests and the demo's narration.
type Stats struct {
	Accepted int64 // connections accepted in any mode
	Refused  int64 // connections reset or held because the link was cut
	Active   int64 // connections open now (forwarded or held)
	BytesUp  int64 // client → target bytes forwarded
	BytesDn  int64 // target → client bytes forwarded
	Dropped  int64 // bytes read and discarded while blackholed
}

// Proxy forwards TCP connections from its listen address to a target.
type Proxy struct {
	target atomic.Pointer[string] // Retarget changes it
	ln     net.Listener

	mode atomic.Int32
	// delay holds answers (Delay), in nanoseconds; 0 passes them at once.
	delay atomic.Int64
	// quit is closed by Close, ending answers held by a delay.
	quit chan struct{}
	mu   sync.Mutex
	// conns is every open connection pair, so a cut can close them.
	conns  map[*pair]struct{}
	closed bool
	wg     sync.WaitGroup

	accepted, refused, bytesUp, bytesDn, dropped atomic.Int64
}

// pair is one client connection and, once dialled, its target connection.
type pair struct {
	client net.Conn
	target net.Conn // nil for a connection held in a blackhole
	// tainted is set when bytes of this pair were dropped: its stream is
	// broken and it must not be used again after Heal.
	tainted atomic.Bool
}

func (p *pair) close(rst bool) {
	if rst {
		setLinger0(p.client)
		setLinger0(p.target)
	}
	p.client.Close()
	if p.target != nil {
		p.target.Close()
	}
}

func setLinger0(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
}

// Listen starts a proxy on addr (use "127.0.0.1:0" for a free port) that
// forwards to target. The link starts Up.
func Listen(addr, target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("netcut listen %s: %w", addr, err)
	}
	p := &Proxy{ln: ln, conns: make(map[*pair]struct{}), quit: make(chan struct{})}
	p.target.Store(&target)
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// Addr is the address clients connect to, e.g. "127.0.0.1:41234".
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// dialTarget connects to a target: host:port over TCP, or a unix socket
// given by its absolute path (a Mosquitto the tests run on one).
func dialTarget(target string) (net.Conn, error) {
	if strings.HasPrefix(target, "/") {
		return net.Dial("unix", target)
	}
	return net.Dial("tcp", target)
}

// Target is the address the proxy forwards to: host:port, or the absolute
// path of a unix socket.
func (p *Proxy) Target() string { return *p.target.Load() }

// Retarget forwards new connections to target from now on (a server
// restarted on a port of its own); open connections keep theirs.
func (p *Proxy) Retarget(target string) { p.target.Store(&target) }

// Mode is the current link state.
func (p *Proxy) Mode() Mode { return Mode(p.mode.Load()) }

// Stats returns the counters so far.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	active := int64(len(p.conns))
	p.mu.Unlock()
	return Stats{
		Accepted: p.accepted.Load(),
		Refused:  p.refused.Load(),
		Active:   active,
		BytesUp:  p.bytesUp.Load(),
		BytesDn:  p.bytesDn.Load(),
		Dropped:  p.dropped.Load(),
	}
}

// Cut breaks the link in the given way (Reset, Blackhole or DropReplies).
// With Reset every open connection is reset before Cut returns.
func (p *Proxy) Cut(m Mode) {
	if m != Reset && m != Blackhole && m != DropReplies {
		m = Reset
	}
	p.mode.Store(int32(m))
	if m == DropReplies {
		return // open connections carry on; their answers are dropped
	}
	p.mu.Lock()
	var victims []*pair
	for c := range p.conns {
		if m == Reset {
			victims = append(victims, c)
			delete(p.conns, c)
		} else {
			c.tainted.Store(true)
		}
	}
	p.mu.Unlock()
	for _, c := range victims {
		c.close(true)
	}
}

// Delay holds every answer (target → client bytes) for d before passing
// it on, in every mode that forwards answers; 0 ends the delay. Requests
// pass at once: the target works on time, its answers arrive late. It
// applies to open connections too, from their next answer on.
func (p *Proxy) Delay(d time.Duration) { p.delay.Store(int64(max(d, 0))) }

// Heal restores the link. Connections that lived through a blackhole are
// closed, so clients reconnect on a clean stream.
func (p *Proxy) Heal() {
	p.mode.Store(int32(Up))
	p.mu.Lock()
	var victims []*pair
	for c := range p.conns {
		if c.tainted.Load() || c.target == nil {
			victims = append(victims, c)
			delete(p.conns, c)
		}
	}
	p.mu.Unlock()
	for _, c := range victims {
		c.close(false)
	}
}

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.quit)
	victims := make([]*pair, 0, len(p.conns))
	for c := range p.conns {
		victims = append(victims, c)
	}
	clear(p.conns)
	p.mu.Unlock()
	err := p.ln.Close()
	for _, c := range victims {
		c.close(false)
	}
	p.wg.Wait()
	return err
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		p.accepted.Add(1)
		switch p.Mode() {
		case Reset:
			p.refused.Add(1)
			setLinger0(c)
			c.Close()
			continue
		case Blackhole:
			p.refused.Add(1)
			pr := &pair{client: c}
			pr.tainted.Store(true)
			if !p.track(pr) {
				continue
			}
			p.wg.Add(1)
			go p.swallow(pr)
			continue
		}
		p.wg.Add(1)
		go p.forward(c)
	}
}

// track registers a pair; it returns false (and closes it) after Close.
func (p *Proxy) track(pr *pair) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		pr.close(false)
		return false
	}
	p.conns[pr] = struct{}{}
	return true
}

func (p *Proxy) untrack(pr *pair) {
	p.mu.Lock()
	delete(p.conns, pr)
	p.mu.Unlock()
}

// swallow reads and drops a held connection's bytes until it is closed.
func (p *Proxy) swallow(pr *pair) {
	defer p.wg.Done()
	defer p.untrack(pr)
	n, _ := io.Copy(io.Discard, pr.client)
	p.dropped.Add(n)
	pr.client.Close()
}

func (p *Proxy) forward(c net.Conn) {
	defer p.wg.Done()
	t, err := dialTarget(p.Target())
	if err != nil {
		// The target is down (a stopped broker): the client sees a reset,
		// as it would connecting to it directly.
		setLinger0(c)
		c.Close()
		return
	}
	pr := &pair{client: c, target: t}
	if !p.track(pr) {
		return
	}
	defer p.untrack(pr)
	// A cut that came while this connection was being dialled missed it:
	// apply it now.
	switch p.Mode() {
	case Reset:
		pr.close(true)
		return
	case Blackhole:
		pr.tainted.Store(true)
	}
	done := make(chan struct{}, 2)
	go func() { p.pipe(pr, t, c, false, &p.bytesUp); done <- struct{}{} }()
	go func() { p.pipe(pr, c, t, true, &p.bytesDn); done <- struct{}{} }()
	<-done
	// One side ended: end the other, so neither end waits forever.
	pr.close(false)
	<-done
}

// pipe copies src to dst, dropping bytes while the link is blackholed
// (and answers, down, while it drops replies).
func (p *Proxy) pipe(pr *pair, dst, src net.Conn, down bool, count *atomic.Int64) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			m := p.Mode()
			if (m != Up && m != DropReplies) || (m == DropReplies && down) || pr.tainted.Load() {
				pr.tainted.Store(true)
				p.dropped.Add(int64(n))
			} else {
				if d := time.Duration(p.delay.Load()); down && d > 0 && !p.hold(d) {
					return
				}
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
				count.Add(int64(n))
			}
		}
		if err != nil {
			// No half-close: the protocols behind this proxy (MQTT, HTTP)
			// never use it, and forward closes both ends on the first EOF.
			return
		}
	}
}

// hold waits d for a delayed answer; false when the proxy closed meanwhile.
func (p *Proxy) hold(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.quit:
		return false
	}
}
