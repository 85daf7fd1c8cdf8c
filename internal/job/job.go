// Package job runs an AllConversations request: it deletes every conversation
// of one user, listing what ZEGO shows and deleting it with a few workers
// through the caller's client (and so its rate limiter), until nothing is left
// that it has not tried.
package job

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/zim-deleteconv/zim-deleteconv/internal/outcome"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
)

// listPageSize is the QueryConversationList page the job asks for (ZEGO's maximum).
const listPageSize = zim.MaxConversationListLimit

// maxVisibleConversations is how many of a user's latest conversations
// QueryConversationList shows. Once those are deleted, older ones become
// visible, so the job lists again until nothing new appears.
const maxVisibleConversations = 1000

// ZIM is what a job needs of the ZIM server API (*zim.Client).
type ZIM interface {
	DeleteConversation(ctx context.Context, req zim.DeleteConvRequest) (*zim.Response, error)
	QueryConversationList(ctx context.Context, fromUserID string, limit int, next int64) (*zim.ConversationList, error)
}

// Job is what one AllConversations request runs with: the client, how many
// deletions are in flight, and the trigger's hooks for what goes wrong.
type Job struct {
	ZIM ZIM
	// Workers bounds the concurrent deletions; the client's rate limiter sets the pace.
	Workers int
	// Recovered turns a panic recovered while deleting one conversation into
	// that conversation's error (a worker goroutine's panic would end the process).
	Recovered func(p any) error
	// NotDeleted, if set, is told of each conversation that failed or was cut short.
	NotDeleted func(user string, c zim.Conversation, o outcome.Outcome, err error)
}

// Result is how a job ended.
type Result struct {
	Outcome outcome.Outcome
	// Resp is ZEGO's answer when the first listing failed, else nil.
	Resp *zim.Response
	Err  error
	// Summary is the answer's body; nil when the first listing failed and nothing was tried.
	Summary *Summary
}

// Summary is the answer to an AllConversations request.
type Summary struct {
	FromUserID string          `json:"FromUserId"`
	Outcome    outcome.Outcome `json:"Outcome"`
	// Complete is false when the deadline stopped the job: send the same
	// request again to finish it (what is deleted no longer shows in the list).
	Complete       bool     `json:"Complete"`
	Deleted        int      `json:"Deleted"`
	AlreadyDeleted int      `json:"AlreadyDeleted"`
	Failed         int      `json:"Failed"`
	FailedConvIDs  []string `json:"FailedConvIds,omitempty"`
}

// jobError says how a job ended when some conversations could not be deleted.
type jobError struct {
	sum  *Summary
	last error
}

func (e *jobError) Error() string {
	if e.sum.Failed == 0 {
		return fmt.Sprintf("listing FromUserId's conversations failed after %d were deleted and %d already deleted: %s",
			e.sum.Deleted, e.sum.AlreadyDeleted, outcome.Describe(e.last))
	}
	ids := e.sum.FailedConvIDs
	more := ""
	if len(ids) > 10 {
		ids, more = ids[:10], fmt.Sprintf(" and %d more", len(e.sum.FailedConvIDs)-10)
	}
	return fmt.Sprintf("%d of FromUserId's conversations could not be deleted (ConvIds %s%s; last error: %s); deleted %d, already deleted %d",
		e.sum.Failed, strings.Join(ids, ", "), more, outcome.Describe(e.last), e.sum.Deleted, e.sum.AlreadyDeleted)
}

type convKey struct {
	id string
	t  zim.ConvType
}

