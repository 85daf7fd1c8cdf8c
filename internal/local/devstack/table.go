package devstack

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/zim-deleteconv/zim-deleteconv/internal/local/netem"
)

// TableDefinition is the shared state table as template.yaml declares it
// (logical id StateTable): the parts the local stack reproduces in moto and
// a template test compares with the template.
type TableDefinition struct {
	// LogicalID is the template's logical id of the table.
	LogicalID string
	// Name is the table's name in the local stack (the template lets
	// CloudFormation name it; the functions get it as ZEGO_STATE_TABLE).
	Name string
	// PartitionKey and PartitionKeyType are the only key: no sort key.
	PartitionKey, PartitionKeyType string
	// TTLAttribute holds an item's expiry in Unix seconds (a number).
	TTLAttribute string
	// BillingMode is the table's billing mode.
	BillingMode string
	// SSE reports whether server-side encryption is on.
	SSE bool
}

// StateTable is the shared table's definition: one partition key PK of type
// S, the TTL attribute ExpiresAt, on-demand, encrypted.
func StateTable() TableDefinition {
	return TableDefinition{
		LogicalID:        "StateTable",
		Name:             "zim-deleteconv-state",
		PartitionKey:     "PK",
		PartitionKeyType: "S",
		TTLAttribute:     "ExpiresAt",
		BillingMode:      "PAY_PER_REQUEST",
		SSE:              true,
	}
}

// createTable creates def in client's DynamoDB (moto) and turns on its TTL.
func createTable(ctx context.Context, client *dynamodb.Client, def TableDefinition) error {
	if _, err := client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName: aws.String(def.Name),
		AttributeDefinitions: []types.AttributeDefinition{{
			AttributeName: aws.String(def.PartitionKey), AttributeType: types.ScalarAttributeType(def.PartitionKeyType),
		}},
		KeySchema:        []types.KeySchemaElement{{AttributeName: aws.String(def.PartitionKey), KeyType: types.KeyTypeHash}},
		BillingMode:      types.BillingMode(def.BillingMode),
		SSESpecification: &types.SSESpecification{Enabled: aws.Bool(def.SSE)},
	}); err != nil {
		return fmt.Errorf("devstack: creating the table %s: %w", def.Name, err)
	}
	if _, err := client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName:               aws.String(def.Name),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String(def.TTLAttribute), Enabled: aws.Bool(true)},
	}); err != nil {
		return fmt.Errorf("devstack: the table %s's TTL: %w", def.Name, err)
	}
	return nil
}

// StateTableName is the shared table's name (ZEGO_STATE_TABLE); "" without
// it (Config.NoStateTable, TargetAWS).
func (s *Stack) StateTableName() string { return s.table.Name }

// DynamoDB is a client of moto's DynamoDB, reaching it directly (not
// through the fault proxy); nil without the table.
func (s *Stack) DynamoDB() *dynamodb.Client { return s.ddb }

// FunctionDynamoDBURL is the AWS_ENDPOINT_URL_DYNAMODB the functions get: the
// fault proxy in front of moto's DynamoDB. "" without the table.
func (s *Stack) FunctionDynamoDBURL() string {
	if s.ddbProxy == nil {
		return ""
	}
	return s.ddbProxy.URL()
}

// SetDynamoDBFault switches what every function's DynamoDB calls meet from
// now on: netem.Pass (moto answers), netem.Fail (HTTP 500
// InternalServerError at once), netem.Drop (the connection closes without an
// answer) or netem.Slow (moto answers after 1 s). It fails without the table.
func (s *Stack) SetDynamoDBFault(f netem.Fault) error {
	if s.ddbProxy == nil {
		return errors.New("devstack: the stack has no shared table (Config.NoStateTable or TargetAWS)")
	}
	s.ddbProxy.Set(f)
	return nil
}

// DynamoDBRequests is how many DynamoDB requests the functions have sent
// through the fault proxy since Start, and how many of them it failed,
// dropped or delayed.
func (s *Stack) DynamoDBRequests() (total, faulted int) {
	if s.ddbProxy == nil {
		return 0, 0
	}
	return s.ddbProxy.Requests(), s.ddbProxy.Faulted()
}
