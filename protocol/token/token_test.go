package token

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/b32"
)

var update = flag.Bool("update", false, "rewrite testdata/token/tokens.json from the generator")

const fixturePath = "../../testdata/token/tokens.json"

// fixtureKey is a deterministic key: the Ed25519 seed is SHA-256(seed).
type fixtureKey struct {
	Tenant   protocol.TenantID `json:"tenant"`
	KeyID    protocol.KeyID    `json:"kid"`
	Seed     string            `json:"seed"`
	NotAfter time.Time         `json:"not_after,omitzero"`
	InSet    bool              `json:"in_set"` // whether verifiers know it
}

type validCase struct {
	Name   string            `json:"name"`
	KeyID  protocol.KeyID    `json:"kid"`
	Tenant protocol.TenantID `json:"tenant"`
	Now    time.Time         `json:"now"`
	Claims Claims            `json:"claims"`
	Text   string            `json:"text"`
}

type badCase struct {
	Name   string            `json:"name"`
	Tenant protocol.TenantID `json:"tenant"`
	Now    time.Time         `json:"now"`
	Text   string            `json:"text"`
	Code   protocol.Code     `json:"code"`
}

type tokenFixtures struct {
	Keys  []fixtureKey `json:"keys"`
	Valid []validCase  `json:"valid"`
	Bad   []badCase    `json:"bad"`
}

func (f tokenFixtures) signingKey(tb testing.TB, kid protocol.KeyID) SigningKey {
	tb.Helper()
	for _, k := range f.Keys {
		if k.KeyID == kid {
			return testKey(k.Tenant, k.KeyID, k.Seed)
		}
	}
	tb.Fatalf("no fixture key %q", kid)
	return SigningKey{}
}

func (f tokenFixtures) keySet() KeyMap {
	m := KeyMap{}
	for _, k := range f.Keys {
		if k.InSet {
			pub := testKey(k.Tenant, k.KeyID, k.Seed).Public()
			pub.NotAfter = k.NotAfter
			m.Add(pub)
		}
	}
	return m
}

func loadTokenFixtures(tb testing.TB) tokenFixtures {
	tb.Helper()
	b, err := os.ReadFile(fixturePath)
	if err != nil {
		tb.Fatal(err)
	}
	var f tokenFixtures
	if err := json.Unmarshal(b, &f); err != nil {
		tb.Fatal(err)
	}
	if len(f.Keys) == 0 || len(f.Valid) == 0 || len(f.Bad) == 0 {
		tb.Fatal("tokens.json has an empty table")
	}
	return f
}

