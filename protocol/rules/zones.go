package rules

import (
	"sync"
	"time"
)

// zones interns loaded time zones by name. time.LoadLocation parses the
// zone's tzdata into a new *time.Location (about 3 KB for Europe/Berlin)
// on every call, and a hub keeps one Store per connected till (the
// catalog's agent cache): 10,000 tills in a few zones held ~29 MB of
// identical copies, which every collection marked. A Location is
// immutable once loaded, so one copy per name is shared. Only names that
// loaded are kept, so the map holds at most the tzdata's zones (~600).
var zones sync.Map // string -> *time.Location

// sharedLocation is time.LoadLocation, loading each name once.
func sharedLocation(name string) (*time.Location, error) {
	if v, ok := zones.Load(name); ok {
		return v.(*time.Location), nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	v, _ := zones.LoadOrStore(name, loc)
	return v.(*time.Location), nil
}
