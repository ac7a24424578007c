package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/ptc-credentials/ptc-credentials/internal/customresource"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/rotationtest"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
)

// TestRotatorErrorsComeBackAsFunctionErrors: a rotation step that fails returns an error from the
// handler, which the Lambda runtime reports as a function error (what makes Secrets Manager mark
// the rotation failed and retry it), and nothing is changed.
//
// What aws-lambda-rie reports: HTTP 200 with the body {"errorMessage", "errorType"} that
// aws-lambda-go posted to the Runtime API's /error route. Real Lambda adds the header
// X-Amz-Function-Error: Unhandled; this RIE drops every header the runtime side sets (its
// ResponseWriterProxy.Header returns a fresh map), so the header is accepted when absent or
// Unhandled and the body is what is checked.
func TestRotatorErrorsComeBackAsFunctionErrors(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	rot := w.start(fnRotator, nil)
	before := w.describe(w.sourceARN)

	for _, tc := range []struct {
		name  string
		event any
		want  []string
	}{
		{
			// A rotation event for a secret outside ecr-pullthroughcache/ — here the source secret,
			// which ECR's service role must never be able to read.
			name:  "secret outside the prefix",
			event: rotationEvent("createSecret", w.sourceARN, rotationtest.NewID(), rotationtest.NewID()),
			want:  []string{"is not a managed pull-through cache secret", ptcsecret.Prefix},
		},
		{
			name:  "event without SecretId",
			event: map[string]string{"Step": "createSecret", "ClientRequestToken": rotationtest.NewID()},
			want:  []string{`field "SecretId" is missing`},
		},
		{
			name:  "event that is not a rotation event",
			event: []byte(`{"Step": 7}`),
			want:  []string{"Step"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv := w.invoke(rot, tc.event)
			if inv.Status != http.StatusOK {
				t.Fatalf("RIE answered %d %s", inv.Status, inv.Body)
			}
			if h := inv.Header.Get("X-Amz-Function-Error"); h != "" && h != "Unhandled" {
				t.Errorf("X-Amz-Function-Error %q", h)
			}
			var fe functionError
			if err := json.Unmarshal(inv.Body, &fe); err != nil || fe.ErrorMessage == "" || fe.ErrorType == "" {
				t.Fatalf("answer %s is not a function error (%v)", inv.Body, err)
			}
			for _, want := range tc.want {
				if !strings.Contains(fe.ErrorMessage, want) {
					t.Errorf("errorMessage %q does not contain %q", fe.ErrorMessage, want)
				}
			}
			t.Logf("RIE answered %d, X-Amz-Function-Error %q, body %s", inv.Status, inv.Header.Get("X-Amz-Function-Error"), inv.Body)
		})
	}

	out := rot.out.String()
	if !strings.Contains(out, `"msg":"rotation step failed"`) || !strings.Contains(out, `"RotationStepFailed":1`) {
		t.Errorf("no error record or RotationStepFailed metric in the rotator output:\n%s", out)
	}
	after := w.describe(w.sourceARN)
	if len(after.VersionIdsToStages) != len(before.VersionIdsToStages) || aws.ToBool(after.RotationEnabled) {
		t.Errorf("the refused secret was changed: versions %v, rotation %v", after.VersionIdsToStages, aws.ToBool(after.RotationEnabled))
	}
	if n := len(w.hub.Tokens()); n != 0 {
		t.Errorf("%d tokens minted by refused events", n)
	}
	w.assertNoLeak()
}