// TestGenerateFixtures rewrites tokens.json with -update; otherwise it checks
// that the generator still produces the committed file, so the fixtures and
// the code that makes them cannot drift apart.
func TestGenerateFixtures(t *testing.T) {
	f := generateFixtures(t)
	got, err := json.MarshalIndent(f, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	if *update {
		if err := os.WriteFile(fixturePath, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(fixturePath)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("%s is stale: run go test ./protocol/token -run TestGenerateFixtures -update", fixturePath)
	}
}

func TestVerifyValid(t *testing.T) {
	f := loadTokenFixtures(t)
	keys := f.keySet()
	for _, c := range f.Valid {
		t.Run("OK/"+c.Name, func(t *testing.T) {
			// Issuing the fixture claims again gives the same text:
			// encoding and Ed25519 signatures are deterministic.
			txt, err := Issue(f.signingKey(t, c.KeyID), c.Claims)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := txt, c.Text; got != want {
				t.Errorf("Issue = %s\nwant    %s", got, want)
			}
			got, err := Verify(keys, c.Tenant, c.Text, c.Now)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !claimsEqual(got, c.Claims) {
				t.Errorf("claims = %+v\nwant     %+v", got, c.Claims)
			}
			// What scanners and people do to the text changes nothing.
			for _, v := range []string{
				strings.ToLower(c.Text),
				" " + c.Text + "\r\n",
				"\t" + c.Text + "\n",
			} {
				if _, err := Verify(keys, c.Tenant, v, c.Now); err != nil {
					t.Errorf("Verify(%q): %v", v, err)
				}
			}
		})
	}
}

func claimsEqual(a, b Claims) bool {
	return a.Tenant == b.Tenant && a.Customer == b.Customer && a.Expires.Equal(b.Expires) &&
		a.NotBefore.Equal(b.NotBefore) && a.IssuedAt.Equal(b.IssuedAt) && a.Serial == b.Serial &&
		a.Campaign == b.Campaign && a.Uses == b.Uses && a.Tier == b.Tier && a.Segment == b.Segment &&
		a.Value == b.Value && a.Store == b.Store && a.StoreGroup == b.StoreGroup
}

// requiredCodes are the reason codes the bad-input table must cover.
var requiredCodes = []protocol.Code{
	protocol.CodeTokenEmpty, protocol.CodeTokenPrefix, protocol.CodeTokenVersion,
	protocol.CodeTokenAlphabet, protocol.CodeTokenTruncated, protocol.CodeTokenOversized,
	protocol.CodeTokenMalformed, protocol.CodeTokenTooDeep, protocol.CodeBadSignature,
	protocol.CodeUnknownKey, protocol.CodeWrongTenant, protocol.CodeBadAlgorithm,
	protocol.CodeTokenExpired, protocol.CodeTokenNotYet,
}

func TestVerifyBad(t *testing.T) {
	f := loadTokenFixtures(t)
	keys := f.keySet()
	seen := map[protocol.Code]bool{}
	for _, c := range f.Bad {
		seen[c.Code] = true
		t.Run("Err/"+c.Name, func(t *testing.T) {
			_, err := Verify(keys, c.Tenant, c.Text, c.Now)
			var pe *protocol.Error
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v (%T), want *protocol.Error %s", err, err, c.Code)
			}
			if got, want := pe.Code, c.Code; got != want {
				t.Fatalf("code = %s (%s), want %s", got, pe.Message, want)
			}
			if !pe.Code.Known() || pe.Message == "" {
				t.Errorf("code %q unknown or message empty", pe.Code)
			}
			if strings.Contains(pe.Message, "\n") {
				t.Errorf("message has more than one line: %q", pe.Message)
			}
		})
	}
	for _, code := range requiredCodes {
		if !seen[code] {
			t.Errorf("no bad-input fixture for %s", code)
		}
	}
}

// TestBadCharacterPosition checks the position in the message is the
// 1-based position in the trimmed text as the cashier sees it.
func TestBadCharacterPosition(t *testing.T) {
	txt, err := Issue(testKey("acme", "acme-k1", "acme-k1"), typicalClaims())
	if err != nil {
		t.Fatal(err)
	}
	bad := "  " + txt[:10] + "Z" + txt[11:]
	_, err = DecodeText(bad)
	if got, want := protocol.ErrorCode(err), protocol.CodeTokenAlphabet; got != want {
		t.Fatalf("code = %s, want %s", got, want)
	}
	if !strings.Contains(err.Error(), `'Z' at position 11`) {
		t.Errorf("message %q does not name 'Z' at position 11", err)
	}
}

func TestIssueErrors(t *testing.T) {
	k := testKey("acme", "acme-k1", "acme-k1")
	for _, tc := range []struct {
		name  string
		key   SigningKey
		edit  func(*Claims)
		field string
	}{
		{"ErrOtherTenant", k, func(c *Claims) { c.Tenant = "beta" }, "tenant"},
		{"ErrNoSerial", k, func(c *Claims) { c.Serial = "" }, "serial"},
		{"ErrNoCampaign", k, func(c *Claims) { c.Campaign = "" }, "campaign"},
		{"ErrBadCustomer", k, func(c *Claims) { c.Customer = "a b" }, "customer"},
		{"ErrNoIssuedAt", k, func(c *Claims) { c.IssuedAt = time.Time{} }, "issued_at"},
		{"ErrExpiresBeforeIssued", k, func(c *Claims) { c.Expires = c.IssuedAt }, "expires"},
		{"ErrNotBeforeAfterExpiry", k, func(c *Claims) { c.NotBefore = c.Expires }, "not_before"},
		{"ErrNoUses", k, func(c *Claims) { c.Uses = 0 }, "uses"},
		{"ErrValueNoCurrency", k, func(c *Claims) { c.Value = protocol.Money{Amount: 5} }, "value.currency"},
		{"ErrValueNegative", k, func(c *Claims) { c.Value = protocol.M(-5, "EUR") }, "value.amount"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := typicalClaims()
			tc.edit(&c)
			_, err := Issue(tc.key, c)
			var pe *protocol.Error
			if !errors.As(err, &pe) || pe.Code != protocol.CodeInvalidInput {
				t.Fatalf("err = %v, want invalid_input", err)
			}
			if got, want := pe.Field, tc.field; got != want {
				t.Errorf("field = %q, want %q", got, want)
			}
		})
	}
	t.Run("ErrNoPrivateKey", func(t *testing.T) {
		if _, err := Issue(SigningKey{Tenant: "acme", KeyID: "k"}, typicalClaims()); err == nil {
			t.Fatal("no error")
		}
	})
}

