package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/rotationtest"
	"github.com/ptc-credentials/ptc-credentials/internal/testenv"
)

// invokePath is the one route aws-lambda-rie serves: Lambda's Invoke API for a function it calls
// "function".
const invokePath = "/2015-03-31/functions/function/invocations"

// lambdaFn is one bootstrap running under its own aws-lambda-rie process.
type lambdaFn struct {
	name string
	// url is the invoke endpoint.
	url string
	// out holds everything the RIE process and the bootstrap it started wrote to stdout and
	// stderr: RIE's own log, START/END/REPORT lines, the function's JSON logs and EMF lines.
	out *rotationtest.SyncBuffer
	// started is when the RIE process was started.
	started time.Time

	cmd    *exec.Cmd
	exited chan struct{}
	once   sync.Once
}

// baseEnv is the environment of every RIE process. aws-lambda-rie hands its whole environment
// to the bootstrap (rie.InitHandler copies os.Environ into the function's variables), so this is
// also the function's environment. It starts empty rather than from the test's environment, so
// nothing of the developer's AWS setup (profiles, real credentials) can reach the function.
func baseEnv(t testing.TB, fn string) map[string]string {
	dir := t.TempDir()
	return map[string]string{
		"PATH":                        os.Getenv("PATH"),
		"HOME":                        dir,
		"AWS_CONFIG_FILE":             filepath.Join(dir, "aws-config-none"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "aws-credentials-none"),
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_REGION":                  testenv.Region,
		"AWS_ACCESS_KEY_ID":           "AKIDE2ETEST",
		"AWS_SECRET_ACCESS_KEY":       "e2e-test-secret-key",
		"AWS_LAMBDA_FUNCTION_NAME":    "ptc-" + fn,
		"AWS_LAMBDA_FUNCTION_TIMEOUT": "60",
	}
}

// startFunction runs the named bootstrap under a fresh aws-lambda-rie on free loopback ports and
// waits until the emulator accepts connections. RIE starts the bootstrap itself on the first
// invocation. Everything is killed when the test ends.
func startFunction(t testing.TB, fn string, env map[string]string) *lambdaFn {
	t.Helper()
	var lastErr error
	for range 3 { // a free port can be taken between probing and binding
		f, err := launch(fn, env)
		if err == nil {
			t.Cleanup(f.stop)
			return f
		}
		lastErr = err
	}
	t.Fatalf("starting %s under aws-lambda-rie: %v", fn, lastErr)
	return nil
}

func launch(fn string, env map[string]string) (*lambdaFn, error) {
	invokePort, err := testenv.FreePort()
	if err != nil {
		return nil, err
	}
	apiPort, err := testenv.FreePort()
	if err != nil {
		return nil, err
	}
	invokeAddr := "127.0.0.1:" + strconv.Itoa(invokePort)
	bootstrap := bootstraps[fn]
	// --runtime-api-address: RIE's Runtime API (what the bootstrap polls) defaults to the fixed
	// 127.0.0.1:9001, so two emulators at once need their own ports. Any argument after the
	// flags is the bootstrap command (rie.getBootstrap); a third would be taken as the handler.
	cmd := exec.Command(rieBin,
		"--runtime-interface-emulator-address", invokeAddr,
		"--runtime-api-address", "127.0.0.1:"+strconv.Itoa(apiPort),
		bootstrap)
	cmd.Dir = filepath.Dir(bootstrap) // RIE runs the bootstrap in its own working directory
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out := &rotationtest.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, killed as a whole; and gone if the test binary dies first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// The bootstrap inherits RIE's output pipe; never let Wait hang on it.
	cmd.WaitDelay = 2 * time.Second
	f := &lambdaFn{name: fn, url: "http://" + invokeAddr + invokePath, out: out, cmd: cmd, exited: make(chan struct{})}
	f.started = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", rieBin, err)
	}
	go func() { _ = cmd.Wait(); close(f.exited) }()
	if err := f.waitListening(invokeAddr, 15*time.Second); err != nil {
		f.stop()
		return nil, fmt.Errorf("%w; output:\n%s", err, out.String())
	}
	return f, nil
}

func (f *lambdaFn) waitListening(addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-f.exited:
			return errors.New("aws-lambda-rie exited before listening")
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(time.Millisecond)
	}
	return fmt.Errorf("aws-lambda-rie did not listen on %s within %s", addr, limit)
}

// stop ends RIE the way a container stop does: SIGTERM, on which RIE kills the runtime and waits
// for it. If RIE does not exit in time, its process group and the bootstrap's (RIE starts the
// runtime in a group of its own) are killed.
func (f *lambdaFn) stop() {
	f.once.Do(func() {
		pid := f.cmd.Process.Pid
		children := childrenOf(pid)
		_ = syscall.Kill(pid, syscall.SIGTERM)
		select {
		case <-f.exited:
			return
		case <-time.After(5 * time.Second):
		}
		for _, c := range children {
			_ = syscall.Kill(-c, syscall.SIGKILL)
		}
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-f.exited
	})
}

// childrenOf lists the processes whose parent is pid (from /proc).
func childrenOf(pid int) []int {
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []int
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err != nil {
			continue
		}
		// Format: pid (comm) state ppid ...; comm may contain spaces, so cut at the last ')'.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(b[i+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			if c, err := strconv.Atoi(filepath.Base(filepath.Dir(d))); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

// invocation is what the RIE answered to one Invoke.
type invocation struct {
	Status int
	Header http.Header
	Body   []byte
	// Sent and Answered bracket the HTTP exchange.
	Sent, Answered time.Time
}

// functionError is the body Lambda returns for a function error.
type functionError struct {
	ErrorMessage string `json:"errorMessage"`
	ErrorType    string `json:"errorType"`
}

// invoke sends event (marshalled as JSON unless it is already []byte) as one synchronous Invoke.
func (f *lambdaFn) invoke(t testing.TB, event any) invocation {
	t.Helper()
	payload, ok := event.([]byte)
	if !ok {
		var err error
		if payload, err = json.Marshal(event); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.url, bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	inv := invocation{Sent: time.Now()}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("invoking %s: %v\noutput:\n%s", f.name, err, f.out.String())
	}
	defer resp.Body.Close()
	inv.Body, err = io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the answer of %s: %v", f.name, err)
	}
	inv.Answered, inv.Status, inv.Header = time.Now(), resp.StatusCode, resp.Header
	return inv
}

// mustSucceed invokes and fails the test unless the function returned without error. Both
// handlers return nothing on success, which Lambda renders as the JSON null.
func (f *lambdaFn) mustSucceed(t testing.TB, what string, event any) invocation {
	t.Helper()
	inv := f.invoke(t, event)
	if inv.Status != http.StatusOK || strings.TrimSpace(string(inv.Body)) != "null" {
		t.Fatalf("%s: %s answered %d %s\n%s output:\n%s", what, f.name, inv.Status, inv.Body, f.name, f.out.String())
	}
	return inv
}
