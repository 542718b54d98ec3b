package snapshot_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/rules"
	"github.com/punchcard/punchcard/protocol/snapshot"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func pub(seed byte) []byte {
	s := bytes.Repeat([]byte{seed}, ed25519.SeedSize)
	return ed25519.NewKeyFromSeed(s).Public().(ed25519.PublicKey)
}

// sample is the snapshot behind testdata/full.cbor.
func sample() *snapshot.Snapshot {
	return &snapshot.Snapshot{
		Version:     7,
		Tenant:      "acme",
		Agent:       "till-1",
		Store:       snapshot.Store{ID: "berlin-1", Region: "DE-BE", TimeZone: "Europe/Berlin", Group: "city"},
		GeneratedAt: 1_795_000_000_000_000,
		Keys: []snapshot.PublicKey{
			{KID: "k2", Public: pub(2)},
			{KID: "k1", Public: pub(1), NotAfter: 1_796_000_000_000_000},
		},
		Campaigns: []rules.Campaign{
			campaign("summer", rules.StatusActive, rules.Reward{Kind: rules.RewardPercentOff, PercentBP: 1000}),
			campaign("gift", rules.StatusStopped, rules.Reward{Kind: rules.RewardGiftCard}),
		},
		Codes: []snapshot.Code{
			{Code: "SUMMER10", Campaign: "summer", Uses: -1},
			{Code: "GIFT-1234-5678", Campaign: "gift", Uses: -1, Balance: &protocol.Money{Amount: 25_00, Currency: "EUR"}, Group: "city"},
			{Code: "ONCE-1", Campaign: "summer", Uses: 1, Stores: []protocol.StoreID{"berlin-1"}},
		},
		Revocations: []snapshot.Revocation{{Kind: snapshot.RevokeToken, ID: "T123", At: 1_794_000_000_000_000}},
		Allowances:  []protocol.Allowance{{Tenant: "acme", Agent: "till-1", Campaign: "summer", Grant: 2, Count: 10, Amount: 100_00, Currency: "EUR"}},
		Envelope:    snapshot.RiskEnvelope{Currency: "EUR", PerRedemption: 50_00, PerCampaign: 200_00, TotalAmount: 500_00, Count: 100, MaxStaleSeconds: 86400},
	}
}

func campaign(id protocol.CampaignID, st rules.Status, r rules.Reward) rules.Campaign {
	return rules.Campaign{
		Schema: rules.SchemaVersion, ID: id, Tenant: "acme", Status: st, Currency: "EUR", Reward: r,
		StartsAt: time.Unix(1_790_000_000, 0).UTC(),
	}
}

func golden(t *testing.T, name string, got []byte) []byte {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	return want
}

func TestEncodeDecode(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		b, err := snapshot.Encode(sample())
		if err != nil {
			t.Fatal(err)
		}
		if want := golden(t, "full.cbor", b); !bytes.Equal(b, want) {
			t.Fatalf("encoding changed: got %x, want %x", b, want)
		}
		s, err := snapshot.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		again, err := snapshot.Encode(s)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("round trip changed the bytes:\n got %x\nwant %x", again, b)
		}
		if got, want := s.Campaigns[1].StartsAt.Unix(), int64(1_790_000_000); got != want {
			t.Fatalf("starts_at = %d, want %d", got, want)
		}
		if got := s.Codes[0].Balance; got == nil || *got != (protocol.Money{Amount: 25_00, Currency: "EUR"}) {
			t.Fatalf("balance = %v", got)
		}
		if k, ok := s.Key("k1"); !ok || !bytes.Equal(k.Public, pub(1)) || k.NotAfter != 1_796_000_000_000_000 {
			t.Fatalf("key k1 = %+v, %v", k, ok)
		}
		if s.Codes[0].Code != "GIFT-1234-5678" {
			t.Fatalf("codes not sorted: %v", s.Codes)
		}
	})
	t.Run("Delta", func(t *testing.T) {
		d := sampleDelta()
		b, err := snapshot.Encode(d)
		if err != nil {
			t.Fatal(err)
		}
		if want := golden(t, "delta.cbor", b); !bytes.Equal(b, want) {
			t.Fatalf("encoding changed: got %x, want %x", b, want)
		}
		got, err := snapshot.Decode(b)
		if err != nil || !got.IsDelta() || got.Since != 7 {
			t.Fatalf("%+v %v", got, err)
		}
	})
	t.Run("Deterministic", func(t *testing.T) {
		a, _ := snapshot.Encode(sample())
		s := sample()
		s.Codes[0], s.Codes[2] = s.Codes[2], s.Codes[0]
		b, _ := snapshot.Encode(s)
		if !bytes.Equal(a, b) || snapshot.ETag(a) != snapshot.ETag(b) {
			t.Fatal("order of input lists changed the bytes")
		}
		if !strings.HasPrefix(snapshot.ETag(a), `"`) {
			t.Fatalf("etag %s is not quoted", snapshot.ETag(a))
		}
	})
}

