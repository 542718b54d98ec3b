package protocol

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
)

// Code is a stable reason code. Codes are part of the API: POS software and
// online channels branch on them, so a code is never renamed or reused.
type Code string

// Error is the one error type a user ever sees. Message is a single line a
// cashier can read aloud; Field, when set, is the path of the offending input
// field (for example "rules[2].reward.percent").
type Error struct {
	Code    Code   `json:"code" cbor:"1,keyasint"`
	Message string `json:"message" cbor:"2,keyasint"`
	Field   string `json:"field,omitempty" cbor:"3,keyasint,omitempty"`
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s (%s)", e.Code, e.Message, e.Field)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Is makes errors.Is match any *Error with the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Errorf returns an *Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// NewError returns an *Error carrying the code's standard cashier message.
func NewError(code Code) *Error { return &Error{Code: code, Message: code.Message()} }

// FieldError returns a CodeInvalidInput error naming the field path.
func FieldError(field, format string, args ...any) *Error {
	return &Error{Code: CodeInvalidInput, Message: fmt.Sprintf(format, args...), Field: field}
}

// WithField names the request field a public error is about: a copy of
// err's *Error with Field set. An internal error is returned unchanged.
func WithField(field string, err error) error {
	pe := PublicError(err)
	if pe.Code == CodeInternal {
		return err
	}
	e := *pe
	e.Field = field
	return &e
}

// ErrorCode returns the code of err, CodeInternal when err carries none, and
// "" for a nil error.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// PublicError turns any error into one safe to show: an *Error is returned
// as is, anything else becomes CodeInternal with a generic message (the
// caller logs the original once).
func PublicError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return NewError(CodeInternal)
}

// The reason codes. Grouped by area; the table below gives each one its
// HTTP status and its default one-line message.
const (
	// General.
	CodeInternal           Code = "internal"
	CodeInvalidInput       Code = "invalid_input"
	CodeNotFound           Code = "not_found"
	CodeConflict           Code = "conflict"
	CodeUnauthenticated    Code = "unauthenticated"
	CodeForbidden          Code = "forbidden"
	CodeRateLimited        Code = "rate_limited"
	CodeUnsupportedVersion Code = "unsupported_version"
	CodeCurrencyMismatch   Code = "currency_mismatch"
	CodeUnavailable        Code = "unavailable"
	CodeMethodNotAllowed   Code = "method_not_allowed" // with an Allow header

	// The agent's POS API: who may drive it (agent/posauth.go).
	CodePOSTokenInvalid      Code = "pos_token_invalid"
	CodeBrowserRefused       Code = "browser_request_refused"
	CodeHostNotAllowed       Code = "host_not_allowed"
	CodeUnsupportedMediaType Code = "unsupported_media_type"

	// Reward token text and structure.
	CodeTokenEmpty       Code = "token_empty"
	CodeTokenPrefix      Code = "token_bad_prefix"
	CodeTokenVersion     Code = "token_unknown_version"
	CodeTokenAlphabet    Code = "token_bad_character"
	CodeTokenTruncated   Code = "token_truncated"
	CodeTokenChecksum    Code = "token_mistyped"
	CodeTokenOversized   Code = "token_oversized"
	CodeTokenMalformed   Code = "token_malformed"
	CodeTokenTooDeep     Code = "token_too_deep"
	CodeBadSignature     Code = "bad_signature"
	CodeUnknownKey       Code = "unknown_key"
	CodeWrongTenant      Code = "wrong_tenant"
	CodeBadAlgorithm     Code = "bad_algorithm"
	CodeTokenExpired     Code = "token_expired"
	CodeTokenNotYet      Code = "token_not_yet_valid"
	CodeTokenRevoked     Code = "token_revoked"
	CodeMessageTooLarge  Code = "message_too_large"
	CodeMessageMalformed Code = "message_malformed"

	// Codes and campaigns.
	CodeUnknownCode       Code = "code_unknown"
	CodeCodeUsed          Code = "code_already_used"
	CodeCodeRevoked       Code = "code_revoked"
	CodeCodeExpired       Code = "code_expired"
	CodeCodeNotYet        Code = "code_not_yet_valid"
	CodeCampaignStopped   Code = "campaign_stopped"
	CodeCampaignUnknown   Code = "campaign_unknown"
	CodeNotEligible       Code = "not_eligible"
	CodeMinimumNotMet     Code = "minimum_not_met"
	CodeNoMatchingItems   Code = "no_matching_items"
	CodeWrongStore        Code = "wrong_store"
	CodeOutsideHours      Code = "outside_hours"
	CodeCustomerRequired  Code = "customer_required"
	CodeCustomerLimit     Code = "customer_limit_reached"
	CodeNotCombinable     Code = "not_combinable"
	CodeTooManyRedeemable Code = "too_many_redeemables"
	CodeNoEffect          Code = "no_effect"
	CodeInsufficientFunds Code = "insufficient_balance"
	CodeInsufficientPts   Code = "insufficient_points"

	// Budgets and offline operation.
	CodeBudgetExhausted    Code = "budget_exhausted"
	CodeAllowanceExhausted Code = "allowance_exhausted"
	CodeOfflineCap         Code = "offline_limit_reached"
	CodeNeedsHub           Code = "needs_hub"
	CodeSnapshotStale      Code = "snapshot_stale"
	CodeNeverSynced        Code = "never_synced"
	CodeAlreadyRolledBack  Code = "already_rolled_back"
	CodeIdempotencyReuse   Code = "idempotency_key_reused"
	CodeStorageFull        Code = "storage_full"
)

