package ledger

import (
	"fmt"
)

// Report is what Verify found.
type Report struct {
	Entries int64  // journal entries read
	Rows    int    // balance rows compared
	Diffs   []Diff // empty when every balance equals its recomputation
}

// OK reports whether every balance matched.
func (r Report) OK() bool { return len(r.Diffs) == 0 }

// Diff is one balance that differs from the journal's recomputation.
type Diff struct {
	Table   string // e.g. "ledger_campaigns"
	Key     string // the row's key columns joined by "/"
	Column  string
	Journal int64 // recomputed from the journal
	Balance int64 // stored
}

func (d Diff) String() string {
	return fmt.Sprintf("%s[%s].%s: balance %d, journal says %d", d.Table, d.Key, d.Column, d.Balance, d.Journal)
}
