package localsm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ptc-credentials/ptc-credentials/internal/kit"
)

// Invoker runs one rotation step: it invokes the rotation function functionARN with the JSON
// rotation event and returns an error if the invocation or the function failed. The error text
// is recorded in Rotations, so it must not carry secret values (the rotator's never do).
type Invoker func(ctx context.Context, functionARN string, payload []byte) error

// RotationEvent is the event Secrets Manager sends to the rotation function.
type RotationEvent struct {
	Step               string `json:"Step"`
	SecretID           string `json:"SecretId"`
	ClientRequestToken string `json:"ClientRequestToken"`
	RotationToken      string `json:"RotationToken,omitempty"`
}

// The rotation steps, in the order Secrets Manager runs them.
var (
	allSteps  = []string{"createSecret", "setSecret", "testSecret", "finishSecret"}
	testSteps = []string{"testSecret"}
)

// Rotation is the record of one rotation RotateSecret started, for tests and the demo.
type Rotation struct {
	SecretARN, SecretName string
	// VersionID is the pending version (the event's ClientRequestToken).
	VersionID   string
	FunctionARN string
	// Immediately is RotateImmediately: false runs only testSecret on a copy of AWSCURRENT.
	Immediately bool
	// Steps are the steps invoked, in order; the last one failed when Err is set.
	Steps []StepRun
	// Done is set when the rotation stopped; Err holds the failure ("" on success).
	Done bool
	Err  string
	// Promoted reports whether the pending version carried AWSCURRENT when the rotation ended.
	Promoted          bool
	Started, Finished time.Time
}

// StepRun is one invocation of the rotation function.
type StepRun struct {
	Step              string
	Err               string
	Started, Finished time.Time
}

type run struct {
	idx    int // into Server.rotations
	done   chan struct{}
	cancel context.CancelFunc
	arn    string
	name   string
}

// Rotations returns a copy of every rotation started, oldest first.
func (s *Server) Rotations() []Rotation {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Rotation, len(s.rotations))
	for i, r := range s.rotations {
		r.Steps = slices.Clone(r.Steps)
		out[i] = r
	}
	return out
}

// WaitRotation blocks until no rotation of secretID (name, ARN or partial ARN) is running, or
// ctx ends. It returns at once when none is.
func (s *Server) WaitRotation(ctx context.Context, secretID string) error {
	for {
		s.mu.Lock()
		var done chan struct{}
		for _, r := range s.running {
			if r.arn == secretID || r.name == secretID || s.partialARN(r.name) == secretID {
				done = r.done
				break
			}
		}
		s.mu.Unlock()
		if done == nil {
			return nil
		}
		select {
		case <-done:
		case <-ctx.Done():
			return fmt.Errorf("waiting for the rotation of %s: %w", secretID, ctx.Err())
		}
	}
}

type rotateIn struct {
	SecretId           *string
	ClientRequestToken *string
	RotationLambdaARN  *string
	RotationRules      *rulesJSON
	RotateImmediately  *bool
}

