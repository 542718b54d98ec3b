package agent

import (
	"sync"

	"github.com/punchcard/punchcard/protocol"
	"github.com/punchcard/punchcard/protocol/decide"
	"github.com/punchcard/punchcard/store/agentdb"
)

// maxKeptFigures bounds the hub figures a till keeps from online-first
// answers until a snapshot supersedes them.
const maxKeptFigures = 4096

// keptFigures are the hub's figures of codes from the till's latest
// online-first answers (decide.AuthorizeResponse with Reflected): fresher
// than the snapshot's until a snapshot past their code-use position
// arrives. A till cut off right after an online-first answer
// so decides with the freshest figure it saw, plus its own facts the
// figure does not count (agentdb.CodeFigure): exact, never a max.
type keptFigures struct {
	mu sync.Mutex
	m  map[protocol.CodeID]keptFigure
}

type keptFigure struct {
	known decide.Known
	refl  agentdb.Reflected
	pos   uint64 // the hub's code-use position read after known
}

// keep records the figures of an online-first answer (a hub before
// Reflected sends none to keep).
func (k *keptFigures) keep(resp *decide.AuthorizeResponse) {
	if resp == nil || resp.Reflected == nil {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, r := range resp.Decision.Results {
		if r.Index < 0 || r.Index >= len(resp.Known) || r.Code == "" {
			continue
		}
		if old, ok := k.m[r.Code]; ok && old.pos > resp.Position {
			continue
		}
		if k.m == nil {
			k.m = map[protocol.CodeID]keptFigure{}
		}
		if _, ok := k.m[r.Code]; !ok && len(k.m) >= maxKeptFigures {
			for c := range k.m { // drop any one: the snapshot's figure stands for it
				delete(k.m, c)
				break
			}
		}
		k.m[r.Code] = keptFigure{known: resp.Known[r.Index], pos: resp.Position,
			refl: agentdb.Reflected{Watermark: resp.Reflected.Watermark, Beyond: resp.Reflected.Beyond}}
	}
}

// hubFigure is the hub's freshest figure of key the till holds: the kept
// online-first figure unless the snapshot in use supersedes it (past its
// code-use position, or counting more of this till's facts; a snapshot at
// the same position has the same ledger figures without the other tills'
// holds the answer counted),
// else the snapshot's (a token serial has none there: token is set, and
// every own fact counts).
func (a *Agent) hubFigure(v *view, key protocol.CodeID, token bool) agentdb.HubFigure {
	k := &a.kept
	k.mu.Lock()
	kf, ok := k.m[key]
	if ok && (v.snap.Uses > kf.pos || reflectedWM(v.snap) > kf.refl.Watermark) {
		delete(k.m, key)
		ok = false
	}
	k.mu.Unlock()
	if ok {
		refl := kf.refl
		return agentdb.HubFigure{Used: kf.known.Uses, Spent: kf.known.Spent, Reflected: &refl}
	}
	if token {
		return agentdb.HubFigure{}
	}
	used, spent := v.known(key)
	return agentdb.HubFigure{Used: used, Spent: spent, Reflected: reflectedOf(v.snap)}
}
