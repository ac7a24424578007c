package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/localcloud"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
)

// lambdaFn is one bootstrap running under its own aws-lambda-rie process (started by
// internal/localcloud, which the demo uses too).
type lambdaFn struct {
	*localcloud.Function
	name string
	// url is the invoke endpoint.
	url string
	// out holds everything the RIE process and the bootstrap it started wrote to stdout and
	// stderr: RIE's own log, START/END/REPORT lines, the function's JSON logs and EMF lines.
	out output
	// answered counts the invocations RIE has answered.
	answered atomic.Int64
}

// output reads a function's captured output.
type output struct{ fn *lambdaFn }

// String returns the output once it holds everything of the invocations answered so far. The
// output reaches the buffer through a pipe and a copying goroutine, so right after an answer
// the function's last log and EMF lines may still be on their way; RIE prints its REPORT line
// for an invocation after the function's own lines (the bootstrap writes them before it posts
// the result RIE reports on), so a REPORT line per answered invocation marks the output
// complete. The wait is bounded by outputWait, after which the output is returned as it is (a
// check on it then fails and shows it).
func (o output) String() string {
	deadline := time.Now().Add(outputWait)
	for {
		out := o.fn.Output()
		if int64(strings.Count(out, "REPORT RequestId: ")) >= o.fn.answered.Load() || time.Now().After(deadline) {
			return out
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// outputWait bounds output.String's wait: long, because it only matters when RIE never prints
// a REPORT line, and short of that the wait ends at the line.
const outputWait = 30 * time.Second

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
	lf, err := localcloud.StartFunction(rieBin, fn, "arn:aws:lambda:"+testenv.Region+":"+testenv.AccountID+":function:ptc-"+fn, bootstraps[fn], env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lf.Stop)
	f := &lambdaFn{Function: lf, name: fn, url: lf.URL + localcloud.InvokePath}
	f.out = output{f}
	return f
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
	f.answered.Add(1)
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
