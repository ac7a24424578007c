package customresource

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/cfn"
)

// presignedQuery imitates the query string of S3's pre-signed URL. Its distinctive parts must
// never appear in a log line or an error.
const presignedQuery = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAQUERYCRED%2F20250101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Security-Token=tokQUERYSECRET&X-Amz-Signature=sigQUERYSECRET0123"

var queryLeaks = []string{"QUERYSECRET", "AKIAQUERYCRED", "X-Amz-Signature", presignedQuery}

const responsePath = "/cloudformation-custom-resource-response-useast1/arn%3Aaws%3Acloudformation%3Aus-east-1%3A123456789012%3Astack/demo/guid%7CPTC%7Creq-1"

// put is one request the fake S3 received.
type put struct {
	Method   string
	Path     string
	RawQuery string
	Header   http.Header
	Body     []byte
}

// fakeS3 plays the pre-signed URL: it records every request and answers with respond(n), n being
// the 0-based index of the request. respond returning -1 drops the connection.
type fakeS3 struct {
	mu      sync.Mutex
	puts    []put
	respond func(n int) (status int, body string)
	srv     *httptest.Server
}

func newFakeS3(t *testing.T, respond func(n int) (int, string)) *fakeS3 {
	t.Helper()
	f := &fakeS3{respond: respond}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		n := len(f.puts)
		f.puts = append(f.puts, put{Method: r.Method, Path: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery, Header: r.Header.Clone(), Body: body})
		f.mu.Unlock()
		status, rb := http.StatusOK, ""
		if f.respond != nil {
			status, rb = f.respond(n)
		}
		if status < 0 {
			c, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				c.Close()
			}
			return
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, rb)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeS3) url() string { return f.srv.URL + responsePath + "?" + presignedQuery }

func (f *fakeS3) recorded() []put {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]put(nil), f.puts...)
}

// lockedBuffer collects log output written from several goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// records parses the JSON log lines.
func (b *lockedBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, line)
		}
		out = append(out, m)
	}
	return out
}

// harness holds one test's options and captured logs and sleeps.
type harness struct {
	logs   *lockedBuffer
	opts   Options
	mu     sync.Mutex
	sleeps []time.Duration
}

func newHarness() *harness {
	h := &harness{logs: &lockedBuffer{}}
	h.opts = Options{
		Logger:      slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		BaseBackoff: 100 * time.Millisecond,
		MaxBackoff:  time.Second,
		Sleep: func(ctx context.Context, d time.Duration) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.sleeps = append(h.sleeps, d)
			return nil
		},
		LogGroup:  "/aws/lambda/provisioner",
		LogStream: "2025/01/01/[$LATEST]abc123",
	}
	return h
}

func newRequest(url string, typ string) Request {
	r := Request{
		RequestType:        cfn.RequestType(typ),
		RequestID:          "11111111-2222-3333-4444-555555555555",
		ResponseURL:        url,
		ResourceType:       "Custom::PullThroughCache",
		LogicalResourceID:  "PTC",
		StackID:            "arn:aws:cloudformation:us-east-1:123456789012:stack/demo/guid",
		ResourceProperties: map[string]any{"ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:p"},
	}
	if typ != "Create" {
		r.PhysicalResourceID = "ptc-existing-id"
	}
	return r
}

