package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/zim-deleteconv/zim-deleteconv/internal/config"
	"github.com/zim-deleteconv/zim-deleteconv/internal/handler"
	"github.com/zim-deleteconv/zim-deleteconv/internal/testutil"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim/zimtest"
)

// TestWiringRateBudgetThroughDynamoDB builds the handler as main does, with
// ZEGO_STATE_TABLE and AWS_ENDPOINT_URL_DYNAMODB pointing at moto: calls take
// their slots from the table's budget item; without the variable they do
// not touch it; with a table that cannot be used, an instance with a floor
// still deletes and one without answers throttled (HTTP 429, Retry-After),
// and the failures are counted.
func TestWiringRateBudgetThroughDynamoDB(t *testing.T) {
	moto, _, create := motoForFunction(t)
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", moto.URL)
	create("zim/good", `{"AppId": 1234567890, "ServerSecret": "`+testSecret+`"}`)
	awsCfg, err := moto.AWSConfig(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	db := dynamodb.NewFromConfig(awsCfg)
	if _, err := db.CreateTable(t.Context(), &dynamodb.CreateTableInput{
		TableName:            aws.String("zim-deleteconv-state"),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("PK"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("PK"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	}); err != nil {
		t.Fatal(err)
	}
	tat := func() string {
		t.Helper()
		out, err := db.GetItem(t.Context(), &dynamodb.GetItemInput{TableName: aws.String("zim-deleteconv-state"),
			Key: map[string]types.AttributeValue{"PK": &types.AttributeValueMemberS{Value: "budget"}}, ConsistentRead: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		if n, ok := out.Item["Tat"].(*types.AttributeValueMemberN); ok {
			return n.Value
		}
		return ""
	}

	srv := zimtest.NewServer(zimtest.WithApp(testAppID, testSecret))
	t.Cleanup(srv.Close)
	srv.Seed(testAppID, "alice", peer("b1"), peer("b2"), peer("b3"), peer("b4"), peer("b5"), peer("b6"))
	logs := &testutil.Buffer{}
	newHandler := func(env map[string]string) *handler.Handler {
		t.Helper()
		env["ZEGO_SECRET_ID"], env["ZEGO_API_URL"] = "zim/good", srv.URL
		cfg, err := config.Load(func(k string) string { return env[k] })
		if err != nil {
			t.Fatal(err)
		}
		return build(t.Context(), cfg, nil, slog.New(slog.NewJSONHandler(logs, nil)), logs)
	}
	call := func(h *handler.Handler, payload []byte) ([]byte, error) {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		return h.Invoke(ctx, payload)
	}
	queueEnv := func(table string) map[string]string {
		return map[string]string{"ZEGO_STATE_TABLE": table, "ZEGO_RATE_BUDGET": "20", "ZEGO_RATE_FLOOR": "0", "ZEGO_RATE_FLOOR_TOTAL": "2"}
	}

	// The shared budget: both calls book slots in the table.
	shared := newHandler(queueEnv("zim-deleteconv-state"))
	if _, err := call(shared, []byte(body("alice", "b1", 0))); err != nil {
		t.Fatalf("direct: %v", err)
	}
	first := tat()
	if first == "" {
		t.Fatal("no Tat in the budget item after a call: the budget was not used")
	}
	out, err := call(shared, sqsEvent(t, sqsRecord{id: "m-1", body: body("alice", "b2", 0)}))
	if got := decodeSQS(t, out, err); len(got) != 0 {
		t.Fatalf("SQS: batchItemFailures = %v", got)
	}
	if tat() == first {
		t.Error("the SQS record's call did not book a slot")
	}

	// Without ZEGO_STATE_TABLE: the static rate, the table untouched.
	before := tat()
	if _, err := call(newHandler(map[string]string{"ZEGO_RATE_LIMIT": "5"}), []byte(body("alice", "b3", 0))); err != nil {
		t.Fatalf("static rate: %v", err)
	}
	if tat() != before {
		t.Error("a handler without ZEGO_STATE_TABLE wrote to the budget item")
	}

	// A table that cannot be used (it does not exist).
	missing := queueEnv("zim-deleteconv-missing")
	noFloor := newHandler(missing)
	_, err = call(noFloor, []byte(body("alice", "b4", 0)))
	if ie := functionError(t, err); ie.Type != "Throttled" {
		t.Errorf("no floor, direct: %+v, want Throttled", ie)
	}
	out, err = call(noFloor, httpAPIEvent(t, httpEvent{method: "POST", path: "/conversations/delete", body: body("alice", "b4", 0)}))
	var r events.APIGatewayV2HTTPResponse
	if err != nil || json.Unmarshal(out, &r) != nil || r.StatusCode != 429 || r.Headers["Retry-After"] == "" {
		t.Errorf("no floor, HTTP: %d %v, %v; want 429 with Retry-After", r.StatusCode, r.Headers, err)
	}
	missing["ZEGO_RATE_FLOOR"] = "1"
	if _, err := call(newHandler(missing), []byte(body("alice", "b5", 0))); err != nil {
		t.Errorf("with a floor: %v, want deleted through the floor", err)
	}

	all := logs.String()
	if !strings.Contains(all, `"BudgetWaitMs":[`) {
		t.Errorf("no BudgetWaitMs metric line:\n%s", all)
	}
	if !strings.Contains(all, `"BudgetTableErrors":1`) {
		t.Errorf("no BudgetTableErrors metric line:\n%s", all)
	}
	if n := strings.Count(all, "rate budget table unavailable"); n != 1 {
		t.Errorf("%d warnings about the table for the no-floor instance's outage, want 1", n)
	}
}
