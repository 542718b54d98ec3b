package hub_test

import (
	"go/build"
	"path/filepath"
	"strings"
	"testing"
)

// TestImportGraph pins issue 11's import graph: the hub's services and its
// HTTP adapter name storage only through their own interfaces and the
// types of protocol/catalog and protocol/ledger, so that another store
// could be plugged in where hub.go plugs in the SQLite ones; and nothing
// under store/ imports agent/ or hub/.
func TestImportGraph(t *testing.T) {
	const mod = "github.com/punchcard/punchcard/"
	for _, tc := range []struct {
		dir    string
		banned []string
	}{
		{"manage", []string{"store/"}},
		{"snapshots", []string{"store/"}},
		{"online", []string{"store/"}},
		{"allowance", []string{"store/"}},
		{"api", []string{"store/"}},
		{"../store", []string{"agent/", "hub/"}},
		{"../store/catalog", []string{"agent/", "hub/", "store/ledger"}},
		{"../store/ledger", []string{"agent/", "hub/", "store/catalog"}},
		{"../store/agentdb", []string{"agent/", "hub/"}},
		{"../protocol/catalog", []string{"store/", "hub/", "agent/"}},
		{"../protocol/ledger", []string{"store/", "hub/", "agent/"}},
	} {
		p, err := build.ImportDir(filepath.FromSlash(tc.dir), 0)
		if err != nil {
			t.Fatalf("%s: %v", tc.dir, err)
		}
		for _, imp := range p.Imports {
			for _, b := range tc.banned {
				if strings.HasPrefix(imp, mod+b) {
					t.Errorf("%s imports %s", tc.dir, imp)
				}
			}
		}
	}
}