// TestProvisionerAnswersBeforeTheLambdaTimeout: a Create whose upstream hangs must still get
// exactly one answer to CloudFormation — FAILED, from customresource's deadline guard — before the
// function's timeout, and leave nothing behind.
//
// With AWS_LAMBDA_FUNCTION_TIMEOUT=3 the guard fires a third of the time before the deadline
// (about 1 s early), the cancelled context aborts the hanging Hub call, Create's undo has nothing
// to remove, and the invocation returns normally (JSON null) before RIE's timer: RIE never gets
// to report "Task timed out after 3.00 seconds". Should the function ever run into the timeout
// instead, the test reports that as a failure with RIE's answer — at a function timeout long
// enough that the machine's speed is not the question (see withFunctionTimeout).
func TestProvisionerAnswersBeforeTheLambdaTimeout(t *testing.T) {
	t.Parallel()
	withFunctionTimeout(t, 3*time.Second, func(timeout time.Duration, last bool) bool {
		return provisionerAnswersInTime(t, timeout, last)
	})
}

// maxFunctionTimeout is the function timeout every other test runs with (baseEnv).
const maxFunctionTimeout = 60 * time.Second

// withFunctionTimeout runs attempt with a deliberately short function timeout, so that a test of
// what happens at the deadline does not wait a whole Lambda timeout. The time a function has
// between its own deadline guard and RIE's timer is a fraction of that timeout, and a busy
// machine can use it all up; so an attempt that reports tooBusy (it ran into RIE's timer, or its
// answer came after the deadline, and it was not the last) is run again, from scratch, with
// twice the timeout, up to maxFunctionTimeout. The last attempt checks everything and reports
// instead of returning tooBusy: a function without its guard fails there as it failed before,
// only later.
func withFunctionTimeout(t *testing.T, first time.Duration, attempt func(timeout time.Duration, last bool) (tooBusy bool)) {
	t.Helper()
	for timeout := min(first, maxFunctionTimeout); ; timeout = min(2*timeout, maxFunctionTimeout) {
		last := timeout >= maxFunctionTimeout
		if !attempt(timeout, last) {
			return
		}
		t.Logf("the machine was too busy for a %s function timeout: the same test again with %s", timeout, min(2*timeout, maxFunctionTimeout))
	}
}

