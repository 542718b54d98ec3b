package cluster_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/punchcard/punchcard/cmd/punchcard/internal/cluster"
	"github.com/punchcard/punchcard/protocol"
)

func TestClientDo(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			if r.Header.Get("Authorization") != "Bearer s3cret" || r.Header.Get("Idempotency-Key") != "k1" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"echo":`+string(b)+`}`)
		case "/refused":
			w.WriteHeader(http.StatusConflict)
			io.WriteString(w, `{"error":{"code":"code_already_used","message":"This code has already been used."}}`)
		case "/gone":
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"code":"not_found","message":"customer \"x\" not found"}`)
		case "/broken":
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, `panic`)
		default:
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"code":"not_found","message":"no route GET `+r.URL.Path+`"}`)
		}
	}))
	t.Cleanup(srv.Close)
	c := cluster.NewClient(srv.URL, "s3cret")
	ctx := context.Background()
	t.Run("OK", func(t *testing.T) {
		var out struct {
			Echo map[string]int `json:"echo"`
		}
		if err := c.DoHeader(ctx, http.MethodPost, "/ok", http.Header{"Idempotency-Key": {"k1"}}, map[string]int{"n": 7}, &out); err != nil {
			t.Fatal(err)
		}
		if got, want := out.Echo["n"], 7; got != want {
			t.Fatalf("echo = %d, want %d", got, want)
		}
	})
	t.Run("ErrRefused", func(t *testing.T) {
		err := c.Do(ctx, http.MethodPost, "/refused", nil, nil)
		if got, want := cluster.Code(err), protocol.CodeCodeUsed; got != want {
			t.Fatalf("code = %q, want %q (%v)", got, want, err)
		}
	})
	t.Run("ErrNotFoundIsNotUnavailable", func(t *testing.T) {
		err := c.Do(ctx, http.MethodGet, "/gone", nil, nil)
		if cluster.IsUnavailable(err) || cluster.Code(err) != protocol.CodeNotFound {
			t.Fatalf("err = %v, want a plain not_found", err)
		}
	})
	t.Run("ErrNoRouteIsUnavailable", func(t *testing.T) {
		err := c.Do(ctx, http.MethodGet, "/v9/missing", nil, nil)
		if !cluster.IsUnavailable(err) {
			t.Fatalf("err = %v, want *Unavailable", err)
		}
	})
	t.Run("ErrServer", func(t *testing.T) {
		err := c.Do(ctx, http.MethodGet, "/broken", nil, nil)
		if err == nil || cluster.IsUnavailable(err) || cluster.Code(err) != "" {
			t.Fatalf("err = %v, want a plain error", err)
		}
	})
}
