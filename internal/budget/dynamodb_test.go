package budget

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/zim-deleteconv/zim-deleteconv/internal/local/motoserver"
	"github.com/zim-deleteconv/zim-deleteconv/internal/testenv"
)

// One moto_server serves every test and benchmark of the package; each
// creates a table of its own. It starts on first use, through a wrapper that
// makes moto's DynamoDB writes atomic, as DynamoDB's are: moto checks a
// condition and writes without a lock, on one thread per request, so two
// concurrent conditional writes can both succeed against the same old item
// (seen here as two slots less than a spacing apart).
// motoserver's atomic.py explains.
var shared motoserver.Shared

func TestMain(m *testing.M) {
	testenv.Require(testenv.MotoServer)
	shared.RunTests(m)
}

var tableSeq atomic.Int64

// motoTable creates a table shaped like the stack's state table (one key:
// PK, a string; on demand) on the shared moto_server and returns a client
// and its name.
func motoTable(t testing.TB) (*dynamodb.Client, string) {
	t.Helper()
	cfg, err := shared.Server(t).AWSConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	db := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 })
	name := fmt.Sprintf("state-%d", tableSeq.Add(1))
	_, err = db.CreateTable(context.Background(), &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("PK"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("PK"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	})
	if err != nil {
		t.Fatalf("creating table %s: %v", name, err)
	}
	return db, name
}

// TestDynamoStoreConditions: each write applies only when its condition
// holds, and a write that does not apply returns the Tat it found.
func TestDynamoStoreConditions(t *testing.T) {
	t.Parallel()
	db, table := motoTable(t)
	s := NewDynamoStore(db, table)
	ctx := t.Context()
	const now = int64(1_700_000_000_000_000)
	steps := []struct {
		name   string
		extend bool  // Extend(now, limit, add); else Start(now, tat)
		now    int64 // both
		tat    int64 // Start
		limit  int64 // Extend
		add    int64 // Extend
		want   int64
		ok     bool
	}{
		{name: "extend without an item: found none", extend: true, now: now, limit: now + 100, add: 10, want: 0, ok: false},
		{name: "start without an item", now: now, tat: now + 20, want: now + 20, ok: true},
		{name: "start while busy: found Tat", now: now + 5, tat: now + 25, want: now + 20, ok: false},
		{name: "extend while busy", extend: true, now: now + 5, limit: now + 20, add: 10, want: now + 30, ok: true},
		{name: "extend past the limit: found Tat", extend: true, now: now + 5, limit: now + 29, add: 10, want: now + 30, ok: false},
		{name: "extend when Tat is past: found Tat", extend: true, now: now + 31, limit: now + 100, add: 10, want: now + 30, ok: false},
		{name: "extend with Tat exactly now", extend: true, now: now + 30, limit: now + 30, add: 10, want: now + 40, ok: true},
		{name: "start with Tat exactly now: busy", now: now + 40, tat: now + 60, want: now + 40, ok: false},
		{name: "start when Tat is past", now: now + 41, tat: now + 61, want: now + 61, ok: true},
	}
	for _, st := range steps {
		var (
			got int64
			ok  bool
			err error
		)
		if st.extend {
			got, ok, err = s.Extend(ctx, st.now, st.limit, st.add)
		} else {
			got, ok, err = s.Start(ctx, st.now, st.tat)
		}
		if err != nil || got != st.want || ok != st.ok {
			t.Fatalf("%s: got %d, %v, %v; want %d, %v", st.name, got-now, ok, err, st.want-now, st.ok)
		}
	}
}

// TestDynamoConcurrentTakers: six instances, four callers each, half
// urgent, take slots from one table at once: no slot is handed out twice,
// and the slots are at least one spacing apart.
func TestDynamoConcurrentTakers(t *testing.T) {
	t.Parallel()
	db, table := motoTable(t)
	store := NewDynamoStore(db, table)
	const (
		instances = 6
		callers   = 4
		takes     = 8
		spacing   = 5 * time.Millisecond
	)
	var (
		mu          sync.Mutex
		slots       []int64
		wg          sync.WaitGroup
		unavailable atomic.Int64
	)
	for range instances {
		b := newBudget(store, spacing, slog.New(slog.DiscardHandler))
		// This tests the conditional writes, not the breaker: moto on a
		// loaded machine may take longer than the production timeout.
		b.timeout = 10 * time.Second
		for c := range callers {
			ctx := t.Context()
			if c%2 == 0 {
				ctx = WithPriority(ctx, Urgent)
			}
			wg.Go(func() {
				for taken := 0; taken < takes; {
					cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
					slot, err := b.next(cctx)
					cancel()
					switch {
					case errors.Is(err, ErrUnavailable):
						// moto slower than the store timeout on a loaded
						// machine: an urgent caller would get a 429.
						unavailable.Add(1)
						time.Sleep(100 * time.Millisecond)
						continue
					case err != nil:
						t.Errorf("next: %v", err)
						return
					}
					taken++
					mu.Lock()
					slots = append(slots, slot)
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	slices.Sort(slots)
	if len(slots) != instances*callers*takes {
		t.Fatalf("%d slots, want %d", len(slots), instances*callers*takes)
	}
	for i := 1; i < len(slots); i++ {
		if gap := slots[i] - slots[i-1]; gap < spacing.Microseconds() {
			t.Fatalf("slots %d and %d are %dµs apart (spacing %v): handed out twice or out of sequence", i-1, i, gap, spacing)
		}
	}
	t.Logf("%d slots over %v; %d urgent takes found the table too slow and tried again", len(slots),
		time.Duration(slots[len(slots)-1]-slots[0])*time.Microsecond, unavailable.Load())
}
