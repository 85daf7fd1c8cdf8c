package registry

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Memory is a Store in process memory, with the same conditions as the
// DynamoDB one: for tests, and to compare the two.
type Memory struct {
	mu     sync.Mutex
	owners map[string]Owner
	status map[string]memStatus
}

type memStatus struct {
	s       Status
	expires time.Time
}

var _ Store = (*Memory)(nil)

// NewMemory is an empty Memory store.
func NewMemory() *Memory {
	return &Memory{owners: map[string]Owner{}, status: map[string]memStatus{}}
}

// Claim implements Store.
func (m *Memory) Claim(_ context.Context, o Owner, now, staleBefore time.Time) (Owner, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.owners[o.Key]
	if ok && (cur.JobID == o.JobID || cur.State == Running && !(cur.ActiveAt.Before(staleBefore) && cur.LeaseUntil.Before(now))) {
		return cur, ErrOwned
	}
	m.owners[o.Key] = o
	return cur, nil
}

// Advance implements Store.
func (m *Memory) Advance(_ context.Context, o Owner, now time.Time) (Owner, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.owners[o.Key]
	if ok {
		next := cur.Round == o.Round-1 && (cur.Ended == o.Round-1 || cur.LeaseUntil.Before(now))
		retry := cur.Round == o.Round && cur.LeaseUntil.Before(now) && cur.Ended < o.Round
		if cur.JobID != o.JobID || cur.State != Running || !(next || retry) {
			return cur, ErrConflict
		}
		o.Ended = cur.Ended
	} else {
		o.Ended = o.Round - 1
	}
	m.owners[o.Key] = o
	return o, nil
}

// End implements Store.
func (m *Memory) End(_ context.Context, o Owner) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.owners[o.Key]
	if !ok || cur.JobID != o.JobID || cur.Round != o.Round {
		return ErrConflict
	}
	cur.Ended, cur.ActiveAt, cur.State, cur.ExpiresAt = o.Round, o.ActiveAt, o.State, o.ExpiresAt
	m.owners[o.Key] = cur
	return nil
}

// Reopen implements Store.
func (m *Memory) Reopen(_ context.Context, o Owner) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.owners[o.Key]
	if !ok || cur.JobID != o.JobID || cur.Round != o.Round || cur.Ended != o.Round {
		return ErrConflict
	}
	cur.Ended = o.Round - 1
	m.owners[o.Key] = cur
	return nil
}

// Owner implements Store.
func (m *Memory) Owner(_ context.Context, key string) (Owner, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.owners[key]
	if !ok {
		return Owner{}, ErrNotFound
	}
	return o, nil
}

// PutStatus implements Store.
func (m *Memory) PutStatus(_ context.Context, s Status, expires time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s.FailedConvIDs = slices.Clone(s.FailedConvIDs)
	m.status[s.JobID] = memStatus{s: s, expires: expires}
	return nil
}

// AddStatus implements Store.
func (m *Memory) AddStatus(_ context.Context, s Status, expires time.Time) (Status, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur, ok := m.status[s.JobID]; ok {
		s.Deleted += cur.s.Deleted
		s.AlreadyDeleted += cur.s.AlreadyDeleted
	}
	s.FailedConvIDs = slices.Clone(s.FailedConvIDs)
	m.status[s.JobID] = memStatus{s: s, expires: expires}
	return s, nil
}

// Status implements Store.
func (m *Memory) Status(_ context.Context, jobID string) (Status, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.status[jobID]
	if !ok {
		return Status{}, ErrNotFound
	}
	return s.s, nil
}

// Expires reports when a job's status expires (the TTL it was written with).
func (m *Memory) Expires(jobID string) (time.Time, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.status[jobID]
	return s.expires, ok
}
