// Package tlsconf builds the crypto/tls configurations of Punchcard's
// clients and servers from files, so that every program verifies and
// serves the same way:
//
//   - a client (an agent, the hub's ingest towards an external broker)
//     verifies the server's chain against a CA file, or the system roots
//     when there is none, and, when pins are given, also requires a
//     certificate of the verified chain to have a pinned SHA-256. Chain and
//     host name verification are never skipped (no InsecureSkipVerify): a
//     pin narrows what verification accepts, it never widens it. A hub
//     with a self-signed certificate is trusted by giving that certificate
//     as the CA file.
//   - a server (the hub's HTTP API and MQTT listener) loads a certificate
//     and key from PEM files and reloads them when either file changes, so
//     a renewed certificate needs no restart.
//
// It imports only the standard library.
package tlsconf

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// MinVersion is the oldest TLS version either side accepts.
const MinVersion = tls.VersionTLS12

// Client returns the configuration a client uses to reach a TLS server.
// caFile, when set, is a PEM file of the CA certificates to trust instead
// of the system roots; pins are SHA-256 fingerprints (hex, colons allowed,
// as `openssl x509 -noout -fingerprint -sha256` prints them) of which one
// must match a certificate of the verified chain (the server's own
// certificate or a CA above it).
func Client(caFile string, pins []string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: MinVersion}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("tls: CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls: CA file %s holds no PEM certificate", caFile)
		}
		cfg.RootCAs = pool
	}
	if len(pins) > 0 {
		want := make([][sha256.Size]byte, 0, len(pins))
		for _, p := range pins {
			sum, err := ParsePin(p)
			if err != nil {
				return nil, err
			}
			want = append(want, sum)
		}
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			// Called after crypto/tls verified the chain and the host
			// name; VerifiedChains is what it verified.
			for _, chain := range cs.VerifiedChains {
				for _, c := range chain {
					got := sha256.Sum256(c.Raw)
					for _, w := range want {
						if bytes.Equal(got[:], w[:]) {
							return nil
						}
					}
				}
			}
			return ErrPinMismatch
		}
	}
	return cfg, nil
}

// ErrPinMismatch is returned by a handshake whose verified chain has no
// pinned certificate.
var ErrPinMismatch = errors.New("tls: the server's certificate chain has no pinned certificate (-hub-cert-sha256)")

// ParsePin decodes a SHA-256 fingerprint: 64 hex digits, with or without
// colons, in either case.
func ParsePin(s string) ([sha256.Size]byte, error) {
	var out [sha256.Size]byte
	h := strings.ReplaceAll(strings.TrimSpace(s), ":", "")
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != sha256.Size {
		return out, fmt.Errorf("tls: pin %q is not a SHA-256 fingerprint (64 hex digits)", s)
	}
	copy(out[:], b)
	return out, nil
}

// Fingerprint is a certificate's SHA-256 fingerprint as ParsePin reads it
// (upper-case hex with colons, as openssl prints it).
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	var b strings.Builder
	for i, c := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", c)
	}
	return b.String()
}

// Server returns the configuration of a TLS server whose certificate chain
// and key are the PEM files certFile and keyFile. Both are loaded now (an
// error is returned at once) and again, at the next handshake, whenever
// either file's modification time or size changes; a reload that fails
// keeps the previous certificate.
func Server(certFile, keyFile string) (*tls.Config, error) {
	r := &reloader{certFile: certFile, keyFile: keyFile}
	if err := r.load(); err != nil {
		return nil, err
	}
	return &tls.Config{MinVersion: MinVersion, GetCertificate: r.get}, nil
}

type reloader struct {
	certFile, keyFile string

	mu   sync.Mutex
	cert *tls.Certificate
	mark string // the files' modification times and sizes when loaded
}

func (r *reloader) stamp() (string, error) {
	var parts []string
	for _, f := range []string{r.certFile, r.keyFile} {
		st, err := os.Stat(f)
		if err != nil {
			return "", fmt.Errorf("tls: %w", err)
		}
		parts = append(parts, st.ModTime().Format(time.RFC3339Nano), fmt.Sprint(st.Size()))
	}
	return strings.Join(parts, "|"), nil
}

func (r *reloader) load() error {
	mark, err := r.stamp()
	if err != nil {
		return err
	}
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("tls: certificate %s, key %s: %w", r.certFile, r.keyFile, err)
	}
	r.mu.Lock()
	r.cert, r.mark = &c, mark
	r.mu.Unlock()
	return nil
}

func (r *reloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	cert, mark := r.cert, r.mark
	r.mu.Unlock()
	if now, err := r.stamp(); err == nil && now != mark {
		if r.load() == nil {
			r.mu.Lock()
			cert = r.cert
			r.mu.Unlock()
		}
	}
	return cert, nil
}
