// Package upstreamfuzz holds what the upstream packages' fuzz targets share: a test server that
// answers each route with fuzzed statuses, headers and bodies (and refuses to let a client reach
// any other host), the check that an upstream error is clear and quotes no secret, and the
// canary check that a parser's error never echoes a value of its input. Only tests import it.
package upstreamfuzz

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ptc-credentials/ptc-credentials/internal/pinned"
)

// CheckError asserts an upstream error is clear: non-empty, well-formed, bounded, names
// its upstream (one of names), and contains none of the secrets.
func CheckError(t *testing.T, err error, names []string, secrets ...string) {
	t.Helper()
	msg := err.Error()
	switch {
	case strings.TrimSpace(msg) == "":
		t.Fatal("empty error")
	case strings.Contains(msg, "%!") || strings.Contains(msg, "<nil>"):
		t.Fatalf("malformed error: %s", msg)
	case len(msg) > 1200:
		t.Fatalf("error of %d bytes: %s", len(msg), msg)
	}
	for _, s := range secrets {
		if strings.Contains(msg, s) {
			t.Fatalf("error contains a secret: %s", msg)
		}
	}
	for _, n := range names {
		if strings.Contains(msg, n) {
			return
		}
	}
	t.Fatalf("error does not say which upstream failed: %s", msg)
}

// Answer is one canned HTTP answer.
type Answer struct {
	Status int
	Header http.Header
	Body   []byte
}

// framing are headers that would make the server lie about the message framing (a
// Content-Length longer than the body only makes the client wait for the timeout).
var framing = map[string]bool{"Content-Length": true, "Transfer-Encoding": true, "Connection": true, "Trailer": true, "Upgrade": true, "Keep-Alive": true}

var Statuses = []int{200, 201, 202, 204, 400, 401, 403, 404, 409, 422, 429, 500, 502, 503}

// AnswerOf turns fuzzed parts into an answer: a status from 200 to 599 (other values pick a
// common one), "Name: value" header lines, and the body as is.
func AnswerOf(status uint16, header string, body []byte) Answer {
	a := Answer{Status: int(status), Header: http.Header{}, Body: body}
	if a.Status < 200 || a.Status > 599 {
		a.Status = Statuses[int(status)%len(Statuses)]
	}
	for _, line := range strings.Split(header, "\n") {
		name, value, ok := strings.Cut(line, ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if ok && name != "" && !strings.ContainsFunc(name+value, func(r rune) bool { return r < ' ' || r == 0x7f }) &&
			!strings.ContainsAny(name, " ()<>@,;\\\"/[]?={}") && !framing[http.CanonicalHeaderKey(name)] {
			a.Header.Add(name, value)
		}
	}
	return a
}

// API is one httptest server for a whole fuzz run; each input sets its routes (path -> the
// answers to give in order, the last repeating) and gets a client that can reach only it.
type API struct {
	srv *httptest.Server

	mu      sync.Mutex
	routes  map[string][]Answer
	calls   map[string]int
	total   int
	offHost []string // requests with a credential to any other host
}

func NewAPI(f *testing.F) *API {
	a := &API{}
	a.srv = httptest.NewServer(a)
	f.Cleanup(a.srv.Close)
	return a
}

// URL is the test server's base URL.
func (a *API) URL() string { return a.srv.URL }

// Standins lists the test server as the one loopback stand-in for the upstream's pinned hosts.
func (a *API) Standins() pinned.Standins { return pinned.NewStandins(a.srv.URL) }

func (a *API) Host() string { return strings.TrimPrefix(a.srv.URL, "http://") }

func (a *API) Reset(routes map[string][]Answer) *http.Client {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.routes, a.calls, a.total, a.offHost = routes, map[string]int{}, 0, nil
	return &http.Client{Transport: guard{a}}
}

func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	answers := a.routes[r.URL.Path]
	n := a.calls[r.URL.Path]
	a.calls[r.URL.Path]++
	a.total++
	a.mu.Unlock()
	if len(answers) == 0 {
		http.NotFound(w, r)
		return
	}
	ans := answers[min(n, len(answers)-1)]
	for k, vs := range ans.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(ans.Status)
	_, _ = w.Write(ans.Body)
}

