package qr_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"image/png"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/punchcard/punchcard/qr"
)

// tokenAlphabet is the token text alphabet: digits and upper-case letters
// without I, O, Y and Z.
const tokenAlphabet = "0123456789ABCDEFGHJKLMNPQRSTUVWX"

// zbarimg returns the path of the real zbarimg decoder or fails the test:
// CI installs it, and a QR test that silently skips proves nothing.
func zbarimg(tb testing.TB) string {
	tb.Helper()
	p, err := exec.LookPath("zbarimg")
	if err != nil {
		tb.Fatalf("zbarimg not found (%v): install zbar-tools (apt-get install zbar-tools) to run the QR tests", err)
	}
	return p
}

// decode reads the QR code in the PNG file with zbarimg and returns its text.
// zbarimg ends its output with one newline, which is not part of the symbol.
func decode(tb testing.TB, file string) string {
	tb.Helper()
	cmd := exec.Command(zbarimg(tb), "--raw", "-q", "-Sdisable", "-Sqrcode.enable", file) // QR only
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("zbarimg %s: %v: %s", file, err, stderr.String())
	}
	return strings.TrimSuffix(string(out), "\n")
}

// randomText returns n characters drawn from alphabet.
func randomText(r *rand.Rand, alphabet string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

// fakeToken is a token-shaped string: "PC1" and 200 token-alphabet characters.
func fakeToken(r *rand.Rand) string { return "PC1" + randomText(r, tokenAlphabet, 200) }

type textCase struct {
	Name string `json:"name"`
	Text string `json:"text"`
}

func loadJSON(tb testing.TB, name string, v any) {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "qr", name))
	if err != nil {
		tb.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
}

// roundTrip renders text to a PNG file and decodes it with zbarimg.
func roundTrip(t *testing.T, e *qr.Encoder, text string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "code.png")
	if err := e.WriteFile(file, text); err != nil {
		t.Fatal(err)
	}
	if got := decode(t, file); got != text {
		t.Fatalf("zbarimg read %q, want %q", got, text)
	}
}

func TestEncoder_WriteFile(t *testing.T) {
	var cases []textCase
	loadJSON(t, "texts.json", &cases)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 3 {
		cases = append(cases, textCase{Name: "RandomToken" + string(rune('A'+i)), Text: fakeToken(r)})
	}
	for _, c := range cases {
		t.Run("OK"+c.Name, func(t *testing.T) {
			roundTrip(t, qr.NewEncoder(), c.Text)
		})
	}

	t.Run("OKLevelsAndSizes", func(t *testing.T) {
		tok := fakeToken(r)
		for _, e := range []*qr.Encoder{
			{Level: qr.LevelL, ModuleSize: 3, QuietZone: 4},
			{Level: qr.LevelM, ModuleSize: 4, QuietZone: 2},
			{Level: qr.LevelQ, ModuleSize: 5, QuietZone: 4},
			{Level: qr.LevelH, ModuleSize: 6, QuietZone: 8},
		} {
			roundTrip(t, e, tok)
		}
	})
}

func TestEncoder_PNG(t *testing.T) {
	t.Run("OKGeometry", func(t *testing.T) {
		for _, tc := range []struct{ module, zone int }{{1, 0}, {4, 2}, {8, 4}, {3, 7}} {
			e := &qr.Encoder{Level: qr.LevelQ, ModuleSize: tc.module, QuietZone: tc.zone}
			const text = "GIFT-7K3M-9QXP"
			v, err := e.Version(text)
			if err != nil {
				t.Fatal(err)
			}
			b, err := e.PNG(text)
			if err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			side := (17 + 4*v + 2*tc.zone) * tc.module
			if got := img.Bounds().Dx(); got != side || img.Bounds().Dy() != side {
				t.Fatalf("module %d zone %d: image %v, want %dx%d", tc.module, tc.zone, img.Bounds(), side, side)
			}
			// The quiet zone is white; the top-left finder's corner module is black.
			z := tc.zone * tc.module
			if z > 0 {
				if r, _, _, _ := img.At(z-1, z-1).RGBA(); r == 0 {
					t.Fatalf("module %d zone %d: quiet zone pixel is dark", tc.module, tc.zone)
				}
			}
			if r, _, _, _ := img.At(z, z).RGBA(); r != 0 {
				t.Fatalf("module %d zone %d: finder corner is light", tc.module, tc.zone)
			}
		}
	})

	t.Run("ErrEmpty", func(t *testing.T) {
		if _, err := qr.NewEncoder().PNG(""); !errors.Is(err, qr.ErrEmpty) {
			t.Fatalf("err = %v, want ErrEmpty", err)
		}
	})

	t.Run("ErrTooLong", func(t *testing.T) {
		var capa capacity
		loadJSON(t, "capacity.json", &capa)
		maxQ := capa.Alphanumeric["Q"][39]
		r := rand.New(rand.NewPCG(3, 4))
		e := qr.NewEncoder()
		if v, err := e.Version(randomText(r, "ABCDEFGH", maxQ)); err != nil || v != 40 {
			t.Fatalf("%d characters at Q: version %d, %v; want 40", maxQ, v, err)
		}
		_, err := e.PNG(randomText(r, "ABCDEFGH", maxQ+1))
		if !errors.Is(err, qr.ErrTooLong) {
			t.Fatalf("err = %v, want ErrTooLong", err)
		}
		if !strings.Contains(err.Error(), "level Q") {
			t.Fatalf("err = %v, want it to name the level", err)
		}
		if err := e.WriteFile(filepath.Join(t.TempDir(), "x.png"), strings.Repeat("a", 5000)); !errors.Is(err, qr.ErrTooLong) {
			t.Fatalf("WriteFile err = %v, want ErrTooLong", err)
		}
	})

	t.Run("ErrOptions", func(t *testing.T) {
		for _, e := range []*qr.Encoder{
			{Level: qr.Level(9), ModuleSize: 4, QuietZone: 4},
			{Level: qr.LevelQ, ModuleSize: 0, QuietZone: 4},
			{Level: qr.LevelQ, ModuleSize: qr.MaxModuleSize + 1, QuietZone: 4},
			{Level: qr.LevelQ, ModuleSize: 4, QuietZone: -1},
			{Level: qr.LevelQ, ModuleSize: 4, QuietZone: qr.MaxQuietZone + 1},
		} {
			if _, err := e.PNG("A"); !errors.Is(err, qr.ErrOptions) {
				t.Fatalf("%+v: err = %v, want ErrOptions", *e, err)
			}
		}
	})
}

