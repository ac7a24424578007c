package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/kit"
)

// planted is a distinctive secret the leak checks scan for.
const planted = "PLANTED-s3cr3t-4f1d"

// recorded is one request the test server saw.
type recorded struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   string
}

// recorder is an httptest server that records every request and answers from a script: the
// i-th request gets answers[i] (the last one repeats).
type recorder struct {
	t       *testing.T
	srv     *httptest.Server
	mu      sync.Mutex
	reqs    []recorded
	answers []answer
}

type answer struct {
	status int
	header map[string]string
	body   string
}

func newRecorder(t *testing.T, answers ...answer) *recorder {
	t.Helper()
	r := &recorder{t: t, answers: answers}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		i := len(r.reqs)
		r.reqs = append(r.reqs, recorded{Method: req.Method, Path: req.URL.Path, RawQuery: req.URL.RawQuery, Header: req.Header.Clone(), Body: string(b)})
		a := r.answers[min(i, len(r.answers)-1)]
		r.mu.Unlock()
		for k, v := range a.header {
			w.Header().Set(k, v)
		}
		if a.body != "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(a.status)
		_, _ = io.WriteString(w, a.body)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *recorder) requests() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.reqs...)
}

// sleeper records the waits a Caller asks for and never sleeps.
type sleeper struct {
	mu    sync.Mutex
	waits []time.Duration
	err   error
}

func (s *sleeper) sleep(_ context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waits = append(s.waits, d)
	return s.err
}

func (s *sleeper) recorded() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.waits...)
}

var fixedNow = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func newCaller(sl *sleeper) *Caller {
	return &Caller{Service: "Test API", Client: &http.Client{Timeout: 5 * time.Second}, Now: func() time.Time { return fixedNow }, Sleep: sl.sleep, Jitter: func() time.Duration { return 0 }}
}

func TestDoJSONBody(t *testing.T) {
	rec := newRecorder(t, answer{status: 201, body: `{"id":"t1","token":"abc","n":3}`})
	c := newCaller(&sleeper{})
	var out struct {
		ID, Token string
		N         int
	}
	resp, err := c.Do(context.Background(), "create token", Request{
		Method: http.MethodPost, URL: rec.srv.URL + "/v2/access-tokens?x=1",
		Header: http.Header{"Authorization": {"Bearer sess"}, "X-Custom": {"a", "b"}},
		JSON:   map[string]any{"token_label": "lbl", "scopes": []string{"repo:read"}},
	}, &out)
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	if resp.StatusCode != 201 || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("response = %d %v", resp.StatusCode, resp.Header)
	}
	if out.ID != "t1" || out.Token != "abc" || out.N != 3 {
		t.Errorf("decoded %+v", out)
	}
	reqs := rec.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Method != "POST" || r.Path != "/v2/access-tokens" || r.RawQuery != "x=1" {
		t.Errorf("request line = %s %s?%s", r.Method, r.Path, r.RawQuery)
	}
	if got := r.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q", got)
	}
	if got := r.Header.Get("Accept"); got != "application/json" {
		t.Errorf("Accept = %q", got)
	}
	if got := r.Header.Get("Authorization"); got != "Bearer sess" {
		t.Errorf("Authorization = %q", got)
	}
	if got := r.Header.Values("X-Custom"); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Errorf("X-Custom = %q", got)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(r.Body), &body); err != nil {
		t.Fatalf("body %q is not JSON: %v", r.Body, err)
	}
	if body["token_label"] != "lbl" || len(body["scopes"].([]any)) != 1 {
		t.Errorf("body = %v", body)
	}
}