// check asserts the calls stayed bounded and no credential left for another host.
func (a *API) Check(t *testing.T, maxCalls int) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.total > maxCalls {
		t.Fatalf("%d calls to the API, more than %d", a.total, maxCalls)
	}
	if len(a.offHost) > 0 {
		t.Fatalf("a credential was sent to another host: %v", a.offHost)
	}
}

// guard lets requests reach only the test server: anything else fails at once, and one
// that carries a credential is recorded.
type guard struct{ a *API }

var ErrOffHost = errors.New("fuzz: only the test server is reachable")

func (g guard) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host != g.a.Host() {
		if r.Header.Get("Authorization") != "" || r.Header.Get("Private-Token") != "" {
			g.a.mu.Lock()
			g.a.offHost = append(g.a.offHost, r.URL.Redacted())
			g.a.mu.Unlock()
		}
		return nil, ErrOffHost
	}
	return g.a.srv.Client().Transport.RoundTrip(r)
}

// EchoedValue returns a string value of the JSON input (6 bytes or longer) that err quotes,
// or "". Every string value the error contains is confirmed with a canary: the input is parsed
// again with that one value replaced by a look-alike of the same length and character classes
// (letters and digits shifted by one), and the value counts as quoted only when the new error
// contains the look-alike too. That tells a quoted value from one that merely coincides with
// the message's own words ("secret", "password") or with a part of another value the parser may
// name (a URL's host). Values under the top-level keys in exempt are identifiers the parser
// quotes by design. Keys are never checked: "unknown field" names them on purpose.
func EchoedValue(raw []byte, err error, parse func([]byte) error, exempt []string) string {
	msg := err.Error()
	dec := json.NewDecoder(bytes.NewReader(raw))
	type frame struct {
		obj, wantKey bool
		key          string
	}
	var stack []frame
	for {
		before := dec.InputOffset()
		tok, terr := dec.Token()
		if terr != nil {
			return ""
		}
		top := len(stack) - 1
		isKey := top >= 0 && stack[top].obj && stack[top].wantKey
		key := ""
		if len(stack) > 0 {
			key = stack[0].key
		}
		valueDone := false
		switch v := tok.(type) {
		case json.Delim:
			if v == '{' || v == '[' {
				stack = append(stack, frame{obj: v == '{', wantKey: v == '{'})
				continue
			}
			stack = stack[:top]
			valueDone = true
		case string:
			if isKey {
				stack[top].wantKey, stack[top].key = false, v
				continue
			}
			valueDone = true
			end := int(dec.InputOffset())
			start := int(before) + bytes.IndexByte(raw[before:end], '"')
			if len(v) >= 6 && strings.Contains(msg, v) && !slices.Contains(exempt, key) {
				canary := Canary(v)
				lit, _ := json.Marshal(canary)
				mutated := append(append(append([]byte{}, raw[:start]...), lit...), raw[end:]...)
				if canary != v && strings.Count(string(mutated), canary) == 1 {
					if err2 := parse(mutated); err2 != nil && strings.Contains(err2.Error(), canary) {
						return v
					}
				}
			}
		default:
			valueDone = true
		}
		if valueDone && len(stack) > 0 && stack[len(stack)-1].obj {
			stack[len(stack)-1].wantKey = true
		}
	}
}

// Canary shifts every ASCII letter and digit by one, keeping case and class.
func Canary(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == 'z':
			return 'a'
		case r == 'Z':
			return 'A'
		case r == '9':
			return '0'
		case r >= 'a' && r < 'z', r >= 'A' && r < 'Z', r >= '0' && r < '9':
			return r + 1
		}
		return r
	}, s)
}
