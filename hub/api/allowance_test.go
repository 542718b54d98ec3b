package api_test

import (
	"testing"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/snapshot"
	"github.com/punchcard/punchcard/store/catalog"
)

// A grant whose answer was lost: the retry with the same request id gets
// the same grant; the hub's API shows the till's escrow; the snapshot
// carries the grant and which of the till's facts its figures count.
func TestAllowanceRequestID(t *testing.T) {
	e := newEnv(t)
	mk := e.keys[catalog.RoleMarketer]
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, campaignDoc("summer", "active", percent10, `{"max_redemptions":1000}`)), 201, nil)
	var a, again, other protocol.Allowance
	e.wantJSON(e.do("POST", "/v1/agent/allowances", e.agent, map[string]any{"campaign": "summer", "request_id": "r-1"}), 200, &a)
	e.wantJSON(e.do("POST", "/v1/agent/allowances", e.agent, map[string]any{"campaign": "summer", "request_id": "r-1"}), 200, &again)
	if a.Grant != 1 || a.Count <= 0 || again != a {
		t.Fatalf("grant %+v, retry %+v: want the same grant", a, again)
	}
	e.wantJSON(e.do("POST", "/v1/agent/allowances", e.agent, map[string]any{"campaign": "summer", "request_id": "r-2"}), 200, &other)
	if other.Grant != 0 || other.Count != 0 {
		t.Fatalf("a request past the target = %+v, want no grant", other)
	}
	e.wantErr(e.do("POST", "/v1/agent/allowances", e.agent, map[string]any{"campaign": "summer", "request_id": "a b"}), 400, protocol.CodeInvalidInput, "request_id")

	var esc struct {
		Agent      protocol.AgentID     `json:"agent"`
		Allowances []protocol.Allowance `json:"allowances"`
	}
	e.wantJSON(e.do("GET", "/v1/tenants/acme/agents/till-1/allowances", e.keys[catalog.RoleReadOnly], nil), 200, &esc)
	if len(esc.Allowances) != 1 || esc.Allowances[0].Grant != 1 || esc.Allowances[0].GrantedCount != a.Count || esc.Allowances[0].Count != a.Count {
		t.Fatalf("escrow %+v, granted %+v", esc, a)
	}
	e.wantErr(e.do("GET", "/v1/tenants/acme/agents/ghost/allowances", e.keys[catalog.RoleReadOnly], nil), 404, protocol.CodeNotFound, "")

	var s snapshot.Snapshot
	e.wantJSON(e.do("GET", "/v1/agent/snapshot", e.agent, nil, "Accept", "application/json"), 200, &s)
	if len(s.Allowances) != 1 || s.Allowances[0].Grant != 1 || s.Allowances[0].GrantedCount != a.Count {
		t.Fatalf("snapshot allowances %+v", s.Allowances)
	}
	if s.Reflected == nil || s.Reflected.Watermark != 0 {
		t.Fatalf("snapshot reflected = %+v, want watermark 0", s.Reflected)
	}
}

// The escrow route names an agent of the tenant in the path: an unknown
// one is not_found, another tenant's key is refused, a till's own key may
// not read the hub's view of every till.
func TestEscrowRouteRefusals(t *testing.T) {
	e := newEnv(t)
	ro := e.keys[catalog.RoleReadOnly]
	e.wantErr(e.do("GET", "/v1/tenants/acme/agents/till-9/allowances", ro, nil), 404, protocol.CodeNotFound, "")
	e.wantErr(e.do("GET", "/v1/tenants/acme/agents/till-1/allowances", e.other, nil), 403, protocol.CodeForbidden, "")
	e.wantErr(e.do("GET", "/v1/tenants/acme/agents/till-1/allowances", e.agent, nil), 403, protocol.CodeForbidden, "")
	e.wantErr(e.do("GET", "/v1/tenants/acme/agents/till-1/allowances", "", nil), 401, protocol.CodeUnauthenticated, "")
}
