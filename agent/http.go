package agent

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/wire"
)

// MaxBodyBytes bounds a POS request body.
const MaxBodyBytes = 1 << 20

// Handler is the local POS API (see docs/agent.md):
//
//	POST /v1/validate  Basket         → Quote (no side effects)
//	POST /v1/redeem    RedeemRequest  → Receipt (idempotent on txn_id)
//	POST /v1/rollback  RollbackRequest → Receipt (idempotent on txn_id)
//	POST /v1/earn      EarnRequest    → Receipt (idempotent on txn_id)
//	GET  /v1/status                   → Status
//	GET  /healthz                     → 200 "ok"
//
// Every refusal is the hub's error body too, an RFC 9457 problem
// (wire.Problem, application/problem+json: type, title, status, detail,
// instance, code, message, field) with the status of
// protocol.Code.HTTPStatus, plus "error" ({"code", "message", "field"},
// the body before problem details, kept for POS software that reads it);
// a refused redeem also carries "quote". A known path with another method
// is answered 405 with Allow.
//
// Every request first passes the access checks of posauth.go: the token
// (Agent.POSToken), no browser, a loopback Host, a JSON body.
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/validate", func(w http.ResponseWriter, r *http.Request) {
		var b Basket
		if !decode(w, r, &b) {
			return
		}
		q, err := a.Validate(r.Context(), b)
		a.reply(w, r, q, err)
	})
	mux.HandleFunc("POST /v1/redeem", func(w http.ResponseWriter, r *http.Request) {
		var req RedeemRequest
		if !decode(w, r, &req) {
			return
		}
		rc, err := a.Redeem(r.Context(), req)
		a.reply(w, r, rc, err)
	})
	mux.HandleFunc("POST /v1/rollback", func(w http.ResponseWriter, r *http.Request) {
		var req RollbackRequest
		if !decode(w, r, &req) {
			return
		}
		rc, err := a.Rollback(r.Context(), req)
		a.reply(w, r, rc, err)
	})
	mux.HandleFunc("POST /v1/earn", func(w http.ResponseWriter, r *http.Request) {
		var req EarnRequest
		if !decode(w, r, &req) {
			return
		}
		rc, err := a.Earn(r.Context(), req)
		a.reply(w, r, rc, err)
	})
	a.cardRoutes(mux) // giftcards.go
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		s, err := a.Status(r.Context())
		a.reply(w, r, s, err)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if allow := allowedMethods(mux, r); len(allow) > 0 {
			w.Header().Set("Allow", wire.AllowHeader(allow))
			writeProblem(w, r, protocol.Errorf(protocol.CodeMethodNotAllowed, "%s is not allowed on %s.", r.Method, r.URL.Path), nil)
			return
		}
		writeProblem(w, r, protocol.Errorf(protocol.CodeNotFound, "No such endpoint: %s %s.", r.Method, r.URL.Path), nil)
	})
	return a.guard(mux)
}

// allowedMethods lists the methods mux has a route for at r's path, other
// than the catch-all.
func allowedMethods(mux *http.ServeMux, r *http.Request) []string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := &http.Request{Method: m, URL: r.URL, Host: r.Host, Header: http.Header{}}
		if _, pattern := mux.Handler(probe); pattern != "/" && pattern != "" {
			out = append(out, m)
		}
	}
	return out
}

// errorBody is the agent's error body: the problem both APIs answer with,
// the same error as it was before problem details, and a refused redeem's
// quote.
type errorBody struct {
	wire.Problem
	Error *protocol.Error `json:"error"`
	Quote *Quote          `json:"quote,omitempty"`
}

// writeProblem answers e as a problem about r's path.
func writeProblem(w http.ResponseWriter, r *http.Request, e *protocol.Error, q *Quote) {
	status := e.Code.HTTPStatus()
	w.Header().Set("Content-Type", wire.ContentTypeProblem)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(errorBody{Problem: wire.NewProblem(e, status, r.URL.Path), Error: e, Quote: q})
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("trailing data after the JSON body")
	}
	if err != nil {
		var mbe *http.MaxBytesError
		e := protocol.Errorf(protocol.CodeInvalidInput, "The request body is not valid JSON: %v", err)
		if errors.As(err, &mbe) {
			e = protocol.Errorf(protocol.CodeMessageTooLarge, "The request body is larger than %d bytes.", MaxBodyBytes)
		}
		writeProblem(w, r, e, nil)
		return false
	}
	return true
}

func (a *Agent) reply(w http.ResponseWriter, r *http.Request, v any, err error) {
	if err == nil {
		writeJSON(w, http.StatusOK, v)
		return
	}
	var re *RefusedError
	if errors.As(err, &re) {
		writeProblem(w, r, re.Err, &re.Quote)
		return
	}
	e := protocol.PublicError(err)
	if e.Code == protocol.CodeInternal && !errors.Is(err, context.Canceled) {
		a.Logger.Error("agent: request failed", "err", err)
	}
	writeProblem(w, r, e, nil)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
