package protocol

import (
	"bytes"
	"crypto/ed25519"
	"math"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"
)

var internalHubKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))

// signDownBefore is SignDown as it was before it encoded the envelope
// once (EncodeMessage, DecodeEnvelope, a generic Marshal of the signed
// array): the reference for TestSignDownSameBytes and the baseline of
// BenchmarkSignDown.
func signDownBefore(key ed25519.PrivateKey, t MsgType, tenant TenantID, to AgentID, id string, sentMicros int64, body any) ([]byte, error) {
	if err := ValidateID("recipient", string(to)); err != nil {
		return nil, err
	}
	plain, err := EncodeMessage(t, tenant, HubSender, id, sentMicros, body)
	if err != nil {
		return nil, err
	}
	env, err := DecodeEnvelope(plain)
	if err != nil {
		return nil, err
	}
	env.To = to
	msg, err := sigInputMarshal(env)
	if err != nil {
		return nil, err
	}
	env.Sig = ed25519.Sign(key, msg)
	return EncMode.Marshal(env)
}

// sigInputMarshal is downSigInput with EncMode's generic Marshal.
func sigInputMarshal(env Envelope) ([]byte, error) {
	b, err := EncMode.Marshal([]any{uint8(env.Type), env.Version, env.ID, string(env.Tenant), string(env.Sender),
		string(env.To), env.Sent, []byte(env.Body)})
	if err != nil {
		return nil, err
	}
	return append([]byte(downSigContext), b...), nil
}

// TestSigInputCanonical: the hand-written signed input is byte for byte
// EncMode's canonical encoding, for every length class of every field
// (agents that verify with an older build compute it that way).
func TestSigInputCanonical(t *testing.T) {
	lens := []int{0, 1, 23, 24, 255, 256, 65535, 65536}
	sents := []int64{0, 1, 23, 24, 255, 256, 65535, 65536, math.MaxUint32, math.MaxUint32 + 1, math.MaxInt64, -1, -24, -25, -257, math.MinInt64}
	rnd := rand.New(rand.NewPCG(1, 2))
	check := func(env Envelope) {
		t.Helper()
		want, err := sigInputMarshal(env)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := downSigInput(env)
		if !bytes.Equal(got, want) {
			t.Fatalf("type %d version %d id %d tenant %d sent %d body %d: hand-written input differs", env.Type, env.Version, len(env.ID), len(env.Tenant), env.Sent, len(env.Body))
		}
	}
	for _, n := range lens {
		for _, sent := range sents {
			check(Envelope{Type: MsgType(n % 256), Version: uint16(n % 65536), ID: strings.Repeat("i", n), Tenant: "acme", Sender: HubSender,
				To: AgentID(strings.Repeat("t", n%300)), Sent: sent, Body: bytes.Repeat([]byte{0xa0}, n)})
		}
	}
	for range 2000 {
		check(Envelope{Type: MsgType(rnd.IntN(256)), Version: uint16(rnd.IntN(65536)), ID: strings.Repeat("x", rnd.IntN(300)),
			Tenant: TenantID(strings.Repeat("a", rnd.IntN(70))), Sender: AgentID(strings.Repeat("s", rnd.IntN(30))),
			To: AgentID(strings.Repeat("t", rnd.IntN(70))), Sent: int64(rnd.Uint64()), Body: bytes.Repeat([]byte{1}, rnd.IntN(600))})
	}
}

// TestSignDownSameBytes: SignDown's message is byte for byte the one it
// made before it encoded the envelope once.
func TestSignDownSameBytes(t *testing.T) {
	for _, b := range []struct {
		t    MsgType
		body any
	}{
		{MsgAck, Ack{Watermark: 41, Beyond: []uint64{43, 44}}},
		{MsgAck, Ack{Watermark: 1000000}},
		{MsgResend, Resend{From: 42, To: 42}},
		{MsgSnapshotAnnounce, SnapshotAnnounce{Version: 7, ETag: `"L12"`, Spread: 8000}},
		{MsgAllowanceRecall, AllowanceRecall{Campaign: "summer"}},
		{MsgAllowanceRecall, &AllowanceRecall{}},
	} {
		for _, sent := range []int64{0, 1700000000000000, -5} {
			want, err := signDownBefore(internalHubKey, b.t, "acme", "till-00001", "hub-1a2b-12345", sent, b.body)
			if err != nil {
				t.Fatal(err)
			}
			got, err := SignDown(internalHubKey, b.t, "acme", "till-00001", "hub-1a2b-12345", sent, b.body)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s sent %d: %x, want %x", b.t, sent, got, want)
			}
		}
	}
	// The refusals EncodeMessage made stay.
	if _, err := SignDown(internalHubKey, MsgAck, "a/b", "till-1", "x", 0, Ack{}); ErrorCode(err) != CodeInvalidInput {
		t.Fatalf("bad tenant: %v", err)
	}
}

// BenchmarkSignDown is one signed Ack as the hub's publisher makes it:
// SignDown now (new-cpu-µs) against the code before it (before-cpu-µs),
// alternated in blocks of 50 within each op so that both see the same
// load; ratio is new over before. Process CPU time (getrusage) is
// steadier than wall time on a shared machine. Most of either is
// ed25519.Sign (BenchmarkEd25519Sign, the floor).
func BenchmarkSignDown(b *testing.B) {
	ack := Ack{Watermark: 41, Beyond: []uint64{43}}
	const block = 50
	var cpuNew, cpuBefore time.Duration
	b.ReportAllocs()
	for b.Loop() {
		c0 := processCPU()
		for range block {
			if _, err := SignDown(internalHubKey, MsgAck, "chain", "till-01234", "hub-1a2b-12345", 1700000000000000, ack); err != nil {
				b.Fatal(err)
			}
		}
		c1 := processCPU()
		for range block {
			if _, err := signDownBefore(internalHubKey, MsgAck, "chain", "till-01234", "hub-1a2b-12345", 1700000000000000, ack); err != nil {
				b.Fatal(err)
			}
		}
		c2 := processCPU()
		cpuNew += c1 - c0
		cpuBefore += c2 - c1
	}
	n := float64(b.N * block)
	b.ReportMetric(float64(cpuNew.Nanoseconds())/1e3/n, "new-cpu-µs")
	b.ReportMetric(float64(cpuBefore.Nanoseconds())/1e3/n, "before-cpu-µs")
	b.ReportMetric(float64(cpuNew)/float64(cpuBefore), "ratio")
}

// BenchmarkEd25519Sign is the floor of BenchmarkSignDown: the signature
// alone, over an Ack's signed input.
func BenchmarkEd25519Sign(b *testing.B) {
	msg := make([]byte, 100)
	var cpu time.Duration
	for b.Loop() {
		c0 := processCPU()
		ed25519.Sign(internalHubKey, msg)
		cpu += processCPU() - c0
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(b.N), "cpu-µs")
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
