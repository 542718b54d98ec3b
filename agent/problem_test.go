package agent_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/punchcard/punchcard/agent/agenttest"
	"github.com/punchcard/punchcard/protocol/wire"
)

// TestProblemBody: the POS API answers errors with the hub's problem body
// (RFC 9457, with our code), and still with "error" as before.
func TestProblemBody(t *testing.T) {
	e := newEnv(t, nil)
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/v1/validate", strings.NewReader(`{"nope":1}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	agenttest.AuthorizePOS(req, agenttest.POSToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := resp.Header.Get("Content-Type"), wire.ContentTypeProblem; got != want {
		t.Errorf("Content-Type = %q, want %q", got, want)
	}
	r := readReply(t, resp)
	if r.Status != 400 || r.Body["type"] != wire.ProblemTypeBase+"invalid_input" || r.Body["code"] != "invalid_input" ||
		r.Body["status"] != float64(400) || r.Body["instance"] != "/v1/validate" || r.Body["title"] == "" || r.Body["detail"] == "" ||
		r.Body["message"] != r.Body["detail"] || r.code() != "invalid_input" {
		t.Errorf("%d %s", r.Status, r.Raw)
	}
}

// TestMethodNotAllowed: a known path with another method is answered 405
// with Allow; an unknown path 404.
func TestMethodNotAllowed(t *testing.T) {
	e := newEnv(t, nil)
	for _, c := range []struct{ method, path, allow string }{
		{http.MethodGet, "/v1/redeem", "POST"},
		{http.MethodPost, "/v1/status", "GET, HEAD"},
		{http.MethodDelete, "/healthz", "GET, HEAD"},
	} {
		req, err := http.NewRequest(c.method, e.srv.URL+c.path, strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		agenttest.AuthorizePOS(req, agenttest.POSToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r := readReply(t, resp)
		if r.Status != 405 || r.Body["code"] != "method_not_allowed" || resp.Header.Get("Allow") != c.allow {
			t.Errorf("%s %s: %d Allow %q %s, want 405 Allow %q", c.method, c.path, r.Status, resp.Header.Get("Allow"), r.Raw, c.allow)
		}
	}
	if r := e.get(t, "/v1/nothing"); r.Status != 404 || r.Body["code"] != "not_found" {
		t.Errorf("GET /v1/nothing: %d %s", r.Status, r.Raw)
	}
}
