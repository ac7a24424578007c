package benchkit

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Class sorts upstream requests: the token API (mint, list, revoke, sessions: what registries
// rate-limit per account) or the registry's login handshake (/v2/ challenge and token endpoint).
type Class string

// The two classes.
const (
	ClassAPI      Class = "api"
	ClassRegistry Class = "registry"
)

// Classifier tells which class a request is.
type Classifier func(r *http.Request) Class

// Meter counts the requests an emulator answered, by class and by notable status (429 from the
// rate limit, 503 injected). It wraps the whole stack, so it sees exactly what the client saw.
type Meter struct {
	Next     http.Handler
	Classify Classifier

	mu     sync.Mutex
	counts map[string]int
}

// Key names in Meter.Snapshot.
const (
	KeyAPI          = "api"           // token-API requests, any answer
	KeyRegistry     = "registry"      // registry handshake requests, any answer
	KeyRateLimited  = "429"           // answered 429 Too Many Requests
	KeyInjected5xx  = "503-injected"  // answered 503 by FaultInjector
	KeyAPIAccepted  = "api-accepted"  // token-API requests not answered 429 or injected 503
	KeyLostResponse = "lost-response" // served by the emulator, then answered 503
)

func (m *Meter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	m.Next.ServeHTTP(rec, r)
	c := m.Classify(r)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.counts == nil {
		m.counts = map[string]int{}
	}
	m.counts[string(c)]++
	if by := r.Header.Get(CallerHeader); by != "" {
		m.counts["by:"+by]++
	}
	switch {
	case rec.status == http.StatusTooManyRequests:
		m.counts[KeyRateLimited]++
	case rec.Header().Get(injectedHeader) != "":
		m.counts[KeyInjected5xx]++
		if rec.Header().Get(injectedHeader) == "after" {
			m.counts[KeyLostResponse]++
		}
	case c == ClassAPI:
		m.counts[KeyAPIAccepted]++
	}
}

// CallerHeader, when a client sets it (see TagCaller), makes the Meter also count the request
// under "by:<value>", so a benchmark can tell apart calls ECR's emulator made from the
// function's own.
const CallerHeader = "X-Bench-Caller"

// TagCaller returns an HTTP client whose requests carry CallerHeader: caller.
func TagCaller(caller string) *http.Client {
	return &http.Client{Transport: callerTransport{caller: caller, next: http.DefaultTransport}}
}

type callerTransport struct {
	caller string
	next   http.RoundTripper
}

func (c callerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(CallerHeader, c.caller)
	return c.next.RoundTrip(r)
}

// Snapshot returns a copy of the counts.
func (m *Meter) Snapshot() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]int, len(m.counts))
	for k, v := range m.counts {
		out[k] = v
	}
	return out
}

// Total is every request answered.
func (m *Meter) Total() int {
	s := m.Snapshot()
	return s[KeyAPI] + s[KeyRegistry]
}

// Reset forgets the counts.
func (m *Meter) Reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.counts = nil
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// RateLimiter answers 429 with Retry-After (whole seconds, as every registry sends it) and
// X-RateLimit-Reset to token-API requests beyond Requests per Window — a fixed window, the
// same rule the Docker Hub emulator's Options.RateLimit applies, so all four registries are
// limited alike. Registry handshake requests pass.
type RateLimiter struct {
	Next     http.Handler
	Classify Classifier
	Requests int
	Window   time.Duration
	// Off, when set and true, lets everything pass (setup, checks).
	Off *atomic.Bool

	mu          sync.Mutex
	windowStart time.Time
	count       int
}

func (l *RateLimiter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if l.Requests <= 0 || l.Classify(r) != ClassAPI || (l.Off != nil && l.Off.Load()) {
		l.Next.ServeHTTP(w, r)
		return
	}
	l.mu.Lock()
	now := time.Now()
	if now.Sub(l.windowStart) >= l.Window {
		l.windowStart, l.count = now, 0
	}
	l.count++
	over := l.count > l.Requests
	reset := l.windowStart.Add(l.Window)
	l.mu.Unlock()
	if !over {
		l.Next.ServeHTTP(w, r)
		return
	}
	wait := int(math.Ceil(reset.Sub(now).Seconds()))
	w.Header().Set("Retry-After", strconv.Itoa(max(wait, 1)))
	w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
	writeJSON(w, http.StatusTooManyRequests, map[string]any{"message": "rate limit exceeded"})
}

// injectedHeader marks an injected answer for the Meter; clients ignore it.
const injectedHeader = "X-Bench-Injected"

// FaultInjector answers 503 to a Fraction of requests, drawn from a PRNG seeded with Seed (the
// draw sequence is fixed; which request gets which draw depends on scheduling when requests run
// concurrently). Of those, LostFraction are first served by the emulator and only the answer is
// replaced — the "it happened but the client never heard" case that leaks tokens when mishandled;
// the rest never reach the emulator.
type FaultInjector struct {
	Next         http.Handler
	Fraction     float64
	LostFraction float64
	Seed         uint64
	// Off, when set and true, lets everything pass (setup, checks).
	Off *atomic.Bool

	mu  sync.Mutex
	rng *rand.Rand
}

func (f *FaultInjector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.Fraction <= 0 || (f.Off != nil && f.Off.Load()) {
		f.Next.ServeHTTP(w, r)
		return
	}
	f.mu.Lock()
	if f.rng == nil {
		f.rng = rand.New(rand.NewPCG(f.Seed, f.Seed^0x9e3779b97f4a7c15))
	}
	fail := f.rng.Float64() < f.Fraction
	lost := f.rng.Float64() < f.LostFraction
	f.mu.Unlock()
	if !fail {
		f.Next.ServeHTTP(w, r)
		return
	}
	mode := "before"
	if lost {
		mode = "after"
		f.Next.ServeHTTP(discardWriter{h: http.Header{}}, r)
	}
	w.Header().Set(injectedHeader, mode)
	writeJSON(w, http.StatusServiceUnavailable, map[string]any{"message": "service temporarily unavailable (injected)"})
}

type discardWriter struct{ h http.Header }

func (d discardWriter) Header() http.Header         { return d.h }
func (d discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d discardWriter) WriteHeader(int)             {}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
