package benchkit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
)

// RuntimeAPI is a minimal AWS Lambda Runtime API (the 2018-06-01 interface a provided.al2023
// bootstrap polls): GET .../invocation/next hands out queued events, POST .../response and
// .../error take the answers. It exists to run the real bootstrap binaries as Lambda does and
// to see the instant a process is ready for its first event — its first GET /next — with no
// emulator's own start-up in the measurement.
type RuntimeAPI struct {
	srv *httptest.Server

	mu      sync.Mutex
	ready   chan time.Time // one value: when the first GET /next arrived
	readyOK bool
	events  chan invocation
	results chan Result
	seq     int
}

type invocation struct {
	id   string
	body []byte
}

// Result is a function's answer to one event.
type Result struct {
	ID    string
	Error bool
	Body  []byte
	// At is when the answer arrived.
	At time.Time
}

// NewRuntimeAPI starts the API on a loopback port.
func NewRuntimeAPI() *RuntimeAPI {
	a := &RuntimeAPI{events: make(chan invocation, 16), results: make(chan Result, 16)}
	a.Reset()
	a.srv = httptest.NewServer(http.HandlerFunc(a.serve))
	return a
}

// Addr is host:port, the value of AWS_LAMBDA_RUNTIME_API.
func (a *RuntimeAPI) Addr() string { return strings.TrimPrefix(a.srv.URL, "http://") }

// Close stops the API.
func (a *RuntimeAPI) Close() { a.srv.Close() }

// Reset prepares for a new process: the next GET /next is its first.
func (a *RuntimeAPI) Reset() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.ready, a.readyOK = make(chan time.Time, 1), false
}

// Ready returns the channel that receives the instant of the process's first GET /next.
func (a *RuntimeAPI) Ready() <-chan time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ready
}

// Invoke queues one event and waits for its answer.
func (a *RuntimeAPI) Invoke(ctx context.Context, body []byte) (Result, error) {
	a.mu.Lock()
	a.seq++
	id := fmt.Sprintf("bench-%08d", a.seq)
	a.mu.Unlock()
	select {
	case a.events <- invocation{id: id, body: body}:
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	for {
		select {
		case r := <-a.results:
			if r.ID == id {
				return r, nil
			}
		case <-ctx.Done():
			return Result{}, ctx.Err()
		}
	}
}

func (a *RuntimeAPI) serve(w http.ResponseWriter, r *http.Request) {
	const base = "/2018-06-01/runtime/"
	p := strings.TrimPrefix(r.URL.Path, base)
	switch {
	case r.Method == http.MethodGet && p == "invocation/next":
		a.mu.Lock()
		if !a.readyOK {
			a.readyOK = true
			a.ready <- time.Now()
		}
		a.mu.Unlock()
		select {
		case inv := <-a.events:
			h := w.Header()
			h.Set("Lambda-Runtime-Aws-Request-Id", inv.id)
			h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(time.Now().Add(300*time.Second).UnixMilli(), 10))
			h.Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:ptc-bench")
			h.Set("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000;Sampled=0")
			h.Set("Content-Type", "application/json")
			_, _ = w.Write(inv.body)
		case <-r.Context().Done():
		}
	case r.Method == http.MethodPost && strings.HasPrefix(p, "invocation/"):
		rest := strings.TrimPrefix(p, "invocation/")
		id, kind, _ := strings.Cut(rest, "/")
		body, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusAccepted)
		a.results <- Result{ID: id, Error: kind == "error", Body: body, At: time.Now()}
	case r.Method == http.MethodPost && p == "init/error":
		body, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusAccepted)
		a.results <- Result{ID: "init", Error: true, Body: body, At: time.Now()}
	default:
		http.NotFound(w, r)
	}
}

// Process is a bootstrap started the way Lambda starts one.
type Process struct {
	Cmd     *exec.Cmd
	Started time.Time
	// Output keeps the process's stdout and stderr (JSON logs, EMF) for failure reports.
	Output *bytes.Buffer
	exited chan struct{}
}

// LambdaEnv is the environment a provided.al2023 function sees, minus credentials and
// endpoints: the caller appends those.
func LambdaEnv(api *RuntimeAPI, home string) []string {
	return []string{
		"AWS_LAMBDA_RUNTIME_API=" + api.Addr(),
		"AWS_REGION=us-east-1", "AWS_DEFAULT_REGION=us-east-1",
		"AWS_LAMBDA_FUNCTION_NAME=ptc-bench", "AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256", "AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/ptc-bench",
		"AWS_LAMBDA_LOG_STREAM_NAME=bench", "_HANDLER=bootstrap", "LAMBDA_TASK_ROOT=" + home,
		"HOME=" + home, "PATH=/usr/bin:/bin", "TZ=:UTC",
		// Lambda has no shared config files; point the SDK at files that do not exist.
		"AWS_CONFIG_FILE=" + filepath.Join(home, "no-config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "no-credentials"),
		"AWS_ACCESS_KEY_ID=AKIDTEST", "AWS_SECRET_ACCESS_KEY=test-secret-key", "AWS_SESSION_TOKEN=test-session-token",
	}
}

// Start starts bootstrap with env. The clock starts just before fork/exec.
func Start(bootstrap string, env []string) (*Process, error) {
	p := &Process{Cmd: exec.Command(bootstrap), Output: &bytes.Buffer{}, exited: make(chan struct{})}
	p.Cmd.Env = env
	p.Cmd.Dir = filepath.Dir(bootstrap)
	w := &lockedWriter{w: p.Output}
	p.Cmd.Stdout, p.Cmd.Stderr = w, w
	p.Started = time.Now()
	if err := p.Cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		_ = p.Cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// WaitReady returns how long after Start the process first asked for an event.
func (p *Process) WaitReady(api *RuntimeAPI, limit time.Duration) (time.Duration, error) {
	select {
	case t := <-api.Ready():
		return t.Sub(p.Started), nil
	case <-p.exited:
		return 0, fmt.Errorf("the bootstrap exited before asking for an event: %s", tail(p.Output.String()))
	case <-time.After(limit):
		return 0, errors.New("the bootstrap did not ask for an event in time")
	}
}

// Kill ends the process (as Lambda freezes and later kills an environment) and returns its
// resource usage: peak RSS in bytes and user+system CPU.
func (p *Process) Kill() (maxRSS int64, cpu time.Duration) {
	_ = p.Cmd.Process.Kill()
	<-p.exited
	ru, ok := p.Cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0, 0
	}
	return int64(ru.Maxrss) * 1024, time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w.Len() > 1<<20 {
		l.w.Reset()
	}
	return l.w.Write(p)
}

func tail(s string) string {
	if len(s) > 2000 {
		return "…" + s[len(s)-2000:]
	}
	return s
}

// BuildFlags are the Makefile's BUILD_FLAGS.
var BuildFlags = []string{"-tags", "lambda.norpc", "-trimpath", "-ldflags", "-s -w"}

// Build runs `go build <flags> -o out <pkg>` in root with CGO off for goos/goarch.
func Build(root, pkg, goos, goarch, out string, flags []string) error {
	args := append([]string{"build"}, flags...)
	args = append(args, "-o", out, pkg)
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, b)
	}
	return nil
}

// RepoRoot is testenv.RepoRoot.
func RepoRoot() (string, error) { return testenv.RepoRoot() }
