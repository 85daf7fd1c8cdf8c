package handler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/zim-deleteconv/zim-deleteconv/internal/job"
	"github.com/zim-deleteconv/zim-deleteconv/internal/outcome"
	"github.com/zim-deleteconv/zim-deleteconv/internal/registry"
	"github.com/zim-deleteconv/zim-deleteconv/internal/request"
)

// apiJobBudget is how long an HTTP or direct invocation works on a job, once
// it has made progress, before it hands the rest to the job queue: the API
// function's instances stay free for callers, and the queue function runs the
// job at its own rate share.
const apiJobBudget = 3 * time.Second

// registryWriteTimeout bounds the registry's write at the end of a round,
// which runs after the round's own context is nearly over.
const registryWriteTimeout = time.Second

// errHandoff is what the caller sees when an unfinished job could not be sent
// on; the SDK's error, which names the queue and its account, goes to the log.
var errHandoff = errors.New("the job made progress but could not be handed to its queue; send the request again to continue (deleting is idempotent)")

// errRegistry is what the caller sees when the job registry did not answer
// before a round: the round does not run (it could run twice), and its
// sender tries again (the queue delivers the record again; an API caller
// gets 503 with Retry-After). The SDK's error goes to the log.
var errRegistry = errors.New("the job registry (the stack's state table) is unavailable; the job did not start or go on: send the request again (deleting is idempotent)")

// errRoundWait fails a continuation whose previous round has not recorded
// its end: the queue delivers it again, after that round ended or its lease
// is over.
var errRoundWait = errors.New("the job's previous round has not ended yet; the queue delivers this round again later")

// Registry is the job registry (*registry.Registry): one running job per
// user, each round run once, and the jobs' status.
type Registry interface {
	Begin(ctx context.Context, rd registry.Round) (registry.Decision, error)
	End(ctx context.Context, rd registry.Round, st registry.Status, again bool) error
	Reopen(ctx context.Context, rd registry.Round) error
	Job(ctx context.Context, jobID string) (registry.Status, error)
	Latest(ctx context.Context, appID uint32, fromUserID string) (registry.Status, error)
}

var _ Registry = (*registry.Registry)(nil)

// WithRegistry keeps one job per user and the jobs' status in reg (the
// shared table); creds (the secret cache) tells the AppId the items are
// keyed by. Without it jobs run as chains nothing else knows of, and the
// status routes answer 404.
func WithRegistry(reg Registry, creds zimCredentials) Option {
	return func(h *Handler) { h.registry, h.creds = reg, creds }
}

