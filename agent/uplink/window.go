package uplink

import (
	"slices"
	"time"
)

// flight is one batch published and not yet acknowledged by the hub.
type flight struct {
	first, last uint64    // seqs it carries, inclusive
	sentAt      time.Time // last (re)publish
	resent      bool      // republished at least once: no round-trip sample (Karn)
}

// window is the publisher's sliding window: the batches in flight, in seq
// order, and the retransmission timeout measured from their round trips as
// TCP does (RFC 6298: SRTT and RTTVAR, RTO = SRTT + 4·RTTVAR, clamped,
// doubled on each timeout until an ack brings progress). A round trip here
// is publish to the hub's Ack, so it includes the hub's queue and commit.
//
// It is not safe for concurrent use: the publisher owns it, and acks reach
// it through the publisher's loop.
type window struct {
	flights  []flight
	next     uint64 // highest seq published since the last reset
	minRTO   time.Duration
	maxRTO   time.Duration
	srtt     time.Duration
	rttvar   time.Duration
	rto      time.Duration
	measured bool
	timer    time.Time // when the oldest flight's timer started
}

func newWindow(initial, lo, hi time.Duration) *window {
	return &window{rto: min(max(initial, lo), hi), minRTO: lo, maxRTO: hi}
}

// reset forgets every flight: after a reconnect everything not
// acknowledged is published again (from seq after).
func (w *window) reset(after uint64) {
	w.flights = w.flights[:0]
	w.next = after
}

func (w *window) sent(first, last uint64, now time.Time) {
	if len(w.flights) == 0 {
		w.timer = now
	}
	w.flights = append(w.flights, flight{first: first, last: last, sentAt: now})
	w.next = max(w.next, last)
}

// ack removes the flights the hub holds: every seq up to watermark, and
// flights whose seqs are all in beyond. It takes a round-trip sample from
// the newest flight acknowledged that was never republished, and reports
// whether anything left the window.
func (w *window) ack(watermark uint64, beyond []uint64, now time.Time) bool {
	var sample time.Duration
	n := 0
	kept := w.flights[:0]
	for _, f := range w.flights {
		if f.last <= watermark || coveredBy(f, beyond) {
			n++
			if !f.resent {
				sample = now.Sub(f.sentAt)
			}
			continue
		}
		kept = append(kept, f)
	}
	w.flights = kept
	// An ack of a seq we have not published yet (after a reconnect, the
	// heartbeat's watermark) moves the publishing point past it.
	w.next = max(w.next, watermark)
	if n == 0 {
		return false
	}
	if sample > 0 {
		w.observe(sample)
	} else {
		w.rto = w.base() // progress ends the backoff
	}
	w.timer = now
	return true
}

func coveredBy(f flight, beyond []uint64) bool {
	if len(beyond) == 0 || uint64(len(beyond)) < f.last-f.first+1 {
		return false
	}
	for s := f.first; s <= f.last; s++ {
		if _, ok := slices.BinarySearch(beyond, s); !ok {
			return false
		}
	}
	return true
}

func (w *window) observe(r time.Duration) {
	if !w.measured {
		w.srtt, w.rttvar, w.measured = r, r/2, true
	} else {
		d := w.srtt - r
		if d < 0 {
			d = -d
		}
		w.rttvar = (3*w.rttvar + d) / 4
		w.srtt = (7*w.srtt + r) / 8
	}
	w.rto = w.base()
}

func (w *window) base() time.Duration {
	if !w.measured {
		return w.rto
	}
	return min(max(w.srtt+4*w.rttvar, w.minRTO), w.maxRTO)
}

// due returns the oldest flight when its timer has run out, and restarts
// the timer with the timeout doubled (TCP's backoff): only what timed out
// is republished, one batch per timeout, until an ack shows progress.
func (w *window) due(now time.Time) (flight, bool) {
	if len(w.flights) == 0 || now.Sub(w.timer) < w.rto {
		return flight{}, false
	}
	f := &w.flights[0]
	f.resent, f.sentAt = true, now
	w.timer = now
	w.rto = min(2*w.rto, w.maxRTO)
	return *f, true
}

// resent marks the flights overlapping from..to (to == 0: no bound) as
// republished now, for a hub's Resend: no round-trip sample from them, and
// their timer restarts.
func (w *window) resent(from, to uint64, now time.Time) {
	for i := range w.flights {
		f := &w.flights[i]
		if f.last >= from && (to == 0 || f.first <= to) {
			f.resent, f.sentAt = true, now
			if i == 0 {
				w.timer = now
			}
		}
	}
}
