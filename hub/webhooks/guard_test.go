package webhooks_test

import (
	"context"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/punchcard/punchcard/hub/webhooks"
	"github.com/punchcard/punchcard/protocol"
)

// TestForbiddenAddr: the addresses a webhook may not be delivered to, and
// some it may.
func TestForbiddenAddr(t *testing.T) {
	for _, c := range []struct {
		ip     string
		forbid bool
	}{
		{"127.0.0.1", true}, {"127.255.255.254", true}, {"::1", true}, // loopback
		{"10.0.0.1", true}, {"172.16.0.1", true}, {"172.31.255.255", true}, {"192.168.1.1", true}, {"fc00::1", true}, {"fd12:3456::1", true}, // private
		{"169.254.169.254", true}, {"fe80::1", true}, {"fe80::1%eth0", true}, // link-local (cloud metadata)
		{"224.0.0.1", true}, {"239.255.255.250", true}, {"ff02::1", true}, {"ff05::2", true}, // multicast
		{"0.0.0.0", true}, {"::", true}, {"0.1.2.3", true}, // unspecified, "this network"
		{"100.64.0.1", true}, {"192.0.0.8", true}, {"198.18.0.1", true}, {"192.0.2.1", true}, {"240.0.0.1", true}, {"255.255.255.255", true}, // reserved
		{"2001:db8::1", true}, {"100::1", true}, {"fec0::1", true}, {"2001:0:4136:e378::1", true}, // IPv6 reserved, site-local, Teredo
		{"::ffff:127.0.0.1", true}, {"::ffff:10.1.2.3", true}, {"::127.0.0.1", true}, // IPv4 inside IPv6
		{"64:ff9b::7f00:1", true}, {"64:ff9b::a00:1", true}, {"2002:7f00:1::1", true}, {"2002:c0a8:101::1", true}, // NAT64, 6to4 of internal IPv4
		{"8.8.8.8", false}, {"93.184.215.14", false}, {"172.32.0.1", false}, {"100.128.0.1", false}, {"1.1.1.1", false}, // public
		{"2606:4700:4700::1111", false}, {"2a00:1450:4001:80b::200e", false}, {"::ffff:8.8.8.8", false}, {"64:ff9b::808:808", false}, {"2002:808:808::1", false},
	} {
		why := webhooks.ForbiddenAddr(netip.MustParseAddr(c.ip))
		if (why != "") != c.forbid {
			t.Errorf("ForbiddenAddr(%s) = %q, want forbidden %v", c.ip, why, c.forbid)
		}
	}
	if webhooks.ForbiddenAddr(netip.Addr{}) == "" {
		t.Error("the zero Addr is allowed")
	}
}

// TestEndpointURLGuard: without AllowPrivate, creating or changing an
// endpoint to a URL whose host is or resolves to an internal address is
// refused with webhook_url_forbidden on the field url, and changes
// nothing; public addresses and names that do not resolve pass (the dial
// decides).
func TestEndpointURLGuard(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, func(o *webhooks.Options) { o.AllowPrivate = false })
	for _, u := range []string{"http://127.0.0.1:8080/hook", "https://localhost/hook", "http://[::1]/", "http://10.1.2.3/", "http://169.254.169.254/latest/meta-data",
		"http://0.0.0.0:9000/", "http://[::ffff:127.0.0.1]/", "http://224.0.0.1/", "http://[fe80::1%25eth0]/", "https://192.168.0.10:8443/x", "http://[fd00::1]/"} {
		_, err := e.s.CreateEndpoint(ctx, "acme", protocol.WebhookEndpointInput{URL: u})
		var pe *protocol.Error
		if protocol.ErrorCode(err) != protocol.CodeWebhookURLForbidden || !asError(err, &pe) || pe.Field != "url" {
			t.Errorf("create %s: %v, want webhook_url_forbidden on url", u, err)
		}
	}
	if eps, err := e.s.Endpoints(ctx, "acme"); err != nil || len(eps) != 0 {
		t.Fatalf("endpoints after refusals: %+v %v", eps, err)
	}
	ep, err := e.s.CreateEndpoint(ctx, "acme", protocol.WebhookEndpointInput{URL: "https://93.184.215.14/hook"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.CreateEndpoint(ctx, "acme", protocol.WebhookEndpointInput{URL: "https://hooks.invalid/x"}); err != nil {
		t.Fatalf("a name that does not resolve: %v", err)
	}
	if _, err := e.s.UpdateEndpoint(ctx, "acme", ep.ID, protocol.WebhookEndpointInput{URL: "http://10.0.0.1/"}); protocol.ErrorCode(err) != protocol.CodeWebhookURLForbidden {
		t.Fatalf("update to a private address: %v", err)
	}
	if got, err := e.s.Endpoint(ctx, "acme", ep.ID); err != nil || got.URL != "https://93.184.215.14/hook" {
		t.Fatalf("after a refused update: %+v %v", got, err)
	}
}

// TestDeliveryDialGuard: an endpoint whose name resolves to an internal
// address when a delivery dials (a stored endpoint from before the guard,
// or DNS rebinding after its creation) gets nothing: the dial checks the
// address it connects to, and the delivery log says why.
func TestDeliveryDialGuard(t *testing.T) {
	ctx := context.Background()
	// Created where private receivers are allowed, on the same webhooks.db.
	e := openEnv(t, nil, true)
	rcv := newReceiver(t, 0)
	u := strings.Replace(rcv.srv.URL, "127.0.0.1", "localhost", 1) // a name: resolved at the dial
	ep, err := e.s.CreateEndpoint(ctx, "acme", protocol.WebhookEndpointInput{URL: u})
	if err != nil {
		t.Fatal(err)
	}
	rcv.setSecrets(ep.Secret)
	if err := e.s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	g := e.reopen(t, func(o *webhooks.Options) { o.AllowPrivate = false })
	e.facts(t, 1, 2)
	waitFor(t, "a refused delivery in the log", func() bool {
		ds, err := g.Deliveries(ctx, "acme", ep.ID, 0, 10)
		return err == nil && len(ds) > 0
	})
	ds, err := g.Deliveries(ctx, "acme", ep.ID, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if d.OK || !strings.Contains(d.Error, string(protocol.CodeWebhookURLForbidden)) {
			t.Fatalf("delivery %+v, want refused with %s", d, protocol.CodeWebhookURLForbidden)
		}
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if rcv.tries != 0 {
		t.Fatalf("the receiver on localhost got %d requests", rcv.tries)
	}
}

func asError(err error, pe **protocol.Error) bool {
	p, ok := err.(*protocol.Error)
	*pe = p
	return ok
}

// reopen opens and starts a second service on e's webhooks.db, with mod
// applied to the usual test options.
func (e *env) reopen(t *testing.T, mod func(*webhooks.Options)) *webhooks.Service {
	t.Helper()
	ctx := context.Background()
	opts := webhooks.Options{Sources: map[string]webhooks.Source{"ledger": e.l}, Replay: map[string]webhooks.ReplaySource{"ledger": e.l},
		RetryBase: 10 * time.Millisecond, RetryCap: 100 * time.Millisecond, RelayInterval: 20 * time.Millisecond, PollInterval: 20 * time.Millisecond,
		Timeout: 5 * time.Second}
	mod(&opts)
	s, err := webhooks.Open(ctx, filepath.Join(e.dir, "webhooks.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}
