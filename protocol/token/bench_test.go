package token

import (
	"crypto/ed25519"
	"testing"
	"time"
)

func BenchmarkIssue(b *testing.B) {
	k := testKey("acme", "acme-k1", "acme-k1")
	c := typicalClaims()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Issue(k, c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	k := testKey("acme", "acme-k1", "acme-k1")
	keys := KeyMap{}.Add(k.Public())
	txt, err := Issue(k, typicalClaims())
	if err != nil {
		b.Fatal(err)
	}
	now := t0.Add(time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Verify(keys, "acme", txt, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyBadSignature is the cost of refusing a forgery: the whole
// parse plus the signature check.
func BenchmarkVerifyBadSignature(b *testing.B) {
	k := testKey("acme", "acme-k1", "acme-k1")
	keys := KeyMap{}.Add(k.Public())
	cose, err := IssueCOSE(k, typicalClaims())
	if err != nil {
		b.Fatal(err)
	}
	cose[len(cose)-1] ^= 1
	txt := EncodeText(cose)
	now := t0.Add(time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Verify(keys, "acme", txt, now); err == nil {
			b.Fatal("verified")
		}
	}
}

// BenchmarkEd25519Verify is the same-process baseline: the signature check
// alone, over the same Sig_structure, so Verify's overhead is the ratio.
func BenchmarkEd25519Verify(b *testing.B) {
	k := testKey("acme", "acme-k1", "acme-k1")
	payload, err := typicalClaims().marshal()
	if err != nil {
		b.Fatal(err)
	}
	msg := sigStructure(encodeProtected(k.KeyID), payload)
	sig := ed25519.Sign(k.Private, msg)
	pub := k.Public().Key
	b.ReportAllocs()
	for b.Loop() {
		if !ed25519.Verify(pub, msg, sig) {
			b.Fatal("bad")
		}
	}
}

// BenchmarkEd25519Sign is the baseline for Issue.
func BenchmarkEd25519Sign(b *testing.B) {
	k := testKey("acme", "acme-k1", "acme-k1")
	payload, err := typicalClaims().marshal()
	if err != nil {
		b.Fatal(err)
	}
	msg := sigStructure(encodeProtected(k.KeyID), payload)
	b.ReportAllocs()
	for b.Loop() {
		ed25519.Sign(k.Private, msg)
	}
}

// BenchmarkParse is Verify without the signature check: text decoding,
// COSE and claims parsing. Verify ≈ Parse + Ed25519Verify.
func BenchmarkParse(b *testing.B) {
	k := testKey("acme", "acme-k1", "acme-k1")
	txt, err := Issue(k, typicalClaims())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		cose, err := DecodeText(txt)
		if err != nil {
			b.Fatal(err)
		}
		msg, err := parseSign1(cose)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := parseClaims(msg.Payload); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyVsEd25519 interleaves Verify and a bare ed25519.Verify of
// the same token in one loop and reports both and their ratio, so that load
// from other processes hits both alike (on a busy machine the separate
// benchmarks drift apart).
func BenchmarkVerifyVsEd25519(b *testing.B) {
	k := testKey("acme", "acme-k1", "acme-k1")
	keys := KeyMap{}.Add(k.Public())
	txt, err := Issue(k, typicalClaims())
	if err != nil {
		b.Fatal(err)
	}
	cose, _ := DecodeText(txt)
	msg, err := parseSign1(cose)
	if err != nil {
		b.Fatal(err)
	}
	tbs := sigStructure(msg.Protected, msg.Payload)
	pub := k.Public().Key
	now := t0.Add(time.Hour)
	var tv, te time.Duration
	for b.Loop() {
		s := time.Now()
		if _, err := Verify(keys, "acme", txt, now); err != nil {
			b.Fatal(err)
		}
		m := time.Now()
		if !ed25519.Verify(pub, tbs, msg.Signature) {
			b.Fatal("bad")
		}
		tv += m.Sub(s)
		te += time.Since(m)
	}
	b.ReportMetric(float64(tv.Nanoseconds())/float64(b.N), "verify-ns/op")
	b.ReportMetric(float64(te.Nanoseconds())/float64(b.N), "ed25519-ns/op")
	b.ReportMetric(float64(tv)/float64(te), "ratio")
}
