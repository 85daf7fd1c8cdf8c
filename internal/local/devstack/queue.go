package devstack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Defaults for Config and QueueConfig: the template's defaults (RateBudget,
// ApiConcurrency, the queue function's 2 instances), its event source and
// redrive settings. Without the shared table (Config.NoStateTable) the
// functions run at the static split the template had before it: 2 api
// instances × APIInstanceRate + 2 queue instances × DefaultQueueRate = 20,
// the ZIM server's requests per second per AppId.
const (
	DefaultRateBudget      = 20
	DefaultAPIInstances    = 2
	DefaultQueueName       = "zim-deleteconv-queue"
	DefaultQueueInstances  = 2
	DefaultQueueRate       = 8.0
	APIInstanceRate        = 2.0 // one ApiFunction instance's static share
	DefaultAPIRate         = DefaultAPIInstances * APIInstanceRate
	DefaultBatchSize       = 10
	DefaultBatchWindow     = time.Second
	DefaultMaxReceiveCount = 5
)

// QueueConfig configures the local job queue (moto's SQS, with a dead-letter
// queue) and the queue function that consumes it through the poller.
type QueueConfig struct {
	// Name is the job queue's name (default DefaultQueueName); FIFO adds
	// ".fifo". The dead-letter queue is Name-dlq.
	Name string
	// FIFO makes both queues FIFO queues; ContentBasedDeduplication turns
	// on the job queue's content-based deduplication.
	FIFO, ContentBasedDeduplication bool
	// Instances is the queue function's instance count: one emulator each,
	// and the poller's concurrency (default DefaultQueueInstances).
	Instances int
	// Function configures each instance. Name is ignored ("queue-1", …);
	// Timeout defaults to DefaultFunctionTimeout. RateLimit 0 is the shared
	// budget (or DefaultQueueRate with Config.NoStateTable); another value
	// runs the instances at that static rate without the table.
	Function FunctionConfig
	// BatchSize and BatchWindow are the event source's BatchSize and
	// MaximumBatchingWindowInSeconds (default 10 and 1 s, as the template).
	BatchSize   int
	BatchWindow time.Duration
	// MaxReceiveCount is the redrive policy's (default 5).
	MaxReceiveCount int
	// VisibilityTimeout is the job queue's (default 6 × Function.Timeout,
	// AWS's advice for a Lambda event source). It must not be shorter than
	// the function's timeout.
	VisibilityTimeout time.Duration
}

func (c *QueueConfig) setDefaults() error {
	if c.Name == "" {
		c.Name = DefaultQueueName
	}
	if c.FIFO && !strings.HasSuffix(c.Name, ".fifo") {
		c.Name += ".fifo"
	}
	if !c.FIFO && strings.HasSuffix(c.Name, ".fifo") {
		return fmt.Errorf("devstack: queue %q: a name ending in .fifo needs FIFO", c.Name)
	}
	if c.ContentBasedDeduplication && !c.FIFO {
		return errors.New("devstack: content-based deduplication needs a FIFO queue")
	}
	if c.Instances <= 0 {
		c.Instances = DefaultQueueInstances
	}
	if c.Function.Timeout <= 0 {
		c.Function.Timeout = DefaultFunctionTimeout
	}
	if c.BatchSize <= 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.BatchSize > 10 {
		return fmt.Errorf("devstack: batch size %d: SQS receives at most 10 messages at a time", c.BatchSize)
	}
	if c.BatchWindow <= 0 {
		c.BatchWindow = DefaultBatchWindow
	}
	if c.MaxReceiveCount <= 0 {
		c.MaxReceiveCount = DefaultMaxReceiveCount
	}
	if c.VisibilityTimeout <= 0 {
		c.VisibilityTimeout = 6 * c.Function.Timeout
	}
	if c.VisibilityTimeout < c.Function.Timeout {
		return fmt.Errorf("devstack: visibility timeout %v is shorter than the function timeout %v (Lambda refuses such an event source)", c.VisibilityTimeout, c.Function.Timeout)
	}
	return nil
}

// Queue is the local job queue and its dead-letter queue in moto's SQS, with
// the poller that feeds the queue function (see poller.go).
type Queue struct {
	// Name, URL and ARN are the job queue's (ZEGO_JOB_QUEUE_URL is URL).
	Name, URL, ARN string
	// DeadLetterURL and DeadLetterARN are the dead-letter queue's.
	DeadLetterURL, DeadLetterARN string
	// FIFO reports whether both are FIFO queues.
	FIFO bool

	cfg    QueueConfig
	client *sqs.Client
	poller *poller
}