// checkPut asserts the wire form of an answer and decodes it.
func checkPut(t *testing.T, p put) response {
	t.Helper()
	if p.Method != http.MethodPut {
		t.Errorf("method = %s, want PUT", p.Method)
	}
	if p.Path != responsePath || p.RawQuery != presignedQuery {
		t.Errorf("PUT went to %s?%s, want the pre-signed path and query unchanged", p.Path, p.RawQuery)
	}
	if v, ok := p.Header["Content-Type"]; ok {
		t.Errorf("Content-Type header sent (%q); the pre-signed URL expects none", v)
	}
	if got := p.Header.Get("Content-Length"); got != strconv.Itoa(len(p.Body)) {
		t.Errorf("Content-Length = %q, body is %d bytes", got, len(p.Body))
	}
	if len(p.Body) > MaxBodyBytes {
		t.Errorf("body is %d bytes, limit %d", len(p.Body), MaxBodyBytes)
	}
	if !utf8.Valid(p.Body) {
		t.Errorf("body is not valid UTF-8")
	}
	var r response
	dec := json.NewDecoder(bytes.NewReader(p.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("body is not the response JSON: %v: %s", err, p.Body)
	}
	if r.Status == StatusFailed && r.Reason == "" {
		t.Errorf("FAILED without a Reason")
	}
	return r
}

// checkNoQueryLeak asserts that no log line and no error quotes the pre-signed query.
func checkNoQueryLeak(t *testing.T, logs string, err error) {
	t.Helper()
	for _, s := range queryLeaks {
		if strings.Contains(logs, s) {
			t.Errorf("logs contain the pre-signed query part %q", s)
		}
		if err != nil && strings.Contains(err.Error(), s) {
			t.Errorf("error contains the pre-signed query part %q: %v", s, err)
		}
	}
}

// answerRecord returns the one "answered" record of a request.
func answerRecord(t *testing.T, logs *lockedBuffer) map[string]any {
	t.Helper()
	var found []map[string]any
	for _, r := range logs.records(t) {
		if msg, _ := r["msg"].(string); strings.HasPrefix(msg, "custom resource request") {
			found = append(found, r)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want exactly one request record, got %d: %s", len(found), logs.String())
	}
	return found[0]
}

func TestAnswers(t *testing.T) {
	const rid = "11111111-2222-3333-4444-555555555555"
	tests := []struct {
		name       string
		typ        string
		handler    Handler
		wantStatus string
		wantID     string
		wantReason []string
		wantData   map[string]string
		wantNoEcho bool
	}{
		{
			name: "create success",
			typ:  "Create",
			handler: func(ctx context.Context, req Request) (Result, error) {
				return Result{PhysicalResourceID: "ptc-new", Data: map[string]string{"SecretArn": "arn:aws:secretsmanager:x", "SecretName": "ecr-pullthroughcache/hub"}}, nil
			},
			wantStatus: StatusSuccess, wantID: "ptc-new",
			wantData: map[string]string{"SecretArn": "arn:aws:secretsmanager:x", "SecretName": "ecr-pullthroughcache/hub"},
		},
		{
			name: "create success with NoEcho",
			typ:  "Create",
			handler: func(ctx context.Context, req Request) (Result, error) {
				return Result{PhysicalResourceID: "ptc-new", Data: map[string]string{"RepositoryUriPrefix": "x"}, NoEcho: true}, nil
			},
			wantStatus: StatusSuccess, wantID: "ptc-new", wantData: map[string]string{"RepositoryUriPrefix": "x"}, wantNoEcho: true,
		},
		{
			name: "create success without id falls back to the request id",
			typ:  "Create",
			handler: func(ctx context.Context, req Request) (Result, error) {
				return Result{}, nil
			},
			wantStatus: StatusSuccess, wantID: rid,
		},
		{
			name: "create failure gets an id that owns nothing",
			typ:  "Create",
			handler: func(ctx context.Context, req Request) (Result, error) {
				return Result{}, errors.New("creating the secret: AccessDenied")
			},
			wantStatus: StatusFailed, wantID: FailedCreatePrefix + rid, wantReason: []string{"creating the secret: AccessDenied"},
		},
		{
			name: "create failure keeps an explicit id",
			typ:  "Create",
			handler: func(ctx context.Context, req Request) (Result, error) {
				return Result{PhysicalResourceID: "ptc-half-made", Data: map[string]string{"SecretArn": "x"}}, errors.New("creating the rule failed; undo failed too")
			},
			wantStatus: StatusFailed, wantID: "ptc-half-made", wantReason: []string{"undo failed too"},
		},
		{
			name: "create failure with an empty message still has a reason",
			typ:  "Create",
			handler: func(ctx context.Context, req Request) (Result, error) {
				return Result{}, errors.New("")
			},
			wantStatus: StatusFailed, wantID: FailedCreatePrefix + rid, wantReason: []string{"without a message", "/aws/lambda/provisioner"},
		},
		{
			name: "update keeps the physical id when the handler returns none",
			typ:  "Update",
			handler: func(ctx context.Context, req Request) (Result, error) {
				return Result{Data: map[string]string{"SecretArn": "x"}}, nil
			},
			wantStatus: StatusSuccess, wantID: "ptc-existing-id", wantData: map[string]string{"SecretArn": "x"},
		},
		{
			name: "update with a new id means replacement",
			typ:  "Update",
			handler: func(ctx context.Context, req Request) (Result, error) {
				return Result{PhysicalResourceID: "ptc-replacement"}, nil
			},
			wantStatus: StatusSuccess, wantID: "ptc-replacement",
		},
		{
			name: "update failure keeps the request id",
			typ:  "Update",
			handler: func(ctx context.Context, req Request) (Result, error) {
				return Result{}, errors.New("ECR refused the new URL")
			},
			wantStatus: StatusFailed, wantID: "ptc-existing-id", wantReason: []string{"ECR refused the new URL"},
		},
		{
			name: "delete always answers with the request id",
			typ:  "Delete",
			handler: func(ctx context.Context, req Request) (Result, error) {
				return Result{PhysicalResourceID: "something-else"}, nil
			},
			wantStatus: StatusSuccess, wantID: "ptc-existing-id",
		},
		{
			name: "delete failure answers with the request id",
			typ:  "Delete",
			handler: func(ctx context.Context, req Request) (Result, error) {
				return Result{PhysicalResourceID: "something-else"}, errors.New("rule still in use")
			},
			wantStatus: StatusFailed, wantID: "ptc-existing-id", wantReason: []string{"rule still in use"},
		},
		{
			name: "panic on create",
			typ:  "Create",
			handler: func(ctx context.Context, req Request) (Result, error) {
				var m map[string]int
				//lint:ignore SA5000 deliberate: a runtime error panic, where "panic on delete" panics with a string
				m["boom"]++ // nil map write
				return Result{}, nil
			},
			wantStatus: StatusFailed, wantID: FailedCreatePrefix + rid,
			wantReason: []string{"panicked", "/aws/lambda/provisioner", "2025/01/01/[$LATEST]abc123"},
		},
		{
			name: "panic on delete",
			typ:  "Delete",
			handler: func(ctx context.Context, req Request) (Result, error) {
				panic("unexpected shape")
			},
			wantStatus: StatusFailed, wantID: "ptc-existing-id", wantReason: []string{"panicked"},
		},
		{
			name: "credential-named Data key is refused",
			typ:  "Create",
			handler: func(ctx context.Context, req Request) (Result, error) {
				return Result{PhysicalResourceID: "ptc-new", Data: map[string]string{"SecretArn": "x", "AccessToken": "dckr_pat_x"}}, nil
			},
			wantStatus: StatusFailed, wantID: "ptc-new", wantReason: []string{`"AccessToken"`, "must not carry secrets"},
		},
		{
			name: "over-long physical id is refused",
			typ:  "Create",
			handler: func(ctx context.Context, req Request) (Result, error) {
				return Result{PhysicalResourceID: strings.Repeat("x", MaxPhysicalIDBytes+1)}, nil
			},
			wantStatus: StatusFailed, wantID: FailedCreatePrefix + rid, wantReason: []string{"1025 bytes"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s3 := newFakeS3(t, nil)
			h := newHarness()
			err := Wrap(tc.handler, h.opts)(context.Background(), newRequest(s3.url(), tc.typ))
			if err != nil {
				t.Fatalf("Wrap returned %v, want nil (the answer was delivered)", err)
			}
			puts := s3.recorded()
			if len(puts) != 1 {
				t.Fatalf("want exactly one PUT, got %d", len(puts))
			}
			r := checkPut(t, puts[0])
			if r.Status != tc.wantStatus || r.PhysicalResourceID != tc.wantID {
				t.Errorf("answer = %s %q, want %s %q (reason %q)", r.Status, r.PhysicalResourceID, tc.wantStatus, tc.wantID, r.Reason)
			}
			for _, want := range tc.wantReason {
				if !strings.Contains(r.Reason, want) {
					t.Errorf("reason %q does not contain %q", r.Reason, want)
				}
			}
			if fmt.Sprint(r.Data) != fmt.Sprint(tc.wantData) {
				t.Errorf("data = %v, want %v", r.Data, tc.wantData)
			}
			if r.NoEcho != tc.wantNoEcho {
				t.Errorf("NoEcho = %v, want %v", r.NoEcho, tc.wantNoEcho)
			}
			if r.StackID != newRequest("", "Create").StackID || r.RequestID != rid || r.LogicalResourceID != "PTC" {
				t.Errorf("echoed ids wrong: %+v", r)
			}
			rec := answerRecord(t, h.logs)
			for k, want := range map[string]any{
				"request_type": tc.typ, "logical_resource_id": "PTC", "stack_id": r.StackID,
				"physical_resource_id": tc.wantID, "status": tc.wantStatus, "put_attempts": 1.0,
				"response_url": s3.srv.URL + responsePath,
			} {
				if rec[k] != want {
					t.Errorf("log %s = %v, want %v", k, rec[k], want)
				}
			}
			if _, ok := rec["duration_ms"]; !ok {
				t.Errorf("log record has no duration_ms")
			}
			if strings.Contains(tc.name, "panic") && !strings.Contains(h.logs.String(), "handler panicked") {
				t.Errorf("panic not logged: %s", h.logs.String())
			}
			checkNoQueryLeak(t, h.logs.String(), err)
		})
	}
}

// blockUntilCancelled is a handler that outlives the guard and then claims success: its result
// must never reach CloudFormation.
func blockUntilCancelled(seen chan<- context.Context, done chan<- struct{}) Handler {
	return func(ctx context.Context, req Request) (Result, error) {
		defer close(done)
		seen <- ctx
		<-ctx.Done()
		return Result{PhysicalResourceID: "late-success", Data: map[string]string{"SecretArn": "late"}}, nil
	}
}

func TestDeadlineGuard(t *testing.T) {
	tests := []struct {
		name       string
		typ        string
		ctx        func() (context.Context, context.CancelFunc)
		props      map[string]any
		wantID     string
		wantReason string
	}{
		{
			name: "lambda deadline on create",
			typ:  "Create",
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 300*time.Millisecond)
			},
			wantID:     FailedCreatePrefix + "11111111-2222-3333-4444-555555555555",
			wantReason: "timed out after ",
		},
		{
			name: "lambda deadline on update",
			typ:  "Update",
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 300*time.Millisecond)
			},
			wantID:     "ptc-existing-id",
			wantReason: "timed out after ",
		},
		{
			name: "ServiceTimeout shorter than the lambda deadline",
			typ:  "Update",
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), time.Hour)
			},
			props:      map[string]any{"ServiceTimeout": "1"},
			wantID:     "ptc-existing-id",
			wantReason: "timed out after ",
		},
		{
			name: "invocation cancelled without a deadline",
			typ:  "Create",
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(50*time.Millisecond, cancel)
				return ctx, cancel
			},
			wantID:     FailedCreatePrefix + "11111111-2222-3333-4444-555555555555",
			wantReason: "cancelled",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s3 := newFakeS3(t, nil)
			h := newHarness()
			ctx, cancel := tc.ctx()
			defer cancel()
			req := newRequest(s3.url(), tc.typ)
			for k, v := range tc.props {
				req.ResourceProperties[k] = v
			}
			seen := make(chan context.Context, 1)
			done := make(chan struct{})
			err := Wrap(blockUntilCancelled(seen, done), h.opts)(ctx, req)
			if err != nil {
				t.Fatalf("Wrap returned %v, want nil", err)
			}
			<-done // the late handler has returned its "success" ...
			puts := s3.recorded()
			if len(puts) != 1 { // ... and it was never sent
				t.Fatalf("want exactly one PUT, got %d", len(puts))
			}
			r := checkPut(t, puts[0])
			if r.Status != StatusFailed || r.PhysicalResourceID != tc.wantID || !strings.Contains(r.Reason, tc.wantReason) {
				t.Errorf("answer = %s %q %q, want FAILED %q containing %q", r.Status, r.PhysicalResourceID, r.Reason, tc.wantID, tc.wantReason)
			}
			if r.Data != nil {
				t.Errorf("late Data was sent: %v", r.Data)
			}
			hctx := <-seen
			if hctx.Err() == nil {
				t.Errorf("the handler's context was not cancelled")
			}
			if pd, ok := ctx.Deadline(); ok && tc.props == nil {
				hd, ok := hctx.Deadline()
				if !ok || !hd.Before(pd) {
					t.Errorf("handler deadline %v (set %v) is not before the invocation's %v", hd, ok, pd)
				}
				if !errors.Is(context.Cause(hctx), errGuard) {
					t.Errorf("handler context cause = %v, want the guard", context.Cause(hctx))
				}
			}
			rec := answerRecord(t, h.logs)
			if rec["status"] != StatusFailed {
				t.Errorf("log status = %v", rec["status"])
			}
			checkNoQueryLeak(t, h.logs.String(), err)
		})
	}
}

