package faults

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/ptc-credentials/ptc-credentials/internal/customresource"
	"github.com/ptc-credentials/ptc-credentials/internal/provision"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/registryauth"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/dockerhubemu"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/ecremu"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/registries"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/rotationtest"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
)

// Lambda deadlines of one custom-resource invocation: the normal one, and the short one the
// invocation a hang fault hits gets. customresource.Wrap answers a third of it before the
// deadline (its guard) and then gives the handler a sixth of it to undo its work.
const (
	crDeadline     = 60 * time.Second
	crHangDeadline = 3 * time.Second
)

const logicalID = "Cache"

// provEnv is one custom resource's world: a Secrets Manager (moto or localsm) behind the
// RotateSecret front, the ECR emulator,
// a Docker Hub emulator, a source secret, and a local ResponseURL standing for CloudFormation.
type provEnv struct {
	t      testing.TB
	inj    *Injector
	sm     *secretsmanager.Client // fault-free, for setup and checks
	front  *smFront
	reg    *registries.Emulator // Docker Hub
	hub    *dockerhubemu.Server
	hubURL string
	ecr    *ecremu.Server // the home Region's
	ecrURL string         // every Region's ECR, routed by the SigV4 Region
	// regions are the Regions of the world, the home Region (the stack's) first; smIn and
	// ecrs hold each one's fault-free Secrets Manager client and ECR emulator.
	regions []string
	smIn    map[string]*secretsmanager.Client
	ecrs    map[string]*ecremu.Server
	// prefixes are the sets' prefixes the env's requests named (props), for the leak scan.
	prefixes  []string
	cfn       *cfnServer
	logs      *rotationtest.SyncBuffer
	sourceARN string
	stackID   string
	// invs names the invocations made so far, by number (for the matrix).
	invs map[int]string
	inv  int
	// outcome receives the faulted attempt's outcome as soon as it is known.
	outcome *Outcome
	// rerunInv is the invocation a hang fault hits, when a deadline too short for this
	// machine may drop the run (see errRerun); 0 otherwise.
	rerunInv int
}

func newProvEnv(t testing.TB, sm smServer) *provEnv {
	t.Helper()
	e := &provEnv{t: t, inj: NewInjector(), sm: cleanSM(sm), logs: &rotationtest.SyncBuffer{}, cfn: &cfnServer{}, invs: map[int]string{}}
	e.reg = registries.DockerHub.MustStart(t, registries.Options{})
	e.front = newSMFront(t, e.logs, sm, e.reg.Standins())
	e.hub, e.hubURL = e.reg.Hub, e.reg.URL
	e.inj.Name(e.reg.URL, e.reg.Short)
	e.regions = provRegions
	e.smIn = map[string]*secretsmanager.Client{}
	for _, r := range e.regions {
		e.smIn[r] = cleanSMIn(sm, r)
	}
	ecrs := ecremu.NewRegions(e.regions, func(region string) ecremu.Options {
		return ecremu.Options{
			Region: region,
			// ECR reads the secret of its own Region (CredentialArn's Region must be ECR's).
			SecretsManager: e.smIn[region],
			// ValidatePullThroughCacheRule's login is ECR's own call, not the provisioner's.
			Verify: func(ctx context.Context, _, url string, cred ptcsecret.Value) error {
				return registryauth.Check(ctx, nil, registryauth.Target{Registry: url, Repository: e.reg.CheckRepository}, registryauth.Credential{Username: cred.Username, Password: cred.AccessToken})
			},
		}
	})
	e.ecrs = map[string]*ecremu.Server{}
	for _, r := range e.regions {
		e.ecrs[r] = ecrs.Region(r)
	}
	e.ecr = e.ecrs[e.regions[0]]
	ecrSrv := httptest.NewServer(ecrs)
	t.Cleanup(ecrSrv.Close)
	e.ecrURL = ecrSrv.URL
	cfnSrv := httptest.NewServer(e.cfn)
	t.Cleanup(cfnSrv.Close)
	e.cfn.url = cfnSrv.URL
	id := rotationtest.NewID()
	src, err := e.sm.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{
		Name:         aws.String("ptc-source/fault-" + id[:8]),
		SecretString: aws.String(e.reg.Source(0)),
	})
	if err != nil {
		t.Fatal(err)
	}
	e.sourceARN = aws.ToString(src.ARN)
	e.stackID = newStackID()
	return e
}