// createQueue creates the dead-letter queue, then the job queue redriving to it.
func createQueue(ctx context.Context, client *sqs.Client, cfg QueueConfig) (*Queue, error) {
	q := &Queue{Name: cfg.Name, FIFO: cfg.FIFO, cfg: cfg, client: client}
	dlqName := strings.TrimSuffix(cfg.Name, ".fifo") + "-dlq"
	attrs := map[string]string{}
	if cfg.FIFO {
		dlqName += ".fifo"
		attrs["FifoQueue"] = "true"
	}
	var err error
	if q.DeadLetterURL, q.DeadLetterARN, err = q.create(ctx, dlqName, attrs); err != nil {
		return nil, err
	}
	redrive, _ := json.Marshal(map[string]any{"deadLetterTargetArn": q.DeadLetterARN, "maxReceiveCount": cfg.MaxReceiveCount})
	attrs["RedrivePolicy"] = string(redrive)
	attrs["VisibilityTimeout"] = strconv.Itoa(int(cfg.VisibilityTimeout.Round(time.Second) / time.Second))
	if cfg.ContentBasedDeduplication {
		attrs["ContentBasedDeduplication"] = "true"
	}
	if q.URL, q.ARN, err = q.create(ctx, cfg.Name, attrs); err != nil {
		return nil, err
	}
	return q, nil
}

func (q *Queue) create(ctx context.Context, name string, attrs map[string]string) (url, arn string, err error) {
	out, err := q.client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		return "", "", fmt.Errorf("devstack: creating queue %s: %w", name, err)
	}
	got, err := q.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: out.QueueUrl, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return "", "", fmt.Errorf("devstack: queue %s: %w", name, err)
	}
	return aws.ToString(out.QueueUrl), got.Attributes[string(types.QueueAttributeNameQueueArn)], nil
}

// Message is one message to send to the job queue.
type Message struct {
	Body string
	// GroupID is the MessageGroupId: required by FIFO (default "default"),
	// optional on a standard queue (a fair queue's tenant).
	GroupID string
	// DeduplicationID is a FIFO queue's; by default a random one, unless the
	// queue deduplicates by content.
	DeduplicationID string
	// Delay is DelaySeconds, rounded down to whole seconds.
	Delay time.Duration
}

// Send sends messages to the job queue, ten per request, and returns their
// message ids in order.
func (q *Queue) Send(ctx context.Context, msgs ...Message) ([]string, error) {
	var ids []string
	for start := 0; start < len(msgs); start += 10 {
		chunk := msgs[start:min(start+10, len(msgs))]
		entries := make([]types.SendMessageBatchRequestEntry, len(chunk))
		for i, m := range chunk {
			e := types.SendMessageBatchRequestEntry{
				Id:           aws.String(strconv.Itoa(i)),
				MessageBody:  aws.String(m.Body),
				DelaySeconds: int32(m.Delay / time.Second),
			}
			if m.GroupID != "" {
				e.MessageGroupId = aws.String(m.GroupID)
			}
			if q.FIFO {
				if e.MessageGroupId == nil {
					e.MessageGroupId = aws.String("default")
				}
				switch {
				case m.DeduplicationID != "":
					e.MessageDeduplicationId = aws.String(m.DeduplicationID)
				case !q.cfg.ContentBasedDeduplication:
					e.MessageDeduplicationId = aws.String(randomHex())
				}
			}
			entries[i] = e
		}
		out, err := q.client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(q.URL), Entries: entries})
		if err != nil {
			return ids, fmt.Errorf("devstack: sending to %s: %w", q.Name, err)
		}
		if len(out.Failed) > 0 {
			f := out.Failed[0]
			return ids, fmt.Errorf("devstack: sending to %s: %d of %d refused, e.g. %s: %s", q.Name, len(out.Failed), len(chunk), aws.ToString(f.Code), aws.ToString(f.Message))
		}
		byEntry := map[string]string{}
		for _, ok := range out.Successful {
			byEntry[aws.ToString(ok.Id)] = aws.ToString(ok.MessageId)
		}
		for i := range chunk {
			ids = append(ids, byEntry[strconv.Itoa(i)])
		}
	}
	return ids, nil
}

// QueueCounts are the job queue's message counts and the dead-letter queue's
// total. moto's counts are exact, not approximate.
type QueueCounts struct {
	Visible, InFlight, Delayed int
	DeadLetters                int
}

// Counts reads both queues' counts.
func (q *Queue) Counts(ctx context.Context) (QueueCounts, error) {
	main, err := q.attributes(ctx, q.URL)
	if err != nil {
		return QueueCounts{}, err
	}
	dlq, err := q.attributes(ctx, q.DeadLetterURL)
	if err != nil {
		return QueueCounts{}, err
	}
	return QueueCounts{
		Visible:     main[0],
		InFlight:    main[1],
		Delayed:     main[2],
		DeadLetters: dlq[0] + dlq[1] + dlq[2],
	}, nil
}