func TestDecodeErrors(t *testing.T) {
	enc := func(mut func(*snapshot.Snapshot)) []byte {
		s := sample()
		s.Format = protocol.Version
		mut(s)
		b, err := protocol.EncMode.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	full, err := os.ReadFile(filepath.Join("testdata", "full.cbor"))
	if err != nil {
		t.Fatal(err)
	}
	deep := func(n int) []byte {
		b := bytes.Repeat([]byte{0x81}, n)
		return append(b, 0x00)
	}
	tests := []struct {
		name  string
		data  []byte
		code  protocol.Code
		field string
	}{
		{"ErrEmpty", nil, protocol.CodeMessageMalformed, ""},
		{"ErrGarbage", []byte("hello"), protocol.CodeMessageMalformed, ""},
		{"ErrTruncated", full[:40], protocol.CodeMessageMalformed, ""},
		{"ErrTooDeep", deep(100), protocol.CodeMessageMalformed, ""},
		{"ErrTooLarge", make([]byte, protocol.MaxSnapshotBytes+1), protocol.CodeMessageTooLarge, ""},
		{"ErrFormat", enc(func(s *snapshot.Snapshot) { s.Format = protocol.Version + 1 }), protocol.CodeUnsupportedVersion, ""},
		{"ErrVersionZero", enc(func(s *snapshot.Snapshot) { s.Version = 0 }), protocol.CodeMessageMalformed, "version"},
		{"ErrSinceAfter", enc(func(s *snapshot.Snapshot) { s.Since = 8 }), protocol.CodeMessageMalformed, "since"},
		{"ErrTenant", enc(func(s *snapshot.Snapshot) { s.Tenant = "a/b" }), protocol.CodeMessageMalformed, "tenant"},
		{"ErrStore", enc(func(s *snapshot.Snapshot) { s.Store.ID = "" }), protocol.CodeMessageMalformed, "store.id"},
		{"ErrKeySize", enc(func(s *snapshot.Snapshot) { s.Keys[1].Public = []byte{1, 2} }), protocol.CodeMessageMalformed, "keys[1].public"},
		{"ErrStatus", enc(func(s *snapshot.Snapshot) { s.Campaigns[0].Status = "paused" }), protocol.CodeMessageMalformed, "campaigns[0].status"},
		{"ErrCampaignTenant", enc(func(s *snapshot.Snapshot) { s.Campaigns[1].Tenant = "other" }), protocol.CodeMessageMalformed, "campaigns[1].tenant"},
		{"ErrCampaignReward", enc(func(s *snapshot.Snapshot) { s.Campaigns[1].Reward.PercentBP = 20000 }), protocol.CodeMessageMalformed, "campaigns[1].reward.percent_bp"},
		{"ErrCampaignSchema", enc(func(s *snapshot.Snapshot) { s.Campaigns[0].Schema = 99 }), protocol.CodeUnsupportedVersion, "schema"},
		{"ErrUses", enc(func(s *snapshot.Snapshot) { s.Codes[2].Uses = -5 }), protocol.CodeMessageMalformed, "codes[2].uses"},
		{"ErrRevocationKind", enc(func(s *snapshot.Snapshot) { s.Revocations[0].Kind = "x" }), protocol.CodeMessageMalformed, "revocations[0].kind"},
		{"ErrForeignAllowance", enc(func(s *snapshot.Snapshot) { s.Allowances[0].Agent = "till-2" }), protocol.CodeMessageMalformed, "allowances[0]"},
		{"ErrWithdrawn", enc(func(s *snapshot.Snapshot) { s.Since, s.Withdrawn = 6, []protocol.CampaignID{"ok", "a/b"} }), protocol.CodeMessageMalformed, "withdrawn[1]"},
		{"ErrEnvelope", enc(func(s *snapshot.Snapshot) { s.Envelope.Count = -2 }), protocol.CodeMessageMalformed, "envelope.count"},
		{"ErrDuplicateKey", []byte{0xa2, 0x01, 0x01, 0x01, 0x01}, protocol.CodeMessageMalformed, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := snapshot.Decode(tt.data)
			var pe *protocol.Error
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a *protocol.Error", err)
			}
			if pe.Code != tt.code || pe.Field != tt.field {
				t.Fatalf("got %s field %q (%s), want %s field %q", pe.Code, pe.Field, pe.Message, tt.code, tt.field)
			}
		})
	}
}