// CodeStatementCustomer: a points statement (protocol/token.Statement) of
// another customer than the one buying.
const CodeStatementCustomer Code = "statement_wrong_customer"

func init() {
	codes[CodeStatementCustomer] = codeInfo{http.StatusUnprocessableEntity, "This points statement belongs to another customer."}
}

type codeInfo struct {
	status  int
	message string
}

// codes maps every code to its HTTP status and cashier message. This is the
// one table that maps codes to HTTP statuses; both the hub's and the agent's
// HTTP layers use it through Code.HTTPStatus.
var codes = map[Code]codeInfo{
	CodeInternal:           {http.StatusInternalServerError, "Something went wrong on our side. Please try again."},
	CodeInvalidInput:       {http.StatusBadRequest, "The request is not valid."},
	CodeNotFound:           {http.StatusNotFound, "Not found."},
	CodeConflict:           {http.StatusConflict, "This conflicts with the current state."},
	CodeUnauthenticated:    {http.StatusUnauthorized, "Sign-in is missing or not valid."},
	CodeForbidden:          {http.StatusForbidden, "You are not allowed to do this."},
	CodeRateLimited:        {http.StatusTooManyRequests, "Too many requests. Please wait a moment."},
	CodeUnsupportedVersion: {http.StatusBadRequest, "This version is not supported. Please update."},
	CodeCurrencyMismatch:   {http.StatusUnprocessableEntity, "This reward is in a different currency."},
	CodeUnavailable:        {http.StatusServiceUnavailable, "The service is not available right now. Please try again."},
	CodeMethodNotAllowed:   {http.StatusMethodNotAllowed, "This method is not allowed here; the Allow header lists those that are."},

	CodePOSTokenInvalid:      {http.StatusUnauthorized, "The POS API access token is missing or wrong (see the agent's pos-token file)."},
	CodeBrowserRefused:       {http.StatusForbidden, "The POS API does not answer web pages; only the POS software may call it."},
	CodeHostNotAllowed:       {http.StatusForbidden, "The POS API answers only on a loopback address, localhost or a configured host name."},
	CodeUnsupportedMediaType: {http.StatusUnsupportedMediaType, "The request body must be JSON (Content-Type: application/json)."},

	CodeTokenEmpty:       {http.StatusBadRequest, "Nothing was scanned. Please scan again."},
	CodeTokenPrefix:      {http.StatusUnprocessableEntity, "This is not a Punchcard code."},
	CodeTokenVersion:     {http.StatusUnprocessableEntity, "This code is from a newer version. Please update the till."},
	CodeTokenAlphabet:    {http.StatusUnprocessableEntity, "The code contains a character that does not belong. Please scan again."},
	CodeTokenTruncated:   {http.StatusUnprocessableEntity, "Only part of the code was read. Please scan again."},
	CodeTokenChecksum:    {http.StatusUnprocessableEntity, "The code was mistyped or misread. Please scan again."},
	CodeTokenOversized:   {http.StatusUnprocessableEntity, "This code is too long to be genuine."},
	CodeTokenMalformed:   {http.StatusUnprocessableEntity, "This code is damaged and cannot be read."},
	CodeTokenTooDeep:     {http.StatusUnprocessableEntity, "This code is damaged and cannot be read."},
	CodeBadSignature:     {http.StatusUnprocessableEntity, "This code is not genuine or has been altered."},
	CodeUnknownKey:       {http.StatusUnprocessableEntity, "This code was signed with a key the till does not know yet."},
	CodeWrongTenant:      {http.StatusUnprocessableEntity, "This code belongs to another brand."},
	CodeBadAlgorithm:     {http.StatusUnprocessableEntity, "This code is not genuine."},
	CodeTokenExpired:     {http.StatusUnprocessableEntity, "This code has expired."},
	CodeTokenNotYet:      {http.StatusUnprocessableEntity, "This code is not valid yet."},
	CodeTokenRevoked:     {http.StatusUnprocessableEntity, "This code has been cancelled."},
	CodeMessageTooLarge:  {http.StatusRequestEntityTooLarge, "The message is too large."},
	CodeMessageMalformed: {http.StatusBadRequest, "The message is damaged and cannot be read."},

	CodeUnknownCode:       {http.StatusUnprocessableEntity, "This code is not known."},
	CodeCodeUsed:          {http.StatusConflict, "This code has already been used."},
	CodeCodeRevoked:       {http.StatusUnprocessableEntity, "This code has been cancelled."},
	CodeCodeExpired:       {http.StatusUnprocessableEntity, "This code has expired."},
	CodeCodeNotYet:        {http.StatusUnprocessableEntity, "This code is not valid yet."},
	CodeCampaignStopped:   {http.StatusUnprocessableEntity, "This promotion has been stopped."},
	CodeCampaignUnknown:   {http.StatusUnprocessableEntity, "This promotion is not known."},
	CodeNotEligible:       {http.StatusUnprocessableEntity, "This customer is not eligible for this reward."},
	CodeMinimumNotMet:     {http.StatusUnprocessableEntity, "The basket does not reach the minimum for this reward."},
	CodeNoMatchingItems:   {http.StatusUnprocessableEntity, "No item in the basket qualifies for this reward."},
	CodeWrongStore:        {http.StatusUnprocessableEntity, "This reward is not valid in this store."},
	CodeOutsideHours:      {http.StatusUnprocessableEntity, "This reward is not valid at this time or day."},
	CodeCustomerRequired:  {http.StatusUnprocessableEntity, "This reward needs the customer's card or account."},
	CodeCustomerLimit:     {http.StatusUnprocessableEntity, "This customer has already used this reward the maximum number of times."},
	CodeNotCombinable:     {http.StatusUnprocessableEntity, "This reward cannot be combined with another one on this basket."},
	CodeTooManyRedeemable: {http.StatusUnprocessableEntity, "Too many rewards on one basket."},
	CodeNoEffect:          {http.StatusUnprocessableEntity, "This reward gives nothing on this basket."},
	CodeInsufficientFunds: {http.StatusUnprocessableEntity, "The gift card balance is too low."},
	CodeInsufficientPts:   {http.StatusUnprocessableEntity, "The customer does not have enough points."},

	CodeBudgetExhausted:    {http.StatusConflict, "This promotion has run out."},
	CodeAllowanceExhausted: {http.StatusConflict, "This till has used its share of the promotion. Try again when online."},
	CodeOfflineCap:         {http.StatusConflict, "This till's offline limit is reached. Try again when online."},
	CodeNeedsHub:           {http.StatusServiceUnavailable, "This reward needs a connection to head office. Try again when online."},
	CodeSnapshotStale:      {http.StatusServiceUnavailable, "The till has been offline too long to accept rewards. Try again when online."},
	CodeNeverSynced:        {http.StatusServiceUnavailable, "The till has never been connected and has no rewards yet."},
	CodeAlreadyRolledBack:  {http.StatusConflict, "This redemption has already been cancelled."},
	CodeIdempotencyReuse:   {http.StatusUnprocessableEntity, "This transaction id was already used for a different request."},
	CodeStorageFull:        {http.StatusInsufficientStorage, "The till's disk is nearly full: it cannot record more sales. Call support."},
}

// HTTPStatus is the HTTP status for the code; unknown codes map to 500.
func (c Code) HTTPStatus() int {
	if i, ok := codes[c]; ok {
		return i.status
	}
	return http.StatusInternalServerError
}

// Message is the code's default one-line cashier message.
func (c Code) Message() string {
	if i, ok := codes[c]; ok {
		return i.message
	}
	return codes[CodeInternal].message
}

// Known reports whether c is a defined code.
func (c Code) Known() bool { _, ok := codes[c]; return ok }

// AllCodes lists every defined code, sorted, for documentation and tests.
func AllCodes() []Code {
	out := make([]Code, 0, len(codes))
	for c := range codes {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
