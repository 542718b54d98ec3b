package main

import "testing"

// TestMemoryFlags: -gc-percent defaults to 50 unless GOGC is set;
// -memory-limit takes GOMEMLIMIT's sizes and refuses anything else.
func TestMemoryFlags(t *testing.T) {
	noenv := func(string) string { return "" }
	m := &Main{Stdout: nil, Stderr: nil}
	m.Stderr = discard{}
	if err := m.ParseFlags(nil, noenv); err != nil {
		t.Fatal(err)
	}
	if m.memory.gcPercent != DefaultGCPercent || m.memory.memoryLimit != "" {
		t.Errorf("defaults: %+v", m.memory)
	}
	m = &Main{Stderr: discard{}}
	if err := m.ParseFlags(nil, func(k string) string { return map[string]string{"GOGC": "200"}[k] }); err != nil {
		t.Fatal(err)
	}
	if m.memory.gcPercent != 0 {
		t.Errorf("with GOGC set: gc percent %d, want 0 (Go's)", m.memory.gcPercent)
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

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
