package registry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// DynamoDBAPI is what DynamoDB needs of the SDK's client (*dynamodb.Client).
type DynamoDBAPI interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
}

// DynamoDB is the Store in the stack's shared table (partition key PK, a
// string; TTL attribute ExpiresAt).
type DynamoDB struct {
	api   DynamoDBAPI
	table string
}

var _ Store = (*DynamoDB)(nil)

// NewDynamoDB stores in table through api.
func NewDynamoDB(api DynamoDBAPI, table string) *DynamoDB { return &DynamoDB{api: api, table: table} }

// Attribute names of the items.
const (
	attrPK         = "PK"
	attrJobID      = "JobId"
	attrFromUserID = "FromUserId"
	attrRound      = "Round"
	attrActiveAt   = "ActiveAt"
	attrLeaseUntil = "LeaseUntil"
	attrEnded      = "Ended"
	attrState      = "State"
	attrExpiresAt  = "ExpiresAt"
)

// ownerItem is the user item. Times are Unix milliseconds (numbers, which
// conditions compare); ExpiresAt is Unix seconds, as DynamoDB's TTL reads it.
type ownerItem struct {
	PK         string `dynamodbav:"PK"`
	JobID      string `dynamodbav:"JobId"`
	FromUserID string `dynamodbav:"FromUserId"`
	Round      int    `dynamodbav:"Round"`
	ActiveAt   int64  `dynamodbav:"ActiveAt"`
	LeaseUntil int64  `dynamodbav:"LeaseUntil"`
	Ended      int    `dynamodbav:"Ended"`
	State      State  `dynamodbav:"State"`
	ExpiresAt  int64  `dynamodbav:"ExpiresAt"`
}

func toItem(o Owner) ownerItem {
	return ownerItem{PK: o.Key, JobID: o.JobID, FromUserID: o.FromUserID, Round: o.Round, ActiveAt: o.ActiveAt.UnixMilli(),
		LeaseUntil: o.LeaseUntil.UnixMilli(), Ended: o.Ended, State: o.State, ExpiresAt: o.ExpiresAt.Unix()}
}

func fromItem(it ownerItem) Owner {
	return Owner{Key: it.PK, JobID: it.JobID, FromUserID: it.FromUserID, Round: it.Round, ActiveAt: time.UnixMilli(it.ActiveAt).UTC(),
		LeaseUntil: time.UnixMilli(it.LeaseUntil).UTC(), Ended: it.Ended, State: it.State, ExpiresAt: time.Unix(it.ExpiresAt, 0).UTC()}
}

// statusItem is the job item: the status body's fields under their JSON
// names, beside PK and ExpiresAt.
type statusItem struct {
	Status
	PK        string `json:"PK"`
	ExpiresAt int64  `json:"ExpiresAt"`
}

func jsonNames(o *attributevalue.EncoderOptions) { o.TagKey = "json" }
func jsonNamesDecode(o *attributevalue.DecoderOptions) {
	o.TagKey = "json"
}

func key(pk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: &types.AttributeValueMemberS{Value: pk}}
}

func ms(t time.Time) expression.ValueBuilder { return expression.Value(t.UnixMilli()) }

// conditionFailed reports whether err is a failed condition, and decodes the
// item it carries (ReturnValuesOnConditionCheckFailure ALL_OLD) into cur.
func conditionFailed(err error, cur *Owner) (bool, error) {
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		return false, nil
	}
	if len(ccf.Item) > 0 {
		var it ownerItem
		if err := attributevalue.UnmarshalMap(ccf.Item, &it); err != nil {
			return true, fmt.Errorf("registry: decoding the current owner item: %w", err)
		}
		*cur = fromItem(it)
	}
	return true, nil
}

