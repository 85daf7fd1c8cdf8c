package handler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/zim-deleteconv/zim-deleteconv/internal/job"
	"github.com/zim-deleteconv/zim-deleteconv/internal/outcome"
	"github.com/zim-deleteconv/zim-deleteconv/internal/redelivery"
	"github.com/zim-deleteconv/zim-deleteconv/internal/request"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim"
)

// Redelivery is what the SQS trigger needs of SQS itself: hide a failed
// record for its backoff, and move a record that can never succeed to the
// dead-letter queue. *redelivery.SQS is the real one.
type Redelivery interface {
	ChangeVisibility(ctx context.Context, queueURL string, changes []redelivery.Visibility) error
	SendDeadLetter(ctx context.Context, m redelivery.DeadLetter) error
}

var _ Redelivery = (*redelivery.SQS)(nil)

// redeliverySettings are WithRedelivery's.
type redeliverySettings struct {
	sqs           Redelivery
	backoff       redelivery.Backoff
	deadLetterURL string
}

// WithRedelivery makes failed SQS records come back later and later: each
// record reported failed for a transient reason is hidden for b.Delay of its
// ApproximateReceiveCount. With deadLetterURL (ZEGO_DEAD_LETTER_QUEUE_URL), a
// record that can never succeed (invalid, or refused by ZEGO as invalid) is
// sent there at once with its reason and not reported failed.
func WithRedelivery(r Redelivery, b redelivery.Backoff, deadLetterURL string) Option {
	return func(h *Handler) { h.redelivery = redeliverySettings{sqs: r, backoff: b, deadLetterURL: deadLetterURL} }
}

// probeRecords is K of the early stop. Until a record of the batch has
// succeeded, a record starts only while the records in flight plus the
// current run of records failing the same way (failedSameWay) are fewer than
// K; K records in a row (in the order they finish) failing the same way stop
// the batch, and the records not yet started are reported failed without
// calling ZEGO. So when ZEGO is down, or the secret wrong, a batch makes the
// calls of K records, not of all of them.
//
// An instance remembers a batch that stopped early (sqsMemory): its next
// batch starts with the run of K−1 failures of that kind already counted, so
// it probes with one record and stops if that one fails the same way again,
// until a record succeeds.
const probeRecords = 3

// sqsMemory is the failure that stopped this instance's last batch early,
// until a record succeeds.
type sqsMemory struct {
	mu  sync.Mutex
	key string
}

func (m *sqsMemory) get() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.key
}

func (m *sqsMemory) set(key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.key = key
}

// sqs processes a batch: records concurrently (the zim client's rate limiter
// sets the pace), FIFO message groups in order, and every record that did not
// end deleted or already deleted (or, for a job, continued) named in
// batchItemFailures, so the queue delivers it again. Then each record
// reported failed for a transient reason is hidden for its backoff.
//
// hard is the invocation's own context: records still unfinished when work's
// deadline passes are reported failed without waiting for them.
func (inv *invocation) sqs(hard, work context.Context, records []events.SQSMessage) ([]byte, error) {
	b := inv.newBatch(records)
	b.run(hard, work)
	resp := events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}
	for i, rec := range records {
		if b.failed[i] {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: rec.MessageId})
		}
	}
	inv.backOff(hard, records, b.failed, b.outcomes)
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

// batch is the state of one SQS batch, shared by its workers.
type batch struct {
	inv     *invocation
	records []events.SQSMessage
	sem     chan struct{} // records in flight
	stopped chan struct{} // closed when the batch stops early

	mu       sync.Mutex
	done     []bool
	failed   []bool
	outcomes []outcome.Outcome
	closed   bool // the deadline passed: late results are logged, not reported
	// progressed is closed at the first call of the invocation that
	// succeeded (a job's conversation included): ZEGO answers, so the batch
	// need not probe. It takes no lock: it may be closed while mu is held.
	progressed     chan struct{}
	progressedOnce sync.Once

	// The early stop: open once a record succeeded; probing counts the
	// records in flight before that; streak is the run of records that
	// failed the same way (streakKey), in the order they finished.
	open      bool
	probing   int
	streak    int
	streakKey string
	stopErr   error
	changed   chan struct{} // closed and replaced when any of these changes
}

func (inv *invocation) newBatch(records []events.SQSMessage) *batch {
	n := len(records)
	b := &batch{
		inv: inv, records: records,
		sem: make(chan struct{}, inv.h.sqsWorkers), stopped: make(chan struct{}), changed: make(chan struct{}),
		progressed: make(chan struct{}),
		done:       make([]bool, n), failed: make([]bool, n), outcomes: make([]outcome.Outcome, n),
	}
	// A job runs for most of the invocation: its first conversation deleted,
	// not its end, shows that ZEGO answers.
	inv.onSuccess = func() { b.progressedOnce.Do(func() { close(b.progressed) }) }
	if key := inv.h.sqsMemory.get(); key != "" {
		b.streak, b.streakKey = probeRecords-1, key
	}
	return b
}

