package ledger

import (
	pledger "github.com/punchcard/punchcard/protocol/ledger"
)

// The ledger's types that the hub's services name live in
// protocol/ledger, where any store can implement the services' interfaces
// over them; these aliases keep this package's own code and tests
// reading as before.
type (
	CampaignBalance = pledger.CampaignBalance
	ConflictKind    = pledger.ConflictKind
	Conflict        = pledger.Conflict
	Quarantined     = pledger.Quarantined
	CustomerEntry   = pledger.CustomerEntry
	Report          = pledger.Report
	Diff            = pledger.Diff
	Basket          = pledger.Basket
	ItemError       = pledger.ItemError
	FiguresQuery    = pledger.FiguresQuery
	Figures         = pledger.Figures
	Batch           = pledger.Batch
	Result          = pledger.Result
	StateRecord     = pledger.StateRecord
	StateResult     = pledger.StateResult
)

// Conflict kinds (pledger.ConflictKind; ConflictEffectMismatch is in
// rederive.go).
const (
	ConflictCodeReused       = pledger.ConflictCodeReused
	ConflictGiftCardOverdraw = pledger.ConflictGiftCardOverdraw
	ConflictCustomerLimit    = pledger.ConflictCustomerLimit
	ConflictAfterKillSwitch  = pledger.ConflictAfterKillSwitch
	ConflictAllowanceOverrun = pledger.ConflictAllowanceOverrun
	ConflictPointsOverdrawn  = pledger.ConflictPointsOverdrawn
	ConflictFutureTime       = pledger.ConflictFutureTime
)

// ErrQueueFull refuses a basket when the online writer's queue is full
// (pledger.ErrQueueFull).
var ErrQueueFull = pledger.ErrQueueFull

// IsBusy reports a busy database (pledger.IsBusy).
func IsBusy(err error) bool { return pledger.IsBusy(err) }