// TestLateResultIsLogged: a handler that returns after the guard answered, but before the
// invocation's deadline, has its result logged. The wrapper waits for it only until shortly
// before the deadline, and with a 600 ms deadline that wait is about 100 ms after the guard's
// PUT; a busy machine can spend it on scheduling alone. So a run whose result was not logged is
// repeated with twice the deadline, up to 20 s, where the check applies as it always did: a
// wrapper that does not wait for late results fails there too.
func TestLateResultIsLogged(t *testing.T) {
	for deadline := 600 * time.Millisecond; ; deadline *= 2 {
		last := deadline >= 20*time.Second
		s3 := newFakeS3(t, nil)
		h := newHarness()
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		seen := make(chan context.Context, 1)
		done := make(chan struct{})
		err := Wrap(blockUntilCancelled(seen, done), h.opts)(ctx, newRequest(s3.url(), "Create"))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if n := len(s3.recorded()); n != 1 {
			t.Errorf("want one PUT, got %d", n)
		}
		logged := strings.Contains(h.logs.String(), `"discarded_status":"SUCCESS"`)
		if logged || last {
			if !logged {
				t.Errorf("the discarded late result is not logged: %s", h.logs.String())
			}
			return
		}
		<-done
		t.Logf("with a %s deadline the late result came after the wrapper stopped waiting; again with %s", deadline, 2*deadline)
	}
}

