package registry

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// TakeoverAge is how long a running job may stay idle before a new request
// for its user takes it over: three of the template's 370 s visibility
// timeouts (see the package documentation).
const TakeoverAge = 3 * 370 * time.Second

// Retention is how long the items are kept after their last write (the
// table's TTL attribute ExpiresAt).
const Retention = 30 * 24 * time.Hour

// defaultLease is a round's lease when its context has no deadline.
const defaultLease = 15 * time.Minute

// leaseMargin is added to a round's deadline: another instance's clock may
// be a little behind.
const leaseMargin = 5 * time.Second

// Registry decides, for every round of every job, whether it runs, and keeps
// the jobs' status.
type Registry struct {
	store    Store
	now      func() time.Time
	takeover time.Duration
}

// Option configures a Registry.
type Option func(*Registry)

// WithClock sets the clock (time.Now by default).
func WithClock(now func() time.Time) Option { return func(r *Registry) { r.now = now } }

// WithTakeoverAge sets the takeover age (TakeoverAge by default).
func WithTakeoverAge(d time.Duration) Option { return func(r *Registry) { r.takeover = d } }

// New is a Registry over s.
func New(s Store, opts ...Option) *Registry {
	r := &Registry{store: s, now: time.Now, takeover: TakeoverAge}
	for _, o := range opts {
		o(r)
	}
	return r
}

// UserKey is the owner item's key of fromUserID in appID.
func UserKey(appID uint32, fromUserID string) string {
	return "user#" + strconv.FormatUint(uint64(appID), 10) + "#" + fromUserID
}

// Round is one round of a job, about to run or just run.
type Round struct {
	AppID      uint32
	FromUserID string
	// JobID is the job's id; a new job's may repeat (the same SQS message
	// delivered again): its round 1 then runs only as a retry of the first.
	JobID string
	// Round is 1 for a new job, then the continuation's.
	Round int
	// StartedAt is when the job started (its round 1).
	StartedAt time.Time
}

// Decision says whether a round runs.
type Decision struct {
	// Run: the round is this invocation's; run it, then call End.
	Run bool
	// Joined, for a new job that does not run: the user's running job.
	Joined *Status
	// TakenOver is the job a new job took over (its chain was lost), if any.
	TakenOver string
	// Reason, for a later round that does not run: why (a duplicate, a
	// stale round, a job taken over or ended).
	Reason string
	// Wait, for a later round that does not run now: the round before it
	// has not recorded its end and may still be running. Its record must
	// come back later (report it failed): by then that round ended, or its
	// lease is over.
	Wait bool
}

// Begin claims round rd before it runs. ctx's deadline is the round's lease:
// until then no other invocation runs it again. An error without Run means
// the table did not answer: the round must not run (its sender tries again).
// An error with Run: the round is owned, but the new job's first status was
// not written (its end writes it).
func (r *Registry) Begin(ctx context.Context, rd Round) (Decision, error) {
	now := r.now()
	lease := now.Add(defaultLease)
	if d, ok := ctx.Deadline(); ok {
		lease = d
	}
	o := Owner{Key: UserKey(rd.AppID, rd.FromUserID), JobID: rd.JobID, FromUserID: rd.FromUserID, Round: rd.Round,
		ActiveAt: now, LeaseUntil: lease.Add(leaseMargin), State: Running, ExpiresAt: now.Add(Retention)}
	if rd.Round > 1 {
		cur, err := r.store.Advance(ctx, o, now)
		switch {
		case errors.Is(err, ErrConflict) && cur.JobID == rd.JobID && cur.State == Running && cur.Round == rd.Round-1:
			return Decision{Wait: true, Reason: fmt.Sprintf("round %d has not recorded its end and may still be running", cur.Round)}, nil
		case errors.Is(err, ErrConflict):
			return Decision{Reason: stopReason(cur, rd)}, nil
		case err != nil:
			return Decision{}, err
		}
		return Decision{Run: true}, nil
	}

	prev, err := r.store.Claim(ctx, o, now, now.Add(-r.takeover))
	if errors.Is(err, ErrOwned) && prev.JobID == rd.JobID {
		// The same job's round 1 again (an SQS record delivered again, its
		// job id made from its message id): it runs only as a retry.
		cur, err := r.store.Advance(ctx, o, now)
		switch {
		case errors.Is(err, ErrConflict):
			return Decision{Reason: stopReason(cur, rd)}, nil
		case err != nil:
			return Decision{}, err
		}
		return Decision{Run: true}, nil
	}
	if errors.Is(err, ErrOwned) {
		st, err := r.store.Status(ctx, prev.JobID)
		if errors.Is(err, ErrNotFound) { // its first status write failed
			st, err = Status{JobID: prev.JobID, FromUserID: prev.FromUserID, State: Running, Rounds: prev.Round,
				StartedAt: prev.ActiveAt, UpdatedAt: prev.ActiveAt}, nil
		}
		if err != nil {
			return Decision{}, err
		}
		return Decision{Joined: &st}, nil
	}
	if err != nil {
		return Decision{}, err
	}
	d := Decision{Run: true}
	if prev.State == Running && prev.JobID != "" && prev.JobID != rd.JobID {
		d.TakenOver = prev.JobID
	}
	// The status answers from now on (a 202's Location may be asked at once).
	st := Status{JobID: rd.JobID, FromUserID: rd.FromUserID, State: Running, Rounds: 1, StartedAt: rd.StartedAt.UTC(), UpdatedAt: now.UTC()}
	if err := r.store.PutStatus(ctx, st, now.Add(Retention)); err != nil {
		return d, fmt.Errorf("registry: the job's first status: %w", err)
	}
	if d.TakenOver != "" {
		r.stopTakenOver(ctx, d.TakenOver, rd.JobID, now)
	}
	return d, nil
}

