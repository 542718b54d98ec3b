package snapshot_test

import (
	"bytes"
	"testing"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/snapshot"
)

// TestStamp: stamping the encoding of a snapshot without its time gives
// the bytes Encode gives with the time, for times of every head size.
func TestStamp(t *testing.T) {
	delta := sample()
	delta.Since, delta.Uses, delta.UsesSince = 5, 1<<40, 3
	delta.Reflected = &snapshot.Reflected{Watermark: 9, Beyond: []uint64{11, 12}}
	for name, s := range map[string]*snapshot.Snapshot{"full": sample(), "delta": delta, "bare": {Version: 1, Tenant: "acme", Agent: "till-1"}} {
		for _, at := range []int64{0, 1, 23, 24, 255, 256, 65_535, 65_536, 1 << 32, 1_795_000_000_123_456, -1, -25, -1 << 40} {
			s.GeneratedAt = 0
			zero, err := snapshot.Encode(s)
			if err != nil {
				t.Fatal(err)
			}
			s.GeneratedAt = at
			want, err := snapshot.Encode(s)
			if err != nil {
				t.Fatal(err)
			}
			got, err := snapshot.Stamp(zero, at)
			if err != nil {
				t.Fatalf("%s at %d: %v", name, at, err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s at %d: stamped\n%x\nwant\n%x", name, at, got, want)
			}
			// Stamping a stamped body again replaces the time.
			s.GeneratedAt = 42
			want42, err := snapshot.Encode(s)
			if err != nil {
				t.Fatal(err)
			}
			if again, err := snapshot.Stamp(want, 42); err != nil || !bytes.Equal(again, want42) {
				t.Errorf("%s: restamped from %d to 42: %x (%v), want %x", name, at, again, err, want42)
			}
		}
	}
}

// TestStampMalformed: what is not a snapshot's encoding is refused with
// CodeMessageMalformed, never a panic.
func TestStampMalformed(t *testing.T) {
	good, err := snapshot.Encode(sample())
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		"empty":      nil,
		"not a map":  {0x83, 0x01, 0x02, 0x03},
		"no time":    {0xa1, 0x01, 0x01},
		"truncated":  good[:20],
		"indefinite": {0xbf, 0x07, 0x00, 0xff},
		"huge map":   {0xbb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		"huge text":  {0xa2, 0x01, 0x7b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x07, 0x00},
		"huge array": {0xa2, 0x01, 0x9b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x07, 0x00},
		"bad head":   {0xa1, 0x1c, 0x00},
	} {
		if _, err := snapshot.Stamp(b, 1); protocol.ErrorCode(err) != protocol.CodeMessageMalformed {
			t.Errorf("%s: %v, want malformed", name, err)
		}
	}
}

func BenchmarkStamp(b *testing.B) {
	s := sample()
	s.GeneratedAt = 0
	zero, err := snapshot.Encode(s)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("Stamp", func(b *testing.B) {
		for b.Loop() {
			if _, err := snapshot.Stamp(zero, 1_795_000_000_123_456); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Encode", func(b *testing.B) {
		for b.Loop() {
			s.GeneratedAt = 1_795_000_000_123_456
			if _, err := snapshot.Encode(s); err != nil {
				b.Fatal(err)
			}
		}
	})
}