const s3AccessDenied = `<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>AccessDenied</Code><Message>Request has expired</Message><CanonicalRequest>PUT ` + responsePath + ` ` + presignedQuery + `</CanonicalRequest></Error>`

func TestPutRetries(t *testing.T) {
	tests := []struct {
		name         string
		respond      func(n int) (int, string)
		maxAttempts  int
		wantPuts     int
		wantErr      []string
		wantSleeps   []time.Duration
		wantDelivery bool
	}{
		{
			name: "two 500s then success",
			respond: func(n int) (int, string) {
				if n < 2 {
					return 500, "<Error><Code>InternalError</Code></Error>"
				}
				return 200, ""
			},
			wantPuts: 3, wantSleeps: []time.Duration{100 * time.Millisecond, 200 * time.Millisecond}, wantDelivery: true,
		},
		{
			name: "connection dropped then success",
			respond: func(n int) (int, string) {
				if n == 0 {
					return -1, ""
				}
				return 200, ""
			},
			wantPuts: 2, wantSleeps: []time.Duration{100 * time.Millisecond}, wantDelivery: true,
		},
		{
			name:     "403 is final",
			respond:  func(int) (int, string) { return 403, s3AccessDenied },
			wantPuts: 1, wantErr: []string{"HTTP 403 AccessDenied", responsePath},
		},
		{
			name:     "404 is final",
			respond:  func(int) (int, string) { return 404, "" },
			wantPuts: 1, wantErr: []string{"HTTP 404"},
		},
		{
			name:        "503 until attempts run out",
			respond:     func(int) (int, string) { return 503, "<Error><Code>SlowDown</Code></Error>" },
			maxAttempts: 4,
			wantPuts:    4, wantErr: []string{"giving up after 4 attempts", "HTTP 503 SlowDown"},
			wantSleeps: []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s3 := newFakeS3(t, tc.respond)
			h := newHarness()
			h.opts.MaxAttempts = tc.maxAttempts
			err := Wrap(func(ctx context.Context, req Request) (Result, error) {
				return Result{PhysicalResourceID: "ptc-new"}, nil
			}, h.opts)(context.Background(), newRequest(s3.url(), "Create"))
			puts := s3.recorded()
			if len(puts) != tc.wantPuts {
				t.Fatalf("PUTs = %d, want %d", len(puts), tc.wantPuts)
			}
			for _, p := range puts {
				checkPut(t, p)
				if !bytes.Equal(p.Body, puts[0].Body) {
					t.Errorf("retried PUT body differs")
				}
			}
			if fmt.Sprint(h.sleeps) != fmt.Sprint(tc.wantSleeps) {
				t.Errorf("backoff sleeps = %v, want %v", h.sleeps, tc.wantSleeps)
			}
			if tc.wantDelivery != (err == nil) {
				t.Fatalf("Wrap error = %v, want delivery %v", err, tc.wantDelivery)
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			rec := answerRecord(t, h.logs)
			if rec["put_attempts"] != float64(tc.wantPuts) {
				t.Errorf("log put_attempts = %v, want %d", rec["put_attempts"], tc.wantPuts)
			}
			if !tc.wantDelivery && rec["level"] != "ERROR" {
				t.Errorf("undelivered answer logged at %v", rec["level"])
			}
			checkNoQueryLeak(t, h.logs.String(), err)
		})
	}
}

