package ledger

import (
	"math/rand/v2"
	"strconv"

	"github.com/punchcard/punchcard/internal/jsonq"
)

// The body of a fact.* event, encoded without reflection: every fact the
// ledger records writes one (the online writer encodes a basket's on its
// one serial path, where encoding/json's reflection cost about 5 % of its
// CPU). The bytes are exactly what json.Marshal(factEvent) gives
// (TestFactEventJSON checks it on random facts, escapes and invalid
// UTF-8 included): docs/events.md is the contract, and the webhook relay
// delivers the stored bytes as they are.

// appendJSON appends e as json.Marshal encodes it.
func (e *factEvent) appendJSON(b []byte) []byte {
	b = append(b, `{"agent":`...)
	b = jsonq.AppendString(b, e.Agent)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, e.Seq, 10)
	b = append(b, `,"kind":`...)
	b = jsonq.AppendString(b, e.Kind)
	b = appendField(b, `,"store":`, e.Store)
	b = appendField(b, `,"campaign":`, e.Campaign)
	b = appendField(b, `,"code":`, e.Code)
	b = appendField(b, `,"customer":`, e.Customer)
	b = appendField(b, `,"order_id":`, e.OrderID)
	b = appendField(b, `,"txn_id":`, e.TxnID)
	b = appendField(b, `,"currency":`, e.Currency)
	b = appendInt(b, `,"discount":`, e.Discount)
	b = appendInt(b, `,"spend":`, e.Spend)
	b = appendInt(b, `,"points":`, e.Points)
	b = appendInt(b, `,"order_total":`, e.OrderTotal)
	if e.Offline {
		b = append(b, `,"offline":true`...)
	}
	b = appendField(b, `,"at":`, e.At)
	b = appendField(b, `,"ref_agent":`, e.RefAgent)
	if e.RefSeq != 0 {
		b = append(b, `,"ref_seq":`...)
		b = strconv.AppendUint(b, e.RefSeq, 10)
	}
	return append(b, '}')
}

// appendField appends an omitempty string field.
func appendField(b []byte, key, v string) []byte {
	if v == "" {
		return b
	}
	return jsonq.AppendString(append(b, key...), v)
}

// appendInt appends an omitempty integer field.
func appendInt(b []byte, key string, v int64) []byte {
	if v == 0 {
		return b
	}
	return strconv.AppendInt(append(b, key...), v, 10)
}

// eventSalt is a new event's salt as the column's DEFAULT makes it
// (ledger_015_events.sql: lower(hex(randomblob(6))), 12 lowercase hex
// digits): 48 random bits from the runtime's generator (ChaCha8, seeded
// from the system's entropy), which keep a seq reused after a restore
// from backup from repeating an id a receiver has seen.
func eventSalt() string {
	const hexDigits = "0123456789abcdef"
	var b [12]byte
	v := rand.Uint64()
	for i := range b {
		b[i] = hexDigits[v&0xf]
		v >>= 4
	}
	return string(b[:])
}
