package localcloud

import (
	"bytes"
	"context"
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
	"time"
)

// InvokePath is the one route aws-lambda-rie serves: Lambda's Invoke API for a function it calls
// "function".
const InvokePath = "/2015-03-31/functions/function/invocations"

// Function is one bootstrap running under its own aws-lambda-rie process.
type Function struct {
	// Name is the function's directory under functions/ ("rotator", "provisioner").
	Name string
	// ARN is the function's ARN in the emulated account.
	ARN string
	// URL is the emulator's base URL (http://127.0.0.1:PORT); Invoke is POST URL+InvokePath.
	URL string
	// Addr is the emulator's host:port, for checks that it stopped.
	Addr string
	// Started is when the RIE process was started (cold-start measurements begin here).
	Started time.Time

	out    *syncBuffer
	cmd    *exec.Cmd
	exited chan struct{}
	once   sync.Once
}

// Output returns everything the RIE process and the bootstrap it started wrote to stdout and
// stderr: RIE's own log, START/END/REPORT lines, the function's JSON logs and EMF lines.
func (f *Function) Output() string { return f.out.String() }

// Exited is closed once the RIE process has exited.
func (f *Function) Exited() <-chan struct{} { return f.exited }

// Invocation is what the emulator answered to one Invoke.
type Invocation struct {
	Status int
	Body   []byte
}

// Invoke sends payload as one synchronous Invoke and returns the answer. A handler error is an
// answer (with an errorMessage body), not an error; only a failed exchange is.
func (f *Function) Invoke(ctx context.Context, payload []byte) (Invocation, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.URL+InvokePath, bytes.NewReader(payload))
	if err != nil {
		return Invocation{}, fmt.Errorf("building the Invoke request for %s: %w", f.Name, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Invocation{}, fmt.Errorf("invoking %s: %w", f.Name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 6<<20)) // Lambda's response payload limit
	if err != nil {
		return Invocation{}, fmt.Errorf("reading the answer of %s: %w", f.Name, err)
	}
	return Invocation{Status: resp.StatusCode, Body: body}, nil
}

// StartFunction runs bootstrap under a fresh aws-lambda-rie on free loopback ports and waits
// until the emulator accepts connections. RIE starts the bootstrap itself on the first Invoke.
// env is the whole environment of RIE and so of the function. The caller must Stop it.
func StartFunction(rie, name, arn, bootstrap string, env map[string]string) (*Function, error) {
	var lastErr error
	for range 3 { // a free port can be taken between probing and binding
		f, err := launch(rie, name, arn, bootstrap, env)
		if err == nil {
			return f, nil
		}
		lastErr = err
	}
	return nil, fmt.Errorf("starting %s under aws-lambda-rie: %w", name, lastErr)
}

func launch(rie, name, arn, bootstrap string, env map[string]string) (*Function, error) {
	invokePort, err := freePort()
	if err != nil {
		return nil, err
	}
	apiPort, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(invokePort)
	// --runtime-api-address: RIE's Runtime API (what the bootstrap polls) defaults to the fixed
	// 127.0.0.1:9001, so two emulators at once need their own ports. The argument after the
	// flags is the bootstrap command (a further one would be taken as the handler).
	cmd := exec.Command(rie,
		"--runtime-interface-emulator-address", addr,
		"--runtime-api-address", "127.0.0.1:"+strconv.Itoa(apiPort),
		bootstrap)
	cmd.Dir = filepath.Dir(bootstrap) // RIE runs the bootstrap in its own working directory
	// aws-lambda-rie hands its whole environment to the bootstrap, so this is the function's
	// environment too: only what Lambda would set, nothing of the caller's AWS setup.
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, killed as a whole; and gone if this process dies first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// The bootstrap inherits RIE's output pipe; never let Wait hang on it.
	cmd.WaitDelay = 2 * time.Second
	f := &Function{Name: name, ARN: arn, URL: "http://" + addr, Addr: addr, out: out, cmd: cmd, exited: make(chan struct{})}
	f.Started = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", rie, err)
	}
	go func() { _ = cmd.Wait(); close(f.exited) }()
	if err := f.waitListening(15*time.Second, invokePort, apiPort); err != nil {
		f.Stop()
		return nil, fmt.Errorf("%w; its output:\n%s", err, out.String())
	}
	return f, nil
}

// waitListening waits until the RIE process itself listens on both of its ports. A bare
// "something accepts connections there" is not enough: another process may have taken a port
// between freePort's probe and RIE's bind, and RIE then exits while the other process answers.
func (f *Function) waitListening(limit time.Duration, ports ...int) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-f.exited:
			return errors.New("aws-lambda-rie exited before listening (a port it was given may have been taken)")
		default:
		}
		if mine := listeningPorts(f.cmd.Process.Pid); allIn(ports, mine) {
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("aws-lambda-rie did not listen on %s within %s", f.Addr, limit)
}

func allIn(ports []int, set map[int]bool) bool {
	for _, p := range ports {
		if !set[p] {
			return false
		}
	}
	return true
}

// listeningPorts returns the TCP ports on which process pid holds a listening socket, from
// /proc: the socket inodes among its file descriptors, matched against /proc/<pid>/net/tcp.
func listeningPorts(pid int) map[int]bool {
	fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
	inodes := map[string]bool{}
	for _, fd := range fds {
		if target, err := os.Readlink(fd); err == nil && strings.HasPrefix(target, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")] = true
		}
	}
	out := map[int]bool{}
	for _, table := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
			fields := strings.Fields(line)
			if len(fields) < 10 || fields[3] != "0A" || !inodes[fields[9]] { // 0A: LISTEN
				continue
			}
			if i := strings.LastIndexByte(fields[1], ':'); i >= 0 {
				if port, err := strconv.ParseInt(fields[1][i+1:], 16, 32); err == nil {
					out[int(port)] = true
				}
			}
		}
	}
	return out
}

// Stop ends RIE the way a container stop does: SIGTERM, on which RIE kills the runtime and waits
// for it. If RIE does not exit in time, its process group and the bootstrap's (RIE starts the
// runtime in a group of its own) are killed. Safe to call more than once.
func (f *Function) Stop() {
	f.once.Do(func() {
		pid := f.cmd.Process.Pid
		children := childrenOf(pid)
		_ = syscall.Kill(pid, syscall.SIGTERM)
		select {
		case <-f.exited:
			return
		case <-time.After(3 * time.Second):
		}
		// The runtime lives in a group of its own; kill it with RIE's.
		for _, c := range children {
			_ = syscall.Kill(-c, syscall.SIGKILL)
		}
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-f.exited
	})
}

// childrenOf lists the processes whose parent is pid (from /proc).
func childrenOf(pid int) []int {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []int
	for _, p := range stats {
		b, err := os.ReadFile(p)
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
			if c, err := strconv.Atoi(filepath.Base(filepath.Dir(p))); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

// freePort asks the kernel for a free loopback TCP port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free loopback port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// syncBuffer is a bytes.Buffer safe for concurrent writers (RIE and the bootstrap share it).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
