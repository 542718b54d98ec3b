package protocol_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/punchcard/punchcard/protocol"
)

var update = flag.Bool("update", false, "rewrite the hex of testdata/protocol/messages.json and the code table of docs/protocol.md")

const fixtureDir = "../testdata/protocol"

// goodMessage is one row of testdata/protocol/messages.json: a message, its
// body as JSON, and the exact canonical bytes it encodes to.
type goodMessage struct {
	Name    string           `json:"name"`
	Type    protocol.MsgType `json:"type"`
	ID      string           `json:"id"`
	Tenant  string           `json:"tenant"`
	Sender  string           `json:"sender"`
	Sent    int64            `json:"sent"`
	Body    json.RawMessage  `json:"body"`
	Hex     string           `json:"hex"`
	payload []byte
}

// body returns a freshly decoded typed body (*Batch, *Ack, …) of the row.
func (m goodMessage) body(tb testing.TB) any {
	tb.Helper()
	v := protocol.NewBody(m.Type)
	if v == nil {
		tb.Fatalf("%s: unknown type %d", m.Name, m.Type)
	}
	dec := json.NewDecoder(bytes.NewReader(m.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		tb.Fatalf("%s: body: %v", m.Name, err)
	}
	return v
}

func loadGood(tb testing.TB) []goodMessage {
	tb.Helper()
	var ms []goodMessage
	readJSON(tb, "messages.json", &ms)
	for i := range ms {
		b, err := hex.DecodeString(ms[i].Hex)
		if err != nil {
			tb.Fatalf("%s: hex: %v", ms[i].Name, err)
		}
		ms[i].payload = b
	}
	return ms
}

// badMessage is one row of testdata/protocol/bad_messages.json: a payload
// that must be refused with Code. The payload is Hex, then RepeatHex Count
// times, then SuffixHex, so that large inputs stay small on disk. Stage
// "body" means the envelope decodes and DecodeBody refuses.
type badMessage struct {
	Name      string        `json:"name"`
	Hex       string        `json:"hex"`
	RepeatHex string        `json:"repeat_hex"`
	Count     int           `json:"count"`
	SuffixHex string        `json:"suffix_hex"`
	Stage     string        `json:"stage"`
	Code      protocol.Code `json:"code"`
	Message   string        `json:"message"`
	payload   []byte
}

func loadBad(tb testing.TB) []badMessage {
	tb.Helper()
	var ms []badMessage
	readJSON(tb, "bad_messages.json", &ms)
	for i := range ms {
		m := &ms[i]
		p, err1 := hex.DecodeString(m.Hex)
		r, err2 := hex.DecodeString(m.RepeatHex)
		s, err3 := hex.DecodeString(m.SuffixHex)
		if err := errors.Join(err1, err2, err3); err != nil {
			tb.Fatalf("%s: hex: %v", m.Name, err)
		}
		m.payload = append(append(p, bytes.Repeat(r, m.Count)...), s...)
	}
	return ms
}

func readJSON(tb testing.TB, name string, v any) {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, name))
	if err != nil {
		tb.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
}