func TestDoFormBody(t *testing.T) {
	rec := newRecorder(t, answer{status: 200, body: `{"access_token":"at"}`})
	c := newCaller(&sleeper{})
	var out struct {
		AccessToken string `json:"access_token"`
	}
	_, err := c.Do(context.Background(), "get token", Request{
		Method: http.MethodPost, URL: rec.srv.URL + "/oauth2/token",
		Form: url.Values{"grant_type": {"client_credentials"}, "scope": {"https://management.azure.com/.default"}},
	}, &out)
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	if out.AccessToken != "at" {
		t.Errorf("decoded %+v", out)
	}
	r := rec.requests()[0]
	if got := r.Header.Get("Content-Type"); got != "application/x-www-form-urlencoded" {
		t.Errorf("Content-Type = %q", got)
	}
	form, err := url.ParseQuery(r.Body)
	if err != nil || form.Get("grant_type") != "client_credentials" || form.Get("scope") != "https://management.azure.com/.default" {
		t.Errorf("form body = %q (%v)", r.Body, err)
	}
}

func TestDoNoBody(t *testing.T) {
	rec := newRecorder(t, answer{status: 204})
	c := newCaller(&sleeper{})
	var out struct{ X int }
	resp, err := c.Do(context.Background(), "delete", Request{Method: http.MethodDelete, URL: rec.srv.URL + "/x/1"}, &out)
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("Do = %v, %v", resp.StatusCode, err)
	}
	r := rec.requests()[0]
	if r.Body != "" || r.Header.Get("Content-Type") != "" {
		t.Errorf("a call without JSON or Form sent body %q, Content-Type %q", r.Body, r.Header.Get("Content-Type"))
	}
}

func TestDoUndecodableSuccess(t *testing.T) {
	rec := newRecorder(t, answer{status: 200, body: `<html>` + planted + `</html>`})
	var out struct{ X int }
	_, err := newCaller(&sleeper{}).Do(context.Background(), "list", Request{Method: http.MethodGet, URL: rec.srv.URL}, &out)
	if err == nil || !strings.Contains(err.Error(), "not the expected JSON") {
		t.Fatalf("err = %v, want a decoding error", err)
	}
	if strings.Contains(err.Error(), planted) {
		t.Errorf("error quotes the body: %v", err)
	}
}

func TestDoErrorMessages(t *testing.T) {
	long := strings.Repeat("é", 400) // 800 bytes of two-byte characters
	tests := []struct {
		name, body, want string
	}{
		{"message", `{"message":"Bad   token\nlabel"}`, "Bad token label"},
		{"detail", `{"detail":"Incorrect authentication credentials"}`, "Incorrect authentication credentials"},
		{"error_description before error", `{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret"}`, "AADSTS7000215: Invalid client secret"},
		{"error object", `{"error":{"code":"Unauthorized","message":"The access token is invalid."}}`, "The access token is invalid."},
		{"error string", `{"error":"insufficient_scope"}`, "insufficient_scope"},
		{"no known field", `{"foo":"bar"}`, ""},
		// Docker Hub documents its 400 answers as ValueError {"fields", "text"}.
		{"ValueError", `{"fields":{"token_label":["is required"],"expires_at":["must be in the future","bad format"]},"text":"invalid request"}`,
			"invalid request (expires_at: must be in the future, bad format; token_label: is required)"},
		{"ValueError fields only", `{"fields":{"scopes":"unknown scope"}}`, "scopes: unknown scope"},
		{"ValueError text only", `{"text":"organization access token limit reached"}`, "organization access token limit reached"},
		{"ValueError wins over detail", `{"text":"the text","detail":"the detail"}`, "the text"},
		{"not JSON", `<html>oops</html>`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder(t, answer{status: 400, body: tt.body})
			_, err := newCaller(&sleeper{}).Do(context.Background(), "create token", Request{Method: http.MethodPost, URL: rec.srv.URL, JSON: map[string]string{"password": planted}}, nil)
			var se *StatusError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want *StatusError", err)
			}
			if se.StatusCode != 400 || se.Service != "Test API" || se.Op != "create token" || se.Message != tt.want {
				t.Errorf("StatusError = %+v, want message %q", se, tt.want)
			}
			wantText := "Test API: create token: HTTP 400"
			if tt.want != "" {
				wantText += ": " + tt.want
			}
			if err.Error() != wantText {
				t.Errorf("Error() = %q, want %q", err, wantText)
			}
			if strings.Contains(err.Error(), planted) {
				t.Errorf("error quotes the request: %v", err)
			}
		})
	}
	t.Run("truncated", func(t *testing.T) {
		rec := newRecorder(t, answer{status: 422, body: `{"message":"` + long + `"}`})
		_, err := newCaller(&sleeper{}).Do(context.Background(), "op", Request{Method: http.MethodPost, URL: rec.srv.URL}, nil)
		var se *StatusError
		if !errors.As(err, &se) {
			t.Fatalf("err = %v", err)
		}
		if len(se.Message) > 304 || !strings.HasSuffix(se.Message, "…") {
			t.Errorf("message is %d bytes, want at most 300 + an ellipsis", len(se.Message))
		}
		if !strings.HasPrefix(long, strings.TrimSuffix(se.Message, "…")) || !json.Valid([]byte(`"`+se.Message+`"`)) {
			t.Errorf("truncation split a character: %q", se.Message[len(se.Message)-8:])
		}
	})
}

