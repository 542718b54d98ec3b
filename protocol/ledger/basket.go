package ledger

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// Basket is one online order's redemptions (its rewards, gift card spend,
// points burned or earned, or one rollback), recorded all or nothing in one
// unit of work (one transaction of the store).
type Basket struct {
	Tenant      protocol.TenantID
	Redemptions []protocol.Redemption
}

// Once makes a basket idempotent under a key (RedeemOnce): the store looks
// the key up and records the basket's answer in the basket's own unit of
// work, so a crash never leaves half a basket or a basket without its
// record, and of concurrent baskets under one key exactly one is recorded
// (the others get its answer). The store owns the transaction; the
// service never sees it.
type Once struct {
	Key string
	// Request is the request's hash: the key met with another request is
	// refused with protocol.CodeIdempotencyReuse.
	Request []byte
	// At is when the record is made.
	At time.Time
	// Answer encodes the answer recorded with the basket from its
	// redemptions as recorded. It runs inside the store's unit of work:
	// it must neither block nor call the store; an error undoes the
	// basket. nil: a lookup only (a refused request asks whether its key
	// was answered meanwhile); the basket must then be empty.
	Answer func(recorded []protocol.Redemption) (status int, body []byte, err error)
}

// Outcome is what RedeemOnce did.
type Outcome struct {
	// Recorded are the redemptions as recorded (none when Replayed).
	Recorded []protocol.Redemption
	// Replayed: the key was recorded before (by an earlier or a
	// concurrent request); nothing of this basket was recorded, and
	// Status and Body are the answer recorded then.
	Replayed bool
	Status   int
	Body     []byte
}

// ItemError is the refusal of one redemption of a basket, by its index in
// Basket.Redemptions; nothing of the basket was recorded.
type ItemError struct {
	Index int
	Err   error
}

func (e *ItemError) Error() string { return fmt.Sprintf("redemption %d: %v", e.Index, e.Err) }

func (e *ItemError) Unwrap() error { return e.Err }

// ErrQueueFull refuses a basket when the online writer's queue is full;
// the caller should retry after a moment (HTTP 503 with Retry-After).
var ErrQueueFull = &protocol.Error{Code: protocol.CodeUnavailable, Message: "The hub is busy. Please try again in a moment."}

// ErrBusy is what a store wraps when another writer holds the database
// past every busy timeout; IsBusy also knows the SQLite store's own texts.
var ErrBusy = errors.New("ledger: database busy")

// IsBusy reports a store error that is another writer holding the database
// past every busy timeout (SQLite's "database is locked", SQLITE_BUSY, or
// ErrBusy): the API answers it 503 with Retry-After, never as an internal
// error.
func IsBusy(err error) bool {
	return err != nil && (errors.Is(err, ErrBusy) || strings.Contains(err.Error(), "SQLITE_BUSY") || strings.Contains(err.Error(), "database is locked"))
}
