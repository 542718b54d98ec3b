package agent

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/punchcard/punchcard/protocol"
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
// Every refusal is {"error": {"code", "message", "field"}} with the status
// of protocol.Code.HTTPStatus; a refused redeem also carries "quote".
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
		a.reply(w, q, err)
	})
	mux.HandleFunc("POST /v1/redeem", func(w http.ResponseWriter, r *http.Request) {
		var req RedeemRequest
		if !decode(w, r, &req) {
			return
		}
		rc, err := a.Redeem(r.Context(), req)
		a.reply(w, rc, err)
	})
	mux.HandleFunc("POST /v1/rollback", func(w http.ResponseWriter, r *http.Request) {
		var req RollbackRequest
		if !decode(w, r, &req) {
			return
		}
		rc, err := a.Rollback(r.Context(), req)
		a.reply(w, rc, err)
	})
	mux.HandleFunc("POST /v1/earn", func(w http.ResponseWriter, r *http.Request) {
		var req EarnRequest
		if !decode(w, r, &req) {
			return
		}
		rc, err := a.Earn(r.Context(), req)
		a.reply(w, rc, err)
	})
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		s, err := a.Status(r.Context())
		a.reply(w, s, err)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, errorBody{Error: protocol.Errorf(protocol.CodeNotFound, "No such endpoint: %s %s.", r.Method, r.URL.Path)})
	})
	return a.guard(mux)
}

type errorBody struct {
	Error *protocol.Error `json:"error"`
	Quote *Quote          `json:"quote,omitempty"`
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
		writeJSON(w, e.Code.HTTPStatus(), errorBody{Error: e})
		return false
	}
	return true
}

func (a *Agent) reply(w http.ResponseWriter, v any, err error) {
	if err == nil {
		writeJSON(w, http.StatusOK, v)
		return
	}
	var body errorBody
	var re *RefusedError
	if errors.As(err, &re) {
		body.Error, body.Quote = re.Err, &re.Quote
	} else {
		body.Error = protocol.PublicError(err)
		if body.Error.Code == protocol.CodeInternal && !errors.Is(err, context.Canceled) {
			a.Logger.Error("agent: request failed", "err", err)
		}
	}
	writeJSON(w, body.Error.Code.HTTPStatus(), body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