// finish records how record i ended; failed says whether it is reported
// failed (an invalid record moved to the dead-letter queue is not).
func (b *batch) finish(i int, req request.Request, r result, failed bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		// Already reported failed, and counted, as the timeout the queue was
		// told; its real outcome goes to the log only, so nothing is counted
		// twice. (A job's conversations are counted one by one as they end,
		// late or not: see invocation.count.)
		attrs := []any{"requestId", b.inv.requestID, "messageId", b.records[i].MessageId, "outcome", r.outcome, "reportedAs", outcome.Timeout}
		if r.err != nil {
			attrs = append(attrs, "error", outcome.Describe(r.err))
		}
		b.inv.h.log.Info("late result of a record reported failed at the deadline", attrs...)
		return
	}
	b.done[i], b.failed[i], b.outcomes[i] = true, failed, r.outcome
	b.inv.record("sqs", b.records[i].MessageId, req, r)
}

// notify wakes the records waiting in admit; b.mu is held.
func (b *batch) notify() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// admit waits until one more record may start: a worker slot, and before
// the first success a probe (see probeRecords). It reports whether the
// record probes, or why it ends without being tried.
func (b *batch) admit(work context.Context) (probe bool, why error) {
	select {
	case b.sem <- struct{}{}:
	case <-work.Done():
		return false, errUnfinished
	case <-b.stopped:
		return false, b.stop()
	}
	for {
		b.mu.Lock()
		switch {
		case b.stopErr != nil:
			err := b.stopErr
			b.mu.Unlock()
			<-b.sem
			return false, err
		case b.open || isClosed(b.progressed):
			b.mu.Unlock()
			return false, nil
		case b.probing+b.streak < probeRecords:
			b.probing++
			b.mu.Unlock()
			return true, nil
		}
		wait := b.changed
		b.mu.Unlock()
		select {
		case <-wait:
		case <-b.progressed:
		case <-work.Done():
			<-b.sem
			return false, errUnfinished
		}
	}
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// attempted counts a record that was tried (ZEGO called, or the setup
// refused it) toward the early stop, and frees its slots.
func (b *batch) attempted(r result, probe bool) {
	defer func() { <-b.sem }()
	b.mu.Lock()
	defer b.mu.Unlock()
	defer b.notify()
	if probe {
		b.probing--
	}
	if r.outcome.Success() {
		b.streak, b.streakKey, b.open = 0, "", true
		return
	}
	key := failedSameWay(r.outcome, r.err)
	switch {
	case key == "":
		b.streak, b.streakKey = 0, ""
		return
	case key == b.streakKey:
		b.streak++
	default:
		b.streak, b.streakKey = 1, key
	}
	if b.streak >= probeRecords && b.stopErr == nil {
		b.stopErr = fmt.Errorf("not attempted: the batch stopped early, records failing the same way (%s); the queue will deliver it again after its backoff", key)
		close(b.stopped)
	}
}

// stop returns the error of a batch that stopped early, or nil.
func (b *batch) stop() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stopErr
}

// failedSameWay is the key two failures share when they come from the same
// systemic cause, so that further calls would fail the same way: the
// configuration or the secret (configuration error), Secrets Manager or the
// network (unavailable), ZEGO's rate limit (throttled by ZEGO's answer; the
// client's own limiter running out of time calls nobody), or ZEGO failing
// (upstream error with the same HTTP status of a non-JSON answer, or the same
// temporary ZEGO code). "" for a failure of one record only (an unexpected
// code, a user that does not exist, an invalid request, a timeout).
func failedSameWay(o outcome.Outcome, err error) string {
	switch o {
	case outcome.ConfigurationError, outcome.Unavailable:
		return string(o)
	case outcome.Throttled:
		if errors.Is(err, zim.ErrRateLimited) {
			return string(o)
		}
	case outcome.UpstreamError:
		var re *zim.ResponseError
		var ae *zim.APIError
		switch {
		case errors.As(err, &re):
			return fmt.Sprintf("%s: HTTP %d", o, re.HTTPStatus)
		case errors.As(err, &ae) && errors.Is(err, zim.ErrTemporary):
			return fmt.Sprintf("%s: ZEGO code %d", o, ae.Code)
		}
	}
	return ""
}