// Run deletes every conversation of user: it lists what ZEGO shows, deletes
// it through the same client (and so the same rate limiter) as single
// deletions, and lists again until nothing is left that it has not tried.
// A conversation that fails does not stop the others.
func (j *Job) Run(ctx context.Context, user string) Result {
	sum := &Summary{FromUserID: user}
	tried := map[convKey]bool{}
	var lastErr error
	var lastOutcome outcome.Outcome
	for {
		convs, resp, err := j.listVisible(ctx, user)
		if err != nil {
			o := outcome.Classify(ctx, err)
			switch {
			case outOfTime(ctx, err):
				return jobResult(sum, outcome.Timeout, err)
			case len(tried) == 0:
				return Result{Outcome: o, Resp: resp, Err: err}
			}
			r := jobResult(sum, o, &jobError{sum: sum, last: err})
			sum.Complete = false
			return r
		}
		var todo []zim.Conversation
		for _, c := range convs {
			if k := (convKey{c.ConvID, c.ConvType}); !tried[k] {
				tried[k] = true
				todo = append(todo, c)
			}
		}
		if len(todo) == 0 {
			break
		}
		stopped := false
		for _, r := range j.deleteEach(ctx, user, todo) {
			switch {
			case r.outcome == outcome.Deleted:
				sum.Deleted++
			case r.outcome == outcome.AlreadyDeleted:
				sum.AlreadyDeleted++
			case r.outcome == outcome.Timeout || outOfTime(ctx, r.err):
				// Not a failure of the conversation: the next delivery tries it again.
				stopped = true
			default:
				sum.Failed++
				sum.FailedConvIDs = append(sum.FailedConvIDs, r.convID)
				lastErr, lastOutcome = r.err, r.outcome
			}
		}
		if outOfTime(ctx, nil) || stopped {
			return jobResult(sum, outcome.Timeout, context.DeadlineExceeded)
		}
	}
	if sum.Failed > 0 {
		return jobResult(sum, lastOutcome, &jobError{sum: sum, last: lastErr})
	}
	return jobResult(sum, outcome.Deleted, nil)
}

// jobResult ends a job as o; only a deadline leaves it incomplete.
func jobResult(sum *Summary, o outcome.Outcome, err error) Result {
	sum.Outcome = o
	sum.Complete = o != outcome.Timeout
	return Result{Outcome: o, Err: err, Summary: sum}
}

// listVisible pages through QueryConversationList: at most the user's latest
// 1000 conversations.
func (j *Job) listVisible(ctx context.Context, user string) ([]zim.Conversation, *zim.Response, error) {
	var all []zim.Conversation
	var next int64
	for len(all) < maxVisibleConversations {
		page, err := j.ZIM.QueryConversationList(ctx, user, listPageSize, next)
		if err != nil {
			var resp *zim.Response
			if page != nil {
				resp = &page.Response
			}
			return nil, resp, err
		}
		all = append(all, page.List...)
		if page.Next == 0 || page.Next == next || len(page.List) == 0 {
			break
		}
		next = page.Next
	}
	return all, nil, nil
}

// outOfTime reports whether the job must stop for the deadline: it passed, or
// the rate limiter has no slot left before it (zim.ErrThrottled is the
// client's own limiter, not ZEGO's answer).
func outOfTime(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, zim.ErrThrottled)
}

type convResult struct {
	convID  string
	outcome outcome.Outcome
	err     error
}

// deleteEach deletes convs with a few workers; the client's limiter sets the pace.
func (j *Job) deleteEach(ctx context.Context, user string, convs []zim.Conversation) []convResult {
	out := make([]convResult, len(convs))
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range min(j.Workers, len(convs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				c := convs[i]
				o, err := j.deleteOne(ctx, zim.DeleteConvRequest{FromUserID: user, ConvID: c.ConvID, ConvType: c.ConvType})
				out[i] = convResult{convID: c.ConvID, outcome: o, err: err}
				if err != nil && !o.Success() && j.NotDeleted != nil {
					j.NotDeleted(user, c, o, err)
				}
			}
		}()
	}
	for i := range convs {
		if ctx.Err() != nil {
			out[i] = convResult{convID: convs[i].ConvID, outcome: outcome.Timeout, err: ctx.Err()}
			continue
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return out
}

// deleteOne deletes one conversation. It runs on a worker goroutine, where a
// panic would end the process: it is recovered here.
func (j *Job) deleteOne(ctx context.Context, req zim.DeleteConvRequest) (o outcome.Outcome, err error) {
	defer func() {
		if p := recover(); p != nil {
			o, err = outcome.InternalError, errors.New("internal error while deleting a conversation")
			if j.Recovered != nil {
				err = j.Recovered(p)
			}
		}
	}()
	_, err = j.ZIM.DeleteConversation(ctx, req)
	return outcome.Classify(ctx, err), err
}
