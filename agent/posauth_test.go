package agent_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/punchcard/punchcard/agent"
	"github.com/punchcard/punchcard/agent/agenttest"
	"github.com/punchcard/punchcard/protocol"
)

// posRequest is one raw request to the POS API, headers as given.
type posRequest struct {
	method, path, host, token, ctype, origin, body string
	header                                         map[string]string
}

func (e *env) raw(t *testing.T, p posRequest) reply {
	t.Helper()
	var body *strings.Reader
	if p.body != "" {
		body = strings.NewReader(p.body)
	} else {
		body = strings.NewReader("")
	}
	req, err := http.NewRequest(p.method, e.srv.URL+p.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if p.host != "" {
		req.Host = p.host
	}
	if p.token != "" {
		agenttest.AuthorizePOS(req, p.token)
	}
	if p.ctype != "" {
		req.Header.Set("Content-Type", p.ctype)
	}
	if p.origin != "" {
		req.Header.Set("Origin", p.origin)
	}
	for k, v := range p.header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return readReply(t, resp)
}

// redeemBody is a redeem that succeeds (and records a redemption) when
// it gets through.
func redeemBody(t *testing.T, txn string) string {
	t.Helper()
	b, err := json.Marshal(redeem(txn, basket(100_00, agenttest.CodeSummer)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// expectRefused checks a refusal's status, code and that nothing was
// recorded.
func (e *env) expectRefused(t *testing.T, r reply, code protocol.Code) {
	t.Helper()
	if r.Status != code.HTTPStatus() || r.code() != string(code) {
		t.Fatalf("got %d %s, want %d %s", r.Status, r.Raw, code.HTTPStatus(), code)
	}
	if st := e.status(t); num(st["outbox_depth"]) != 0 {
		t.Fatalf("a refused request recorded something: %v", st)
	}
}

// TestPOSAccess: the POS API answers only the POS software (issue 9 item 4).
func TestPOSAccess(t *testing.T) {
	e := newEnv(t, agenttest.Small(1, 10))
	t.Run("ErrCrossSitePost", func(t *testing.T) {
		// What a web page in the till's browser can send without a CORS
		// preflight: a text/plain POST with a JSON body, and no token.
		e.expectRefused(t, e.raw(t, posRequest{method: "POST", path: "/v1/redeem", ctype: "text/plain;charset=UTF-8",
			origin: "https://evil.example", body: redeemBody(t, "X1")}), protocol.CodeBrowserRefused)
	})
	t.Run("ErrTextPlainWithToken", func(t *testing.T) {
		e.expectRefused(t, e.raw(t, posRequest{method: "POST", path: "/v1/redeem", ctype: "text/plain",
			token: agenttest.POSToken, body: redeemBody(t, "X2")}), protocol.CodeUnsupportedMediaType)
		e.expectRefused(t, e.raw(t, posRequest{method: "POST", path: "/v1/redeem", token: agenttest.POSToken,
			body: redeemBody(t, "X2")}), protocol.CodeUnsupportedMediaType)
		e.expectRefused(t, e.raw(t, posRequest{method: "POST", path: "/v1/redeem", ctype: "application/x-www-form-urlencoded",
			token: agenttest.POSToken, body: redeemBody(t, "X2")}), protocol.CodeUnsupportedMediaType)
	})
	t.Run("ErrBrowserOrigin", func(t *testing.T) {
		// Even with the token (a web POS that read it somehow) and on a
		// side-effect-free GET.
		for _, origin := range []string{"https://evil.example", "null", "http://127.0.0.1:8089"} {
			e.expectRefused(t, e.raw(t, posRequest{method: "POST", path: "/v1/redeem", ctype: "application/json",
				token: agenttest.POSToken, origin: origin, body: redeemBody(t, "X3")}), protocol.CodeBrowserRefused)
		}
		e.expectRefused(t, e.raw(t, posRequest{method: "GET", path: "/v1/status", token: agenttest.POSToken,
			header: map[string]string{"Sec-Fetch-Site": "cross-site"}}), protocol.CodeBrowserRefused)
	})
	t.Run("ErrRebindingHost", func(t *testing.T) {
		// A DNS-rebinding page reaches 127.0.0.1 under its own name.
		for _, host := range []string{"evil.example", "evil.example:8089", "localhost.evil.example", "127.0.0.1.nip.io", "[::1].evil.example"} {
			r := e.raw(t, posRequest{method: "POST", path: "/v1/redeem", host: host, ctype: "application/json",
				token: agenttest.POSToken, body: redeemBody(t, "X4")})
			e.expectRefused(t, r, protocol.CodeHostNotAllowed)
		}
		e.expectRefused(t, e.raw(t, posRequest{method: "GET", path: "/v1/status", host: "evil.example", token: agenttest.POSToken}),
			protocol.CodeHostNotAllowed)
	})
	t.Run("ErrNoToken", func(t *testing.T) {
		r := e.raw(t, posRequest{method: "POST", path: "/v1/redeem", ctype: "application/json", body: redeemBody(t, "X5")})
		e.expectRefused(t, r, protocol.CodePOSTokenInvalid)
		e.expectRefused(t, e.raw(t, posRequest{method: "GET", path: "/v1/status"}), protocol.CodePOSTokenInvalid)
		e.expectRefused(t, e.raw(t, posRequest{method: "GET", path: "/v1/nope"}), protocol.CodePOSTokenInvalid)
		e.expectRefused(t, e.raw(t, posRequest{method: "GET", path: "/v1/status", header: map[string]string{"Authorization": "Basic " + agenttest.POSToken}}),
			protocol.CodePOSTokenInvalid)
	})
	t.Run("ErrWrongToken", func(t *testing.T) {
		for _, tok := range []string{"wrong", agenttest.POSToken + "x", agenttest.POSToken[:len(agenttest.POSToken)-1]} {
			e.expectRefused(t, e.raw(t, posRequest{method: "POST", path: "/v1/redeem", ctype: "application/json", token: tok,
				body: redeemBody(t, "X6")}), protocol.CodePOSTokenInvalid)
		}
	})
	t.Run("OKHealthzWithoutToken", func(t *testing.T) {
		if r := e.raw(t, posRequest{method: "GET", path: "/healthz"}); r.Status != 200 {
			t.Fatalf("healthz: %d %s", r.Status, r.Raw)
		}
	})
	t.Run("OK", func(t *testing.T) {
		_, port, _ := strings.Cut(strings.TrimPrefix(e.srv.URL, "http://"), ":")
		for i, host := range []string{"", "localhost:" + port, "LOCALHOST", "127.0.0.2:" + port, "[::1]:" + port} {
			r := e.raw(t, posRequest{method: "POST", path: "/v1/redeem", host: host, ctype: "application/json; charset=utf-8",
				token: agenttest.POSToken, body: redeemBody(t, "OK"+string(rune('A'+i)))})
			if r.Status != 200 {
				t.Fatalf("Host %q: %d %s", host, r.Status, r.Raw)
			}
		}
	})
}

func TestPOSAccessConfigured(t *testing.T) {
	t.Run("OKAllowedHost", func(t *testing.T) {
		e := newEnv(t, agenttest.Small(1, 10))
		e.a.POSHosts = []string{"Till-3.lan"}
		e.srv.Config.Handler = e.a.Handler()
		if r := e.raw(t, posRequest{method: "GET", path: "/v1/status", host: "till-3.LAN:8089", token: agenttest.POSToken}); r.Status != 200 {
			t.Fatalf("allowed host: %d %s", r.Status, r.Raw)
		}
		e.expectRefused(t, e.raw(t, posRequest{method: "GET", path: "/v1/status", host: "till-4.lan", token: agenttest.POSToken}), protocol.CodeHostNotAllowed)
	})
	t.Run("OKNoToken", func(t *testing.T) {
		// Token off (cmd/agent allows it on loopback only): the other
		// checks still hold.
		e := newEnv(t, agenttest.Small(1, 10))
		e.a.POSToken = ""
		e.srv.Config.Handler = e.a.Handler()
		if r := e.raw(t, posRequest{method: "GET", path: "/v1/status"}); r.Status != 200 {
			t.Fatalf("no token: %d %s", r.Status, r.Raw)
		}
		e.expectRefused(t, e.raw(t, posRequest{method: "POST", path: "/v1/redeem", ctype: "text/plain", origin: "https://evil.example",
			body: redeemBody(t, "Y1")}), protocol.CodeBrowserRefused)
		e.expectRefused(t, e.raw(t, posRequest{method: "POST", path: "/v1/redeem", ctype: "text/plain", body: redeemBody(t, "Y1")}),
			protocol.CodeUnsupportedMediaType)
		e.expectRefused(t, e.raw(t, posRequest{method: "GET", path: "/v1/status", host: "evil.example"}), protocol.CodeHostNotAllowed)
	})
}

func TestLoadPOSToken(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, agent.DefaultPOSTokenFile)
	t.Run("OKCreate", func(t *testing.T) {
		tok, created, err := agent.LoadPOSToken(path)
		if err != nil || !created || len(tok) < 40 {
			t.Fatalf("LoadPOSToken = %q, %v, %v", tok, created, err)
		}
		if runtime.GOOS != "windows" {
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := st.Mode().Perm(), os.FileMode(agent.POSTokenFileMode); got != want {
				t.Fatalf("mode = %#o, want %#o", got, want)
			}
		}
		again, created, err := agent.LoadPOSToken(path)
		if err != nil || created || again != tok {
			t.Fatalf("second load = %q, %v, %v (want %q)", again, created, err, tok)
		}
		if read, err := agent.ReadPOSToken(path); err != nil || read != tok {
			t.Fatalf("ReadPOSToken = %q, %v", read, err)
		}
		other, _, err := agent.LoadPOSToken(filepath.Join(t.TempDir(), "t"))
		if err != nil || other == tok {
			t.Fatalf("two installs share a token: %q %v", other, err)
		}
	})
	t.Run("OKOperatorToken", func(t *testing.T) {
		p := filepath.Join(dir, "mine")
		os.WriteFile(p, []byte("  my-own-token-of-32-characters!!\n"), 0o600)
		if tok, created, err := agent.LoadPOSToken(p); err != nil || created || tok != "my-own-token-of-32-characters!!" {
			t.Fatalf("LoadPOSToken = %q, %v, %v", tok, created, err)
		}
	})
	t.Run("ErrShort", func(t *testing.T) {
		p := filepath.Join(dir, "short")
		os.WriteFile(p, []byte("abc\n"), 0o600)
		if _, _, err := agent.LoadPOSToken(p); err == nil {
			t.Fatal("a 3-character token was accepted")
		}
	})
	t.Run("ErrWorldReadable", func(t *testing.T) {
		if runtime.GOOS == "windows" {
			t.Skip("no Unix modes")
		}
		p := filepath.Join(dir, "open")
		os.WriteFile(p, []byte("0123456789abcdef0123456789abcdef\n"), 0o644)
		os.Chmod(p, 0o644)
		if _, _, err := agent.LoadPOSToken(p); err == nil || !strings.Contains(err.Error(), "chmod") {
			t.Fatalf("a world-readable token file was accepted: %v", err)
		}
	})
}

// FuzzPOSAccess throws arbitrary Host, Origin, Authorization and
// Content-Type headers at the POS API: an answer other than a refusal with
// a known code needs the right token, an allowed host, no browser header
// and JSON.
func FuzzPOSAccess(f *testing.F) {
	seeds := [][4]string{
		{"127.0.0.1:8089", "", "Bearer " + agenttest.POSToken, "application/json"},
		{"localhost", "", "Bearer " + agenttest.POSToken, "application/json; charset=utf-8"},
		{"[::1]:1", "", "bearer  " + agenttest.POSToken, "application/json"},
		{"evil.example", "", "Bearer " + agenttest.POSToken, "application/json"},
		{"127.0.0.1", "https://evil.example", "", "text/plain;charset=UTF-8"},
		{"127.0.0.1", "null", "Bearer x", "multipart/form-data; boundary=x"},
		{"[fe80::1%25lo]:80", "", "Bearer", "application/json;;"},
		{"127.0.0.1:99999", "", "Basic Zm9vOmJhcg==", "APPLICATION/JSON"},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1], s[2], s[3])
	}
	h := handlerFor(f, "")
	f.Fuzz(func(t *testing.T, host, origin, auth, ctype string) {
		req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1/v1/validate", strings.NewReader(`{"order":{"id":"o","currency":"EUR","lines":[{"sku":"a","quantity":1,"unit_price":100}]}}`))
		req.Host = host
		for k, v := range map[string]string{"Origin": origin, "Authorization": auth, "Content-Type": ctype} {
			if v != "" {
				req.Header[k] = []string{v}
			}
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		checkReply(t, rec)
		if rec.Code == 200 && (origin != "" || !strings.Contains(auth, agenttest.POSToken)) {
			t.Fatalf("answered 200 to host %q origin %q auth %q type %q", host, origin, auth, ctype)
		}
	})
}
