package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// Unavailable says that a component the caller needs does not exist yet: a
// binary that is not built, an HTTP route the server does not have. The demo
// reports it as "step N is not available yet" rather than as a failure of
// the system under test, and never pretends it ran.
type Unavailable struct {
	What string
}

func (u *Unavailable) Error() string { return "not available yet: " + u.What }

// IsUnavailable reports whether err is (or wraps) an *Unavailable.
func IsUnavailable(err error) bool {
	var u *Unavailable
	return errors.As(err, &u)
}

// Client speaks JSON over HTTP to the hub or an agent. Errors from the
// server come back as *protocol.Error with the server's reason code.
type Client struct {
	Base  string // e.g. "http://127.0.0.1:4100"
	Token string // bearer token; empty sends none
	HTTP  *http.Client
}

// NewClient returns a client with a short timeout: everything runs on
// loopback, so a slow answer is a hang, not a slow network.
func NewClient(base, token string) *Client {
	return &Client{Base: strings.TrimRight(base, "/"), Token: token, HTTP: &http.Client{Timeout: 10 * time.Second}}
}

// WithToken returns a copy of c that sends another bearer token.
func (c *Client) WithToken(token string) *Client {
	cc := *c
	cc.Token = token
	return &cc
}

// Do sends in (JSON-encoded unless nil or []byte) and decodes a 2xx answer
// into out (unless nil; *[]byte receives the raw body). A non-2xx answer is
// returned as *protocol.Error when the body is one, and a 404 or 405 whose
// body is not a protocol error (a route the server does not have) as
// *Unavailable.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	return c.DoHeader(ctx, method, path, nil, in, out)
}

// DoHeader is Do with extra request headers (an Idempotency-Key).
func (c *Client) DoHeader(ctx context.Context, method, path string, header http.Header, in, out any) error {
	var body io.Reader
	ctype := ""
	switch v := in.(type) {
	case nil:
	case []byte:
		body, ctype = bytes.NewReader(v), "application/octet-stream"
	default:
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: encode: %w", method, path, err)
		}
		body, ctype = bytes.NewReader(b), "application/json"
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, body)
	if err != nil {
		return err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("Accept", "application/json")
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		if pe := parseError(raw); pe != nil {
			if resp.StatusCode == http.StatusNotFound && noRoute(pe) {
				return &Unavailable{What: fmt.Sprintf("%s %s%s (the server has no such route yet: %s)", method, c.Base, path, pe.Message)}
			}
			return pe
		}
		if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed || resp.StatusCode == http.StatusNotImplemented {
			return &Unavailable{What: fmt.Sprintf("%s %s%s (HTTP %d: the server has no such route)", method, c.Base, path, resp.StatusCode)}
		}
		return fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, trim(raw))
	}
	switch o := out.(type) {
	case nil:
		return nil
	case *[]byte:
		*o = raw
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s: decode %T: %w (body %s)", method, path, out, err, trim(raw))
	}
	return nil
}

// noRoute tells a "no such route" 404 (the hub's and the agent's wording)
// from a "no such thing" 404 of an existing route.
func noRoute(pe *protocol.Error) bool {
	m := strings.ToLower(pe.Message)
	return pe.Code == protocol.CodeNotFound && (strings.HasPrefix(m, "no route") || strings.HasPrefix(m, "no such endpoint") || strings.HasPrefix(m, "cannot "))
}

// parseError recognises a protocol error body, bare ({"code":...}) or
// wrapped ({"error":{"code":...}}).
func parseError(raw []byte) *protocol.Error {
	var bare protocol.Error
	if json.Unmarshal(raw, &bare) == nil && bare.Code != "" {
		return &bare
	}
	var wrapped struct {
		Error *protocol.Error `json:"error"`
	}
	if json.Unmarshal(raw, &wrapped) == nil && wrapped.Error != nil && wrapped.Error.Code != "" {
		return wrapped.Error
	}
	return nil
}

func trim(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// Code returns the reason code of err, or "" when err is nil or carries
// none.
func Code(err error) protocol.Code {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}
