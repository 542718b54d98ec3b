package hub

import (
	"github.com/punchcard/punchcard/store/catalog"
	"github.com/punchcard/punchcard/store/ledger"
)

// The catalog answers the ledger's questions (campaign and code facts, the
// rules as of a version) without either store importing the other: the
// interfaces are the ledger's, the types they speak are protocol's, and the
// hub plugs one into the other in Open.
var (
	_ ledger.Facts = (*catalog.Catalog)(nil)
	_ ledger.Rules = (*catalog.Catalog)(nil)
)