// deleteAll runs one round of an AllConversations job through the handler's
// client and, when it ends with work left after progress, sends the job on:
// an SQS record's to the queue it came from, an HTTP or direct invocation's
// (rec nil) to the job queue. Sent on, the request is accepted; a failed send
// is unavailable (the queue delivers an SQS record again; an API caller sends
// the request again). With the registry, the round runs only if it is this
// invocation's (see beginRound), and its end is recorded (endRound).
func (inv *invocation) deleteAll(ctx context.Context, req request.Request, rec *events.SQSMessage) result {
	log := inv.h.log.With(slog.String("requestId", inv.requestID))
	if rec != nil {
		log = log.With(slog.String("messageId", rec.MessageId))
	}
	j := job.Job{ZIM: inv.h.zim, Workers: inv.h.jobWorkers, Log: log, Recovered: inv.panicked, Count: inv.count}
	q, budget := inv.jobQueue(rec, req, log)
	p := job.Params{Request: req, Budget: budget}
	var rd *registry.Round
	if inv.h.registry != nil {
		var stop *result
		if rd, stop = inv.beginRound(ctx, req, rec, log); stop != nil {
			return *stop
		}
		p.JobID, p.StartedAt = rd.JobID, rd.StartedAt
	}
	r := j.Run(ctx, p)
	inv.rounds.Add(1)
	if r.Summary != nil && r.Summary.Complete {
		inv.completed.Add(1)
	}
	res := result{outcome: r.Outcome, resp: r.Resp, err: r.Err, job: r.Summary, resumable: r.Next != nil}
	if r.Next == nil || q.URL == "" {
		if rd != nil {
			inv.endRound(ctx, *rd, req, r, res, false, rec != nil, log)
		}
		return res
	}
	accepted := result{outcome: outcome.Accepted, job: r.Summary}
	if rd != nil {
		// The round's end is recorded before the continuation goes, so the
		// next round finds it ended however soon it comes.
		if err := inv.endRound(ctx, *rd, req, r, accepted, true, rec != nil, log); errors.Is(err, registry.ErrConflict) {
			r.Summary.Outcome = outcome.Accepted
			return accepted // taken over during the round: the other job goes on
		}
	}
	if err := job.Continue(ctx, inv.h.sender, q, req.FromUserID, *r.Next); err != nil {
		log.Error("job not handed to its queue", "jobId", r.Summary.JobID, "round", r.Summary.Round, "error", err.Error())
		inv.count(outcome.Unavailable, nil)
		r.Summary.Outcome = outcome.Unavailable
		res = result{outcome: outcome.Unavailable, err: errHandoff, job: r.Summary}
		if rd != nil {
			// Not sent (or SQS took it and the answer was lost): the round is
			// open again, so that the queue's retry of an SQS record runs.
			wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), registryWriteTimeout)
			if err := inv.h.registry.Reopen(wctx, *rd); err != nil {
				log.Error("job round not reopened after its continuation failed", "jobId", rd.JobID, "round", rd.Round, "error", err.Error())
			}
			cancel()
			// Its counts were recorded with its end above.
			counted := r
			sum := *r.Summary
			sum.Deleted, sum.AlreadyDeleted = 0, 0
			if c := req.Continuation; c != nil {
				sum.Deleted, sum.AlreadyDeleted = c.Deleted, c.AlreadyDeleted
			}
			counted.Summary = &sum
			inv.endRound(ctx, *rd, req, counted, res, false, rec != nil, log)
		}
		return res
	}
	r.Summary.Outcome = outcome.Accepted
	return accepted
}

// beginRound asks the registry whether this round runs. It returns the
// round, or the result to answer instead: joined (the user's job is already
// running: accepted, with its id and counts), stopped (a duplicated or stale
// continuation: accepted, the record is done), or unavailable (the table or
// the secret did not answer).
func (inv *invocation) beginRound(ctx context.Context, req request.Request, rec *events.SQSMessage, log *slog.Logger) (*registry.Round, *result) {
	creds, err := inv.h.creds.Credentials(ctx)
	if err != nil {
		return nil, &result{outcome: outcome.Classify(ctx, err), err: err}
	}
	rd := registry.Round{AppID: creds.AppID, FromUserID: req.FromUserID, JobID: job.NewID(), Round: 1, StartedAt: time.Now().UTC()}
	if rec != nil {
		// The same message delivered again is the same job: its round 1
		// runs again only if the first run failed (see registry.Round).
		rd.JobID = messageJobID(rec)
	}
	if c := req.Continuation; c != nil {
		rd.JobID, rd.Round, rd.StartedAt = c.JobID, c.Round, c.StartedAt
	}
	d, err := inv.h.registry.Begin(ctx, rd)
	switch {
	case err != nil && !d.Run:
		log.Error("job registry unavailable; the round does not run", "jobId", rd.JobID, "round", rd.Round, "fromUserId", rd.FromUserID, "error", err.Error())
		return nil, &result{outcome: outcome.Unavailable, err: errRegistry}
	case err != nil:
		log.Warn("job status not recorded at its start", "jobId", rd.JobID, "error", err.Error())
	}
	switch {
	case d.Joined != nil:
		st := d.Joined
		log.Info("job joined: the user's job is running", "jobId", st.JobID, "fromUserId", rd.FromUserID, "rounds", st.Rounds)
		return nil, &result{outcome: outcome.Accepted, job: &job.Summary{FromUserID: rd.FromUserID, Outcome: outcome.Accepted,
			JobID: st.JobID, Round: st.Rounds, Deleted: st.Deleted, AlreadyDeleted: st.AlreadyDeleted}}
	case d.Wait:
		// The round before may still be running: this record comes back.
		log.Info("continuation waits: the round before has not ended", "jobId", rd.JobID, "round", rd.Round, "fromUserId", rd.FromUserID, "reason", d.Reason)
		return nil, &result{outcome: outcome.Unavailable, err: errRoundWait}
	case !d.Run:
		// Not a failure: the job goes on (or went on) elsewhere.
		log.Info("continuation stopped: not this round's owner", "jobId", rd.JobID, "round", rd.Round, "fromUserId", rd.FromUserID, "reason", d.Reason)
		sum := &job.Summary{FromUserID: rd.FromUserID, Outcome: outcome.Accepted, JobID: rd.JobID, Round: rd.Round}
		if c := req.Continuation; c != nil {
			sum.Deleted, sum.AlreadyDeleted = c.Deleted, c.AlreadyDeleted
		}
		return nil, &result{outcome: outcome.Accepted, job: sum}
	case d.TakenOver != "":
		log.Warn("job taken over: the user's job was idle past the takeover age", "jobId", rd.JobID, "takenOver", d.TakenOver,
			"fromUserId", rd.FromUserID, "takeoverAge", registry.TakeoverAge.String())
	}
	return &rd, nil
}