// stopTakenOver marks a job taken over as stopped, keeping its counts. Its
// chain, if it ever comes back, stops at its next round anyway; this only
// makes its status say so.
func (r *Registry) stopTakenOver(ctx context.Context, old, by string, now time.Time) {
	st, err := r.store.Status(ctx, old)
	if err != nil {
		return
	}
	done := now.UTC()
	st.State, st.Outcome, st.UpdatedAt, st.CompletedAt = Stopped, "taken_over by job "+by, done, &done
	_ = r.store.PutStatus(ctx, st, now.Add(Retention))
}

// stopReason says why round rd does not run, from the owner item found.
func stopReason(cur Owner, rd Round) string {
	switch {
	case cur.JobID == "":
		return "the user's job record is gone"
	case cur.JobID != rd.JobID:
		return "the job was taken over by job " + cur.JobID
	case cur.State != Running:
		return "the job already ended (" + string(cur.State) + ")"
	case cur.Round >= rd.Round:
		return fmt.Sprintf("round %d is already running or done (the job is at round %d): a duplicate", rd.Round, cur.Round)
	}
	return fmt.Sprintf("round %d is not the next one (the job is at round %d): a stale continuation", rd.Round, cur.Round)
}

// End records how round rd ended: st is the job's status after it (its
// State running while the job goes on), with the round's own Deleted and
// AlreadyDeleted, which the registry adds to the job's (so a round that ran
// twice counts what each run did). again means the round will run again
// (its record failed and the queue delivers it again): only the status is
// written, and the round stays owned. Otherwise the owner item records the
// round's end first, so a duplicate of it never runs; if that write finds the
// job no longer this round's (taken over), nothing is written.
func (r *Registry) End(ctx context.Context, rd Round, st Status, again bool) error {
	now := r.now()
	st.JobID, st.FromUserID, st.Rounds, st.UpdatedAt = rd.JobID, rd.FromUserID, rd.Round, now.UTC()
	st.StartedAt = rd.StartedAt.UTC()
	if len(st.FailedConvIDs) > MaxFailedConvIDs {
		st.FailedConvIDs = st.FailedConvIDs[:MaxFailedConvIDs]
	}
	if st.State == "" {
		st.State = Running
	}
	if st.State != Running {
		done := now.UTC()
		st.CompletedAt = &done
	}
	if !again {
		o := Owner{Key: UserKey(rd.AppID, rd.FromUserID), JobID: rd.JobID, Round: rd.Round, ActiveAt: now, State: st.State, ExpiresAt: now.Add(Retention)}
		if err := r.store.End(ctx, o); err != nil {
			return err
		}
	}
	_, err := r.store.AddStatus(ctx, st, now.Add(Retention))
	return err
}

// Reopen undoes the end of round rd, recorded before its continuation was
// sent, when the send failed: the queue's retry of rd must then run.
func (r *Registry) Reopen(ctx context.Context, rd Round) error {
	return r.store.Reopen(ctx, Owner{Key: UserKey(rd.AppID, rd.FromUserID), JobID: rd.JobID, Round: rd.Round})
}

// Job is the status of one job; ErrNotFound if there is none (or it expired).
func (r *Registry) Job(ctx context.Context, jobID string) (Status, error) {
	return r.store.Status(ctx, jobID)
}

// Latest is the status of fromUserID's latest job in appID; ErrNotFound if
// there is none.
func (r *Registry) Latest(ctx context.Context, appID uint32, fromUserID string) (Status, error) {
	o, err := r.store.Owner(ctx, UserKey(appID, fromUserID))
	if err != nil {
		return Status{}, err
	}
	st, err := r.store.Status(ctx, o.JobID)
	if errors.Is(err, ErrNotFound) && o.State == Running {
		return Status{JobID: o.JobID, FromUserID: o.FromUserID, State: Running, Rounds: o.Round, UpdatedAt: o.ActiveAt}, nil
	}
	return st, err
}
