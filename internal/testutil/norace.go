//go:build !race

package testutil

// Race is whether the race detector is on (go test -race).
const Race = false
