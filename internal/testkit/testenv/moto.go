// Package testenv starts the real components tests run against — moto_server for Secrets
// Manager — and drives rotations the way Secrets Manager does. It is imported only by tests and
// the benchmarks.
package testenv

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/localsm"
)

// Region and account moto answers for.
const (
	Region    = "us-east-1"
	AccountID = "123456789012"
)

// Moto is a running moto_server behind a gate that lets one request through at a time.
//
// moto 5.2.1's Secrets Manager backend is not thread-safe: two requests at once can make it
// iterate a dict another request is changing, and Werkzeug then answers an HTML 500. With SDK
// retries off (as the fault matrix runs them) that 500 reaches the product as if a test had
// injected it. So every client — test code, the product under test, bootstraps under
// aws-lambda-rie — reaches moto only through Endpoint, and the gate in front of it holds every
// other request until the one in flight has its answer. moto is one Python process that serves
// one request at a time at full speed anyway; the gate costs no throughput.
type Moto struct {
	// Endpoint is the gate's http://127.0.0.1:<port>: what every client must use.
	Endpoint string
	// Direct is moto_server's own address, for the tests that prove the gate is needed.
	Direct string

	cmd  *exec.Cmd
	gate *http.Server
	once sync.Once
}

// StartMoto starts moto_server on a loopback port it picks itself (-p 0, so no other process
// can take the port between a probe and the bind), puts the one-request gate in front of it and
// waits until moto answers through the gate. It fails with an actionable message when
// moto_server is not installed.
func StartMoto() (*Moto, error) {
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		return nil, errors.New("moto_server is not on PATH: the Secrets Manager tests need it (pip install 'moto[server]==5.2.1')")
	}
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", "0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if os.Getenv("PTC_MOTO_LOG") != "" {
		cmd.Stdout = os.Stderr
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting moto_server: %w", err)
	}
	m := &Moto{cmd: cmd}
	direct, err := readListenAddr(stderr, 60*time.Second)
	if err != nil {
		m.Stop()
		return nil, fmt.Errorf("moto_server did not start: %w", err)
	}
	m.Direct = direct
	if m.gate, m.Endpoint, err = startGate(direct); err != nil {
		m.Stop()
		return nil, err
	}
	if err := m.wait(60 * time.Second); err != nil {
		m.Stop()
		return nil, fmt.Errorf("moto_server did not answer: %w", err)
	}
	return m, nil
}

// readListenAddr reads moto_server's (Werkzeug's) stderr until it prints the address it bound,
// then keeps draining it (to PTC_MOTO_LOG's stderr or nowhere) so moto never blocks on a full
// pipe.
func readListenAddr(r io.Reader, limit time.Duration) (string, error) {
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(r)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			if os.Getenv("PTC_MOTO_LOG") != "" {
				fmt.Fprintln(os.Stderr, line)
			}
			if i := strings.Index(line, "Running on http://"); i >= 0 && !sent {
				found <- strings.TrimSpace(line[i+len("Running on "):])
				sent = true
			}
		}
		if !sent {
			close(found)
		}
		_, _ = io.Copy(io.Discard, r)
	}()
	select {
	case addr, ok := <-found:
		if !ok {
			return "", errors.New("moto_server exited before it printed its address")
		}
		return addr, nil
	case <-time.After(limit):
		return "", fmt.Errorf("moto_server printed no address within %s", limit)
	}
}

// startGate serves a reverse proxy to direct that holds each request until the one before it
// has been answered, and returns its http:// endpoint. Its listener is bound before its address
// is known, so it has no port race either.
func startGate(direct string) (*http.Server, string, error) {
	target, err := url.Parse(direct)
	if err != nil {
		return nil, "", fmt.Errorf("moto_server's address %q: %w", direct, err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", fmt.Errorf("listening for the moto gate: %w", err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	// One connection to moto is all the gate ever needs.
	proxy.Transport = &http.Transport{MaxIdleConnsPerHost: 1, IdleConnTimeout: 30 * time.Second}
	proxy.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		http.Error(w, "moto gate: "+err.Error(), http.StatusBadGateway)
	}
	one := make(chan struct{}, 1)
	gate := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Amz-Target") == "secretsmanager.ValidateResourcePolicy" {
			answerValidateResourcePolicy(w, r)
			return
		}
		select {
		case one <- struct{}{}:
		case <-r.Context().Done():
			return // the client gave up while waiting; moto never saw the request
		}
		defer func() { <-one }()
		// Wait for moto's whole answer even when the client gives up: releasing the gate while
		// moto still works on a request would let the next one in beside it. (A context with no
		// Done channel at all would make ReverseProxy cancel through CloseNotifier instead.)
		ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
		defer cancel()
		proxy.ServeHTTP(w, r.WithContext(ctx))
	})}
	go func() { _ = gate.Serve(l) }()
	return gate, "http://" + l.Addr().String(), nil
}

// answerValidateResourcePolicy answers the one Secrets Manager operation the provisioner
// calls that moto 5.2.1 does not implement (it has Put/Get/DeleteResourcePolicy but no
// ValidateResourcePolicy), with localsm's checks of the document. It needs no state of moto's:
// the SecretId is not looked up.
func answerValidateResourcePolicy(w http.ResponseWriter, r *http.Request) {
	var in struct{ ResourcePolicy string }
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil || json.Unmarshal(body, &in) != nil {
		http.Error(w, "moto gate: unreadable ValidateResourcePolicy request", http.StatusBadRequest)
		return
	}
	localsm.WriteValidateResponse(w, in.ResourcePolicy)
}

func (m *Moto) wait(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		resp, err := http.Get(m.Endpoint + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer from %s within %s: %v", m.Endpoint, limit, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop closes the gate and kills moto_server and its children.
func (m *Moto) Stop() {
	m.once.Do(func() {
		if m.gate != nil {
			_ = m.gate.Close()
		}
		if m.cmd != nil && m.cmd.Process != nil {
			_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
			_ = m.cmd.Wait()
		}
	})
}

// Reset drops every resource moto holds, so tests sharing one server start clean.
func (m *Moto) Reset() error {
	resp, err := http.Post(m.Endpoint+"/moto-api/reset", "application/json", nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// SecretsManager returns a real SDK client pointed at moto.
func (m *Moto) SecretsManager() *secretsmanager.Client {
	return secretsmanager.NewFromConfig(AWSConfig(), func(o *secretsmanager.Options) { o.BaseEndpoint = aws.String(m.Endpoint) })
}

// AWSConfig is an SDK configuration with static test credentials and the test Region.
func AWSConfig() aws.Config {
	return aws.Config{
		Region:      Region,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "test-secret-key", ""),
	}
}

// StartMotoT starts moto for one test and stops it when the test ends.
func StartMotoT(t testing.TB) *Moto {
	t.Helper()
	m, err := StartMoto()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	return m
}

// Context returns a context with a Lambda-like deadline for one step.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// RunWithMoto is a whole TestMain: it starts one moto_server for the package into *moto, runs
// the tests and stops it. Use it as os.Exit(testenv.RunWithMoto(m, &moto)).
func RunWithMoto(m *testing.M, moto **Moto) int {
	started, err := StartMoto()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	*moto = started
	defer started.Stop()
	return m.Run()
}
