package webhooks

import "context"

// Crash stops the service the way a killed process does, for the
// relay's part: the relay and River stop and the database closes without
// the cursors the relay moved in memory being written.
func (s *Service) Crash() {
	s.mu.Lock()
	if s.cancel != nil {
		s.cancel()
	}
	s.mu.Unlock()
	s.wg.Wait()
	s.river.StopAndCancel(context.Background())
	s.db.Close()
}

// RelayCursor is where the relay reads a source on from (in memory).
func (s *Service) RelayCursor(name string) int64 {
	s.relay.mu.Lock()
	defer s.relay.mu.Unlock()
	return s.relay.cursor[name]
}

// RelayReads is how many times the relay read a log's events.
func (s *Service) RelayReads() int64 { return s.relay.rounds.Load() }
