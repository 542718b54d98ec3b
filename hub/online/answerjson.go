package online

import (
	"encoding/json"
	"strconv"

	"github.com/punchcard/punchcard/internal/jsonq"
	"github.com/punchcard/punchcard/protocol"
)

// appendRedemptions appends rs as json.Marshal encodes them, without
// reflection for the hub's own facts (no Sale, no Cap): the answer's
// recorded part is encoded inside the online writer, on its one serial
// path (TestAnswerEncoding, TestRedemptionsJSON).
func appendRedemptions(b []byte, rs []protocol.Redemption) ([]byte, error) {
	b = append(b, '[')
	for i := range rs {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = appendRedemption(b, &rs[i]); err != nil {
			return nil, err
		}
	}
	return append(b, ']'), nil
}

// appendRedemption appends r in protocol.Redemption's JSON form.
func appendRedemption(b []byte, r *protocol.Redemption) ([]byte, error) {
	if r.Sale != nil || r.Cap != nil {
		j, err := json.Marshal(r)
		if err != nil {
			return nil, err
		}
		return append(b, j...), nil
	}
	b = append(b, `{"id":`...)
	b = appendID(b, r.ID)
	b = append(b, `,"kind":`...)
	b = strconv.AppendUint(b, uint64(r.Kind), 10)
	b = append(b, `,"tenant":`...)
	b = jsonq.AppendString(b, string(r.Tenant))
	b = append(b, `,"store":`...)
	b = jsonq.AppendString(b, string(r.Store))
	b = append(b, `,"txn_id":`...)
	b = jsonq.AppendString(b, r.TxnID)
	b = optString(b, `,"campaign":`, string(r.Campaign))
	b = optString(b, `,"code":`, string(r.Code))
	b = optString(b, `,"customer":`, string(r.Customer))
	b = optString(b, `,"order_id":`, r.OrderID)
	b = optString(b, `,"currency":`, string(r.Currency))
	b = optInt(b, `,"discount":`, r.Discount)
	b = optInt(b, `,"spend":`, r.Spend)
	b = optInt(b, `,"points":`, r.Points)
	b = optInt(b, `,"order_total":`, r.OrderTot)
	b = append(b, `,"hlc":`...)
	b = strconv.AppendUint(b, r.HLC, 10)
	if r.Offline {
		b = append(b, `,"offline":true`...)
	}
	if r.Ref != nil {
		b = append(b, `,"ref":`...)
		b = appendID(b, *r.Ref)
	}
	if r.Snapshot != 0 {
		b = append(b, `,"snapshot_version":`...)
		b = strconv.AppendUint(b, r.Snapshot, 10)
	}
	b = optInt(b, `,"expires":`, r.Expires)
	b = optInt(b, `,"load":`, r.Load)
	return append(b, '}'), nil
}

func appendID(b []byte, id protocol.RedemptionID) []byte {
	b = append(b, `{"agent":`...)
	b = jsonq.AppendString(b, string(id.Agent))
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, id.Seq, 10)
	return append(b, '}')
}

func optString(b []byte, key, v string) []byte {
	if v == "" {
		return b
	}
	return jsonq.AppendString(append(b, key...), v)
}

func optInt(b []byte, key string, v int64) []byte {
	if v == 0 {
		return b
	}
	return strconv.AppendInt(append(b, key...), v, 10)
}
