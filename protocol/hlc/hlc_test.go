package hlc_test

import (
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol/hlc"
)

type fakeWall struct{ t time.Time }

func (f *fakeWall) now() time.Time { return f.t }

func TestClock(t *testing.T) {
	base := time.UnixMilli(1_800_000_000_000)
	t.Run("OK", func(t *testing.T) {
		w := &fakeWall{t: base}
		c := hlc.New(0, w.now)
		a := c.Now()
		if got, want := a.Millis(), base.UnixMilli(); got != want {
			t.Fatalf("millis = %d, want %d", got, want)
		}
		b := c.Now()
		if b <= a || b.Logical() != 1 {
			t.Fatalf("same ms: %d then %d (logical %d)", a, b, b.Logical())
		}
		w.t = base.Add(5 * time.Millisecond)
		if got := c.Now(); got.Logical() != 0 || got.Millis() != base.UnixMilli()+5 {
			t.Fatalf("advanced wall: %d/%d", got.Millis(), got.Logical())
		}
	})
	t.Run("WallClockBack", func(t *testing.T) {
		w := &fakeWall{t: base}
		c := hlc.New(0, w.now)
		a := c.Now()
		w.t = base.Add(-time.Hour)
		b := c.Now()
		if b <= a {
			t.Fatalf("clock went back: %d then %d", a, b)
		}
		if got, want := b.Millis(), a.Millis(); got != want {
			t.Fatalf("millis = %d, want %d (held)", got, want)
		}
	})
	t.Run("Restart", func(t *testing.T) {
		w := &fakeWall{t: base.Add(-24 * time.Hour)} // rebooted with a bad RTC
		persisted := hlc.Pack(base.UnixMilli(), 7)
		c := hlc.New(persisted, w.now)
		if got := c.Now(); got <= persisted {
			t.Fatalf("after restart %d <= persisted %d", got, persisted)
		}
	})
	t.Run("LogicalOverflow", func(t *testing.T) {
		w := &fakeWall{t: base}
		c := hlc.New(hlc.Pack(base.UnixMilli(), 0xffff), w.now)
		got := c.Now()
		if got.Millis() != base.UnixMilli()+1 || got.Logical() != 0 {
			t.Fatalf("overflow: %d/%d", got.Millis(), got.Logical())
		}
	})
	t.Run("Observe", func(t *testing.T) {
		w := &fakeWall{t: base}
		c := hlc.New(0, w.now)
		remote := hlc.Pack(base.UnixMilli()+1000, 3)
		if got := c.Observe(remote); got <= remote {
			t.Fatalf("observe: %d <= %d", got, remote)
		}
		if got := c.Now(); got <= remote {
			t.Fatalf("after observe: %d <= %d", got, remote)
		}
	})
}

func TestPack(t *testing.T) {
	ts := hlc.Pack(1_800_000_000_123, 42)
	if ts.Millis() != 1_800_000_000_123 || ts.Logical() != 42 {
		t.Fatalf("pack/unpack: %d %d", ts.Millis(), ts.Logical())
	}
	if hlc.Pack(-5, 1).Millis() != 0 {
		t.Fatal("negative ms not clamped")
	}
}

func BenchmarkNow(b *testing.B) {
	c := hlc.New(0, nil)
	for b.Loop() {
		c.Now()
	}
}
