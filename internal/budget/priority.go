package budget

import "context"

// Priority says how a call takes its slot: see the package documentation.
type Priority int

const (
	// Background calls (SQS records, every call of a job) book at most two
	// slots at a time and never more than one spacing ahead.
	Background Priority = iota
	// Urgent calls (a single deletion over HTTP or a direct invoke, whose
	// caller is waiting) take the floor's token when it is free, else the
	// next slot of the pool, however far ahead within a second.
	Urgent
)

func (p Priority) String() string {
	if p == Urgent {
		return "urgent"
	}
	return "background"
}

type priorityKey struct{}

// WithPriority returns ctx carrying p, for the Wait of every call made under it.
func WithPriority(ctx context.Context, p Priority) context.Context {
	return context.WithValue(ctx, priorityKey{}, p)
}

// PriorityOf is the priority ctx carries: Background unless WithPriority said otherwise.
func PriorityOf(ctx context.Context) Priority {
	p, _ := ctx.Value(priorityKey{}).(Priority)
	return p
}
