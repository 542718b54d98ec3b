//go:build linux

package catalog_test

import "syscall"

// cpuTime is the process's user+system CPU time in nanoseconds: the
// benchmarks report it per op, which a loaded machine distorts far less
// than wall time.
func cpuTime() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
