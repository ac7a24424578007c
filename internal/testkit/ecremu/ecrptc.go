// Package ecrptc is a local, protocol-faithful emulator of the Amazon ECR pull-through cache rule
// API (CreatePullThroughCacheRule, DescribePullThroughCacheRules, UpdatePullThroughCacheRule,
// DeletePullThroughCacheRule, ValidatePullThroughCacheRule). moto has no pull-through cache
// rules, so tests, the provisioner and the demo point the real aws-sdk-go-v2 ECR client (or the
// aws CLI, via AWS_ENDPOINT_URL_ECR) at this http.Handler instead.
//
// Wire format (awsJson1.1, as smithy-go's awsjson protocol and botocore's ECR model define it):
// POST /, X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.<Op>, Content-Type
// application/x-amz-json-1.1, lowerCamelCase member names, timestamps as epoch-seconds numbers.
// Errors are HTTP 4xx/5xx with a JSON body {"__type": "<Exception>", "message": "..."} and an
// X-Amzn-Errortype header; the Go SDK takes the code from the header first, then from __type,
// and strips a "namespace#" prefix and a ":uri" suffix, so both are sent the way Coral services
// send them.
//
// Input checks mirror the service model (botocore data/ecr/2015-09-21/service-2.json): a value
// that breaks a model constraint (required, length, pattern, enum, range) is answered the way
// AWS request validation answers it — ValidationException, "N validation error(s) detected: ..."
// — while a well-formed value that makes no sense to ECR (a credential for a registry that takes
// none, an ARN of another account or Region, ROOT with an upstream prefix) is an
// InvalidParameterException, ECR's own "the specified parameter is invalid".
//
// The emulator never logs, and never puts a secret value in a response: ValidatePullThroughCacheRule
// reads the secret only to check it and scrubs the token from any failure text.
package ecremu

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
)

// TargetPrefix is the X-Amz-Target prefix of every ECR operation (the service's Smithy name).
const TargetPrefix = "AmazonEC2ContainerRegistry_V20150921."

// Operation names the emulator implements.
const (
	OpCreate   = "CreatePullThroughCacheRule"
	OpDescribe = "DescribePullThroughCacheRules"
	OpUpdate   = "UpdatePullThroughCacheRule"
	OpDelete   = "DeletePullThroughCacheRule"
	OpValidate = "ValidatePullThroughCacheRule"
)

// Defaults match moto's, so ARNs of secrets created in moto_server belong to this registry.
const (
	DefaultAccountID = "123456789012"
	DefaultRegion    = "us-east-1"
	// DefaultMaxRules is ECR's quota "pull through cache rules per registry".
	DefaultMaxRules = 50
)

const (
	contentType  = "application/x-amz-json-1.1"
	maxBodyBytes = 1 << 20
	// coralNS is how AWS's framework qualifies its own (non-ECR) error shapes.
	coralNS = "com.amazon.coral.service#"
	// errTypeURI is the suffix Coral appends to X-Amzn-Errortype.
	errTypeURI = ":http://internal.amazon.com/coral/com.amazonaws.ecr/"
)

