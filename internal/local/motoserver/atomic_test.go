package motoserver_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/zim-deleteconv/zim-deleteconv/internal/local/motoserver"
)

// TestConditionalWritesAreAtomic: the server runs moto through atomic.py,
// and of many concurrent conditional updates of one item exactly one
// succeeds, as in DynamoDB (plain moto checks and writes without a lock, so
// now and then it lets two through).
func TestConditionalWritesAreAtomic(t *testing.T) {
	t.Parallel()
	srv := motoserver.StartT(t)
	if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", srv.PID())); err == nil && !strings.Contains(string(cmdline), "motoserver-atomic-") {
		t.Fatalf("moto runs as %q, not through atomic.py", strings.ReplaceAll(string(cmdline), "\x00", " "))
	}
	cfg, err := srv.AWSConfig(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	db := dynamodb.NewFromConfig(cfg)
	table := aws.String("atomic")
	_, err = db.CreateTable(t.Context(), &dynamodb.CreateTableInput{
		TableName:            table,
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("PK"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("PK"), KeyType: types.KeyTypeHash}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for round := range 5 {
		key := map[string]types.AttributeValue{"PK": &types.AttributeValueMemberS{Value: fmt.Sprint("k", round)}}
		if _, err := db.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: table,
			Item: map[string]types.AttributeValue{"PK": key["PK"], "N": &types.AttributeValueMemberN{Value: "0"}}}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		won, refused := 0, 0
		for range 12 {
			wg.Go(func() {
				_, err := db.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
					TableName:                 table,
					Key:                       key,
					UpdateExpression:          aws.String("SET N = :one"),
					ConditionExpression:       aws.String("N = :zero"),
					ExpressionAttributeValues: map[string]types.AttributeValue{":zero": &types.AttributeValueMemberN{Value: "0"}, ":one": &types.AttributeValueMemberN{Value: "1"}},
				})
				var ccf *types.ConditionalCheckFailedException
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					won++
				case errors.As(err, &ccf):
					refused++
				default:
					t.Errorf("UpdateItem: %v", err)
				}
			})
		}
		wg.Wait()
		if won != 1 || refused != 11 {
			t.Fatalf("round %d: %d writes succeeded and %d were refused, want 1 and 11", round, won, refused)
		}
	}
}