func provisionerAnswersInTime(t *testing.T, timeout time.Duration, last bool) (tooBusy bool) {
	var (
		blocked   atomic.Int32 // mint requests that arrived
		abandoned = make(chan struct{}, 16)
		release   = make(chan struct{})
		once      sync.Once
	)
	w := newWorld(t, func(hub http.Handler) http.Handler {
		return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			// Block the token API (minting); login, listing and the registry answer normally.
			if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/v2/access-tokens") {
				blocked.Add(1)
				// net/http notices a closed connection only once the body has been read.
				_, _ = io.Copy(io.Discard, r.Body)
				select {
				case <-r.Context().Done(): // the function's client closed the connection
					abandoned <- struct{}{}
				case <-release:
				}
				return
			}
			hub.ServeHTTP(rw, r)
		})
	})
	// Registered after the hub server's Close, so it runs first and unblocks the handler.
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	prov := w.start(fnProvisioner, map[string]string{"AWS_LAMBDA_FUNCTION_TIMEOUT": strconv.Itoa(int(timeout / time.Second))})
	prefix := newPrefix()

	ev := w.cfnEvent("Create", "", w.props(prefix))
	inv := w.invoke(prov, ev)
	puts := w.cfn.ForRequest(ev["RequestId"].(string))
	ranOut := strings.Contains(string(inv.Body), "Task timed out")
	late := len(puts) == 1 && !puts[0].At.Before(inv.Sent.Add(timeout))
	if !last && (ranOut || late) {
		t.Logf("with a %s function timeout: %d answers, the answer late %v, RIE answered %d %.120s", timeout, len(puts), late, inv.Status, inv.Body)
		return true
	}
	if len(puts) != 1 {
		t.Fatalf("CloudFormation got %d answers, want exactly one\noutput:\n%s", len(puts), prov.out.String())
	}
	ans := puts[0]
	if ans.Status != "FAILED" || !strings.Contains(ans.Reason, "timed out") {
		t.Fatalf("answer %s: %s", ans.Status, ans.Reason)
	}
	if !customresource.IsFailedCreateID(ans.PhysicalResourceID) {
		t.Errorf("physical id %q of a timed-out Create owns something", ans.PhysicalResourceID)
	}
	// Ordering, not speed: RIE starts the function's clock after it received the invoke, so an
	// answer that arrived before Sent+timeout arrived before the Lambda deadline.
	if !ans.At.Before(inv.Sent.Add(timeout)) {
		t.Errorf("the answer arrived at +%s, after the %s deadline", ans.At.Sub(inv.Sent), timeout)
	}
	if strings.Contains(string(inv.Body), "Task timed out") {
		t.Fatalf("the function ran into RIE's timeout (%s); the guard should have let it return\noutput:\n%s", inv.Body, prov.out.String())
	}
	if inv.Status != http.StatusOK || strings.TrimSpace(string(inv.Body)) != "null" {
		t.Errorf("invocation answered %d %s, want 200 null (an answer was delivered)", inv.Status, inv.Body)
	}
	// The guard's cancellation reached the hanging HTTP call: the function gave it up. (The server
	// notices the closed connection asynchronously, hence the wait.)
	if blocked.Load() != 1 {
		t.Errorf("%d mint requests reached the hung Hub, want 1", blocked.Load())
	}
	select {
	case <-abandoned:
	case <-w.ctx.Done():
		t.Errorf("the function never abandoned the hanging mint request\noutput:\n%s", prov.out.String())
	}
	out := prov.out.String()
	if !strings.Contains(out, `"ProvisionFailed":1`) {
		t.Errorf("no ProvisionFailed metric in the provisioner output:\n%s", out)
	}

	// Nothing left behind, and a late result was never sent.
	if s := w.describe(ptcsecret.Prefix + prefix); s != nil {
		t.Errorf("secret %s created by a timed-out Create", aws.ToString(s.Name))
	}
	if rules := w.ecrSrv.Rules(); len(rules) != 0 {
		t.Errorf("rules created by a timed-out Create: %+v", rules)
	}
	if n := len(w.hub.Tokens()); n != 0 {
		t.Errorf("%d tokens left by a timed-out Create", n)
	}
	if n := len(w.cfn.All()); n != 1 {
		t.Errorf("%d requests reached CloudFormation's bucket in all, want 1", n)
	}

	// CloudFormation's next request after a failed Create is a Delete of the id it was given;
	// it must succeed without touching anything.
	once.Do(func() { close(release) })
	del, _ := w.customResource(prov, "Delete", ans.PhysicalResourceID, w.props(prefix))
	if del.Status != "SUCCESS" || del.PhysicalResourceID != ans.PhysicalResourceID {
		t.Errorf("Delete after the timed-out Create answered %s %q: %s", del.Status, del.PhysicalResourceID, del.Reason)
	}
	if _, err := w.sm.DescribeSecret(w.ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(w.sourceARN)}); err != nil {
		t.Errorf("the source secret is gone after Delete of a failed Create: %v", err)
	}
	t.Logf("answer at +%s of a %s timeout; RIE answered %d %s", ans.At.Sub(inv.Sent).Round(time.Millisecond), timeout, inv.Status, inv.Body)
	w.assertNoLeak()
	return false
}

// TestRotatorTimeoutIsRetriedCleanly: a rotation step whose upstream hangs (the Hub stalls while
// minting) stops itself shortly before the function timeout — rotation.Handle keeps a margin —
// so it fails as a StepError, logged and counted as RotationStepFailed, instead of being killed
// by Lambda. AWSCURRENT stays untouched, and when Secrets Manager retries the rotation with the
// same token it completes.
//
// (Without that margin aws-lambda-rie reports a timeout as HTTP 200 with the plain-text body
// "Task timed out after 2.00 seconds", SIGKILLs the runtime and starts a fresh one, and the step
// leaves no record of its own.) The margin is a tenth of the time left — 200 ms of a 2 s
// timeout — so a busy machine gets the same test with a longer timeout (withFunctionTimeout).
func TestRotatorTimeoutIsRetriedCleanly(t *testing.T) {
	t.Parallel()
	withFunctionTimeout(t, 2*time.Second, func(timeout time.Duration, last bool) bool {
		return rotatorStopsBeforeTheTimeout(t, timeout, last)
	})
}

