// Package jsonq appends JSON strings exactly as encoding/json writes them,
// without reflection: for the bodies the hub encodes on a serial path
// (the online writer's event bodies and answers), whose bytes must equal
// json.Marshal's.
package jsonq

import (
	"encoding/json"
	"unicode/utf8"
)

// AppendString appends s quoted as encoding/json quotes it. Printable
// ASCII other than the characters json escapes (quote, backslash, and <,
// >, & for HTML safety) is copied as it is; a string with anything else
// goes through json.Marshal, so that escapes, invalid UTF-8 and
// U+2028/U+2029 come out exactly as encoding/json writes them.
func AppendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, err := json.Marshal(s)
			if err != nil { // cannot be: every string encodes
				return append(b, `""`...)
			}
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
