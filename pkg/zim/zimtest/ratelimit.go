package zimtest

import "time"

// admit applies the per-AppId sliding window at time t: it counts the accepted
// requests in (t-window, t] and, when there is room, records this one. A
// refused request is not recorded.
func (s *Server) admit(appID uint32, t time.Time) bool {
	if s.rateN <= 0 || s.rateWindow <= 0 {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.prune(appID, t)
	if len(w) >= s.rateN {
		return false
	}
	s.windows[appID] = append(w, t)
	return true
}

// count records a request that a fault answered: it reached the server, so it
// uses up the window like any accepted request, even past the limit.
func (s *Server) count(appID uint32, t time.Time) {
	if s.rateN <= 0 || s.rateWindow <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.windows[appID] = append(s.prune(appID, t), t)
}

// prune drops the times that have left the window ending at t. s.mu is held.
func (s *Server) prune(appID uint32, t time.Time) []time.Time {
	w := s.windows[appID]
	start := t.Add(-s.rateWindow)
	i := 0
	for i < len(w) && !w[i].After(start) {
		i++
	}
	if i > 0 {
		w = append(w[:0], w[i:]...)
	}
	return w
}
