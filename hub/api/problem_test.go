package api_test

import (
	"encoding/json"
	"regexp"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/wire"
	"github.com/punchcard/punchcard/store/catalog"
)

// TestProblemBody: every error answer is an RFC 9457 problem with our
// stable code, message and field.
func TestProblemBody(t *testing.T) {
	e := newEnv(t)
	r := e.do("POST", "/v1/tenants/acme/customers", e.keys[catalog.RoleSupport], map[string]any{"id": "c1", "nope": 1})
	if got, want := r.header.Get("Content-Type"), wire.ContentTypeProblem; got != want {
		t.Errorf("Content-Type = %q, want %q", got, want)
	}
	var p wire.Problem
	e.wantJSON(r, 400, &p)
	want := wire.Problem{Type: wire.ProblemTypeBase + "invalid_input", Title: protocol.CodeInvalidInput.Message(), Status: 400,
		Detail: `unknown field "nope"`, Instance: "/v1/tenants/acme/customers", Code: protocol.CodeInvalidInput, Message: `unknown field "nope"`, Field: "nope"}
	if p != want {
		t.Errorf("problem = %+v\nwant      %+v", p, want)
	}
}

// TestMethodNotAllowed: a known path with another method is answered 405
// with Allow, a path nobody serves 404.
func TestMethodNotAllowed(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct{ method, path, allow string }{
		{"PUT", "/v1/tenants", "GET, HEAD, POST"},
		{"DELETE", "/v1/tenants/acme/campaigns/summer", "GET, HEAD, PUT"},
		{"GET", "/v1/tenants/acme/redeem", "POST"},
		{"POST", "/v1/agent/snapshot", "GET, HEAD"},
	} {
		r := e.do(c.method, c.path, e.platform, nil)
		e.wantErr(r, 405, protocol.CodeMethodNotAllowed, "")
		if got := r.header.Get("Allow"); got != c.allow {
			t.Errorf("%s %s: Allow = %q, want %q", c.method, c.path, got, c.allow)
		}
	}
	e.wantErr(e.do("GET", "/v1/nothing/here", e.platform, nil), 404, protocol.CodeNotFound, "")
}

// TestTimeWriteThenRead: a time is answered with one precision, the same
// on the write and on a later read (it was 9 fractional digits on POST and
// 6 on GET).
func TestTimeWriteThenRead(t *testing.T) {
	e := newEnv(t)
	e.clk.Add(123456789 * time.Nanosecond)
	mk := e.keys[catalog.RoleMarketer]
	createdAt := func(r []byte) string {
		var v struct {
			CreatedAt string `json:"created_at"`
		}
		if err := json.Unmarshal(r, &v); err != nil {
			t.Fatal(err)
		}
		return v.CreatedAt
	}
	w := e.do("POST", "/v1/tenants/acme/campaigns", mk, campaignDoc("summer", "draft", percent10, ""))
	e.wantJSON(w, 201, nil)
	r := e.do("GET", "/v1/tenants/acme/campaigns/summer", mk, nil)
	e.wantJSON(r, 200, nil)
	if got, want := createdAt(w.body), createdAt(r.body); got != want {
		t.Errorf("created_at on POST %q, on GET %q", got, want)
	}
	if got := createdAt(w.body); !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$`).MatchString(got) {
		t.Errorf("created_at %q: want RFC 3339 UTC with at most microseconds", got)
	}
	w = e.do("POST", "/v1/tenants/acme/customers", e.keys[catalog.RoleSupport], map[string]any{"id": "c1"})
	e.wantJSON(w, 201, nil)
	r = e.do("GET", "/v1/tenants/acme/customers/c1", mk, nil)
	if got, want := createdAt(w.body), createdAt(r.body); got != want {
		t.Errorf("customer created_at on POST %q, on GET %q", got, want)
	}
}

// TestTokenTimesWriteThenRead: a token's expiry given with nanoseconds is
// answered as it is stored, on the write as on a read.
func TestTokenTimesWriteThenRead(t *testing.T) {
	e := newEnv(t)
	mk, sp := e.keys[catalog.RoleMarketer], e.keys[catalog.RoleSupport]
	e.wantJSON(e.do("POST", "/v1/tenants/acme/campaigns", mk, campaignDoc("summer", "active", percent10, "")), 201, nil)
	exp := e.clk.Now().Add(48*time.Hour + 123456789*time.Nanosecond).Format(time.RFC3339Nano)
	var w, r struct {
		Serial  string `json:"serial"`
		Expires string `json:"expires"`
	}
	e.wantJSON(e.do("POST", "/v1/tenants/acme/tokens", sp, map[string]any{"campaign": "summer", "expires": exp}), 201, &w)
	e.wantJSON(e.do("GET", "/v1/tenants/acme/tokens/"+w.Serial, sp, nil), 200, &r)
	if w.Expires != r.Expires || w.Expires == exp {
		t.Errorf("expires sent %q, answered on POST %q, on GET %q", exp, w.Expires, r.Expires)
	}
}
