package main

import (
	"context"
	"runtime/debug"
	"testing"
	"time"
)

// TestMemoryFlags: -gc-percent defaults to 100 unless GOGC is set;
// -memory-limit defaults to the budget unless GOMEMLIMIT is set, takes
// GOMEMLIMIT's sizes or off, and refuses anything else.
func TestMemoryFlags(t *testing.T) {
	noenv := func(string) string { return "" }
	m := &Main{Stdout: nil, Stderr: nil}
	m.Stderr = discard{}
	if err := m.ParseFlags(nil, noenv); err != nil {
		t.Fatal(err)
	}
	if m.memory.gcPercent != DefaultGCPercent || m.memory.memoryLimit != DefaultMemoryBudget || !m.memory.budget {
		t.Errorf("defaults: %+v", m.memory)
	}
	m = &Main{Stderr: discard{}}
	if err := m.ParseFlags(nil, func(k string) string { return map[string]string{"GOGC": "200", "GOMEMLIMIT": "2GiB"}[k] }); err != nil {
		t.Fatal(err)
	}
	if m.memory.gcPercent != 0 || m.memory.memoryLimit != "" || m.memory.budget {
		t.Errorf("with GOGC and GOMEMLIMIT set: %+v, want Go's", m.memory)
	}
	for _, args := range [][]string{{"-memory-limit", "900MiB"}, {"-memory-limit", "off"}, {"-memory-limit", DefaultMemoryBudget}} {
		m = &Main{Stderr: discard{}}
		if err := m.ParseFlags(args, noenv); err != nil || m.memory.budget || m.memory.memoryLimit != args[1] {
			t.Errorf("%v: %+v, %v", args, m.memory, err)
		}
	}
	for in, want := range map[string]int64{"900MiB": 900 << 20, "1GiB": 1 << 30, "4096": 4096, "12KiB": 12 << 10, "7B": 7} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"-1", "0", "lots", "1.5GiB", "9999999999TiB"} {
		m = &Main{Stderr: discard{}}
		if err := m.ParseFlags([]string{"-memory-limit", bad}, noenv); err == nil {
			t.Errorf("-memory-limit %q accepted", bad)
		}
	}
}

// TestFloorLimit: the floor is Go's heap goal at -gc-percent 50 plus the
// memory that is not heap.
func TestFloorLimit(t *testing.T) {
	const mb = 1 << 20
	got := floorLimit(goMem{live: 200 * mb, stacks: 260 * mb, globals: 4 * mb, other: 300 * mb})
	if want := int64((200 + 232 + 300) * mb); got != want {
		t.Errorf("floorLimit = %d MiB, want %d", got/mb, want/mb)
	}
}

// TestBudgetGuard: a budget below what the process already holds live is
// raised to the floor, not left to make the collector run back to back.
func TestBudgetGuard(t *testing.T) {
	old := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(old)
	keep := make([]byte, 64<<20) // live: the floor is above 64 MiB
	const budget = 1 << 20
	debug.SetMemoryLimit(budget)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { budgetGuard(ctx, budget, time.Millisecond, nil); close(done) }()
	for debug.SetMemoryLimit(-1) <= 64<<20 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	keep[0] = 1
	if got := debug.SetMemoryLimit(-1); got > 1<<30 {
		t.Errorf("limit %d MiB for 64 MiB live", got>>20)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
