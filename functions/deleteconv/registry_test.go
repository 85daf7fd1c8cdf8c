package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/zim-deleteconv/zim-deleteconv/internal/config"
	"github.com/zim-deleteconv/zim-deleteconv/internal/testutil"
	"github.com/zim-deleteconv/zim-deleteconv/pkg/zim/zimtest"
)

// TestWiringRegistry: with ZEGO_STATE_TABLE, main builds the job registry on
// that table (moto's DynamoDB, through AWS_ENDPOINT_URL_DYNAMODB), keyed by
// the secret's AppId: a job's status answers after it. Without it, the status
// request says the table is needed.
func TestWiringRegistry(t *testing.T) {
	moto, _, create := motoForFunction(t)
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", moto.URL)
	create("zim/registry", `{"AppId": 1234567890, "ServerSecret": "`+testSecret+`"}`)
	awsCfg, err := moto.AWSConfig(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	_, err = dynamodb.NewFromConfig(awsCfg).CreateTable(t.Context(), &dynamodb.CreateTableInput{
		TableName: aws.String("zim-state"), BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("PK"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("PK"), KeyType: types.KeyTypeHash}},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := zimtest.NewServer(zimtest.WithApp(testAppID, testSecret))
	t.Cleanup(srv.Close)
	srv.Seed(testAppID, "alice", peer("bob"), peer("carol"))
	logs := &testutil.Buffer{}
	call := func(table, payload string) ([]byte, error) {
		cfg, err := config.Load(func(k string) string {
			return map[string]string{"ZEGO_SECRET_ID": "zim/registry", "ZEGO_API_URL": srv.URL, "ZEGO_STATE_TABLE": table}[k]
		})
		if err != nil {
			t.Fatal(err)
		}
		h := build(t.Context(), cfg, nil, slog.New(slog.NewJSONHandler(logs, nil)), logs)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		return h.Invoke(ctx, []byte(payload))
	}

	out, err := call("zim-state", `{"FromUserId":"alice","AllConversations":true}`)
	var job struct{ JobId, Outcome string }
	if err != nil || json.Unmarshal(out, &job) != nil || job.Outcome != "deleted" {
		t.Fatalf("job: %s, %v", out, err)
	}
	out, err = call("zim-state", `{"FromUserId":"alice","JobStatus":true}`)
	var st struct {
		JobId, State string
		Deleted      int
	}
	if err != nil || json.Unmarshal(out, &st) != nil || st.JobId != job.JobId || st.State != "complete" || st.Deleted != 2 {
		t.Fatalf("status: %s, %v", out, err)
	}
	_, err = call("", `{"JobId":"`+job.JobId+`"}`)
	if ie, ok := err.(messages.InvokeResponse_Error); !ok || ie.Type != "NotFound" {
		t.Fatalf("without the table: %v", err)
	}
}
