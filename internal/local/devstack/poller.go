package devstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// The poller does locally what Lambda's SQS event source mapping does with
// ReportBatchItemFailures (nothing else emulates it): one worker per queue
// function instance, so at most Instances invocations run at once and each
// emulator sees one at a time. A worker long-polls a batch of up to
// BatchSize messages, gathering for up to BatchWindow, invokes its emulator
// with an SQS event, and deletes the records not in batchItemFailures. On a
// function error, a timeout or an answer Lambda would not accept it deletes
// nothing: the messages come back after the visibility timeout, and moto
// moves a message to the dead-letter queue on the receive after its
// maxReceiveCount-th.

// Batch is one invocation of the queue function by the poller.
type Batch struct {
	// Function is the instance that ran it, e.g. "queue-1".
	Function string
	// Start is when the invocation was sent.
	Start time.Time
	// Messages are the batch's records, in the event's order.
	Messages []Delivery
	// Result is the emulator's answer (its Logs are the function's lines).
	Result InvokeResult
	// Err is set when the invocation did not complete, or a delete failed.
	Err error
	// Failed are the message ids left in the queue: the batchItemFailures, or
	// every message after a function error, a timeout, an unusable answer or
	// an invocation that did not complete.
	Failed []string
	// WholeBatch says why every message was left in the queue ("" when the
	// function's batchItemFailures decided).
	WholeBatch string
}

// Delivery is one message of a batch.
type Delivery struct {
	MessageID string
	Body      string
	// ReceiveCount is the message's ApproximateReceiveCount (1 on its first delivery).
	ReceiveCount int
	// GroupID is its MessageGroupId, if any.
	GroupID string
	// DeduplicationID is its MessageDeduplicationId (FIFO queues only): the
	// sender's, or SQS's hash of the body under content-based deduplication.
	DeduplicationID string
}

type poller struct {
	q   *Queue
	log io.Writer // one JSON line per batch

	mu   sync.Mutex
	done []Batch
	busy int                  // messages received and not yet settled
	back map[string]time.Time // failed messages: when they are visible again
	// inFlight are the messages being delivered, with when they were received:
	// SQS keeps each invisible for the visibility timeout from then.
	inFlight map[string]time.Time
}

func newPoller(q *Queue, log io.Writer) *poller {
	return &poller{q: q, log: log, back: map[string]time.Time{}, inFlight: map[string]time.Time{}}
}

// claim keeps the received messages that SQS could deliver: moto's receive
// is not atomic across threads (getmoto/moto#519), so two workers polling
// at once can get the same message, which SQS never hands out again within
// its visibility timeout. Such a copy is left undelivered (the first
// delivery deletes the message, or it comes back after the timeout) and
// logged.
func (p *poller) claim(msgs []types.Message) []types.Message {
	now := time.Now()
	var kept []types.Message
	var dups []string
	p.mu.Lock()
	for _, m := range msgs {
		id := aws.ToString(m.MessageId)
		if at, ok := p.inFlight[id]; ok && now.Before(at.Add(p.q.cfg.VisibilityTimeout)) {
			dups = append(dups, id)
			continue
		}
		p.inFlight[id] = now
		delete(p.back, id)
		kept = append(kept, m)
	}
	p.busy += len(kept)
	p.mu.Unlock()
	if len(dups) > 0 {
		p.writeLog(map[string]any{"time": now, "duplicateReceive": dups})
	}
	return kept
}

// run feeds f until ctx ends.
func (p *poller) run(ctx context.Context, f *Function) {
	for ctx.Err() == nil {
		sent := time.Now()
		msgs, err := p.receive(ctx)
		if err != nil {
			if ctx.Err() == nil {
				p.writeLog(map[string]any{"time": time.Now(), "function": f.Name, "receiveError": err.Error()})
				sleep(ctx, time.Second)
			}
			continue
		}
		if len(msgs) > 0 {
			p.deliver(ctx, f, msgs, sent)
		}
	}
}

// receive long-polls one batch: it returns once BatchSize messages are in or
// BatchWindow has passed since the first arrived.
func (p *poller) receive(ctx context.Context) ([]types.Message, error) {
	cfg := p.q.cfg
	var msgs []types.Message
	var windowEnd time.Time
	for len(msgs) < cfg.BatchSize {
		wait := int32(20) // Lambda's long poll
		if len(msgs) > 0 {
			left := time.Until(windowEnd)
			if left <= 0 {
				break
			}
			wait = int32(max(1, left.Round(time.Second)/time.Second))
		}
		out, err := p.q.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:                    aws.String(p.q.URL),
			MaxNumberOfMessages:         int32(cfg.BatchSize - len(msgs)),
			WaitTimeSeconds:             wait,
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
			MessageAttributeNames:       []string{"All"},
		})
		if err != nil {
			if len(msgs) > 0 {
				break // deliver what is in; the error will show on the next receive
			}
			return nil, err
		}
		got := p.claim(out.Messages)
		if len(got) == 0 {
			if len(msgs) > 0 {
				break
			}
			if len(out.Messages) > 0 {
				continue // only copies of messages in flight: poll again
			}
			return nil, nil
		}
		if len(msgs) == 0 {
			windowEnd = time.Now().Add(cfg.BatchWindow)
		}
		msgs = append(msgs, got...)
	}
	return msgs, nil
}

