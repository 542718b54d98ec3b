package broker

import (
	"reflect"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
)

// TestSlowSweeps: the broker finds mochi's session and retained-message
// expiry tickers (a mochi that moved them fails here rather than leaving
// the sweeps at every second unnoticed), and a reset ticker fires at its
// new period.
func TestSlowSweeps(t *testing.T) {
	srv := mqtt.New(&mqtt.Options{})
	defer srv.Close()
	if !slowSweeps(srv, time.Hour) {
		t.Fatal("mochi's expiry tickers not found")
	}
	// mochi's period was a second: neither fires within 1.1 s of the reset.
	loop := reflect.ValueOf(srv).Elem().FieldByName("loop").Elem()
	client := (*time.Ticker)(loop.FieldByName("clientExpiry").UnsafePointer())
	retained := (*time.Ticker)(loop.FieldByName("retainedExpiry").UnsafePointer())
	select {
	case <-client.C:
		t.Fatal("the session sweep fired within a second after a reset to an hour")
	case <-retained.C:
		t.Fatal("the retained-message sweep fired within a second after a reset to an hour")
	case <-time.After(1100 * time.Millisecond):
	}
	if !slowInflightSweep(srv, time.Hour) {
		t.Fatal("mochi's inflight expiry ticker not found")
	}
	inflight := (*time.Ticker)(loop.FieldByName("inflightExpiry").UnsafePointer())
	select {
	case <-inflight.C:
		t.Fatal("the inflight sweep fired within a second after a reset to an hour")
	case <-time.After(1100 * time.Millisecond):
	}
	if slowSweeps(nil, time.Second) || slowSweeps(srv, 0) {
		t.Fatal("slowSweeps accepted a nil server or a zero period")
	}
}