func rotatorStopsBeforeTheTimeout(t *testing.T, timeout time.Duration, last bool) (tooBusy bool) {
	var hang atomic.Bool
	release := make(chan struct{})
	w := newWorld(t, func(hub http.Handler) http.Handler {
		return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			if hang.Load() && r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/v2/access-tokens") {
				_, _ = io.Copy(io.Discard, r.Body)
				select {
				case <-r.Context().Done():
				case <-release:
				}
				return
			}
			hub.ServeHTTP(rw, r)
		})
	})
	t.Cleanup(func() { close(release) })
	prov := w.start(fnProvisioner, nil)
	rot := w.start(fnRotator, map[string]string{"AWS_LAMBDA_FUNCTION_TIMEOUT": strconv.Itoa(int(timeout / time.Second))})
	prefix := newPrefix()
	name := ptcsecret.Prefix + prefix
	created, _ := w.customResource(prov, "Create", "", w.props(prefix))
	if created.Status != "SUCCESS" {
		t.Fatalf("Create answered %s: %s", created.Status, created.Reason)
	}
	secretARN := created.Data["SecretArn"]
	firstID, first := w.valueAt(name, "AWSCURRENT")
	w.noteTokens()

	hang.Store(true)
	token := rotationtest.NewID()
	if err := testenv.BeginRotation(w.ctx, w.sm, secretARN, token, true); err != nil {
		t.Fatal(err)
	}
	rotationToken := rotationtest.NewID()
	inv := w.invoke(rot, rotationEvent("createSecret", secretARN, token, rotationToken))
	if !last && strings.Contains(string(inv.Body), "Task timed out") {
		t.Logf("with a %s function timeout the stalled step ran into RIE's timer: %.120s", timeout, inv.Body)
		return true
	}
	if inv.Status != http.StatusOK || !strings.Contains(string(inv.Body), `"errorType":"StepError"`) || !strings.Contains(string(inv.Body), "context deadline exceeded") {
		t.Fatalf("a createSecret whose upstream hangs answered %d %s\noutput:\n%s", inv.Status, inv.Body, rot.out.String())
	}
	if out := rot.out.String(); !strings.Contains(out, `"outcome":"error"`) || !strings.Contains(out, "RotationStepFailed") || strings.Contains(out, "Task timed out") {
		t.Fatalf("the stalled step was not logged and counted before the deadline:\n%s", out)
	}
	if id, v := w.valueAt(name, "AWSCURRENT"); id != firstID || w.login(v) != nil {
		t.Fatalf("AWSCURRENT moved to %s or stopped working after a timed-out step", id)
	}

	// Secrets Manager retries the rotation with the same token; the Hub is back.
	hang.Store(false)
	for _, step := range []string{"createSecret", "setSecret", "testSecret", "finishSecret"} {
		w.mustSucceed(rot, "retry "+step, rotationEvent(step, secretARN, token, rotationToken))
	}
	w.noteTokens()
	id, now := w.valueAt(name, "AWSCURRENT")
	if id != token || now.AccessToken == first.AccessToken {
		t.Fatalf("the retried rotation did not promote version %s (AWSCURRENT is %s)", token, id)
	}
	if err := w.login(now); err != nil {
		t.Fatalf("the token of the retried rotation does not log in: %v", err)
	}
	if n := len(w.tokens(name)); n != 2 {
		t.Errorf("%d tokens after the retried rotation, want current and previous", n)
	}
	w.assertNoLeak()
	return false
}
