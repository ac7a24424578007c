package faults

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
)

// Kind is one way an external call fails.
type Kind string

// The fault kinds, in matrix column order.
const (
	// ErrorResponse answers with a 4xx in the API's own format, without calling the server.
	ErrorResponse Kind = "error-response"
	// ServerError answers 500 (AWS) or 503 (upstreams), without calling the server.
	ServerError Kind = "5xx"
	// Reset fails the call as a reset connection, without calling the server.
	Reset Kind = "reset"
	// Hang blocks until the request's context is done, without calling the server.
	Hang Kind = "hang"
	// Die makes the call for real, then kills the process (see errDeath).
	Die Kind = "die-after-success"
	// Lost makes the call for real, then fails it as a reset connection: the server did the
	// work, the caller cannot know (a timeout or a dropped connection after the server
	// committed). Not in the brief's list; added because it is the one ambiguous failure.
	Lost Kind = "lost-response"
)

// Kinds are every fault kind.
var Kinds = []Kind{ErrorResponse, ServerError, Reset, Hang, Die, Lost}

// deathText marks the panic that stands for the process being killed. rotation.Rotator.Handle
// recovers panics into an error quoting the value, so an error containing it means death too.
const deathText = "PTC-FAULT-PROCESS-KILLED"

var errDeath = errors.New(deathText)

// errDead is what every call gets once the process is dead or frozen: no call made after a
// death reaches a server, wherever it comes from (a goroutine the panic did not end).
var errDead = errors.New("faults: the process is dead or frozen: no call leaves it")

// hangCap bounds a hang whose request carries no deadline; reaching it is a finding (a call
// that could hang a Lambda until its timeout), reported by the test. A request with a deadline
// hangs until that deadline, however far: a hang case's deadline grows on a loaded machine (see
// withHangRetry), and a cap shorter than it would report a bounded call as unbounded.
const hangCap = 20 * time.Second

// Call is one counted external call.
type Call struct {
	// N is the call's number in the scenario, from 1.
	N int
	// Op names the operation, e.g. "sm:DescribeSecret" or "hub:POST /v2/access-tokens".
	Op string
	// Inv is the invocation (Lambda run) the call was made in, from 1.
	Inv int
}

// Injector is the counting RoundTripper every client of a scenario goes through. At most one
// fault is armed: kind, at the call want.
type Injector struct {
	inner http.RoundTripper

	mu sync.Mutex
	// hosts maps host:port to a short service name for upstream emulators.
	hosts map[string]string
	// home is the Region an AWS call is made in unless its SigV4 scope says otherwise; a call
	// in another Region is named <op>@<region>, so the home Region's names stay those of a
	// single-Region matrix.
	home string
	// counting is off during setup and checks: those calls are not the product's.
	counting bool
	calls    []Call
	inv      int
	armed    bool
	kind     Kind
	want     Call
	fired    *Call
	dead     bool
	frozen   bool
	// unbounded lists hangs that no deadline ended.
	unbounded []string
}

// sharedTransport keeps connections to the Secrets Managers and the emulators alive across
// calls.
var sharedTransport = func() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 64
	return t
}()

// NewInjector returns an injector with nothing armed and counting off.
func NewInjector() *Injector {
	return &Injector{inner: sharedTransport, hosts: map[string]string{}, home: testenv.Region}
}

// Client returns an HTTP client whose every call goes through the injector.
func (in *Injector) Client() *http.Client { return &http.Client{Transport: in} }

// Name registers a short service name for an emulator's base URL.
func (in *Injector) Name(baseURL, name string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.hosts[strings.TrimPrefix(baseURL, "http://")] = name
}

// Arm makes call number want.N fail with kind, provided it is the call the dry run made there
// (same operation, same invocation). A run that strayed from the dry run before reaching it
// (a hang case whose short deadline ran out early on a loaded machine) gets no fault at all,
// and Fired reports nil so the case is run again.
func (in *Injector) Arm(want Call, kind Kind) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.armed, in.kind, in.want = true, kind, want
}

// Disarm turns the fault off (retries run fault-free) while counting goes on.
func (in *Injector) Disarm() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.armed = false
}

// Counting turns counting on or off.
func (in *Injector) Counting(on bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.counting = on
}

// Begin starts invocation number inv: a new process, alive and not frozen.
func (in *Injector) Begin(inv int) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.inv, in.dead, in.frozen = inv, false, false
}

// Freeze stops every further call, as Lambda freezes the environment once the handler returned.
func (in *Injector) Freeze() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.frozen = true
}

