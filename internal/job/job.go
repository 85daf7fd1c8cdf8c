// Package job runs an AllConversations request: it deletes every conversation
// of one user, listing what ZEGO shows and deleting it with a few workers
// through the caller's client (and so its rate limiter), until nothing is left
// that it has not tried or the run's time is up. A job that one invocation
// cannot finish goes on in a later round, through a queue (see Continue).
//
// # Rounds and runs
//
// A run is one invocation's share of a job. It stops dispatching deletions a
// little before its context's deadline (the reserve lets calls in flight come
// back and the continuation be sent), at once on a systemic failure (a wrong
// secret or setting: every further call would fail the same way), after
// maxFailuresWithoutProgress failures when nothing was deleted, and after
// maxListFailures failed listings (one failed listing is tried again, so an
// odd answer does not end a run that has its time still ahead). A run that
// ends with work left after progress (at least one conversation deleted or
// already deleted) yields the next round's Continuation; one without progress
// does not, so a stuck job fails like any other request. A job takes at most
// request.MaxRounds rounds.
//
// # The bound on new conversations
//
// A job deletes the conversations its user had when it started, and what
// arrives later only while those are not all gone: a user who keeps getting
// new conversations (a support bot) would otherwise keep the job running for
// ever. The job's cutoff is an UpdateTime (ZEGO's clock, Unix milliseconds):
// the later of the job's start on this function's clock and the newest
// UpdateTime its first listing shows (so a skew between the two clocks never
// makes an old conversation new). A conversation whose UpdateTime is after the
// cutoff is newer: it is deleted only in a page that still holds an untried
// conversation from before the cutoff, or while ZEGO hides older ones (more
// than the visible 1000: they are older than every visible one, so they may be
// the job's own). Once a whole listing shows nothing from before the cutoff
// and nothing hidden, the job ends (Complete), and Summary.Left counts the
// newer conversations it left. So what arrives during the job is deleted as
// long as the job has its own conversations to delete, and never after: the
// job ends at the latest one listing after its last original conversation
// went. A conversation of the user that got a new message during the job has
// a new UpdateTime and counts as newer (ZEGO keeps only the latest).
package job

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/internal/logctx"
	"github.com/zim-deleteconv/zim-deleteconv/internal/outcome"
	"github.com/zim-deleteconv/zim-deleteconv/internal/request"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
)

// listPageSize is the QueryConversationList page the job asks for (ZEGO's maximum).
const listPageSize = zim.MaxConversationListLimit

// maxVisibleConversations is how many of a user's latest conversations
// QueryConversationList shows. Once those are deleted, older ones become
// visible, so the job lists again until nothing new appears.
const maxVisibleConversations = 1000

// Limits of one run.
const (
	// maxFailuresWithoutProgress ends a run in which every conversation
	// fails (a stuck job) after this many failed calls, instead of trying all
	// 1000 visible.
	maxFailuresWithoutProgress = 100
	// maxFailedConvIDs bounds the ConvIds a summary (and so a log line or an
	// answer) names; Failed still counts them all.
	maxFailedConvIDs = 20
	// maxListFailures is how many failed listings a run takes, listRetryPause
	// apart, before it ends: a run that ended on the first one would cost a
	// job without progress yet a whole visibility timeout for one odd answer.
	maxListFailures = 3
	listRetryPause  = 500 * time.Millisecond
)

// The reserve of a run: it stops dispatching this long before its context's
// deadline; calls in flight get the first half to come back, the
// continuation the rest. 2% of the run with a floor and a ceiling: with a
// 10 s timeout the job dispatches for 97% of it.
const (
	reserveShare = 0.02
	minReserve   = 200 * time.Millisecond
	maxReserve   = 750 * time.Millisecond
)

// ZIM is what a job needs of the ZIM server API (*zim.Client).
type ZIM interface {
	DeleteConversation(ctx context.Context, req zim.DeleteConvRequest) (*zim.Response, error)
	QueryConversationList(ctx context.Context, fromUserID string, limit int, next int64) (*zim.ConversationList, error)
}

// Job is what one AllConversations request runs with: the client, how many
// deletions are in flight, and the trigger's hooks.
type Job struct {
	ZIM ZIM
	// Workers bounds the concurrent deletions; the client's rate limiter sets the pace.
	Workers int
	// Log receives the job's own lines, each with its jobId and round. Nil discards them.
	Log *slog.Logger
	// Recovered turns a panic recovered while deleting one conversation into
	// that conversation's error (a worker goroutine's panic would end the process).
	Recovered func(p any) error
	// Count, if set, is told of each ZEGO call's outcome in the job: every
	// conversation tried, and a listing that failed; plus one Timeout for a
	// run that ends without progress for lack of time or at the round cap.
	Count func(o outcome.Outcome, resp *zim.Response)
}

