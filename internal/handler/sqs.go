package handler

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/zim-deleteconv/zim-deleteconv/internal/outcome"
	"github.com/zim-deleteconv/zim-deleteconv/internal/request"
)

// sqs processes a batch: records concurrently (the zim client's rate limiter
// sets the pace), FIFO message groups in order, and every record that did not
// end deleted or already deleted named in batchItemFailures, so the queue
// retries it and its redrive policy finally moves it to the dead-letter queue.
//
// hard is the invocation's own context: records still unfinished when work's
// deadline passes are reported failed without waiting for them.
func (inv *invocation) sqs(hard, work context.Context, records []events.SQSMessage) ([]byte, error) {
	failed := inv.processBatch(hard, work, records)
	resp := events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}
	for i, rec := range records {
		if failed[i] {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: rec.MessageId})
		}
	}
	return json.Marshal(resp)
}

// fifoQueue reports whether rec came from a FIFO queue. Only those keep
// order: since 2025 a standard queue may carry MessageGroupId too (SQS fair
// queues), where the group only shares out capacity and skipping a record
// would spend its receive count for nothing.
func fifoQueue(rec events.SQSMessage) bool { return strings.HasSuffix(rec.EventSourceARN, ".fifo") }

// errGroupFailed marks a FIFO record not attempted because an earlier record
// of its message group failed.
var errGroupFailed = errors.New("not attempted: an earlier message of the same FIFO message group failed in this batch (order is kept)")

// errUnfinished marks a record still in progress at the deadline.
var errUnfinished = errors.New("not finished before the function's deadline; the queue will deliver it again")

// processBatch returns, per record, whether it must be reported failed.
func (inv *invocation) processBatch(hard, work context.Context, records []events.SQSMessage) []bool {
	n := len(records)
	var mu sync.Mutex
	done := make([]bool, n)
	failed := make([]bool, n)
	closed := false
	finish := func(i int, req request.Request, r result) {
		mu.Lock()
		defer mu.Unlock()
		if closed {
			return // already reported failed at the deadline
		}
		done[i], failed[i] = true, !r.outcome.Success()
		inv.record("sqs", records[i].MessageId, req, r)
	}

	// Standard queues (fair queues included): each record is its own group.
	// FIFO: records of one MessageGroupId run in order, one at a time.
	var groups [][]int
	byGroup := map[string]int{}
	for i, rec := range records {
		g, ok := rec.Attributes["MessageGroupId"]
		if !ok || !fifoQueue(rec) {
			groups = append(groups, []int{i})
			continue
		}
		k, ok := byGroup[g]
		if !ok {
			k = len(groups)
			byGroup[g] = k
			groups = append(groups, nil)
		}
		groups[k] = append(groups[k], i)
	}

	sem := make(chan struct{}, inv.h.sqsWorkers)
	var wg sync.WaitGroup
	for _, g := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			groupFailed := false
			for _, i := range g {
				req, err := request.Parse([]byte(records[i].Body))
				switch {
				case err != nil:
					finish(i, req, result{outcome: outcome.InvalidRequest, err: err})
					groupFailed = true
					continue
				case groupFailed:
					finish(i, req, result{outcome: outcome.Skipped, err: errGroupFailed})
					continue
				}
				select {
				case sem <- struct{}{}:
				case <-work.Done():
					finish(i, req, result{outcome: outcome.Timeout, err: errUnfinished})
					groupFailed = true
					continue
				}
				r := inv.processFrom(work, req, &records[i])
				<-sem
				finish(i, req, r)
				groupFailed = groupFailed || !r.outcome.Success()
			}
		}()
	}

	all := make(chan struct{})
	go func() { wg.Wait(); close(all) }()
	select {
	case <-all:
	case <-work.Done():
		// Calls in flight share work's deadline and return at once; give them
		// half of what is left before Lambda's deadline, then answer anyway.
		grace := time.Second
		if d, ok := hard.Deadline(); ok {
			grace = time.Until(d) / 2
		}
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-all:
		case <-t.C:
		}
	}
	mu.Lock()
	defer mu.Unlock()
	closed = true
	for i := range records {
		if !done[i] {
			failed[i] = true
			inv.record("sqs", records[i].MessageId, request.Request{}, result{outcome: outcome.Timeout, err: errUnfinished})
		}
	}
	return failed
}