// deliver invokes f with one batch and deletes what succeeded.
func (p *poller) deliver(ctx context.Context, f *Function, msgs []types.Message, received time.Time) {
	b := Batch{Function: f.Name, Start: time.Now()}
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = aws.ToString(m.MessageId)
		n, _ := strconv.Atoi(m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)])
		b.Messages = append(b.Messages, Delivery{
			MessageID: ids[i], Body: aws.ToString(m.Body), ReceiveCount: n,
			GroupID:         m.Attributes[string(types.MessageSystemAttributeNameMessageGroupId)],
			DeduplicationID: m.Attributes[string(types.MessageSystemAttributeNameMessageDeduplicationId)],
		})
	}
	event, err := json.Marshal(sqsEvent(p.q.ARN, msgs))
	if err == nil {
		b.Result, err = f.Invoke(ctx, event)
	}
	switch {
	case err != nil:
		b.Err, b.WholeBatch = err, "the invocation did not complete"
	case b.Result.FunctionError:
		b.WholeBatch = "function error " + b.Result.ErrorType
	default:
		var ok bool
		if b.Failed, ok = batchItemFailures(b.Result.Body, ids); !ok {
			b.WholeBatch = "an answer Lambda does not accept as an SQSEventResponse"
		}
	}
	if b.WholeBatch != "" {
		b.Failed = ids
	}

	var del []types.DeleteMessageBatchRequestEntry
	for i, m := range msgs {
		if !slices.Contains(b.Failed, ids[i]) {
			del = append(del, types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle})
		}
	}
	if len(del) > 0 && ctx.Err() == nil {
		out, err := p.q.client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(p.q.URL), Entries: del})
		if err == nil && len(out.Failed) > 0 {
			err = fmt.Errorf("%d deletes refused, e.g. %s", len(out.Failed), aws.ToString(out.Failed[0].Message))
		}
		if err != nil {
			b.Err = errors.Join(b.Err, fmt.Errorf("devstack: deleting the batch's succeeded records: %w", err))
		}
	}

	visibleAt := received.Add(p.q.cfg.VisibilityTimeout)
	p.mu.Lock()
	p.busy -= len(msgs)
	for _, id := range ids {
		delete(p.inFlight, id)
	}
	for _, id := range b.Failed {
		p.back[id] = visibleAt
	}
	p.done = append(p.done, b)
	p.mu.Unlock()
	p.writeLog(map[string]any{
		"time": b.Start, "function": b.Function, "messages": ids, "failed": b.Failed, "wholeBatch": b.WholeBatch,
		"latencyMs": b.Result.Latency.Milliseconds(), "error": errText(b.Err),
	})
}

// held returns how many messages are being delivered, and how many failed
// ones wait out their visibility timeout.
func (p *poller) held() (busy, waiting int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	for id, at := range p.back {
		if at.After(now) {
			waiting++
		} else {
			delete(p.back, id)
		}
	}
	return p.busy, waiting
}

func (p *poller) batches() []Batch {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.done)
}

func (p *poller) writeLog(v map[string]any) {
	if p.log == nil {
		return
	}
	b, _ := json.Marshal(v)
	p.mu.Lock()
	defer p.mu.Unlock()
	_, _ = p.log.Write(append(b, '\n'))
}

// sqsEvent is the event Lambda builds from received messages.
func sqsEvent(arn string, msgs []types.Message) events.SQSEvent {
	var ev events.SQSEvent
	for _, m := range msgs {
		rec := events.SQSMessage{
			MessageId:              aws.ToString(m.MessageId),
			ReceiptHandle:          aws.ToString(m.ReceiptHandle),
			Body:                   aws.ToString(m.Body),
			Md5OfBody:              aws.ToString(m.MD5OfBody),
			Md5OfMessageAttributes: aws.ToString(m.MD5OfMessageAttributes),
			Attributes:             m.Attributes,
			MessageAttributes:      map[string]events.SQSMessageAttribute{},
			EventSourceARN:         arn,
			EventSource:            "aws:sqs",
			AWSRegion:              regionOf(arn),
		}
		if rec.Attributes == nil {
			rec.Attributes = map[string]string{}
		}
		for k, v := range m.MessageAttributes {
			rec.MessageAttributes[k] = events.SQSMessageAttribute{
				StringValue:      v.StringValue,
				BinaryValue:      v.BinaryValue,
				StringListValues: append([]string{}, v.StringListValues...),
				BinaryListValues: append([][]byte{}, v.BinaryListValues...),
				DataType:         aws.ToString(v.DataType),
			}
		}
		ev.Records = append(ev.Records, rec)
	}
	return ev
}

// regionOf is the region field of an ARN (arn:aws:sqs:REGION:ACCOUNT:NAME).
func regionOf(arn string) string {
	if f := strings.Split(arn, ":"); len(f) == 6 {
		return f[3]
	}
	return ""
}

// batchItemFailures reads an SQSEventResponse as Lambda does: a null or empty
// answer, or an empty list, fails nothing; an answer that is not such an
// object, or names an item that is empty or not in the batch, fails the
// whole batch (ok false).
func batchItemFailures(body []byte, ids []string) (failed []string, ok bool) {
	if len(body) == 0 || string(body) == "null" {
		return nil, true
	}
	var resp struct {
		BatchItemFailures []struct {
			ItemIdentifier *string `json:"itemIdentifier"`
		} `json:"batchItemFailures"`
	}
	if json.Unmarshal(body, &resp) != nil {
		return nil, false
	}
	for _, f := range resp.BatchItemFailures {
		if f.ItemIdentifier == nil || !slices.Contains(ids, *f.ItemIdentifier) {
			return nil, false
		}
		if !slices.Contains(failed, *f.ItemIdentifier) {
			failed = append(failed, *f.ItemIdentifier)
		}
	}
	return failed, true
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
