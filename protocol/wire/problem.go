package wire

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/punchcard/punchcard/protocol"
)

// ProblemTypeBase prefixes a problem's type: the type of code_expired is
// ProblemTypeBase + "code_expired". It is a URN, not a link: nothing needs
// to be fetched, and docs/protocol.md lists every code.
const ProblemTypeBase = "urn:punchcard:problem:"

// Problem is the one error body of both HTTP APIs, the hub's and the
// agent's POS API: an RFC 9457 problem detail (application/problem+json)
// whose members type, title, status, detail and instance are the RFC's,
// and code, message and field ours. Clients branch on code, the stable
// reason code (protocol/errors.go); message is detail again, for clients
// written before problem details; field names the offending input.
type Problem struct {
	Type     string        `json:"type"`
	Title    string        `json:"title"`
	Status   int           `json:"status"`
	Detail   string        `json:"detail,omitempty"`
	Instance string        `json:"instance,omitempty"`
	Code     protocol.Code `json:"code"`
	Message  string        `json:"message"`
	Field    string        `json:"field,omitempty"`
}

// NewProblem is e's problem with the status it is answered with and the
// request path it is about.
func NewProblem(e *protocol.Error, status int, instance string) Problem {
	return Problem{
		Type:     ProblemTypeBase + string(e.Code),
		Title:    title(e.Code),
		Status:   status,
		Detail:   e.Message,
		Instance: instance,
		Code:     e.Code,
		Message:  e.Message,
		Field:    e.Field,
	}
}

// title is the code's standard message: the same for every occurrence of
// the code, as RFC 9457 asks of a title.
func title(c protocol.Code) string {
	if m := c.Message(); m != "" {
		return m
	}
	return http.StatusText(c.HTTPStatus())
}

// Err is the problem as a *protocol.Error.
func (p Problem) Err() *protocol.Error {
	msg := p.Detail
	if msg == "" {
		msg = p.Message
	}
	return &protocol.Error{Code: p.Code, Message: msg, Field: p.Field}
}

// ReadProblem reads an error answer of either API into its
// *protocol.Error; an answer without a known code becomes unavailable,
// naming the status.
func ReadProblem(resp *http.Response) *protocol.Error {
	var p Problem
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(b, &p) == nil && p.Code.Known() {
		return p.Err()
	}
	return protocol.Errorf(protocol.CodeUnavailable, "answered %s", resp.Status)
}

// AllowHeader is the Allow header of a 405 answer: the methods a path
// takes, sorted, with HEAD where GET is.
func AllowHeader(methods []string) string {
	seen := map[string]bool{}
	var out []string
	add := func(m string) {
		if !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	for _, m := range methods {
		add(m)
		if m == http.MethodGet {
			add(http.MethodHead)
		}
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}
