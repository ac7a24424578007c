package localsm_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/fakeclock"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/localsm"
)

const lambdaARN = "arn:aws:lambda:us-east-1:123456789012:function:rotator-under-test"

// rie plays the Lambda runtime interface emulator serving a rotation function written after the
// AWS rotation template: createSecret puts a new value as AWSPENDING, testSecret reads it,
// finishSecret moves AWSCURRENT. It records every invocation and can fail or hold a step.
type rie struct {
	t   *testing.T
	sm  *secretsmanager.Client
	url string

	mu     sync.Mutex
	events []localsm.RotationEvent
	reqs   []recorded
	tested []string // values testSecret read
	// fail makes a step answer a function error with this message.
	fail map[string]string
	// errHeader adds X-Amz-Function-Error to failures (the RIE reports errors in the body only).
	errHeader bool
	// hold makes every step wait for release (or the request's end) after announcing itself.
	hold    bool
	started chan string
	release chan struct{}
}

func newRIE(t *testing.T, sm *secretsmanager.Client) *rie {
	r := &rie{t: t, sm: sm, fail: map[string]string{}, started: make(chan string, 16), release: make(chan struct{})}
	hs := httptest.NewServer(r)
	t.Cleanup(hs.Close)
	r.url = hs.URL
	return r
}

func (r *rie) invoker() localsm.Invoker {
	return localsm.HTTPInvoker{Endpoints: map[string]string{lambdaARN: r.url}}.Invoke
}

func (r *rie) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var ev localsm.RotationEvent
	err := json.NewDecoder(req.Body).Decode(&ev)
	r.mu.Lock()
	r.reqs = append(r.reqs, recorded{Method: req.Method, Path: req.URL.Path, Header: req.Header.Clone()})
	r.events = append(r.events, ev)
	failMsg, hold, errHeader := r.fail[ev.Step], r.hold, r.errHeader
	r.mu.Unlock()
	if err != nil || req.Method != http.MethodPost || req.URL.Path != "/2015-03-31/functions/function/invocations" {
		http.Error(w, "not an Invoke request", http.StatusNotFound)
		return
	}
	if hold {
		r.started <- ev.Step
		select {
		case <-r.release:
		case <-req.Context().Done():
			return
		}
	}
	if failMsg == "" {
		err = r.step(req.Context(), ev)
	} else {
		err = errors.New(failMsg)
	}
	if err != nil {
		if errHeader {
			w.Header().Set("X-Amz-Function-Error", "Unhandled")
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"errorMessage": err.Error(), "errorType": "Exception"})
		return
	}
	_, _ = w.Write([]byte("null"))
}

func (r *rie) step(ctx context.Context, ev localsm.RotationEvent) error {
	id, token := aws.String(ev.SecretID), aws.String(ev.ClientRequestToken)
	switch ev.Step {
	case "createSecret":
		if _, err := r.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: id, VersionId: token, VersionStage: aws.String("AWSPENDING")}); err == nil {
			return nil
		} else if code(err) != "ResourceNotFoundException" {
			return err
		}
		_, err := r.sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: id, ClientRequestToken: token,
			SecretString: aws.String("rotated-" + ev.ClientRequestToken[24:]), VersionStages: []string{"AWSPENDING"}, RotationToken: aws.String(ev.RotationToken)})
		return err
	case "setSecret":
		return nil
	case "testSecret":
		out, err := r.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: id, VersionId: token, VersionStage: aws.String("AWSPENDING")})
		if err != nil {
			return err
		}
		r.mu.Lock()
		r.tested = append(r.tested, aws.ToString(out.SecretString))
		r.mu.Unlock()
		return nil
	case "finishSecret":
		d, err := r.sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: id})
		if err != nil {
			return err
		}
		current := ""
		for v, st := range d.VersionIdsToStages {
			if slices.Contains(st, "AWSCURRENT") {
				current = v
			}
		}
		if current == ev.ClientRequestToken {
			return nil
		}
		_, err = r.sm.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{SecretId: id, VersionStage: aws.String("AWSCURRENT"), MoveToVersionId: token, RemoveFromVersionId: aws.String(current)})
		return err
	}
	return fmt.Errorf("unknown step %q", ev.Step)
}

