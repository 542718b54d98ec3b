package codes_test

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/codes"
)

// fixtureOptions is codes.Options as the fixture files spell it.
type fixtureOptions struct {
	Charset string  `json:"charset"`
	Pattern string  `json:"pattern"`
	Prefix  string  `json:"prefix"`
	Postfix string  `json:"postfix"`
	Length  int     `json:"length"`
	Check   bool    `json:"check"`
	MaxFill float64 `json:"max_fill"`
}

func (o fixtureOptions) options() codes.Options {
	return codes.Options{Charset: o.Charset, Pattern: o.Pattern, Prefix: o.Prefix, Postfix: o.Postfix,
		Length: o.Length, Check: o.Check, MaxFill: o.MaxFill}
}

func loadJSON(tb testing.TB, name string, v any) {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "codes", name))
	if err != nil {
		tb.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
}

// MustNew returns a Generator for opts or fails the test.
func MustNew(tb testing.TB, opts codes.Options) *codes.Generator {
	tb.Helper()
	g, err := codes.New(opts)
	if err != nil {
		tb.Fatalf("New(%+v): %v", opts, err)
	}
	return g
}

func seed(b byte) *[32]byte { return &[32]byte{b} }

func TestNew(t *testing.T) {
	var cases []struct {
		Name    string         `json:"name"`
		Options fixtureOptions `json:"options"`
		Field   string         `json:"field"`
	}
	loadJSON(t, "options.json", &cases)
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			_, err := codes.New(c.Options.options())
			if c.Field == "" {
				if err != nil {
					t.Fatalf("err = %v, want nil", err)
				}
				return
			}
			var pe *protocol.Error
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a *protocol.Error", err)
			}
			if got, want := pe.Code, protocol.CodeInvalidInput; got != want {
				t.Fatalf("code = %s, want %s", got, want)
			}
			if got, want := pe.Field, c.Field; got != want {
				t.Fatalf("field = %q, want %q (%v)", got, want, err)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	var cases []struct {
		Name string `json:"name"`
		In   string `json:"in"`
		Want string `json:"want"`
	}
	loadJSON(t, "normalize.json", &cases)
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			if got := codes.Normalize(c.In); got != c.Want {
				t.Fatalf("Normalize(%q) = %q, want %q", c.In, got, c.Want)
			}
		})
	}
}

type validateCase struct {
	Name    string         `json:"name"`
	Options fixtureOptions `json:"options"`
	Code    string         `json:"code"`
	Want    protocol.Code  `json:"want"`
}

// TestGenerator_ValidateCheck replays recorded codes: a code printed once
// must stay valid for as long as it can be redeemed, so the check algorithm
// may never change. It also holds Damm's published example (5724).
func TestGenerator_ValidateCheck(t *testing.T) {
	var cases []validateCase
	loadJSON(t, "validate.json", &cases)
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			g := MustNew(t, c.Options.options())
			err := g.ValidateCheck(c.Code)
			if got := protocol.ErrorCode(err); got != c.Want {
				t.Fatalf("ValidateCheck(%q) = %v, want code %q", c.Code, err, c.Want)
			}
			if err != nil {
				var pe *protocol.Error
				if !errors.As(err, &pe) || pe.Message == "" {
					t.Fatalf("err = %#v, want a *protocol.Error with a message", err)
				}
			}
		})
	}
}

// shapeOK checks that code has the printed shape of tmpl (Placeholder at
// the random positions) with charset characters there.
func shapeOK(tb testing.TB, tmpl, charset, code string) {
	tb.Helper()
	if len(code) != len(tmpl) {
		tb.Fatalf("code %q does not have the shape %q", code, tmpl)
	}
	for i := range len(tmpl) {
		if tmpl[i] == codes.Placeholder {
			if !strings.ContainsRune(charset, rune(code[i])) {
				tb.Fatalf("code %q: %q is not in the charset", code, code[i])
			}
		} else if code[i] != tmpl[i] {
			tb.Fatalf("code %q does not have the shape %q", code, tmpl)
		}
	}
}