// Dead reports whether the current invocation died.
func (in *Injector) Dead() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.dead
}

// Calls returns the counted calls so far.
func (in *Injector) Calls() []Call {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]Call(nil), in.calls...)
}

// Fired returns the call the fault hit, or nil.
func (in *Injector) Fired() *Call {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.fired
}

// HangIn reports whether a hang fault fired in invocation inv.
func (in *Injector) HangIn(inv int) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.fired != nil && in.fired.Inv == inv && in.kind == Hang
}

// Unbounded returns the hangs that no deadline ended.
func (in *Injector) Unbounded() []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]string(nil), in.unbounded...)
}

// RoundTrip implements http.RoundTripper.
func (in *Injector) RoundTrip(req *http.Request) (*http.Response, error) {
	in.mu.Lock()
	if in.dead || in.frozen {
		in.mu.Unlock()
		closeBody(req)
		return nil, errDead
	}
	if !in.counting {
		in.mu.Unlock()
		return in.inner.RoundTrip(req)
	}
	if req.URL.Scheme == "https" && in.hosts[req.URL.Host] != "" {
		// go-containerregistry pings a plain-http (loopback) registry over https first and
		// falls back to http; the probe is an artefact of the emulators being plain http,
		// fails at once, and is neither counted nor faulted.
		in.mu.Unlock()
		return in.inner.RoundTrip(req)
	}
	c := Call{N: len(in.calls) + 1, Op: in.op(req), Inv: in.inv}
	in.calls = append(in.calls, c)
	fire := in.armed && c == in.want
	kind := in.kind
	if fire {
		in.fired = &c
	}
	in.mu.Unlock()
	if !fire {
		return in.inner.RoundTrip(req)
	}
	return in.fault(req, c, kind)
}