func TestStatusErrorHidesBodyButDecodes(t *testing.T) {
	// Docker Hub's 2FA challenge carries a second-factor token in a 401 body.
	rec := newRecorder(t, answer{status: 401, body: `{"detail":"Require secondary authentication","login_2fa_token":"` + planted + `"}`})
	_, err := newCaller(&sleeper{}).Do(context.Background(), "log in", Request{Method: http.MethodPost, URL: rec.srv.URL}, nil)
	if strings.Contains(err.Error(), planted) {
		t.Fatalf("error shows the body: %v", err)
	}
	var se *StatusError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v", err)
	}
	var challenge struct {
		Login2FAToken string `json:"login_2fa_token"`
	}
	if err := se.DecodeBody(&challenge); err != nil || challenge.Login2FAToken != planted {
		t.Fatalf("DecodeBody = %+v, %v", challenge, err)
	}
	if !IsStatus(err, 403, 401) || IsStatus(err, 403) || IsStatus(errors.New("x"), 401) || IsStatus(nil, 401) {
		t.Errorf("IsStatus misreads the error")
	}
}

func TestDo429WaitsForHint(t *testing.T) {
	tests := []struct {
		name   string
		header map[string]string
		want   time.Duration
	}{
		{"Retry-After seconds", map[string]string{"Retry-After": "3"}, 3 * time.Second},
		{"Retry-After HTTP date", map[string]string{"Retry-After": fixedNow.Add(7 * time.Second).Format(http.TimeFormat)}, 7 * time.Second},
		{"X-RateLimit-Reset", map[string]string{"X-RateLimit-Reset": unix(fixedNow.Add(11 * time.Second))}, 11 * time.Second}, // fixedNow + 11 s
		{"no hint: backoff", nil, 250 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder(t,
				answer{status: 429, header: tt.header, body: `{"detail":"too many requests"}`},
				answer{status: 201, body: `{"ok":true}`})
			sl := &sleeper{}
			c := newCaller(sl)
			var out struct{ OK bool }
			// POST too: a 429 was not processed, so sending it again is safe.
			_, err := c.Do(context.Background(), "create", Request{Method: http.MethodPost, URL: rec.srv.URL, JSON: map[string]int{"a": 1}}, &out)
			if err != nil || !out.OK {
				t.Fatalf("Do = %+v, %v", out, err)
			}
			if w := sl.recorded(); len(w) != 1 || w[0] != tt.want {
				t.Errorf("waits = %v, want [%v]", w, tt.want)
			}
			if c.Retries != 1 {
				t.Errorf("Retries = %d, want 1", c.Retries)
			}
			reqs := rec.requests()
			if len(reqs) != 2 || reqs[1].Body != `{"a":1}` {
				t.Errorf("retry sent %d requests, second body %q", len(reqs), reqs[len(reqs)-1].Body)
			}
		})
	}
}

