package registry

import (
	"context"
	"errors"
	"time"
)

// State is a job's state in its status.
type State string

// The states of a job.
const (
	Running  State = "running"
	Complete State = "complete"
	Stopped  State = "stopped"
)

// Status is the status body of one job, as the routes answer it.
type Status struct {
	JobID      string `json:"JobId"`
	FromUserID string `json:"FromUserId"`
	State      State  `json:"State"`
	// Deleted and AlreadyDeleted are over all rounds; Failed counts the
	// conversations the latest round could not delete (a later round tries
	// them again, so failures are not summed).
	Deleted        int `json:"Deleted"`
	AlreadyDeleted int `json:"AlreadyDeleted"`
	Failed         int `json:"Failed"`
	// Left counts the conversations newer than the job's cutoff that a
	// complete job left (see internal/job).
	Left        int        `json:"Left"`
	Rounds      int        `json:"Rounds"`
	StartedAt   time.Time  `json:"StartedAt"`
	UpdatedAt   time.Time  `json:"UpdatedAt"`
	CompletedAt *time.Time `json:"CompletedAt"`
	// Outcome and FailedConvIDs say why a stopped job stopped: its outcome
	// class, and at most MaxFailedConvIDs of its failed conversations.
	Outcome       string   `json:"Outcome,omitempty"`
	FailedConvIDs []string `json:"FailedConvIds,omitempty"`
}

// MaxFailedConvIDs bounds the ConvIds a status names.
const MaxFailedConvIDs = 20

// Owner is the user item: who owns the user's job, and its round.
type Owner struct {
	Key        string // "user#<AppId>#<FromUserId>"
	JobID      string
	FromUserID string
	Round      int
	ActiveAt   time.Time // the latest claim or end of a round
	LeaseUntil time.Time // the owning round's invocation ends by then
	Ended      int       // the latest round that ended
	State      State
	ExpiresAt  time.Time
}

// Errors of a Store.
var (
	// ErrNotFound: no such item.
	ErrNotFound = errors.New("registry: not found")
	// ErrOwned: a claim found the user's job live (the current owner is returned).
	ErrOwned = errors.New("registry: the user's job is running")
	// ErrConflict: an advance or end found the owner item elsewhere (the
	// current one is returned where there is one).
	ErrConflict = errors.New("registry: the job's round is not this one")
)

// Store is the table, as the registry needs it. Every method is one atomic
// conditional write or one read; DynamoDB and Memory implement it.
type Store interface {
	// Claim writes o (a new job's round 1) unless the user's job is live
	// (running and active at or after staleBefore, or leased past now) or is
	// o's job itself. It returns the item it replaced (zero if none);
	// refused, ErrOwned and the current item.
	Claim(ctx context.Context, o Owner, now, staleBefore time.Time) (prev Owner, err error)
	// Advance writes o (round o.Round ≥ 2 of o.JobID) if the stored item is
	// that job, running, and at round o.Round−1 that ended or whose lease is
	// over by now, or at o.Round with its lease over and not ended; or if
	// there is none (a job from before the registry). Refused: ErrConflict
	// and the current item.
	Advance(ctx context.Context, o Owner, now time.Time) (cur Owner, err error)
	// End records that round o.Round of o.JobID ended (Ended, ActiveAt,
	// State, ExpiresAt from o) if the item is still that job at that round;
	// else ErrConflict.
	End(ctx context.Context, o Owner) error
	// Reopen undoes End of round o.Round (Ended back to o.Round−1) if the
	// item is still that job at that round and ended: its continuation was
	// not sent after all, so the queue's retry of the round must run.
	Reopen(ctx context.Context, o Owner) error
	// Owner reads the user item.
	Owner(ctx context.Context, key string) (Owner, error)
	// AddStatus writes a job's status after a round, kept until expires:
	// s.Deleted and s.AlreadyDeleted are the round's own, added to the
	// stored ones (0 if none); every other field replaces. It returns the
	// status written.
	AddStatus(ctx context.Context, s Status, expires time.Time) (Status, error)
	// PutStatus writes a job's status, kept until expires.
	PutStatus(ctx context.Context, s Status, expires time.Time) error
	// Status reads a job's status.
	Status(ctx context.Context, jobID string) (Status, error)
}