func (s *Server) rotateSecret(ctx context.Context, body []byte) (any, *apiError) {
	var in rotateIn
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	id, e := checkSecretID(in.SecretId)
	if e != nil {
		return nil, e
	}
	token := newUUID()
	if in.ClientRequestToken != nil {
		token = *in.ClientRequestToken
		if e := checkVersionID("ClientRequestToken", token); e != nil {
			return nil, e
		}
	}
	if in.RotationLambdaARN != nil && len(*in.RotationLambdaARN) > 2048 {
		return nil, errParam("RotationLambdaARN must be at most 2048 characters long.")
	}
	var newRules *rules
	if in.RotationRules != nil {
		r, err := parseRules(in.RotationRules)
		if err != nil {
			return nil, errParam("%s", err.Error())
		}
		newRules = r
	}
	immediately := in.RotateImmediately == nil || *in.RotateImmediately

	s.mu.Lock()
	sec := s.lookup(id)
	switch {
	case sec == nil:
		s.mu.Unlock()
		return nil, errNotFound()
	case sec.isDeleted():
		s.mu.Unlock()
		return nil, errDeleted()
	}
	lambda := sec.lambdaARN
	if in.RotationLambdaARN != nil && *in.RotationLambdaARN != "" {
		lambda = *in.RotationLambdaARN
	}
	if lambda == "" {
		s.mu.Unlock()
		return nil, errRequest("You tried to enable rotation on a secret that doesn't already have a Lambda function ARN configured and you didn't include such an ARN as a parameter in this call.")
	}
	if s.running[sec.arn] != nil || sec.pendingIncomplete() != nil {
		s.mu.Unlock()
		return nil, errRequest("A previous rotation isn't complete. That rotation will be reattempted.")
	}
	if sec.versions[token] != nil {
		s.mu.Unlock()
		return nil, errRequest("ClientRequestToken %s is already the id of a version of secret %s; a rotation needs a new version id.", token, sec.arn)
	}
	now := s.opts.Now()
	sec.rotationConfigured, sec.rotationEnabled, sec.lambdaARN = true, true, lambda
	if newRules != nil {
		sec.rules = newRules
	}
	sec.nextRotation = sec.rules.next(now)
	// AWSPENDING left on the current version by the last rotation moves to the new one.
	if p := sec.holder(StagePending); p != nil {
		p.remove(StagePending)
	}
	pending := &version{id: token, stages: []string{StagePending}, created: now}
	if !immediately {
		// "Secrets Manager tests the rotation configuration by running the testSecret step of
		// the Lambda rotation function" — on a copy of the current value.
		if cur := sec.holder(StageCurrent); cur != nil {
			pending.str, pending.bin = cur.str, slices.Clone(cur.bin)
		}
	}
	sec.addVersion(pending)
	sec.changed = now
	// An asynchronous rotation outlives the request; a synchronous one follows the caller, so a
	// client that gives up cancels it.
	parent := context.WithoutCancel(ctx)
	if s.opts.Synchronous {
		parent = ctx
	}
	rctx, cancel := context.WithCancel(parent)
	r := &run{idx: len(s.rotations), done: make(chan struct{}), cancel: cancel, arn: sec.arn, name: sec.name}
	s.rotations = append(s.rotations, Rotation{
		SecretARN: sec.arn, SecretName: sec.name, VersionID: token, FunctionARN: lambda, Immediately: immediately, Started: now,
	})
	s.running[sec.arn] = r
	out := secretRef{ARN: sec.arn, Name: sec.name, VersionId: token}
	s.mu.Unlock()

	if s.opts.Synchronous {
		s.rotate(rctx, r, token, lambda, immediately)
	} else {
		go s.rotate(rctx, r, token, lambda, immediately)
	}
	return out, nil
}

