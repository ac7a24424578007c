package ecremu

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"

	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
)

// Secret ARNs in the emulator's default account and Region.
const (
	arnDocker  = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/docker-hub-AbCdEf"
	arnDocker2 = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/docker-hub-2-GhIjKl"
	arnMissing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/missing-MnOpQr"
)

// request is what the recording wrapper keeps of each request the emulator saw.
type request struct {
	Method, Path, Target, ContentType string
	HasAuth                           bool
}

type recorder struct {
	mu   sync.Mutex
	reqs []request
}

func (r *recorder) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.reqs = append(r.reqs, request{
			Method: req.Method, Path: req.URL.Path, Target: req.Header.Get("X-Amz-Target"),
			ContentType: req.Header.Get("Content-Type"), HasAuth: req.Header.Get("Authorization") != "",
		})
		r.mu.Unlock()
		h.ServeHTTP(w, req)
	})
}

func (r *recorder) all() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.reqs...)
}

// fakeSM is an in-memory Secrets Manager: values or errors per secret ARN, calls recorded.
type fakeSM struct {
	mu     sync.Mutex
	values map[string]string
	binary map[string][]byte
	errs   map[string]error
	calls  []secretsmanager.GetSecretValueInput
}

func newFakeSM() *fakeSM {
	return &fakeSM{values: map[string]string{}, binary: map[string][]byte{}, errs: map[string]error{}}
}

func (f *fakeSM) set(arn, value string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.values[arn] = value
}

func (f *fakeSM) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, *in)
	id := aws.ToString(in.SecretId)
	if err, ok := f.errs[id]; ok {
		return nil, err
	}
	if b, ok := f.binary[id]; ok {
		return &secretsmanager.GetSecretValueOutput{ARN: in.SecretId, SecretBinary: b}, nil
	}
	v, ok := f.values[id]
	if !ok {
		return nil, &smtypes.ResourceNotFoundException{Message: aws.String("Secrets Manager can't find the specified secret.")}
	}
	return &secretsmanager.GetSecretValueOutput{ARN: in.SecretId, SecretString: aws.String(v), VersionStages: []string{"AWSCURRENT"}}, nil
}

func (f *fakeSM) recorded() []secretsmanager.GetSecretValueInput {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]secretsmanager.GetSecretValueInput(nil), f.calls...)
}

var errAccessDenied = &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized"}

// verifyCall is one call of the fake login check.
type verifyCall struct {
	Registry, URL string
	Cred          ptcsecret.Value
}

// fakeVerify accepts exactly one credential and records every call.
type fakeVerify struct {
	mu     sync.Mutex
	accept ptcsecret.Value
	fail   func(ptcsecret.Value) error // when set, decides instead of accept
	calls  []verifyCall
}

func (v *fakeVerify) Verify(_ context.Context, registry, url string, cred ptcsecret.Value) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.calls = append(v.calls, verifyCall{registry, url, cred})
	if v.fail != nil {
		return v.fail(cred)
	}
	if cred != v.accept {
		return errBadLogin
	}
	return nil
}

func (v *fakeVerify) recorded() []verifyCall {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]verifyCall(nil), v.calls...)
}

type loginError string

func (e loginError) Error() string { return string(e) }

const errBadLogin = loginError("the registry refused the credential")

// stepClock returns t0, t0+1s, t0+2s, ... so createdAt and updatedAt are predictable.
type stepClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.t
	c.t = c.t.Add(time.Second)
	return t
}

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// env is one emulator behind an httptest server, with a real SDK client pointed at it.
type env struct {
	srv *Server
	hs  *httptest.Server
	rec *recorder
	ecr *ecr.Client
}

func start(t *testing.T, opts Options) *env {
	t.Helper()
	srv := New(opts)
	rec := &recorder{}
	hs := httptest.NewServer(rec.wrap(srv))
	t.Cleanup(hs.Close)
	return &env{srv: srv, hs: hs, rec: rec, ecr: ecrClient(hs.URL)}
}

// ecrClient is the real aws-sdk-go-v2 ECR client, static credentials, no retries (a retried
// injected fault would hide what the test is about).
func ecrClient(endpoint string) *ecr.Client {
	return ecr.NewFromConfig(aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "test-secret-key", ""),
		Retryer:     func() aws.Retryer { return aws.NopRetryer{} },
	}, func(o *ecr.Options) { o.BaseEndpoint = aws.String(endpoint) })
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}