func (r *rie) steps() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		out = append(out, e.Step)
	}
	return out
}

func (r *rie) setFail(step, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if msg == "" {
		delete(r.fail, step)
	} else {
		r.fail[step] = msg
	}
}

// rotEnv is localsm with the rie stub as its rotation function and one secret "s" (version 1).
type rotEnv struct {
	*env
	rie *rie
	clk *clock
	arn string
}

func startRot(t *testing.T, synchronous bool) *rotEnv {
	t.Helper()
	clk := fakeclock.New(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	re := &rotEnv{clk: clk}
	var inv localsm.Invoker = func(ctx context.Context, fn string, payload []byte) error { return re.rie.invoker()(ctx, fn, payload) }
	re.env = start(t, localsm.Options{Now: clk.Now, Invoker: inv, Synchronous: synchronous})
	re.rie = newRIE(t, re.sm)
	out, err := re.sm.CreateSecret(re.ctx, &secretsmanager.CreateSecretInput{Name: aws.String("s"), ClientRequestToken: aws.String(tok(1)), SecretString: aws.String("one")})
	if err != nil {
		t.Fatal(err)
	}
	re.arn = aws.ToString(out.ARN)
	return re
}

func (re *rotEnv) rotate(n int, immediately *bool) (*secretsmanager.RotateSecretOutput, error) {
	return re.sm.RotateSecret(re.ctx, &secretsmanager.RotateSecretInput{
		SecretId: aws.String("s"), ClientRequestToken: aws.String(tok(n)), RotationLambdaARN: aws.String(lambdaARN),
		RotationRules: &smtypes.RotationRulesType{AutomaticallyAfterDays: aws.Int64(7)}, RotateImmediately: immediately,
	})
}

func (re *rotEnv) stages(t *testing.T) string {
	t.Helper()
	return allStages(t, re.env)
}

func TestRotationRunsTheFourSteps(t *testing.T) {
	re := startRot(t, true)
	out, err := re.rotate(2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.VersionId) != tok(2) || aws.ToString(out.ARN) != re.arn {
		t.Fatalf("RotateSecret answered %+v", out)
	}
	if got := re.rie.steps(); !slices.Equal(got, []string{"createSecret", "setSecret", "testSecret", "finishSecret"}) {
		t.Fatalf("steps %v", got)
	}
	for i, ev := range re.rie.events {
		if ev.SecretID != re.arn || ev.ClientRequestToken != tok(2) || len(ev.RotationToken) < 36 || ev.RotationToken != re.rie.events[0].RotationToken {
			t.Errorf("event %d = %+v: want the secret ARN, the version id and one RotationToken of ≥36 chars per rotation", i, ev)
		}
		req := re.rie.reqs[i]
		if req.Method != http.MethodPost || req.Path != "/2015-03-31/functions/function/invocations" || req.Header.Get("Content-Type") != "application/json" {
			t.Errorf("invocation %d: %s %s %v", i, req.Method, req.Path, req.Header)
		}
	}
	// AWSPENDING may stay on the new current version: a finished rotation.
	if got := re.stages(t); got != "1:[AWSPREVIOUS] 2:[AWSCURRENT AWSPENDING]" {
		t.Fatalf("stages after rotation: %s", got)
	}
	rots := re.srv.Rotations()
	if len(rots) != 1 || !rots[0].Done || rots[0].Err != "" || !rots[0].Promoted || !rots[0].Immediately || len(rots[0].Steps) != 4 || rots[0].FunctionARN != lambdaARN {
		t.Fatalf("Rotations() = %+v", rots)
	}
	d, err := re.sm.DescribeSecret(re.ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("s")})
	if err != nil {
		t.Fatal(err)
	}
	if !aws.ToBool(d.RotationEnabled) || aws.ToString(d.RotationLambdaARN) != lambdaARN || aws.ToInt64(d.RotationRules.AutomaticallyAfterDays) != 7 ||
		!aws.ToTime(d.LastRotatedDate).Equal(re.clk.Now()) || !aws.ToTime(d.NextRotationDate).Equal(re.clk.Now().AddDate(0, 0, 7)) {
		t.Errorf("DescribeSecret after rotation: %+v", d)
	}

	// The next rotation is allowed (AWSPENDING on AWSCURRENT is not "in progress").
	re.clk.Add(time.Hour)
	if _, err := re.rotate(3, nil); err != nil {
		t.Fatalf("second rotation: %v", err)
	}
	if got := re.stages(t); got != "1:[] 2:[AWSPREVIOUS] 3:[AWSCURRENT AWSPENDING]" {
		t.Fatalf("stages after the second rotation: %s", got)
	}
	cur, err := re.sm.GetSecretValue(re.ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("s")})
	if err != nil || aws.ToString(cur.SecretString) != "rotated-"+tok(3)[24:] {
		t.Fatalf("current after two rotations: %v %v", err, cur)
	}
	if got := len(re.srv.Rotations()); got != 2 {
		t.Errorf("%d rotations recorded", got)
	}
}

