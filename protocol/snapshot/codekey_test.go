package snapshot_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/snapshot"
)

func TestHashCode(t *testing.T) {
	key := bytes.Repeat([]byte{1}, snapshot.CodeKeySize)
	m := hmac.New(sha256.New, key)
	m.Write([]byte("GIFT1234"))
	if got, want := snapshot.HashCode(key, "GIFT1234"), protocol.CodeID(hex.EncodeToString(m.Sum(nil)[:16])); got != want || len(got) != 2*snapshot.CodeHashSize {
		t.Fatalf("HashCode = %s, want %s", got, want)
	}
	s := &snapshot.Snapshot{}
	if got := s.LookupID("GIFT1234"); got != "GIFT1234" {
		t.Fatalf("without a key LookupID = %s", got)
	}
	s.CodeKey = key
	if got := s.LookupID("GIFT1234"); got != snapshot.HashCode(key, "GIFT1234") {
		t.Fatalf("LookupID = %s", got)
	}
	if snapshot.HashCode(bytes.Repeat([]byte{2}, snapshot.CodeKeySize), "GIFT1234") == s.LookupID("GIFT1234") {
		t.Fatal("another key gives the same hash")
	}
}

func TestCodeKey(t *testing.T) {
	t.Run("ErrSize", func(t *testing.T) {
		s := sample()
		s.Format = protocol.Version
		s.CodeKey = []byte("short")
		if err := s.Validate(); protocol.ErrorCode(err) != protocol.CodeMessageMalformed {
			t.Fatalf("a 5-byte code key: %v", err)
		}
	})
	t.Run("OK", func(t *testing.T) {
		s := hashedSample()
		enc, err := snapshot.Encode(s)
		if err != nil {
			t.Fatal(err)
		}
		if want := golden(t, "hashed.cbor", enc); !bytes.Equal(enc, want) {
			t.Fatalf("encoding changed: got %x, want %x", enc, want)
		}
		if bytes.Contains(enc, []byte("GIFT-1234-5678")) {
			t.Fatal("a hashed snapshot holds a code")
		}
		got, err := snapshot.Decode(enc)
		if err != nil || !bytes.Equal(got.CodeKey, s.CodeKey) {
			t.Fatalf("round trip: %v %x", err, got.CodeKey)
		}
	})
	t.Run("ErrMergeOtherKey", func(t *testing.T) {
		base := sample()
		base.Normalize()
		d := sampleDelta()
		d.CodeKey = bytes.Repeat([]byte{1}, snapshot.CodeKeySize)
		if _, err := snapshot.Merge(base, d); err != snapshot.ErrBaseMismatch {
			t.Fatalf("a delta hashed with another key: %v", err)
		}
	})
}

// hashedSample is sample() as a hub with keyed code hashes sends it.
func hashedSample() *snapshot.Snapshot {
	s := sample()
	s.CodeKey = bytes.Repeat([]byte{1}, snapshot.CodeKeySize)
	for i := range s.Codes {
		s.Codes[i].Code = snapshot.HashCode(s.CodeKey, s.Codes[i].Code)
	}
	for i, r := range s.Revocations {
		if r.Kind == snapshot.RevokeCode {
			s.Revocations[i].ID = snapshot.HashCode(s.CodeKey, r.ID)
		}
	}
	return s
}
