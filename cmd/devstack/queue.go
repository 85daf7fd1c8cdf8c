package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/internal/local/devstack"
)

// jobUser is the demo job's user: a support bot with thousands of conversations.
const jobUser = "support-bot"

// runJob seeds n conversations of user, sends one AllConversations message
// to the job queue, and prints a line per round (each delivery of the job's
// message or of a continuation) until the queue is drained. ok reports
// whether every conversation was deleted and nothing went to the dead-letter
// queue.
func runJob(ctx context.Context, s *devstack.Stack, user string, n int, w io.Writer) (ok bool, err error) {
	q, admin := s.Queue(), s.Admin()
	if _, err := s.SeedConversations(ctx, user, n); err != nil {
		return false, err
	}
	cfg := q.Config()
	body := fmt.Sprintf(`{"FromUserId": %q, "AllConversations": true}`, user)
	fmt.Fprintf(w, "\nA job through the local queue: %d conversations of %s, one message %s\n", n, user, body)
	fmt.Fprintf(w, "(queue %s: visibility timeout %s, maxReceiveCount %d; queue function: %d instances, %s timeout, ZEGO_RATE_LIMIT %g each)\n",
		q.Name, cfg.VisibilityTimeout, cfg.MaxReceiveCount, cfg.Instances, cfg.Function.Timeout, cfg.Function.RateLimit)
	left := func() (int, error) {
		convs, err := admin.Conversations(ctx, s.AppID(), user)
		return len(convs), err
	}

	start := time.Now()
	if _, err := q.Send(ctx, devstack.Message{Body: body}); err != nil {
		return false, err
	}
	drained := make(chan error, 1)
	go func() { drained <- q.WaitDrained(ctx) }()
	rounds, seen := 0, 0
	printRounds := func() error {
		batches := q.Batches()
		for _, b := range batches[seen:] {
			for _, m := range b.Messages {
				if !isJobOf(m.Body, user) {
					continue
				}
				rounds++
				l, err := left()
				if err != nil {
					return err
				}
				fmt.Fprintf(w, "%8s  round %3d on %s (receive %d): %5d of %d deleted, %s\n",
					time.Since(start).Round(time.Second), rounds, b.Function, m.ReceiveCount, n-l, n, roundOutcome(b, m.MessageID))
			}
		}
		seen = len(batches)
		return nil
	}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-drained:
			if err != nil {
				return false, err
			}
			if err := printRounds(); err != nil {
				return false, err
			}
			return jobSummary(ctx, w, q, n, left, rounds, time.Since(start))
		case <-tick.C:
			if err := printRounds(); err != nil {
				return false, err
			}
		}
	}
}

func jobSummary(ctx context.Context, w io.Writer, q *devstack.Queue, n int, left func() (int, error), rounds int, took time.Duration) (bool, error) {
	l, err := left()
	if err != nil {
		return false, err
	}
	c, err := q.Counts(ctx)
	if err != nil {
		return false, err
	}
	deleted := n - l
	rate := float64(deleted) / took.Seconds()
	if l == 0 && c.DeadLetters == 0 {
		fmt.Fprintf(w, "ok   job: %d conversations deleted in %s (%.1f/s) over %d round(s); queue and dead-letter queue empty\n", n, took.Round(time.Second), rate, rounds)
		return true, nil
	}
	fmt.Fprintf(w, "FAIL job: %d of %d conversations deleted in %s over %d round(s); %d message(s) in the dead-letter queue\n", deleted, n, took.Round(time.Second), rounds, c.DeadLetters)
	return false, nil
}

// isJobOf reports whether body is an AllConversations request (or its
// continuation) of user.
func isJobOf(body, user string) bool {
	var r struct {
		FromUserID       string `json:"FromUserId"`
		AllConversations bool
	}
	return json.Unmarshal([]byte(body), &r) == nil && r.AllConversations && r.FromUserID == user
}

// roundOutcome says what became of one message of a batch.
func roundOutcome(b devstack.Batch, id string) string {
	switch {
	case b.WholeBatch != "":
		return "the whole batch stays in the queue: " + b.WholeBatch
	case slices.Contains(b.Failed, id):
		return "in batchItemFailures: back after the visibility timeout"
	}
	return "succeeded (deleted from the queue)"
}

// sendAndFollow sends the event to the job queue (each record's body for an
// SQS event, else the event itself as one message) and follows it.
func sendAndFollow(ctx context.Context, s *devstack.Stack, event []byte, name string, stdout, stderr io.Writer) (int, error) {
	var msgs []devstack.Message
	var ev struct {
		Records []struct {
			Body       string            `json:"body"`
			Attributes map[string]string `json:"attributes"`
		}
	}
	if devstack.DetectTrigger(event) == devstack.TriggerSQS && json.Unmarshal(event, &ev) == nil {
		for _, r := range ev.Records {
			msgs = append(msgs, devstack.Message{Body: r.Body, GroupID: r.Attributes["MessageGroupId"]})
		}
	} else {
		msgs = []devstack.Message{{Body: strings.TrimSpace(string(event))}}
	}
	q := s.Queue()
	ids, err := q.Send(ctx, msgs...)
	if err != nil {
		return 1, err
	}
	fmt.Fprintf(stderr, "devstack: sent %d message(s) from %s to %s: %s\n", len(ids), name, q.Name, strings.Join(ids, ", "))
	return 0, follow(ctx, q, stdout, stderr)
}

// follow prints each batch the poller delivers, the function's raw answer to
// stdout and what became of each message to stderr, until the queue settles:
// nothing left to do but wait out a visibility timeout.
func follow(ctx context.Context, q *devstack.Queue, stdout, stderr io.Writer) error {
	settled := make(chan error, 1)
	go func() { settled <- q.WaitSettled(ctx) }()
	seen := 0
	printBatches := func() {
		batches := q.Batches()
		for _, b := range batches[seen:] {
			writeLine(stdout, b.Result.Body)
			fmt.Fprintf(stderr, "devstack: %s ran a batch of %d in %s:\n", b.Function, len(b.Messages), b.Result.Latency.Round(time.Millisecond))
			for _, m := range b.Messages {
				fmt.Fprintf(stderr, "  %s (receive %d): %s%s\n", m.MessageID, m.ReceiveCount, roundOutcome(b, m.MessageID), functionSaid(b, m.MessageID))
			}
			if b.Err != nil {
				fmt.Fprintf(stderr, "  %v\n", b.Err)
			}
		}
		seen = len(batches)
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-settled:
			if err != nil {
				return err
			}
			printBatches()
			c, err := q.Counts(ctx)
			if err != nil {
				return err
			}
			cfg := q.Config()
			if c.InFlight > 0 {
				fmt.Fprintf(stderr, "devstack: %d message(s) failed and wait out the visibility timeout (%s); after %d receives the queue moves a message to the dead-letter queue. Stopping here.\n",
					c.InFlight, cfg.VisibilityTimeout, cfg.MaxReceiveCount)
			} else {
				fmt.Fprintln(stderr, "devstack: the job queue is empty")
			}
			return nil
		case <-tick.C:
			printBatches()
		}
	}
}

// functionSaid is the function's outcome line for one message, if it wrote one.
func functionSaid(b devstack.Batch, id string) string {
	for _, l := range b.Result.Logs {
		if l.String("messageId") == id && l.String("outcome") != "" {
			if e := l.String("error"); e != "" {
				return fmt.Sprintf("; the function: %s (%s)", l.String("outcome"), e)
			}
			return "; the function: " + l.String("outcome")
		}
	}
	return ""
}
