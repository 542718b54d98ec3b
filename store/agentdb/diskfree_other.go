//go:build !(linux || darwin || freebsd)

package agentdb

// freeBytes cannot tell on this platform: the free-space check passes and
// SQLite's own disk-full error is the last line.
func freeBytes(string) (uint64, bool) { return 0, false }