func TestPutConnectionRefused(t *testing.T) {
	s3 := newFakeS3(t, nil)
	url := s3.url()
	s3.srv.Close() // nothing listens any more
	h := newHarness()
	h.opts.MaxAttempts = 3
	err := Wrap(func(ctx context.Context, req Request) (Result, error) {
		return Result{PhysicalResourceID: "ptc-new"}, nil
	}, h.opts)(context.Background(), newRequest(url, "Create"))
	if err == nil || !strings.Contains(err.Error(), "giving up after 3 attempts") {
		t.Fatalf("error = %v, want giving up after 3 attempts", err)
	}
	if len(h.sleeps) != 2 {
		t.Errorf("sleeps = %v, want 2", h.sleeps)
	}
	checkNoQueryLeak(t, h.logs.String(), err)
}

// fakeClock advances only when the injected Sleep is called.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Sleep(_ context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return nil
}

func TestPutRetriesStopAtDeadline(t *testing.T) {
	s3 := newFakeS3(t, func(int) (int, string) { return 503, "" })
	h := newHarness()
	clk := &fakeClock{t: time.Now()}
	var sleeps []time.Duration
	h.opts.Now = clk.Now
	h.opts.Sleep = func(ctx context.Context, d time.Duration) error {
		sleeps = append(sleeps, d)
		return clk.Sleep(ctx, d)
	}
	h.opts.MaxAttempts = 100
	h.opts.BaseBackoff = time.Second
	h.opts.MaxBackoff = 8 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := Wrap(func(ctx context.Context, req Request) (Result, error) {
		return Result{PhysicalResourceID: "ptc-new"}, nil
	}, h.opts)(ctx, newRequest(s3.url(), "Create"))
	if err == nil || !strings.Contains(err.Error(), "deadline is near") {
		t.Fatalf("error = %v, want giving up at the deadline", err)
	}
	var total time.Duration
	for _, d := range sleeps {
		total += d
	}
	if total >= 30*time.Second {
		t.Errorf("backoff slept %v in total, past the 30 s deadline: %v", total, sleeps)
	}
	if n := len(s3.recorded()); n != len(sleeps)+1 || n >= 100 {
		t.Errorf("PUTs = %d with %d sleeps; want attempts bounded by the deadline", n, len(sleeps))
	}
	if fmt.Sprint(sleeps[:4]) != fmt.Sprint([]time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}) {
		t.Errorf("backoff = %v, want doubling from 1 s capped at 8 s", sleeps)
	}
}

