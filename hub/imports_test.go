package hub_test

import (
	"go/build"
	"path/filepath"
	"strings"
	"testing"
)

// TestImportGraph pins issue 11's import graph: the hub's services (and
// the MQTT ingest) and its HTTP adapter name storage only through their
// own interfaces and the types of protocol/catalog and protocol/ledger,
// so that another store could be plugged in where hub.go plugs in the
// SQLite ones; and nothing under store/ imports agent/ or hub/. Neither
// the services nor the type packages their interfaces name import
// database/sql, so no *sql.Tx (or any database/sql type) can be in an
// interface a service consumes: a store owns its transactions. Test files
// are not checked (build.ImportDir's Imports leaves them out).
func TestImportGraph(t *testing.T) {
	const mod = "github.com/punchcard/punchcard/"
	const sqlPkg = "database/sql"
	for _, tc := range []struct {
		dir    string
		banned []string
	}{
		{"manage", []string{"store/", sqlPkg}},
		{"snapshots", []string{"store/", sqlPkg}},
		{"online", []string{"store/", sqlPkg}},
		{"allowance", []string{"store/", sqlPkg}},
		{"distribute", []string{"store/", sqlPkg}},
		{"ingest", []string{"store/", sqlPkg}},
		{"reports", []string{"store/", sqlPkg}},
		{"api", []string{"store/", sqlPkg}},
		{"../store", []string{"agent/", "hub/"}},
		{"../store/catalog", []string{"agent/", "hub/", "store/ledger"}},
		{"../store/ledger", []string{"agent/", "hub/", "store/catalog"}},
		{"../store/agentdb", []string{"agent/", "hub/"}},
		{"../protocol/catalog", []string{"store/", "hub/", "agent/", sqlPkg}},
		{"../protocol/ledger", []string{"store/", "hub/", "agent/", sqlPkg}},
		{"../protocol/decide", []string{"store/", "hub/", "agent/", sqlPkg}},
	} {
		p, err := build.ImportDir(filepath.FromSlash(tc.dir), 0)
		if err != nil {
			t.Fatalf("%s: %v", tc.dir, err)
		}
		for _, imp := range p.Imports {
			for _, b := range tc.banned {
				if imp == b || strings.HasPrefix(imp, mod+b) {
					t.Errorf("%s imports %s", tc.dir, imp)
				}
			}
		}
	}
}