// sampleDelta is the delta behind testdata/delta.cbor: version 9 after
// sample's 7.
func sampleDelta() *snapshot.Snapshot {
	return &snapshot.Snapshot{
		Format: protocol.Version, Version: 9, Since: 7, Tenant: "acme", Agent: "till-1", GeneratedAt: 1_795_000_060_000_000,
		Store:       snapshot.Store{ID: "berlin-1", Region: "DE-BE", TimeZone: "Europe/Berlin", Group: "city"},
		Keys:        []snapshot.PublicKey{{KID: "k3", Public: pub(3)}},
		Campaigns:   []rules.Campaign{campaign("summer", rules.StatusStopped, rules.Reward{Kind: rules.RewardAmountOff, Amount: 500})},
		Codes:       []snapshot.Code{{Code: "NEW-1", Campaign: "summer", Uses: 1}},
		Revocations: []snapshot.Revocation{{Kind: snapshot.RevokeCode, ID: "ONCE-1", At: 5}},
		Envelope:    snapshot.DefaultEnvelope,
	}
}

func TestMerge(t *testing.T) {
	base := sample()
	base.Normalize()
	d := sampleDelta()
	t.Run("OK", func(t *testing.T) {
		got, err := snapshot.Merge(base, d)
		if err != nil {
			t.Fatal(err)
		}
		if got.Version != 9 || got.Since != 0 {
			t.Fatalf("version %d since %d", got.Version, got.Since)
		}
		if len(got.Campaigns) != 2 || got.Campaigns[1].ID != "summer" || got.Campaigns[1].Status != rules.StatusStopped {
			t.Fatalf("campaigns %+v", got.Campaigns)
		}
		if len(got.Codes) != 3 || len(got.Revocations) != 2 { // NEW-1 added, ONCE-1 revoked
			t.Fatalf("codes %d revocations %d", len(got.Codes), len(got.Revocations))
		}
		if len(got.Keys) != 1 || got.Keys[0].KID != "k3" || len(got.Allowances) != 0 {
			t.Fatalf("keys %+v allowances %+v: whole parts must be replaced", got.Keys, got.Allowances)
		}
		if len(base.Campaigns) != 2 || base.Campaigns[1].Status != rules.StatusActive {
			t.Fatal("Merge modified its base")
		}
		if _, err := snapshot.Encode(got); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ErrBaseMismatch", func(t *testing.T) {
		d2 := *d
		d2.Since = 6
		if _, err := snapshot.Merge(base, &d2); !errors.Is(err, snapshot.ErrBaseMismatch) {
			t.Fatalf("err = %v", err)
		}
		d2 = *d
		d2.Tenant = "other"
		if _, err := snapshot.Merge(base, &d2); !errors.Is(err, snapshot.ErrBaseMismatch) {
			t.Fatalf("err = %v", err)
		}
		// The base was filtered for another store.
		d2 = *d
		d2.Store.ID = "hamburg-1"
		if _, err := snapshot.Merge(base, &d2); !errors.Is(err, snapshot.ErrBaseMismatch) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("OK/Withdrawn", func(t *testing.T) {
		d2 := *d
		d2.Campaigns = nil
		d2.Codes = []snapshot.Code{{Code: "NEW-2", Campaign: "summer", Uses: 1}}
		d2.Withdrawn = []protocol.CampaignID{"gift", "never-had"}
		got, err := snapshot.Merge(base, &d2)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Campaigns) != 1 || got.Campaigns[0].ID != "summer" || got.Withdrawn != nil {
			t.Fatalf("campaigns %+v withdrawn %v", got.Campaigns, got.Withdrawn)
		}
		var keys []protocol.CodeID
		for _, c := range got.Codes {
			keys = append(keys, c.Code)
		}
		// GIFT-1234-5678 leaves with its campaign, ONCE-1 is revoked.
		if len(keys) != 2 || keys[0] != "NEW-2" || keys[1] != "SUMMER10" {
			t.Fatalf("codes %v", keys)
		}
		if len(base.Campaigns) != 2 || len(base.Codes) != 3 {
			t.Fatal("Merge modified its base")
		}
		b, err := snapshot.Encode(&d2)
		if err != nil {
			t.Fatal(err)
		}
		back, err := snapshot.Decode(b)
		if err != nil || len(back.Withdrawn) != 2 || back.Withdrawn[0] != "gift" {
			t.Fatalf("round trip %+v, %v", back, err)
		}
	})
	t.Run("Full", func(t *testing.T) {
		f := sample()
		f.Version = 10
		got, err := snapshot.Merge(base, f)
		if err != nil || got.Version != 10 || len(got.Codes) != 3 {
			t.Fatalf("got %+v, %v", got, err)
		}
	})
}

func TestBoundTo(t *testing.T) {
	st := snapshot.Store{ID: "s1", Group: "g"}
	for _, tt := range []struct {
		name string
		c    snapshot.Code
		want bool
	}{
		{"Store", snapshot.Code{Stores: []protocol.StoreID{"s0", "s1"}}, true},
		{"Group", snapshot.Code{Group: "g"}, true},
		{"Unbound", snapshot.Code{}, false},
		{"OtherStore", snapshot.Code{Stores: []protocol.StoreID{"s2"}, Group: "h"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.BoundTo(st); got != tt.want {
				t.Fatalf("BoundTo = %v, want %v", got, tt.want)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	b, err := os.ReadFile(filepath.Join("testdata", "full.cbor"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:len(b)/2])
	for _, name := range []string{"delta.cbor", "hashed.cbor"} {
		if d, err := os.ReadFile(filepath.Join("testdata", name)); err == nil {
			f.Add(d)
		}
	}
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := snapshot.Decode(data)
		if err != nil {
			if protocol.ErrorCode(err) == protocol.CodeInternal {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		// A snapshot that decodes re-encodes and decodes to the same value.
		out, err := snapshot.Encode(s)
		if err != nil {
			t.Fatal(err)
		}
		s2, err := snapshot.Decode(out)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		out2, err := snapshot.Encode(s2)
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("unstable encoding: %x vs %x (%v)", out, out2, err)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	s := sample()
	for i := range 10000 {
		s.Codes = append(s.Codes, snapshot.Code{Code: protocol.CodeID("C" + strings.Repeat("0", 6-len(itoa(i))) + itoa(i)), Campaign: "summer", Uses: 1})
	}
	data, err := snapshot.Encode(s)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := snapshot.Decode(data); err != nil {
			b.Fatal(err)
		}
	}
}

func itoa(i int) string {
	var buf [20]byte
	n := len(buf)
	for {
		n--
		buf[n] = byte('0' + i%10)
		i /= 10
		if i == 0 {
			return string(buf[n:])
		}
	}
}