// Params is one run of a job.
type Params struct {
	// Request is an AllConversations request; its Continuation, if any, is
	// the job's state from the rounds before.
	Request request.Request
	// Budget, if positive, ends the run's dispatching this long after it
	// starts, as soon as it has made progress: an API invocation hands the
	// job to the queue early instead of holding its instance to the deadline.
	Budget time.Duration
	// JobID names a new job (a Request without Continuation); empty: Run
	// makes one (NewID).
	JobID string
	// StartedAt is a new job's start; zero: now.
	StartedAt time.Time
}

// Result is how a run ended.
type Result struct {
	Outcome outcome.Outcome
	// Resp is ZEGO's answer when a listing failed, else nil.
	Resp *zim.Response
	Err  error
	// Summary is the answer's body.
	Summary *Summary
	// Next is the continuation to send when the run ended with work left
	// after progress, below the round cap; nil otherwise.
	Next *request.Continuation
	// StartedAt is when the job's first round started.
	StartedAt time.Time
}

// Summary is the answer to an AllConversations request.
type Summary struct {
	FromUserID string          `json:"FromUserId"`
	Outcome    outcome.Outcome `json:"Outcome"`
	JobID      string          `json:"JobId"`
	Round      int             `json:"Round"`
	// Complete is true when every conversation is deleted. False with
	// Outcome "timeout": send the same request again to continue (what is
	// deleted no longer shows in the list); with "accepted", the queue does.
	Complete bool `json:"Complete"`
	// Deleted and AlreadyDeleted are the job's totals over all its rounds so far.
	Deleted        int `json:"Deleted"`
	AlreadyDeleted int `json:"AlreadyDeleted"`
	// Failed counts this round's failed conversations; FailedConvIds names at
	// most maxFailedConvIDs of them.
	Failed        int      `json:"Failed"`
	FailedConvIDs []string `json:"FailedConvIds,omitempty"`
	// Left counts the conversations newer than the job's cutoff that a
	// complete job left (see the package documentation); absent when none.
	Left int `json:"Left,omitempty"`
}

// errUnfinished ends a run whose time was up with conversations left.
var errUnfinished = errors.New("the run's time was up before every conversation was tried: the job is not finished")

// ErrRoundCap ends a job that reached request.MaxRounds with work left.
var ErrRoundCap = fmt.Errorf("the job reached its cap of %d rounds with conversations left; send the request again to start a new job", request.MaxRounds)

// jobError says how a run ended when some conversations could not be deleted.
type jobError struct {
	sum  *Summary
	last error
}

func (e *jobError) Error() string {
	if e.sum.Failed == 0 {
		return fmt.Sprintf("listing FromUserId's conversations failed after %d were deleted and %d already deleted: %s",
			e.sum.Deleted, e.sum.AlreadyDeleted, outcome.Describe(e.last))
	}
	more := ""
	if n := e.sum.Failed - len(e.sum.FailedConvIDs); n > 0 {
		more = fmt.Sprintf(" and %d more", n)
	}
	return fmt.Sprintf("%d of FromUserId's conversations could not be deleted (ConvIds %s%s; last error: %s); deleted %d, already deleted %d",
		e.sum.Failed, strings.Join(e.sum.FailedConvIDs, ", "), more, outcome.Describe(e.last), e.sum.Deleted, e.sum.AlreadyDeleted)
}

type convKey struct {
	id string
	t  zim.ConvType
}

// run is the state of one run, shared by its workers.
type run struct {
	j    *Job
	log  *slog.Logger
	user string
	prev request.Continuation // the job's state before this run (Round is this run's)

	// failLogs counts the failed conversations logged so far (capped at info).
	failLogs atomic.Int32

	// stopDispatch ends the dispatching of new deletions (not the calls in flight).
	stopDispatch context.CancelFunc

	mu          sync.Mutex
	deleted     int
	already     int
	failed      int
	failedCalls int // failures that cost a call to ZEGO
	failedIDs   []string
	listFails   int
	lastErr     error
	lastOutcome outcome.Outcome
	cut         bool  // something was left untried for lack of time
	systemic    error // a failure every further call would repeat
	gaveUp      bool  // maxFailuresWithoutProgress reached
	overBudget  bool  // Params.Budget passed
	listErr     error
	listResp    *zim.Response
	cutoff      int64 // the job's bound in UpdateTime, Unix ms (0 until known)
	left        int   // newer conversations the final listing showed, untouched
}

