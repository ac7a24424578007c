package localsm_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/fakeclock"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/localsm"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
)

// env is one localsm behind httptest with a real SDK client.
type env struct {
	srv *localsm.Server
	url string
	sm  *secretsmanager.Client
	ctx context.Context
	// reqs records method, path and headers of every request the server saw.
	reqs *recorder
}

type recorded struct {
	Method, Path string
	Header       http.Header
}

type recorder struct {
	mu   sync.Mutex
	reqs []recorded
}

func (r *recorder) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.reqs = append(r.reqs, recorded{Method: req.Method, Path: req.URL.Path, Header: req.Header.Clone()})
		r.mu.Unlock()
		h.ServeHTTP(w, req)
	})
}

func (r *recorder) all() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.reqs...)
}

func start(t *testing.T, opts localsm.Options) *env {
	t.Helper()
	srv := localsm.New(opts)
	rec := &recorder{}
	hs := httptest.NewServer(rec.wrap(srv))
	t.Cleanup(hs.Close)
	return &env{srv: srv, url: hs.URL, sm: client(hs.URL), ctx: testenv.Context(t), reqs: rec}
}

// client is a real SDK client for endpoint that does not retry, so every call is one request.
func client(endpoint string) *secretsmanager.Client {
	return secretsmanager.NewFromConfig(testenv.AWSConfig(), func(o *secretsmanager.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.RetryMaxAttempts = 1
	})
}

// code returns the AWS error code of err, "ok" for nil.
func code(err error) string {
	if err == nil {
		return "ok"
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return "non-API error: " + err.Error()
}

func wantCode(t *testing.T, what string, err error, want string) {
	t.Helper()
	if got := code(err); got != want {
		t.Fatalf("%s: got %s, want %s (err %v)", what, got, want, err)
	}
}

// tok returns a valid ClientRequestToken (a UUID) for version n: 00000000-0000-4000-8000-0000000000nn.
func tok(n int) string {
	const digits = "0123456789"
	out := []byte("00000000-0000-4000-8000-000000000000")
	for i := len(out) - 1; n > 0 && i >= 0; i-- {
		out[i] = digits[n%10]
		n /= 10
	}
	return string(out)
}

// clock is the tests' settable clock.
type clock = fakeclock.Clock