func TestDo429HintBeyondDeadline(t *testing.T) {
	rec := newRecorder(t, answer{status: 429, header: map[string]string{"Retry-After": "120"}, body: `{"detail":"slow down"}`})
	sl := &sleeper{}
	// A fake clock far from the wall clock must not confuse the deadline check: ctx keeps its
	// deadline in wall-clock time.
	c := newCaller(sl)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.Do(ctx, "list", Request{Method: http.MethodGet, URL: rec.srv.URL}, nil)
	if err == nil || !strings.Contains(err.Error(), "does not fit in the time left") || !strings.Contains(err.Error(), "2m0s") {
		t.Fatalf("err = %v, want a message that the 2m0s hint does not fit", err)
	}
	if !IsStatus(err, 429) {
		t.Errorf("err does not wrap the 429: %v", err)
	}
	if w := sl.recorded(); len(w) != 0 {
		t.Errorf("slept %v although the hint could not fit", w)
	}
	if n := len(rec.requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestDoHintWithinDeadlineDespiteFakeClock(t *testing.T) {
	// The injected clock is years away from the wall clock; a short hint that fits the real
	// deadline must still be honoured.
	rec := newRecorder(t, answer{status: 429, header: map[string]string{"Retry-After": "1"}}, answer{status: 200})
	sl := &sleeper{}
	c := newCaller(sl)
	c.Now = func() time.Time { return time.Now().Add(5 * 365 * 24 * time.Hour) }
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Do(ctx, "list", Request{Method: http.MethodGet, URL: rec.srv.URL}, nil); err != nil {
		t.Fatalf("Do: %v", err)
	}
	if w := sl.recorded(); len(w) != 1 || w[0] != time.Second {
		t.Errorf("waits = %v, want [1s]", w)
	}
}

func TestDo5xxRetriedOnlyWhenIdempotent(t *testing.T) {
	tests := []struct {
		method    string
		wantTries int
	}{
		{http.MethodGet, 2},
		{http.MethodDelete, 2},
		{http.MethodPost, 1},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			rec := newRecorder(t, answer{status: 503, body: `{"message":"unavailable"}`}, answer{status: 200, body: `{}`})
			sl := &sleeper{}
			c := newCaller(sl)
			_, err := c.Do(context.Background(), "op", Request{Method: tt.method, URL: rec.srv.URL}, nil)
			if n := len(rec.requests()); n != tt.wantTries {
				t.Errorf("%d requests, want %d", n, tt.wantTries)
			}
			if tt.wantTries == 1 {
				if !IsStatus(err, 503) {
					t.Errorf("err = %v, want the 503", err)
				}
				if len(sl.recorded()) != 0 || c.Retries != 0 {
					t.Errorf("POST was retried: waits %v, Retries %d", sl.recorded(), c.Retries)
				}
				return
			}
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			if w := sl.recorded(); len(w) != 1 || w[0] != 250*time.Millisecond || c.Retries != 1 {
				t.Errorf("waits %v, Retries %d; want one 250ms backoff", w, c.Retries)
			}
		})
	}
}

