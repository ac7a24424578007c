package customresource

import (
	"slices"
	"sync"

	"github.com/ptc-credentials/ptc-credentials/internal/kit"
)

// Redacted replaces every secret value a Redactor finds (kit.Redacted).
const Redacted = kit.Redacted

// Redactor replaces known secret values in text (kit.Redactor: each value as given, Go-quoted,
// JSON-escaped and URL-escaped).
type Redactor = kit.Redactor

// NewRedactor returns a Redactor for values; empty values are ignored.
func NewRedactor(values ...string) *Redactor { return kit.NewRedactor(values...) }

// secretSet holds the values a handler registered with AddSecrets during one request. The
// handler goroutine may still add while the answer is being prepared, hence the lock.
type secretSet struct {
	mu   sync.Mutex
	vals []string
}

type secretsKey struct{}

func (s *secretSet) add(v []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.vals = append(s.vals, v...)
}

func (s *secretSet) values() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.vals)
}
