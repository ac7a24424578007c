package logging

import (
	"context"
	"io"
	"log/slog"
	"sync"

	"github.com/ptc-credentials/ptc-credentials/internal/kit"
)

// Secrets is the set of values a Redacting handler keeps out of every record: the safety net
// under the rule that no code puts a secret in a log message or attribute. A function adds what
// it handles (source secret values, minted tokens) and resets the set per invocation, so a warm
// environment does not accumulate old values.
type Secrets struct {
	mu  sync.Mutex
	set []string
	red *kit.Redactor
}

// Add registers values; empty ones are ignored.
func (s *Secrets) Add(values ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range values {
		if v != "" {
			s.set = append(s.set, v)
		}
	}
	s.red = nil
}

// Reset forgets every value.
func (s *Secrets) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.set, s.red = nil, nil
}

func (s *Secrets) redactor() *kit.Redactor {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.red == nil && len(s.set) > 0 {
		s.red = kit.NewRedactor(s.set...)
	}
	return s.red
}

// Redacting wraps h so that every registered secret in a record's message and string
// attributes (also inside groups) is replaced by kit.Redacted before h sees it.
func Redacting(h slog.Handler, s *Secrets) slog.Handler { return &redacting{inner: h, s: s} }

type redacting struct {
	inner slog.Handler
	s     *Secrets
}

func (r *redacting) Enabled(ctx context.Context, l slog.Level) bool { return r.inner.Enabled(ctx, l) }

func (r *redacting) Handle(ctx context.Context, rec slog.Record) error {
	red := r.s.redactor()
	if red == nil {
		return r.inner.Handle(ctx, rec)
	}
	out := slog.NewRecord(rec.Time, rec.Level, red.Redact(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(redactAttr(a, red))
		return true
	})
	return r.inner.Handle(ctx, out)
}

// WithAttrs redacts attributes bound with Logger.With as well. They are redacted with the
// secrets known when they are bound; values registered later are caught in Handle's records.
func (r *redacting) WithAttrs(attrs []slog.Attr) slog.Handler {
	red := r.s.redactor()
	if red != nil {
		for i := range attrs {
			attrs[i] = redactAttr(attrs[i], red)
		}
	}
	return &redacting{inner: r.inner.WithAttrs(attrs), s: r.s}
}

func (r *redacting) WithGroup(name string) slog.Handler {
	return &redacting{inner: r.inner.WithGroup(name), s: r.s}
}

func redactAttr(a slog.Attr, red *kit.Redactor) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, red.Redact(v.String()))
	case slog.KindGroup:
		g := v.Group()
		out := make([]any, len(g))
		for i, ga := range g {
			out[i] = redactAttr(ga, red)
		}
		return slog.Group(a.Key, out...)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return slog.String(a.Key, red.Redact(err.Error()))
		}
		return slog.String(a.Key, red.Redact(v.String()))
	}
	return slog.Attr{Key: a.Key, Value: v}
}

// NewRedacting returns New(w) behind a Redacting handler over secrets.
func NewRedacting(w io.Writer, secrets *Secrets) *slog.Logger {
	return slog.New(Redacting(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: LevelFromEnv()}), secrets))
}

// Redact returns v with every registered secret replaced by kit.Redacted, for text that leaves
// the function other than through a log record (a tag the rotator writes). A nil Secrets
// returns v unchanged.
func (s *Secrets) Redact(v string) string {
	if s == nil {
		return v
	}
	return s.redactor().Redact(v)
}