// TestDoRepeatablePOSTRetried: a POST marked Repeatable (it only starts a session) is retried
// after a 5xx and after a connection failure, like an idempotent call; a 4xx still is not.
func TestDoRepeatablePOSTRetried(t *testing.T) {
	t.Run("5xx", func(t *testing.T) {
		rec := newRecorder(t, answer{status: 502, body: `{"detail":"bad gateway"}`}, answer{status: 503}, answer{status: 200, body: `{"access_token":"x"}`})
		sl := &sleeper{}
		c := newCaller(sl)
		var out struct {
			AccessToken string `json:"access_token"`
		}
		if _, err := c.Do(context.Background(), "log in", Request{Method: http.MethodPost, URL: rec.srv.URL, Repeatable: true, JSON: map[string]string{"secret": planted}}, &out); err != nil {
			t.Fatalf("Do: %v", err)
		}
		if n := len(rec.requests()); n != 3 || out.AccessToken != "x" || c.Retries != 2 {
			t.Errorf("%d requests, Retries %d, token %q; want 3, 2, x", n, c.Retries, out.AccessToken)
		}
		for _, r := range rec.requests() {
			if !strings.Contains(r.Body, planted) {
				t.Errorf("a retry lost its body: %q", r.Body)
			}
		}
	})
	t.Run("connection failure", func(t *testing.T) {
		dead := httptest.NewServer(http.NotFoundHandler())
		u := dead.URL
		dead.Close()
		sl := &sleeper{}
		c := newCaller(sl)
		c.MaxAttempts = 3
		_, err := c.Do(context.Background(), "log in", Request{Method: http.MethodPost, URL: u, Repeatable: true}, nil)
		if err == nil || len(sl.recorded()) != 2 {
			t.Errorf("err %v, waits %v; want 2 waits then the unreachable error", err, sl.recorded())
		}
	})
	t.Run("4xx", func(t *testing.T) {
		rec := newRecorder(t, answer{status: 401, body: `{"detail":"Incorrect authentication credentials"}`})
		_, err := newCaller(&sleeper{}).Do(context.Background(), "log in", Request{Method: http.MethodPost, URL: rec.srv.URL, Repeatable: true}, nil)
		if !IsStatus(err, 401) || len(rec.requests()) != 1 {
			t.Errorf("err %v after %d requests, want one 401", err, len(rec.requests()))
		}
	})
}

func TestDo4xxNotRetried(t *testing.T) {
	for _, code := range []int{400, 401, 403, 404, 409} {
		rec := newRecorder(t, answer{status: code, body: `{}`})
		sl := &sleeper{}
		_, err := newCaller(sl).Do(context.Background(), "op", Request{Method: http.MethodGet, URL: rec.srv.URL}, nil)
		if !IsStatus(err, code) || len(rec.requests()) != 1 || len(sl.recorded()) != 0 {
			t.Errorf("HTTP %d: err %v, %d requests, waits %v", code, err, len(rec.requests()), sl.recorded())
		}
	}
}

func TestDoMaxAttemptsAndBackoff(t *testing.T) {
	tests := []struct {
		max       int
		wantTries int
		wantWaits []time.Duration
	}{
		{0, 5, []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second}},
		{1, 1, nil},
		{3, 3, []time.Duration{250 * time.Millisecond, 500 * time.Millisecond}},
		{8, 8, []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second}},
	}
	for _, tt := range tests {
		rec := newRecorder(t, answer{status: 502, body: `{"message":"bad gateway"}`})
		sl := &sleeper{}
		c := newCaller(sl)
		c.MaxAttempts = tt.max
		_, err := c.Do(context.Background(), "list", Request{Method: http.MethodGet, URL: rec.srv.URL}, nil)
		if !IsStatus(err, 502) {
			t.Errorf("MaxAttempts %d: err = %v, want the 502", tt.max, err)
		}
		if tt.wantTries > 1 && !strings.Contains(err.Error(), "gave up after") {
			t.Errorf("MaxAttempts %d: err = %v, want it to say it gave up", tt.max, err)
		}
		if n := len(rec.requests()); n != tt.wantTries {
			t.Errorf("MaxAttempts %d: %d requests, want %d", tt.max, n, tt.wantTries)
		}
		if w := sl.recorded(); !equalDurations(w, tt.wantWaits) {
			t.Errorf("MaxAttempts %d: waits %v, want %v", tt.max, w, tt.wantWaits)
		}
		if c.Retries != len(tt.wantWaits) {
			t.Errorf("MaxAttempts %d: Retries = %d, want %d", tt.max, c.Retries, len(tt.wantWaits))
		}
	}
}

func TestDoRetriesAccumulate(t *testing.T) {
	rec := newRecorder(t, answer{status: 500}, answer{status: 200}, answer{status: 500}, answer{status: 200})
	c := newCaller(&sleeper{})
	for range 2 {
		if _, err := c.Do(context.Background(), "op", Request{Method: http.MethodGet, URL: rec.srv.URL}, nil); err != nil {
			t.Fatalf("Do: %v", err)
		}
	}
	if c.Retries != 2 {
		t.Errorf("Retries = %d after two calls that each retried once", c.Retries)
	}
}