func TestRotateImmediatelyFalseRunsOnlyTestSecret(t *testing.T) {
	re := startRot(t, true)
	if _, err := re.rotate(2, aws.Bool(false)); err != nil {
		t.Fatal(err)
	}
	if got := re.rie.steps(); !slices.Equal(got, []string{"testSecret"}) {
		t.Fatalf("steps %v, want only testSecret", got)
	}
	if !slices.Equal(re.rie.tested, []string{"one"}) {
		t.Errorf("testSecret read %q, want the current value", re.rie.tested)
	}
	// The tested copy keeps no label (and is kept, as a deprecated version); AWSCURRENT stays.
	if got := re.stages(t); got != "1:[AWSCURRENT] 2:[]" {
		t.Fatalf("stages: %s", got)
	}
	d, err := re.sm.DescribeSecret(re.ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("s")})
	if err != nil {
		t.Fatal(err)
	}
	if _, listed := d.VersionIdsToStages[tok(2)]; listed || !aws.ToBool(d.RotationEnabled) || d.LastRotatedDate != nil || d.NextRotationDate == nil {
		t.Errorf("DescribeSecret: %+v (no rotation happened, so no LastRotatedDate)", d)
	}
	if r := re.srv.Rotations(); len(r) != 1 || r[0].Immediately || r[0].Err != "" || r[0].Promoted {
		t.Errorf("Rotations() = %+v", r)
	}
	// A full rotation may follow at once.
	if _, err := re.rotate(3, nil); err != nil {
		t.Fatal(err)
	}
	if got := re.stages(t); got != "1:[AWSPREVIOUS] 2:[] 3:[AWSCURRENT AWSPENDING]" {
		t.Fatalf("stages after the full rotation: %s", got)
	}
}

