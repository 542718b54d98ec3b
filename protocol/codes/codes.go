// Package codes generates plain reward codes: printed vouchers, gift card
// numbers and campaign codes such as "GIFT-7K3M-9QXP".
//
// A Generator is configured once per campaign (charset, pattern or length,
// prefix, postfix, optional check character) and then produces batches of
// codes that are unique within the batch and against codes already issued.
// Codes are random (crypto-strength by default, reproducible from a seed in
// tests and demos), so knowing some codes does not reveal others.
//
// Codes are compared by their key, Normalize(code): upper case, without
// spaces and dashes, so that "gift 7k3m-9qxp" typed at a till finds
// "GIFT-7K3M-9QXP". Stores index codes by key.
//
// The package imports only the standard library and protocol.
package codes

import (
	"context"
	crand "crypto/rand"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"unicode"

	"github.com/punchcard/punchcard/protocol"
)

// DefaultCharset is the token alphabet: digits and upper-case letters
// without I and O (read as 1 and 0) and without Y and Z (swapped between
// QWERTY and QWERTZ keyboard-wedge scanners). All 32 are QR alphanumeric.
const DefaultCharset = "0123456789ABCDEFGHJKLMNPQRSTUVWX"

// Defaults and limits for Options.
const (
	// DefaultLength is the number of characters when no Pattern is given.
	DefaultLength = 10
	// DefaultMaxFill is the largest share of the code space one batch may
	// take. It keeps rejection sampling cheap (at most ~1.1 draws a code)
	// and a guessed code unlikely to be valid; gift cards want far less.
	DefaultMaxFill = 0.1
	// MaxBatch is the most codes one Generate call returns.
	MaxBatch = 10_000_000
	// MaxCodeLength bounds the length of a code, literals included.
	MaxCodeLength = 64
	// maxRetries is how many draws in a row may collide before Generate
	// decides the existing codes have filled the space.
	maxRetries = 1000
)

// Placeholder marks a random character in a Pattern.
const Placeholder = '#'

// Options configure a Generator. The zero value means: DefaultCharset,
// DefaultLength characters, no check character, crypto-random.
type Options struct {
	// Charset is the set of characters drawn at each placeholder: 2 to 94
	// distinct printable ASCII characters, no lower-case letters, no '#',
	// '-' or space. Default DefaultCharset.
	Charset string
	// Pattern is the code's printed shape: Placeholder marks a random
	// character, anything else is literal (e.g. "GIFT-####-####"). With
	// Check set, the last placeholder holds the check character, so codes
	// always have exactly the pattern's shape. Empty means Length
	// placeholders.
	Pattern string
	// Prefix and Postfix are literals put before and after the pattern.
	Prefix, Postfix string
	// Length is the number of placeholders when Pattern is empty.
	// Default DefaultLength.
	Length int
	// Check makes the last placeholder a check character that detects
	// every single-character error and every swap of adjacent characters.
	// The charset's size must then not be 2 mod 4, except 10.
	Check bool
	// MaxFill is the largest share of the code space one batch may take,
	// in (0, 1]. Default DefaultMaxFill.
	MaxFill float64
	// Seed, when set, makes generation deterministic (ChaCha8 from this
	// seed). Only for tests and demos: codes from a known seed are known.
	Seed *[32]byte
}

// Existing reports whether a code key (see Normalize) is already issued.
// The hub's store implements it; Generate skips keys it reports.
type Existing interface {
	Exists(ctx context.Context, key string) (bool, error)
}

// ExistsFunc adapts an in-memory lookup to Existing.
type ExistsFunc func(key string) bool

// Exists calls f.
func (f ExistsFunc) Exists(_ context.Context, key string) (bool, error) { return f(key), nil }

var _ Existing = ExistsFunc(nil)

// Generator produces and checks codes of one shape. It is safe for
// concurrent use.
type Generator struct {
	charset string
	index   [256]int16 // charset position of a byte, -1 if none
	tmpl    string     // prefix+pattern+postfix, Placeholder at random positions
	slots   []int      // positions of the placeholders in tmpl
	key     string     // Normalize(tmpl): the shape of a code key
	qg      *quasigroup
	random  int // placeholders drawn at random
	maxFill float64
	seed    *[32]byte
}

