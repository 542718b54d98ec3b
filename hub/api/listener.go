package api

import (
	"errors"
	"log/slog"
	"net"
	"syscall"
	"time"
)

// Backoff bounds for an Accept that failed for want of resources.
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
)

// patientListener keeps accepting when the process runs out of file
// descriptors (EMFILE, ENFILE) or kernel buffers (ENOBUFS, ENOMEM), waiting
// with backoff as net/http's server does. fasthttp (under fiber) treats
// such an error as permanent and stops serving: a hub with 10,000 tills at
// its descriptor limit would then close itself (seen in `make bench-fleet`
// as "accept4: too many open files"), taking every till's HTTP link with
// it, although the condition passes as soon as a connection closes.
type patientListener struct {
	net.Listener
	log *slog.Logger
}

// Accept waits out resource exhaustion and returns any other error.
func (l patientListener) Accept() (net.Conn, error) {
	wait := time.Duration(0)
	for {
		c, err := l.Listener.Accept()
		if err == nil || !exhausted(err) {
			return c, err
		}
		if wait == 0 {
			wait = acceptBackoffMin
			l.log.Warn("api: accept failed for want of resources; retrying (raise the open-files limit: docs/operations.md)", logKeyErr, err)
		} else {
			wait = min(2*wait, acceptBackoffMax)
		}
		time.Sleep(wait)
	}
}

func exhausted(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)
}