func (q *Queue) attributes(ctx context.Context, url string) ([3]int, error) {
	names := []types.QueueAttributeName{
		types.QueueAttributeNameApproximateNumberOfMessages,
		types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		types.QueueAttributeNameApproximateNumberOfMessagesDelayed,
	}
	out, err := q.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url), AttributeNames: names})
	if err != nil {
		return [3]int{}, fmt.Errorf("devstack: reading the counts of %s: %w", url, err)
	}
	var n [3]int
	for i, name := range names {
		n[i], _ = strconv.Atoi(out.Attributes[string(name)])
	}
	return n, nil
}

// WaitDrained waits until the job queue holds no message at all (none
// visible, in flight or delayed) and the poller is idle, so Batches holds
// every delivery. A job's continuation is sent before its record is
// deleted, so a drained queue means every job has ended, in success or in
// the dead-letter queue.
func (q *Queue) WaitDrained(ctx context.Context) error {
	return q.waitUntil(ctx, func(c QueueCounts) bool {
		busy, _ := q.poller.held()
		return busy == 0 && c.Visible+c.InFlight+c.Delayed == 0
	})
}

// WaitSettled waits until nothing happens without waiting out a visibility
// timeout: no message visible or delayed, and every message in flight one
// that failed and waits to come back (WaitDrained when none failed).
func (q *Queue) WaitSettled(ctx context.Context) error {
	return q.waitUntil(ctx, func(c QueueCounts) bool {
		busy, waiting := q.poller.held()
		return busy == 0 && c.Visible+c.Delayed == 0 && c.InFlight == waiting
	})
}

func (q *Queue) waitUntil(ctx context.Context, done func(QueueCounts) bool) error {
	c, err := waitStable(ctx, 100*time.Millisecond, q.Counts, done)
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("devstack: waiting for %s (%d visible, %d in flight, %d delayed): %w", q.Name, c.Visible, c.InFlight, c.Delayed, err)
	}
	return err
}

// waitStable reads the counts every tick until done holds for two reads in a
// row, and returns the last counts read. One read is not enough: moto
// computes each attribute at its own instant, so a message whose visibility
// timeout ends between the visible and the in-flight count shows in neither,
// and the queue looks empty for that one read while the message is about to
// be received again.
func waitStable(ctx context.Context, tick time.Duration, read func(context.Context) (QueueCounts, error), done func(QueueCounts) bool) (QueueCounts, error) {
	t := time.NewTicker(tick)
	defer t.Stop()
	seen := 0
	for {
		c, err := read(ctx)
		if err != nil {
			return c, err
		}
		if !done(c) {
			seen = 0
		} else if seen++; seen == 2 {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return c, ctx.Err()
		case <-t.C:
		}
	}
}

// DeadLetter is a message in the dead-letter queue.
type DeadLetter struct {
	MessageID, Body string
}

// DeadLetters returns the dead-letter queue's messages, leaving them there
// (they are received and made visible again at once). On a FIFO queue a
// message group shows at most ten messages.
func (q *Queue) DeadLetters(ctx context.Context) ([]DeadLetter, error) {
	var out []DeadLetter
	var handles []types.ChangeMessageVisibilityBatchRequestEntry
	seen := map[string]bool{}
	for {
		got, err := q.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(q.DeadLetterURL), MaxNumberOfMessages: 10, VisibilityTimeout: 60,
		})
		if err != nil {
			return nil, fmt.Errorf("devstack: reading the dead-letter queue: %w", err)
		}
		fresh := 0
		for _, m := range got.Messages {
			id := aws.ToString(m.MessageId)
			if seen[id] {
				continue
			}
			seen[id], fresh = true, fresh+1
			out = append(out, DeadLetter{MessageID: id, Body: aws.ToString(m.Body)})
			handles = append(handles, types.ChangeMessageVisibilityBatchRequestEntry{
				Id: aws.String(strconv.Itoa(len(handles))), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0,
			})
		}
		if fresh == 0 {
			break
		}
	}
	for start := 0; start < len(handles); start += 10 {
		if _, err := q.client.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{
			QueueUrl: aws.String(q.DeadLetterURL), Entries: handles[start:min(start+10, len(handles))],
		}); err != nil {
			return out, fmt.Errorf("devstack: making dead letters visible again: %w", err)
		}
	}
	return out, nil
}

// Batches returns every batch the poller has delivered so far, in the order
// they finished.
func (q *Queue) Batches() []Batch { return q.poller.batches() }

// Receives counts, per message id, how often the poller delivered the message
// to the queue function.
func (q *Queue) Receives() map[string]int {
	n := map[string]int{}
	for _, b := range q.Batches() {
		for _, m := range b.Messages {
			n[m.MessageID]++
		}
	}
	return n
}

// Config returns the queue's configuration, defaults filled in.
func (q *Queue) Config() QueueConfig { return q.cfg }

func randomHex() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
