package token

import (
	"errors"
	"testing"
	"time"

	"github.com/punchcard/punchcard/protocol"
)

func typicalStatement() Statement {
	return Statement{Tenant: "acme", Customer: "cust-1", IssuedAt: t0, AsOf: t0, Expires: t0.Add(15 * time.Minute), Serial: "ST1", Points: 500}
}

// TestStatementTable: what a till checks of a points statement, each with
// its stable reason code.
func TestStatementTable(t *testing.T) {
	key := testKey("acme", "k1", "acme")
	other := testKey("globex", "g1", "globex")
	keys := KeyMap{}.Add(key.Public()).Add(other.Public())
	good, err := IssueStatement(key, typicalStatement())
	if err != nil {
		t.Fatal(err)
	}
	globex := typicalStatement()
	globex.Tenant = "globex"
	otherTenant, err := IssueStatement(other, globex)
	if err != nil {
		t.Fatal(err)
	}
	forged := testKey("acme", "k1", "not acme") // same kid, another private key
	bad, err := IssueStatement(forged, typicalStatement())
	if err != nil {
		t.Fatal(err)
	}
	reward, err := Issue(key, typicalClaims())
	if err != nil {
		t.Fatal(err)
	}
	now := t0.Add(time.Minute)
	cases := []struct {
		name     string
		text     string
		customer protocol.CustomerID
		now      time.Time
		want     protocol.Code
	}{
		{"Good", good, "cust-1", now, ""},
		{"AnyCustomer", good, "", now, ""},
		{"BadSignature", bad, "cust-1", now, protocol.CodeBadSignature},
		{"Expired", good, "cust-1", t0.Add(15 * time.Minute), protocol.CodeTokenExpired},
		{"NotYet", good, "cust-1", t0.Add(-time.Hour), protocol.CodeTokenNotYet},
		{"OtherTenant", otherTenant, "cust-1", now, protocol.CodeWrongTenant},
		{"OtherCustomer", good, "cust-2", now, protocol.CodeStatementCustomer},
		{"RewardTokenIsNoStatement", reward, "cust-0001234", now, protocol.CodeTokenMalformed},
		{"Empty", "", "cust-1", now, protocol.CodeTokenEmpty},
		{"Truncated", good[:len(good)/2], "cust-1", now, protocol.CodeTokenTruncated},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := VerifyStatement(keys, "acme", c.customer, c.text, c.now)
			if c.want == "" {
				if err != nil || s.Points != 500 || s.Customer != "cust-1" || s.Serial != "ST1" || !s.AsOf.Equal(t0) {
					t.Fatalf("statement %+v, %v", s, err)
				}
				return
			}
			if !errors.Is(err, protocol.NewError(c.want)) {
				t.Fatalf("err %v, want %s", err, c.want)
			}
		})
	}
	// A statement never verifies as a reward token.
	if _, err := Verify(keys, "acme", good, now); !errors.Is(err, protocol.NewError(protocol.CodeTokenMalformed)) {
		t.Fatalf("statement as a token: %v", err)
	}
}

func TestIssueStatementErrors(t *testing.T) {
	key := testKey("acme", "k1", "acme")
	for name, mod := range map[string]func(*Statement){
		"NoCustomer":  func(s *Statement) { s.Customer = "" },
		"NoSerial":    func(s *Statement) { s.Serial = "" },
		"ZeroPoints":  func(s *Statement) { s.Points = 0 },
		"TooLong":     func(s *Statement) { s.Expires = s.IssuedAt.Add(StatementMaxLifetime + time.Second) },
		"AsOfLater":   func(s *Statement) { s.AsOf = s.IssuedAt.Add(time.Second) },
		"OtherTenant": func(s *Statement) { s.Tenant = "globex" },
	} {
		s := typicalStatement()
		mod(&s)
		if _, err := IssueStatement(key, s); !errors.Is(err, protocol.NewError(protocol.CodeInvalidInput)) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzVerifyStatement(f *testing.F) {
	key := testKey("acme", "k1", "acme")
	keys := KeyMap{}.Add(key.Public())
	good, _ := IssueStatement(key, typicalStatement())
	f.Add(good)
	reward, _ := Issue(key, typicalClaims())
	f.Add(reward)
	b, _ := DecodeText(good)
	f.Add(EncodeText(b[:len(b)-3]))
	now := t0.Add(time.Minute)
	f.Fuzz(func(t *testing.T, text string) {
		s, err := VerifyStatement(keys, "acme", "", text, now)
		checkErr(t, text, err)
		if err == nil {
			if verr := s.Validate(); verr != nil || s.Tenant != "acme" {
				t.Fatalf("verified statement %+v invalid: %v", s, verr)
			}
		}
	})
}
