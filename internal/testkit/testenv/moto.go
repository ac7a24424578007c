// Package testenv starts the real components tests run against — moto_server for Secrets
// Manager — and drives rotations the way Secrets Manager does. It is imported only by tests and
// the benchmarks.
package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// Region and account moto answers for.
const (
	Region    = "us-east-1"
	AccountID = "123456789012"
)

// Moto is a running moto_server.
type Moto struct {
	// Endpoint is http://127.0.0.1:<port>.
	Endpoint string
	cmd      *exec.Cmd
	once     sync.Once
}

// StartMoto starts moto_server on a free loopback port and waits until it answers. It fails
// with an actionable message when moto_server is not installed.
func StartMoto() (*Moto, error) {
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		return nil, errors.New("moto_server is not on PATH: the Secrets Manager tests need it (pip install 'moto[server]==5.2.1')")
	}
	var lastErr error
	for range 3 { // a free port can be taken between probing and binding
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if os.Getenv("PTC_MOTO_LOG") == "" {
			cmd.Stdout, cmd.Stderr = nil, nil
		} else {
			cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		}
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("starting moto_server: %w", err)
		}
		m := &Moto{Endpoint: "http://127.0.0.1:" + strconv.Itoa(port), cmd: cmd}
		if lastErr = m.wait(30 * time.Second); lastErr == nil {
			return m, nil
		}
		m.Stop()
	}
	return nil, fmt.Errorf("moto_server did not start: %w", lastErr)
}

func (m *Moto) wait(limit time.Duration) error {
	exited := make(chan error, 1)
	go func() { exited <- m.cmd.Wait() }()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("moto_server exited: %v", err)
		default:
		}
		resp, err := http.Get(m.Endpoint + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("no answer from %s within %s", m.Endpoint, limit)
}

// Stop kills moto_server and its children.
func (m *Moto) Stop() {
	m.once.Do(func() {
		if m.cmd.Process != nil {
			_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
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

// FreePort asks the kernel for a free loopback TCP port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
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
