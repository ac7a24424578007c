// Package customresource answers CloudFormation custom-resource requests: it runs a Handler and
// PUTs exactly one response to the request's pre-signed S3 ResponseURL, in time, within
// CloudFormation's limits, and without leaking secrets.
//
// Why not aws-lambda-go's cfn.LambdaWrap alone: it has no deadline guard (a handler that runs
// into the Lambda timeout never answers, and the stack hangs until ServiceTimeout — an hour by
// default), it sends the PUT once and ignores a failure, and it does not truncate Reason, so a
// long error message makes the body exceed 4096 bytes and CloudFormation rejects the answer
// (aws-lambda-go issue #404). This package adds, in one place:
//
//   - exactly one answer per request, even when the handler panics or outlives the guard;
//   - a deadline guard: shortly before the Lambda deadline (or the request's ServiceTimeout) the
//     handler's context is cancelled and FAILED "timed out after …" is sent; a late handler
//     result is logged and discarded, never sent;
//   - PUT retries with exponential backoff on network errors and 5xx, bounded by attempts and by
//     the deadline; a 4xx is final (a pre-signed URL that S3 refuses will not start working);
//   - a body of at most 4096 bytes: Reason is truncated first; a SUCCESS whose Data alone does not
//     fit becomes FAILED with Data dropped (see fitBody for why);
//   - the physical-id rules CloudFormation's replacement and rollback logic depends on;
//   - a Redactor over Reason, Data and the log record, a refusal of credential-named Data keys,
//     and logs that never show the ResponseURL's query string (it is a credential).
package customresource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/ptc-credentials/ptc-credentials/internal/kit"
)

// Request is one CloudFormation custom-resource request. It is aws-lambda-go's cfn.Event, so the
// JSON field names are CloudFormation's own (RequestType, ResponseURL, StackId, RequestId,
// ResourceType, LogicalResourceId, PhysicalResourceId, ResourceProperties,
// OldResourceProperties). ServiceTimeout arrives inside ResourceProperties.
type Request = cfn.Event

// Request types CloudFormation sends.
const (
	RequestCreate = cfn.RequestCreate
	RequestUpdate = cfn.RequestUpdate
	RequestDelete = cfn.RequestDelete
)

// Response statuses.
const (
	StatusSuccess = "SUCCESS"
	StatusFailed  = "FAILED"
)

// Limits CloudFormation sets on a response.
const (
	// MaxBodyBytes is the largest response body CloudFormation accepts.
	MaxBodyBytes = 4096
	// MaxPhysicalIDBytes is the longest physical resource id CloudFormation accepts.
	MaxPhysicalIDBytes = 1024
)

// FailedCreatePrefix starts the physical id of a Create that failed without naming its own id.
// Such an id owns nothing: CloudFormation follows a failed Create with a Delete carrying this id,
// and a handler should answer that Delete with success without touching anything (see
// IsFailedCreateID).
const FailedCreatePrefix = "failed-create-"

// FailedCreateID is the physical id answered for a failed Create of request requestID.
func FailedCreateID(requestID string) string {
	if requestID == "" {
		requestID = "unknown-request"
	}
	return FailedCreatePrefix + requestID
}

// IsFailedCreateID reports whether id was made by FailedCreateID and therefore owns nothing.
func IsFailedCreateID(id string) bool { return strings.HasPrefix(id, FailedCreatePrefix) }

// Result is what a Handler returns on success (and optionally on failure).
type Result struct {
	// PhysicalResourceID identifies the resource. Empty on Update keeps the request's id; a
	// different id on Update means replacement (CloudFormation then deletes the old one). It is
	// ignored on Delete, which always answers with the request's id.
	PhysicalResourceID string
	// Data becomes the resource's Fn::GetAtt attributes. It must never hold a secret: values
	// are redacted and credential-named keys are refused (see Options.SecretValues).
	Data map[string]string
	// NoEcho masks Data in the console and DescribeStackResources output.
	NoEcho bool
}

// Handler does the work of one request. ctx carries the guard's deadline, earlier than the
// Lambda's, so the handler can budget its own retries. When ctx is done the guard has answered
// FAILED (on Create with a FailedCreateID that owns nothing) and whatever the handler returns
// afterwards is only logged: a Create must then undo what it made, using a context detached from
// the cancellation (context.WithoutCancel plus a short timeout) for the cleanup calls. A handler
// that returns an error on Create should likewise have undone its work, or return the
// PhysicalResourceID that owns what is left so that CloudFormation's following Delete removes it.
type Handler func(ctx context.Context, req Request) (Result, error)