// SecretsManager is the one Secrets Manager call the emulator makes, with the aws-sdk-go-v2
// signature, so a real *secretsmanager.Client (e.g. pointed at moto_server) or a fake fits.
type SecretsManager interface {
	GetSecretValue(ctx context.Context, params *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// VerifyFunc is the upstream login check ValidatePullThroughCacheRule runs with the secret's
// current value: nil means the registry accepted the credential. Callers build it on
// internal/registryauth. The error text is scrubbed of the token before it reaches a response.
type VerifyFunc func(ctx context.Context, upstreamRegistry, upstreamRegistryURL string, cred ptcsecret.Value) error

// Options configure a Server. The zero value is usable.
type Options struct {
	// AccountID is the registry id (default DefaultAccountID). CredentialArn and CustomRoleArn
	// must be in this account, as ECR requires.
	AccountID string
	// Region is the emulated Region (default DefaultRegion). CredentialArn must be in it.
	Region string
	// SecretsManager is what ECR's service-linked role reads the rule's secret with (by
	// CredentialArn, stage AWSCURRENT). Nil: Create/Update cannot check the secret exists and
	// Validate answers ServerException.
	SecretsManager SecretsManager
	// SkipSecretCheckOnWrite turns off the existence check Create and Update make on the secret
	// (the real API lists SecretNotFoundException, UnableToAccessSecretException and
	// UnableToDecryptSecretValueException for both, so it reads the secret there too).
	SkipSecretCheckOnWrite bool
	// SecretLagReads plays Secrets Manager's eventual consistency as ECR's control plane meets
	// it: a secret just created is not found at once (CreatePullThroughCacheRule right after
	// CreateSecret fails now and then with SecretNotFoundException in the wild). The first
	// SecretLagReads reads of each secret ARN answer Secrets Manager's ResourceNotFoundException
	// without asking SecretsManager, whatever it holds; later reads are real. Negative: the
	// secret never becomes visible. Zero: no lag.
	SecretLagReads int
	// Verify is the upstream login check Validate runs. Nil: Validate checks only that the
	// secret exists and has the right syntax.
	Verify VerifyFunc
	// Now is the clock for createdAt/updatedAt (default time.Now).
	Now func() time.Time
	// MaxRules is the per-registry rule quota (default DefaultMaxRules); beyond it Create
	// answers LimitExceededException.
	MaxRules int
	// Hook, when set, runs before every implemented operation. A non-nil *Error is answered as
	// is; any other non-nil error becomes a ServerException (HTTP 500).
	Hook func(op string) error
}

// Rule is a stored pull-through cache rule, as Rules returns it.
type Rule struct {
	EcrRepositoryPrefix      string
	RegistryID               string
	UpstreamRegistry         string
	UpstreamRegistryURL      string
	CredentialARN            string
	CustomRoleARN            string
	UpstreamRepositoryPrefix string
	CreatedAt                time.Time
	UpdatedAt                time.Time
}

// Error is an error answer: Type is the exception name (the SDK's typed error), Status the HTTP
// status. Return one from Options.Hook to inject it.
type Error struct {
	Type    string
	Message string
	Status  int
}

// Error renders the answer as "<Type>: <Message>".
func (e *Error) Error() string { return e.Type + ": " + e.Message }

func errf(typ string, status int, format string, args ...any) *Error {
	return &Error{Type: typ, Status: status, Message: fmt.Sprintf(format, args...)}
}

// Server is the emulator. It is safe for concurrent use; create it with New.
type Server struct {
	opts Options

	mu       sync.Mutex
	rules    map[string]*Rule // keyed by normalised prefix (trailing "/" dropped)
	calls    []string
	failNext map[string][]*Error
	reads    map[string]int // secret ARN -> reads so far (for SecretLagReads)
}

// New returns an emulator with no rules.
func New(opts Options) *Server {
	if opts.AccountID == "" {
		opts.AccountID = DefaultAccountID
	}
	if opts.Region == "" {
		opts.Region = DefaultRegion
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxRules <= 0 {
		opts.MaxRules = DefaultMaxRules
	}
	return &Server{opts: opts, rules: map[string]*Rule{}, failNext: map[string][]*Error{}, reads: map[string]int{}}
}

// Rules returns a copy of every rule, sorted by prefix.
func (s *Server) Rules() []Rule {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Rule, 0, len(s.rules))
	for _, r := range s.rules {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].EcrRepositoryPrefix < out[j].EcrRepositoryPrefix })
	return out
}

// Calls returns the operation names of every request that reached the emulator with an ECR
// X-Amz-Target, in arrival order (including requests that were then refused).
func (s *Server) Calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls...)
}