func newStackID() string {
	return "arn:aws:cloudformation:us-east-1:123456789012:stack/ptc-faults/" + rotationtest.NewID()
}

func newPrefix() string { return "hub" + strings.ReplaceAll(rotationtest.NewID(), "-", "")[:8] }

func (e *provEnv) props(prefix string) map[string]any {
	if !slices.Contains(e.prefixes, prefix) {
		e.prefixes = append(e.prefixes, prefix)
	}
	return map[string]any{
		"ServiceToken":         "arn:aws:lambda:us-east-1:123456789012:function:provisioner",
		"EcrRepositoryPrefix":  prefix,
		"UpstreamRegistry":     e.reg.Name,
		"UpstreamRegistryUrl":  e.hubURL,
		"SourceSecretArn":      e.sourceARN,
		"RotationSchedule":     "rate(30 days)",
		"RecoveryWindowInDays": "0",
	}
}

// reply is what came of one invocation.
type reply struct {
	// answer is CloudFormation's one answer (nil when none arrived).
	answer map[string]any
	died   bool
}

func (r reply) status() string {
	if r.answer == nil {
		return ""
	}
	s, _ := r.answer["Status"].(string)
	return s
}

func (r reply) physicalID() string {
	if r.answer == nil {
		return ""
	}
	s, _ := r.answer["PhysicalResourceId"].(string)
	return s
}

// send runs one invocation of the provisioner Lambda, as functions/provisioner wires it:
// customresource.Wrap around provision.Provisioner.Handle, with every AWS and upstream client
// going through the injector. The ResponseURL PUT goes through it too (uncounted), so a dead
// process cannot answer. After the handler returned the process is frozen, as Lambda freezes
// it, and whatever the handler still does then reaches nothing.
func (e *provEnv) send(label string, req customresource.Request, deadline time.Duration) reply {
	e.t.Helper()
	e.inv++
	e.invs[e.inv] = label
	e.inj.Begin(e.inv)
	req.ResponseURL = e.cfn.url + "/cfn/" + req.RequestID + "?X-Amz-Signature=PLANTED-fault-presigned-sig"
	req.ResourceType = "Custom::PullThroughCache"
	req.LogicalResourceID = logicalID
	prov := &provision.Provisioner{
		SM: faultySM(e.inj, e.front.srv.URL), ECR: faultyECR(e.inj, e.ecrURL), Providers: allProviders(),
		RotationLambdaARN: testenv.FakeRotationLambdaARN, HTTPClient: e.inj.Client(), Standins: e.reg.Standins(),
		RotatorRoleARN: testenv.RotatorRoleARN, ProvisionerRoleARN: testenv.ProvisionerRoleARN, OwnerKey: provision.StaticOwnerKey([]byte(testenv.OwnerKey)),
		Logger: slog.New(slog.NewJSONHandler(e.logs, nil)), Sleep: instantSleep, OnSecret: customresource.AddSecrets,
	}
	wireRegions(prov, e)
	done := make(chan struct{})
	wrapped := customresource.Wrap(func(ctx context.Context, r customresource.Request) (customresource.Result, error) {
		defer close(done)
		res, err := prov.Handle(ctx, provision.Request{
			Type: string(r.RequestType), StackID: r.StackID, LogicalID: r.LogicalResourceID,
			PhysicalID: r.PhysicalResourceID, Properties: r.ResourceProperties, OldProperties: r.OldResourceProperties,
		})
		return customresource.Result{PhysicalResourceID: res.PhysicalID, Data: res.Data}, err
	}, customresource.Options{
		Client: &http.Client{Transport: answerTransport{e.inj}}, Logger: slog.New(slog.NewJSONHandler(e.logs, nil)),
		Sleep: instantSleep, LogGroup: "/aws/lambda/provisioner", LogStream: "faults",
	})
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	dl, _ := ctx.Deadline()
	werr := wrapped(ctx, req)
	cancel()
	running := false
	select {
	case <-done:
	default:
		running = true
	}
	e.inj.Freeze()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		e.t.Fatalf("%s: the handler never returned", label)
	}
	answers := e.cfn.answers(req.RequestID)
	if e.inv == e.rerunInv {
		if e.inj.Fired() == nil {
			panic(errRerun("the short deadline ran out before the faulted call"))
		}
		if running {
			panic(errRerun("the handler was still undoing its work when the invocation ended"))
		}
		if len(answers) == 1 && answers[0].at.After(dl) {
			// The guard answers a third of the deadline early; on a loaded machine a short
			// deadline's third can be too little for the answer to get out.
			panic(errRerun("the guard's answer went out after the short deadline"))
		}
	}
	rep := reply{died: e.inj.Dead()}
	switch {
	case rep.died && len(answers) != 0:
		e.t.Fatalf("%s: the process died, yet CloudFormation got %d answers", label, len(answers))
	case !rep.died && len(answers) != 1:
		e.t.Fatalf("%s: CloudFormation got %d answers, want exactly one (Wrap returned %v)", label, len(answers), werr)
	case !rep.died:
		if answers[0].at.After(dl) {
			e.t.Errorf("%s: the answer arrived %s after the Lambda deadline", label, answers[0].at.Sub(dl))
		}
		if werr != nil {
			e.t.Errorf("%s: the answer was delivered but Wrap returned %v", label, werr)
		}
		rep.answer = answers[0].body
		if e.inj.HangIn(e.inv) {
			// The hang outlasted the handler's deadline: the answer is the guard's.
			if reason, _ := rep.answer["Reason"].(string); rep.status() != customresource.StatusFailed || !strings.Contains(reason, "timed out") {
				e.t.Errorf("%s: a call hung until the deadline, yet the answer was not the deadline guard's FAILED: %v", label, rep.answer)
			}
		}
	}
	return rep
}

