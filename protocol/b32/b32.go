// Package b32 is the scanner-safe base-32 text form of reward tokens.
//
// The alphabet is the ten digits and the upper-case letters without I, O, Y
// and Z. Every character is in the QR alphanumeric set, so a QR code of the
// text uses the dense alphanumeric mode. I and O are left out because people
// confuse them with 1 and 0; Y and Z because a keyboard-wedge scanner set up
// for QWERTZ that types into a QWERTY host (or the reverse) swaps them, and a
// token that never contains either cannot be damaged that way.
//
// Bits are packed most significant first, as in RFC 4648 base 32, without
// padding. Decode is strict: only alphabet characters, only lengths that an
// encoder can produce, and the unused low bits of the last character must be
// zero, so every byte string has exactly one text form. Normalize applies
// the leniency a human or a scanner needs before Decode.
package b32

import (
	"errors"
	"fmt"
	"strings"
)

// Alphabet is the 32 symbols in value order.
const Alphabet = "0123456789ABCDEFGHJKLMNPQRSTUVWX"

const invalid = 0xFF

// decodeMap maps a byte to its value, or invalid.
var decodeMap = func() [256]byte {
	var m [256]byte
	for i := range m {
		m[i] = invalid
	}
	for i := 0; i < len(Alphabet); i++ {
		m[Alphabet[i]] = byte(i)
	}
	return m
}()

// ErrLength is returned when the text has a length no encoder produces
// (1, 3 or 6 characters modulo 8): some characters are missing.
var ErrLength = errors.New("b32: text length is impossible; characters are missing")

// ErrTrailingBits is returned when the unused low bits of the last character
// are not zero. The text was cut short or its last character was changed.
var ErrTrailingBits = errors.New("b32: last character has non-zero unused bits")

// CharError reports the first character that is not in the alphabet.
type CharError struct {
	Pos  int  // 0-based byte offset in the decoded text
	Char byte // the offending byte (for non-ASCII input, the first byte of the rune)
}

func (e *CharError) Error() string {
	return fmt.Sprintf("b32: character %q at position %d is not in the alphabet", rune(e.Char), e.Pos+1)
}

// EncodedLen is the text length for n bytes.
func EncodedLen(n int) int { return (n*8 + 4) / 5 }

// DecodedLen is the byte length for a text of n characters, assuming n is a
// valid length.
func DecodedLen(n int) int { return n * 5 / 8 }

// Encode returns the text form of src.
func Encode(src []byte) string {
	return string(AppendEncode(make([]byte, 0, EncodedLen(len(src))), src))
}

// AppendEncode appends the text form of src to dst.
func AppendEncode(dst, src []byte) []byte {
	var acc uint64
	bits := 0
	for _, b := range src {
		acc = acc<<8 | uint64(b)
		bits += 8
		for bits >= 5 {
			bits -= 5
			dst = append(dst, Alphabet[(acc>>bits)&31])
		}
	}
	if bits > 0 {
		dst = append(dst, Alphabet[(acc<<(5-bits))&31])
	}
	return dst
}

// Decode returns the bytes of a strict text form. Errors: *CharError for
// the first character outside the alphabet (lower case included: call
// Normalize first for human or scanner input), ErrLength, ErrTrailingBits.
func Decode(s string) ([]byte, error) {
	return AppendDecode(make([]byte, 0, DecodedLen(len(s))), s)
}

// AppendDecode appends the bytes of s to dst; see Decode.
func AppendDecode(dst []byte, s string) ([]byte, error) {
	// Characters are checked before the length so that a scan with a stray
	// character reports that character, not a misleading length.
	for i := 0; i < len(s); i++ {
		if decodeMap[s[i]] == invalid {
			return dst, &CharError{Pos: i, Char: s[i]}
		}
	}
	switch len(s) % 8 {
	case 1, 3, 6:
		return dst, ErrLength
	}
	var acc uint64
	bits := 0
	for i := 0; i < len(s); i++ {
		acc = acc<<5 | uint64(decodeMap[s[i]])
		bits += 5
		if bits >= 8 {
			bits -= 8
			dst = append(dst, byte(acc>>bits))
		}
	}
	if bits > 0 && acc&(1<<bits-1) != 0 {
		return dst, ErrTrailingBits
	}
	return dst, nil
}

// Normalize turns what a scanner or a person produced into the strict form
// Decode wants: it trims surrounding spaces, tabs, CR and LF (scanners end
// a read with CR or LF), upper-cases ASCII letters, and maps the two letters
// that are not in the alphabet but look like a digit: O to 0 and I to 1.
//
// The O/I mapping is safe because no alphabet character is changed by it
// (I and O are never produced by Encode), so a correct text is unaffected and
// a misread one either becomes the original again or stays wrong; a signed
// token then fails its signature check rather than being misinterpreted.
// Unlike Crockford's base 32, L is not mapped to 1: L is a symbol of this
// alphabet. Y and Z are not mapped either: they signal a keyboard-layout
// mismatch, and guessing which was meant would be wrong for the other layout.
// Characters inside the text (spaces, dashes) are left for Decode to report.
func Normalize(s string) string {
	s = strings.Trim(s, " \t\r\n")
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c >= 'a' && c <= 'z') || c == 'O' || c == 'I' {
			return normalizeSlow(s, i)
		}
	}
	return s
}

func normalizeSlow(s string, from int) string {
	b := []byte(s)
	for i := from; i < len(b); i++ {
		c := b[i]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		switch c {
		case 'O':
			c = '0'
		case 'I':
			c = '1'
		}
		b[i] = c
	}
	return string(b)
}
