package hub

import (
	"log/slog"

	"github.com/punchcard/punchcard/hub/distribute"
)

// newDistribute makes the distribution service (hub/distribute) over the
// catalog and the ledger's segment memberships; its new codes are
// announced to the tills like any catalog change.
func (h *Hub) newDistribute(log *slog.Logger) *distribute.Service {
	d := distribute.New(h.Catalog, h.Ledger)
	d.OnChange, d.Logger = h.announce, log
	return d
}

// runDistributor makes the distributions' codes in the background until
// Close, resuming those a previous run left unfinished.
func (h *Hub) runDistributor() {
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		h.Distribute.Run(h.ctx)
	}()
}
