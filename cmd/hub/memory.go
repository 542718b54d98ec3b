package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"
)

// DefaultGCPercent is -gc-percent's default when GOGC is not set: Go's
// own 100. With DefaultMemoryBudget it replaced 50, which at 10,000
// connected tills spent ~15% of the hub's CPU in the collector.
const DefaultGCPercent = 100

// DefaultMemoryBudget is -memory-limit's default when neither it nor
// GOMEMLIMIT is set: the hub's heap may grow by -gc-percent between
// collections until all its Go memory reaches this, and is collected
// more often from there on. At 10,000 connected tills (the design
// point: RSS <= 1 GB) the budget is what bounds the heap; below ~5,000
// it is -gc-percent. Unlike an explicit -memory-limit, the budget
// never makes the collector run more often than -gc-percent 50 would
// (FloorGCPercent): a hub whose live memory outgrows it grows past it
// rather than spend its CPU collecting (budgetGuard).
const DefaultMemoryBudget = "800MiB"

// FloorGCPercent is the least heap growth the default budget allows: the
// old default -gc-percent.
const FloorGCPercent = 50

// memoryFlags are -gc-percent and -memory-limit, applied by apply.
type memoryFlags struct {
	gcPercent   int    // -1 off; 0: leave Go's (GOGC)
	memoryLimit string // "": leave Go's (GOMEMLIMIT or none); "off": none
	budget      bool   // memoryLimit is DefaultMemoryBudget, not asked for
}

func (f *memoryFlags) defaults(getenv func(string) string) {
	if getenv("GOGC") == "" {
		f.gcPercent = DefaultGCPercent
	}
	if getenv("GOMEMLIMIT") == "" {
		f.memoryLimit, f.budget = DefaultMemoryBudget, true
	}
}

// check validates -memory-limit; it notes whether the default budget is
// still the one in force.
func (f *memoryFlags) check() error {
	if f.memoryLimit != DefaultMemoryBudget {
		f.budget = false
	}
	if f.memoryLimit == "" || f.memoryLimit == "off" {
		return nil
	}
	if _, err := parseBytes(f.memoryLimit); err != nil {
		return fmt.Errorf("-memory-limit: %w", err)
	}
	return nil
}

// apply sets the collector's target and the soft memory limit. With the
// default budget it also starts budgetGuard until ctx is done.
func (f *memoryFlags) apply(ctx context.Context, log *slog.Logger) error {
	if err := f.check(); err != nil {
		return err
	}
	if f.gcPercent != 0 {
		debug.SetGCPercent(f.gcPercent)
	}
	switch f.memoryLimit {
	case "":
		return nil
	case "off":
		debug.SetMemoryLimit(math.MaxInt64)
		return nil
	}
	n, _ := parseBytes(f.memoryLimit)
	debug.SetMemoryLimit(n)
	if f.budget {
		go budgetGuard(ctx, n, 2*time.Second, log)
	}
	return nil
}

// budgetGuard keeps the default budget from starving the hub: every
// tick (2 s) it raises the soft limit to what -gc-percent 50 would let the
// Go memory reach (floorLimit) when that is above the budget, and lowers
// it back as far as the budget when live memory falls.
func budgetGuard(ctx context.Context, budget int64, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	samples := memSamples()
	cur := budget
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		metrics.Read(samples)
		want := max(budget, floorLimit(readMem(samples)))
		// Move only by more than 1/16, so a steady hub does not reset
		// the limit every tick.
		if d := want - cur; d > cur/16 || -d > cur/16 || (want == budget && cur != budget) {
			if cur == budget && log != nil {
				log.Warn("hub memory: live memory outgrew the default budget; collecting no more often than -gc-percent 50 (set -memory-limit to choose)",
					slog.Int64("budget_bytes", budget), slog.Int64("limit_bytes", want))
			}
			debug.SetMemoryLimit(want)
			cur = want
		}
	}
}

// goMem is what floorLimit needs of the Go runtime's memory, bytes.
type goMem struct {
	live    uint64 // heap objects marked live by the last collection
	stacks  uint64 // goroutine stacks (scanned, so part of the GC's goal)
	globals uint64 // scannable globals
	other   uint64 // the limit's memory besides the heap: stacks, runtime metadata, ...
}

// floorLimit is the Go memory at which a collection would start under
// -gc-percent FloorGCPercent (Go's goal: live + (live + stacks + globals)
// × percent/100, plus what is not heap).
func floorLimit(m goMem) int64 {
	goal := m.live + (m.live+m.stacks+m.globals)*FloorGCPercent/100
	return int64(goal + m.other)
}

var memNames = []string{
	"/gc/heap/live:bytes",
	"/gc/scan/stack:bytes",
	"/gc/scan/globals:bytes",
	"/memory/classes/total:bytes",
	"/memory/classes/heap/released:bytes",
	"/memory/classes/heap/objects:bytes",
	"/memory/classes/heap/unused:bytes",
	"/memory/classes/heap/free:bytes",
}

func memSamples() []metrics.Sample {
	s := make([]metrics.Sample, len(memNames))
	for i, n := range memNames {
		s[i].Name = n
	}
	return s
}

func readMem(s []metrics.Sample) goMem {
	v := make([]uint64, len(s))
	for i := range s {
		if s[i].Value.Kind() == metrics.KindUint64 {
			v[i] = s[i].Value.Uint64()
		}
	}
	heap := v[5] + v[6] + v[7]
	var other uint64
	if total := v[3] - v[4]; total > heap {
		other = total - heap
	}
	return goMem{live: v[0], stacks: v[1], globals: v[2], other: other}
}

// parseBytes reads a size as GOMEMLIMIT writes it: a number with an
// optional B, KiB, MiB, GiB or TiB suffix.
func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a size such as 900MiB", s)
	}
	return n * mult, nil
}