type capacity struct {
	Alphanumeric map[string][]int `json:"alphanumeric"`
	Byte         map[string][]int `json:"byte"`
}

// minVersion is the smallest version whose capacity holds n characters.
func minVersion(caps []int, n int) int {
	for i, c := range caps {
		if n <= c {
			return i + 1
		}
	}
	return 0
}

// TestEncoder_Version checks, against the ISO/IEC 18004 capacity tables,
// that go-qrcode puts token-alphabet text in alphanumeric mode: the chosen
// version is exactly the smallest that holds the text at 5.5 bits a
// character, while the same text in lower case needs the byte-mode version.
func TestEncoder_Version(t *testing.T) {
	var capa capacity
	loadJSON(t, "capacity.json", &capa)
	r := rand.New(rand.NewPCG(5, 6))
	for _, lv := range []qr.Level{qr.LevelM, qr.LevelQ} {
		e := &qr.Encoder{Level: lv, ModuleSize: 1, QuietZone: 0}
		alnum, byt := capa.Alphanumeric[lv.String()], capa.Byte[lv.String()]
		t.Run("OKAlphanumeric"+lv.String(), func(t *testing.T) {
			for n := 1; n <= 700; n++ {
				// Letters only: no digit run that a numeric segment would pack tighter.
				text := ("PC" + randomText(r, "ABCDEFGHJKLMNPQRSTUVWX", n))[:n]
				got, err := e.Version(text)
				if err != nil {
					t.Fatal(err)
				}
				if want := minVersion(alnum, n); got != want {
					t.Fatalf("%d letters at %s: version %d, want %d (alphanumeric)", n, lv, got, want)
				}
				low := strings.ToLower(text)
				got, err = e.Version(low)
				if err != nil {
					t.Fatal(err)
				}
				if want := minVersion(byt, n); got != want {
					t.Fatalf("%d lower-case letters at %s: version %d, want %d (byte)", n, lv, got, want)
				}
			}
		})
		t.Run("OKTokenAlphabet"+lv.String(), func(t *testing.T) {
			// With digits, go-qrcode may split off numeric segments, which are
			// denser still; it must never be worse than pure alphanumeric.
			for n := 1; n <= 700; n += 3 {
				text := randomText(r, tokenAlphabet, n)
				got, err := e.Version(text)
				if err != nil {
					t.Fatal(err)
				}
				if want := minVersion(alnum, n); got > want {
					t.Fatalf("%d token characters at %s: version %d, want at most %d", n, lv, got, want)
				}
			}
			v, err := e.Version(fakeToken(r))
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("a %d-character token needs version %d (%d modules) at level %s", 203, v, 17+4*v, lv)
		})
	}
}

func BenchmarkEncoder_PNG(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, bc := range []struct{ name, text string }{
		{"Code", "GIFT-7K3M-9QXP"},
		{"Token", fakeToken(r)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e := qr.NewEncoder()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.PNG(bc.text); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzEncoder_PNG renders arbitrary text: it never panics, and either
// returns a decodable PNG or ErrEmpty / ErrTooLong.
func FuzzEncoder_PNG(f *testing.F) {
	var cases []textCase
	loadJSON(f, "texts.json", &cases)
	for _, c := range cases {
		f.Add(c.Text)
	}
	f.Add("")
	f.Add("\x00\xff\xfe")
	e := &qr.Encoder{Level: qr.LevelQ, ModuleSize: 1, QuietZone: 0}
	f.Fuzz(func(t *testing.T, text string) {
		b, err := e.PNG(text)
		switch {
		case text == "":
			if !errors.Is(err, qr.ErrEmpty) {
				t.Fatalf("empty text: err = %v", err)
			}
		case errors.Is(err, qr.ErrTooLong):
			if len(text) < 1000 {
				t.Fatalf("%d bytes refused as too long", len(text))
			}
		case err != nil:
			t.Fatalf("PNG(%q): %v", text, err)
		default:
			if _, err := png.Decode(bytes.NewReader(b)); err != nil {
				t.Fatalf("PNG(%q) does not decode: %v", text, err)
			}
		}
	})
}
