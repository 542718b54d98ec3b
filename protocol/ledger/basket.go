package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/punchcard/punchcard/protocol"
)

// Basket is one online order's redemptions (its rewards, gift card spend,
// points burned or earned, or one rollback), recorded all or nothing in one
// transaction together with whatever Recall and Remember read and write
// there: the API keeps its idempotency record in the same commit, so a
// crash never leaves half a basket or a basket without its record.
type Basket struct {
	Tenant      protocol.TenantID
	Redemptions []protocol.Redemption
	// Recall, when set, runs first inside the transaction. found stops
	// the basket with nothing recorded (RedeemBasket reports replayed); an
	// error refuses it.
	Recall func(ctx context.Context, tx *sql.Tx) (found bool, err error)
	// Remember, when set, runs last inside the transaction with the
	// redemptions as recorded; an error undoes the whole basket.
	Remember func(ctx context.Context, tx *sql.Tx, recorded []protocol.Redemption) error
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
