package b32_test

import (
	"bytes"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/punchcard/punchcard/protocol/b32"
)

// stdEnc is an independent oracle: the standard library's RFC 4648 base 32
// with our alphabet, unpadded.
var stdEnc = base32.NewEncoding(b32.Alphabet).WithPadding(base32.NoPadding)

// fixtures is testdata/token/b32.json: valid pairs and bad texts.
type fixtures struct {
	Valid []struct {
		Hex  string `json:"hex"`
		Text string `json:"text"`
	} `json:"valid"`
	Bad []struct {
		Name string `json:"name"`
		Text string `json:"text"`
		Err  string `json:"err"` // "char", "length" or "trailing"
		Pos  int    `json:"pos"` // for "char": 0-based offset
	} `json:"bad"`
	Normalize []struct {
		In  string `json:"in"`
		Out string `json:"out"`
	} `json:"normalize"`
}

func loadFixtures(tb testing.TB) fixtures {
	tb.Helper()
	b, err := os.ReadFile("../../testdata/token/b32.json")
	if err != nil {
		tb.Fatal(err)
	}
	var f fixtures
	if err := json.Unmarshal(b, &f); err != nil {
		tb.Fatal(err)
	}
	if len(f.Valid) == 0 || len(f.Bad) == 0 || len(f.Normalize) == 0 {
		tb.Fatal("b32.json has an empty table")
	}
	return f
}

func TestAlphabet(t *testing.T) {
	if got, want := len(b32.Alphabet), 32; got != want {
		t.Fatalf("len = %d, want %d", got, want)
	}
	const qrAlnum = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
	seen := map[rune]bool{}
	for _, r := range b32.Alphabet {
		if seen[r] {
			t.Errorf("%q twice", r)
		}
		seen[r] = true
		if !strings.ContainsRune(qrAlnum, r) {
			t.Errorf("%q is not QR alphanumeric", r)
		}
		if strings.ContainsRune("IOYZ", r) {
			t.Errorf("%q must be left out", r)
		}
	}
}

func TestEncodeDecode(t *testing.T) {
	f := loadFixtures(t)
	for _, v := range f.Valid {
		t.Run("OK/"+v.Hex, func(t *testing.T) {
			src, err := hex.DecodeString(v.Hex)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := b32.Encode(src), v.Text; got != want {
				t.Errorf("Encode = %q, want %q", got, want)
			}
			if got, want := stdEnc.EncodeToString(src), v.Text; got != want {
				t.Errorf("oracle Encode = %q, want %q (fixture wrong?)", got, want)
			}
			got, err := b32.Decode(v.Text)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !bytes.Equal(got, src) {
				t.Errorf("Decode = %x, want %x", got, src)
			}
			if got, want := len(v.Text), b32.EncodedLen(len(src)); got != want {
				t.Errorf("EncodedLen = %d, want %d", want, got)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	f := loadFixtures(t)
	for _, v := range f.Bad {
		t.Run("Err/"+v.Name, func(t *testing.T) {
			_, err := b32.Decode(v.Text)
			var ce *b32.CharError
			switch v.Err {
			case "char":
				if !errors.As(err, &ce) {
					t.Fatalf("err = %v, want CharError", err)
				}
				if got, want := ce.Pos, v.Pos; got != want {
					t.Errorf("Pos = %d, want %d", got, want)
				}
				if got, want := ce.Char, v.Text[v.Pos]; got != want {
					t.Errorf("Char = %q, want %q", got, want)
				}
			case "length":
				if !errors.Is(err, b32.ErrLength) {
					t.Fatalf("err = %v, want ErrLength", err)
				}
			case "trailing":
				if !errors.Is(err, b32.ErrTrailingBits) {
					t.Fatalf("err = %v, want ErrTrailingBits", err)
				}
			default:
				t.Fatalf("fixture err %q unknown", v.Err)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	f := loadFixtures(t)
	for _, v := range f.Normalize {
		t.Run("OK/"+v.In, func(t *testing.T) {
			if got, want := b32.Normalize(v.In), v.Out; got != want {
				t.Errorf("Normalize(%q) = %q, want %q", v.In, got, want)
			}
		})
	}
}

// TestRoundTripAllLengths checks every length from 0 to 64 bytes against the
// oracle, which covers every tail shape.
func TestRoundTripAllLengths(t *testing.T) {
	src := make([]byte, 64)
	for i := range src {
		src[i] = byte(i*37 + 11)
	}
	for n := 0; n <= len(src); n++ {
		s := b32.Encode(src[:n])
		if want := stdEnc.EncodeToString(src[:n]); s != want {
			t.Fatalf("n=%d: Encode = %q, want %q", n, s, want)
		}
		got, err := b32.Decode(s)
		if err != nil || !bytes.Equal(got, src[:n]) {
			t.Fatalf("n=%d: Decode = %x, %v", n, got, err)
		}
	}
}

// TestEveryTrailingBitRejected flips each unused bit of the last character
// and expects ErrTrailingBits: every byte string has one text only.
func TestEveryTrailingBitRejected(t *testing.T) {
	for n := 1; n <= 5; n++ {
		s := b32.Encode(bytes.Repeat([]byte{0xA5}, n))
		unused := len(s)*5 - n*8
		last := strings.IndexByte(b32.Alphabet, s[len(s)-1])
		for bit := 0; bit < unused; bit++ {
			bad := s[:len(s)-1] + string(b32.Alphabet[last^(1<<bit)])
			if _, err := b32.Decode(bad); !errors.Is(err, b32.ErrTrailingBits) {
				t.Errorf("n=%d bit=%d: err = %v, want ErrTrailingBits", n, bit, err)
			}
		}
	}
}

func FuzzDecode(f *testing.F) {
	fx := loadFixtures(f)
	for _, v := range fx.Valid {
		f.Add(v.Text)
	}
	for _, v := range fx.Bad {
		f.Add(v.Text)
	}
	for _, v := range fx.Normalize {
		f.Add(v.In)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := b32.Decode(s)
		want, werr := stdEnc.DecodeString(s)
		if err != nil {
			// The oracle is laxer (trailing bits, '\r' and '\n'), never stricter.
			return
		}
		if werr != nil || !bytes.Equal(b, want) {
			t.Fatalf("Decode(%q) = %x, oracle %x, %v", s, b, want, werr)
		}
		if got := b32.Encode(b); got != s {
			t.Fatalf("Encode(Decode(%q)) = %q: not canonical", s, got)
		}
		n := b32.Normalize(s)
		if n != strings.Trim(s, " \t\r\n") {
			t.Fatalf("Normalize changed a valid text %q to %q", s, n)
		}
	})
}

func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0xff, 0, 1})
	f.Fuzz(func(t *testing.T, src []byte) {
		s := b32.Encode(src)
		got, err := b32.Decode(b32.Normalize(" " + strings.ToLower(s) + "\r\n"))
		if err != nil || !bytes.Equal(got, src) {
			t.Fatalf("round trip of %x via %q: %x, %v", src, s, got, err)
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	src := make([]byte, 153)
	for i := range src {
		src[i] = byte(i * 7)
	}
	dst := make([]byte, 0, b32.EncodedLen(len(src)))
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		dst = b32.AppendEncode(dst[:0], src)
	}
}

func BenchmarkDecode(b *testing.B) {
	src := make([]byte, 153)
	for i := range src {
		src[i] = byte(i * 7)
	}
	s := b32.Encode(src)
	dst := make([]byte, 0, len(src))
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if dst, err = b32.AppendDecode(dst[:0], s); err != nil {
			b.Fatal(err)
		}
	}
}
