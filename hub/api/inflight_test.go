package api

import (
	"strings"
	"testing"
)

// TestInflightDescribe: a Shutdown that timed out names the handlers
// still running, oldest first; finished ones are gone.
func TestInflightDescribe(t *testing.T) {
	var f inflight
	if got := f.describe(); !strings.Contains(got, "no handler running") {
		t.Fatalf("empty: %q", got)
	}
	a := f.add("GET", "/v1/agent/snapshot")
	b := f.add("POST", "/v1/tenants/{tenant}/redeem")
	f.done(a)
	c := f.add("POST", "/v1/agent/authorize")
	got := f.describe()
	if !strings.HasPrefix(got, "2 handlers running: POST /v1/tenants/{tenant}/redeem (") || !strings.Contains(got, ") POST /v1/agent/authorize (") ||
		strings.Contains(got, "snapshot") {
		t.Fatalf("describe = %q", got)
	}
	f.done(b)
	f.done(c)
	if got := f.describe(); !strings.Contains(got, "no handler running") {
		t.Fatalf("all done: %q", got)
	}
}