func TestBodyLimit(t *testing.T) {
	huge := strings.Repeat("upstream said: ünïcödé ✓ \"quoted\" <tag> & more. ", 300) // ≫ 4096 bytes
	bigData := map[string]string{}
	for i := range 60 {
		bigData[fmt.Sprintf("Attr%02d", i)] = strings.Repeat("v", 90)
	}
	tests := []struct {
		name       string
		typ        string
		res        Result
		err        error
		wantStatus string
		wantID     string
		check      func(t *testing.T, r response, body []byte)
	}{
		{
			name: "huge unicode reason is truncated",
			typ:  "Update", err: errors.New(huge),
			wantStatus: StatusFailed, wantID: "ptc-existing-id",
			check: func(t *testing.T, r response, body []byte) {
				if !strings.HasSuffix(r.Reason, truncatedMarker) {
					t.Errorf("reason does not end with the truncation marker")
				}
				if !strings.HasPrefix(huge, strings.TrimSuffix(r.Reason, truncatedMarker)) {
					t.Errorf("truncated reason is not a prefix of the original")
				}
				if len(body) < MaxBodyBytes-16 {
					t.Errorf("body is %d bytes; truncation cut far more than needed", len(body))
				}
			},
		},
		{
			name: "huge ASCII reason fills the body exactly",
			typ:  "Create", err: errors.New(strings.Repeat("a", 10000)),
			wantStatus: StatusFailed, wantID: FailedCreatePrefix + "11111111-2222-3333-4444-555555555555",
			check: func(t *testing.T, r response, body []byte) {
				if len(body) != MaxBodyBytes {
					t.Errorf("body is %d bytes, want exactly %d", len(body), MaxBodyBytes)
				}
			},
		},
		{
			name: "data too big turns success into failure and keeps the id",
			typ:  "Create", res: Result{PhysicalResourceID: "ptc-new", Data: bigData, NoEcho: true},
			wantStatus: StatusFailed, wantID: "ptc-new",
			check: func(t *testing.T, r response, body []byte) {
				if r.Data != nil || r.NoEcho {
					t.Errorf("oversized Data still sent: %v", r.Data)
				}
				if !strings.Contains(r.Reason, "does not fit") {
					t.Errorf("reason %q does not explain the dropped Data", r.Reason)
				}
			},
		},
		{
			name: "failure drops data so the reason survives",
			typ:  "Update", res: Result{Data: bigData}, err: errors.New("the real cause"),
			wantStatus: StatusFailed, wantID: "ptc-existing-id",
			check: func(t *testing.T, r response, body []byte) {
				if r.Data != nil || r.Reason != "the real cause" {
					t.Errorf("got data %v reason %q, want no data and the whole reason", r.Data, r.Reason)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s3 := newFakeS3(t, nil)
			h := newHarness()
			err := Wrap(func(ctx context.Context, req Request) (Result, error) {
				return tc.res, tc.err
			}, h.opts)(context.Background(), newRequest(s3.url(), tc.typ))
			if err != nil {
				t.Fatal(err)
			}
			puts := s3.recorded()
			if len(puts) != 1 {
				t.Fatalf("want one PUT, got %d", len(puts))
			}
			r := checkPut(t, puts[0])
			if r.Status != tc.wantStatus || r.PhysicalResourceID != tc.wantID {
				t.Errorf("answer = %s %q, want %s %q", r.Status, r.PhysicalResourceID, tc.wantStatus, tc.wantID)
			}
			tc.check(t, r, puts[0].Body)
		})
	}
}

func TestFitReasonAllSizes(t *testing.T) {
	base := response{Status: StatusFailed, PhysicalResourceID: "p", StackID: "s", RequestID: "r", LogicalResourceID: "l"}
	for _, unit := range []string{"a", "é", "✓", "𝄞", "\"", "\x01"} {
		for n := 3000; n < 5000; n += 37 {
			r := base
			r.Reason = strings.Repeat(unit, n/len(unit))
			b, got, err := fitBody(r)
			if err != nil {
				t.Fatalf("unit %q n %d: %v", unit, n, err)
			}
			if len(b) > MaxBodyBytes || !json.Valid(b) || !utf8.Valid(b) {
				t.Fatalf("unit %q n %d: body %d bytes, valid JSON %v", unit, n, len(b), json.Valid(b))
			}
			var back response
			if err := json.Unmarshal(b, &back); err != nil || back.Reason != got.Reason {
				t.Fatalf("unit %q n %d: body does not decode to the reported response", unit, n)
			}
		}
	}
}

func TestValidate(t *testing.T) {
	s3 := newFakeS3(t, nil)
	tests := []struct {
		name      string
		mutate    func(r *Request)
		wantField string
		wantPut   bool
	}{
		{"missing StackId", func(r *Request) { r.StackID = "" }, "StackId", true},
		{"missing RequestId", func(r *Request) { r.RequestID = "" }, "RequestId", true},
		{"missing LogicalResourceId", func(r *Request) { r.LogicalResourceID = "" }, "LogicalResourceId", true},
		{"missing RequestType", func(r *Request) { r.RequestType = "" }, "RequestType", true},
		{"unknown RequestType", func(r *Request) { r.RequestType = "Upsert" }, `RequestType is "Upsert"`, true},
		{"update without PhysicalResourceId", func(r *Request) { r.RequestType = RequestUpdate; r.PhysicalResourceID = "" }, "PhysicalResourceId", true},
		{"missing ResponseURL", func(r *Request) { r.ResponseURL = "" }, "ResponseURL is missing", false},
		{"plain http to a remote host", func(r *Request) { r.ResponseURL = "http://bucket.s3.amazonaws.com/x?" + presignedQuery }, "ResponseURL uses plain http", false},
		{"relative ResponseURL", func(r *Request) { r.ResponseURL = "/x?" + presignedQuery }, "ResponseURL is not an absolute URL", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(s3.recorded())
			req := newRequest(s3.url(), "Create")
			tc.mutate(&req)
			verr := Validate(req)
			if !errors.Is(verr, ErrInvalidRequest) || !strings.Contains(verr.Error(), tc.wantField) {
				t.Fatalf("Validate = %v, want ErrInvalidRequest naming %s", verr, tc.wantField)
			}
			h := newHarness()
			called := false
			err := Wrap(func(ctx context.Context, req Request) (Result, error) {
				called = true
				return Result{}, nil
			}, h.opts)(context.Background(), req)
			if called {
				t.Errorf("handler ran for an invalid request")
			}
			puts := s3.recorded()[before:]
			if !tc.wantPut {
				if err == nil || !strings.Contains(err.Error(), tc.wantField) || len(puts) != 0 {
					t.Errorf("want an error naming %s and no PUT; got %v and %d PUTs", tc.wantField, err, len(puts))
				}
			} else {
				if err != nil || len(puts) != 1 {
					t.Fatalf("want one FAILED PUT and no error; got %v and %d PUTs", err, len(puts))
				}
				r := checkPut(t, puts[0])
				if r.Status != StatusFailed || !strings.Contains(r.Reason, tc.wantField) {
					t.Errorf("answer %s %q, want FAILED naming %s", r.Status, r.Reason, tc.wantField)
				}
			}
			checkNoQueryLeak(t, h.logs.String(), err)
			checkNoQueryLeak(t, "", verr)
		})
	}
	if err := Validate(newRequest(s3.url(), "Delete")); err != nil {
		t.Errorf("valid request refused: %v", err)
	}
	if err := Validate(newRequest("https://bucket.s3.amazonaws.com/x?"+presignedQuery, "Create")); err != nil {
		t.Errorf("https URL refused: %v", err)
	}
}

