// Package localsm is a local AWS Secrets Manager written from the API reference, for tests and
// the demo: secrets, versions and staging labels with AWS's rules, and rotation that really
// invokes the rotation Lambda (over the Lambda runtime interface emulator's Invoke API) the way
// Secrets Manager does — the one thing moto_server cannot do without Docker.
//
// Wire format (awsJson1.1, what smithy-go's awsjson protocol speaks): POST /, X-Amz-Target:
// secretsmanager.<Op>, Content-Type application/x-amz-json-1.1, PascalCase member names,
// timestamps as epoch-seconds numbers, blobs as base64. Errors are HTTP 400 (500 for
// InternalServiceError) with {"__type": "<Exception>", "message": "..."} and an
// X-Amzn-Errortype header. A request without an Authorization header is refused: a real client
// always signs, so a missing one is a bug in the caller's setup. Signatures are not checked;
// the access key id names the caller when Options.Principals lists it, and such a caller is
// held to the Deny statements of a secret's resource policy (policy.go).
//
// Where the service model's constraints (lengths, ranges) are broken the answer is
// InvalidParameterException, as Secrets Manager (and moto) answer them, not a generic
// ValidationException.
//
// Versions that lose their last staging label are kept (AWS deprecates and later deletes them;
// DescribeSecret and ListSecretVersionIds omit them unless IncludeDeprecated is set, and
// GetSecretValue by VersionId still reads them). A secret deleted with a recovery window
// disappears once the injectable clock passes its deletion date.
//
// conformance_test.go runs three scripted call sequences against localsm and moto_server and
// requires equal answers, except where moto 5.2.1 is known to differ from AWS; its deviation
// table documents each of those differences with the API reference sentence localsm follows.
// One script walks the API's rules; the second (product_conformance_test.go) makes every call
// the rotator and the provisioner make, in their shapes, and its coverage table lists them —
// which is what lets the product's own suites run most of their cases against localsm; the
// third (replication_conformance_test.go) makes the multi-Region calls against a Cluster.
//
// A Server used alone (New) is one Region and refuses replication. A Cluster (cluster.go) is
// one Server per Region behind one endpoint, routed by the SigV4 credential scope's Region, with
// replication between them (replicas, read-only; configurable lag; injectable failure).
//
// The server never logs and never puts a secret value in an error.
package localsm

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// TargetPrefix is the X-Amz-Target prefix of every Secrets Manager operation.
const TargetPrefix = "secretsmanager."

// Defaults match moto's, so ARNs look the same in both.
const (
	DefaultAccountID = "123456789012"
	DefaultRegion    = "us-east-1"
)

// The staging labels Secrets Manager itself manages.
const (
	StageCurrent  = "AWSCURRENT"
	StagePending  = "AWSPENDING"
	StagePrevious = "AWSPREVIOUS"
)

const (
	contentType  = "application/x-amz-json-1.1"
	maxBodyBytes = 1 << 20
	// errTypeURI is the suffix AWS's framework appends to X-Amzn-Errortype; the SDK strips it.
	errTypeURI = ":http://internal.amazon.com/coral/com.amazonaws.secretsmanager/"
	coralNS    = "com.amazon.coral.service#"
)

// Options configure a Server. The zero value is usable (rotation steps then fail: there is
// nothing to invoke).
type Options struct {
	// AccountID and Region go into ARNs (defaults DefaultAccountID, DefaultRegion).
	AccountID string
	Region    string
	// Now is the clock (default time.Now). Recovery windows and rotation dates follow it.
	Now func() time.Time
	// Invoker runs one rotation step by invoking the rotation function with the event payload.
	// Use HTTPInvoker{...}.Invoke for functions served by the runtime interface emulator.
	Invoker Invoker
	// Synchronous makes RotateSecret run the rotation before it answers. Secrets Manager answers
	// first and rotates afterwards (the default here too; see WaitRotation); tests and the demo
	// may prefer to have the outcome when the call returns. A failed step never fails the call.
	Synchronous bool
	// Principals maps SigV4 access key ids to the principal ARN (aws:PrincipalArn) whose
	// requests they sign. A request signed with a key listed here is held to the Deny
	// statements of the secret's resource policy (policy.go); other keys are not checked.
	Principals map[string]string
}

// Server is the emulator, an http.Handler. It is safe for concurrent use; create it with New.
type Server struct {
	opts Options

	mu        sync.Mutex
	secrets   map[string]*secret // by name
	calls     []string
	rotations []Rotation
	running   map[string]*run // by secret ARN

	cluster *Cluster // nil for a Server used alone (New); set by NewCluster
}

// New returns an empty Secrets Manager.
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
	return &Server{opts: opts, secrets: map[string]*secret{}, running: map[string]*run{}}
}

// Calls returns the operation names of every request that reached the server with a Secrets
// Manager X-Amz-Target, in arrival order (refused ones included).
func (s *Server) Calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls...)
}

// ResetCalls forgets the recorded calls.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = nil
}

// apiError is an error answer: Type is the exception name the SDK turns into its typed error.
type apiError struct {
	Type    string
	Message string
	Status  int
}

func (e *apiError) Error() string { return e.Type + ": " + e.Message }

func errf(typ string, format string, args ...any) *apiError {
	return &apiError{Type: typ, Status: http.StatusBadRequest, Message: fmt.Sprintf(format, args...)}
}

