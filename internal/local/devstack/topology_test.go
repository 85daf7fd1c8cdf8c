package devstack_test

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/zim-deleteconv/zim-deleteconv/internal/local/devstack"
	"github.com/zim-deleteconv/zim-deleteconv/internal/local/netem"
)

// budgetVars are the environment variables of the shared budget.
var budgetVars = []string{"ZEGO_STATE_TABLE", "AWS_ENDPOINT_URL_DYNAMODB", "ZEGO_RATE_BUDGET", "ZEGO_RATE_FLOOR", "ZEGO_RATE_FLOOR_TOTAL", "ZEGO_RATE_LIMIT"}

// envOf asks a stand-in function for variables, and GETs the DynamoDB
// endpoint it was given.
func envOf(t *testing.T, f *devstack.Function) (map[string]string, fetched) {
	t.Helper()
	ev, _ := json.Marshal(map[string]any{"env": budgetVars, "get": []string{"AWS_ENDPOINT_URL_DYNAMODB"}})
	res, err := f.Invoke(t.Context(), ev)
	if err != nil || res.FunctionError {
		t.Fatalf("%s: %v %s", f.Name, err, res.Body)
	}
	var e struct {
		Env map[string]string
		Got map[string]fetched
	}
	if err := json.Unmarshal(res.Body, &e); err != nil {
		t.Fatalf("%s: answer %s: %v", f.Name, res.Body, err)
	}
	return e.Env, e.Got["AWS_ENDPOINT_URL_DYNAMODB"]
}

// With a queue the stack runs the template's topology at its defaults: 2 api
// and 2 queue instances, the shared table in moto as the template declares
// it, and every function with the template's budget variables, reaching
// DynamoDB through the fault proxy.
func TestStackAsDeployed(t *testing.T) {
	s, _ := startQueue(t, devstack.QueueConfig{})

	api, queue := s.APIFunctions(), s.QueueFunctions()
	if len(api) != devstack.DefaultAPIInstances || len(queue) != devstack.DefaultQueueInstances {
		t.Fatalf("%d api and %d queue instances, want %d and %d", len(api), len(queue), devstack.DefaultAPIInstances, devstack.DefaultQueueInstances)
	}
	if s.Function() != api[0] || api[0].Name != "api-1" || api[1].Name != "api-2" {
		t.Errorf("api instances %s, %s; Function() %s", api[0].Name, api[1].Name, s.Function().Name)
	}

	def := devstack.StateTable()
	if s.StateTableName() != def.Name || def.PartitionKey != "PK" || def.PartitionKeyType != "S" || def.TTLAttribute != "ExpiresAt" {
		t.Errorf("StateTableName %q, definition %+v", s.StateTableName(), def)
	}
	desc, err := s.DynamoDB().DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(def.Name)})
	if err != nil {
		t.Fatal(err)
	}
	tbl := desc.Table
	if len(tbl.KeySchema) != 1 || aws.ToString(tbl.KeySchema[0].AttributeName) != "PK" || tbl.KeySchema[0].KeyType != types.KeyTypeHash ||
		len(tbl.AttributeDefinitions) != 1 || tbl.AttributeDefinitions[0].AttributeType != types.ScalarAttributeTypeS {
		t.Errorf("key schema %+v, attributes %+v: want PK (S) as the only, hash key", tbl.KeySchema, tbl.AttributeDefinitions)
	}
	if tbl.BillingModeSummary == nil || tbl.BillingModeSummary.BillingMode != types.BillingModePayPerRequest {
		t.Errorf("billing mode %+v, want PAY_PER_REQUEST", tbl.BillingModeSummary)
	}
	ttl, err := s.DynamoDB().DescribeTimeToLive(t.Context(), &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(def.Name)})
	if err != nil {
		t.Fatal(err)
	}
	if d := ttl.TimeToLiveDescription; d == nil || aws.ToString(d.AttributeName) != "ExpiresAt" || d.TimeToLiveStatus != types.TimeToLiveStatusEnabled {
		t.Errorf("TTL %+v, want ExpiresAt enabled", ttl.TimeToLiveDescription)
	}

	for _, f := range slices.Concat(api, queue) {
		env, _ := envOf(t, f)
		floor := "1"
		if slices.Contains(queue, f) {
			floor = "0"
		}
		want := map[string]string{
			"ZEGO_STATE_TABLE":          def.Name,
			"AWS_ENDPOINT_URL_DYNAMODB": s.FunctionDynamoDBURL(),
			"ZEGO_RATE_BUDGET":          strconv.Itoa(devstack.DefaultRateBudget),
			"ZEGO_RATE_FLOOR":           floor,
			"ZEGO_RATE_FLOOR_TOTAL":     strconv.Itoa(devstack.DefaultAPIInstances),
			"ZEGO_RATE_LIMIT":           "",
		}
		for k, v := range want {
			if env[k] != v {
				t.Errorf("%s: %s=%q, want %q", f.Name, k, env[k], v)
			}
		}
	}
}