func TestNoSecretLeaks(t *testing.T) {
	const (
		optSecret = "SRC-PASSWORD-planted-7f3a"    // known via Options.SecretValues
		ctxSecret = "dckr_pat_planted_9b2c\"odd\\" // registered with AddSecrets, needs escaping
	)
	tests := []struct {
		name       string
		typ        string
		handler    Handler
		wantStatus string
		wantMarker bool
	}{
		{
			name: "secrets in the error", wantStatus: StatusFailed, wantMarker: true,
			typ: "Create",
			handler: func(ctx context.Context, req Request) (Result, error) {
				AddSecrets(ctx, ctxSecret)
				return Result{}, fmt.Errorf("login with %q failed for password %s", ctxSecret, optSecret)
			},
		},
		{
			name: "secrets in Data values", wantStatus: StatusSuccess, wantMarker: true,
			typ: "Update",
			handler: func(ctx context.Context, req Request) (Result, error) {
				AddSecrets(ctx, ctxSecret)
				return Result{Data: map[string]string{"SecretArn": "arn:" + optSecret, "UpstreamRegistryUrl": ctxSecret}}, nil
			},
		},
		{
			name: "secrets in a panic", wantStatus: StatusFailed, wantMarker: false,
			typ: "Create",
			handler: func(ctx context.Context, req Request) (Result, error) {
				AddSecrets(ctx, ctxSecret)
				panic(fmt.Sprintf("bad doc %s %s", ctxSecret, optSecret))
			},
		},
		{
			name: "secret as the physical id", wantStatus: StatusFailed, wantMarker: false,
			typ: "Create",
			handler: func(ctx context.Context, req Request) (Result, error) {
				AddSecrets(ctx, ctxSecret)
				return Result{PhysicalResourceID: "id-" + ctxSecret}, nil
			},
		},
		{
			name: "secrets in an oversized error", wantStatus: StatusFailed, wantMarker: true,
			typ: "Create",
			handler: func(ctx context.Context, req Request) (Result, error) {
				AddSecrets(ctx, ctxSecret)
				// Many copies, so the truncation cut falls inside one: redaction must come first.
				return Result{}, errors.New(strings.Repeat("x"+ctxSecret+optSecret, 200))
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s3 := newFakeS3(t, nil)
			h := newHarness()
			h.opts.SecretValues = func() []string { return []string{optSecret} }
			err := Wrap(tc.handler, h.opts)(context.Background(), newRequest(s3.url(), tc.typ))
			if err != nil {
				t.Fatal(err)
			}
			puts := s3.recorded()
			if len(puts) != 1 {
				t.Fatalf("want one PUT, got %d", len(puts))
			}
			r := checkPut(t, puts[0])
			escaped, _ := json.Marshal(ctxSecret)
			for _, leak := range []string{optSecret, ctxSecret, string(escaped[1 : len(escaped)-1]), "planted", "dckr", "SRC-PASS"} {
				if strings.Contains(string(puts[0].Body), leak) {
					t.Errorf("PUT body contains planted secret %q: %s", leak, puts[0].Body)
				}
				if strings.Contains(h.logs.String(), leak) {
					t.Errorf("logs contain planted secret %q", leak)
				}
			}
			if tc.wantMarker && !strings.Contains(string(puts[0].Body), Redacted) {
				t.Errorf("expected the redaction marker in %s", puts[0].Body)
			}
			if r.Status != tc.wantStatus {
				t.Errorf("status = %s, want %s", r.Status, tc.wantStatus)
			}
			checkNoQueryLeak(t, h.logs.String(), err)
		})
	}
}

