package job

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/zim-deleteconv/zim-deleteconv/internal/local/motoserver"
	"github.com/zim-deleteconv/zim-deleteconv/internal/request"
)

var testNext = request.Continuation{JobID: "0123456789abcdef0123456789abcdef", Round: 3, Deleted: 380, AlreadyDeleted: 2,
	StartedAt: time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)}

func TestContinue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, url, group, user string
		wantGroup, wantDedup   string
	}{
		{name: "standard", url: "https://sqs.us-east-1.amazonaws.com/123456789012/jobs", user: "erin"},
		{name: "standard ignores a group", url: "https://sqs.us-east-1.amazonaws.com/123456789012/jobs", group: "g", user: "erin"},
		{name: "FIFO keeps the record's group", url: "https://sqs.us-east-1.amazonaws.com/123456789012/jobs.fifo", group: "tenant-7", user: "erin",
			wantGroup: "tenant-7", wantDedup: testNext.JobID + "-3"},
		{name: "FIFO from HTTP: the user's group", url: "http://127.0.0.1:4566/123456789012/jobs.fifo", user: "a@b#c",
			wantGroup: "a@b#c", wantDedup: testNext.JobID + "-3"},
		{name: "FIFO, user id SQS does not take as a group", url: "http://127.0.0.1:4566/123456789012/jobs.fifo", user: "é x",
			wantGroup: "u-c3a92078", wantDedup: testNext.JobID + "-3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := &fakeSender{}
			if err := Continue(t.Context(), s, Queue{URL: tt.url, GroupID: tt.group}, tt.user, testNext); err != nil {
				t.Fatal(err)
			}
			if len(s.sent) != 1 {
				t.Fatalf("sent %v", s.sent)
			}
			m := s.sent[0]
			if m.QueueURL != tt.url || m.GroupID != tt.wantGroup || m.DeduplicationID != tt.wantDedup {
				t.Errorf("message %+v, want group %q and deduplication id %q", m, tt.wantGroup, tt.wantDedup)
			}
			req, err := request.Parse([]byte(m.Body))
			if err != nil || !req.All || req.FromUserID != tt.user || req.Continuation == nil || *req.Continuation != testNext {
				t.Errorf("body %s reads as %+v, %v", m.Body, req, err)
			}
		})
	}
	if err := Continue(t.Context(), &fakeSender{err: errSendRefused}, Queue{URL: tests[0].url}, "erin", testNext); err == nil {
		t.Error("a failed send must be reported")
	}
}

func TestQueueURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ arn, configured, want, err string }{
		{arn: "arn:aws:sqs:us-east-1:123456789012:zim-deleteconv", want: "https://sqs.us-east-1.amazonaws.com/123456789012/zim-deleteconv"},
		{arn: "arn:aws:sqs:eu-central-1:123456789012:jobs.fifo", want: "https://sqs.eu-central-1.amazonaws.com/123456789012/jobs.fifo"},
		{arn: "arn:aws-cn:sqs:cn-north-1:123456789012:jobs", want: "https://sqs.cn-north-1.amazonaws.com.cn/123456789012/jobs"},
		{arn: "arn:aws-us-gov:sqs:us-gov-west-1:123456789012:jobs", want: "https://sqs.us-gov-west-1.amazonaws.com/123456789012/jobs"},
		// The configured URL of the same queue wins (a local SQS, a VPC endpoint)...
		{arn: "arn:aws:sqs:us-east-1:123456789012:jobs", configured: "http://127.0.0.1:4566/123456789012/jobs", want: "http://127.0.0.1:4566/123456789012/jobs"},
		// ...but not another queue's.
		{arn: "arn:aws:sqs:us-east-1:123456789012:jobs", configured: "http://127.0.0.1:4566/123456789012/other-jobs", want: "https://sqs.us-east-1.amazonaws.com/123456789012/jobs"},
		{arn: "arn:aws:sqs:us-east-1:123456789012:jobs", configured: "http://127.0.0.1:4566/123456789012/jobs.fifo", want: "https://sqs.us-east-1.amazonaws.com/123456789012/jobs"},
		{arn: "arn:aws-iso:sqs:us-iso-east-1:123456789012:jobs", err: "partition"},
		{arn: "arn:aws:sns:us-east-1:123456789012:topic", err: "not an SQS queue ARN"},
		{arn: "", err: "not an SQS queue ARN"},
		{arn: "arn:aws:sqs:us-east-1:123456789012", err: "not an SQS queue ARN"},
	}
	for _, tt := range tests {
		got, err := QueueURL(tt.arn, tt.configured)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("QueueURL(%q) = %q, %v; want an error about %q", tt.arn, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("QueueURL(%q, %q) = %q, %v; want %q", tt.arn, tt.configured, got, err, tt.want)
		}
	}
}

// TestSQSSenderThroughMoto sends continuations through the real SQS API
// (moto) to a standard and a FIFO queue and reads them back with their
// attributes. The queues are named by URLs built from their ARNs, as the SQS
// trigger does.
func TestSQSSenderThroughMoto(t *testing.T) {
	t.Parallel()
	moto := motoserver.StartT(t)
	cfg, err := moto.AWSConfig(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	client := sqs.NewFromConfig(cfg)
	sender := NewSQSSender(client)
	for _, name := range []string{"jobs", "jobs.fifo"} {
		in := &sqs.CreateQueueInput{QueueName: aws.String(name)}
		if strings.HasSuffix(name, ".fifo") {
			in.Attributes = map[string]string{"FifoQueue": "true", "ContentBasedDeduplication": "true"}
		}
		if _, err := client.CreateQueue(t.Context(), in); err != nil {
			t.Fatal(err)
		}
		url, err := QueueURL("arn:aws:sqs:"+motoserver.Region+":123456789012:"+name, "")
		if err != nil {
			t.Fatal(err)
		}
		q := Queue{URL: url, GroupID: "tenant-7"}
		if err := Continue(t.Context(), sender, q, "erin", testNext); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// The same round again (a redelivered record that continues again)...
		if err := Continue(t.Context(), sender, q, "erin", testNext); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// ...and the next round, whose body happens to be the same but for its round.
		later := testNext
		later.Round++
		if err := Continue(t.Context(), sender, q, "erin", later); err != nil {
			t.Fatalf("%s: %v", name, err)
		}

		out, err := client.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10,
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll}})
		if err != nil {
			t.Fatal(err)
		}
		var rounds []int
		for _, m := range out.Messages {
			req, err := request.Parse([]byte(aws.ToString(m.Body)))
			if err != nil || req.Continuation == nil {
				t.Fatalf("%s: body %q: %v", name, aws.ToString(m.Body), err)
			}
			rounds = append(rounds, req.Continuation.Round)
			group, dedup := m.Attributes["MessageGroupId"], m.Attributes["MessageDeduplicationId"]
			if name == "jobs.fifo" {
				want := fmt.Sprintf("%s-%d", testNext.JobID, req.Continuation.Round)
				if group != "tenant-7" || dedup != want {
					t.Errorf("%s: group %q, deduplication id %q; want tenant-7, %s", name, group, dedup, want)
				}
			} else if group != "" || dedup != "" {
				t.Errorf("%s: group %q, deduplication id %q on a standard queue", name, group, dedup)
			}
		}
		want := "[3 3 4]"
		if name == "jobs.fifo" {
			want = "[3 4]" // the repeated round is deduplicated
		}
		slices.Sort(rounds)
		if fmt.Sprint(rounds) != want {
			t.Errorf("%s: received rounds %v, want %s", name, rounds, want)
		}
	}
}