// New validates opts and returns a Generator. Invalid options are reported
// as a CodeInvalidInput *protocol.Error naming the field.
func New(opts Options) (*Generator, error) {
	g := &Generator{charset: opts.Charset, maxFill: opts.MaxFill, seed: opts.Seed}
	if g.charset == "" {
		g.charset = DefaultCharset
	}
	if g.maxFill == 0 {
		g.maxFill = DefaultMaxFill
	}
	if !(g.maxFill > 0 && g.maxFill <= 1) {
		return nil, protocol.FieldError("max_fill", "the fill limit must be above 0 and at most 1")
	}
	for i := range g.index {
		g.index[i] = -1
	}
	if n := len(g.charset); n < 2 || n > 94 {
		return nil, protocol.FieldError("charset", "the charset needs 2 to 94 characters, not %d", n)
	}
	for i := 0; i < len(g.charset); i++ {
		c := g.charset[i]
		switch {
		case c <= ' ' || c > '~':
			return nil, protocol.FieldError("charset", "the charset may hold only printable ASCII characters")
		case c >= 'a' && c <= 'z':
			return nil, protocol.FieldError("charset", "the charset may not hold lower-case letters (codes are read case-insensitively)")
		case c == Placeholder || c == '-':
			return nil, protocol.FieldError("charset", "the charset may not hold %q", c)
		case g.index[c] >= 0:
			return nil, protocol.FieldError("charset", "the charset holds %q twice", c)
		}
		g.index[c] = int16(i)
	}
	pattern := opts.Pattern
	if pattern == "" {
		n := opts.Length
		if n == 0 {
			n = DefaultLength
		}
		if n < 1 || n > MaxCodeLength {
			return nil, protocol.FieldError("length", "the length must be 1 to %d", MaxCodeLength)
		}
		pattern = strings.Repeat(string(Placeholder), n)
	} else if opts.Length != 0 {
		return nil, protocol.FieldError("length", "give either a pattern or a length, not both")
	}
	for _, f := range []struct{ name, s string }{{"prefix", opts.Prefix}, {"postfix", opts.Postfix}} {
		if strings.IndexByte(f.s, Placeholder) >= 0 {
			return nil, protocol.FieldError(f.name, "the %s may not contain %q", f.name, Placeholder)
		}
	}
	g.tmpl = opts.Prefix + pattern + opts.Postfix
	if len(g.tmpl) > MaxCodeLength {
		return nil, protocol.FieldError("pattern", "codes may be at most %d characters long", MaxCodeLength)
	}
	for i := 0; i < len(g.tmpl); i++ {
		c := g.tmpl[i]
		switch {
		case c < ' ' || c > '~':
			return nil, protocol.FieldError("pattern", "the pattern, prefix and postfix may hold only printable ASCII characters")
		case c >= 'a' && c <= 'z':
			return nil, protocol.FieldError("pattern", "the pattern, prefix and postfix may not hold lower-case letters (codes are read case-insensitively)")
		case c == Placeholder:
			g.slots = append(g.slots, i)
		}
	}
	g.random = len(g.slots)
	if opts.Check {
		qg, err := newQuasigroup(len(g.charset))
		if err != nil {
			return nil, protocol.FieldError("check", "%s", err.Error())
		}
		g.qg = qg
		g.random--
	}
	if g.random < 1 {
		return nil, protocol.FieldError("pattern", "the pattern needs at least one random %q (besides the check character)", Placeholder)
	}
	g.key = Normalize(g.tmpl)
	return g, nil
}

// Capacity is the number of distinct codes the generator can produce:
// len(charset) to the power of the random placeholders. It is +Inf past
// float64's range.
func (g *Generator) Capacity() float64 {
	return math.Pow(float64(len(g.charset)), float64(g.random))
}