// answerTransport sends the ResponseURL PUT unless the process is dead.
type answerTransport struct{ inj *Injector }

func (a answerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if a.inj.Dead() {
		closeBody(req)
		return nil, errDead
	}
	return sharedTransport.RoundTrip(req)
}

// cfnServer plays the pre-signed S3 URLs CloudFormation hands out, keeping every PUT body.
type cfnServer struct {
	url  string
	mu   sync.Mutex
	puts map[string][]cfnAnswer
	raw  []string
}

type cfnAnswer struct {
	at   time.Time
	body map[string]any
}

func (c *cfnServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	id := strings.TrimPrefix(r.URL.Path, "/cfn/")
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.puts == nil {
		c.puts = map[string][]cfnAnswer{}
	}
	if len(b) > customresource.MaxBodyBytes {
		m = map[string]any{"Status": "TOO-LARGE"}
	}
	c.puts[id] = append(c.puts[id], cfnAnswer{at: time.Now(), body: m})
	c.raw = append(c.raw, string(b))
}

func (c *cfnServer) answers(requestID string) []cfnAnswer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.puts[requestID])
}

func (c *cfnServer) bodies() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.raw, "\n")
}

// --- requests ------------------------------------------------------------------------------

// newRequest is a request of this env's current stack, with a fresh RequestId.
func (e *provEnv) newRequest(typ cfn.RequestType, physID string, props, old map[string]any) customresource.Request {
	return customresource.Request{
		RequestType: typ, RequestID: rotationtest.NewID(), StackID: e.stackID, PhysicalResourceID: physID,
		ResourceProperties: props, OldResourceProperties: old,
	}
}

func (e *provEnv) create(label string, props map[string]any, deadline time.Duration) (reply, customresource.Request) {
	req := e.newRequest(customresource.RequestCreate, "", props, nil)
	return e.send(label, req, deadline), req
}

func (e *provEnv) update(label, physID string, props, old map[string]any, deadline time.Duration) (reply, customresource.Request) {
	req := e.newRequest(customresource.RequestUpdate, physID, props, old)
	return e.send(label, req, deadline), req
}

