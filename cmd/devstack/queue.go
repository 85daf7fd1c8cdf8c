package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/zim-deleteconv/zim-deleteconv/internal/local/devstack"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim/zimtest"
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
	if err := admin.ResetRequests(ctx); err != nil {
		return false, err
	}
	cfg := q.Config()
	body := fmt.Sprintf(`{"FromUserId": %q, "AllConversations": true}`, user)
	fmt.Fprintf(w, "\nA job through the local queue: %d conversations of %s, one message %s\n", n, user, body)
	rateText := fmt.Sprintf("the shared budget of %d/s in table %s", s.RateBudget(), s.StateTableName())
	if s.StateTableName() == "" {
		rateText = fmt.Sprintf("ZEGO_RATE_LIMIT %g each", cfg.Function.RateLimit)
	}
	fmt.Fprintf(w, "(queue %s: visibility timeout %s, maxReceiveCount %d; queue function: %d instances, %s timeout, %s)\n",
		q.Name, cfg.VisibilityTimeout, cfg.MaxReceiveCount, cfg.Instances, cfg.Function.Timeout, rateText)
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
			took := time.Since(start)
			ok, err := jobSummary(ctx, w, q, n, left, rounds, took)
			if err != nil {
				return false, err
			}
			reqs, err := admin.Requests(ctx)
			if err != nil {
				return false, err
			}
			fmt.Fprintln(w, jobRate(reqs, user, s.RateBudget()))
			return ok, nil
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

// jobRate is the job's rate line: its deletions per second at the ZIM server
// from the first deletion to the last (the set-up and the queue's first
// delivery left out), as a share of ZEGO's 20/s, and the most calls of the
// app in any one-second window.
func jobRate(reqs []zimtest.Request, user string, budget int) string {
	var deletions, calls []time.Time
	for _, r := range reqs {
		calls = append(calls, r.Time)
		if r.Action == "DeleteConv" && r.FromUserID == user && r.Code == 0 && r.HTTPStatus == http.StatusOK {
			deletions = append(deletions, r.Time)
		}
	}
	if len(deletions) < 2 {
		return fmt.Sprintf("     job rate: %d deletion(s), too few for a rate", len(deletions))
	}
	slices.SortFunc(deletions, time.Time.Compare)
	span := deletions[len(deletions)-1].Sub(deletions[0])
	rate := float64(len(deletions)-1) / span.Seconds()
	return fmt.Sprintf("     job rate: %.1f deletions/s from the first deletion to the last (%s), %.0f%% of ZEGO's 20/s (budget %d/s); most ZEGO calls in one second: %d",
		rate, span.Round(100*time.Millisecond), 100*rate/20, budget, maxPerSecond(calls))
}

// maxPerSecond is the most times in any one-second window (t-1s, t], the
// window ZEGO counts its limit over.
func maxPerSecond(times []time.Time) int {
	slices.SortFunc(times, time.Time.Compare)
	most, first := 0, 0
	for i, t := range times {
		for !times[first].After(t.Add(-time.Second)) {
			first++
		}
		most = max(most, i-first+1)
	}
	return most
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