// Options tune Wrap. The zero value is usable.
type Options struct {
	// Client sends the PUT; nil means a client with default transport.
	Client *http.Client
	// Logger receives one record per request, plus records for panics and discarded late
	// results; nil means slog.Default().
	Logger *slog.Logger
	// Margin is how long before the deadline the guard answers; zero means 10 s. For short
	// deadlines the guard uses a third of the remaining time instead when that is smaller, so the
	// handler still gets most of it.
	Margin time.Duration
	// MaxAttempts bounds PUT attempts; zero means 5.
	MaxAttempts int
	// BaseBackoff is the wait after the first failed PUT, doubled each time; zero means 250 ms.
	BaseBackoff time.Duration
	// MaxBackoff caps one wait; zero means 4 s.
	MaxBackoff time.Duration
	// AttemptTimeout bounds one PUT attempt; zero means 10 s.
	AttemptTimeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Sleep waits between PUT attempts; nil means a timer that stops when ctx ends.
	Sleep func(ctx context.Context, d time.Duration) error
	// SecretValues returns values that must never appear in a response or a log record (for
	// example the source credential the handler loaded). It is called once per answer, after the
	// handler ran, so it may return values learned during the request. Handlers can also register
	// values for the current request with AddSecrets.
	SecretValues func() []string
	// LogGroup and LogStream name where this invocation logs, quoted in FAILED reasons for
	// panics and timeouts; empty means lambdacontext's values from the Lambda environment.
	LogGroup, LogStream string
	// CheckResponseURL decides where an answer may be sent, after Validate's shape checks; a
	// URL it refuses gets no PUT at all. nil means Validate's rule alone (https anywhere, plain
	// http to loopback: this package's tests). The provisioner pins CloudFormation's response
	// bucket with cfnauth.
	CheckResponseURL func(raw string) error
	// Authenticate, when set, runs before the handler and must return nil for a request
	// CloudFormation really sent (see cfnauth). A request it refuses is never handed to the
	// handler; it is answered FAILED with the refusal (the URL passed CheckResponseURL, so the
	// answer can only reach CloudFormation's own bucket, which ignores answers it did not ask
	// for). Its ctx is bounded by the Lambda deadline.
	Authenticate func(ctx context.Context, req Request) error
}

// AddSecrets registers values that the answer to the current request, and its log records, must
// not contain. Handlers call it with every secret they handle (a minted token, a source
// password) before it can reach an error message. ctx must be (derived from) the context Wrap
// gave the handler; elsewhere it does nothing.
func AddSecrets(ctx context.Context, values ...string) {
	if s, ok := ctx.Value(secretsKey{}).(*secretSet); ok {
		s.add(values)
	}
}

// ErrInvalidRequest is wrapped by every error Validate returns.
var ErrInvalidRequest = errors.New("invalid custom resource request")

// Validate checks the fields every request must carry and names each missing or bad one.
// ResponseURL must be an absolute https URL (plain http only for loopback hosts, which is how
// tests and local emulators answer).
func Validate(req Request) error {
	var errs []error
	missing := func(field, v string) {
		if strings.TrimSpace(v) == "" {
			errs = append(errs, fmt.Errorf("field %s is missing", field))
		}
	}
	if req.ResponseURL == "" {
		missing("ResponseURL", "")
	} else if err := checkResponseURL(req.ResponseURL); err != nil {
		errs = append(errs, err)
	}
	missing("StackId", req.StackID)
	missing("RequestId", req.RequestID)
	missing("LogicalResourceId", req.LogicalResourceID)
	switch req.RequestType {
	case RequestCreate:
	case RequestUpdate, RequestDelete:
		missing("PhysicalResourceId", req.PhysicalResourceID)
	case "":
		missing("RequestType", "")
	default:
		errs = append(errs, fmt.Errorf("field RequestType is %q, want Create, Update or Delete", kit.Cut(string(req.RequestType), 40)))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalidRequest, errors.Join(errs...))
}

// responseURLError applies Validate's shape rule and then Options.CheckResponseURL.
func (w *wrapper) responseURLError(raw string) error {
	if err := checkResponseURL(raw); err != nil {
		return err
	}
	if w.o.CheckResponseURL != nil {
		if err := w.o.CheckResponseURL(raw); err != nil {
			return fmt.Errorf("field ResponseURL: %w", err)
		}
	}
	return nil
}

