package protocol_test

import (
	"errors"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/punchcard/punchcard/protocol"
)

// factCase is one row of testdata/protocol/facts.json: a fact and the
// code and field Validate refuses it with ("" when it is valid).
type factCase struct {
	Name  string              `json:"name"`
	Fact  protocol.Redemption `json:"fact"`
	Code  protocol.Code       `json:"code"`
	Field string              `json:"field"`
}

func loadFacts(tb testing.TB) []factCase {
	tb.Helper()
	var cs []factCase
	readJSON(tb, "facts.json", &cs)
	if len(cs) == 0 {
		tb.Fatal("no fact fixtures")
	}
	return cs
}

// TestRedemptionValidate drives the one fact validator from the fixture
// table, and checks that each fixture survives the CBOR round trip the
// till's outbox and the hub's ingest put it through unchanged in verdict.
func TestRedemptionValidate(t *testing.T) {
	for _, c := range loadFacts(t) {
		t.Run(c.Name, func(t *testing.T) {
			check := func(err error) {
				t.Helper()
				if c.Code == "" {
					if err != nil {
						t.Fatalf("valid fact refused: %v", err)
					}
					return
				}
				var pe *protocol.Error
				if !errors.As(err, &pe) || pe.Code != c.Code || pe.Field != c.Field {
					t.Fatalf("err = %v, want %s on %q", err, c.Code, c.Field)
				}
			}
			check(c.Fact.Validate())
			check(c.Fact.ValidateFrom(c.Fact.Tenant, c.Fact.ID.Agent))
			raw, err := protocol.EncMode.Marshal(c.Fact)
			if err != nil {
				t.Fatal(err)
			}
			r, id, err := protocol.DecodeFact(raw)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if id != c.Fact.ID {
				t.Fatalf("id = %v, want %v", id, c.Fact.ID)
			}
			check(r.Validate())
		})
	}
}

func TestValidateFrom(t *testing.T) {
	ok := protocol.Redemption{ID: protocol.RedemptionID{Agent: "till-1", Seq: 1}, Kind: protocol.KindRedeem, Tenant: "acme"}
	for _, tt := range []struct {
		name, field   string
		tenant, agent string
	}{
		{name: "OK", tenant: "acme", agent: "till-1"},
		{name: "ErrOtherTenant", tenant: "beta", agent: "till-1", field: "tenant"},
		{name: "ErrOtherAgent", tenant: "acme", agent: "till-2", field: "id.agent"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := ok.ValidateFrom(protocol.TenantID(tt.tenant), protocol.AgentID(tt.agent))
			if tt.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var pe *protocol.Error
			if !errors.As(err, &pe) || pe.Code != protocol.CodeForbidden || pe.Field != tt.field {
				t.Fatalf("err = %v, want forbidden on %s", err, tt.field)
			}
		})
	}
}

// TestDecodeFact: a fact that does not decode is message_malformed, and
// its ID is still read when it can be, so the hub can quarantine it.
func TestDecodeFact(t *testing.T) {
	enc := func(v any) []byte {
		b, err := protocol.EncMode.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	id := map[int]any{1: "till-1", 2: 9}
	for _, tt := range []struct {
		name string
		raw  []byte
		want protocol.RedemptionID
	}{
		{name: "ErrKindIsText", raw: enc(map[int]any{1: id, 2: "redeem", 3: "acme"}), want: protocol.RedemptionID{Agent: "till-1", Seq: 9}},
		{name: "ErrKindOverflow", raw: enc(map[int]any{1: id, 2: 300, 3: "acme"}), want: protocol.RedemptionID{Agent: "till-1", Seq: 9}},
		{name: "ErrAgentIsNumber", raw: enc(map[int]any{1: map[int]any{1: 5, 2: 9}, 2: "x"}), want: protocol.RedemptionID{Seq: 9}},
		{name: "ErrNoID", raw: enc(map[int]any{2: "x"})},
		{name: "ErrNotAMap", raw: enc([]int{1, 2})},
		{name: "ErrTruncated", raw: enc(map[int]any{1: id, 2: 1})[:5]},
		{name: "ErrDuplicateKey", raw: append(append([]byte{0xa3, 0x01}, enc(id)...), 0x02, 0x01, 0x02, 0x01)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, got, err := protocol.DecodeFact(tt.raw)
			if protocol.ErrorCode(err) != protocol.CodeMessageMalformed {
				t.Fatalf("err = %v, want message_malformed", err)
			}
			if got != tt.want {
				t.Fatalf("id = %v, want %v", got, tt.want)
			}
		})
	}
}

// FuzzRedemptionValidate feeds arbitrary CBOR to the path a fact takes at
// the hub (DecodeFact, then ValidateFrom): never a panic, only known codes,
// and a fact that passes survives the canonical round trip and passes
// again, as it must after the till re-encodes it from its outbox.
func FuzzRedemptionValidate(f *testing.F) {
	for _, c := range loadFacts(f) {
		b, err := protocol.EncMode.Marshal(c.Fact)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0xa1, 0x01, 0xa2, 0x01, 0x61, 0x61, 0x02, 0x05})
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, id, err := protocol.DecodeFact(raw)
		if err != nil {
			if protocol.ErrorCode(err) != protocol.CodeMessageMalformed {
				t.Fatalf("decode: %v", err)
			}
			return
		}
		if id != r.ID {
			t.Fatalf("id %v != fact id %v", id, r.ID)
		}
		err = r.ValidateFrom(r.Tenant, r.ID.Agent)
		if err != nil {
			var pe *protocol.Error
			if !errors.As(err, &pe) || pe.Code != protocol.CodeInvalidInput || pe.Field == "" {
				t.Fatalf("validate: %#v", err)
			}
			return
		}
		b, err := protocol.EncMode.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var r2 protocol.Redemption
		if err := cbor.Unmarshal(b, &r2); err != nil {
			t.Fatalf("re-encoded fact does not decode: %v", err)
		}
		if err := r2.Validate(); err != nil {
			t.Fatalf("re-encoded valid fact refused: %v", err)
		}
	})
}
