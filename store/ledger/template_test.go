package ledger_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/punchcard/punchcard/store/ledger"
)

// A fresh ledger for each test is a copy of one migrated empty ledger,
// made once per test binary: migrating a new database (every file in
// migrations/) is most of what opening one costs, about 3 s of a test's
// time under -race on a loaded machine, against about 1 s for a copy. The
// copy is the same empty database: the migrations' backfills find nothing
// to fill.

var template struct {
	once sync.Once
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if template.dir != "" {
		os.RemoveAll(template.dir)
	}
	os.Exit(code)
}

// migratedCopy returns the path of a fresh, migrated, empty ledger
// database in tb's temporary directory.
func migratedCopy(tb testing.TB) string {
	tb.Helper()
	template.once.Do(func() {
		if template.dir, template.err = os.MkdirTemp("", "punchcard-ledger-template-"); template.err != nil {
			return
		}
		l, err := ledger.Open(context.Background(), filepath.Join(template.dir, "hub.db"), ledger.Options{Facts: &ledger.MemFacts{}})
		if err != nil {
			template.err = err
			return
		}
		template.err = l.Close()
	})
	if template.err != nil {
		tb.Fatal(template.err)
	}
	dst := filepath.Join(tb.TempDir(), "hub.db")
	for _, suffix := range []string{"", "-wal"} {
		if err := copyFile(filepath.Join(template.dir, "hub.db"+suffix), dst+suffix); err != nil && !(suffix != "" && os.IsNotExist(err)) {
			tb.Fatal(err)
		}
	}
	return dst
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
