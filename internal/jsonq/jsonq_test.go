package jsonq

import (
	"encoding/json"
	"testing"
)

// TestAppendString: every string comes out as json.Marshal writes it.
func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "web", "c42", `a"b`, `back\slash`, "tab\there", "nl\n", "\x00\x1f", "<b>&amp;</b>",
		"café", "日本", "\u2028\u2029", "bad\xffutf8", "\xc3", "emoji😀", "del\x7f", "~!@#$%^*()_+{}|:?", " "} {
		want, _ := json.Marshal(s)
		if got := AppendString([]byte("x"), s); string(got) != "x"+string(want) {
			t.Errorf("%q: got %s, want %s", s, got[1:], want)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	f.Add("PROMO")
	f.Add("a\"<\u2028\xff")
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := AppendString(nil, s); string(got) != string(want) {
			t.Errorf("%q: got %s, want %s", s, got, want)
		}
	})
}