func (r *run) progress() bool { return r.deleted+r.already > 0 }

// Run deletes user's conversations until none is left that it has not tried,
// or the run must stop (see the package documentation). It lists what ZEGO
// shows and deletes it through the same client (and so the same rate limiter)
// as single deletions. A conversation that fails does not stop the others.
func (j *Job) Run(ctx context.Context, p Params) Result {
	start := time.Now()
	r := &run{j: j, user: p.Request.FromUserID}
	if c := p.Request.Continuation; c != nil {
		r.prev = *c
	} else {
		id, started := p.JobID, p.StartedAt
		if id == "" {
			id = NewID()
		}
		if started.IsZero() {
			started = start
		}
		r.prev = request.Continuation{JobID: id, Round: 1, StartedAt: started.UTC()}
	}
	r.cutoff = r.prev.Cutoff
	log := j.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r.log = log.With(slog.String("jobId", r.prev.JobID), slog.Int("round", r.prev.Round))
	ctx = logctx.With(ctx, slog.String("jobId", r.prev.JobID)) // the client's lines too

	// calls bounds the calls in flight; dispatch, inside it, the start of new ones.
	var calls, dispatch context.Context
	var cancelCalls, stopDispatch context.CancelFunc
	if deadline, ok := ctx.Deadline(); ok {
		reserve := min(max(time.Duration(float64(deadline.Sub(start))*reserveShare), minReserve), maxReserve)
		calls, cancelCalls = context.WithDeadline(ctx, deadline.Add(-reserve/2))
		dispatch, stopDispatch = context.WithDeadline(calls, deadline.Add(-reserve))
	} else {
		calls, cancelCalls = context.WithCancel(ctx)
		dispatch, stopDispatch = context.WithCancel(calls)
	}
	defer cancelCalls()
	defer stopDispatch()
	r.stopDispatch = stopDispatch
	if p.Budget > 0 {
		t := time.AfterFunc(p.Budget, func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.overBudget = true
			if r.progress() {
				r.stopDispatch()
			}
		})
		defer t.Stop()
	}

	// One page at a time: a page's untried conversations are deleted, then
	// the listing starts again from the top (what is deleted no longer shows,
	// so older conversations move up); a page with nothing untried (all
	// failed) moves the cursor on. A run that deletes fewer than a page lists
	// once. Conversations newer than the cutoff are deleted only beside the
	// job's own (see "The bound on new conversations").
	tried := map[convKey]bool{}
	var next int64
	passNewer := 0 // newer conversations this listing pass showed and left
	for pages := 0; !r.stopped(); {
		if dispatch.Err() != nil {
			r.cut = true
			break
		}
		page, err := j.ZIM.QueryConversationList(dispatch, r.user, listPageSize, next)
		if err != nil {
			if dispatch.Err() != nil || errors.Is(err, zim.ErrThrottled) {
				r.cut = true
			} else {
				var resp *zim.Response
				if page != nil {
					resp = &page.Response
				}
				if r.listFailed(resp, err) && pause(dispatch, listRetryPause) {
					continue
				}
			}
			break
		}
		r.listed()
		if r.cutoff == 0 {
			r.cutoff = j.firstCutoff(dispatch, r, page)
		}
		if next == 0 {
			passNewer = 0
		}
		var todo []zim.Conversation
		own := false
		for _, c := range page.List {
			if tried[convKey{c.ConvID, c.ConvType}] {
				continue
			}
			own = own || c.UpdateTime <= r.cutoff
			todo = append(todo, c)
		}
		// More than the visible 1000: the hidden ones are older than every
		// visible one, so they may be the job's own.
		hidden := page.TotalCount > maxVisibleConversations
		if len(todo) > 0 && (own || hidden) {
			for _, c := range todo {
				tried[convKey{c.ConvID, c.ConvType}] = true
			}
			j.deleteEach(r, calls, dispatch, todo)
			next, pages = 0, 0
			continue
		}
		passNewer += len(todo)
		// Past the latest 1000, ZEGO shows nothing; the bound guards against
		// a cursor that never ends.
		pages++
		if page.Next == 0 || page.Next == next || len(page.List) == 0 || pages >= maxVisibleConversations/listPageSize+1 {
			r.mu.Lock()
			r.left = passNewer
			r.mu.Unlock()
			break
		}
		next = page.Next
	}
	return r.result()
}

