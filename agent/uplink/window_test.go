package uplink

import (
	"testing"
	"time"
)

// TestWindow: the retransmission timeout follows the measured round trip
// (RFC 6298), only the oldest flight is due on a timeout, the timeout
// doubles until progress, and a republished flight gives no sample.
func TestWindow(t *testing.T) {
	t0 := time.Unix(1000, 0)
	w := newWindow(time.Second, 200*time.Millisecond, time.Minute)
	w.sent(1, 10, t0)
	w.sent(11, 20, t0)
	w.sent(21, 30, t0)
	if _, ok := w.due(t0.Add(999 * time.Millisecond)); ok {
		t.Fatal("due before the initial timeout")
	}
	// An ack of the first two after 100 ms: SRTT 100 ms, RTTVAR 50 ms,
	// RTO = 300 ms.
	if !w.ack(20, nil, t0.Add(100*time.Millisecond)) || len(w.flights) != 1 || w.next != 30 {
		t.Fatalf("ack: %+v", w)
	}
	if got, want := w.rto, 300*time.Millisecond; got != want {
		t.Fatalf("rto = %v, want %v", got, want)
	}
	w.sent(31, 40, t0.Add(100*time.Millisecond))
	// The timer restarted on the ack: nothing due 299 ms later; the oldest
	// only after 300 ms, and the timeout doubles.
	if _, ok := w.due(t0.Add(399 * time.Millisecond)); ok {
		t.Fatal("due early")
	}
	f, ok := w.due(t0.Add(400 * time.Millisecond))
	if !ok || f.first != 21 || f.last != 30 {
		t.Fatalf("due = %+v %v, want the oldest flight 21..30", f, ok)
	}
	if got, want := w.rto, 600*time.Millisecond; got != want {
		t.Fatalf("rto after a timeout = %v, want %v", got, want)
	}
	if _, ok := w.due(t0.Add(401 * time.Millisecond)); ok {
		t.Fatal("due again at once")
	}
	// The republished flight is acked: no sample (Karn), the backoff ends.
	w.ack(30, nil, t0.Add(5*time.Second))
	if got, want := w.rto, 300*time.Millisecond; got != want || w.srtt != 100*time.Millisecond {
		t.Fatalf("rto = %v srtt = %v after an ack of a republished flight", got, w.srtt)
	}
	// Beyond: a flight whose every seq is listed is acknowledged.
	w.sent(41, 43, t0.Add(5*time.Second))
	if !w.ack(30, []uint64{31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43}, t0.Add(5100*time.Millisecond)) || len(w.flights) != 0 {
		t.Fatalf("beyond: %+v", w.flights)
	}
	// A Resend restarts the timer of what it names.
	w.sent(44, 50, t0.Add(6*time.Second))
	w.resent(44, 0, t0.Add(7*time.Second))
	if _, ok := w.due(t0.Add(7*time.Second + w.rto - time.Millisecond)); ok {
		t.Fatal("due right after a Resend")
	}
	// The clamp: a very fast round trip still gives MinRTO.
	w = newWindow(time.Second, 200*time.Millisecond, time.Minute)
	w.sent(1, 1, t0)
	w.ack(1, nil, t0.Add(time.Millisecond))
	if w.rto != 200*time.Millisecond {
		t.Fatalf("rto = %v, want the 200 ms floor", w.rto)
	}
}
