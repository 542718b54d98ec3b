package hub_test

import (
	"os"
	"sync"
	"testing"
)

// The online benchmarks keep their hubs and baselines open across
// benchmarks of one process (a 1M-row ledger takes minutes to fill), so
// their directories cannot be a testing.TB's TempDir: TestMain removes
// them when every test and benchmark has run. (They were left in /tmp,
// ~60 MB a run.)
var (
	benchDirsMu sync.Mutex
	benchDirs   []string
)

// benchTempDir makes a directory that TestMain removes at the end.
func benchTempDir(pattern string) (string, error) {
	dir, err := os.MkdirTemp("", pattern)
	if err == nil {
		benchDirsMu.Lock()
		benchDirs = append(benchDirs, dir)
		benchDirsMu.Unlock()
	}
	return dir, err
}

func TestMain(m *testing.M) {
	code := m.Run()
	benchDirsMu.Lock()
	for _, d := range benchDirs {
		os.RemoveAll(d)
	}
	benchDirsMu.Unlock()
	os.Exit(code)
}