// firstCutoff is the job's cutoff, set from its first listing: the later of
// its start and the newest UpdateTime ZEGO shows now. The list is in
// ascending UpdateTime, so the newest is on the last visible page: it is
// listed too (one more call for a user with more than a page). If that
// listing fails, the first page's newest serves.
func (j *Job) firstCutoff(ctx context.Context, r *run, first *zim.ConversationList) int64 {
	cutoff := r.prev.StartedAt.UnixMilli()
	page, next := first, int64(0)
	for range maxVisibleConversations / listPageSize {
		for _, c := range page.List {
			cutoff = max(cutoff, c.UpdateTime)
		}
		if page.Next == 0 || page.Next == next || len(page.List) == 0 {
			break
		}
		next = page.Next
		var err error
		if page, err = j.ZIM.QueryConversationList(ctx, r.user, listPageSize, next); err != nil {
			r.log.Warn("listing the job's newest conversations failed; the cutoff is the first page's newest", "error", outcome.Describe(err))
			break
		}
	}
	return cutoff
}

// stopped reports whether the run must end for another reason than time.
func (r *run) stopped() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.systemic != nil || r.gaveUp
}

func (r *run) count(o outcome.Outcome, resp *zim.Response) {
	if r.j.Count != nil {
		r.j.Count(o, resp)
	}
}

// listFailed records a listing that failed for another reason than time, and
// reports whether the run lists again.
func (r *run) listFailed(resp *zim.Response, err error) (again bool) {
	o := outcome.Classify(context.Background(), err)
	r.count(o, resp)
	r.mu.Lock()
	defer r.mu.Unlock()
	if o == outcome.ConfigurationError {
		r.systemic = err
	}
	r.listErr, r.listResp = err, resp
	r.listFails++
	return r.systemic == nil && r.listFails < maxListFailures
}

// listed records a listing that succeeded: a failed one before it is over.
func (r *run) listed() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.listErr, r.listResp = nil, nil
}

// pause waits d, or until ctx is done; it reports whether d passed.
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// done records one conversation's outcome; ctx is the context its call ran under.
func (r *run) done(ctx context.Context, c zim.Conversation, o outcome.Outcome, resp *zim.Response, err error) {
	if o != outcome.Timeout && !outOfTime(ctx, err) && !o.Success() {
		if o == outcome.InvalidRequest {
			// ZEGO refused a parameter it listed itself (660000002), or the
			// listing holds a ConvType the API does not take: the request was
			// valid, the job failed in part upstream.
			o = outcome.UpstreamError
		}
		// At info for the first maxFailedConvIDs of a run (an operator sees
		// which and why without debug logs), at debug after that.
		level := slog.LevelInfo
		if r.failLogs.Add(1) > maxFailedConvIDs {
			level = slog.LevelDebug
		}
		r.log.Log(ctx, level, "conversation not deleted", "fromUserId", r.user, "convId", c.ConvID, "convType", int(c.ConvType),
			"outcome", o, "error", outcome.Describe(err))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case o == outcome.Deleted:
		r.deleted++
	case o == outcome.AlreadyDeleted:
		r.already++
	case o == outcome.Timeout || outOfTime(ctx, err):
		// Not a failure of the conversation: a later round tries it again.
		r.cut = true
		return
	case o == outcome.ConfigurationError:
		if r.systemic == nil {
			r.systemic = err
		}
		r.stopDispatch()
		r.fail(c, o, err)
	default:
		r.fail(c, o, err)
		var local *zim.ValidationError
		if !errors.As(err, &local) { // refused before sending, it cost no call
			r.failedCalls++
		}
		if !r.progress() && r.failedCalls >= maxFailuresWithoutProgress {
			r.gaveUp = true
			r.stopDispatch()
		}
	}
	if r.overBudget && r.progress() {
		r.stopDispatch()
	}
	if r.j.Count != nil {
		r.j.Count(o, resp)
	}
}

func (r *run) fail(c zim.Conversation, o outcome.Outcome, err error) {
	r.failed++
	if len(r.failedIDs) < maxFailedConvIDs {
		r.failedIDs = append(r.failedIDs, c.ConvID)
	}
	r.lastErr, r.lastOutcome = err, o
}

