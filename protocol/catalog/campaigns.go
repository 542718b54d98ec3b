package catalog

import (
	"time"

	"github.com/punchcard/punchcard/protocol/rules"
)

// Campaign is a stored campaign: the rules document plus what the catalog
// keeps about it.
type Campaign struct {
	Rules     rules.Campaign `json:"rules"`
	Revision  uint64         `json:"revision"` // 1 on create, +1 on every update or status change
	Version   uint64         `json:"version"`  // tenant catalog version of the last change
	StoppedAt time.Time      `json:"stopped_at,omitzero"`
	CreatedAt time.Time      `json:"created_at"`
	UpdatedAt time.Time      `json:"updated_at"`
}