// Claim implements Store with one conditional PutItem.
func (d *DynamoDB) Claim(ctx context.Context, o Owner, now, staleBefore time.Time) (Owner, error) {
	item, err := attributevalue.MarshalMap(toItem(o))
	if err != nil {
		return Owner{}, err
	}
	cond := expression.Or(
		expression.AttributeNotExists(expression.Name(attrPK)),
		expression.And(
			expression.Name(attrJobID).NotEqual(expression.Value(o.JobID)),
			expression.Or(
				expression.Name(attrState).NotEqual(expression.Value(Running)),
				expression.And(
					expression.Name(attrActiveAt).LessThan(ms(staleBefore)),
					expression.Name(attrLeaseUntil).LessThan(ms(now)),
				),
			),
		),
	)
	expr, err := expression.NewBuilder().WithCondition(cond).Build()
	if err != nil {
		return Owner{}, err
	}
	out, err := d.api.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(d.table), Item: item,
		ConditionExpression: expr.Condition(), ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
		ReturnValues:                        types.ReturnValueAllOld,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var cur Owner
	if failed, derr := conditionFailed(err, &cur); failed {
		if derr != nil {
			return Owner{}, derr
		}
		return cur, ErrOwned
	}
	if err != nil {
		return Owner{}, err
	}
	var prev Owner
	if len(out.Attributes) > 0 {
		var it ownerItem
		if err := attributevalue.UnmarshalMap(out.Attributes, &it); err != nil {
			return Owner{}, err
		}
		prev = fromItem(it)
	}
	return prev, nil
}

// Advance implements Store with one conditional UpdateItem.
func (d *DynamoDB) Advance(ctx context.Context, o Owner, now time.Time) (Owner, error) {
	upd := expression.Set(expression.Name(attrJobID), expression.Value(o.JobID)).
		Set(expression.Name(attrFromUserID), expression.Value(o.FromUserID)).
		Set(expression.Name(attrRound), expression.Value(o.Round)).
		Set(expression.Name(attrActiveAt), ms(o.ActiveAt)).
		Set(expression.Name(attrLeaseUntil), ms(o.LeaseUntil)).
		Set(expression.Name(attrState), expression.Value(Running)).
		Set(expression.Name(attrExpiresAt), expression.Value(o.ExpiresAt.Unix())).
		Set(expression.Name(attrEnded), expression.IfNotExists(expression.Name(attrEnded), expression.Value(o.Round-1)))
	round := expression.Name(attrRound)
	cond := expression.Or(
		expression.AttributeNotExists(expression.Name(attrPK)),
		expression.And(
			expression.Name(attrJobID).Equal(expression.Value(o.JobID)),
			expression.Name(attrState).Equal(expression.Value(Running)),
			expression.Or(
				expression.And(
					round.Equal(expression.Value(o.Round-1)),
					expression.Or(
						expression.Name(attrEnded).Equal(expression.Value(o.Round-1)),
						expression.Name(attrLeaseUntil).LessThan(ms(now)),
					),
				),
				expression.And(
					round.Equal(expression.Value(o.Round)),
					expression.Name(attrLeaseUntil).LessThan(ms(now)),
					expression.Name(attrEnded).LessThan(expression.Value(o.Round)),
				),
			),
		),
	)
	expr, err := expression.NewBuilder().WithUpdate(upd).WithCondition(cond).Build()
	if err != nil {
		return Owner{}, err
	}
	out, err := d.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(d.table), Key: key(o.Key),
		UpdateExpression: expr.Update(), ConditionExpression: expr.Condition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var cur Owner
	if failed, derr := conditionFailed(err, &cur); failed {
		if derr != nil {
			return Owner{}, derr
		}
		return cur, ErrConflict
	}
	if err != nil {
		return Owner{}, err
	}
	var it ownerItem
	if err := attributevalue.UnmarshalMap(out.Attributes, &it); err != nil {
		return Owner{}, err
	}
	return fromItem(it), nil
}

// End implements Store with one conditional UpdateItem.
func (d *DynamoDB) End(ctx context.Context, o Owner) error {
	upd := expression.Set(expression.Name(attrEnded), expression.Value(o.Round)).
		Set(expression.Name(attrActiveAt), ms(o.ActiveAt)).
		Set(expression.Name(attrState), expression.Value(o.State)).
		Set(expression.Name(attrExpiresAt), expression.Value(o.ExpiresAt.Unix()))
	cond := expression.And(
		expression.Name(attrJobID).Equal(expression.Value(o.JobID)),
		expression.Name(attrRound).Equal(expression.Value(o.Round)),
	)
	return d.updateIf(ctx, o.Key, upd, cond)
}

// Reopen implements Store with one conditional UpdateItem.
func (d *DynamoDB) Reopen(ctx context.Context, o Owner) error {
	upd := expression.Set(expression.Name(attrEnded), expression.Value(o.Round-1))
	cond := expression.And(
		expression.Name(attrJobID).Equal(expression.Value(o.JobID)),
		expression.Name(attrRound).Equal(expression.Value(o.Round)),
		expression.Name(attrEnded).Equal(expression.Value(o.Round)),
	)
	return d.updateIf(ctx, o.Key, upd, cond)
}