func TestDoNetworkError(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	tests := []struct {
		method    string
		wantWaits int
	}{
		{http.MethodGet, 2},
		{http.MethodPost, 0},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			sl := &sleeper{}
			c := newCaller(sl)
			c.MaxAttempts = 3
			u := strings.Replace(deadURL, "http://", "http://user:"+planted+"@", 1) + "/token?secret=" + planted
			_, err := c.Do(context.Background(), "get token", Request{Method: tt.method, URL: u}, nil)
			if err == nil || !strings.Contains(err.Error(), "Test API unreachable") {
				t.Fatalf("err = %v, want an unreachable error", err)
			}
			if strings.Contains(err.Error(), planted) || strings.Contains(err.Error(), "secret=") {
				t.Errorf("error shows the query string or userinfo: %v", err)
			}
			if !strings.Contains(err.Error(), strings.TrimPrefix(deadURL, "http://")+"/token") {
				t.Errorf("error does not name the host and path: %v", err)
			}
			if w := sl.recorded(); len(w) != tt.wantWaits || c.Retries != tt.wantWaits {
				t.Errorf("waits %v, Retries %d; want %d", w, c.Retries, tt.wantWaits)
			}
			var ue *url.Error
			if !errors.As(err, &ue) {
				t.Errorf("err does not wrap the *url.Error: %v", err)
			}
		})
	}
}

func TestDoBadURLNotQuoted(t *testing.T) {
	_, err := newCaller(&sleeper{}).Do(context.Background(), "op", Request{Method: http.MethodGet, URL: "http://127.0.0.1:1/%zz?token=" + planted}, nil)
	if err == nil || !strings.Contains(err.Error(), "building request") {
		t.Fatalf("err = %v, want a building-request error", err)
	}
	if strings.Contains(err.Error(), planted) {
		t.Errorf("error shows the query string: %v", err)
	}
}

func TestDoStopsWhenSleepFails(t *testing.T) {
	rec := newRecorder(t, answer{status: 503})
	sl := &sleeper{err: context.Canceled}
	_, err := newCaller(sl).Do(context.Background(), "op", Request{Method: http.MethodGet, URL: rec.srv.URL}, nil)
	if !IsStatus(err, 503) || !strings.Contains(err.Error(), "stopped waiting") {
		t.Fatalf("err = %v", err)
	}
	if n := len(rec.requests()); n != 1 {
		t.Errorf("%d requests after the wait failed, want 1", n)
	}
}