// SetDynamoDBFault switches what the functions' DynamoDB calls meet.
func TestStackDynamoDBFault(t *testing.T) {
	s := startStandIns(t, devstack.FunctionConfig{})
	for _, tt := range []struct {
		fault   netem.Fault
		status  int
		dropped bool
	}{
		{fault: netem.Fail, status: 500},
		{fault: netem.Drop, dropped: true},
		{fault: netem.Pass}, // moto's own answer to a GET, whatever it is
	} {
		if err := s.SetDynamoDBFault(tt.fault); err != nil {
			t.Fatal(err)
		}
		env, got := envOf(t, s.Function())
		if env["AWS_ENDPOINT_URL_DYNAMODB"] != s.FunctionDynamoDBURL() || s.FunctionDynamoDBURL() == "" {
			t.Fatalf("AWS_ENDPOINT_URL_DYNAMODB=%q, want the fault proxy %q", env["AWS_ENDPOINT_URL_DYNAMODB"], s.FunctionDynamoDBURL())
		}
		switch {
		case tt.dropped && got.Error == "":
			t.Errorf("%v: %+v, want the connection dropped", tt.fault, got)
		case tt.status != 0 && got.Status != tt.status:
			t.Errorf("%v: %+v, want HTTP %d", tt.fault, got, tt.status)
		case tt.fault == netem.Pass && (got.Status == 0 || got.Status == 500):
			t.Errorf("%v: %+v, want moto's answer", tt.fault, got)
		}
	}
	// A client may send a dropped request again; only the last one passed.
	if total, faulted := s.DynamoDBRequests(); total-faulted != 1 || faulted < 2 {
		t.Errorf("DynamoDBRequests = %d, %d faulted, want one passed and at least 2 faulted", total, faulted)
	}
}

// Without the table, the functions run at the static split: no table
// variable, ZEGO_RATE_LIMIT per instance.
func TestStackWithoutStateTable(t *testing.T) {
	root, fn, zim := standIns(t)
	s, err := devstack.Start(t.Context(), devstack.Config{Root: root, Bootstrap: fn, ZIMServer: zim, LogDir: t.TempDir(),
		NoStateTable: true, Queue: &devstack.QueueConfig{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if s.StateTableName() != "" || s.SetDynamoDBFault(netem.Fail) == nil {
		t.Errorf("StateTableName %q, SetDynamoDBFault accepted: want no table", s.StateTableName())
	}
	rates := map[string]string{}
	for _, f := range slices.Concat(s.APIFunctions(), s.QueueFunctions()) {
		env, _ := envOf(t, f)
		if env["ZEGO_STATE_TABLE"] != "" {
			t.Errorf("%s: ZEGO_STATE_TABLE=%q, want none", f.Name, env["ZEGO_STATE_TABLE"])
		}
		rates[f.Name] = env["ZEGO_RATE_LIMIT"]
	}
	want := map[string]string{"api-1": "2", "api-2": "2", "queue-1": "8", "queue-2": "8"}
	if !maps.Equal(rates, want) {
		t.Errorf("ZEGO_RATE_LIMIT per instance %v, want %v", rates, want)
	}
}
