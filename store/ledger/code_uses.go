package ledger

import (
	"context"
	"strings"

	"github.com/punchcard/punchcard/protocol"
)

// codeUsesChunk is how many codes one CodesUsed statement asks for; a
// shorter list is padded with its last code, so one prepared statement
// serves every chunk.
const codeUsesChunk = 500

var qCodeUsesIn = `SELECT code, uses FROM ledger_codes WHERE tenant = ? AND code IN (` +
	strings.TrimSuffix(strings.Repeat("?, ", codeUsesChunk), ", ") + `)`

// CodesUsed calls used(i) for every code of codes the ledger recorded as
// used now: ledger_codes.uses > 0, net of the rollbacks that voided a use
// (the redemption rate's numerator). Primary-key lookups, codeUsesChunk
// codes per statement.
func (l *Ledger) CodesUsed(ctx context.Context, tenant protocol.TenantID, codes []protocol.CodeID, used func(i int)) error {
	st, err := l.db.PrepareContext(ctx, qCodeUsesIn)
	if err != nil {
		return wrap("codes used", err)
	}
	defer st.Close()
	args := make([]any, 1+codeUsesChunk)
	args[0] = string(tenant)
	at := map[string][]int{}
	for lo := 0; lo < len(codes); lo += codeUsesChunk {
		part := codes[lo:min(lo+codeUsesChunk, len(codes))]
		clear(at)
		for i := range codeUsesChunk {
			c := string(part[min(i, len(part)-1)])
			args[1+i] = c
			if i < len(part) {
				at[c] = append(at[c], lo+i)
			}
		}
		rows, err := st.QueryContext(ctx, args...)
		if err != nil {
			return wrap("codes used", err)
		}
		for rows.Next() {
			var c string
			var uses int64
			if err := rows.Scan(&c, &uses); err != nil {
				rows.Close()
				return wrap("codes used", err)
			}
			if uses > 0 {
				for _, i := range at[c] {
					used(i)
				}
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return wrap("codes used", err)
		}
	}
	return nil
}
