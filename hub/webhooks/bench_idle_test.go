//go:build unix

package webhooks_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/punchcard/punchcard/hub/webhooks"
	"github.com/punchcard/punchcard/store/ledger"
)

// cpuTime is the process's user and system CPU time so far.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkIdleCPU: the CPU the webhook service spends with nothing to
// deliver (River's fetch poll, its listener's read of river_notification,
// its leadership and maintenance, the relay's fallback poll), one second
// of idling per iteration, reported as CPU ms per second. The same-run
// baseline is service=none (the process with the ledger open and no
// webhook service); riverwake=off is the configuration before River's
// fetch was woken (its poll every 50 ms); riverwake=on the default (poll
// every DefaultPollInterval). The relay is woken by commits in both (the
// hub's default: its poll every DefaultWakeRelayInterval).
func BenchmarkIdleCPU(b *testing.B) {
	for _, c := range []struct {
		name          string
		service, wake bool
	}{{"service=none", false, false}, {"riverwake=off", true, false}, {"riverwake=on", true, true}} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			dir := b.TempDir()
			wake, signal := webhooks.NewWake()
			l, err := ledger.Open(ctx, filepath.Join(dir, "hub.db"), ledger.Options{Facts: &ledger.MemFacts{}, OnEvents: signal})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			if c.service {
				s, err := webhooks.Open(ctx, filepath.Join(dir, "webhooks.db"), webhooks.Options{Sources: map[string]webhooks.Source{"ledger": l},
					Wake: wake, NoRiverWake: !c.wake, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
				if err != nil {
					b.Fatal(err)
				}
				if err := s.Start(ctx); err != nil {
					b.Fatal(err)
				}
				defer s.Close(ctx)
			}
			time.Sleep(time.Second) // past River's start (migrations, election)
			b.ResetTimer()
			t0, c0 := time.Now(), cpuTime(b)
			for range b.N {
				time.Sleep(time.Second) // the idling measured
			}
			cpu, wall := cpuTime(b)-c0, time.Since(t0)
			b.ReportMetric(float64(cpu.Microseconds())/1000/wall.Seconds(), "cpu-ms/s")
		})
	}
}
