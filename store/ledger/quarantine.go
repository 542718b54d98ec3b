package ledger

import (
	"context"
	"slices"
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// sortFacts splits every batch not refused whole into the facts to apply
// (the returned batches hold only those) and the facts to quarantine, by
// batch index. A fact that fails and names no usable seq is counted in
// Result.Dropped.
func sortFacts(bs []Batch, res []Result) ([]Batch, [][]Quarantined) {
	out := make([]Batch, len(bs))
	bad := make([][]Quarantined, len(bs))
	for i, b := range bs {
		out[i] = b
		if res[i].Err != nil {
			continue
		}
		// good aliases b.Redemptions while every fact is valid (as a
		// till's almost always are: no copy per batch, ~1.5 KB a message
		// at fleet load) and is copied at the first one that is not.
		good, copied := b.Redemptions, false
		for j, r := range b.Redemptions {
			var err error
			if j < len(b.Malformed) && b.Malformed[j] != nil {
				err = b.Malformed[j]
			} else {
				err = r.ValidateFrom(b.Tenant, b.Agent)
			}
			if err == nil {
				if copied {
					good = append(good, r)
				}
				continue
			}
			if !copied {
				good, copied = slices.Clone(b.Redemptions[:j]), true
			}
			if !protocol.FactSeqOK(r.ID.Seq) {
				res[i].Dropped++
				continue
			}
			var raw []byte
			if j < len(b.Raw) && b.Raw[j] != nil {
				raw = b.Raw[j]
			} else if enc, eerr := protocol.EncMode.Marshal(r); eerr == nil {
				raw = enc
			} else {
				raw = []byte{}
			}
			pe := protocol.PublicError(err)
			bad[i] = append(bad[i], Quarantined{Tenant: b.Tenant, Agent: b.Agent, Seq: r.ID.Seq,
				Code: pe.Code, Field: pe.Field, Message: pe.Message, Raw: raw})
		}
		out[i].Redemptions, out[i].Raw, out[i].Malformed = good, nil, nil
	}
	return out, bad
}

const insQuarantine = `INSERT INTO ledger_quarantine (tenant, agent, seq, code, field, message, raw, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`

// quarantine records the facts of qs whose (tenant, agent, seq) is not
// recorded yet (applied, quarantined, or met earlier in this transaction),
// and returns those it recorded.
func quarantine(s *state, qs []Quarantined, now time.Time) ([]Quarantined, error) {
	var out []Quarantined
	for _, q := range qs {
		dup, err := s.recorded(q.Tenant, protocol.RedemptionID{Agent: q.Agent, Seq: q.Seq})
		if err != nil {
			return nil, err
		}
		if dup {
			continue
		}
		res, err := s.tx.ExecContext(s.ctx, insQuarantine, string(q.Tenant), string(q.Agent), int64(q.Seq), string(q.Code), q.Field, q.Message, q.Raw, micros(now))
		if err != nil {
			return nil, err
		}
		if q.ID, err = res.LastInsertId(); err != nil {
			return nil, err
		}
		q.At = now
		out = append(out, q)
	}
	return out, nil
}

// Quarantine lists a tenant's quarantined facts with an ID above after,
// oldest first, at most limit (default 100).
func (l *Ledger) Quarantine(ctx context.Context, tenant protocol.TenantID, after int64, limit int) ([]Quarantined, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := l.db.QueryContext(ctx, `SELECT id, agent, seq, code, field, message, raw, received_at
		FROM ledger_quarantine WHERE tenant = ? AND id > ? ORDER BY id LIMIT ?`, string(tenant), after, limit)
	if err != nil {
		return nil, wrap("quarantine", err)
	}
	defer rows.Close()
	var out []Quarantined
	for rows.Next() {
		q := Quarantined{Tenant: tenant}
		var agent, code string
		var seq, at int64
		if err := rows.Scan(&q.ID, &agent, &seq, &code, &q.Field, &q.Message, &q.Raw, &at); err != nil {
			return nil, wrap("quarantine", err)
		}
		q.Agent, q.Seq, q.Code, q.At = protocol.AgentID(agent), uint64(seq), protocol.Code(code), time.UnixMicro(at)
		out = append(out, q)
	}
	return out, wrap("quarantine", rows.Err())
}
