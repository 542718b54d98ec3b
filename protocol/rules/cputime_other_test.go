//go:build !linux

package rules_test

import "time"

var start = time.Now()

// threadCPU falls back to the wall clock where the thread's CPU time is
// not at hand.
func threadCPU() time.Duration { return time.Since(start) }