// rotate invokes the rotation function step by step, without holding the lock: the function
// calls back into this server.
func (s *Server) rotate(ctx context.Context, r *run, token, lambda string, immediately bool) {
	defer r.cancel()
	steps := allSteps
	if !immediately {
		steps = testSteps
	}
	rotationToken := newUUID() + "-" + newUUID()[:8]
	var failure string
	for _, step := range steps {
		started := s.opts.Now()
		payload, _ := json.Marshal(RotationEvent{Step: step, SecretID: r.arn, ClientRequestToken: token, RotationToken: rotationToken})
		err := ctx.Err()
		if err == nil {
			err = s.invoke(ctx, lambda, payload)
		}
		sr := StepRun{Step: step, Started: started, Finished: s.opts.Now()}
		if err != nil {
			sr.Err = err.Error()
			failure = fmt.Sprintf("%s: %s", step, sr.Err)
		}
		s.mu.Lock()
		s.rotations[r.idx].Steps = append(s.rotations[r.idx].Steps, sr)
		s.mu.Unlock()
		if err != nil {
			// Stop here and leave AWSPENDING where it is: the next RotateSecret reports the
			// rotation as unfinished, as Secrets Manager does.
			break
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	rec := &s.rotations[r.idx]
	rec.Done, rec.Err, rec.Finished = true, failure, now
	if sec := s.lookup(r.arn); sec != nil && sec.arn == r.arn {
		if v := sec.versions[token]; v != nil {
			rec.Promoted = v.has(StageCurrent)
			if failure == "" && !immediately {
				// The tested copy is dropped: it never becomes current.
				v.remove(StagePending)
			}
		}
		if failure == "" && immediately {
			sec.lastRotated = now
			if sec.rotationEnabled {
				sec.nextRotation = sec.rules.next(now)
			}
		}
		s.replicateLocked(sec)
	}
	if s.running[r.arn] == r {
		delete(s.running, r.arn)
	}
	close(r.done)
}

func (s *Server) invoke(ctx context.Context, lambda string, payload []byte) error {
	if s.opts.Invoker == nil {
		return errors.New("localsm has no Invoker configured, so it cannot run the rotation function " + lambda)
	}
	return s.opts.Invoker(ctx, lambda, payload)
}

type cancelOut struct {
	ARN       string `json:"ARN"`
	Name      string `json:"Name"`
	VersionId string `json:"VersionId,omitempty"`
}

func (s *Server) cancelRotateSecret(_ context.Context, body []byte) (any, *apiError) {
	var in secretIDIn
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	id, e := checkSecretID(in.SecretId)
	if e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.lookup(id)
	switch {
	case sec == nil:
		return nil, errNotFound()
	case sec.isDeleted():
		return nil, errDeleted()
	case sec.lambdaARN == "":
		return nil, errRequest("You tried to enable rotation on a secret that doesn't already have a Lambda function ARN configured and you didn't include such an ARN as a parameter in this call.")
	}
	sec.rotationEnabled, sec.nextRotation, sec.changed = false, time.Time{}, s.opts.Now()
	if r := s.running[sec.arn]; r != nil {
		r.cancel()
	}
	out := cancelOut{ARN: sec.arn, Name: sec.name}
	// The version an interrupted rotation left behind, so the caller can clear its AWSPENDING
	// (CancelRotateSecret API reference, VersionId).
	if p := sec.pendingIncomplete(); p != nil {
		out.VersionId = p.id
	}
	return out, nil
}

// HTTPInvoker invokes rotation functions served by the Lambda runtime interface emulator
// (aws-lambda-rie), whose Invoke API is POST <endpoint>/2015-03-31/functions/function/invocations.
type HTTPInvoker struct {
	// Endpoints maps a function ARN (or its bare function name) to the emulator's base URL,
	// e.g. http://127.0.0.1:9001.
	Endpoints map[string]string
	// Client is the HTTP client (default http.DefaultClient).
	Client *http.Client
}

// Invoke implements Invoker. A non-200 answer, a 200 with X-Amz-Function-Error, or a body with
// an errorMessage (how the emulator reports a handler's error) is a failed step.
func (h HTTPInvoker) Invoke(ctx context.Context, functionARN string, payload []byte) error {
	base, ok := h.Endpoints[functionARN]
	if !ok {
		base, ok = h.Endpoints[functionName(functionARN)]
	}
	if !ok {
		return fmt.Errorf("no Invoke endpoint is configured for rotation function %s", functionARN)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(base, "/")+"/2015-03-31/functions/function/invocations", bytes.NewReader(payload))
	if err != nil {
		return fmt.Errorf("building the Invoke request for %s: %w", functionARN, err)
	}
	req.Header.Set("Content-Type", "application/json")
	c := h.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("invoking %s: %w", functionARN, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("reading the answer of %s: %w", functionARN, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("invoking %s: HTTP %d: %s", functionARN, resp.StatusCode, kit.Truncate(string(body), 300))
	}
	var fe struct {
		ErrorMessage *string `json:"errorMessage"`
		ErrorType    string  `json:"errorType"`
	}
	_ = json.Unmarshal(body, &fe) // a non-object body (a handler's plain result) is a success
	if kind := resp.Header.Get("X-Amz-Function-Error"); kind != "" || fe.ErrorMessage != nil {
		typ := fe.ErrorType
		if typ == "" {
			typ = kind
		}
		msg := deref(fe.ErrorMessage)
		if fe.ErrorMessage == nil {
			msg = kit.Truncate(string(body), 300)
		}
		return fmt.Errorf("rotation function %s failed (%s): %s", functionARN, typ, msg)
	}
	return nil
}

// functionName returns NAME of arn:aws:lambda:<region>:<account>:function:NAME[:qualifier].
func functionName(arn string) string {
	parts := strings.Split(arn, ":")
	if len(parts) >= 7 && parts[2] == "lambda" && parts[5] == "function" {
		return parts[6]
	}
	return arn
}
