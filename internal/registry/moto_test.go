package registry

import (
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/zim-deleteconv/zim-deleteconv/internal/local/motoserver"
	"github.com/zim-deleteconv/zim-deleteconv/internal/testenv"
)

var tableSeq atomic.Int64

// motoTable starts a moto_server and creates a table with the template's
// key schema (partition key PK, a string) and TTL attribute.
func motoTable(t *testing.T, srv *motoserver.Server) (*dynamodb.Client, string) {
	t.Helper()
	cfg, err := srv.AWSConfig(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	c := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 })
	name := fmt.Sprintf("state-%d", tableSeq.Add(1))
	_, err = c.CreateTable(t.Context(), &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("PK"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("PK"), KeyType: types.KeyTypeHash}},
	})
	if err != nil {
		t.Fatalf("CreateTable: %v", err)
	}
	_, err = c.UpdateTimeToLive(t.Context(), &dynamodb.UpdateTimeToLiveInput{TableName: aws.String(name),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String("ExpiresAt"), Enabled: aws.Bool(true)}})
	if err != nil {
		t.Fatalf("UpdateTimeToLive: %v", err)
	}
	return c, name
}

// TestDynamoDBStore runs the store's conditions against moto's DynamoDB, and
// checks what only the real table shows: the TTL attribute, and that
// concurrent claims leave one owner.
func TestDynamoDBStore(t *testing.T) {
	testenv.Require(testenv.MotoServer)
	t.Parallel()
	srv := motoserver.StartT(t)
	testStore(t, func(t *testing.T) Store {
		c, table := motoTable(t, srv)
		return NewDynamoDB(c, table)
	})

	t.Run("TTL", func(t *testing.T) {
		t.Parallel()
		c, table := motoTable(t, srv)
		now := time.Now()
		reg := New(NewDynamoDB(c, table), WithClock(func() time.Time { return now }))
		rd := Round{AppID: 7, FromUserID: "alice", JobID: "0123456789abcdef0123456789abcdef", Round: 1, StartedAt: now}
		if d, err := reg.Begin(t.Context(), rd); err != nil || !d.Run {
			t.Fatalf("Begin: %+v, %v", d, err)
		}
		want := strconv.FormatInt(now.Add(30*24*time.Hour).Unix(), 10)
		for _, pk := range []string{"user#7#alice", "job#" + rd.JobID} {
			out, err := c.GetItem(t.Context(), &dynamodb.GetItemInput{TableName: aws.String(table), Key: key(pk)})
			if err != nil {
				t.Fatal(err)
			}
			n, ok := out.Item["ExpiresAt"].(*types.AttributeValueMemberN)
			if !ok || n.Value != want {
				t.Errorf("%s: ExpiresAt = %#v, want the number %s (now + 30 days, Unix seconds)", pk, out.Item["ExpiresAt"], want)
			}
		}
	})

	// Copies one after another: moto 5.2's DynamoDB checks a condition and
	// writes without a lock, so 2 or 3 of 8 concurrent conditional
	// UpdateItems can pass there, where DynamoDB lets one through. Concurrent
	// callers are tested against Memory (TestNeverTwoOwners).
	t.Run("one owner among repeated claims and rounds", func(t *testing.T) {
		t.Parallel()
		c, table := motoTable(t, srv)
		s := NewDynamoDB(c, table)
		now := time.Now()
		var claims, rounds atomic.Int64
		for i := range 8 {
			func() {
				o := Owner{Key: "user#1#bob", JobID: fmt.Sprintf("job-%d", i), FromUserID: "bob", Round: 1, ActiveAt: now,
					LeaseUntil: now.Add(time.Minute), State: Running, ExpiresAt: now.Add(Retention)}
				_, err := s.Claim(t.Context(), o, now, now.Add(-TakeoverAge))
				switch {
				case err == nil:
					claims.Add(1)
				case !errors.Is(err, ErrOwned):
					t.Errorf("claim: %v", err)
				}
			}()
		}
		owner, err := s.Owner(t.Context(), "user#1#bob")
		if err != nil || claims.Load() != 1 {
			t.Fatalf("%d claims succeeded (owner %+v, %v), want 1", claims.Load(), owner, err)
		}
		if err := s.End(t.Context(), Owner{Key: owner.Key, JobID: owner.JobID, Round: 1, ActiveAt: now, State: Running, ExpiresAt: now.Add(Retention)}); err != nil {
			t.Fatal(err)
		}
		for range 8 {
			func() {
				o := owner
				o.Round, o.ActiveAt = 2, now.Add(time.Second)
				if _, err := s.Advance(t.Context(), o, now.Add(time.Second)); err == nil {
					rounds.Add(1)
				} else if !errors.Is(err, ErrConflict) {
					t.Errorf("advance: %v", err)
				}
			}()
		}
		if rounds.Load() != 1 {
			t.Fatalf("%d copies of round 2 ran, want 1", rounds.Load())
		}
	})
}
