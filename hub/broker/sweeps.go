package broker

import (
	"reflect"
	"time"
	"unsafe"

	mqtt "github.com/mochi-mqtt/server/v2"
)

// DefaultSweepEvery is how often the broker looks for expired client
// sessions and retained messages (mochi does both every second).
//
// Each sweep copies the whole client or retained-message map (mochi's
// GetAll): at 10,000 tills, with one retained SnapshotAnnounce each, the
// two sweeps cost 26 ms of CPU a second (2.6 % of a core, 3.6 % of the hub
// in the fleet benchmark) and the garbage of 20,000 map entries a second,
// to expire sessions that live a day (Options.SessionExpiry) and retained
// messages this broker never expires (MaximumMessageExpiryInterval 0; the
// hook's expiry applies to queued copies). Half a minute late is nothing
// for either. The sweep of queued (inflight) copies stays at mochi's
// second here; slowInflightSweep slows it to the queued copies' expiry.
const DefaultSweepEvery = 30 * time.Second

// slowSweeps resets mochi's session and retained-message expiry tickers
// to every. mochi v2.7.9 (go.mod) keeps them in unexported fields
// (Server.loop.clientExpiry, .retainedExpiry) with a fixed second and no
// option, so they are reached by reflection. It reports whether it found
// them; TestSlowSweeps fails when a new mochi moves them, and the broker
// then keeps mochi's second (nothing breaks).
func slowSweeps(srv *mqtt.Server, every time.Duration) bool {
	return resetTickers(srv, every, "clientExpiry", "retainedExpiry")
}

// slowInflightSweep resets mochi's sweep of expired queued (inflight)
// copies from every second to every (the broker passes the shorter of
// Options.SnapshotExpiry and DownExpiry). Each sweep copies the client
// map and every client's inflight map: 1.1 % of the hub's CPU at 10,000
// tills in the fleet benchmark. A queued copy is then dropped at most
// one expiry after its deadline, not one second; a till that reconnects
// in between is sent it (mochi resends inflight copies without looking
// at their expiry), which is harmless for what the hub sends down: an
// Ack, Resend or SnapshotAnnounce is idempotent. Like slowSweeps, it
// reports whether it found the ticker.
func slowInflightSweep(srv *mqtt.Server, every time.Duration) bool {
	return resetTickers(srv, every, "inflightExpiry")
}

func resetTickers(srv *mqtt.Server, every time.Duration, names ...string) bool {
	if srv == nil || every <= 0 {
		return false
	}
	loop := reflect.ValueOf(srv).Elem().FieldByName("loop")
	if !loop.IsValid() || loop.Kind() != reflect.Pointer || loop.IsNil() {
		return false
	}
	tickerType := reflect.TypeOf((*time.Ticker)(nil))
	var tickers []*time.Ticker
	for _, name := range names {
		f := loop.Elem().FieldByName(name)
		if !f.IsValid() || f.Type() != tickerType || f.IsNil() {
			return false
		}
		tickers = append(tickers, (*time.Ticker)(unsafe.Pointer(f.Pointer())))
	}
	for _, t := range tickers {
		t.Reset(every) // safe while mochi's event loop waits on t.C
	}
	return true
}
