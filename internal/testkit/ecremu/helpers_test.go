package ecremu

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
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

	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/localsm"
)

// Secret ARNs in the emulator's default account and Region that no secretStore holds (the
// secrets tests read are created in theirs, under the names below).
const (
	arnMissing   = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/missing-MnOpQr"
	arnNoStore   = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/docker-hub-AbCdEf"
	nameDocker   = "ecr-pullthroughcache/docker-hub"
	nameDocker2  = "ecr-pullthroughcache/docker-hub-2"
	deniedSecret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/denied-AbCdEf"
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

// secretStore is where the emulator reads the rules' secrets: a localsm over loopback with
// the real SDK client, so the secrets, their ARNs and Secrets Manager's answers (a missing
// secret, one scheduled for deletion, a binary value) are the real ones. It records every read
// the emulator makes, and deny makes reads of one SecretId fail with an error localsm cannot
// produce by itself (it has no IAM and no KMS), answered in Secrets Manager's wire format.
type secretStore struct {
	t      *testing.T
	client *secretsmanager.Client

	mu     sync.Mutex
	calls  []secretsmanager.GetSecretValueInput
	denied map[string]string // SecretId -> error code
}

func newSecrets(t *testing.T) *secretStore {
	t.Helper()
	s := &secretStore{t: t, denied: map[string]string{}}
	srv := localsm.New(localsm.Options{AccountID: DefaultAccountID, Region: DefaultRegion})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if code := s.deniedCode(r); code != "" {
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			w.Header().Set("X-Amzn-Errortype", code)
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"__type":"` + code + `","message":"denied by the test"}`))
			return
		}
		srv.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	s.client = secretsmanager.NewFromConfig(aws.Config{
		Region:      DefaultRegion,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "test-secret-key", ""),
		Retryer:     func() aws.Retryer { return aws.NopRetryer{} },
	}, func(o *secretsmanager.Options) { o.BaseEndpoint = aws.String(hs.URL) })
	return s
}

// deniedCode reads the SecretId of a GetSecretValue request and returns its denial, if any,
// leaving the body for localsm.
func (s *secretStore) deniedCode(r *http.Request) string {
	if r.Header.Get("X-Amz-Target") != "secretsmanager.GetSecretValue" {
		return ""
	}
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	var in struct{ SecretId string }
	_ = json.Unmarshal(body, &in)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.denied[in.SecretId]
}

// put stores value as the AWSCURRENT value of the secret name (creating it) and returns its ARN.
func (s *secretStore) put(name, value string) string {
	s.t.Helper()
	c := context.Background()
	out, err := s.client.PutSecretValue(c, &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String(value)})
	var nf *smtypes.ResourceNotFoundException
	if errors.As(err, &nf) {
		created, err := s.client.CreateSecret(c, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)})
		if err != nil {
			s.t.Fatal(err)
		}
		return aws.ToString(created.ARN)
	}
	if err != nil {
		s.t.Fatal(err)
	}
	return aws.ToString(out.ARN)
}

// putBinary makes a binary value the secret's AWSCURRENT one.
func (s *secretStore) putBinary(arn string, b []byte) {
	s.t.Helper()
	if _, err := s.client.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{SecretId: aws.String(arn), SecretBinary: b}); err != nil {
		s.t.Fatal(err)
	}
}

// remove deletes the secret: for good with recovery false, else scheduled for deletion.
func (s *secretStore) remove(arn string, recovery bool) {
	s.t.Helper()
	in := &secretsmanager.DeleteSecretInput{SecretId: aws.String(arn), ForceDeleteWithoutRecovery: aws.Bool(!recovery)}
	if recovery {
		in.ForceDeleteWithoutRecovery, in.RecoveryWindowInDays = nil, aws.Int64(7)
	}
	if _, err := s.client.DeleteSecret(context.Background(), in); err != nil {
		s.t.Fatal(err)
	}
}

// deny makes reads of secretID fail with the Secrets Manager error code.
func (s *secretStore) deny(secretID, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.denied[secretID] = code
}

// GetSecretValue implements SecretsManager: recorded, then sent to localsm.
func (s *secretStore) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	s.mu.Lock()
	s.calls = append(s.calls, *in)
	s.mu.Unlock()
	return s.client.GetSecretValue(ctx, in, optFns...)
}

func (s *secretStore) recorded() []secretsmanager.GetSecretValueInput {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]secretsmanager.GetSecretValueInput(nil), s.calls...)
}

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
