package handler

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/zim-deleteconv/zim-deleteconv/internal/job"
	"github.com/zim-deleteconv/zim-deleteconv/internal/outcome"
	"github.com/zim-deleteconv/zim-deleteconv/internal/request"
)

// apiJobBudget is how long an HTTP or direct invocation works on a job, once
// it has made progress, before it hands the rest to the job queue: the API
// function's instances stay free for callers, and the queue function runs the
// job at its own rate share.
const apiJobBudget = 3 * time.Second

// errHandoff is what the caller sees when an unfinished job could not be sent
// on; the SDK's error, which names the queue and its account, goes to the log.
var errHandoff = errors.New("the job made progress but could not be handed to its queue; send the request again to continue (deleting is idempotent)")

// deleteAll runs one round of an AllConversations job through the handler's
// client and, when it ends with work left after progress, sends the job on:
// an SQS record's to the queue it came from, an HTTP or direct invocation's
// (rec nil) to the job queue. Sent on, the request is accepted; a failed send
// is unavailable (the queue delivers an SQS record again; an API caller sends
// the request again).
func (inv *invocation) deleteAll(ctx context.Context, req request.Request, rec *events.SQSMessage) result {
	log := inv.h.log.With(slog.String("requestId", inv.requestID))
	if rec != nil {
		log = log.With(slog.String("messageId", rec.MessageId))
	}
	j := job.Job{ZIM: inv.h.zim, Workers: inv.h.jobWorkers, Log: log, Recovered: inv.panicked, Count: inv.count}
	q, budget := inv.jobQueue(rec, req, log)
	r := j.Run(ctx, job.Params{Request: req, Budget: budget})
	res := result{outcome: r.Outcome, resp: r.Resp, err: r.Err, job: r.Summary, resumable: r.Next != nil}
	if r.Next == nil || q.URL == "" {
		return res
	}
	if err := job.Continue(ctx, inv.h.sender, q, req.FromUserID, *r.Next); err != nil {
		log.Error("job not handed to its queue", "jobId", r.Summary.JobID, "round", r.Summary.Round, "error", err.Error())
		inv.count(outcome.Unavailable, nil)
		r.Summary.Outcome = outcome.Unavailable
		return result{outcome: outcome.Unavailable, err: errHandoff, job: r.Summary}
	}
	r.Summary.Outcome = outcome.Accepted
	return result{outcome: outcome.Accepted, job: r.Summary}
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
