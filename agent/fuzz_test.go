package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/punchcard/punchcard/agent"
	"github.com/punchcard/punchcard/agent/agenttest"
	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/store"
	"github.com/punchcard/punchcard/store/agentdb"
)

// fixtures are testdata/pos/<endpoint>.<status>.<name>.json: POS request
// bodies and the HTTP status each must get from a fresh agent on the Small
// snapshot.
type fixture struct {
	name, endpoint string
	status         int
	body           []byte
}

func fixtures(tb testing.TB) []fixture {
	tb.Helper()
	files, err := filepath.Glob("testdata/pos/*.json")
	if err != nil || len(files) == 0 {
		tb.Fatalf("no fixtures: %v", err)
	}
	var out []fixture
	for _, f := range files {
		parts := strings.SplitN(filepath.Base(f), ".", 3)
		status, err := strconv.Atoi(parts[1])
		if err != nil {
			tb.Fatalf("%s: bad name", f)
		}
		body, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, fixture{name: filepath.Base(f), endpoint: parts[0], status: status, body: body})
	}
	return out
}

func handlerFor(tb testing.TB, sync store.Sync) http.Handler {
	tb.Helper()
	ctx := context.Background()
	db, err := agentdb.Open(ctx, filepath.Join(tb.TempDir(), "agent.db"), agentdb.Options{Sync: sync})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	a, err := agent.New(ctx, agenttest.Tenant, agenttest.Agent, db)
	if err != nil {
		tb.Fatal(err)
	}
	a.Logger = discardLogger()
	a.POSToken = agenttest.POSToken
	if _, err := a.ApplySnapshot(ctx, agenttest.Encode(tb, agenttest.Small(1, 1000)), "e"); err != nil {
		tb.Fatal(err)
	}
	return a.Handler()
}

// checkReply asserts what every answer must be: JSON, never a 500, and a
// refusal with a known code and a message.
func checkReply(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec.Code >= 500 && rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var body struct {
		Error *protocol.Error `json:"error"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("not JSON: %q", rec.Body)
	}
	if rec.Code != 200 && (body.Error == nil || !body.Error.Code.Known() || body.Error.Message == "") {
		t.Fatalf("refusal without a known code and message: %s", rec.Body)
	}
	if rec.Code != 200 && body.Error.Code.HTTPStatus() != rec.Code {
		t.Fatalf("status %d for code %s (table says %d)", rec.Code, body.Error.Code, body.Error.Code.HTTPStatus())
	}
}

func serve(h http.Handler, endpoint string, body []byte) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:8089/v1/"+endpoint, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	agenttest.AuthorizePOS(req, agenttest.POSToken)
	h.ServeHTTP(rec, req)
	return rec
}

func TestFixtures(t *testing.T) {
	h := handlerFor(t, "")
	for _, f := range fixtures(t) {
		t.Run(f.name, func(t *testing.T) {
			rec := serve(h, f.endpoint, f.body)
			if rec.Code != f.status {
				t.Fatalf("status = %d, want %d: %s", rec.Code, f.status, rec.Body)
			}
			checkReply(t, rec)
		})
	}
}

var endpoints = []string{"validate", "redeem", "rollback", "earn", "giftcards", "giftcards/GIFT1/topup", "giftcards/GIFT1/cashout"}

// FuzzPOSAPI throws arbitrary bodies at every POS endpoint: the agent must
// answer each with JSON, a known reason code and never a 500.
func FuzzPOSAPI(f *testing.F) {
	for _, fx := range fixtures(f) {
		for i, e := range endpoints {
			if e == fx.endpoint {
				f.Add(uint8(i), fx.body)
			}
		}
	}
	h := handlerFor(f, store.SyncNormal)
	f.Fuzz(func(t *testing.T, ep uint8, body []byte) {
		rec := serve(h, endpoints[int(ep)%len(endpoints)], body)
		checkReply(t, rec)
		io.Copy(io.Discard, rec.Body)
	})
}
