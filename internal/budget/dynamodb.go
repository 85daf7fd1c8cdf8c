package budget

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// The budget's item in the shared table: PK = "budget", Tat a number.
const (
	itemKey = "budget"
	keyAttr = "PK"
	tatAttr = "Tat"
)

// UpdateItemAPI is what DynamoStore needs of *dynamodb.Client.
type UpdateItemAPI interface {
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
}

var _ UpdateItemAPI = (*dynamodb.Client)(nil)

// DynamoStore keeps Tat in the item PK = "budget" of a DynamoDB table whose
// only key is the string PK (the stack's state table).
type DynamoStore struct {
	db    UpdateItemAPI
	table string
	key   map[string]types.AttributeValue
}

var _ Store = (*DynamoStore)(nil)

// NewDynamoStore keeps the budget in table (a name or ARN) through db.
func NewDynamoStore(db UpdateItemAPI, table string) *DynamoStore {
	return &DynamoStore{db: db, table: table, key: map[string]types.AttributeValue{
		keyAttr: &types.AttributeValueMemberS{Value: itemKey},
	}}
}

// Start sets Tat = tat if attribute_not_exists(Tat) OR Tat < now.
func (s *DynamoStore) Start(ctx context.Context, now, tat int64) (int64, bool, error) {
	name := expression.Name(tatAttr)
	expr, err := expression.NewBuilder().
		WithCondition(name.AttributeNotExists().Or(name.LessThan(expression.Value(now)))).
		WithUpdate(expression.Set(name, expression.Value(tat))).
		Build()
	if err != nil {
		return 0, false, fmt.Errorf("budget: building the start expression: %w", err)
	}
	_, err = s.update(ctx, expr, types.ReturnValueNone)
	if found, ok, cerr := conflict(err); ok {
		return found, false, cerr
	}
	if err != nil {
		return 0, false, err
	}
	return tat, true, nil
}

// Extend sets Tat = Tat + add if Tat >= now AND Tat <= limit.
func (s *DynamoStore) Extend(ctx context.Context, now, limit, add int64) (int64, bool, error) {
	name := expression.Name(tatAttr)
	expr, err := expression.NewBuilder().
		WithCondition(name.GreaterThanEqual(expression.Value(now)).And(name.LessThanEqual(expression.Value(limit)))).
		WithUpdate(expression.Set(name, name.Plus(expression.Value(add)))).
		Build()
	if err != nil {
		return 0, false, fmt.Errorf("budget: building the extend expression: %w", err)
	}
	out, err := s.update(ctx, expr, types.ReturnValueUpdatedNew)
	if found, ok, cerr := conflict(err); ok {
		return found, false, cerr
	}
	if err != nil {
		return 0, false, err
	}
	tat, err := tatOf(out.Attributes)
	if err != nil {
		return 0, false, err
	}
	return tat, true, nil
}

func (s *DynamoStore) update(ctx context.Context, expr expression.Expression, rv types.ReturnValue) (*dynamodb.UpdateItemOutput, error) {
	return s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           aws.String(s.table),
		Key:                                 s.key,
		ConditionExpression:                 expr.Condition(),
		UpdateExpression:                    expr.Update(),
		ExpressionAttributeNames:            expr.Names(),
		ExpressionAttributeValues:           expr.Values(),
		ReturnValues:                        rv,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
}

// conflict reports whether err is the condition failing (ok), and then the
// Tat the item held (0 without one), from the item DynamoDB returned.
func conflict(err error) (found int64, ok bool, _ error) {
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		return 0, false, nil
	}
	found, terr := tatOf(ccf.Item)
	return found, true, terr
}

// tatOf reads Tat from an item; 0 when the item or its Tat is missing.
func tatOf(item map[string]types.AttributeValue) (int64, error) {
	av, ok := item[tatAttr]
	if !ok {
		return 0, nil
	}
	var tat int64
	if err := attributevalue.Unmarshal(av, &tat); err != nil {
		return 0, fmt.Errorf("budget: the item's %s is not a whole number: %w", tatAttr, err)
	}
	return tat, nil
}