// FailNext makes the next call of op answer errType with HTTP status (0 means 400) instead of
// running. Calls queue: two FailNext for one op fail its next two calls. Mind the client's
// retryer: the SDK retries 5xx and throttling codes, so one injected 500 is usually absorbed.
func (s *Server) FailNext(op, errType string, status int) {
	if status == 0 {
		status = http.StatusBadRequest
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext[op] = append(s.failNext[op], &Error{Type: errType, Status: status, Message: "injected failure"})
}

type handler func(s *Server, ctx context.Context, body []byte) (any, *Error)

var handlers = map[string]handler{
	OpCreate:   (*Server).create,
	OpDescribe: (*Server).describe,
	OpUpdate:   (*Server).update,
	OpDelete:   (*Server).delete,
	OpValidate: (*Server).validate,
}

// ServeHTTP answers one awsJson1.1 request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	target := r.Header.Get("X-Amz-Target")
	op, ok := strings.CutPrefix(target, TargetPrefix)
	if ok {
		s.mu.Lock()
		s.calls = append(s.calls, op)
		s.mu.Unlock()
	}
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		writeError(w, errf(coralNS+"UnknownOperationException", http.StatusNotFound,
			"awsJson1.1 requests are POST /, got %s %s", r.Method, r.URL.Path))
		return
	}
	if !ok {
		writeError(w, errf(coralNS+"UnknownOperationException", http.StatusBadRequest,
			"X-Amz-Target %q is not an ECR operation (want prefix %q)", target, TargetPrefix))
		return
	}
	// Signatures are not checked, but a real client always signs: a request without
	// Authorization is a bug in the caller's client setup.
	if strings.TrimSpace(r.Header.Get("Authorization")) == "" {
		writeError(w, errf("MissingAuthenticationTokenException", http.StatusForbidden, "Missing Authentication Token"))
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(strings.ToLower(strings.TrimSpace(ct)), contentType) {
		writeError(w, errf(coralNS+"SerializationException", http.StatusBadRequest,
			"Content-Type must be %s, got %q", contentType, ct))
		return
	}
	h, ok := handlers[op]
	if !ok {
		writeError(w, errf(coralNS+"UnknownOperationException", http.StatusBadRequest,
			"operation %q is not implemented by this emulator (only the pull-through cache rule operations are)", op))
		return
	}
	if e := s.injected(op); e != nil {
		writeError(w, e)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		writeError(w, errf(coralNS+"SerializationException", http.StatusBadRequest, "reading the request body: %v", err))
		return
	}
	if len(body) > maxBodyBytes {
		writeError(w, errf(coralNS+"SerializationException", http.StatusRequestEntityTooLarge, "request body over %d bytes", maxBodyBytes))
		return
	}
	out, e := h(s, r.Context(), body)
	if e != nil {
		writeError(w, e)
		return
	}
	b, err := marshal(out)
	if err != nil {
		writeError(w, errf("ServerException", http.StatusInternalServerError, "encoding the response: %v", err))
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Amzn-Requestid", requestID())
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// injected returns a queued FailNext error or the Hook's verdict for op.
func (s *Server) injected(op string) *Error {
	s.mu.Lock()
	if q := s.failNext[op]; len(q) > 0 {
		s.failNext[op] = q[1:]
		s.mu.Unlock()
		return q[0]
	}
	s.mu.Unlock()
	if s.opts.Hook == nil {
		return nil
	}
	err := s.opts.Hook(op)
	if err == nil {
		return nil
	}
	if e, ok := err.(*Error); ok {
		if e.Status == 0 {
			e = &Error{Type: e.Type, Message: e.Message, Status: http.StatusBadRequest}
		}
		return e
	}
	return errf("ServerException", http.StatusInternalServerError, "%v", err)
}

func writeError(w http.ResponseWriter, e *Error) {
	short := e.Type
	if i := strings.LastIndexByte(short, '#'); i >= 0 {
		short = short[i+1:]
	}
	b, _ := marshal(map[string]string{"__type": e.Type, "message": e.Message})
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Amzn-Requestid", requestID())
	w.Header().Set("X-Amzn-Errortype", short+errTypeURI)
	w.WriteHeader(e.Status)
	_, _ = w.Write(b)
}

// marshal encodes without HTML escaping: AWS sends "<" as "<", and failure texts contain it.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func requestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
