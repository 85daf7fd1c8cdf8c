package registry

import (
	"errors"
	"testing"
	"time"
)

// testStore checks a Store's conditions; Memory and DynamoDB must agree.
func testStore(t *testing.T, newStore func(t *testing.T) Store) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	owner := func(key, job string, round int, at time.Time) Owner {
		return Owner{Key: key, JobID: job, FromUserID: "alice", Round: round, ActiveAt: at, LeaseUntil: at.Add(time.Minute),
			State: Running, ExpiresAt: at.Add(Retention)}
	}
	stale := func(now time.Time) time.Time { return now.Add(-TakeoverAge) }

	t.Run("claim, join, takeover", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		ctx := t.Context()
		prev, err := s.Claim(ctx, owner("u1", "job-a", 1, t0), t0, stale(t0))
		if err != nil || prev.JobID != "" {
			t.Fatalf("first claim: %+v, %v", prev, err)
		}
		// A second job while the first is live: refused, the first returned.
		later := t0.Add(2 * time.Minute)
		cur, err := s.Claim(ctx, owner("u1", "job-b", 1, later), later, stale(later))
		if !errors.Is(err, ErrOwned) || cur.JobID != "job-a" || cur.Round != 1 || !cur.ActiveAt.Equal(t0) {
			t.Fatalf("second claim: %+v, %v", cur, err)
		}
		// Past the takeover age (and the lease): taken over.
		old := t0.Add(TakeoverAge + time.Second)
		prev, err = s.Claim(ctx, owner("u1", "job-c", 1, old), old, stale(old))
		if err != nil || prev.JobID != "job-a" || prev.State != Running {
			t.Fatalf("takeover: %+v, %v", prev, err)
		}
		got, err := s.Owner(ctx, "u1")
		if err != nil || got.JobID != "job-c" || got.ExpiresAt.Unix() != old.Add(Retention).Unix() {
			t.Fatalf("owner after takeover: %+v, %v", got, err)
		}
		// Another user is independent.
		if _, err := s.Claim(ctx, owner("u2", "job-d", 1, later), later, stale(later)); err != nil {
			t.Fatalf("other user: %v", err)
		}
	})

	t.Run("lease holds past the takeover age", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		o := owner("u1", "job-a", 1, t0)
		o.LeaseUntil = t0.Add(time.Hour)
		if _, err := s.Claim(t.Context(), o, t0, stale(t0)); err != nil {
			t.Fatal(err)
		}
		now := t0.Add(TakeoverAge + time.Minute)
		if _, err := s.Claim(t.Context(), owner("u1", "job-b", 1, now), now, stale(now)); !errors.Is(err, ErrOwned) {
			t.Fatalf("claim inside the lease: %v", err)
		}
	})

	t.Run("an ended job is replaced at once", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		ctx := t.Context()
		if _, err := s.Claim(ctx, owner("u1", "job-a", 1, t0), t0, stale(t0)); err != nil {
			t.Fatal(err)
		}
		if err := s.End(ctx, Owner{Key: "u1", JobID: "job-a", Round: 1, ActiveAt: t0, State: Complete, ExpiresAt: t0.Add(Retention)}); err != nil {
			t.Fatal(err)
		}
		if prev, err := s.Claim(ctx, owner("u1", "job-b", 1, t0), t0, stale(t0)); err != nil || prev.State != Complete {
			t.Fatalf("claim after the end: %+v, %v", prev, err)
		}
	})

	t.Run("rounds advance once", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		ctx := t.Context()
		if _, err := s.Claim(ctx, owner("u1", "job-a", 1, t0), t0, stale(t0)); err != nil {
			t.Fatal(err)
		}
		t1 := t0.Add(10 * time.Second)
		// Round 1 has not recorded its end and its lease holds: round 2 waits.
		if cur, err := s.Advance(ctx, owner("u1", "job-a", 2, t1), t1); !errors.Is(err, ErrConflict) || cur.Round != 1 || cur.Ended != 0 {
			t.Fatalf("round 2 before round 1 ended: %+v, %v", cur, err)
		}
		if err := s.End(ctx, Owner{Key: "u1", JobID: "job-a", Round: 1, ActiveAt: t1, State: Running, ExpiresAt: t1.Add(Retention)}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Advance(ctx, owner("u1", "job-a", 3, t1), t1); !errors.Is(err, ErrConflict) {
			t.Fatalf("round 3 after 1: %v", err)
		}
		cur, err := s.Advance(ctx, owner("u1", "job-a", 2, t1), t1)
		if err != nil || cur.Round != 2 || cur.Ended != 1 {
			t.Fatalf("round 2: %+v, %v", cur, err)
		}
		// A duplicate of round 2 while its lease holds.
		if cur, err := s.Advance(ctx, owner("u1", "job-a", 2, t1), t1.Add(time.Second)); !errors.Is(err, ErrConflict) || cur.Round != 2 {
			t.Fatalf("duplicate round 2: %+v, %v", cur, err)
		}
		// Another job's round.
		if cur, err := s.Advance(ctx, owner("u1", "job-x", 3, t1), t1); !errors.Is(err, ErrConflict) || cur.JobID != "job-a" {
			t.Fatalf("another job's round: %+v, %v", cur, err)
		}
		// Round 2 failed (not ended); after its lease the queue's retry runs it.
		retry := t1.Add(2 * time.Minute)
		if _, err := s.Advance(ctx, owner("u1", "job-a", 2, retry), retry); err != nil {
			t.Fatalf("retry of round 2: %v", err)
		}
		// It ends, handing on: a late duplicate of round 2 never runs again.
		if err := s.End(ctx, Owner{Key: "u1", JobID: "job-a", Round: 2, ActiveAt: retry, State: Running, ExpiresAt: retry.Add(Retention)}); err != nil {
			t.Fatal(err)
		}
		late := retry.Add(time.Hour)
		if cur, err := s.Advance(ctx, owner("u1", "job-a", 2, late), late); !errors.Is(err, ErrConflict) || cur.Ended != 2 {
			t.Fatalf("late duplicate of an ended round: %+v, %v", cur, err)
		}
		// Its continuation's send failed after all: reopened, its retry runs.
		if err := s.Reopen(ctx, Owner{Key: "u1", JobID: "job-a", Round: 2}); err != nil {
			t.Fatalf("reopen: %v", err)
		}
		if err := s.Reopen(ctx, Owner{Key: "u1", JobID: "job-a", Round: 2}); !errors.Is(err, ErrConflict) {
			t.Fatalf("second reopen: %v", err)
		}
		if _, err := s.Advance(ctx, owner("u1", "job-a", 2, late), late); err != nil {
			t.Fatalf("retry of the reopened round 2: %v", err)
		}
		// Its end is never recorded (the table failed): round 3 runs once its lease is over.
		lease := late.Add(time.Minute + time.Second)
		if _, err := s.Advance(ctx, owner("u1", "job-a", 3, late), late.Add(time.Second)); !errors.Is(err, ErrConflict) {
			t.Fatalf("round 3 inside round 2's lease: %v", err)
		}
		if _, err := s.Advance(ctx, owner("u1", "job-a", 3, lease), lease); err != nil {
			t.Fatalf("round 3 after round 2's lease: %v", err)
		}
		// End of a round that is no longer the owner's.
		if err := s.End(ctx, Owner{Key: "u1", JobID: "job-a", Round: 2, ActiveAt: lease, State: Complete}); !errors.Is(err, ErrConflict) {
			t.Fatalf("end of an old round: %v", err)
		}
	})

	t.Run("a continuation without a record runs", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		cur, err := s.Advance(t.Context(), owner("u9", "job-a", 5, t0), t0)
		if err != nil || cur.Round != 5 || cur.Ended != 4 || cur.State != Running {
			t.Fatalf("advance without an item: %+v, %v", cur, err)
		}
	})

	t.Run("status", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		ctx := t.Context()
		if _, err := s.Status(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing status: %v", err)
		}
		if _, err := s.Owner(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing owner: %v", err)
		}
		done := t0.Add(time.Minute)
		want := Status{JobID: "job-a", FromUserID: "a#b@c", State: Stopped, Deleted: 5, AlreadyDeleted: 1, Failed: 2, Left: 3, Rounds: 4,
			StartedAt: t0, UpdatedAt: done, CompletedAt: &done, Outcome: "upstream_error", FailedConvIDs: []string{"x", "#y"}}
		if err := s.PutStatus(ctx, want, done.Add(Retention)); err != nil {
			t.Fatal(err)
		}
		got, err := s.Status(ctx, "job-a")
		if err != nil || got.JobID != want.JobID || got.FromUserID != want.FromUserID || got.State != want.State || got.Deleted != 5 ||
			got.AlreadyDeleted != 1 || got.Failed != 2 || got.Left != 3 || got.Rounds != 4 || !got.StartedAt.Equal(t0) ||
			!got.UpdatedAt.Equal(done) || got.CompletedAt == nil || !got.CompletedAt.Equal(done) || got.Outcome != want.Outcome ||
			len(got.FailedConvIDs) != 2 || got.FailedConvIDs[1] != "#y" {
			t.Fatalf("status = %+v, %v", got, err)
		}
		// After a round: the round's counts add up, the rest replaces.
		got, err = s.AddStatus(ctx, Status{JobID: "job-a", FromUserID: "a#b@c", State: Running, Deleted: 10, AlreadyDeleted: 2, Rounds: 5,
			StartedAt: t0, UpdatedAt: done}, done.Add(Retention))
		if err != nil || got.Deleted != 15 || got.AlreadyDeleted != 3 || got.Rounds != 5 || got.State != Running || got.CompletedAt != nil ||
			got.Outcome != "" || len(got.FailedConvIDs) != 0 || got.Failed != 0 {
			t.Fatalf("after AddStatus: %+v, %v", got, err)
		}
		if again, err := s.Status(ctx, "job-a"); err != nil || again.Deleted != 15 || again.CompletedAt != nil {
			t.Fatalf("read back: %+v, %v", again, err)
		}
		if fresh, err := s.AddStatus(ctx, Status{JobID: "job-n", State: Complete, Deleted: 4, CompletedAt: &done, StartedAt: t0, UpdatedAt: done}, done); err != nil ||
			fresh.Deleted != 4 || fresh.CompletedAt == nil {
			t.Fatalf("AddStatus of a new job: %+v, %v", fresh, err)
		}
		running := Status{JobID: "job-b", State: Running, StartedAt: t0, UpdatedAt: t0}
		if err := s.PutStatus(ctx, running, t0.Add(Retention)); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Status(ctx, "job-b"); err != nil || got.CompletedAt != nil || got.FailedConvIDs != nil {
			t.Fatalf("running status = %+v, %v", got, err)
		}
	})
}

func TestMemoryStore(t *testing.T) {
	t.Parallel()
	testStore(t, func(*testing.T) Store { return NewMemory() })
}