// checkResponseURL refuses URLs the answer must not be sent to. Its message never quotes the URL,
// whose query string is a credential.
func checkResponseURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return errors.New("field ResponseURL is not an absolute URL")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if kit.IsLoopback(u.Hostname()) { // localhost or a loopback IP: tests and the demo
			return nil
		}
		return errors.New("field ResponseURL uses plain http for a non-loopback host")
	}
	return fmt.Errorf("field ResponseURL has scheme %q, want https", kit.Cut(u.Scheme, 20))
}

// Wrap returns a Lambda handler (for lambda.Start) that runs h and answers CloudFormation exactly
// once. The returned function returns nil whenever CloudFormation got its answer, SUCCESS or
// FAILED; it returns an error only when no answer could be delivered (unusable request, PUT
// refused or out of attempts), so the Lambda Errors metric counts exactly the stacks left
// waiting. Deploy it with asynchronous retries off (MaximumRetryAttempts 0): a retried invocation
// would run the handler again for a request that may already be answered.
func Wrap(h Handler, opts Options) func(ctx context.Context, req Request) error {
	w := &wrapper{h: h, o: opts.withDefaults()}
	return w.serve
}

func (o Options) withDefaults() Options {
	if o.Client == nil {
		o.Client = &http.Client{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Margin <= 0 {
		o.Margin = 10 * time.Second
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 5
	}
	if o.BaseBackoff <= 0 {
		o.BaseBackoff = 250 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 4 * time.Second
	}
	if o.AttemptTimeout <= 0 {
		o.AttemptTimeout = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = kit.Sleep
	}
	if o.LogGroup == "" {
		o.LogGroup = lambdacontext.LogGroupName
	}
	if o.LogStream == "" {
		o.LogStream = lambdacontext.LogStreamName
	}
	return o
}

type wrapper struct {
	h Handler
	o Options
}

// outcome is what the handler goroutine produced.
type outcome struct {
	res      Result
	err      error
	panicked bool
	panicVal any
	stack    []byte
	inTime   bool // returned before its context was cancelled
}

// answer is the response being prepared, before redaction and fitting.
type answer struct {
	status     string
	reason     string
	physicalID string
	data       map[string]string
	noEcho     bool
}

// errGuard is the cancellation cause the handler's context carries when the guard fires.
var errGuard = errors.New("custom resource deadline guard: answering CloudFormation before the Lambda deadline")

func (w *wrapper) serve(ctx context.Context, req Request) error {
	start := w.o.Now()
	secrets := &secretSet{}

	if err := Validate(req); err != nil {
		ans := answer{status: StatusFailed, reason: err.Error(), physicalID: fallbackID(req)}
		if w.responseURLError(req.ResponseURL) != nil {
			w.logRecord(req, ans, start, 0, err, w.redactor(secrets))
			return fmt.Errorf("cannot answer CloudFormation: %w", err)
		}
		return w.finish(ctx, req, ans, start, secrets)
	}
	if err := w.responseURLError(req.ResponseURL); err != nil {
		// Not CloudFormation's bucket: whoever sent this reads whatever is PUT there.
		ans := answer{status: StatusFailed, reason: err.Error(), physicalID: fallbackID(req)}
		w.logRecord(req, ans, start, 0, err, w.redactor(secrets))
		return fmt.Errorf("refusing to answer at ResponseURL: %w", err)
	}
	if w.o.Authenticate != nil {
		if err := w.o.Authenticate(ctx, req); err != nil {
			w.o.Logger.Warn("custom resource request not acted on: CloudFormation did not send it, or could not confirm it",
				slog.String("request_type", string(req.RequestType)),
				slog.String("stack_id", req.StackID),
				slog.String("logical_resource_id", req.LogicalResourceID),
				slog.String("error", err.Error()))
			return w.finish(ctx, req, answer{status: StatusFailed, reason: "not acted on: " + err.Error(), physicalID: fallbackID(req)}, start, secrets)
		}
	}

	hctx, cancel, margin := w.handlerContext(ctx, req)
	defer cancel(nil)
	hctx = context.WithValue(hctx, secretsKey{}, secrets)

	done := make(chan outcome, 1) // buffered: a late handler never blocks on a gone reader
	go func() {
		o := outcome{}
		defer func() {
			if p := recover(); p != nil {
				o = outcome{panicked: true, panicVal: p, stack: debug.Stack()}
			}
			// A result produced after the guard cancelled the context may be a mere
			// reaction to the cancellation, and the guard answers for it anyway.
			o.inTime = hctx.Err() == nil
			done <- o
		}()
		o.res, o.err = w.h(hctx, req)
	}()

	var o outcome
	got := false
	select {
	case o = <-done:
		got = true
	case <-hctx.Done():
		select {
		case o = <-done:
			got = true
		default:
		}
	}
	if got && o.inTime {
		return w.finish(ctx, req, w.fromOutcome(req, o, secrets), start, secrets)
	}
	cause := context.Cause(hctx)
	cancel(errGuard)
	err := w.finish(ctx, req, w.interrupted(req, cause, start, margin), start, secrets)
	if got {
		w.logLate(req, o, start, secrets)
	} else {
		w.awaitLate(ctx, req, done, start, secrets)
	}
	return err
}

// handlerContext derives the handler's context: cancelled at the guard time, which is the
// earlier of the Lambda deadline and the request's ServiceTimeout, minus the margin. CloudFormation
// starts its ServiceTimeout clock before the invocation, so that bound is only approximate.
func (w *wrapper) handlerContext(ctx context.Context, req Request) (context.Context, context.CancelCauseFunc, time.Duration) {
	// Deadlines are on the real clock (a context timer cannot use an injected one), so this
	// arithmetic is too; Options.Now only measures durations for messages and logs.
	now := time.Now()
	end, ok := ctx.Deadline()
	if st, has := serviceTimeout(req); has {
		if e := now.Add(st); !ok || e.Before(end) {
			end, ok = e, true
		}
	}
	if !ok {
		c, cancel := context.WithCancelCause(ctx)
		return c, cancel, 0
	}
	margin := max(min(w.o.Margin, end.Sub(now)/3), 0)
	c, cancelDeadline := context.WithDeadlineCause(ctx, end.Add(-margin), errGuard)
	c, cancel := context.WithCancelCause(c)
	return c, func(cause error) { cancel(cause); cancelDeadline() }, margin
}

// serviceTimeout reads the optional ServiceTimeout property (seconds, 1–3600; CloudFormation
// sends properties as strings). Anything else is ignored: it is CloudFormation's setting, not the
// handler's input, and the Lambda deadline still bounds the guard.
func serviceTimeout(req Request) (time.Duration, bool) {
	var secs float64
	switch v := req.ResourceProperties["ServiceTimeout"].(type) {
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return 0, false
		}
		secs = f
	case float64:
		secs = v
	default:
		return 0, false
	}
	if secs < 1 || secs > 3600 {
		return 0, false
	}
	return time.Duration(secs * float64(time.Second)), true
}

// fromOutcome turns what the handler did into an answer, applying the physical-id rules.
func (w *wrapper) fromOutcome(req Request, o outcome, secrets *secretSet) answer {
	if o.panicked {
		red := w.redactor(secrets)
		w.o.Logger.Error("custom resource handler panicked",
			slog.String("request_type", string(req.RequestType)),
			slog.String("logical_resource_id", req.LogicalResourceID),
			slog.String("request_id", req.RequestID),
			slog.String("panic", red.Redact(kit.Cut(fmt.Sprint(o.panicVal), 2000))),
			slog.String("stack", string(o.stack)))
		return answer{status: StatusFailed, reason: "the handler panicked; " + w.seeLogs(), physicalID: fallbackID(req)}
	}
	ans := answer{status: StatusSuccess, physicalID: o.res.PhysicalResourceID, data: o.res.Data, noEcho: o.res.NoEcho}
	if o.err != nil {
		ans.status = StatusFailed
		ans.reason = o.err.Error()
		if strings.TrimSpace(ans.reason) == "" {
			ans.reason = "the handler failed without a message; " + w.seeLogs()
		}
	}
	switch req.RequestType {
	case RequestDelete:
		if ans.physicalID != "" && ans.physicalID != req.PhysicalResourceID {
			w.o.Logger.Warn("custom resource handler returned a different physical id on Delete; answering with the request's",
				slog.String("logical_resource_id", req.LogicalResourceID))
		}
		ans.physicalID = req.PhysicalResourceID
	case RequestUpdate:
		if ans.physicalID == "" {
			ans.physicalID = req.PhysicalResourceID
		}
	case RequestCreate:
		if ans.physicalID == "" {
			if o.err != nil {
				ans.physicalID = FailedCreateID(req.RequestID)
			} else {
				// A successful Create must name what it made; the request id is what
				// cfn.LambdaWrap uses, so a handler relying on that keeps working.
				w.o.Logger.Warn("custom resource handler returned no physical id on Create; using the request id",
					slog.String("logical_resource_id", req.LogicalResourceID))
				ans.physicalID = req.RequestID
			}
		}
	}
	return ans
}

// interrupted is the answer when the handler did not finish before the guard (or the invocation
// was cancelled). On Create the id owns nothing: the handler was told to undo its work.
func (w *wrapper) interrupted(req Request, cause error, start time.Time, margin time.Duration) answer {
	elapsed := w.o.Now().Sub(start).Round(time.Millisecond)
	var reason string
	if errors.Is(cause, errGuard) || errors.Is(cause, context.DeadlineExceeded) {
		reason = fmt.Sprintf("timed out after %s: the handler was still running %s before the deadline, so its result will be discarded; %s",
			elapsed, margin.Round(time.Millisecond), w.seeLogs())
	} else {
		reason = fmt.Sprintf("the invocation was cancelled after %s before the handler finished; %s", elapsed, w.seeLogs())
	}
	return answer{status: StatusFailed, reason: reason, physicalID: fallbackID(req)}
}

// awaitLate gives a handler the guard interrupted a little time to finish (typically undoing its
// work on the cancelled context) so that its fate is logged in this invocation. It stops well
// before the Lambda deadline, so the invocation itself never times out.
func (w *wrapper) awaitLate(ctx context.Context, req Request, done <-chan outcome, start time.Time, secrets *secretSet) {
	dl, ok := ctx.Deadline()
	if !ok {
		return
	}
	left := time.Until(dl)
	wait := left - min(time.Second, left/2)
	if wait <= 0 {
		return
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case o := <-done:
		w.logLate(req, o, start, secrets)
	case <-t.C:
	case <-ctx.Done():
	}
}

// logLate records a result the guard discarded. The physical id is logged so that an operator can
// find what a late Create left behind if the handler did not undo it.
func (w *wrapper) logLate(req Request, o outcome, start time.Time, secrets *secretSet) {
	late := w.fromOutcome(req, o, secrets)
	red := w.redactor(secrets)
	w.o.Logger.Warn("custom resource handler finished after the deadline guard answered; its result was discarded",
		slog.String("request_type", string(req.RequestType)),
		slog.String("logical_resource_id", req.LogicalResourceID),
		slog.String("request_id", req.RequestID),
		slog.String("discarded_status", late.status),
		slog.String("discarded_physical_resource_id", red.Redact(kit.Cut(late.physicalID, MaxPhysicalIDBytes))),
		slog.String("discarded_reason", red.Redact(kit.Cut(late.reason, 1000))),
		slog.Int64("duration_ms", w.o.Now().Sub(start).Milliseconds()))
}

// fallbackID is the physical id for answers the handler did not shape: a failed Create owns
// nothing; otherwise the request's own id.
func fallbackID(req Request) string {
	if req.RequestType != RequestCreate && req.PhysicalResourceID != "" && len(req.PhysicalResourceID) <= MaxPhysicalIDBytes {
		return req.PhysicalResourceID
	}
	return FailedCreateID(kit.Cut(req.RequestID, 200))
}

func (w *wrapper) seeLogs() string {
	switch {
	case w.o.LogGroup != "" && w.o.LogStream != "":
		return fmt.Sprintf("see CloudWatch Logs group %s, stream %s", w.o.LogGroup, w.o.LogStream)
	case w.o.LogStream != "":
		return "see CloudWatch Logs stream " + w.o.LogStream
	}
	return "see the function's logs"
}

// finish enforces the response rules, sends the answer and logs the one record per request.
func (w *wrapper) finish(ctx context.Context, req Request, ans answer, start time.Time, secrets *secretSet) error {
	red := w.redactor(secrets)
	ans = w.enforce(req, ans, red)
	body, resp, err := buildBody(req, ans)
	if err != nil {
		w.logRecord(req, ans, start, 0, err, red)
		return fmt.Errorf("answering CloudFormation for %s: %w", req.LogicalResourceID, err)
	}
	ans.status, ans.reason, ans.data = resp.Status, resp.Reason, resp.Data
	attempts, err := w.put(ctx, req.ResponseURL, body)
	w.logRecord(req, ans, start, attempts, err, red)
	if err != nil {
		return fmt.Errorf("answering CloudFormation for %s: %w", req.LogicalResourceID, err)
	}
	return nil
}

// enforce applies the rules that hold whatever the handler returned: a physical id that fits
// and holds no secret, no credential-named Data key, a Reason on FAILED, and redaction.
func (w *wrapper) enforce(req Request, ans answer, red *Redactor) answer {
	fail := func(reason string) {
		ans.status = StatusFailed
		if ans.reason != "" {
			reason += "; " + ans.reason
		}
		ans.reason = reason
	}
	switch {
	case ans.physicalID == "":
		ans.physicalID = fallbackID(req)
	case len(ans.physicalID) > MaxPhysicalIDBytes:
		fail(fmt.Sprintf("the handler returned a physical id of %d bytes; CloudFormation allows %d", len(ans.physicalID), MaxPhysicalIDBytes))
		ans.physicalID = fallbackID(req)
	case red.Redact(ans.physicalID) != ans.physicalID:
		fail("the handler returned a physical id containing a secret value; refusing to send it")
		ans.physicalID = fallbackID(req)
	}
	for k := range ans.data {
		if credentialKey(k) {
			fail(fmt.Sprintf("Data key %q names a credential; custom resource attributes must not carry secrets, so none were sent", kit.Cut(red.Redact(k), 100)))
			ans.data = nil
			break
		}
	}
	if ans.status == StatusFailed {
		// CloudFormation ignores attributes of a failed resource; not sending them keeps the
		// body small and the Reason whole.
		ans.data = nil
		ans.noEcho = false
		if strings.TrimSpace(ans.reason) == "" {
			ans.reason = "failed; " + w.seeLogs()
		}
	}
	ans.reason = red.Redact(ans.reason)
	if ans.data != nil {
		clean := make(map[string]string, len(ans.data))
		for k, v := range ans.data {
			clean[red.Redact(k)] = red.Redact(v)
		}
		ans.data = clean
	}
	return ans
}

// credentialSuffixes are the normalised key endings refused in Data. Attribute names such as
// SecretArn or SecretName stay allowed: they identify a secret without revealing it.
var credentialSuffixes = []string{"password", "passwd", "passphrase", "token", "secret", "apikey", "privatekey", "credential", "credentials"}

func credentialKey(k string) bool {
	var b strings.Builder
	for _, r := range strings.ToLower(k) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		}
	}
	n := b.String()
	for _, s := range credentialSuffixes {
		if strings.HasSuffix(n, s) {
			return true
		}
	}
	return false
}

