package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestFaultClock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "clock")
	base := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	now := base
	f := newFaultClock(path)
	f.base = func() time.Time { return now }
	for _, tt := range []struct {
		name    string
		content string // "" = no file
		want    time.Duration
	}{
		{name: "OKMissing", want: 0},
		{name: "OKAhead", content: "+1h\n", want: time.Hour},
		{name: "OKBehind", content: "-1h", want: -time.Hour},
		{name: "ErrGarbage", content: "soon", want: 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			os.Remove(path)
			if tt.content != "" {
				if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			now = now.Add(faultClockPoll)
			if got := f.Now().Sub(now); got != tt.want {
				t.Fatalf("offset %v, want %v", got, tt.want)
			}
		})
	}
}
