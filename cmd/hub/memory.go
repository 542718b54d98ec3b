package main

import (
	"fmt"
	"runtime/debug"
	"strconv"
	"strings"
)

// DefaultGCPercent is -gc-percent's default when GOGC is not set: the
// heap may grow to 1.5× what is live between collections rather than
// Go's 2×. Most of a hub's heap is per connected till (the broker's
// client state); at 2,000 tills it took the RSS per till from ~77 to
// ~61 KB for about twice the (short, concurrent) collections.
const DefaultGCPercent = 50

// memoryFlags are -gc-percent and -memory-limit, applied by apply.
type memoryFlags struct {
	gcPercent   int    // -1 off; 0: leave Go's (GOGC)
	memoryLimit string // "": leave Go's (GOMEMLIMIT or none)
}

func (f *memoryFlags) defaults(getenv func(string) string) {
	if getenv("GOGC") == "" {
		f.gcPercent = DefaultGCPercent
	}
}

// apply sets the collector's target and the soft memory limit.
func (f *memoryFlags) apply() error {
	if f.gcPercent != 0 {
		debug.SetGCPercent(f.gcPercent)
	}
	if f.memoryLimit == "" {
		return nil
	}
	n, err := parseBytes(f.memoryLimit)
	if err != nil {
		return fmt.Errorf("-memory-limit: %w", err)
	}
	debug.SetMemoryLimit(n)
	return nil
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