func TestRedactor(t *testing.T) {
	r := NewRedactor("", "s3cr3t", "s3cr3t-longer", "a b&c")
	for in, want := range map[string]string{
		"x s3cr3t-longer y":  "x " + Redacted + " y",
		"x s3cr3t y":         "x " + Redacted + " y",
		"q=a+b%26c":          "q=" + Redacted,
		"nothing here":       "nothing here",
		`quoted "s3cr3t" ok`: `quoted "` + Redacted + `" ok`,
	} {
		if got := r.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
	var nilR *Redactor
	if nilR.Redact("x") != "x" {
		t.Errorf("nil Redactor changed its input")
	}
	AddSecrets(context.Background(), "no-op outside Wrap")
}

func TestFailedCreateID(t *testing.T) {
	id := FailedCreateID("abc")
	if id != "failed-create-abc" || !IsFailedCreateID(id) || IsFailedCreateID("ptc-abc") {
		t.Errorf("FailedCreateID/IsFailedCreateID disagree: %q", id)
	}
}

func TestServiceTimeoutParsing(t *testing.T) {
	for v, want := range map[any]time.Duration{"60": time.Minute, 120.0: 2 * time.Minute, "0": 0, "3601": 0, "soon": 0, true: 0} {
		got, ok := serviceTimeout(Request{ResourceProperties: map[string]any{"ServiceTimeout": v}})
		if got != want || ok != (want != 0) {
			t.Errorf("serviceTimeout(%v) = %v %v, want %v", v, got, ok, want)
		}
	}
}

func TestCredentialKey(t *testing.T) {
	for k, want := range map[string]bool{
		"AccessToken": true, "password": true, "ClientSecret": true, "api_key": true, "Token": true,
		"SecretArn": false, "SecretName": false, "RepositoryUriPrefix": false, "UpstreamRegistryUrl": false, "TokenLabel": false,
	} {
		if credentialKey(k) != want {
			t.Errorf("credentialKey(%q) = %v, want %v", k, !want, want)
		}
	}
}

// TestResultAfterCancellationNeverSent races the handler's result against the guard many times:
// the deadline is a few milliseconds away, the handler returns "success" the moment its context
// is cancelled, so its result often reaches the wrapper together with the cancellation. Whatever
// the interleaving, the answer must be the guard's FAILED, sent once.
func TestResultAfterCancellationNeverSent(t *testing.T) {
	s3 := newFakeS3(t, nil)
	h := newHarness()
	wrapped := Wrap(func(ctx context.Context, req Request) (Result, error) {
		<-ctx.Done()
		return Result{PhysicalResourceID: "late-success"}, nil
	}, h.opts)
	const runs = 200
	for i := range runs {
		ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(3*time.Millisecond))
		if err := wrapped(ctx, newRequest(s3.url(), "Create")); err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		cancel()
	}
	puts := s3.recorded()
	if len(puts) != runs {
		t.Fatalf("PUTs = %d, want %d", len(puts), runs)
	}
	for i, p := range puts {
		if r := checkPut(t, p); r.Status != StatusFailed || r.PhysicalResourceID == "late-success" {
			t.Fatalf("run %d answered %s %q, want the guard's FAILED", i, r.Status, r.PhysicalResourceID)
		}
	}
}