// TestIssueLargest fills every string claim to its limit: the token still
// fits in MaxBytes, so no valid claim set is refused for size.
func TestIssueLargest(t *testing.T) {
	k := testKey("acme", "acme-k1", "acme-k1")
	c := typicalClaims()
	c.Customer, c.Serial, c.Campaign = protocol.CustomerID(strings.Repeat("c", 64)), protocol.CodeID(strings.Repeat("s", 64)), protocol.CampaignID(strings.Repeat("p", 64))
	c.Tier, c.Segment = strings.Repeat("t", 64), strings.Repeat("s", 64)
	c.Store, c.StoreGroup, c.Value = protocol.StoreID(strings.Repeat("x", 64)), strings.Repeat("g", 64), protocol.M(1<<62, "EUR")
	txt, err := Issue(k, c)
	if err != nil {
		t.Fatalf("largest token: %v", err)
	}
	if len(txt) > MaxTextLen {
		t.Fatalf("largest token is %d chars, over MaxTextLen %d", len(txt), MaxTextLen)
	}
	got, err := Verify(KeyMap{}.Add(k.Public()), "acme", txt, t0.Add(time.Hour))
	if err != nil || !claimsEqual(got, c) {
		t.Fatalf("Verify = %+v, %v", got, err)
	}
	t.Logf("largest token: %d chars", len(txt))
}

// TestKeySetError checks a storage failure is passed through, not turned into
// a reason code the cashier would misread.
func TestKeySetError(t *testing.T) {
	k := testKey("acme", "acme-k1", "acme-k1")
	txt, err := Issue(k, typicalClaims())
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("disk on fire")
	_, err = Verify(failingKeys{boom}, "acme", txt, t0)
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want wrapped %v", err, boom)
	}
	if got, want := protocol.ErrorCode(err), protocol.CodeInternal; got != want {
		t.Errorf("code = %s, want %s", got, want)
	}
}

type failingKeys struct{ err error }

func (f failingKeys) LookupKey(protocol.KeyID) (PublicKey, error) { return PublicKey{}, f.err }

// TestEveryBitFlip flips each bit of a valid token's COSE bytes in turn:
// every one must be refused with a token reason code and none may panic.
// Flips inside the signature or a claim value are bad_signature; flips in
// the structure are one of the parse codes.
func TestEveryBitFlip(t *testing.T) {
	k := testKey("acme", "acme-k1", "acme-k1")
	keys := KeyMap{}.Add(k.Public())
	cose, err := IssueCOSE(k, typicalClaims())
	if err != nil {
		t.Fatal(err)
	}
	sigStart := len(cose) - 64
	counts := map[protocol.Code]int{}
	for i := range len(cose) * 8 {
		b := append([]byte(nil), cose...)
		b[i/8] ^= 1 << (i % 8)
		_, err := Verify(keys, "acme", EncodeText(b), t0.Add(time.Hour))
		code := protocol.ErrorCode(err)
		counts[code]++
		if err == nil || code == protocol.CodeInternal {
			t.Fatalf("flip of bit %d: err = %v", i, err)
		}
		if i/8 >= sigStart && code != protocol.CodeBadSignature {
			t.Errorf("flip of signature bit %d: code %s, want bad_signature", i, code)
		}
	}
	t.Logf("bit flips by code: %v", counts)
}

// --- fixture generator ---

