package rules_test

import (
	"testing"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/rules"
)

// TestNewStoreSharesZone: stores in one time zone share its Location (a
// hub keeps one Store per connected till), and a name that did not load
// is still refused on every call, not remembered as good.
func TestNewStoreSharesZone(t *testing.T) {
	a, err := rules.NewStore("s-1", "DE", "Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	b, err := rules.NewStore("s-2", "DE", "Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	if a.Location != b.Location {
		t.Errorf("two stores in Europe/Berlin hold two Locations")
	}
	c, err := rules.NewStore("s-3", "US-NY", "America/New_York")
	if err != nil || c.Location == a.Location || c.Location.String() != "America/New_York" {
		t.Errorf("America/New_York: %v, %v", c.Location, err)
	}
	for range 2 {
		_, err := rules.NewStore("x", "", "Europe/Atlantis")
		if pe := protocol.PublicError(err); pe.Code != protocol.CodeInvalidInput || pe.Field != "store.time_zone" {
			t.Errorf("err = %v, want invalid_input at store.time_zone", err)
		}
	}
}

// BenchmarkNewStore is what a hub pays per till whose store it resolves
// (the catalog's agent cache holds the result).
func BenchmarkNewStore(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rules.NewStore("s-1", "DE", "Europe/Berlin"); err != nil {
			b.Fatal(err)
		}
	}
}