// run processes the batch and fills in failed and outcomes.
func (b *batch) run(hard, work context.Context) {
	inv, records := b.inv, b.records
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

	var wg sync.WaitGroup
	for _, g := range groups {
		wg.Go(func() {
			groupFailed := false
			for _, i := range g {
				rec := &records[i]
				req, err := request.Parse([]byte(rec.Body))
				switch {
				case err != nil:
					r := result{outcome: outcome.InvalidRequest, err: err}
					moved := inv.deadLetter(work, rec, r)
					b.finish(i, req, r, !moved)
					groupFailed = groupFailed || !moved
					continue
				case groupFailed:
					b.finish(i, req, result{outcome: outcome.Skipped, err: errGroupFailed}, true)
					continue
				}
				probe, why := b.admit(work)
				if why != nil {
					o := outcome.Skipped
					if why == errUnfinished {
						o = outcome.Timeout
					}
					b.finish(i, req, result{outcome: o, err: why}, true)
					groupFailed = true
					continue
				}
				r := inv.processFrom(work, req, rec)
				b.attempted(r, probe)
				failed := !r.outcome.Success()
				if r.outcome == outcome.InvalidRequest && inv.deadLetter(work, rec, r) {
					failed = false
				}
				b.finish(i, req, r, failed)
				groupFailed = groupFailed || failed
			}
		})
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
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	skipped := 0
	for i := range records {
		if !b.done[i] {
			b.failed[i], b.outcomes[i] = true, outcome.Timeout
			inv.record("sqs", records[i].MessageId, request.Request{}, result{outcome: outcome.Timeout, err: errUnfinished})
		}
		if b.outcomes[i] == outcome.Skipped {
			skipped++
		}
	}
	switch {
	case b.stopErr != nil:
		inv.h.sqsMemory.set(b.streakKey)
	case b.open || isClosed(b.progressed):
		inv.h.sqsMemory.set("")
	}
	if b.stopErr != nil {
		inv.h.log.Warn("batch stopped early", "requestId", inv.requestID, "failedTheSameWay", b.streakKey,
			"records", len(records), "notAttempted", skipped)
	}
}

// deadLetter moves a record that can never succeed to the dead-letter queue,
// if there is one, with the reason; it reports whether the record was sent.
// A failed send leaves the record to be reported failed: the queue delivers
// it again, and its redrive policy moves it at last.
func (inv *invocation) deadLetter(ctx context.Context, rec *events.SQSMessage, r result) bool {
	s := inv.h.redelivery
	if s.sqs == nil || s.deadLetterURL == "" {
		return false
	}
	reason := deadLetterReason(r)
	err := s.sqs.SendDeadLetter(ctx, redelivery.DeadLetter{
		QueueURL: s.deadLetterURL, Body: rec.Body, Reason: reason,
		GroupID: rec.Attributes["MessageGroupId"], DeduplicationID: rec.MessageId,
	})
	if err != nil {
		// The SDK's error may name the queue and its account: the log only.
		inv.h.log.Error("record not moved to the dead-letter queue: it is reported failed", "requestId", inv.requestID,
			"messageId", rec.MessageId, "reason", reason, "error", err.Error())
		return false
	}
	inv.h.log.Info("record moved to the dead-letter queue", "requestId", inv.requestID, "messageId", rec.MessageId, "reason", reason)
	return true
}

// deadLetterReason is the DeadLetterReason attribute: the outcome class, then
// the field and rule, or ZEGO's code and RequestId (not ZEGO's message, whose
// length is ZEGO's to choose).
func deadLetterReason(r result) string {
	var ae *zim.APIError
	detail := outcome.Describe(r.err)
	if errors.As(r.err, &ae) {
		detail = fmt.Sprintf("ZEGO code %d, RequestId %s", ae.Code, ae.RequestID)
	}
	return redelivery.Reason(string(r.outcome) + ": " + detail)
}

// backOff hides each record reported failed for a transient reason for the
// backoff of its receive count. An invalid record keeps the queue's own
// visibility timeout: it did not fail for a reason that time mends. A change
// that fails is logged and changes nothing else: that record comes back
// after the queue's visibility timeout, as it would without the backoff.
func (inv *invocation) backOff(hard context.Context, records []events.SQSMessage, failed []bool, outcomes []outcome.Outcome) {
	s := inv.h.redelivery
	if s.sqs == nil {
		return
	}
	byQueue := map[string][]redelivery.Visibility{}
	var order []string
	delays := map[string][]int{}
	for i, rec := range records {
		if !failed[i] || outcomes[i] == outcome.InvalidRequest || rec.ReceiptHandle == "" {
			continue
		}
		url, err := job.QueueURL(rec.EventSourceARN, inv.h.queueURL)
		if err != nil {
			inv.h.log.Error("failed record not backed off", "requestId", inv.requestID, "messageId", rec.MessageId, "error", err.Error())
			continue
		}
		n, _ := strconv.Atoi(rec.Attributes["ApproximateReceiveCount"])
		d := s.backoff.Delay(n)
		if _, ok := byQueue[url]; !ok {
			order = append(order, url)
		}
		byQueue[url] = append(byQueue[url], redelivery.Visibility{ReceiptHandle: rec.ReceiptHandle, Timeout: d})
		delays[url] = append(delays[url], int(d/time.Second))
	}
	if len(order) == 0 {
		return
	}
	// The answer must still reach Lambda before its deadline.
	ctx := hard
	if d, ok := hard.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(hard, d.Add(-10*time.Millisecond))
		defer cancel()
	}
	for _, url := range order {
		attrs := []any{slog.String("requestId", inv.requestID), slog.Int("records", len(byQueue[url])), slog.Any("visibilityTimeoutSeconds", delays[url])}
		if err := s.sqs.ChangeVisibility(ctx, url, byQueue[url]); err != nil {
			inv.h.log.Warn("failed records not backed off: they come back after the queue's visibility timeout",
				append(attrs, slog.String("error", err.Error()))...)
			continue
		}
		inv.h.log.Info("failed records backed off", attrs...)
	}
}