func generateFixtures(tb testing.TB) tokenFixtures {
	f := tokenFixtures{Keys: []fixtureKey{
		{Tenant: "acme", KeyID: "acme-k1", Seed: "acme-k1", InSet: true},
		{Tenant: "acme", KeyID: "acme-k0", Seed: "acme-k0", InSet: true, NotAfter: t0.Add(-time.Hour)},
		{Tenant: "acme", KeyID: "acme-k9", Seed: "acme-k9", InSet: false},
		{Tenant: "beta", KeyID: "beta-k1", Seed: "beta-k1", InSet: true},
		{Tenant: "gamma", KeyID: "gamma-k1", Seed: "gamma-k1", InSet: false},
	}}
	acme := f.signingKey(tb, "acme-k1")
	beta := f.signingKey(tb, "beta-k1")
	now := t0.Add(time.Hour)
	issue := func(k SigningKey, c Claims) string {
		tb.Helper()
		txt, err := Issue(k, c)
		if err != nil {
			tb.Fatal(err)
		}
		return txt
	}
	typ := typicalClaims()
	minimal := Claims{Tenant: "acme", IssuedAt: t0, Expires: t0.Add(24 * time.Hour), Serial: "1", Campaign: "c", Uses: 1}
	full := typicalClaims()
	full.Segment, full.Value, full.Store, full.StoreGroup, full.Uses = "lapsed", protocol.M(2500, "EUR"), "store-042", "north", 3
	betaClaims := typicalClaims()
	betaClaims.Tenant = "beta"
	for _, v := range []struct {
		name   string
		key    SigningKey
		tenant protocol.TenantID
		now    time.Time
		c      Claims
	}{
		{"typical", acme, "acme", now, typ},
		{"minimal", acme, "acme", now, minimal},
		{"full", acme, "acme", now, full},
		{"other tenant", beta, "beta", now, betaClaims},
		{"last second before expiry", acme, "acme", typ.Expires.Add(-time.Second), typ},
		{"clock behind by the skew", acme, "acme", typ.NotBefore.Add(-ClockSkew), typ},
	} {
		f.Valid = append(f.Valid, validCase{Name: v.name, KeyID: v.key.KeyID, Tenant: v.tenant, Now: v.now, Claims: v.c, Text: issue(v.key, v.c)})
	}

	good := issue(acme, typ)
	goodCOSE, _ := DecodeText(good)
	payload, _ := typ.marshal()
	prot := encodeProtected(acme.KeyID)
	bad := func(name, text string, code protocol.Code) {
		f.Bad = append(f.Bad, badCase{Name: name, Tenant: "acme", Now: now, Text: text, Code: code})
	}
	flip := func(b []byte, byteIdx int, mask byte) []byte {
		c := append([]byte(nil), b...)
		c[byteIdx] ^= mask
		return c
	}
	enc := func(v any) []byte {
		b, err := protocol.EncMode.Marshal(v)
		if err != nil {
			tb.Fatal(err)
		}
		return b
	}
	// signed builds a COSE_Sign1 with a correct signature over arbitrary
	// headers and payload, to show that checks after the signature hold.
	signed := func(k SigningKey, prot, unprot, payload []byte) string {
		sig := sigEd(k, prot, payload)
		return EncodeText(enc(cbor.Tag{Number: coseSign1Tag, Content: []any{prot, cbor.RawMessage(unprot), payload, sig}}))
	}
	claimsWith := func(edit func(map[int]any)) []byte {
		m := map[int]any{keyIss: "acme", keyExp: typ.Expires.Unix(), keyIat: t0.Unix(), keyCti: []byte("S1"), keyCampaign: "c", keyUses: 1}
		edit(m)
		return enc(m)
	}
	deep := any("x")
	for range 12 {
		deep = []any{deep}
	}
	big := map[int]int{}
	for i := range 20 {
		big[i+100] = i
	}
	payloadAt := strings.Index(string(goodCOSE), string(payload))
	campaignAt := strings.Index(string(goodCOSE), "summer-26")
	if payloadAt < 0 || campaignAt < 0 {
		tb.Fatal("payload not found in token")
	}

	bad("empty", "", protocol.CodeTokenEmpty)
	bad("only whitespace", " \r\n\t", protocol.CodeTokenEmpty)
	bad("wrong prefix", "XX1"+good[3:], protocol.CodeTokenPrefix)
	bad("a URL", "https://example.com/?c=PC1ABC", protocol.CodeTokenPrefix)
	bad("EAN barcode", "4006381333931", protocol.CodeTokenPrefix)
	bad("unknown version", "PC2"+good[3:], protocol.CodeTokenVersion)
	bad("QWERTZ Y in text", good[:40]+"Y"+good[41:], protocol.CodeTokenAlphabet)
	bad("inner space", good[:40]+" "+good[40:], protocol.CodeTokenAlphabet)
	bad("dash", good[:40]+"-"+good[41:], protocol.CodeTokenAlphabet)
	bad("non-ASCII", good[:40]+"é"+good[41:], protocol.CodeTokenAlphabet)
	bad("prefix only", "PC1", protocol.CodeTokenTruncated)
	bad("magic only", "PC", protocol.CodeTokenTruncated)
	bad("cut by one char", good[:len(good)-1], protocol.CodeTokenTruncated)
	bad("cut in half", good[:len(good)/2], protocol.CodeTokenTruncated)
	bad("cut at byte boundary", EncodeText(goodCOSE[:len(goodCOSE)-10]), protocol.CodeTokenTruncated)
	bad("claim value bit flipped", EncodeText(flip(goodCOSE, campaignAt, 0x01)), protocol.CodeBadSignature)
	bad("signature bit flipped", EncodeText(flip(goodCOSE, len(goodCOSE)-5, 0x10)), protocol.CodeBadSignature)
	bad("payload no longer CBOR map", EncodeText(flip(goodCOSE, payloadAt, 0x80)), protocol.CodeTokenMalformed)
	bad("kid bit flipped", EncodeText(flip(goodCOSE, strings.Index(string(goodCOSE), "acme-k1")+6, 0x02)), protocol.CodeUnknownKey)
	bad("unknown kid", issue(f.signingKey(tb, "acme-k9"), typ), protocol.CodeUnknownKey)
	bad("other tenant's key", issue(beta, betaClaims), protocol.CodeWrongTenant)
	gammaClaims := typicalClaims()
	gammaClaims.Tenant = "gamma"
	bad("foreign brand's token, key unknown here", issue(f.signingKey(tb, "gamma-k1"), gammaClaims), protocol.CodeWrongTenant)
	bad("other tenant's key claiming our tenant", signed(beta, encodeProtected(beta.KeyID), []byte{0xa0}, payload), protocol.CodeWrongTenant)
	f.Bad = append(f.Bad, badCase{Name: "our key claiming other tenant", Tenant: "beta", Now: now,
		Text: signed(beta, encodeProtected(beta.KeyID), []byte{0xa0}, payload), Code: protocol.CodeWrongTenant})
	f.Bad = append(f.Bad, badCase{Name: "verified for other tenant", Tenant: "beta", Now: now, Text: good, Code: protocol.CodeWrongTenant})
	f.Bad = append(f.Bad, badCase{Name: "expired", Tenant: "acme", Now: typ.Expires, Text: good, Code: protocol.CodeTokenExpired})
	f.Bad = append(f.Bad, badCase{Name: "retired key", Tenant: "acme", Now: now, Text: issue(f.signingKey(tb, "acme-k0"), typ), Code: protocol.CodeTokenExpired})
	f.Bad = append(f.Bad, badCase{Name: "not yet valid", Tenant: "acme", Now: typ.NotBefore.Add(-ClockSkew - time.Second), Text: good, Code: protocol.CodeTokenNotYet})
	future := typ
	future.NotBefore, future.IssuedAt = time.Time{}, t0.Add(time.Hour)
	f.Bad = append(f.Bad, badCase{Name: "issued in the future", Tenant: "acme", Now: t0, Text: issue(acme, future), Code: protocol.CodeTokenNotYet})
	bad("oversized text", "PC1"+strings.Repeat("0", MaxTextLen), protocol.CodeTokenOversized)
	bad("oversized header map", signed(acme, prot, enc(big), payload), protocol.CodeTokenOversized)
	bad("deep nesting in header", signed(acme, prot, enc(map[int]any{100: deep}), payload), protocol.CodeTokenTooDeep)
	bad("deep nesting in claims", signed(acme, prot, []byte{0xa0}, claimsWith(func(m map[int]any) { m[keyValue] = deep })), protocol.CodeTokenTooDeep)
	bad("random bytes", EncodeText([]byte{0xff, 0xfe, 0x01, 0x02, 0x03}), protocol.CodeTokenMalformed)
	bad("COSE_Mac0 tag", EncodeText(append([]byte{0xd1}, goodCOSE[1:]...)), protocol.CodeTokenMalformed)
	bad("untagged", EncodeText(goodCOSE[1:]), protocol.CodeTokenMalformed)
	bad("trailing bytes", EncodeText(append(append([]byte(nil), goodCOSE...), 0x00)), protocol.CodeTokenMalformed)
	bad("three elements", EncodeText(enc(cbor.Tag{Number: coseSign1Tag, Content: []any{prot, map[int]int{}, payload}})), protocol.CodeTokenMalformed)
	bad("detached payload", EncodeText(enc(cbor.Tag{Number: coseSign1Tag, Content: []any{prot, map[int]int{}, nil, sigEd(acme, prot, nil)}})), protocol.CodeTokenMalformed)
	bad("duplicate claim", signed(acme, prot, []byte{0xa0}, append([]byte{0xa7, 0x01, 0x64, 'a', 'c', 'm', 'e'}, payload[1:]...)), protocol.CodeTokenMalformed)
	bad("unknown claim", signed(acme, prot, []byte{0xa0}, claimsWith(func(m map[int]any) { m[-99] = 1 })), protocol.CodeTokenMalformed)
	bad("float time", signed(acme, prot, []byte{0xa0}, claimsWith(func(m map[int]any) { m[keyExp] = 1.5e9 })), protocol.CodeTokenMalformed)
	bad("missing serial", signed(acme, prot, []byte{0xa0}, claimsWith(func(m map[int]any) { delete(m, keyCti) })), protocol.CodeTokenMalformed)
	bad("zero uses", signed(acme, prot, []byte{0xa0}, claimsWith(func(m map[int]any) { m[keyUses] = 0 })), protocol.CodeTokenMalformed)
	bad("kid in unprotected", signed(acme, enc(map[int]any{headerAlg: algEdDSA}), enc(map[int]any{headerKeyID: []byte("acme-k1")}), payload), protocol.CodeTokenMalformed)
	bad("crit header", signed(acme, enc(map[int]any{headerAlg: algEdDSA, headerCrit: []int{99}, headerKeyID: []byte("acme-k1")}), []byte{0xa0}, payload), protocol.CodeTokenMalformed)
	bad("wrong alg ES256", signed(acme, enc(map[int]any{headerAlg: -7, headerKeyID: []byte("acme-k1")}), []byte{0xa0}, payload), protocol.CodeBadAlgorithm)
	bad("alg as text", signed(acme, enc(map[int]any{headerAlg: "EdDSA", headerKeyID: []byte("acme-k1")}), []byte{0xa0}, payload), protocol.CodeBadAlgorithm)
	bad("no alg", signed(acme, enc(map[int]any{headerKeyID: []byte("acme-k1")}), []byte{0xa0}, payload), protocol.CodeBadAlgorithm)
	return f
}

func sigEd(k SigningKey, prot, payload []byte) []byte {
	return ed25519.Sign(k.Private, sigStructure(prot, payload))
}

// Sanity: the fixture generator's signed helper agrees with Issue.
func TestSignedHelperMatchesIssue(t *testing.T) {
	k := testKey("acme", "acme-k1", "acme-k1")
	payload, err := typicalClaims().marshal()
	if err != nil {
		t.Fatal(err)
	}
	want, err := IssueCOSE(k, typicalClaims())
	if err != nil {
		t.Fatal(err)
	}
	got := encodeSign1(encodeProtected(k.KeyID), payload, sigEd(k, encodeProtected(k.KeyID), payload))
	if string(got) != string(want) {
		t.Fatalf("helper %x\nIssue  %x", got, want)
	}
	if b32.Encode(want) != EncodeText(want)[len(Prefix):] {
		t.Fatal("EncodeText is not Prefix + b32")
	}
}