func TestFailedStepBlocksTheNextRotation(t *testing.T) {
	for _, tc := range []struct {
		fail        string
		immediately *bool
		header      bool
		steps       []string
		stages      string
	}{
		{fail: "createSecret", steps: []string{"createSecret"}, stages: "1:[AWSCURRENT] 2:[AWSPENDING]"},
		{fail: "setSecret", header: true, steps: []string{"createSecret", "setSecret"}, stages: "1:[AWSCURRENT] 2:[AWSPENDING]"},
		{fail: "testSecret", steps: []string{"createSecret", "setSecret", "testSecret"}, stages: "1:[AWSCURRENT] 2:[AWSPENDING]"},
		{fail: "finishSecret", header: true, steps: []string{"createSecret", "setSecret", "testSecret", "finishSecret"}, stages: "1:[AWSCURRENT] 2:[AWSPENDING]"},
		{fail: "testSecret", immediately: aws.Bool(false), steps: []string{"testSecret"}, stages: "1:[AWSCURRENT] 2:[AWSPENDING]"},
	} {
		t.Run(fmt.Sprintf("%s immediately=%v", tc.fail, tc.immediately == nil), func(t *testing.T) {
			re := startRot(t, true)
			re.rie.errHeader = tc.header
			re.rie.setFail(tc.fail, "upstream refused the login")
			if _, err := re.rotate(2, tc.immediately); err != nil {
				t.Fatalf("a failing step must not fail RotateSecret: %v", err)
			}
			if got := re.rie.steps(); !slices.Equal(got, tc.steps) {
				t.Fatalf("steps %v, want %v", got, tc.steps)
			}
			if got := re.stages(t); got != tc.stages {
				t.Fatalf("stages %s, want %s (AWSPENDING left where it was)", got, tc.stages)
			}
			r := re.srv.Rotations()
			if len(r) != 1 || !r[0].Done || r[0].Promoted || !strings.Contains(r[0].Err, tc.fail+": ") || !strings.Contains(r[0].Err, "upstream refused the login") ||
				r[0].Steps[len(r[0].Steps)-1].Err == "" {
				t.Fatalf("Rotations() = %+v", r)
			}
			d, _ := re.sm.DescribeSecret(re.ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("s")})
			if d.LastRotatedDate != nil {
				t.Errorf("LastRotatedDate set by a failed rotation")
			}

			re.rie.setFail(tc.fail, "")
			_, err := re.rotate(3, nil)
			wantCode(t, "RotateSecret after a failed step", err, "InvalidRequestException")
			if !strings.Contains(err.Error(), "A previous rotation isn't complete. That rotation will be reattempted.") {
				t.Errorf("message: %v", err)
			}
			c, err := re.sm.CancelRotateSecret(re.ctx, &secretsmanager.CancelRotateSecretInput{SecretId: aws.String("s")})
			if err != nil || aws.ToString(c.VersionId) != tok(2) {
				t.Fatalf("CancelRotateSecret: %v %+v, want the unfinished version", err, c)
			}
			// Clearing AWSPENDING, as the CancelRotateSecret reference recommends, unblocks it.
			if _, err := re.sm.UpdateSecretVersionStage(re.ctx, &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String("s"), VersionStage: aws.String("AWSPENDING"), RemoveFromVersionId: aws.String(tok(2))}); err != nil {
				t.Fatal(err)
			}
			if _, err := re.rotate(3, nil); err != nil {
				t.Fatalf("rotation after clearing AWSPENDING: %v", err)
			}
			if r := re.srv.Rotations(); r[1].Err != "" || !r[1].Promoted {
				t.Fatalf("second rotation: %+v", r[1])
			}
		})
	}
}

func TestAsyncRotationAnswersFirst(t *testing.T) {
	re := startRot(t, false)
	re.rie.hold = true
	out, err := re.rotate(2, nil)
	if err != nil || aws.ToString(out.VersionId) != tok(2) {
		t.Fatalf("RotateSecret: %v %+v", err, out)
	}
	// RotateSecret has answered although createSecret has not: the stub is still holding it.
	if step := <-re.rie.started; step != "createSecret" {
		t.Fatalf("first step %s", step)
	}
	if r := re.srv.Rotations(); len(r) != 1 || r[0].Done {
		t.Fatalf("rotation already done: %+v", r)
	}
	_, err = re.rotate(3, nil)
	wantCode(t, "RotateSecret during a rotation", err, "InvalidRequestException")
	go func() {
		for range 4 {
			re.rie.release <- struct{}{}
		}
	}()
	for range 3 {
		<-re.rie.started
	}
	if err := re.srv.WaitRotation(re.ctx, "s"); err != nil {
		t.Fatal(err)
	}
	if r := re.srv.Rotations(); !r[0].Done || r[0].Err != "" || !r[0].Promoted {
		t.Fatalf("after WaitRotation: %+v", r[0])
	}
	if err := re.srv.WaitRotation(re.ctx, re.arn); err != nil {
		t.Fatalf("WaitRotation with nothing running: %v", err)
	}
}

