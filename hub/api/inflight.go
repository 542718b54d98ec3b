package api

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// inflight keeps the requests being handled, so that a Shutdown that
// could not wait for them says which they were.
type inflight struct {
	mu   sync.Mutex
	next uint64
	reqs map[uint64]openRequest
}

type openRequest struct {
	method, route string
	start         time.Time
}

func (f *inflight) add(method, route string) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.reqs == nil {
		f.reqs = map[uint64]openRequest{}
	}
	f.next++
	f.reqs[f.next] = openRequest{method: method, route: route, start: time.Now()}
	return f.next
}

func (f *inflight) done(id uint64) {
	f.mu.Lock()
	delete(f.reqs, id)
	f.mu.Unlock()
}

// running is the number of handlers running.
func (f *inflight) running() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reqs)
}

// describe lists the open requests, oldest first, at most 10.
func (f *inflight) describe() string {
	f.mu.Lock()
	open := make([]openRequest, 0, len(f.reqs))
	for _, r := range f.reqs {
		open = append(open, r)
	}
	f.mu.Unlock()
	if len(open) == 0 {
		return "no handler running (a connection still open)"
	}
	sort.Slice(open, func(i, j int) bool { return open[i].start.Before(open[j].start) })
	var b strings.Builder
	fmt.Fprintf(&b, "%d handlers running:", len(open))
	for i, r := range open {
		if i == 10 {
			b.WriteString(" …")
			break
		}
		fmt.Fprintf(&b, " %s %s (%s)", r.method, r.route, time.Since(r.start).Round(time.Millisecond))
	}
	return b.String()
}