// TestMessageFixtures drives both directions from the same table: each body
// encodes to exactly the recorded canonical bytes, and those bytes decode
// back to the same envelope and body.
func TestMessageFixtures(t *testing.T) {
	ms := loadGood(t)
	seen := map[protocol.MsgType]bool{}
	for i, m := range ms {
		seen[m.Type] = true
		t.Run(m.Name, func(t *testing.T) {
			t.Run("Encode", func(t *testing.T) {
				got, err := protocol.EncodeMessage(m.Type, protocol.TenantID(m.Tenant), protocol.AgentID(m.Sender), m.ID, m.Sent, m.body(t))
				if err != nil {
					t.Fatal(err)
				}
				if *update {
					ms[i].Hex = hex.EncodeToString(got)
					return
				}
				if !bytes.Equal(got, m.payload) {
					t.Fatalf("encoding differs\n got %x\nwant %x", got, m.payload)
				}
				// A pointer and a value body encode alike.
				byValue, err := protocol.EncodeMessage(m.Type, protocol.TenantID(m.Tenant), protocol.AgentID(m.Sender), m.ID, m.Sent, reflect.ValueOf(m.body(t)).Elem().Interface())
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(byValue, m.payload) {
					t.Fatalf("value body encodes differently: %x", byValue)
				}
			})
			if *update {
				return
			}
			t.Run("Decode", func(t *testing.T) {
				env, err := protocol.DecodeEnvelope(m.payload)
				if err != nil {
					t.Fatal(err)
				}
				if got, want := env.Type, m.Type; got != want {
					t.Errorf("type = %v, want %v", got, want)
				}
				if got, want := env.Version, uint16(protocol.Version); got != want {
					t.Errorf("version = %d, want %d", got, want)
				}
				if env.ID != m.ID || string(env.Tenant) != m.Tenant || string(env.Sender) != m.Sender || env.Sent != m.Sent {
					t.Errorf("envelope = %+v, want id %q tenant %q sender %q sent %d", env, m.ID, m.Tenant, m.Sender, m.Sent)
				}
				got := protocol.NewBody(env.Type)
				if err := protocol.DecodeBody(env, got); err != nil {
					t.Fatal(err)
				}
				if want := m.body(t); !reflect.DeepEqual(got, want) {
					t.Fatalf("body = %+v, want %+v", got, want)
				}
				// The decoded body re-encodes to the same bytes: the
				// encoding is canonical and nothing is lost.
				again, err := protocol.EncodeMessage(env.Type, env.Tenant, env.Sender, env.ID, env.Sent, got)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(again, m.payload) {
					t.Fatalf("re-encoding differs\n got %x\nwant %x", again, m.payload)
				}
			})
		})
	}
	if *update {
		b, err := json.MarshalIndent(ms, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(fixtureDir, "messages.json"), append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	for ty := protocol.MsgBatch; ty.Known(); ty++ {
		if !seen[ty] {
			t.Errorf("no fixture for message type %v", ty)
		}
	}
}

// TestAckFixtureByHand pins one fixture to bytes worked out from RFC 8949
// by hand, so that the golden file is not only checked against itself.
func TestAckFixtureByHand(t *testing.T) {
	got, err := protocol.EncodeMessage(protocol.MsgAck, "t", protocol.HubSender, "h1", 0, protocol.Ack{Watermark: 10})
	if err != nil {
		t.Fatal(err)
	}
	byHand := "a7" + // map, 7 pairs
		"0102" + // key 1 type: 2 (ack)
		"0202" + // key 2 version: 2
		"03" + "626831" + // key 3 id: text(2) "h1"
		"04" + "6174" + // key 4 tenant: text(1) "t"
		"05" + "63687562" + // key 5 sender: text(3) "hub"
		"0600" + // key 6 sent: 0
		"07" + "a1010a" // key 7 body: {1: 10}; Beyond omitted when empty
	if hex.EncodeToString(got) != byHand {
		t.Fatalf("got %x, want %s", got, byHand)
	}
	for _, m := range loadGood(t) {
		if m.Name == "ack_watermark_only" && m.Hex != byHand {
			t.Fatalf("fixture ack_watermark_only = %s, want %s", m.Hex, byHand)
		}
	}
}

// TestBadMessageFixtures checks that every damaged or hostile payload is
// refused with its reason code, at the right stage, without a panic.
func TestBadMessageFixtures(t *testing.T) {
	for _, m := range loadBad(t) {
		t.Run(m.Name, func(t *testing.T) {
			env, err := protocol.DecodeEnvelope(m.payload)
			if m.Stage == "body" {
				if err != nil {
					t.Fatalf("envelope: %v; want it to decode and the body to fail", err)
				}
				err = protocol.DecodeBody(env, protocol.NewBody(env.Type))
			}
			if err == nil {
				t.Fatalf("decoded %d bytes without error; want %s", len(m.payload), m.Code)
			}
			if got := protocol.ErrorCode(err); got != m.Code {
				t.Fatalf("code = %s (%v), want %s", got, err, m.Code)
			}
			if !strings.Contains(err.Error(), m.Message) {
				t.Fatalf("error %q does not mention %q", err, m.Message)
			}
			if pe := protocol.PublicError(err); strings.ContainsAny(pe.Message, "\n\r") {
				t.Fatalf("message has a line break: %q", pe.Message)
			}
		})
	}
}

func TestEncodeMessage(t *testing.T) {
	big := protocol.Batch{Redemptions: make([]protocol.Redemption, protocol.MaxBatchSize+1)}
	huge := protocol.SnapshotAnnounce{Version: 1, ETag: strings.Repeat("x", protocol.MaxMessageBytes)}
	tests := []struct {
		name   string
		typ    protocol.MsgType
		tenant protocol.TenantID
		sender protocol.AgentID
		body   any
		code   protocol.Code
	}{
		{name: "OK", typ: protocol.MsgAck, tenant: "acme", sender: protocol.HubSender, body: protocol.Ack{Watermark: 1}},
		{name: "OKMaxBatch", typ: protocol.MsgBatch, tenant: "acme", sender: "a", body: &protocol.Batch{Redemptions: big.Redemptions[:protocol.MaxBatchSize]}},
		{name: "ErrUnknownType", typ: 0, tenant: "acme", sender: "a", body: protocol.Ack{}, code: protocol.CodeInvalidInput},
		{name: "ErrUnknownType7", typ: 7, tenant: "acme", sender: "a", body: protocol.Ack{}, code: protocol.CodeInvalidInput},
		{name: "ErrTenant", typ: protocol.MsgAck, tenant: "a/b", sender: "a", body: protocol.Ack{}, code: protocol.CodeInvalidInput},
		{name: "ErrSenderEmpty", typ: protocol.MsgAck, tenant: "acme", sender: "", body: protocol.Ack{}, code: protocol.CodeInvalidInput},
		{name: "ErrBatchTooBig", typ: protocol.MsgBatch, tenant: "acme", sender: "a", body: big, code: protocol.CodeMessageTooLarge},
		{name: "ErrBatchTooBigPointer", typ: protocol.MsgBatch, tenant: "acme", sender: "a", body: &big, code: protocol.CodeMessageTooLarge},
		{name: "ErrPayloadTooBig", typ: protocol.MsgSnapshotAnnounce, tenant: "acme", sender: "hub", body: huge, code: protocol.CodeMessageTooLarge},
		{name: "ErrUnencodable", typ: protocol.MsgAck, tenant: "acme", sender: "hub", body: make(chan int), code: protocol.CodeInternal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := protocol.EncodeMessage(tt.typ, tt.tenant, tt.sender, "id", 0, tt.body)
			if got := protocol.ErrorCode(err); got != tt.code {
				t.Fatalf("code = %q (%v), want %q", got, err, tt.code)
			}
			if err == nil {
				if _, err := protocol.DecodeEnvelope(out); err != nil {
					t.Fatalf("own output refused: %v", err)
				}
			}
		})
	}
}

func TestDecodeBody(t *testing.T) {
	payload, err := protocol.EncodeMessage(protocol.MsgResend, "acme", protocol.HubSender, "r", 0, protocol.Resend{From: 5, To: 9})
	if err != nil {
		t.Fatal(err)
	}
	env, err := protocol.DecodeEnvelope(payload)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("OK", func(t *testing.T) {
		var r protocol.Resend
		if err := protocol.DecodeBody(env, &r); err != nil || r != (protocol.Resend{From: 5, To: 9}) {
			t.Fatalf("got %+v, %v", r, err)
		}
	})
	t.Run("OKOwnType", func(t *testing.T) {
		// A caller's own struct is not checked against the type.
		var r struct {
			From uint64 `cbor:"1,keyasint"`
		}
		if err := protocol.DecodeBody(env, &r); err != nil || r.From != 5 {
			t.Fatalf("got %+v, %v", r, err)
		}
	})
	t.Run("ErrWrongBodyType", func(t *testing.T) {
		var a protocol.Ack // same shape, wrong type
		err := protocol.DecodeBody(env, &a)
		if got := protocol.ErrorCode(err); got != protocol.CodeMessageMalformed {
			t.Fatalf("code = %q (%v), want message_malformed", got, err)
		}
	})
	t.Run("ErrBodyTooBig", func(t *testing.T) {
		e := env
		e.Body = make([]byte, protocol.MaxMessageBytes+1)
		if got := protocol.ErrorCode(protocol.DecodeBody(e, new(protocol.Resend))); got != protocol.CodeMessageTooLarge {
			t.Fatalf("code = %q, want message_too_large", got)
		}
	})
}

func TestMsgType(t *testing.T) {
	names := map[protocol.MsgType]string{
		protocol.MsgBatch: "batch", protocol.MsgAck: "ack", protocol.MsgResend: "resend",
		protocol.MsgSnapshotAnnounce: "snapshot_announce", protocol.MsgAgentState: "agent_state",
		protocol.MsgAllowanceRecall: "allowance_recall",
	}
	for ty := range protocol.MsgType(255) {
		name, known := names[ty]
		if got := ty.Known(); got != known {
			t.Errorf("%d.Known() = %v", ty, got)
		}
		if !known {
			name = fmt.Sprintf("msg_type_%d", ty)
			if protocol.NewBody(ty) != nil {
				t.Errorf("NewBody(%d) is not nil", ty)
			}
		} else if protocol.NewBody(ty) == nil {
			t.Errorf("NewBody(%v) is nil", ty)
		}
		if got := ty.String(); got != name {
			t.Errorf("%d.String() = %q, want %q", ty, got, name)
		}
	}
}

func TestNewDecMode(t *testing.T) {
	tagged := []byte{0xc1, 0x01} // tag 1 (epoch time) around 1
	var v any
	t.Run("ErrTagsForbidden", func(t *testing.T) {
		dm, err := protocol.NewDecMode(protocol.MessageLimits)
		if err != nil {
			t.Fatal(err)
		}
		if err := dm.Unmarshal(tagged, &v); err == nil {
			t.Fatal("tag accepted")
		}
	})
	t.Run("OKTagsAllowed", func(t *testing.T) {
		l := protocol.MessageLimits
		l.AllowTags = true
		dm, err := protocol.NewDecMode(l)
		if err != nil {
			t.Fatal(err)
		}
		if err := dm.Unmarshal(tagged, &v); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("OKZeroLimitsClamped", func(t *testing.T) {
		if _, err := protocol.NewDecMode(protocol.DecodeLimits{}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("OKSnapshotLimits", func(t *testing.T) {
		if _, err := protocol.NewDecMode(protocol.DecodeLimits{MaxBytes: protocol.MaxSnapshotBytes, MaxNestedLevels: protocol.MaxSnapshotNested, MaxArrayLen: 1 << 20, MaxMapPairs: 1 << 16}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestBatchValidate(t *testing.T) {
	t.Run("OKFixtures", func(t *testing.T) {
		for _, m := range loadGood(t) {
			if b, ok := m.body(t).(*protocol.Batch); ok {
				if err := b.Validate(protocol.TenantID(m.Tenant), protocol.AgentID(m.Sender)); err != nil {
					t.Errorf("%s: %v", m.Name, err)
				}
			}
		}
	})
	valid := func() protocol.Batch {
		return protocol.Batch{Redemptions: []protocol.Redemption{
			{ID: protocol.RedemptionID{Agent: "a1", Seq: 4}, Kind: protocol.KindRedeem, Tenant: "t1", Store: "s1", Currency: "EUR", Discount: 100},
			{ID: protocol.RedemptionID{Agent: "a1", Seq: 6}, Kind: protocol.KindRollback, Tenant: "t1", Store: "s1", Ref: &protocol.RedemptionID{Agent: "a1", Seq: 4}},
		}}
	}
	tests := []struct {
		name  string
		edit  func(b *protocol.Batch)
		field string
	}{
		{name: "OK", edit: func(*protocol.Batch) {}},
		{name: "OKEmpty", edit: func(b *protocol.Batch) { b.Redemptions = nil }},
		{name: "OKRefToHub", edit: func(b *protocol.Batch) { b.Redemptions[1].Ref.Agent = protocol.HubSender }},
		{name: "ErrOtherAgent", edit: func(b *protocol.Batch) { b.Redemptions[1].ID.Agent = "a2" }, field: "redemptions[1].id.agent"},
		{name: "ErrOtherTenant", edit: func(b *protocol.Batch) { b.Redemptions[0].Tenant = "t2" }, field: "redemptions[0].tenant"},
		{name: "ErrSeqZero", edit: func(b *protocol.Batch) { b.Redemptions[0].ID.Seq = 0 }, field: "redemptions[0].id.seq"},
		{name: "ErrSeqRepeated", edit: func(b *protocol.Batch) { b.Redemptions[1].ID.Seq = 4 }, field: "redemptions[1].id.seq"},
		{name: "ErrSeqDecreasing", edit: func(b *protocol.Batch) { b.Redemptions[1].ID.Seq = 3 }, field: "redemptions[1].id.seq"},
		{name: "ErrKindZero", edit: func(b *protocol.Batch) { b.Redemptions[0].Kind = 0 }, field: "redemptions[0].kind"},
		{name: "ErrKindUnknown", edit: func(b *protocol.Batch) { b.Redemptions[0].Kind = 5 }, field: "redemptions[0].kind"},
		{name: "ErrRollbackWithoutRef", edit: func(b *protocol.Batch) { b.Redemptions[1].Ref = nil }, field: "redemptions[1].ref"},
		{name: "ErrRefSeqZero", edit: func(b *protocol.Batch) { b.Redemptions[1].Ref.Seq = 0 }, field: "redemptions[1].ref"},
		{name: "ErrRefAgentBad", edit: func(b *protocol.Batch) { b.Redemptions[1].Ref.Agent = "" }, field: "redemptions[1].ref"},
		{name: "ErrStoreMissing", edit: func(b *protocol.Batch) { b.Redemptions[0].Store = "" }, field: "redemptions[0].store"},
		{name: "ErrCurrency", edit: func(b *protocol.Batch) { b.Redemptions[0].Currency = "euro" }, field: "redemptions[0].currency"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := valid()
			tt.edit(&b)
			err := b.Validate("t1", "a1")
			if tt.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var pe *protocol.Error
			if !errors.As(err, &pe) || pe.Code != protocol.CodeMessageMalformed || pe.Field != tt.field {
				t.Fatalf("err = %#v, want message_malformed on %s", err, tt.field)
			}
		})
	}
}