func errNotFound() *apiError {
	return errf("ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
}

func errParam(format string, args ...any) *apiError {
	return errf("InvalidParameterException", format, args...)
}

func errRequest(format string, args ...any) *apiError {
	return errf("InvalidRequestException", format, args...)
}

func errDeleted() *apiError {
	return errRequest("You can't perform this operation on the secret because it was marked for deletion.")
}

type handler func(s *Server, ctx context.Context, body []byte) (any, *apiError)

var handlers = map[string]handler{
	"CreateSecret":                 (*Server).createSecret,
	"DescribeSecret":               (*Server).describeSecret,
	"GetSecretValue":               (*Server).getSecretValue,
	"PutSecretValue":               (*Server).putSecretValue,
	"UpdateSecretVersionStage":     (*Server).updateSecretVersionStage,
	"RotateSecret":                 (*Server).rotateSecret,
	"CancelRotateSecret":           (*Server).cancelRotateSecret,
	"DeleteSecret":                 (*Server).deleteSecret,
	"RestoreSecret":                (*Server).restoreSecret,
	"TagResource":                  (*Server).tagResource,
	"UntagResource":                (*Server).untagResource,
	"ListSecretVersionIds":         (*Server).listSecretVersionIds,
	"PutResourcePolicy":            (*Server).putResourcePolicy,
	"GetResourcePolicy":            (*Server).getResourcePolicy,
	"DeleteResourcePolicy":         (*Server).deleteResourcePolicy,
	"ValidateResourcePolicy":       (*Server).validateResourcePolicy,
	"UpdateSecret":                 (*Server).updateSecret,
	"ReplicateSecretToRegions":     (*Server).replicateSecretToRegions,
	"RemoveRegionsFromReplication": (*Server).removeRegionsFromReplication,
	"StopReplicationToReplica":     (*Server).stopReplicationToReplica,
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
		writeError(w, &apiError{Type: coralNS + "UnknownOperationException", Status: http.StatusNotFound,
			Message: fmt.Sprintf("awsJson1.1 requests are POST /, got %s %s", r.Method, r.URL.Path)})
		return
	}
	if !ok {
		writeError(w, errf(coralNS+"UnknownOperationException", "X-Amz-Target %q is not a Secrets Manager operation (want prefix %q)", target, TargetPrefix))
		return
	}
	if strings.TrimSpace(r.Header.Get("Authorization")) == "" {
		writeError(w, &apiError{Type: "MissingAuthenticationTokenException", Status: http.StatusForbidden, Message: "Missing Authentication Token"})
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(strings.ToLower(strings.TrimSpace(ct)), contentType) {
		writeError(w, errf(coralNS+"SerializationException", "Content-Type must be %s, got %q", contentType, ct))
		return
	}
	h, ok := handlers[op]
	if !ok {
		writeError(w, errf(coralNS+"UnknownOperationException", "operation %q is not implemented by localsm", op))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		writeError(w, errf(coralNS+"SerializationException", "reading the request body: %v", err))
		return
	}
	if len(body) > maxBodyBytes {
		writeError(w, &apiError{Type: coralNS + "SerializationException", Status: http.StatusRequestEntityTooLarge, Message: fmt.Sprintf("request body over %d bytes", maxBodyBytes)})
		return
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	if s.cluster != nil {
		// Replication is applied lazily: whatever the clock has made due lands before this
		// request is served, and what it queues at lag 0 lands before it is answered.
		s.cluster.pump()
	}
	if e := s.enforce(r, op, body); e != nil {
		writeError(w, e)
		return
	}
	if e := s.refuseOnReplica(op, body); e != nil {
		writeError(w, e)
		return
	}
	out, e := h(s, r.Context(), body)
	if e != nil {
		writeError(w, e)
		return
	}
	if s.cluster != nil {
		s.afterWrite(op, body)
		s.cluster.pump()
	}
	b, err := marshal(out)
	if err != nil {
		writeError(w, &apiError{Type: "InternalServiceError", Status: http.StatusInternalServerError, Message: "encoding the response: " + err.Error()})
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Amzn-Requestid", newUUID())
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// decode parses a request body into in; a malformed body is a SerializationException, which
// is what AWS answers for JSON that does not fit the shape.
func decode(body []byte, in any) *apiError {
	if err := json.Unmarshal(body, in); err != nil {
		return errf(coralNS+"SerializationException", "the request body is not a valid JSON object of the operation's input shape: %v", err)
	}
	return nil
}

func writeError(w http.ResponseWriter, e *apiError) {
	short := e.Type
	if i := strings.LastIndexByte(short, '#'); i >= 0 {
		short = short[i+1:]
	}
	b, _ := marshal(map[string]string{"__type": e.Type, "message": e.Message})
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Amzn-Requestid", newUUID())
	w.Header().Set("X-Amzn-Errortype", short+errTypeURI)
	w.WriteHeader(e.Status)
	_, _ = w.Write(b)
}

// marshal encodes without HTML escaping, as AWS does.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// epoch renders a timestamp the awsJson way: seconds since the epoch as a JSON number.
type epoch time.Time

// MarshalJSON implements json.Marshaler.
func (t epoch) MarshalJSON() ([]byte, error) {
	return []byte(strconv.FormatFloat(float64(time.Time(t).UnixMilli())/1000, 'f', -1, 64)), nil
}

// ts returns nil for the zero time, so omitempty drops it.
func ts(t time.Time) *epoch {
	if t.IsZero() {
		return nil
	}
	e := epoch(t)
	return &e
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

const suffixAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// arnSuffix is the six random characters Secrets Manager appends to a secret's ARN, so a new
// secret with an old name never has the old one's ARN.
func arnSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	out := make([]byte, len(b))
	for i, c := range b {
		out[i] = suffixAlphabet[int(c)%len(suffixAlphabet)]
	}
	return string(out)
}