// Generate returns count new codes in their printed form, unique by key
// within the batch and not reported by existing (which may be nil). It
// refuses, with a CodeInvalidInput error on field "count", a count above
// MaxFill of the capacity or above MaxBatch, and returns a CodeConflict
// error when existing codes leave too little room to find new ones.
func (g *Generator) Generate(ctx context.Context, count int, existing Existing) ([]string, error) {
	if count < 1 || count > MaxBatch {
		return nil, protocol.FieldError("count", "the number of codes must be 1 to %d", MaxBatch)
	}
	if limit := g.Capacity() * g.maxFill; float64(count) > limit {
		return nil, protocol.FieldError("count",
			"this shape allows %.0f codes, so at most %.0f in one batch; use a longer pattern or a larger charset",
			g.Capacity(), math.Floor(limit))
	}
	var seed [32]byte
	if g.seed != nil {
		seed = *g.seed
	} else if _, err := crand.Read(seed[:]); err != nil {
		return nil, fmt.Errorf("codes: seed: %w", err)
	}
	// ChaCha8 is a cryptographically strong generator (math/rand/v2 docs);
	// seeded from crypto/rand it is as unguessable as crypto/rand itself.
	rng := rand.New(rand.NewChaCha8(seed))
	// Accepted codes are appended to one slab and cut into strings at the
	// end: one allocation for the batch instead of one a code.
	size := len(g.tmpl)
	slab := make([]byte, 0, count*size)
	accepted := 0
	// The literals are fixed, so the random characters identify a code.
	// When the code space fits in 62 bits they are packed into an integer
	// (mixed radix), which makes the batch's uniqueness set several times
	// cheaper than one keyed by strings; otherwise the printed code is the key.
	packed := g.Capacity() < 1<<62
	var seenU map[uint64]struct{}
	var seenS map[string]struct{}
	if packed {
		seenU = make(map[uint64]struct{}, count)
	} else {
		seenS = make(map[string]struct{}, count)
	}
	buf := []byte(g.tmpl)
	n := len(g.charset)
	misses := 0
	for accepted < count {
		if accepted%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		var r uint8
		var id uint64
		for _, pos := range g.slots[:g.random] {
			v := rng.IntN(n)
			id = id*uint64(n) + uint64(v)
			buf[pos] = g.charset[v]
			if g.qg != nil {
				r = g.qg.step(r, uint8(v))
			}
		}
		if g.qg != nil {
			buf[g.slots[g.random]] = g.charset[g.qg.zero[r]]
		}
		fresh := false
		if packed {
			if _, dup := seenU[id]; !dup {
				seenU[id] = struct{}{} // new or taken: never ask about it again
				fresh = true
			}
		} else if _, dup := seenS[string(buf)]; !dup {
			seenS[string(buf)] = struct{}{}
			fresh = true
		}
		if fresh && existing != nil {
			taken, err := existing.Exists(ctx, Normalize(string(buf)))
			if err != nil {
				return nil, fmt.Errorf("codes: existing: %w", err)
			}
			fresh = !taken
		}
		if fresh {
			slab = append(slab, buf...)
			accepted++
			misses = 0
			continue
		}
		if misses++; misses >= maxRetries {
			return nil, protocol.Errorf(protocol.CodeConflict,
				"%d draws in a row hit codes already issued: the code space is nearly full; use a longer pattern", maxRetries)
		}
	}
	all := string(slab)
	out := make([]string, count)
	for i := range out {
		out[i] = all[i*size : (i+1)*size]
	}
	return out, nil
}

// Normalize returns the key of a typed or scanned code: surrounding and
// inner white space, control and format characters and dashes (ASCII and
// Unicode, as word processors and scanners produce them) removed, ASCII
// letters upper-cased. Other characters are kept, so that a validation
// step can reject them.
func Normalize(input string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r < 0x80 && r > ' ' && r != '-' && r != 0x7f:
			return r
		case unicode.IsSpace(r), unicode.IsControl(r), unicode.Is(unicode.Cf, r), unicode.Is(unicode.Pd, r), r == '\u2212':
			return -1
		}
		return r
	}, input)
}

// ValidateCheck reports whether a typed or scanned code has this
// generator's shape and, if it has a check character, a correct one. It
// normalizes the input first and returns a *protocol.Error:
// CodeTokenEmpty for nothing, CodeUnknownCode for the wrong length or
// literals, CodeTokenAlphabet for a character outside the charset and
// CodeTokenChecksum (token_mistyped) for a wrong check character.
func (g *Generator) ValidateCheck(code string) error {
	if len(code) > 4*MaxCodeLength {
		return protocol.Errorf(protocol.CodeUnknownCode, "This code is too long to be one of ours.")
	}
	k := Normalize(code)
	if k == "" {
		return protocol.NewError(protocol.CodeTokenEmpty)
	}
	if len(k) != len(g.key) {
		return protocol.Errorf(protocol.CodeUnknownCode, "This code has %d characters instead of %d.", len(k), len(g.key))
	}
	var r uint8
	for i := 0; i < len(k); i++ {
		if g.key[i] != Placeholder {
			if k[i] != g.key[i] {
				return protocol.Errorf(protocol.CodeUnknownCode, "This code does not have the expected format.")
			}
			continue
		}
		v := g.index[k[i]]
		if v < 0 {
			return protocol.NewError(protocol.CodeTokenAlphabet)
		}
		if g.qg != nil {
			r = g.qg.step(r, uint8(v))
		}
	}
	if r != 0 {
		return protocol.NewError(protocol.CodeTokenChecksum)
	}
	return nil
}
