package wire_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/wire"
)

func TestSnapshotPath(t *testing.T) {
	for _, c := range []struct {
		since, uses uint64
		hasUses     bool
		want        string
	}{
		{0, 0, false, "/v1/agent/snapshot"},
		{7, 0, false, "/v1/agent/snapshot?since=7"},
		{7, 0, true, "/v1/agent/snapshot?since=7&uses=0"},
		{18446744073709551615, 42, true, "/v1/agent/snapshot?since=18446744073709551615&uses=42"},
	} {
		if got := wire.SnapshotPath(c.since, c.uses, c.hasUses); got != c.want {
			t.Errorf("SnapshotPath(%d, %d, %v) = %q, want %q", c.since, c.uses, c.hasUses, got, c.want)
		}
	}
}

func TestAllowHeader(t *testing.T) {
	if got, want := wire.AllowHeader([]string{"POST", "GET", "POST"}), "GET, HEAD, POST"; got != want {
		t.Errorf("AllowHeader = %q, want %q", got, want)
	}
}

// TestProblemRoundTrip: what one side writes the other reads back as the
// same *protocol.Error; a body without a known code is unavailable.
func TestProblemRoundTrip(t *testing.T) {
	e := protocol.FieldError("order.lines[0].quantity", "quantity must be positive")
	b, err := json.Marshal(wire.NewProblem(e, 400, "/v1/validate"))
	if err != nil {
		t.Fatal(err)
	}
	for _, member := range []string{`"type":"urn:punchcard:problem:invalid_input"`, `"status":400`, `"instance":"/v1/validate"`, `"code":"invalid_input"`, `"field":"order.lines[0].quantity"`} {
		if !strings.Contains(string(b), member) {
			t.Errorf("%s lacks %s", b, member)
		}
	}
	got := wire.ReadProblem(&http.Response{Status: "400 Bad Request", Body: io.NopCloser(strings.NewReader(string(b)))})
	if *got != *e {
		t.Errorf("read back %+v, want %+v", got, e)
	}
	got = wire.ReadProblem(&http.Response{Status: "502 Bad Gateway", Body: io.NopCloser(strings.NewReader("<html>"))})
	if got.Code != protocol.CodeUnavailable {
		t.Errorf("code = %s, want unavailable", got.Code)
	}
}
