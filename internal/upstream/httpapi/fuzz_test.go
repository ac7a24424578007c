package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/upstream/httpapi"
)

// Planted values: the query string and the Authorization header carry credentials.
const (
	fuzzQuerySecret  = "PLANTED-query-secret-51d0"
	fuzzBearerSecret = "PLANTED-bearer-token-c3a8"
)

var fuzzStatuses = []int{200, 201, 204, 400, 401, 403, 404, 409, 429, 500, 502, 503, 504}

// fuzzServer answers the n-th request of an input with statuses[n] (the last repeating), the
// fuzzed headers and the fuzzed body.
type fuzzServer struct {
	mu       sync.Mutex
	statuses []int
	header   http.Header
	body     []byte
	requests int
}

func (s *fuzzServer) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	status := s.statuses[min(s.requests, len(s.statuses)-1)]
	s.requests++
	s.mu.Unlock()
	for k, vs := range s.header {
		w.Header()[k] = vs
	}
	w.WriteHeader(status)
	_, _ = w.Write(s.body)
}

// FuzzDo serves fuzzed answers to Caller.Do — a sequence of statuses (one byte each), headers
// (Retry-After, X-RateLimit-Reset, anything) and a body — with an instant fake Sleep. It
// asserts: no panic; attempts never exceed MaxAttempts, a 4xx other than 429 is never retried,
// nor is a 5xx to a POST; every wait is positive and one happens between consecutive attempts;
// errors start with the service and op, stay short (the API's message is truncated) and never
// contain the query string or the bearer token; a success decoded a 2xx JSON body.
func FuzzDo(f *testing.F) {
	srv := &fuzzServer{}
	ts := httptest.NewServer(srv)
	f.Cleanup(ts.Close)
	f.Fuzz(func(t *testing.T, statuses []byte, header string, body []byte, maxAttempts uint8, flags uint8) {
		if len(statuses) == 0 {
			statuses = []byte{0}
		}
		srv.mu.Lock()
		srv.statuses, srv.header, srv.body, srv.requests = nil, http.Header{}, body, 0
		for _, b := range statuses {
			srv.statuses = append(srv.statuses, fuzzStatuses[int(b)%len(fuzzStatuses)])
		}
		for _, line := range strings.Split(header, "\n") {
			k, v, ok := strings.Cut(line, ":")
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if ok && k != "" && !strings.ContainsFunc(k+v, func(r rune) bool { return r < ' ' || r == 0x7f }) &&
				!strings.ContainsAny(k, " ()<>@,;\\\"/[]?={}") && k != "Content-Length" && k != "Transfer-Encoding" && k != "Connection" {
				srv.header.Add(k, v)
			}
		}
		srv.mu.Unlock()

		var waits []time.Duration
		c := &httpapi.Caller{
			Service: "Fuzz API",
			Client:  ts.Client(),
			Now:     func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) },
			Sleep: func(_ context.Context, d time.Duration) error {
				waits = append(waits, d)
				if len(waits) > 64 { // instant sleeps never reach a wall-clock deadline
					return errors.New("fuzz: enough waiting")
				}
				return nil
			},
			MaxAttempts: int(maxAttempts % 8),
		}
		method := []string{http.MethodGet, http.MethodPost, http.MethodDelete, http.MethodPut}[flags&3]
		target := ts.URL
		if flags&4 != 0 {
			target = "http://fuzz-user:" + fuzzBearerSecret + "@127.0.0.1:1" // nothing listens on port 1
		}
		ctx := context.Background()
		if flags&8 != 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
		}
		var out map[string]any
		_, err := c.Do(ctx, "do the thing", httpapi.Request{
			Method: method, URL: target + "/v1/things?token=" + fuzzQuerySecret,
			Header: http.Header{"Authorization": {"Bearer " + fuzzBearerSecret}},
			JSON:   map[string]string{"name": "x"},
		}, &out)

		srv.mu.Lock()
		n := srv.requests
		srv.mu.Unlock()
		limit := c.MaxAttempts
		if limit <= 0 {
			limit = 5
		}
		// 429s do not count against MaxAttempts (the request was not processed); each one
		// the server has to give may add an attempt.
		throttled := 0
		for _, b := range statuses {
			if fuzzStatuses[int(b)%len(fuzzStatuses)] == http.StatusTooManyRequests {
				throttled++
			}
		}
		if last := fuzzStatuses[int(statuses[len(statuses)-1])%len(fuzzStatuses)]; last == http.StatusTooManyRequests {
			throttled += 4*limit + 64 // the last answer repeats: bounded by 4×MaxAttempts or the waits
		}
		if n > limit+throttled {
			t.Fatalf("%d attempts, MaxAttempts %d, %d rate-limited answers", n, limit, throttled)
		}
		for _, w := range waits {
			if w <= 0 {
				t.Fatalf("waited %v", w)
			}
		}
		if flags&4 == 0 && len(waits) != max(n-1, 0) {
			t.Fatalf("%d attempts but %d waits", n, len(waits))
		}
		for i := range max(n-1, 0) { // every answer but the last was retried: it must be retryable
			st := srv.statuses[min(i, len(srv.statuses)-1)]
			if st != http.StatusTooManyRequests && (st < 500 || method == http.MethodPost) {
				t.Fatalf("HTTP %d to %s was retried", st, method)
			}
		}
		if err == nil {
			last := srv.statuses[min(n-1, len(srv.statuses)-1)]
			if last < 200 || last > 299 {
				t.Fatalf("success after HTTP %d", last)
			}
			if len(strings.TrimSpace(string(body))) > 0 && last != http.StatusNoContent && json.Unmarshal(body, &map[string]any{}) != nil {
				t.Fatalf("success with a body that is not a JSON object: %q", body)
			}
			return
		}
		msg := err.Error()
		switch {
		case !strings.HasPrefix(msg, "Fuzz API: do the thing: "):
			t.Fatalf("error does not start with the service and op: %s", msg)
		case strings.Contains(msg, "%!") || strings.Contains(msg, "<nil>"):
			t.Fatalf("malformed error: %s", msg)
		case len(msg) > 420:
			t.Fatalf("error of %d bytes: %s", len(msg), msg)
		case strings.Contains(msg, fuzzQuerySecret) || strings.Contains(msg, fuzzBearerSecret):
			t.Fatalf("error contains a credential: %s", msg)
		}
		var se *httpapi.StatusError
		if errors.As(err, &se) && se.StatusCode != srv.statuses[min(n-1, len(srv.statuses)-1)] {
			t.Fatalf("error reports HTTP %d, the last answer was %d", se.StatusCode, srv.statuses[min(n-1, len(srv.statuses)-1)])
		}
	})
}

// FuzzRedactURL checks that RedactURL never leaves a query string, fragment or userinfo
// password behind, whether or not the URL parses.
func FuzzRedactURL(f *testing.F) {
	f.Fuzz(func(t *testing.T, scheme, user, pass, host, path, query string) {
		// Keep the parts in their places: the URL's structure is not what is fuzzed here.
		if len(pass) < 6 || len(query) < 6 || strings.ContainsAny(pass+query+user+host, "?#@/") ||
			strings.ContainsAny(path, "?#") || strings.ContainsFunc(scheme, func(r rune) bool { return r < 'a' || r > 'z' }) {
			return
		}
		raw := scheme + "://" + user + ":" + pass + "@" + host + "/" + path + "?" + query + "#" + query
		got := httpapi.RedactURL(raw)
		if strings.Contains(got, "?"+query) || strings.Contains(got, "#"+query) || strings.Contains(got, ":"+pass+"@") {
			t.Fatalf("RedactURL(%q) = %q", raw, got)
		}
	})
}