func TestDoCanceledContext(t *testing.T) {
	rec := newRecorder(t, answer{status: 200})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	sl := &sleeper{}
	_, err := newCaller(sl).Do(ctx, "op", Request{Method: http.MethodGet, URL: rec.srv.URL}, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if len(sl.recorded()) != 0 {
		t.Errorf("retried a canceled call")
	}
}

func TestDoNilClient(t *testing.T) {
	rec := newRecorder(t, answer{status: 200, body: `{"a":1}`})
	c := &Caller{Service: "Test API", Sleep: (&sleeper{}).sleep}
	var out struct{ A int }
	if _, err := c.Do(context.Background(), "op", Request{Method: http.MethodGet, URL: rec.srv.URL}, &out); err != nil || out.A != 1 {
		t.Fatalf("Do with a nil Client = %+v, %v", out, err)
	}
}

func TestRetryAfter(t *testing.T) {
	now := fixedNow
	reset30 := unix(now.Add(30 * time.Second))
	tests := []struct {
		name   string
		header http.Header
		want   time.Duration
	}{
		{"none", http.Header{}, 0},
		{"seconds", http.Header{"Retry-After": {"5"}}, 5 * time.Second},
		{"zero seconds", http.Header{"Retry-After": {"0"}}, 0},
		{"seconds with spaces", http.Header{"Retry-After": {" 12 "}}, 12 * time.Second},
		{"HTTP date", http.Header{"Retry-After": {now.Add(90 * time.Second).Format(http.TimeFormat)}}, 90 * time.Second},
		{"HTTP date in the past", http.Header{"Retry-After": {now.Add(-time.Minute).Format(http.TimeFormat)}}, 0},
		{"negative seconds ignored", http.Header{"Retry-After": {"-3"}}, 0},
		{"garbage", http.Header{"Retry-After": {"soon"}}, 0},
		{"reset", http.Header{"X-Ratelimit-Reset": {reset30}}, 30 * time.Second},
		{"reset in the past", http.Header{"X-Ratelimit-Reset": {unix(now.Add(-time.Hour))}}, 0},
		{"reset garbage", http.Header{"X-Ratelimit-Reset": {"later"}}, 0},
		{"Retry-After wins over reset", http.Header{"Retry-After": {"2"}, "X-Ratelimit-Reset": {reset30}}, 2 * time.Second},
		{"bad Retry-After falls back to reset", http.Header{"Retry-After": {"soon"}, "X-Ratelimit-Reset": {reset30}}, 30 * time.Second},
		// Docker Hub's API reference: a 429 carries X-Retry-After, a Unix time.
		{"X-Retry-After", http.Header{"X-Retry-After": {unix(now.Add(40 * time.Second))}}, 40 * time.Second},
		{"X-Retry-After in the past", http.Header{"X-Retry-After": {unix(now.Add(-time.Minute))}}, 0},
		{"X-Retry-After wins over reset", http.Header{"X-Retry-After": {unix(now.Add(40 * time.Second))}, "X-Ratelimit-Reset": {reset30}}, 40 * time.Second},
		{"Retry-After wins over X-Retry-After", http.Header{"Retry-After": {"2"}, "X-Retry-After": {unix(now.Add(40 * time.Second))}}, 2 * time.Second},
		{"X-Retry-After garbage falls back to reset", http.Header{"X-Retry-After": {"soon"}, "X-Ratelimit-Reset": {reset30}}, 30 * time.Second},
	}
	for _, tt := range tests {
		if got := RetryAfter(tt.header, now); got != tt.want {
			t.Errorf("%s: RetryAfter = %v, want %v", tt.name, got, tt.want)
		}
	}
	// The header name is case-insensitive on the wire.
	h := http.Header{}
	h.Set("x-ratelimit-reset", reset30)
	if got := RetryAfter(h, now); got != 30*time.Second {
		t.Errorf("lower-case reset header: %v", got)
	}
}

func TestBaseURL(t *testing.T) {
	tests := []struct {
		raw     string
		want    string // u.String(); empty means an error is wanted
		wantErr string
	}{
		{"https://hub.docker.com", "https://hub.docker.com", ""},
		{"https://hub.docker.com/", "https://hub.docker.com", ""},
		{"  https://gitlab.example.com/api/  ", "https://gitlab.example.com/api", ""},
		{"https://hub.example.com:8443", "https://hub.example.com:8443", ""},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080", ""},
		{"http://127.9.9.9:1", "http://127.9.9.9:1", ""},
		{"http://localhost:1234", "http://localhost:1234", ""},
		{"http://[::1]:5000", "http://[::1]:5000", ""},
		{"http://hub.docker.com", "", "plain http is accepted only for loopback"},
		{"http://10.0.0.1", "", "plain http is accepted only for loopback"},
		{"http://localhost.example.com", "", "plain http is accepted only for loopback"},
		{"ftp://hub.docker.com", "", `scheme "ftp" is not allowed`},
		{"https://user:" + planted + "@hub.docker.com", "", "credentials in the URL are not allowed"},
		{"http://user:" + planted + "@127.0.0.1:1", "", "credentials in the URL are not allowed"},
		{"hub.docker.com", "", "not an absolute URL"},
		{"https//user:" + planted + "@hub.docker.com", "", "not an absolute URL"},
		{"https://", "", "not an absolute URL"},
		{"", "", "not an absolute URL"},
		{"::garbage" + planted, "", "not an absolute URL"},
	}
	for _, tt := range tests {
		u, err := BaseURL("field \"apiUrl\"", tt.raw)
		if tt.wantErr == "" {
			if err != nil || u.String() != tt.want {
				t.Errorf("BaseURL(%q) = %v, %v; want %s", tt.raw, u, err, tt.want)
			}
			continue
		}
		if err == nil {
			t.Errorf("BaseURL(%q) = %v, want an error containing %q", tt.raw, u, tt.wantErr)
			continue
		}
		if !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), `field "apiUrl": `) {
			t.Errorf("BaseURL(%q) error = %q, want the field name and %q", tt.raw, err, tt.wantErr)
		}
		if strings.Contains(err.Error(), planted) {
			t.Errorf("BaseURL(%q) error quotes a credential: %q", tt.raw, err)
		}
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://u:p@host:1/a/b?token=x#frag", "https://host:1/a/b"},
		{"https://host/a", "https://host/a"},
		{"http://u:p@127.0.0.1:1/%zz?token=x", "http://127.0.0.1:1/%zz"},
		{"http://u:p@[::1/x?y", "http://[::1/x"},
		{"%zz?token=x", "%zz"},
	}
	for _, tt := range tests {
		if got := RedactURL(tt.in); got != tt.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func unix(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestDo429DoesNotUseUpAttempts: a 429 was not processed, so a busy API is waited out for as
// long as the deadline allows, with jitter on every wait; only other failures count against
// MaxAttempts. Without a deadline the 429s are bounded too.
func TestDo429DoesNotUseUpAttempts(t *testing.T) {
	answers := []answer{}
	for range 12 {
		answers = append(answers, answer{status: 429, header: map[string]string{"Retry-After": "1"}})
	}
	answers = append(answers, answer{status: 200, body: `{"ok":true}`})
	rec := newRecorder(t, answers...)
	sl := &sleeper{}
	c := newCaller(sl)
	c.Jitter = func() time.Duration { return 250 * time.Millisecond }
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Do(ctx, "list", Request{Method: http.MethodGet, URL: rec.srv.URL}, nil); err != nil {
		t.Fatalf("12 rate-limited answers within the deadline: %v", err)
	}
	w := sl.recorded()
	if len(w) != 12 || w[0] != 1250*time.Millisecond {
		t.Errorf("waits = %v, want 12 of 1.25s (hint + jitter)", w)
	}

	// No deadline: give up after 4×MaxAttempts rate-limited answers.
	var endless []answer
	for range 40 {
		endless = append(endless, answer{status: 429, header: map[string]string{"Retry-After": "1"}})
	}
	rec2 := newRecorder(t, endless...)
	c2 := newCaller(&sleeper{})
	_, err := c2.Do(context.Background(), "list", Request{Method: http.MethodGet, URL: rec2.srv.URL}, nil)
	if err == nil || !strings.Contains(err.Error(), "still rate limited after 20 attempts") {
		t.Fatalf("endless 429 without a deadline: %v", err)
	}

	// The default jitter stays within a second.
	for range 100 {
		if j := (&Caller{}).jitter(); j < 0 || j >= time.Second {
			t.Fatalf("default jitter %v", j)
		}
	}
}

// TestDoRedirectNotRetried: a refused redirect is the server's answer, so even an idempotent or
// Repeatable call is not sent again.
func TestDoRedirectNotRetried(t *testing.T) {
	other := newRecorder(t, answer{status: 200, body: `{}`})
	rec := newRecorder(t, answer{status: 307, header: map[string]string{"Location": other.srv.URL + "/x"}})
	for _, req := range []Request{{Method: http.MethodGet, URL: rec.srv.URL}, {Method: http.MethodPost, URL: rec.srv.URL, Repeatable: true}} {
		sl := &sleeper{}
		c := newCaller(sl)
		c.Client = kit.Client(nil, 5*time.Second)
		_, err := c.Do(context.Background(), "op", req, nil)
		if !errors.Is(err, kit.ErrRedirect) || len(sl.recorded()) != 0 || len(other.requests()) != 0 {
			t.Errorf("%s: err %v, waits %v, %d requests to the other host", req.Method, err, sl.recorded(), len(other.requests()))
		}
	}
}
