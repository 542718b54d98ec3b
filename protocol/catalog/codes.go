package catalog

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// Code is a stored plain code. Key (codes.Normalize of the printed form) is
// what tills look codes up by and what the ledger counts uses of.
type Code struct {
	Key       protocol.CodeID     `json:"key"`
	Printed   string              `json:"code"`
	Campaign  protocol.CampaignID `json:"campaign"`
	Uses      int64               `json:"uses"`              // uses allowed, -1 = unlimited
	Balance   int64               `json:"balance,omitempty"` // gift cards: initial balance, minor units
	Stores    []protocol.StoreID  `json:"stores,omitempty"`  // bound to these stores
	Group     string              `json:"group,omitempty"`   // bound to this store group
	RevokedAt time.Time           `json:"revoked_at,omitzero"`
	Version   uint64              `json:"version"`
	CreatedAt time.Time           `json:"created_at"`
	// Masked is set on a copy whose Key and Printed were masked for a
	// caller who may not see them (Code.Mask).
	Masked bool `json:"masked,omitempty"`
}

// Secret reports whether the code is worth something to whoever reads it:
// a gift card, or a code of limited uses (single-use vouchers). Codes of
// unlimited uses are printed on posters and stay readable.
func (cd Code) Secret() bool { return cd.Balance != 0 || cd.Uses != -1 }

// Mask returns cd with Key and Printed masked (MaskCode) when it is
// Secret, for callers who may read codes but not use them (read-only and
// support keys): a list of gift card numbers is a list of money.
func (cd Code) Mask() Code {
	if !cd.Secret() {
		return cd
	}
	cd.Key, cd.Printed, cd.Masked = protocol.CodeID(MaskCode(string(cd.Key))), MaskCode(cd.Printed), true
	return cd
}

// MaskCode replaces all but the last characters of a code with '*': the
// last 4 of a code of 16 or more characters, a quarter of a shorter one
// (none of one under 4), enough to tell cards apart on a call without
// giving the number away.
func MaskCode(s string) string {
	if s == "" {
		return ""
	}
	keep := min(4, len(s)/4)
	return strings.Repeat("*", len(s)-keep) + s[len(s)-keep:]
}

// CodeSpec is what every code of a batch gets.
type CodeSpec struct {
	Uses    int64              `json:"uses,omitempty"`    // default 1; -1 = unlimited
	Balance int64              `json:"balance,omitempty"` // required for gift card campaigns, refused otherwise
	Stores  []protocol.StoreID `json:"stores,omitempty"`
	Group   string             `json:"group,omitempty"`
}

// GenerateRequest asks for Count new codes of one shape.
type GenerateRequest struct {
	Count   int    `json:"count"`
	Pattern string `json:"pattern,omitempty"`
	Prefix  string `json:"prefix,omitempty"`
	Postfix string `json:"postfix,omitempty"`
	Charset string `json:"charset,omitempty"`
	Length  int    `json:"length,omitempty"`
	Check   bool   `json:"check,omitempty"`
	CodeSpec
}

// MaskAudit masks the codes an audit entry about codes names (its target
// and the "key", "code" and "first" fields of before and after), for the
// callers Code.Mask is for. Other entries are returned as they are.
func MaskAudit(e AuditEntry) AuditEntry {
	if !strings.HasPrefix(e.Action, "code.") && !strings.HasPrefix(e.Action, "codes.") {
		return e
	}
	if k, ok := strings.CutPrefix(e.Target, "code/"); ok {
		e.Target = "code/" + MaskCode(k)
	}
	e.Before, e.After = maskJSONCodes(e.Before), maskJSONCodes(e.After)
	return e
}

func maskJSONCodes(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return raw
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return json.RawMessage(`{"masked":true}`) // not an object: keep nothing
	}
	for _, f := range []string{"key", "code", "first"} {
		if s, ok := m[f].(string); ok {
			m[f] = MaskCode(s)
		}
	}
	m["masked"] = true
	out, err := json.Marshal(m)
	if err != nil {
		return json.RawMessage(`{"masked":true}`)
	}
	return out
}