func (e *provEnv) delete(label, physID string, props map[string]any, deadline time.Duration) (reply, customresource.Request) {
	req := e.newRequest(customresource.RequestDelete, physID, props, nil)
	return e.send(label, req, deadline), req
}

// mustSucceed fails unless the invocation answered SUCCESS.
func (e *provEnv) mustSucceed(what string, r reply) reply {
	e.t.Helper()
	if r.died || r.status() != customresource.StatusSuccess {
		e.t.Fatalf("%s: answered %v (died %v)", what, r.answer, r.died)
	}
	return r
}

// --- state checks --------------------------------------------------------------------------

// setState is what exists of one prefix's set.
type setState struct {
	secret *secretsmanager.DescribeSecretOutput // nil when gone (or scheduled for deletion)
	rule   *ecremu.Rule
	tokens []dockerhubemu.Token
}

func (e *provEnv) state(prefix string) setState {
	e.t.Helper()
	name := ptcsecret.Prefix + prefix
	var st setState
	out, err := e.sm.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
	var nf *smtypes.ResourceNotFoundException
	switch {
	case errors.As(err, &nf):
	case err != nil:
		e.t.Fatal(err)
	case out.DeletedDate == nil:
		st.secret = out
	}
	for _, r := range e.ecr.Rules() {
		if r.EcrRepositoryPrefix == prefix {
			st.rule = &r
		}
	}
	key := ptcsecret.Key(testenv.Region, testenv.AccountID, name)
	for _, tk := range e.hub.Tokens() {
		if strings.HasPrefix(tk.Label, ptcsecret.LabelPrefix(key)) {
			st.tokens = append(st.tokens, tk)
		}
	}
	return st
}

// assertGone: no secret, no rule, no labelled token of the prefix's set.
func (e *provEnv) assertGone(when, prefix string) {
	e.t.Helper()
	st := e.state(prefix)
	if st.secret != nil {
		e.t.Errorf("%s: secret %s%s is left", when, ptcsecret.Prefix, prefix)
	}
	if st.rule != nil {
		e.t.Errorf("%s: rule %s is left", when, prefix)
	}
	if n := len(st.tokens); n != 0 {
		e.t.Errorf("%s: %d Docker Hub tokens labelled for %s%s are left", when, n, ptcsecret.Prefix, prefix)
	}
	for _, r := range e.regions[1:] {
		if rs := e.stateIn(r, prefix); rs.secret != nil || rs.rule != nil {
			e.t.Errorf("%s: in %s, %s is left", when, r, rs)
		}
	}
}

// assertWorks: exactly one secret (ours, rotation on) whose AWSCURRENT logs in, one rule
// reading it, one labelled token, and nothing of the set in any other Region.
func (e *provEnv) assertWorks(when, prefix string) {
	e.t.Helper()
	e.assertSet(when, setSpec{prefix: prefix})
}

// assertHome checks the home Region's part of a set: as assertWorks, and returns the primary.
func (e *provEnv) assertHome(when, prefix string) *secretsmanager.DescribeSecretOutput {
	e.t.Helper()
	st := e.state(prefix)
	if st.secret == nil {
		e.t.Fatalf("%s: secret %s%s does not exist", when, ptcsecret.Prefix, prefix)
	}
	owner := ""
	for _, tg := range st.secret.Tags {
		if aws.ToString(tg.Key) == ptcsecret.TagManagedBy {
			owner = aws.ToString(tg.Value)
		}
	}
	if !strings.HasSuffix(owner, "/"+logicalID) {
		e.t.Errorf("%s: secret is managed by %q", when, owner)
	}
	if !aws.ToBool(st.secret.RotationEnabled) {
		e.t.Errorf("%s: rotation is not enabled", when)
	}
	if st.rule == nil || st.rule.CredentialARN != aws.ToString(st.secret.ARN) {
		e.t.Fatalf("%s: rule of %s is %+v, want one reading %s", when, prefix, st.rule, aws.ToString(st.secret.ARN))
	}
	if n := len(st.tokens); n != 1 {
		e.t.Errorf("%s: %d Docker Hub tokens labelled for the secret, want exactly one", when, n)
	}
	e.assertCurrentLogsIn(when, aws.ToString(st.secret.ARN))
	return st.secret
}

