package uplink_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/punchcard/punchcard/agent"
	"github.com/punchcard/punchcard/agent/agenttest"
	"github.com/punchcard/punchcard/agent/uplink"
	"github.com/punchcard/punchcard/agent/uplink/mqtttest"
	"github.com/punchcard/punchcard/protocol/tlsconf"
	"github.com/punchcard/punchcard/protocol/tlsconf/tlstest"
	"github.com/punchcard/punchcard/store/agentdb"
)

// TestTLSHTTP: the snapshot and allowance client verifies the hub's
// certificate with Options.TLS, and sends its secret only to a hub it
// verified. (cmd/agent's TestTLS runs both links end to end.)
func TestTLSHTTP(t *testing.T) {
	ca := tlstest.NewCA(t, "punchcard hub CA")
	var requests, withSecret atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if r.Header.Get("Authorization") == "Bearer "+mqtttest.AgentSecret {
			withSecret.Add(1)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"error":{"code":"unavailable","message":"test hub"}}`))
	}))
	srv.TLS = ca.Issue(t, "127.0.0.1").Config()
	srv.StartTLS()
	t.Cleanup(srv.Close)

	client := func(t *testing.T, caFile string) *uplink.Client {
		t.Helper()
		ctx := context.Background()
		db, err := agentdb.Open(ctx, filepath.Join(t.TempDir(), "agent.db"), agentdb.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		a, err := agent.New(ctx, agenttest.Tenant, agenttest.Agent, db)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := tlsconf.Client(caFile, nil)
		if err != nil {
			t.Fatal(err)
		}
		// No broker: only the HTTP link is under test.
		c, err := uplink.New(uplink.Options{Tenant: agenttest.Tenant, Agent: agenttest.Agent, BrokerURL: "ssl://127.0.0.1:1",
			HubURL: srv.URL, Secret: mqtttest.AgentSecret, HubKey: mqtttest.HubPublicKey, HTTPRetries: 1, TLS: cfg}, a, db)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	t.Run("ErrOtherCA", func(t *testing.T) {
		other := tlstest.NewCA(t, "someone else's CA")
		err := client(t, other.File).FetchSnapshot(context.Background())
		if err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
			t.Fatalf("FetchSnapshot from a hub of another CA: %v", err)
		}
		if n := requests.Load(); n != 0 {
			t.Fatalf("%d requests reached the hub", n)
		}
	})
	t.Run("OK", func(t *testing.T) {
		// The test hub answers 503: an error, but from the hub.
		if err := client(t, ca.File).FetchSnapshot(context.Background()); err == nil || strings.Contains(err.Error(), "certificate") {
			t.Fatalf("FetchSnapshot: %v (want the hub's own refusal)", err)
		}
		if requests.Load() == 0 || withSecret.Load() == 0 {
			t.Fatalf("the request did not reach the hub over TLS with the secret: %d %d", requests.Load(), withSecret.Load())
		}
	})
}
