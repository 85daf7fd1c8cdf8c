package job

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/zim-deleteconv/zim-deleteconv/internal/request"
)

// Sender sends one message to an SQS queue. *SQSSender is the real one.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// Message is one SQS message.
type Message struct {
	QueueURL string
	Body     string
	// GroupID and DeduplicationID are set on FIFO queues only.
	GroupID         string
	DeduplicationID string
}

// SQSSender sends through the SQS API (the SDK honours AWS_ENDPOINT_URL_SQS,
// for a local SQS).
type SQSSender struct{ client *sqs.Client }

var _ Sender = (*SQSSender)(nil)

// NewSQSSender sends through c.
func NewSQSSender(c *sqs.Client) *SQSSender { return &SQSSender{client: c} }

// Send implements Sender with SendMessage.
func (s *SQSSender) Send(ctx context.Context, m Message) error {
	in := &sqs.SendMessageInput{QueueUrl: aws.String(m.QueueURL), MessageBody: aws.String(m.Body)}
	if m.GroupID != "" {
		in.MessageGroupId = aws.String(m.GroupID)
	}
	if m.DeduplicationID != "" {
		in.MessageDeduplicationId = aws.String(m.DeduplicationID)
	}
	_, err := s.client.SendMessage(ctx, in)
	return err
}

// Queue is where a job goes on.
type Queue struct {
	URL string
	// GroupID is the FIFO message group; ignored on a standard queue.
	GroupID string
}

// Continue sends fromUserID's job on to q as next. On a FIFO queue (its name
// ends in .fifo) the message keeps q's group and carries a deduplication id
// unique to the job and round: a redelivered round sends the same id, which
// SQS drops within its 5-minute window, and content-based deduplication
// cannot drop a round whose body happens to repeat.
func Continue(ctx context.Context, s Sender, q Queue, fromUserID string, next request.Continuation) error {
	m := Message{QueueURL: q.URL, Body: string(request.ContinuationBody(fromUserID, next))}
	if isFIFO(q.URL) {
		m.GroupID = q.GroupID
		if m.GroupID == "" {
			m.GroupID = groupID(fromUserID)
		}
		m.DeduplicationID = fmt.Sprintf("%s-%d", next.JobID, next.Round)
	}
	return s.Send(ctx, m)
}

// isFIFO reports whether a queue URL or ARN names a FIFO queue.
func isFIFO(queue string) bool { return strings.HasSuffix(queue, ".fifo") }

// groupID is the FIFO message group of a job started over HTTP or direct
// invoke: the user's jobs and deletions stay in order. SQS takes 1 to 128
// printable ASCII characters; a user id with others is sent hex-encoded.
func groupID(fromUserID string) string {
	for i := 0; i < len(fromUserID); i++ {
		if c := fromUserID[i]; c < '!' || c > '~' {
			return "u-" + hex.EncodeToString([]byte(fromUserID))
		}
	}
	return fromUserID
}

// dnsSuffix is the domain of SQS endpoints in each partition whose name
// differs from the standard one.
var dnsSuffix = map[string]string{
	"aws":        "amazonaws.com",
	"aws-us-gov": "amazonaws.com",
	"aws-cn":     "amazonaws.com.cn",
}

// QueueURL is the URL of the queue an SQS record came from (its
// eventSourceARN, arn:PARTITION:sqs:REGION:ACCOUNT:NAME). If configured (the
// function's ZEGO_JOB_QUEUE_URL) names the same account and queue it is used
// as it is: that is also the local SQS's URL. Otherwise the URL is
// https://sqs.REGION.<the partition's domain>/ACCOUNT/NAME.
func QueueURL(arn, configured string) (string, error) {
	parts := strings.Split(arn, ":")
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "sqs" || parts[3] == "" || parts[4] == "" || parts[5] == "" {
		return "", fmt.Errorf("eventSourceARN %q is not an SQS queue ARN (arn:PARTITION:sqs:REGION:ACCOUNT:NAME)", arn)
	}
	partition, region, account, name := parts[1], parts[3], parts[4], parts[5]
	if configured != "" && strings.HasSuffix(configured, "/"+account+"/"+name) {
		return configured, nil
	}
	domain, ok := dnsSuffix[partition]
	if !ok {
		return "", fmt.Errorf("eventSourceARN %q: partition %q is not known; set ZEGO_JOB_QUEUE_URL to this queue's URL", arn, partition)
	}
	return "https://sqs." + region + "." + domain + "/" + account + "/" + name, nil
}
