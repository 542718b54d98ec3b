package agent

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/punchcard/punchcard/protocol"
)

// POS API access. The POS API drives real money (discounts, gift card
// spend, loyalty points), and a till usually has a web browser on it: any
// page it opens can send requests to 127.0.0.1, and a DNS-rebinding page can
// even read the answers. So the POS API answers only the POS software:
//
//   - every call but GET /healthz carries the install's token
//     (Authorization: Bearer, see LoadPOSToken), else pos_token_invalid;
//   - a request a browser sent (an Origin or Sec-Fetch-Site header) is
//     refused with browser_request_refused: the POS is not a web page;
//   - the Host header must name a loopback address, localhost, or a name in
//     Agent.POSHosts, else host_not_allowed (DNS rebinding);
//   - a POST must be Content-Type: application/json, else
//     unsupported_media_type (a form or text/plain POST is what a web page
//     can send without asking).

// DefaultPOSTokenFile is the token file's name in the agent's data
// directory.
const DefaultPOSTokenFile = "pos-token"

// POSTokenFileMode is the token file's mode when the agent creates it:
// readable by the agent's group, so that a POS running under another user
// in that group can read it.
const POSTokenFileMode = 0o640

// minPOSToken is the shortest token accepted from a file an operator wrote.
const minPOSToken = 16

// LoadPOSToken returns the POS API token stored at path, creating the file
// with a fresh random token (32 bytes from crypto/rand, base64url, mode
// POSTokenFileMode) when it does not exist; created reports that. An
// existing file must hold at least 16 characters and, outside Windows, must
// not be readable by others.
func LoadPOSToken(path string) (token string, created bool, err error) {
	token, err = ReadPOSToken(path)
	if err == nil {
		return token, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", false, err
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", false, err
	}
	token = base64.RawURLEncoding.EncodeToString(b)
	// Write a temporary file and rename it, so that a crash leaves either
	// no token file or a whole one.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".pos-token-*")
	if err != nil {
		return "", false, fmt.Errorf("pos token: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(POSTokenFileMode); err != nil && runtime.GOOS != "windows" {
		tmp.Close()
		return "", false, fmt.Errorf("pos token: %w", err)
	}
	if _, err := tmp.WriteString(token + "\n"); err != nil {
		tmp.Close()
		return "", false, fmt.Errorf("pos token: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", false, fmt.Errorf("pos token: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", false, fmt.Errorf("pos token: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", false, fmt.Errorf("pos token: %w", err)
	}
	return token, true, nil
}

// ReadPOSToken reads the token file at path (what a POS integration does).
// Errors wrap fs.ErrNotExist when there is no file.
func ReadPOSToken(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("pos token: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("pos token: %w", err)
	}
	if runtime.GOOS != "windows" && st.Mode().Perm()&0o007 != 0 {
		return "", fmt.Errorf("pos token: %s is readable by every user (mode %#o); chmod 0640 it", path, st.Mode().Perm())
	}
	b, err := io.ReadAll(io.LimitReader(f, 1024))
	if err != nil {
		return "", fmt.Errorf("pos token: %w", err)
	}
	token := strings.TrimSpace(string(b))
	if len(token) < minPOSToken || strings.ContainsAny(token, " \t\r\n") {
		return "", fmt.Errorf("pos token: %s must hold one token of at least %d characters and no spaces", path, minPOSToken)
	}
	return token, nil
}

// guard wraps the POS API's mux with the access checks above.
func (a *Agent) guard(next http.Handler) http.Handler {
	var want [sha256.Size]byte
	if a.POSToken != "" {
		want = sha256.Sum256([]byte(a.POSToken))
	}
	hosts := make(map[string]bool, len(a.POSHosts))
	for _, h := range a.POSHosts {
		hosts[strings.ToLower(h)] = true
	}
	refuse := func(w http.ResponseWriter, r *http.Request, e *protocol.Error) {
		if e.Code == protocol.CodePOSTokenInvalid {
			w.Header().Set("WWW-Authenticate", `Bearer realm="punchcard-pos"`)
		}
		writeProblem(w, r, e, nil)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allowedHost(r.Host, hosts) {
			refuse(w, r, protocol.Errorf(protocol.CodeHostNotAllowed, "The POS API answers only on a loopback address or localhost, not %q.", r.Host))
			return
		}
		if r.Header.Get("Origin") != "" || r.Header.Get("Sec-Fetch-Site") != "" {
			refuse(w, r, protocol.NewError(protocol.CodeBrowserRefused))
			return
		}
		if a.POSToken != "" && !((r.Method == http.MethodGet || r.Method == http.MethodHead) && r.URL.Path == "/healthz") {
			got := sha256.Sum256([]byte(bearer(r.Header.Get("Authorization"))))
			if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
				refuse(w, r, protocol.NewError(protocol.CodePOSTokenInvalid))
				return
			}
		}
		if r.Method == http.MethodPost {
			if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
				refuse(w, r, protocol.NewError(protocol.CodeUnsupportedMediaType))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// bearer returns the token of an "Authorization: Bearer <token>" value, ""
// for anything else.
func bearer(h string) string {
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// allowedHost reports whether a request's Host (with or without a port)
// is a loopback address, localhost or one of hosts (lower case). A
// DNS-rebinding page's requests carry its own name, which is none of them.
func allowedHost(host string, hosts map[string]bool) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	host = strings.ToLower(host)
	if host == "" {
		return false
	}
	if host == "localhost" || hosts[host] {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Zone() == "" && ip.Unmap().IsLoopback()
}
