//go:build race

package hub_test

// raceDetector shrinks the long tests' workloads: the race detector makes
// them 5-10 times slower, and make test runs with it.
const raceDetector = true
