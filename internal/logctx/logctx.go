// Package logctx carries log attributes in a context: an invocation's request
// id, a job's job id. A Handler adds them to every record logged with that
// context, so that code that only has the context (the ZIM client, the secret
// cache) writes lines an operator can tie to their invocation and job.
package logctx

import (
	"context"
	"log/slog"
	"slices"
)

type ctxKey struct{}

// With returns a copy of ctx that carries attrs beside those ctx already
// carries; an attribute with the key of an earlier one replaces it.
func With(ctx context.Context, attrs ...slog.Attr) context.Context {
	if len(attrs) == 0 {
		return ctx
	}
	prev := Attrs(ctx)
	all := make([]slog.Attr, 0, len(prev)+len(attrs))
	for _, a := range prev {
		if !slices.ContainsFunc(attrs, func(b slog.Attr) bool { return b.Key == a.Key }) {
			all = append(all, a)
		}
	}
	all = append(all, attrs...)
	return context.WithValue(ctx, ctxKey{}, all)
}

// Attrs returns the attributes ctx carries (nil if none). The slice must not
// be modified.
func Attrs(ctx context.Context) []slog.Attr {
	if ctx == nil {
		return nil
	}
	attrs, _ := ctx.Value(ctxKey{}).([]slog.Attr)
	return attrs
}

// Handler adds the attributes carried by a record's context to the record
// before passing it on. A key the record, or the logger (With), already has
// is not added again, so a line never holds the same key twice. Lines logged
// without a context (Logger.Info rather than InfoContext) get nothing.
type Handler struct {
	next slog.Handler
	// keys are the top-level keys added with WithAttrs before any group.
	keys []string
	// grouped: WithGroup was called; attributes then land inside the group
	// (slog offers a handler no way back to the top level). Nothing here logs
	// through a group.
	grouped bool
}

var _ slog.Handler = (*Handler)(nil)

// NewHandler wraps next.
func NewHandler(next slog.Handler) *Handler { return &Handler{next: next} }

// Enabled reports whether next handles records at level.
func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// Handle adds ctx's attributes that r and the logger lack, then passes r on.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	attrs := Attrs(ctx)
	if len(attrs) == 0 {
		return h.next.Handle(ctx, r)
	}
	var add []slog.Attr
	for _, a := range attrs {
		if !slices.Contains(h.keys, a.Key) && !hasKey(r, a.Key) {
			add = append(add, a)
		}
	}
	if len(add) > 0 {
		// r may share its storage with the caller's copies: add to a clone.
		r = r.Clone()
		r.AddAttrs(add...)
	}
	return h.next.Handle(ctx, r)
}

// WithAttrs returns a Handler whose logger already has attrs.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(attrs)
	if !h.grouped {
		c.keys = slices.Clip(h.keys)
		for _, a := range attrs {
			c.keys = append(c.keys, a.Key)
		}
	}
	return &c
}

// WithGroup returns a Handler whose later attributes go into the group name.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.next = h.next.WithGroup(name)
	c.grouped = true
	return &c
}

func hasKey(r slog.Record, key string) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		found = a.Key == key
		return !found
	})
	return found
}
