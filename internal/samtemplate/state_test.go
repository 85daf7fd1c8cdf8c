package samtemplate

import (
	"fmt"
	"slices"
	"testing"
)

// TestStateTable checks the table the shared rate budget and the job registry live in (issue 17, the shared
// design): one string partition key PK and no sort key or index, on demand, encrypted, point-in-time recovery,
// items expiring through ExpiresAt, and disposable state that goes with the stack.
func TestStateTable(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, c modeCase, s *stack) {
		id := stateTable(t, s)
		table := s.Resources[id]
		p := table.Properties
		if p["BillingMode"] != "PAY_PER_REQUEST" {
			t.Errorf("%s: BillingMode %v, want PAY_PER_REQUEST (its load follows ZEGO's 20/s; no capacity to plan)", id, p["BillingMode"])
		}
		if sse := asMap(p["SSESpecification"]); sse["SSEEnabled"] != true {
			t.Errorf("%s: SSESpecification %v, want SSEEnabled true", id, p["SSESpecification"])
		}
		if got := fmt.Sprint(p["KeySchema"]); got != "[map[AttributeName:PK KeyType:HASH]]" {
			t.Errorf("%s: KeySchema %s, want the partition key PK only (the items are budget, user#…, job#…)", id, got)
		}
		if got := fmt.Sprint(p["AttributeDefinitions"]); got != "[map[AttributeName:PK AttributeType:S]]" {
			t.Errorf("%s: AttributeDefinitions %s, want PK of type S only", id, got)
		}
		for _, prop := range []string{"GlobalSecondaryIndexes", "LocalSecondaryIndexes", "StreamSpecification"} {
			if v, ok := p[prop]; ok {
				t.Errorf("%s: %s %v: the functions read and write single items by key only", id, prop, v)
			}
		}
		// ExpiresAt (Unix seconds) ends a job's status after 30 days and the registry's stale pointers.
		if ttl := asMap(p["TimeToLiveSpecification"]); ttl["AttributeName"] != "ExpiresAt" || ttl["Enabled"] != true {
			t.Errorf("%s: TimeToLiveSpecification %v, want ExpiresAt enabled", id, p["TimeToLiveSpecification"])
		}
		if pitr := asMap(p["PointInTimeRecoverySpecification"]); pitr["PointInTimeRecoveryEnabled"] != true {
			t.Errorf("%s: PointInTimeRecoverySpecification %v, want enabled", id, p["PointInTimeRecoverySpecification"])
		}
		// The state is disposable (the budget rebuilds itself; a job's status is kept 30 days at most).
		for what, policy := range map[string]string{"DeletionPolicy": table.DeletionPolicy, "UpdateReplacePolicy": table.UpdateReplacePolicy} {
			if policy != "Delete" {
				t.Errorf("%s: %s %q, want Delete: the table's state is disposable and goes with the stack", id, what, policy)
			}
		}
		if s.Outputs["StateTableName"] != "{Ref:"+id+"}" {
			t.Errorf("output StateTableName %v, want the table's name {Ref:%s}", s.Outputs["StateTableName"], id)
		}
	})
}

// stateTable returns the logical id of the stack's one DynamoDB table.
func stateTable(t *testing.T, s *stack) string {
	t.Helper()
	ids := s.ofType("AWS::DynamoDB::Table")
	if len(ids) != 1 {
		t.Fatalf("DynamoDB tables %v, want one: the state table both functions share", ids)
	}
	return ids[0]
}

// deadLetterQueue returns the logical id of the job queue's dead-letter queue.
func deadLetterQueue(t *testing.T, s *stack) string {
	t.Helper()
	redrive := asMap(s.Resources[consumedQueue(t, s)].Properties["RedrivePolicy"])
	return getAttOf(t, s, "RedrivePolicy.deadLetterTargetArn", redrive["deadLetterTargetArn"], "AWS::SQS::Queue", "Arn")
}

// failedInvocationsQueue returns the logical id of the queue every EventInvokeConfig sends failed asynchronous
// invokes to (TestAsyncFailureDestination checks that there is one per function and qualifier).
func failedInvocationsQueue(t *testing.T, s *stack) string {
	t.Helper()
	var ids []string
	for _, id := range s.ofType("AWS::Lambda::EventInvokeConfig") {
		dest := asMap(asMap(asMap(s.Resources[id].Properties["DestinationConfig"])["OnFailure"]))["Destination"]
		ids = append(ids, getAttOf(t, s, id+" OnFailure.Destination", dest, "AWS::SQS::Queue", "Arn"))
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if len(ids) != 1 {
		t.Fatalf("the functions' on-failure destinations are %v, want one queue", ids)
	}
	return ids[0]
}