// result ends the run: complete, failed, or with the next round's continuation.
func (r *run) result() Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	sum := &Summary{
		FromUserID: r.user, JobID: r.prev.JobID, Round: r.prev.Round,
		Deleted: r.prev.Deleted + r.deleted, AlreadyDeleted: r.prev.AlreadyDeleted + r.already,
		Failed: r.failed, FailedConvIDs: r.failedIDs,
	}
	res := Result{Summary: sum, Resp: r.listResp, StartedAt: r.prev.StartedAt}
	end := func(o outcome.Outcome, err error) Result {
		sum.Outcome, res.Outcome, res.Err = o, o, err
		return res
	}

	// What is left, and why: a stuck run's failures, then the deadline (the
	// job is not finished: send it again), then the failures, then a failed
	// listing.
	o, err := outcome.Timeout, errUnfinished
	switch {
	case r.systemic != nil:
		return end(outcome.ConfigurationError, r.systemic)
	case r.gaveUp:
		o, err = r.lastOutcome, &jobError{sum: sum, last: r.lastErr}
	case r.cut:
	case r.failed > 0:
		o, err = r.lastOutcome, &jobError{sum: sum, last: r.lastErr}
	case r.listErr != nil:
		o, err = outcome.Classify(context.Background(), r.listErr), r.listErr
		if r.progress() {
			err = &jobError{sum: sum, last: r.listErr}
		}
	default:
		sum.Complete, sum.Left = true, r.left
		r.log.Info("job complete", "fromUserId", r.user, "rounds", r.prev.Round, "deleted", sum.Deleted,
			"alreadyDeleted", sum.AlreadyDeleted, "left", r.left, "cutoff", r.cutoff, "startedAt", r.prev.StartedAt.Format(time.RFC3339Nano),
			"durationMs", outcome.Millis(time.Since(r.prev.StartedAt)))
		return end(outcome.Deleted, nil)
	}
	switch {
	case !r.progress():
		if o == outcome.Timeout {
			r.count(outcome.Timeout, nil) // no conversation's outcome says so
		}
		return end(o, err)
	case r.prev.Round >= request.MaxRounds:
		r.log.Error("job stopped at its round cap", "fromUserId", r.user, "maxRounds", request.MaxRounds,
			"deleted", sum.Deleted, "alreadyDeleted", sum.AlreadyDeleted, "startedAt", r.prev.StartedAt.Format(time.RFC3339Nano))
		r.count(outcome.Timeout, nil)
		return end(outcome.Timeout, ErrRoundCap)
	}
	res.Next = &request.Continuation{JobID: r.prev.JobID, Round: r.prev.Round + 1, Deleted: sum.Deleted,
		AlreadyDeleted: sum.AlreadyDeleted, StartedAt: r.prev.StartedAt, Cutoff: r.cutoff}
	return end(o, err)
}

// NewID is a new job id: 16 random bytes in hex.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// outOfTime reports whether a call ended for lack of time: its context is
// done, or the rate limiter has no slot left before the deadline
// (zim.ErrThrottled is the client's own limiter, not ZEGO's answer).
func outOfTime(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, zim.ErrThrottled)
}

// deleteEach deletes convs with a few workers; the client's limiter sets the
// pace. No deletion starts once dispatch is done; calls in flight finish
// under calls.
func (j *Job) deleteEach(r *run, calls, dispatch context.Context, convs []zim.Conversation) {
	work := make(chan zim.Conversation)
	var wg sync.WaitGroup
	for range min(max(j.Workers, 1), len(convs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range work {
				if dispatch.Err() != nil {
					r.done(dispatch, c, outcome.Timeout, nil, dispatch.Err())
					continue
				}
				o, resp, err := j.deleteOne(calls, zim.DeleteConvRequest{FromUserID: r.user, ConvID: c.ConvID, ConvType: c.ConvType})
				r.done(calls, c, o, resp, err)
			}
		}()
	}
feed:
	for _, c := range convs {
		select {
		case work <- c:
		case <-dispatch.Done():
			r.mu.Lock()
			r.cut = true
			r.mu.Unlock()
			break feed
		}
	}
	close(work)
	wg.Wait()
}

// deleteOne deletes one conversation. It runs on a worker goroutine, where a
// panic would end the process: it is recovered here.
func (j *Job) deleteOne(ctx context.Context, req zim.DeleteConvRequest) (o outcome.Outcome, resp *zim.Response, err error) {
	defer func() {
		if p := recover(); p != nil {
			o, resp, err = outcome.InternalError, nil, errors.New("internal error while deleting a conversation")
			if j.Recovered != nil {
				err = j.Recovered(p)
			}
		}
	}()
	resp, err = j.ZIM.DeleteConversation(ctx, req)
	return outcome.Classify(ctx, err), resp, err
}