// endRound records how the round ended: handed on (the job runs: recorded
// before the continuation is sent), complete,
// or stopped: nothing continues it (an HTTP or direct run that was not handed
// on, or the round cap). An SQS record that failed comes back: the round stays
// owned and runs again. A failed write is logged: the work is done, and the
// next round (or the takeover age) sets the record right.
func (inv *invocation) endRound(ctx context.Context, rd registry.Round, req request.Request, r job.Result, res result, handedOn, fromQueue bool, log *slog.Logger) error {
	s := r.Summary
	// The round's own counts: the registry adds them up.
	st := registry.Status{Deleted: s.Deleted, AlreadyDeleted: s.AlreadyDeleted, Failed: s.Failed, Left: s.Left, FailedConvIDs: s.FailedConvIDs}
	if c := req.Continuation; c != nil {
		st.Deleted, st.AlreadyDeleted = s.Deleted-c.Deleted, s.AlreadyDeleted-c.AlreadyDeleted
	}
	again := false
	switch {
	case handedOn:
		st.State = registry.Running
	case res.outcome == outcome.Deleted && s.Complete:
		st.State = registry.Complete
	case fromQueue && !errors.Is(r.Err, job.ErrRoundCap):
		st.State, again = registry.Running, true
	default:
		st.State, st.Outcome = registry.Stopped, string(res.outcome)
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), registryWriteTimeout)
	defer cancel()
	err := inv.h.registry.End(wctx, rd, st, again)
	switch {
	case errors.Is(err, registry.ErrConflict):
		log.Warn("job taken over during its round; its end is not recorded", "jobId", rd.JobID, "round", rd.Round)
	case err != nil:
		log.Error("job status not recorded at the end of its round", "jobId", rd.JobID, "round", rd.Round, "state", st.State, "error", err.Error())
	}
	return err
}

// messageJobID is the job id of an SQS record that starts a job: made from
// its queue and message id, so that a redelivery names the same job.
func messageJobID(rec *events.SQSMessage) string {
	sum := sha256.Sum256([]byte(rec.EventSourceARN + "\x00" + rec.MessageId))
	return hex.EncodeToString(sum[:16])
}

// jobQueue is where a job of this invocation goes on (no URL: nowhere) and
// how long it runs before (0: until the deadline).
func (inv *invocation) jobQueue(rec *events.SQSMessage, req request.Request, log *slog.Logger) (job.Queue, time.Duration) {
	switch {
	case inv.h.sender == nil:
		return job.Queue{}, 0
	case rec == nil && inv.h.queueURL == "":
		return job.Queue{}, 0
	case rec == nil:
		return job.Queue{URL: inv.h.queueURL}, apiJobBudget
	}
	url, err := job.QueueURL(rec.EventSourceARN, inv.h.queueURL)
	if err != nil {
		attrs := []any{"error", err.Error()}
		if c := req.Continuation; c != nil {
			attrs = append(attrs, "jobId", c.JobID, "round", c.Round)
		}
		log.Error("job cannot go on through its queue", attrs...)
		return job.Queue{}, 0
	}
	q := job.Queue{URL: url}
	if fifoQueue(*rec) {
		q.GroupID = rec.Attributes["MessageGroupId"]
	}
	return q, 0
}