// updateIf applies upd to the item k if cond holds; ErrConflict if not.
func (d *DynamoDB) updateIf(ctx context.Context, k string, upd expression.UpdateBuilder, cond expression.ConditionBuilder) error {
	expr, err := expression.NewBuilder().WithUpdate(upd).WithCondition(cond).Build()
	if err != nil {
		return err
	}
	_, err = d.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(d.table), Key: key(k),
		UpdateExpression: expr.Update(), ConditionExpression: expr.Condition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return ErrConflict
	}
	return err
}

// Owner implements Store with a consistent GetItem.
func (d *DynamoDB) Owner(ctx context.Context, k string) (Owner, error) {
	out, err := d.api.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(d.table), Key: key(k), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return Owner{}, err
	}
	if len(out.Item) == 0 {
		return Owner{}, ErrNotFound
	}
	var it ownerItem
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil {
		return Owner{}, err
	}
	return fromItem(it), nil
}

// PutStatus implements Store with a PutItem.
func (d *DynamoDB) PutStatus(ctx context.Context, s Status, expires time.Time) error {
	item, err := attributevalue.MarshalMapWithOptions(statusItem{Status: s, PK: jobKey(s.JobID), ExpiresAt: expires.Unix()}, jsonNames)
	if err != nil {
		return err
	}
	_, err = d.api.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(d.table), Item: item})
	return err
}

// AddStatus implements Store with one UpdateItem: ADD for the counts, SET
// (or REMOVE, for an empty optional field) for the rest.
func (d *DynamoDB) AddStatus(ctx context.Context, s Status, expires time.Time) (Status, error) {
	name := expression.Name
	upd := expression.Add(name("Deleted"), expression.Value(s.Deleted)).
		Add(name("AlreadyDeleted"), expression.Value(s.AlreadyDeleted)).
		Set(name("JobId"), expression.Value(s.JobID)).
		Set(name("FromUserId"), expression.Value(s.FromUserID)).
		Set(name("State"), expression.Value(s.State)).
		Set(name("Failed"), expression.Value(s.Failed)).
		Set(name("Left"), expression.Value(s.Left)).
		Set(name("Rounds"), expression.Value(s.Rounds)).
		Set(name("StartedAt"), expression.Value(s.StartedAt)).
		Set(name("UpdatedAt"), expression.Value(s.UpdatedAt)).
		Set(name(attrExpiresAt), expression.Value(expires.Unix()))
	if s.CompletedAt != nil {
		upd = upd.Set(name("CompletedAt"), expression.Value(*s.CompletedAt))
	} else {
		upd = upd.Remove(name("CompletedAt"))
	}
	if s.Outcome != "" {
		upd = upd.Set(name("Outcome"), expression.Value(s.Outcome))
	} else {
		upd = upd.Remove(name("Outcome"))
	}
	if len(s.FailedConvIDs) > 0 {
		upd = upd.Set(name("FailedConvIds"), expression.Value(s.FailedConvIDs))
	} else {
		upd = upd.Remove(name("FailedConvIds"))
	}
	expr, err := expression.NewBuilder().WithUpdate(upd).Build()
	if err != nil {
		return Status{}, err
	}
	out, err := d.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(d.table), Key: key(jobKey(s.JobID)),
		UpdateExpression: expr.Update(), ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
		ReturnValues: types.ReturnValueAllNew,
	})
	if err != nil {
		return Status{}, err
	}
	var it statusItem
	if err := attributevalue.UnmarshalMapWithOptions(out.Attributes, &it, jsonNamesDecode); err != nil {
		return Status{}, err
	}
	return it.Status, nil
}

// Status implements Store with a consistent GetItem.
func (d *DynamoDB) Status(ctx context.Context, jobID string) (Status, error) {
	out, err := d.api.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(d.table), Key: key(jobKey(jobID)), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return Status{}, err
	}
	if len(out.Item) == 0 {
		return Status{}, ErrNotFound
	}
	var it statusItem
	if err := attributevalue.UnmarshalMapWithOptions(out.Item, &it, jsonNamesDecode); err != nil {
		return Status{}, err
	}
	return it.Status, nil
}

func jobKey(jobID string) string { return "job#" + jobID }
