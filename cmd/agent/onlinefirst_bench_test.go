package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/punchcard/punchcard/agent"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/store/catalog"
)

// benchLat records per-request durations and reports p50 and p99.
type benchLat []time.Duration

func (l benchLat) report(b *testing.B) {
	if len(l) == 0 {
		return
	}
	slices.Sort(l)
	b.ReportMetric(float64(l[len(l)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(l[len(l)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkTillOnline measures, in one run against the real hub on
// loopback: the loopback HTTP round trip itself, the hub's authorize
// call alone, a
// till's validate and redeem of a multi-use code while online (local:
// never asks the hub), and a single-use code's redeem online first (one
// hub round trip, with its hold) against the same redeem decided offline
// by a till without the hub (the local work alone). make bench-onlinefirst.
func BenchmarkTillOnline(b *testing.B) {
	ctx := context.Background()
	p := startParityHub(b)
	c := p.h.Catalog
	for _, doc := range []string{
		`{"schema":1,"id":"ten","tenant":"acme","status":"active","currency":"EUR","reward":{"kind":"percent_off","percent_bp":1000}}`,
	} {
		if _, err := c.CreateCampaign(ctx, catalog.System, parityTenant, []byte(doc)); err != nil {
			b.Fatal(err)
		}
	}
	st := snapshot.Store{ID: "store-a", TimeZone: "Europe/Berlin"}
	const n = 20_000
	codes := make([]string, n)
	for i := range codes {
		codes[i] = fmt.Sprintf("ONCE%06d", i)
	}
	for i := 0; i < n; i += 10_000 {
		if _, err := c.ImportCodes(ctx, catalog.System, parityTenant, "ten", codes[i:i+10_000], catalog.CodeSpec{Uses: 1, Stores: []protocol.StoreID{st.ID}}); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := c.ImportCodes(ctx, catalog.System, parityTenant, "ten", []string{"TEN"}, catalog.CodeSpec{Uses: -1}); err != nil {
		b.Fatal(err)
	}
	on := p.register(b, parityTenant, "till-on", st)
	p.start(b, on, true)
	off := p.register(b, parityTenant, "till-off", st)
	p.start(b, off, true)
	p.start(b, off, false)
	order := protocol.Order{ID: "o", Currency: "EUR", Lines: []protocol.Line{{SKU: "shirt", Quantity: 1, UnitPrice: 100_00}}}
	post := func(tl *till, path string, body any) []byte {
		buf, _ := json.Marshal(body)
		resp, err := tl.pos.do(http.MethodPost, path, bytes.NewReader(buf))
		if err != nil {
			b.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Contains(out, []byte(`"applied":true`)) || bytes.Contains(out, []byte(`"error"`)) {
			b.Fatalf("%s: %d %s", path, resp.StatusCode, out)
		}
		return out
	}
	next := 0
	// The loopback HTTP round trip itself: a keep-alive request to a
	// server that answers at once (the hub's public routes are rate
	// limited per address, which would throttle the tills' own calls).
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer echo.Close()
	b.Run("loopback-roundtrip", func(b *testing.B) {
		var lat benchLat
		for b.Loop() {
			t0 := time.Now()
			resp, err := http.Get(echo.URL)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			lat = append(lat, time.Since(t0))
		}
		lat.report(b)
	})
	// The hub's side of online first alone: the till's authorize call
	// over loopback (decision with the hub's figures, no hold).
	b.Run("hub-authorize-roundtrip", func(b *testing.B) {
		body, _ := json.Marshal(map[string]any{"order": order, "redeemables": []any{map[string]any{"code": codes[n-1]}}})
		var lat benchLat
		for b.Loop() {
			req, _ := http.NewRequest(http.MethodPost, "http://"+p.h.HTTPAddr()+"/v1/agent/authorize", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+on.secret)
			req.Header.Set("Content-Type", "application/json")
			t0 := time.Now()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			out, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatalf("authorize: %d %s", resp.StatusCode, out)
			}
			lat = append(lat, time.Since(t0))
		}
		lat.report(b)
	})
	b.Run("validate-multi-use-online", func(b *testing.B) {
		var lat benchLat
		for b.Loop() {
			t0 := time.Now()
			post(on, "/v1/validate", agent.Basket{Order: order, Redeemables: []agent.Input{{Code: "TEN"}}})
			lat = append(lat, time.Since(t0))
		}
		lat.report(b)
	})
	b.Run("redeem-multi-use-online", func(b *testing.B) {
		var lat benchLat
		for b.Loop() {
			next++
			t0 := time.Now()
			post(on, "/v1/redeem", agent.RedeemRequest{TxnID: fmt.Sprintf("m%d", next), Basket: agent.Basket{Order: order, Redeemables: []agent.Input{{Code: "TEN"}}}})
			lat = append(lat, time.Since(t0))
		}
		lat.report(b)
	})
	used := 0
	single := func(b *testing.B, tl *till, online bool) {
		var lat benchLat
		for b.Loop() {
			if used == n {
				b.Fatal("ran out of single-use codes")
			}
			code := codes[used]
			used++
			t0 := time.Now()
			out := post(tl, "/v1/redeem", agent.RedeemRequest{TxnID: "s" + code, Basket: agent.Basket{Order: order, Redeemables: []agent.Input{{Code: code}}}})
			lat = append(lat, time.Since(t0))
			if online && !bytes.Contains(out, []byte(`"hub_ref"`)) {
				b.Fatalf("not decided online first: %s", out)
			}
		}
		lat.report(b)
	}
	b.Run("redeem-single-use-offline", func(b *testing.B) { single(b, off, false) })
	b.Run("redeem-single-use-online-first", func(b *testing.B) { single(b, on, true) })
}
