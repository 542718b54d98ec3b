//go:build race

package testutil

// Race is whether the race detector is on (go test -race): it makes the
// long property tests 5-10 times slower, and make test runs with it.
const Race = true