func (in *Injector) fault(req *http.Request, c Call, kind Kind) (*http.Response, error) {
	switch kind {
	case ErrorResponse, ServerError:
		closeBody(req)
		status, body, header := errorAnswer(c.Op, kind)
		return &http.Response{
			Status: fmt.Sprintf("%d %s", status, http.StatusText(status)), StatusCode: status,
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: header, Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)), Request: req,
		}, nil
	case Reset:
		closeBody(req)
		return nil, &net.OpError{Op: "read", Net: "tcp", Addr: fakeAddr(req.URL.Host), Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	case Hang:
		closeBody(req)
		if _, bounded := req.Context().Deadline(); bounded {
			<-req.Context().Done()
			return nil, req.Context().Err()
		}
		t := time.NewTimer(hangCap)
		defer t.Stop()
		select {
		case <-req.Context().Done():
			return nil, req.Context().Err()
		case <-t.C:
			in.mu.Lock()
			in.unbounded = append(in.unbounded, c.Op)
			in.mu.Unlock()
			return nil, fmt.Errorf("faults: %s hung for %s: its context had no deadline", c.Op, hangCap)
		}
	case Lost:
		resp, err := in.inner.RoundTrip(req)
		if err != nil {
			return nil, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return nil, &net.OpError{Op: "read", Net: "tcp", Addr: fakeAddr(req.URL.Host), Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	case Die:
		resp, err := in.inner.RoundTrip(req)
		if err != nil {
			return nil, err // the real call failed: nothing to die after
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		in.mu.Lock()
		in.dead = true
		in.mu.Unlock()
		if req.Method == http.MethodGet && req.URL.Path == "/v2/" {
			// go-containerregistry pings an insecure registry from a goroutine of its own,
			// where a panic would kill the test binary; the death latch above makes this
			// call, and every later one, fail instead.
			return nil, errDead
		}
		panic(errDeath)
	}
	return nil, fmt.Errorf("faults: unknown kind %q", kind)
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

type fakeAddr string

func (a fakeAddr) Network() string { return "tcp" }
func (a fakeAddr) String() string  { return string(a) }

// errorAnswer is a fault answer in the format of the API that op belongs to.
func errorAnswer(op string, kind Kind) (int, []byte, http.Header) {
	h := http.Header{}
	svc, _, _ := strings.Cut(op, ":")
	if svc == "sm" || svc == "ecr" {
		// awsJson1.1: the error shape's name in __type, as moto and the ECR emulator answer.
		h.Set("Content-Type", "application/x-amz-json-1.1")
		h.Set("X-Amzn-Requestid", "00000000-0000-4000-8000-00000000fa17")
		if kind == ErrorResponse {
			return 400, []byte(`{"__type":"ThrottlingException","message":"Rate exceeded (injected fault)"}`), h
		}
		return 500, []byte(`{"__type":"InternalFailure","message":"The request processing has failed because of an unknown error (injected fault)"}`), h
	}
	h.Set("Content-Type", "application/json")
	status := http.StatusForbidden
	if kind == ServerError {
		status = http.StatusServiceUnavailable
	}
	msg := http.StatusText(status) + " (injected fault)"
	switch {
	case isRegistryOp(op):
		// OCI distribution error body.
		return status, []byte(`{"errors":[{"code":"DENIED","message":"` + msg + `"}]}`), h
	case svc == "acr" && strings.Contains(op, "/oauth2/v2.0/token"):
		// Entra ID (OAuth 2.0 error).
		return status, []byte(`{"error":"invalid_request","error_description":"AADSTS90000: ` + msg + `"}`), h
	case svc == "acr":
		// Azure Resource Manager.
		return status, []byte(`{"error":{"code":"InjectedFault","message":"` + msg + `"}}`), h
	case svc == "gitlab":
		return status, []byte(`{"message":"` + fmt.Sprint(status) + ` ` + http.StatusText(status) + `"}`), h
	}
	// Docker Hub and the GitHub API: {"message": ...}.
	return status, []byte(`{"message":"` + msg + `"}`), h
}

// isRegistryOp reports whether op is part of a registry login (OCI token handshake).
func isRegistryOp(op string) bool {
	_, rest, _ := strings.Cut(op, ":")
	for _, p := range []string{"GET /v2/", "GET /token", "GET /oauth2/token", "GET /jwt/auth"} {
		if rest == p {
			return true
		}
	}
	return false
}

// op names a request: the X-Amz-Target operation for AWS ("sm:DescribeSecret"), with
// "@<region>" appended when the SigV4 scope names a Region other than the home one
// ("sm:DescribeSecret@eu-west-1"); "<service>:<METHOD> <path>" for the rest, with ids in the
// path replaced by {id}.
func (in *Injector) op(req *http.Request) string {
	if t := req.Header.Get("X-Amz-Target"); t != "" {
		svc, op, _ := strings.Cut(t, ".")
		switch {
		case strings.HasPrefix(svc, "secretsmanager"):
			op = "sm:" + op
		case strings.HasPrefix(svc, "AmazonEC2ContainerRegistry"):
			op = "ecr:" + op
		default:
			op = t
		}
		if r := sigV4Region(req); r != "" && r != in.home {
			op += "@" + r
		}
		return op
	}
	name := in.hosts[req.URL.Host]
	if name == "" {
		name = req.URL.Host
	}
	return name + ":" + req.Method + " " + pathTemplate(req.URL.Path)
}

// sigV4Region is the Region of a request's SigV4 credential scope
// (Authorization: AWS4-HMAC-SHA256 Credential=<key>/<date>/<region>/<service>/aws4_request, ...),
// or "" for an unsigned request. The Secrets Manager and ECR emulators route by it, as AWS
// routes by endpoint, so it is the Region the call was made in.
func sigV4Region(req *http.Request) string {
	_, cred, ok := strings.Cut(req.Header.Get("Authorization"), "Credential=")
	if !ok {
		return ""
	}
	cred, _, _ = strings.Cut(cred, ",")
	parts := strings.Split(cred, "/")
	if len(parts) != 5 {
		return ""
	}
	return parts[2]
}

// regionOf splits an op name into the operation and its Region ("" for the home Region).
func regionOf(op string) (string, string) {
	base, region, _ := strings.Cut(op, "@")
	return base, region
}

var idRE = regexp.MustCompile(`^([0-9]+|[0-9a-fA-F-]{16,})$`)

func pathTemplate(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if idRE.MatchString(s) {
			segs[i] = "{id}"
		}
	}
	if len(segs) > 5 && slices.Contains(segs, "subscriptions") {
		// Azure Resource Manager paths: keep the operation, drop the resource path.
		return "…/" + strings.Join(segs[len(segs)-2:], "/")
	}
	return strings.Join(segs, "/")
}

// invocationContext is the context of one Lambda invocation: a Lambda-like deadline, short
// when this invocation is the one a hang fault will hit, so the matrix stays fast.
func invocationContext(short bool, normal, hang time.Duration) (context.Context, context.CancelFunc) {
	if short {
		return context.WithTimeout(context.Background(), hang)
	}
	return context.WithTimeout(context.Background(), normal)
}
