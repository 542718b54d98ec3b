package tlsconf_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol/tlsconf"
	"github.com/punchcard/punchcard/protocol/tlsconf/tlstest"
)

// serve accepts TLS connections on 127.0.0.1 with cfg and completes their
// handshakes; it returns the address.
func serve(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				c.(*tls.Conn).Handshake()
				c.Close()
			}()
		}
	}()
	return ln.Addr().String()
}

func dial(addr string, cfg *tls.Config) (*tls.ConnectionState, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	st := c.ConnectionState()
	return &st, nil
}

func TestClient(t *testing.T) {
	ca := tlstest.NewCA(t, "punchcard test CA")
	srv := ca.Issue(t)
	addr := serve(t, srv.Config())
	t.Run("OKCAFile", func(t *testing.T) {
		cfg, err := tlsconf.Client(ca.File, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := dial(addr, cfg); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("OKPinnedLeafAndCA", func(t *testing.T) {
		for _, pin := range []string{tlsconf.Fingerprint(srv.DER), strings.ToLower(strings.ReplaceAll(tlsconf.Fingerprint(ca.Cert.Raw), ":", ""))} {
			cfg, err := tlsconf.Client(ca.File, []string{"00" + strings.Repeat("11", 31), pin})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := dial(addr, cfg); err != nil {
				t.Fatalf("pin %s: %v", pin, err)
			}
		}
	})
	t.Run("ErrOtherCA", func(t *testing.T) {
		other := tlstest.NewCA(t, "someone else's CA")
		cfg, err := tlsconf.Client(other.File, nil)
		if err != nil {
			t.Fatal(err)
		}
		var cve *tls.CertificateVerificationError
		if _, err := dial(addr, cfg); err == nil || !errors.As(err, &cve) {
			t.Fatalf("a server of another CA was accepted: %v", err)
		}
	})
	t.Run("ErrSystemRoots", func(t *testing.T) {
		cfg, err := tlsconf.Client("", nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := dial(addr, cfg); err == nil {
			t.Fatal("a test CA's server was accepted against the system roots")
		}
	})
	t.Run("ErrPinMismatch", func(t *testing.T) {
		cfg, err := tlsconf.Client(ca.File, []string{strings.Repeat("ab", 32)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := dial(addr, cfg); err == nil || !strings.Contains(err.Error(), "pinned") {
			t.Fatalf("a server without the pinned certificate was accepted: %v", err)
		}
	})
	t.Run("ErrPinWithoutTrust", func(t *testing.T) {
		// A pin narrows verification, it never replaces it: the server's
		// own certificate pinned, but its CA not trusted.
		cfg, err := tlsconf.Client("", []string{tlsconf.Fingerprint(srv.DER)})
		if err != nil {
			t.Fatal(err)
		}
		if cfg.InsecureSkipVerify {
			t.Fatal("InsecureSkipVerify")
		}
		if _, err := dial(addr, cfg); err == nil {
			t.Fatal("accepted on the pin alone")
		}
	})
	t.Run("ErrWrongHost", func(t *testing.T) {
		other := ca.Issue(t, "hub.example")
		cfg, err := tlsconf.Client(ca.File, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := dial(serve(t, other.Config()), cfg); err == nil {
			t.Fatal("a certificate for another host was accepted")
		}
	})
	t.Run("ErrFiles", func(t *testing.T) {
		if _, err := tlsconf.Client(srv.KeyFile, nil); err == nil {
			t.Fatal("a key file was taken for a CA file")
		}
		if _, err := tlsconf.Client(ca.File+".missing", nil); err == nil {
			t.Fatal("no error for a missing CA file")
		}
		for _, p := range []string{"", "abc", strings.Repeat("zz", 32), strings.Repeat("ab", 31)} {
			if _, err := tlsconf.Client(ca.File, []string{p}); err == nil {
				t.Fatalf("pin %q accepted", p)
			}
		}
	})
}

func TestServerReload(t *testing.T) {
	ca := tlstest.NewCA(t, "punchcard test CA")
	first, second := ca.Issue(t), ca.Issue(t)
	cfg, err := tlsconf.Server(first.CertFile, first.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, cfg)
	client, err := tlsconf.Client(ca.File, nil)
	if err != nil {
		t.Fatal(err)
	}
	leaf := func() []byte {
		st, err := dial(addr, client)
		if err != nil {
			t.Fatal(err)
		}
		return st.PeerCertificates[0].Raw
	}
	if string(leaf()) != string(first.DER) {
		t.Fatal("not serving the first certificate")
	}
	// Renewal: the files are replaced in place.
	for _, f := range [][2]string{{second.CertFile, first.CertFile}, {second.KeyFile, first.KeyFile}} {
		b, err := os.ReadFile(f[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f[1], b, 0o600); err != nil {
			t.Fatal(err)
		}
		future := time.Now().Add(time.Minute)
		os.Chtimes(f[1], future, future)
	}
	if string(leaf()) != string(second.DER) {
		t.Fatal("the renewed certificate is not served")
	}
	t.Run("ErrFiles", func(t *testing.T) {
		if _, err := tlsconf.Server(first.CertFile, second.KeyFile+".missing"); err == nil {
			t.Fatal("no error for a missing key")
		}
		if _, err := tlsconf.Server(ca.File, first.KeyFile); err == nil {
			t.Fatal("no error for a key that does not match")
		}
	})
}

// TestClientSelfSigned: a hub's self-signed certificate (not a CA) given
// as the CA file is trusted, as docs/agent.md says.
func TestClientSelfSigned(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "hub"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "hub.crt")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := serve(t, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
	cfg, err := tlsconf.Client(file, []string{tlsconf.Fingerprint(der)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dial(addr, cfg); err != nil {
		t.Fatalf("self-signed hub certificate as the CA file: %v", err)
	}
}
