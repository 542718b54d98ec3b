package catalog

import (
	"slices"

	"github.com/punchcard/punchcard/protocol/rules"
	"github.com/punchcard/punchcard/protocol/snapshot"
)

// StoreExcludes reports whether a campaign's store conditions can never
// admit store st: an explicit store list without st's ID, or a region list
// without st's region. It mirrors the rules engine's exact-match check and
// says nothing about other conditions (days, customers), which the agent
// still evaluates, so a snapshot drops only what certainly cannot match
// (store/catalog). Two stores that exclude the same campaigns get the same
// snapshot but for its Store field, so hub/snapshots builds it once for
// both.
func StoreExcludes(e rules.Eligibility, st snapshot.Store) bool {
	if len(e.Stores) > 0 && !slices.Contains(e.Stores, st.ID) {
		return true
	}
	return len(e.Regions) > 0 && !slices.Contains(e.Regions, st.Region)
}