// logRecord writes the one record per request. It names the ResponseURL by host and path only.
func (w *wrapper) logRecord(req Request, ans answer, start time.Time, attempts int, err error, red *Redactor) {
	level, msg := slog.LevelInfo, "custom resource request answered"
	if ans.status == StatusFailed {
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.String("request_type", string(req.RequestType)),
		slog.String("logical_resource_id", req.LogicalResourceID),
		slog.String("stack_id", req.StackID),
		slog.String("request_id", req.RequestID),
		slog.String("physical_resource_id", red.Redact(ans.physicalID)),
		slog.String("status", ans.status),
		slog.Int64("duration_ms", w.o.Now().Sub(start).Milliseconds()),
		slog.Int("put_attempts", attempts),
		slog.String("response_url", safeURL(req.ResponseURL)),
	}
	if ans.reason != "" {
		attrs = append(attrs, slog.String("reason", red.Redact(ans.reason)))
	}
	if err != nil {
		level, msg = slog.LevelError, "custom resource request NOT answered; the stack waits until ServiceTimeout"
		attrs = append(attrs, slog.String("error", red.Redact(scrubURL(err.Error(), req.ResponseURL))))
	}
	w.o.Logger.LogAttrs(context.Background(), level, msg, attrs...)
}

func (w *wrapper) redactor(s *secretSet) *Redactor {
	var vals []string
	if w.o.SecretValues != nil {
		vals = append(vals, w.o.SecretValues()...)
	}
	return NewRedactor(append(vals, s.values()...)...)
}
