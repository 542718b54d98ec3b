package catalog_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/catalog"
)

type recipientsCase struct {
	Name  string                `json:"name"`
	CSV   string                `json:"csv"`
	Want  []protocol.CustomerID `json:"want"`
	Field string                `json:"field"` // of the invalid_input error, when refused
}

func recipientsFixtures(tb testing.TB) []recipientsCase {
	tb.Helper()
	b, err := os.ReadFile("testdata/recipients.json")
	if err != nil {
		tb.Fatal(err)
	}
	var cs []recipientsCase
	if err := json.Unmarshal(b, &cs); err != nil {
		tb.Fatal(err)
	}
	return cs
}

// TestParseRecipientsCSV runs the fixture table: the customers of a good
// list, the field of a bad one's invalid_input error.
func TestParseRecipientsCSV(t *testing.T) {
	for _, c := range recipientsFixtures(t) {
		t.Run(c.Name, func(t *testing.T) {
			got, err := catalog.ParseRecipientsCSV(strings.NewReader(c.CSV))
			if c.Field != "" {
				var pe *protocol.Error
				if err == nil || !errors.As(err, &pe) || pe.Code != protocol.CodeInvalidInput || pe.Field != c.Field {
					t.Fatalf("got %v, %v; want invalid_input on %s", got, err, c.Field)
				}
				return
			}
			if err != nil || !slices.Equal(got, c.Want) {
				t.Fatalf("got %v, %v; want %v", got, err, c.Want)
			}
		})
	}
}

// TestParseRecipientsCSVMax: MaxDistributionList rows pass, one more is
// refused before the rest is read.
func TestParseRecipientsCSVMax(t *testing.T) {
	var b strings.Builder
	b.WriteString("customer\n")
	for i := range catalog.MaxDistributionList {
		fmt.Fprintf(&b, "c%d\n", i)
	}
	if got, err := catalog.ParseRecipientsCSV(strings.NewReader(b.String())); err != nil || len(got) != catalog.MaxDistributionList {
		t.Fatalf("%d, %v", len(got), err)
	}
	b.WriteString("one-more\n")
	if _, err := catalog.ParseRecipientsCSV(strings.NewReader(b.String())); protocol.ErrorCode(err) != protocol.CodeInvalidInput {
		t.Fatalf("%d+1 customers: %v", catalog.MaxDistributionList, err)
	}
}

// FuzzParseRecipientsCSV: any body parses or is refused with
// invalid_input, never a panic; what parses passes CheckRecipients and
// has no more than MaxDistributionList customers.
func FuzzParseRecipientsCSV(f *testing.F) {
	for _, c := range recipientsFixtures(f) {
		f.Add([]byte(c.CSV))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := catalog.ParseRecipientsCSV(strings.NewReader(string(body)))
		if err != nil {
			if protocol.ErrorCode(err) != protocol.CodeInvalidInput {
				t.Fatalf("error %v is not invalid_input", err)
			}
			return
		}
		if len(got) == 0 || len(got) > catalog.MaxDistributionList {
			t.Fatalf("%d customers", len(got))
		}
		if err := catalog.CheckRecipients(got); err != nil {
			t.Fatalf("parsed a list CheckRecipients refuses: %v", err)
		}
	})
}

// TestDistributionRequestValidate covers the JSON body's shape checks.
func TestDistributionRequestValidate(t *testing.T) {
	for _, c := range []struct {
		name  string
		req   catalog.DistributionRequest
		field string
	}{
		{"OKList", catalog.DistributionRequest{Campaign: "c", Kind: "code", Customers: []protocol.CustomerID{"a"}}, ""},
		{"OKSegment", catalog.DistributionRequest{Campaign: "c", Kind: "token", Segment: "vip"}, ""},
		{"ErrCampaign", catalog.DistributionRequest{Kind: "code", Segment: "vip"}, "campaign"},
		{"ErrKind", catalog.DistributionRequest{Campaign: "c", Segment: "vip"}, "kind"},
		{"ErrNeither", catalog.DistributionRequest{Campaign: "c", Kind: "code"}, "customers"},
		{"ErrSegmentID", catalog.DistributionRequest{Campaign: "c", Kind: "code", Segment: "a/b"}, "segment"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.req.Validate()
			var pe *protocol.Error
			if c.field == "" && err != nil || c.field != "" && (err == nil || !errors.As(err, &pe) || pe.Field != c.field) {
				t.Fatalf("got %v, want field %q", err, c.field)
			}
		})
	}
}