func TestCancelRotateSecretStopsARunningRotation(t *testing.T) {
	re := startRot(t, false)
	re.rie.hold = true
	if _, err := re.rotate(2, nil); err != nil {
		t.Fatal(err)
	}
	<-re.rie.started
	c, err := re.sm.CancelRotateSecret(re.ctx, &secretsmanager.CancelRotateSecretInput{SecretId: aws.String("s")})
	if err != nil || aws.ToString(c.VersionId) != tok(2) {
		t.Fatalf("CancelRotateSecret: %v %+v", err, c)
	}
	if err := re.srv.WaitRotation(re.ctx, "s"); err != nil {
		t.Fatal(err)
	}
	r := re.srv.Rotations()[0]
	if !r.Done || !strings.Contains(r.Err, "createSecret") || len(r.Steps) != 1 {
		t.Fatalf("cancelled rotation: %+v", r)
	}
	d, _ := re.sm.DescribeSecret(re.ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("s")})
	if aws.ToBool(d.RotationEnabled) || d.NextRotationDate != nil || aws.ToString(d.RotationLambdaARN) != lambdaARN {
		t.Errorf("after cancel: enabled %v next %v lambda %v", d.RotationEnabled, d.NextRotationDate, d.RotationLambdaARN)
	}
	if got := re.stages(t); got != "1:[AWSCURRENT] 2:[AWSPENDING]" {
		t.Errorf("stages after cancel: %s (labels are left for the caller)", got)
	}
}

func TestRotateSecretRefusals(t *testing.T) {
	re := startRot(t, true)
	for _, tc := range []struct {
		name string
		in   secretsmanager.RotateSecretInput
		want string
	}{
		{"no function", secretsmanager.RotateSecretInput{SecretId: aws.String("s")}, "InvalidRequestException"},
		{"unknown secret", secretsmanager.RotateSecretInput{SecretId: aws.String("nope"), RotationLambdaARN: aws.String(lambdaARN)}, "ResourceNotFoundException"},
		{"days 0", secretsmanager.RotateSecretInput{SecretId: aws.String("s"), RotationLambdaARN: aws.String(lambdaARN), RotationRules: &smtypes.RotationRulesType{AutomaticallyAfterDays: aws.Int64(0)}}, "InvalidParameterException"},
		{"every hour", secretsmanager.RotateSecretInput{SecretId: aws.String("s"), RotationLambdaARN: aws.String(lambdaARN), RotationRules: &smtypes.RotationRulesType{ScheduleExpression: aws.String("rate(1 hours)")}}, "InvalidParameterException"},
		{"token of an existing version", secretsmanager.RotateSecretInput{SecretId: aws.String("s"), RotationLambdaARN: aws.String(lambdaARN), ClientRequestToken: aws.String(tok(1))}, "InvalidRequestException"},
		{"short token", secretsmanager.RotateSecretInput{SecretId: aws.String("s"), RotationLambdaARN: aws.String(lambdaARN), ClientRequestToken: aws.String("x")}, "InvalidParameterException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := re.sm.RotateSecret(re.ctx, &tc.in)
			wantCode(t, tc.name, err, tc.want)
		})
	}
	if n := len(re.srv.Rotations()); n != 0 {
		t.Fatalf("%d rotations started by refused calls", n)
	}
	// A schedule expression is recorded and shown as given.
	if _, err := re.sm.RotateSecret(re.ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String("s"), RotationLambdaARN: aws.String(lambdaARN),
		RotationRules: &smtypes.RotationRulesType{ScheduleExpression: aws.String("rate(30 days)"), Duration: aws.String("4h")}, RotateImmediately: aws.Bool(false)}); err != nil {
		t.Fatal(err)
	}
	d, _ := re.sm.DescribeSecret(re.ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("s")})
	if rr := d.RotationRules; rr == nil || aws.ToString(rr.ScheduleExpression) != "rate(30 days)" || aws.ToString(rr.Duration) != "4h" || aws.ToInt64(rr.AutomaticallyAfterDays) != 30 {
		t.Errorf("RotationRules = %+v", d.RotationRules)
	}
	// The function ARN configured before is reused when RotateSecret names none.
	if _, err := re.sm.RotateSecret(re.ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String("s"), ClientRequestToken: aws.String(tok(5))}); err != nil {
		t.Fatalf("rotation with the configured function: %v", err)
	}
	if r := re.srv.Rotations(); len(r) != 2 || r[1].FunctionARN != lambdaARN || r[1].Err != "" {
		t.Fatalf("Rotations() = %+v", r)
	}
}

