package segment_test

import (
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol/segment"
)

// FuzzDefinition: a definition from the outside (the API's JSON body)
// decodes, validates or is refused, and a valid one is evaluated, without
// a panic.
func FuzzDefinition(f *testing.F) {
	b, err := os.ReadFile("testdata/definitions.json")
	if err != nil {
		f.Fatal(err)
	}
	var seeds []json.RawMessage
	if err := json.Unmarshal(b, &seeds); err != nil {
		f.Fatal(err)
	}
	for _, s := range seeds {
		f.Add([]byte(s), int64(1764590400), "1990-12-05")
	}
	f.Fuzz(func(t *testing.T, doc []byte, unix int64, bday string) {
		var d segment.Definition
		if json.Unmarshal(doc, &d) != nil || d.Validate() != nil {
			return
		}
		now := time.Unix(unix%(1<<34), 0)
		defs := []segment.Definition{d}
		q := segment.Need(defs, now)
		h := segment.History{Last: now.Add(-time.Hour), Spend: make([]int64, len(q.SpendSince))}
		segment.Of(defs, q, h, map[string]string{"birthday": bday, "dob": bday}, now)
	})
}

// TestFixtures: every fixture is a valid definition.
func TestFixtures(t *testing.T) {
	b, err := os.ReadFile("testdata/definitions.json")
	if err != nil {
		t.Fatal(err)
	}
	var ds []segment.Definition
	if err := json.Unmarshal(b, &ds); err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if err := d.Validate(); err != nil {
			t.Errorf("%s: %v", d.ID, err)
		}
	}
}