func TestGenerator_Generate(t *testing.T) {
	ctx := context.Background()

	t.Run("OK", func(t *testing.T) {
		for _, tc := range []struct {
			opts codes.Options
			tmpl string
		}{
			{codes.Options{}, "##########"},
			{codes.Options{Length: 20, Check: true}, "####################"}, // 32^19 > 2^62: string keys
			{codes.Options{Pattern: "GIFT-####-####", Check: true}, "GIFT-####-####"},
			{codes.Options{Charset: "0123456789", Length: 16, Check: true}, "################"},
			{codes.Options{Prefix: "SUMMER", Pattern: "####", Postfix: "/EU"}, "SUMMER####/EU"},
		} {
			g := MustNew(t, tc.opts)
			got, err := g.Generate(ctx, 5000, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 5000 {
				t.Fatalf("%d codes, want 5000", len(got))
			}
			charset := tc.opts.Charset
			if charset == "" {
				charset = codes.DefaultCharset
			}
			keys := make(map[string]bool)
			for _, c := range got {
				shapeOK(t, tc.tmpl, charset, c)
				if err := g.ValidateCheck(c); err != nil {
					t.Fatalf("ValidateCheck(%q) = %v", c, err)
				}
				k := codes.Normalize(c)
				if keys[k] {
					t.Fatalf("code %q twice in one batch", c)
				}
				keys[k] = true
			}
		}
	})

	t.Run("OKFillsSmallSpace", func(t *testing.T) {
		// 32 codes exist; with MaxFill 1 all of them must come out, once each.
		g := MustNew(t, codes.Options{Prefix: "SUMMER", Length: 1, MaxFill: 1})
		got, err := g.Generate(ctx, 32, nil)
		if err != nil {
			t.Fatal(err)
		}
		seen := make(map[string]bool)
		for _, c := range got {
			seen[c] = true
		}
		if len(seen) != 32 {
			t.Fatalf("%d distinct codes, want 32", len(seen))
		}
	})

	t.Run("OKDeterministic", func(t *testing.T) {
		opts := codes.Options{Pattern: "GIFT-####-####", Check: true, Seed: seed(1)}
		a, err := MustNew(t, opts).Generate(ctx, 100, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, err := MustNew(t, opts).Generate(ctx, 100, nil)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(a, ",") != strings.Join(b, ",") {
			t.Fatal("same seed gave different codes")
		}
		opts.Seed = seed(2)
		c, err := MustNew(t, opts).Generate(ctx, 100, nil)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(a, ",") == strings.Join(c, ",") {
			t.Fatal("different seeds gave the same codes")
		}
	})

	t.Run("OKRandomByDefault", func(t *testing.T) {
		g := MustNew(t, codes.Options{})
		a, err := g.Generate(ctx, 10, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, err := g.Generate(ctx, 10, nil)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(a, ",") == strings.Join(b, ",") {
			t.Fatal("two unseeded batches are equal")
		}
	})

	t.Run("OKSkipsExisting", func(t *testing.T) {
		// The same seed replays the first batch's draws, so every one of
		// them must be skipped as existing.
		opts := codes.Options{Pattern: "GIFT-####-####", Check: true, Seed: seed(3)}
		first, err := MustNew(t, opts).Generate(ctx, 500, nil)
		if err != nil {
			t.Fatal(err)
		}
		issued := make(map[string]bool)
		for _, c := range first {
			issued[codes.Normalize(c)] = true
		}
		asked := 0
		exists := codes.ExistsFunc(func(key string) bool {
			asked++
			if key != codes.Normalize(key) {
				t.Errorf("Exists(%q): key not normalized", key)
			}
			return issued[key]
		})
		second, err := MustNew(t, opts).Generate(ctx, 1000, exists)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range second {
			if issued[codes.Normalize(c)] {
				t.Fatalf("code %q issued twice", c)
			}
		}
		if asked < 1500 {
			t.Fatalf("Exists asked %d times, want at least 1500", asked)
		}
	})

	t.Run("ErrSpaceTooSmall", func(t *testing.T) {
		g := MustNew(t, codes.Options{Prefix: "SUMMER", Length: 2})
		// 32² = 1024 codes, 10 % of them = 102.
		if _, err := g.Generate(ctx, 102, nil); err != nil {
			t.Fatalf("102 codes: %v", err)
		}
		_, err := g.Generate(ctx, 103, nil)
		var pe *protocol.Error
		if !errors.As(err, &pe) || pe.Code != protocol.CodeInvalidInput || pe.Field != "count" {
			t.Fatalf("err = %v, want invalid_input on count", err)
		}
		if !strings.Contains(pe.Message, "1024") {
			t.Fatalf("message %q does not give the capacity", pe.Message)
		}
	})

	t.Run("ErrCount", func(t *testing.T) {
		g := MustNew(t, codes.Options{})
		for _, n := range []int{0, -1, codes.MaxBatch + 1} {
			if _, err := g.Generate(ctx, n, nil); protocol.ErrorCode(err) != protocol.CodeInvalidInput {
				t.Fatalf("count %d: err = %v, want invalid_input", n, err)
			}
		}
	})

	t.Run("ErrSpaceExhausted", func(t *testing.T) {
		g := MustNew(t, codes.Options{})
		_, err := g.Generate(ctx, 10, codes.ExistsFunc(func(string) bool { return true }))
		if got := protocol.ErrorCode(err); got != protocol.CodeConflict {
			t.Fatalf("err = %v, want conflict", err)
		}
	})

	t.Run("ErrExisting", func(t *testing.T) {
		boom := errors.New("store down")
		_, err := MustNew(t, codes.Options{}).Generate(ctx, 10, failing{boom})
		if !errors.Is(err, boom) {
			t.Fatalf("err = %v, want %v", err, boom)
		}
	})

	t.Run("ErrCanceled", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := MustNew(t, codes.Options{}).Generate(cctx, 10, nil); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
}

type failing struct{ err error }

func (f failing) Exists(context.Context, string) (bool, error) { return false, f.err }

var _ codes.Existing = failing{}

// TestCheck_DetectsAllErrors proves the check character's guarantees on
// real codes: for many random codes of several charsets, every single
// substitution and every swap of two adjacent different characters (check
// character included, across separators too) is refused as token_mistyped.
func TestCheck_DetectsAllErrors(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		opts codes.Options
	}{
		{"Default32", codes.Options{Pattern: "GIFT-####-####", Check: true, Seed: seed(4)}},
		{"Digits10", codes.Options{Charset: "0123456789", Length: 12, Check: true, Seed: seed(5)}},
		{"Alnum36", codes.Options{Charset: "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", Length: 8, Check: true, Seed: seed(6)}},
		{"Odd25", codes.Options{Charset: "ABCDEFGHJKLMNPQRSTUVWXYZ2", Length: 8, Check: true, Seed: seed(7)}},
		{"Twelve", codes.Options{Charset: "0123456789XK", Length: 10, Check: true, Seed: seed(8)}},
		{"Five", codes.Options{Charset: "13579", Length: 12, Check: true, Seed: seed(9)}},
	} {
		t.Run("OK"+tc.name, func(t *testing.T) {
			g := MustNew(t, tc.opts)
			charset := tc.opts.Charset
			if charset == "" {
				charset = codes.DefaultCharset
			}
			list, err := g.Generate(ctx, 1000, nil)
			if err != nil {
				t.Fatal(err)
			}
			subs, swaps := 0, 0
			for _, code := range list {
				var slots []int // positions of the charset characters
				for i := range len(code) {
					if code[i] != '-' && (tc.opts.Pattern == "" || tc.opts.Pattern[i] == codes.Placeholder) {
						slots = append(slots, i)
					}
				}
				b := []byte(code)
				for _, i := range slots {
					orig := b[i]
					for j := range len(charset) {
						if charset[j] == orig {
							continue
						}
						b[i] = charset[j]
						if got := protocol.ErrorCode(g.ValidateCheck(string(b))); got != protocol.CodeTokenChecksum {
							t.Fatalf("%s with %q at %d: %s, want token_mistyped", code, charset[j], i, got)
						}
						subs++
					}
					b[i] = orig
				}
				for k := 0; k+1 < len(slots); k++ {
					i, j := slots[k], slots[k+1]
					if b[i] == b[j] {
						continue
					}
					b[i], b[j] = b[j], b[i]
					if got := protocol.ErrorCode(g.ValidateCheck(string(b))); got != protocol.CodeTokenChecksum {
						t.Fatalf("%s swapped at %d,%d: %s, want token_mistyped", code, i, j, got)
					}
					b[i], b[j] = b[j], b[i]
					swaps++
				}
			}
			t.Logf("%d substitutions and %d adjacent swaps detected", subs, swaps)
		})
	}
}

// TestCheck_ErrorsAtScale checks the same guarantees on codes drawn without
// the generator, for every supported charset size up to 64.
func TestCheck_ErrorsAtScale(t *testing.T) {
	const all = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ!$%&()*+./:;<=>?@[]^_`{|}~',\"\\"
	r := rand.New(rand.NewPCG(10, 11))
	for n := 3; n <= 64; n++ {
		charset := all[:n]
		g, err := codes.New(codes.Options{Charset: charset, Length: 7, Check: true})
		if n%4 == 2 && n != 10 {
			if protocol.ErrorCode(err) != protocol.CodeInvalidInput {
				t.Fatalf("n=%d: err = %v, want a refusal", n, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		// Find the check character by trying all; exactly one must fit.
		for range 200 {
			body := make([]byte, 7)
			for i := range 6 {
				body[i] = charset[r.IntN(n)]
			}
			fits := 0
			for c := range n {
				body[6] = charset[c]
				if g.ValidateCheck(string(body)) == nil {
					fits++
					for i := range 6 {
						if body[i] != body[i+1] {
							body[i], body[i+1] = body[i+1], body[i]
							if protocol.ErrorCode(g.ValidateCheck(string(body))) != protocol.CodeTokenChecksum {
								t.Fatalf("n=%d: swap at %d in %q not detected", n, i, body)
							}
							body[i], body[i+1] = body[i+1], body[i]
						}
					}
				}
			}
			if fits != 1 {
				t.Fatalf("n=%d: %d check characters fit %q, want exactly 1", n, fits, body[:6])
			}
		}
	}
}

// FuzzValidateCheck feeds arbitrary input to Normalize and ValidateCheck:
// they never panic, Normalize is idempotent and leaves no lower-case ASCII,
// white space or dash, and ValidateCheck returns nil or a *protocol.Error
// with one of its documented codes; an accepted code stays accepted after
// normalizing and is refused after any change of its first character.
func FuzzValidateCheck(f *testing.F) {
	var vcases []validateCase
	loadJSON(f, "validate.json", &vcases)
	for _, c := range vcases {
		f.Add(c.Code)
	}
	var ncases []struct {
		In string `json:"in"`
	}
	loadJSON(f, "normalize.json", &ncases)
	for _, c := range ncases {
		f.Add(c.In)
	}
	gens := []*codes.Generator{
		MustNew(f, codes.Options{Pattern: "GIFT-####-####", Check: true}),
		MustNew(f, codes.Options{Length: 10, Check: true}),
		MustNew(f, codes.Options{Charset: "0123456789", Length: 4, Check: true}),
	}
	allowed := map[protocol.Code]bool{"": true, protocol.CodeTokenEmpty: true, protocol.CodeUnknownCode: true,
		protocol.CodeTokenAlphabet: true, protocol.CodeTokenChecksum: true}
	f.Fuzz(func(t *testing.T, in string) {
		k := codes.Normalize(in)
		if codes.Normalize(k) != k {
			t.Fatalf("Normalize not idempotent on %q", in)
		}
		if strings.ContainsAny(k, "abcdefghijklmnopqrstuvwxyz -\t\r\n") {
			t.Fatalf("Normalize(%q) = %q keeps a lower-case letter, space or dash", in, k)
		}
		for _, g := range gens {
			err := g.ValidateCheck(in)
			if !allowed[protocol.ErrorCode(err)] {
				t.Fatalf("ValidateCheck(%q) = %v", in, err)
			}
			if err != nil {
				continue
			}
			if err := g.ValidateCheck(k); err != nil {
				t.Fatalf("ValidateCheck(%q) ok but its key %q: %v", in, k, err)
			}
			// Any other character at any one position must be refused.
			b := []byte(k)
			for i := range b {
				orig := b[i]
				for _, c := range []byte("0123456789ABCDEFGHJKLMNPQRSTUVWX-a") {
					if c == orig || (c == 'a' && orig == 'A') {
						continue
					}
					b[i] = c
					if g.ValidateCheck(string(b)) == nil {
						t.Fatalf("%q accepted, but %q also passes", k, b)
					}
				}
				b[i] = orig
			}
		}
	})
}

// BenchmarkGenerate measures one batch of a million checked gift-card codes;
// ns/op divided by 1e6 is milliseconds per million.
func BenchmarkGenerate(b *testing.B) {
	g := MustNew(b, codes.Options{Pattern: "GIFT-####-####", Check: true})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := g.Generate(ctx, 1_000_000, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidateCheck(b *testing.B) {
	g := MustNew(b, codes.Options{Pattern: "GIFT-####-####", Check: true})
	b.ReportAllocs()
	for b.Loop() {
		if err := g.ValidateCheck("gift 2g3m rdg6"); err != nil {
			b.Fatal(err)
		}
	}
}
