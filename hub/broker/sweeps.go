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
// second: Options.SnapshotExpiry is seconds.
const DefaultSweepEvery = 30 * time.Second

// slowSweeps resets mochi's session and retained-message expiry tickers
// to every. mochi v2.7.9 (go.mod) keeps them in unexported fields
// (Server.loop.clientExpiry, .retainedExpiry) with a fixed second and no
// option, so they are reached by reflection. It reports whether it found
// them; TestSlowSweeps fails when a new mochi moves them, and the broker
// then keeps mochi's second (nothing breaks).
func slowSweeps(srv *mqtt.Server, every time.Duration) bool {
	if srv == nil || every <= 0 {
		return false
	}
	loop := reflect.ValueOf(srv).Elem().FieldByName("loop")
	if !loop.IsValid() || loop.Kind() != reflect.Pointer || loop.IsNil() {
		return false
	}
	tickerType := reflect.TypeOf((*time.Ticker)(nil))
	var tickers []*time.Ticker
	for _, name := range []string{"clientExpiry", "retainedExpiry"} {
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