// assertCurrentLogsIn: exactly one version of the secret carries AWSCURRENT and it logs in.
// The secret is read in its own Region (the ARN's), as ECR there reads it.
func (e *provEnv) assertCurrentLogsIn(when, arn string) {
	e.t.Helper()
	e.currentLogsIn(when, arn)
}

// currentLogsIn is assertCurrentLogsIn; it returns the AWSCURRENT version id.
func (e *provEnv) currentLogsIn(when, arn string) string {
	e.t.Helper()
	sm := e.smIn[arnRegion(arn)]
	if sm == nil {
		e.t.Fatalf("%s: secret %s is in a Region outside this world", when, arn)
	}
	stages, err := testenv.Stages(context.Background(), sm, arn)
	if err != nil {
		e.t.Fatal(err)
	}
	var cur []string
	for id, s := range stages {
		if slices.Contains(s, "AWSCURRENT") {
			cur = append(cur, id)
		}
	}
	if len(cur) != 1 {
		e.t.Fatalf("%s: %d versions of %s carry AWSCURRENT", when, len(cur), arn)
	}
	doc, err := testenv.ValueOf(context.Background(), sm, arn, cur[0])
	if err != nil {
		e.t.Fatal(err)
	}
	v, err := ptcsecret.Parse(doc)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := registryauth.Check(context.Background(), nil, registryauth.Target{Registry: e.hubURL, Repository: "library/alpine"}, registryauth.Credential{Username: v.Username, Password: v.AccessToken}); err != nil {
		e.t.Fatalf("%s: AWSCURRENT of %s does not log in: %v", when, arn, err)
	}
	return cur[0]
}

// assertRulesWork: every rule ECR holds, in every Region, reads a secret of its own Region
// whose AWSCURRENT logs in — whatever state a fault left, ECR never pulls with a broken
// credential.
func (e *provEnv) assertRulesWork(when string) {
	e.t.Helper()
	for _, region := range e.regions {
		for _, r := range e.ecrs[region].Rules() {
			if got := arnRegion(r.CredentialARN); got != region {
				e.t.Errorf("%s: rule %s in %s reads a secret of %s (%s)", when, r.EcrRepositoryPrefix, region, got, r.CredentialARN)
				continue
			}
			e.assertCurrentLogsIn(when+": rule "+r.EcrRepositoryPrefix+" in "+region, r.CredentialARN)
		}
	}
}

// assertTokensNeedSecret: no labelled token outlives its secret. Without the secret no Delete
// or rotation can find the token (the source secret is named only by the managed secret's
// tags), so it stays until a secret of the same name is made again.
func (e *provEnv) assertTokensNeedSecret(when string, prefixes ...string) {
	e.t.Helper()
	for _, p := range prefixes {
		if st := e.state(p); st.secret == nil && len(st.tokens) > 0 {
			e.t.Errorf("%s: secret %s%s is gone but %d of its Docker Hub tokens are left, out of reach of any later Delete or rotation", when, ptcsecret.Prefix, p, len(st.tokens))
		}
	}
}

// finish runs the checks every provisioning case ends with.
func (e *provEnv) finish() {
	e.t.Helper()
	if f := e.front.rotating.Failures(); len(f) != 0 {
		e.t.Errorf("rotation steps Secrets Manager ran failed: %v", f)
	}
	if u := e.inj.Unbounded(); len(u) > 0 {
		e.t.Errorf("calls without a deadline (a hang would last until the Lambda timeout): %v", u)
	}
	planted := append(e.reg.PlantedSecrets(), "PLANTED-fault-presigned-sig")
	text := e.cfn.bodies() + "\n" + e.logs.String() + "\n" + e.worldText()
	for _, p := range planted {
		if strings.Contains(text, p) {
			e.t.Errorf("a planted secret (starts %q) reached an answer, a log or a secret's metadata in some Region", p[:6])
		}
	}
}