func TestRotationWithoutInvoker(t *testing.T) {
	e := start(t, localsm.Options{Synchronous: true})
	if _, err := e.sm.CreateSecret(e.ctx, &secretsmanager.CreateSecretInput{Name: aws.String("s"), SecretString: aws.String("v")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sm.RotateSecret(e.ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String("s"), RotationLambdaARN: aws.String(lambdaARN)}); err != nil {
		t.Fatal(err)
	}
	if r := e.srv.Rotations(); len(r) != 1 || !strings.Contains(r[0].Err, "no Invoker") {
		t.Fatalf("Rotations() = %+v", r)
	}
}

func TestHTTPInvoker(t *testing.T) {
	type answer struct {
		status int
		header string
		body   string
	}
	var mu sync.Mutex
	var got []recorded
	var next answer
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, recorded{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone()})
		a := next
		mu.Unlock()
		if a.header != "" {
			w.Header().Set("X-Amz-Function-Error", a.header)
		}
		w.WriteHeader(a.status)
		_, _ = w.Write([]byte(a.body))
	}))
	t.Cleanup(hs.Close)
	inv := localsm.HTTPInvoker{Endpoints: map[string]string{lambdaARN: hs.URL + "/", "by-name": hs.URL}}
	for _, tc := range []struct {
		name    string
		arn     string
		a       answer
		wantErr string // "" for success
	}{
		{"success null", lambdaARN, answer{200, "", "null"}, ""},
		{"success object", lambdaARN, answer{200, "", `{"ok":true}`}, ""},
		{"by function name", "arn:aws:lambda:us-east-1:123456789012:function:by-name:live", answer{200, "", "null"}, ""},
		{"error body", lambdaARN, answer{200, "", `{"errorMessage":"bad token","errorType":"ValueError"}`}, "failed (ValueError): bad token"},
		{"error header", lambdaARN, answer{200, "Unhandled", `"boom"`}, `failed (Unhandled): "boom"`},
		{"HTTP 500", lambdaARN, answer{500, "", "internal"}, "HTTP 500: internal"},
		{"no endpoint", "arn:aws:lambda:us-east-1:123456789012:function:other", answer{200, "", "null"}, "no Invoke endpoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			next, got = tc.a, nil
			mu.Unlock()
			err := inv.Invoke(context.Background(), tc.arn, []byte(`{"Step":"testSecret"}`))
			if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err %v, want %q", err, tc.wantErr)
			}
			mu.Lock()
			defer mu.Unlock()
			if tc.name == "no endpoint" {
				if len(got) != 0 {
					t.Fatal("invoked without an endpoint")
				}
				return
			}
			if len(got) != 1 || got[0].Method != http.MethodPost || got[0].Path != "/2015-03-31/functions/function/invocations" || got[0].Header.Get("Content-Type") != "application/json" {
				t.Fatalf("requests %+v", got)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := inv.Invoke(ctx, lambdaARN, []byte(`{}`)); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: %v", err)
	}
}
