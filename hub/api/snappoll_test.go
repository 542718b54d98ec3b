package api_test

import (
	"context"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// BenchmarkSnapshotPoll is one till's snapshot poll as the fleet makes it
// (GET /v1/agent/snapshot?since=V&uses=U, the HTTP API in-process) while
// a code is used between polls, so the tenant's code-use position has
// always moved: the hub's cost per poll in a busy chain (10,000 tills
// poll ~333 times a second). Each op records one code use (the same in
// every build of the hub) and answers one poll; poll-cpu-µs is the
// process CPU time (user+sys) spent in the polls alone, less noisy than
// wall time on a shared machine.
func BenchmarkSnapshotPoll(b *testing.B) {
	e := newEnv(b)
	keys, seq := useCodes(b, e, 1)
	full, _ := e.snapshot(b, "")
	q := "?since=" + strconv.FormatUint(full.Version, 10) + "&uses=" + strconv.FormatUint(full.Uses, 10)
	var size int
	var cpu time.Duration
	for b.Loop() {
		if _, _, err := e.led.ApplyBatch(context.Background(), "acme", "till-1", []protocol.Redemption{useOf(seq, keys[0])}); err != nil {
			b.Fatal(err)
		}
		seq++
		c0 := cpuTime()
		_, size = e.snapshot(b, q)
		cpu += cpuTime() - c0
	}
	b.ReportMetric(float64(size), "bytes")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "poll-cpu-µs")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
