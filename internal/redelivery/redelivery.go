// Package redelivery decides how a failed SQS record comes back: after a
// visibility timeout that grows with its receive count (Backoff), or not at
// all, moved at once to the dead-letter queue with the reason (SQS). It holds
// the SQS side of both; the handler decides which records get which.
package redelivery

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// MaxVisibility is the longest visibility timeout SQS accepts.
const MaxVisibility = 12 * time.Hour

// ReasonAttribute is the message attribute (String) that says why a message
// was moved to the dead-letter queue.
const ReasonAttribute = "DeadLetterReason"

// maxReason bounds the reason attribute: an outcome class and a field and
// rule, or a ZEGO code, fit in far less.
const maxReason = 512

// Backoff is how long a failed record stays hidden before its next receive:
// Base × 2^(n−1) for its n-th receive, capped at Max (and at SQS's 12 h).
type Backoff struct {
	Base, Max time.Duration
}

// Delay is the visibility timeout for a record that failed on its n-th
// receive (n < 1 counts as 1), in whole seconds as SQS takes it, rounded up.
func (b Backoff) Delay(n int) time.Duration {
	ceiling := min(b.Max, MaxVisibility)
	d := b.Base
	for i := 1; i < n && d < ceiling; i++ {
		d *= 2 // stops at the ceiling, long before it could overflow
	}
	d = min(d, ceiling)
	if r := d % time.Second; r != 0 {
		d += time.Second - r
	}
	return min(d, MaxVisibility)
}

// Visibility is one record's new visibility timeout.
type Visibility struct {
	ReceiptHandle string
	Timeout       time.Duration
}

// DeadLetter is a record sent to the dead-letter queue.
type DeadLetter struct {
	QueueURL string
	Body     string
	// Reason goes into the ReasonAttribute: the outcome class and the field
	// and rule, or ZEGO's code. Never a secret.
	Reason string
	// GroupID and DeduplicationID are used on a FIFO queue (its URL ends
	// in .fifo) only.
	GroupID, DeduplicationID string
}

// SQS changes visibility timeouts and sends dead letters through the SQS API
// (the SDK honours AWS_ENDPOINT_URL_SQS, for a local SQS).
type SQS struct{ client *sqs.Client }

// NewSQS works through c.
func NewSQS(c *sqs.Client) *SQS { return &SQS{client: c} }

// ChangeVisibility sets each record's visibility timeout, ten records per
// ChangeMessageVisibilityBatch request. Its error names how many changes
// failed and why (never a receipt handle).
func (s *SQS) ChangeVisibility(ctx context.Context, queueURL string, changes []Visibility) error {
	var errs []error
	for start := 0; start < len(changes); start += 10 {
		chunk := changes[start:min(start+10, len(changes))]
		entries := make([]types.ChangeMessageVisibilityBatchRequestEntry, len(chunk))
		for i, c := range chunk {
			entries[i] = types.ChangeMessageVisibilityBatchRequestEntry{
				Id:                aws.String(strconv.Itoa(i)),
				ReceiptHandle:     aws.String(c.ReceiptHandle),
				VisibilityTimeout: int32(min(c.Timeout, MaxVisibility) / time.Second),
			}
		}
		out, err := s.client.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(queueURL), Entries: entries})
		if err != nil {
			errs = append(errs, fmt.Errorf("changing the visibility of %d records: %w", len(chunk), err))
			continue
		}
		for _, f := range out.Failed {
			errs = append(errs, fmt.Errorf("changing a record's visibility: %s: %s", aws.ToString(f.Code), aws.ToString(f.Message)))
		}
	}
	return errors.Join(errs...)
}

// SendDeadLetter sends m's body to its queue with the reason attribute.
func (s *SQS) SendDeadLetter(ctx context.Context, m DeadLetter) error {
	in := &sqs.SendMessageInput{
		QueueUrl:    aws.String(m.QueueURL),
		MessageBody: aws.String(m.Body),
		MessageAttributes: map[string]types.MessageAttributeValue{
			ReasonAttribute: {DataType: aws.String("String"), StringValue: aws.String(Reason(m.Reason))},
		},
	}
	if strings.HasSuffix(m.QueueURL, ".fifo") {
		in.MessageGroupId = aws.String(orDefault(m.GroupID, "dead-letter"))
		in.MessageDeduplicationId = aws.String(orDefault(m.DeduplicationID, "dead-letter"))
	}
	_, err := s.client.SendMessage(ctx, in)
	return err
}

// Reason is r as the attribute carries it: never empty (SQS refuses an empty
// String value), at most maxReason bytes, cut on a rune boundary.
func Reason(r string) string {
	if r == "" {
		return "unknown"
	}
	if len(r) <= maxReason {
		return r
	}
	cut := maxReason - len("…")
	for cut > 0 && !utf8.RuneStart(r[cut]) {
		cut--
	}
	return r[:cut] + "…"
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
