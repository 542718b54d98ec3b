package uplink

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/punchcard/punchcard/protocol"
)

// The hub (hub/api) answers errors as the flat protocol.Error JSON; the
// agent must keep the hub's reason code (e.g. budget_exhausted on an
// allowance request) rather than turn it into "unavailable".
func TestHubError(t *testing.T) {
	for _, tt := range []struct {
		name, body string
		status     int
		want       protocol.Code
	}{
		{"OK", `{"code":"budget_exhausted","message":"This promotion has run out."}`, 409, protocol.CodeBudgetExhausted},
		{"WithField", `{"code":"invalid_input","message":"bad","field":"campaign"}`, 400, protocol.CodeInvalidInput},
		{"ErrUnknownCode", `{"code":"no_such_code","message":"x"}`, 500, protocol.CodeUnavailable},
		{"ErrNotJSON", `<html>bad gateway</html>`, 502, protocol.CodeUnavailable},
		{"ErrEmpty", ``, 503, protocol.CodeUnavailable},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := &http.Response{StatusCode: tt.status, Status: http.StatusText(tt.status), Body: io.NopCloser(strings.NewReader(tt.body))}
			if got := protocol.ErrorCode(hubError(resp)); got != tt.want {
				t.Fatalf("code = %q, want %q", got, tt.want)
			}
		})
	}
}
