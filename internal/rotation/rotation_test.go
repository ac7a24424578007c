package rotation_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	hubemu "github.com/ptc-credentials/ptc-credentials/internal/emulators/dockerhub"
	"github.com/ptc-credentials/ptc-credentials/internal/metrics"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/registryauth"
	"github.com/ptc-credentials/ptc-credentials/internal/rotation"
	"github.com/ptc-credentials/ptc-credentials/internal/testenv"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/dockerhub"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/providers"
)

var moto *testenv.Moto

func TestMain(m *testing.M) {
	var err error
	moto, err = testenv.StartMoto()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	moto.Stop()
	os.Exit(code)
}

// Planted values: distinctive, so a leak is unmistakable.
const (
	hubUser     = "ptc-hub-user"
	hubPassword = "PLANTED-hub-password-7f3a9c"
	hubTOTP     = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
)

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

type fixture struct {
	t          *testing.T
	ctx        context.Context
	sm         *secretsmanager.Client
	hub        *hubemu.Server
	hubURL     string
	logs       *syncBuffer
	emf        *syncBuffer
	name, arn  string
	sourceARN  string
	sourceJSON string
	errs       []error
}

type fixtureOpts struct {
	source  map[string]any
	account hubemu.Account
	noSetup bool
}

func newFixture(t *testing.T, o fixtureOpts) *fixture {
	t.Helper()
	f := &fixture{t: t, ctx: testenv.Context(t), sm: moto.SecretsManager(), logs: &syncBuffer{}, emf: &syncBuffer{}}
	if o.account.Username == "" {
		o.account = hubemu.Account{Username: hubUser, Password: hubPassword, Orgs: []string{"ptc-org"}}
	}
	f.hub = hubemu.New(hubemu.Options{}, o.account)
	srv := httptest.NewServer(f.hub)
	t.Cleanup(srv.Close)
	f.hubURL = srv.URL
	if o.source == nil {
		o.source = map[string]any{"username": o.account.Username, "password": o.account.Password}
	}
	if _, ok := o.source["apiUrl"]; !ok {
		o.source["apiUrl"] = srv.URL
	}
	b, _ := json.Marshal(o.source)
	f.sourceJSON = string(b)
	id := newID()
	src, err := f.sm.CreateSecret(f.ctx, &secretsmanager.CreateSecretInput{Name: aws.String("ptc-source/hub-" + id[:8]), SecretString: aws.String(f.sourceJSON)})
	if err != nil {
		t.Fatal(err)
	}
	f.sourceARN = aws.ToString(src.ARN)
	f.name = ptcsecret.Prefix + "docker-hub-" + id[:8]
	if o.noSetup {
		return f
	}
	// What the provisioner does: mint the first token labelled for version v0, create the
	// secret with it, then turn rotation on (RotateImmediately=false runs only testSecret).
	v0 := newID()
	up := f.upstream()
	minted, err := up.Mint(f.ctx, upstream.MintRequest{SecretName: f.name, VersionID: v0, Label: ptcsecret.Label(f.name, v0)})
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := minted.Credential.Marshal()
	out, err := f.sm.CreateSecret(f.ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String(f.name), ClientRequestToken: aws.String(v0), SecretString: aws.String(doc),
		Tags: []smtypes.Tag{
			{Key: aws.String(ptcsecret.TagUpstream), Value: aws.String(ptcsecret.UpstreamDockerHub)},
			{Key: aws.String(ptcsecret.TagSourceSecret), Value: aws.String(f.sourceARN)},
			{Key: aws.String(ptcsecret.TagRegistryURL), Value: aws.String(srv.URL)},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.arn = aws.ToString(out.ARN)
	f.enableRotation()
	return f
}

func (f *fixture) upstream() upstream.Upstream {
	f.t.Helper()
	up, err := dockerhub.New([]byte(f.sourceJSON), upstream.Options{RegistryURL: f.hubURL})
	if err != nil {
		f.t.Fatal(err)
	}
	return up
}

// enableRotation is RotateSecret(RotateImmediately=false): testSecret on a pending copy of the
// current value, which Secrets Manager then drops.
func (f *fixture) enableRotation() {
	f.t.Helper()
	token := newID()
	if err := testenv.BeginRotation(f.ctx, f.sm, f.arn, token, false); err != nil {
		f.t.Fatal(err)
	}
	if err := f.step(rotation.TestSecret, token); err != nil {
		f.t.Fatalf("testSecret on the pending copy of the current value: %v", err)
	}
	if _, err := f.sm.UpdateSecretVersionStage(f.ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String(f.arn), VersionStage: aws.String("AWSPENDING"), RemoveFromVersionId: aws.String(token),
	}); err != nil {
		f.t.Fatal(err)
	}
}

// rotator is a fresh process unless reused: each Lambda environment starts empty.
func (f *fixture) rotator() *rotation.Rotator {
	return &rotation.Rotator{
		SM: f.sm, Providers: providers.All(),
		Logger:  slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Metrics: &metrics.Emitter{W: f.emf},
	}
}

func (f *fixture) step(step rotation.Step, token string) error {
	return f.stepWith(f.rotator(), step, token)
}

func (f *fixture) stepWith(r *rotation.Rotator, step rotation.Step, token string) error {
	err := r.Handle(f.ctx, rotation.Event{Step: step, SecretID: f.arn, ClientRequestToken: token, RotationToken: "rotation-token-" + newID()})
	if err != nil {
		f.errs = append(f.errs, err)
	}
	return err
}

// rotate runs one whole rotation the way Secrets Manager does and returns the new version id.
func (f *fixture) rotate() string {
	f.t.Helper()
	token := newID()
	if err := testenv.BeginRotation(f.ctx, f.sm, f.arn, token, true); err != nil {
		f.t.Fatal(err)
	}
	r := f.rotator() // the four steps usually land in one warm environment
	for _, s := range []rotation.Step{rotation.CreateSecret, rotation.SetSecret, rotation.TestSecret, rotation.FinishSecret} {
		if err := f.stepWith(r, s, token); err != nil {
			f.t.Fatalf("%s: %v", s, err)
		}
	}
	return token
}

func (f *fixture) stages() map[string][]string {
	f.t.Helper()
	st, err := testenv.Stages(f.ctx, f.sm, f.arn)
	if err != nil {
		f.t.Fatal(err)
	}
	return st
}

func (f *fixture) value(version string) ptcsecret.Value {
	f.t.Helper()
	s, err := testenv.ValueOf(f.ctx, f.sm, f.arn, version)
	if err != nil {
		f.t.Fatalf("reading version %s: %v", version, err)
	}
	v, err := ptcsecret.Parse(s)
	if err != nil {
		f.t.Fatal(err)
	}
	return v
}

func (f *fixture) current() (string, ptcsecret.Value) {
	f.t.Helper()
	id := testenv.VersionWith(f.stages(), "AWSCURRENT")
	return id, f.value(id)
}

func (f *fixture) loginErr(v ptcsecret.Value) error {
	return registryauth.Check(f.ctx, nil, registryauth.Target{Registry: f.hubURL, Repository: "library/alpine"},
		registryauth.Credential{Username: v.Username, Password: v.AccessToken})
}

func (f *fixture) mustLogIn(v ptcsecret.Value, what string) {
	f.t.Helper()
	if err := f.loginErr(v); err != nil {
		f.t.Fatalf("%s does not log in: %v", what, err)
	}
}

// tokens returns the emulator's tokens labelled for this secret, by version id.
func (f *fixture) tokens() map[string]hubemu.Token {
	out := map[string]hubemu.Token{}
	for _, t := range f.hub.Tokens() {
		if v, ok := ptcsecret.VersionFromLabel(f.name, t.Label); ok {
			if _, dup := out[v]; dup {
				f.t.Fatalf("two tokens carry the label of version %s", v)
			}
			out[v] = t
		}
	}
	return out
}

// assertNoLeak scans everything captured for planted and minted secrets.
func (f *fixture) assertNoLeak() {
	f.t.Helper()
	planted := []string{hubPassword, hubTOTP}
	for _, t := range f.hub.Tokens() {
		planted = append(planted, t.Secret)
	}
	var errText strings.Builder
	for _, e := range f.errs {
		errText.WriteString(e.Error() + "\n")
	}
	for _, where := range []struct{ name, text string }{{"logs", f.logs.String()}, {"metrics", f.emf.String()}, {"errors", errText.String()}} {
		for _, p := range planted {
			if p != "" && strings.Contains(where.text, p) {
				f.t.Errorf("a planted secret (%d chars, starts %q) appears in the %s", len(p), p[:4], where.name)
			}
		}
	}
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func TestFullRotationStagesAndLogin(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	oldID, oldVal := f.current()
	token := newID()
	if err := testenv.BeginRotation(f.ctx, f.sm, f.arn, token, true); err != nil {
		t.Fatal(err)
	}
	r := f.rotator()

	if err := f.stepWith(r, rotation.CreateSecret, token); err != nil {
		t.Fatal(err)
	}
	st := f.stages()
	if !slices.Contains(st[token], "AWSPENDING") || !slices.Contains(st[oldID], "AWSCURRENT") {
		t.Fatalf("after createSecret: stages %v", st)
	}
	pending := f.value(token)
	if pending.Username != hubUser || pending.AccessToken == oldVal.AccessToken {
		t.Fatalf("pending value is not a new token for %s", hubUser)
	}
	if tok, ok := f.tokens()[token]; !ok || !tok.Active || tok.ExpiresAt.IsZero() {
		t.Fatalf("no active expiring token labelled for the pending version: %+v", f.tokens())
	}

	for _, s := range []rotation.Step{rotation.SetSecret, rotation.TestSecret} {
		if err := f.stepWith(r, s, token); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if st := f.stages(); !slices.Contains(st[oldID], "AWSCURRENT") {
			t.Fatalf("%s moved AWSCURRENT: %v", s, st)
		}
	}
	if err := f.stepWith(r, rotation.FinishSecret, token); err != nil {
		t.Fatal(err)
	}
	st = f.stages()
	if !slices.Contains(st[token], "AWSCURRENT") || !slices.Contains(st[oldID], "AWSPREVIOUS") {
		t.Fatalf("after finishSecret: stages %v", st)
	}
	curID, cur := f.current()
	if curID != token {
		t.Fatalf("AWSCURRENT is %s, want %s", curID, token)
	}
	f.mustLogIn(cur, "AWSCURRENT")
	f.mustLogIn(oldVal, "AWSPREVIOUS (one generation of overlap)")
	if !strings.Contains(f.emf.String(), `"RotationSucceeded":1`) {
		t.Errorf("no RotationSucceeded metric in %s", f.emf.String())
	}
	f.assertNoLeak()
}

func TestTokenTwoGenerationsOldIsRevoked(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	v0, val0 := f.current()
	v1 := f.rotate()
	val1 := f.value(v1)
	v2 := f.rotate()
	val2 := f.value(v2)

	toks := f.tokens()
	if _, ok := toks[v0]; ok {
		t.Errorf("token of version %s (two generations old) still exists", v0)
	}
	if len(toks) != 2 || toks[v1].ID == "" || toks[v2].ID == "" {
		t.Errorf("want exactly the current and previous tokens, have %d: %v", len(toks), keys(toks))
	}
	if err := f.loginErr(val0); !errors.Is(err, registryauth.ErrBadCredentials) {
		t.Errorf("revoked token still logs in (err=%v)", err)
	}
	f.mustLogIn(val1, "AWSPREVIOUS")
	f.mustLogIn(val2, "AWSCURRENT")
	if !strings.Contains(f.emf.String(), `"TokensRevoked":1`) {
		t.Errorf("no TokensRevoked metric")
	}
	f.assertNoLeak()
}

func TestEveryStepTwiceChangesNothing(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	oldID, _ := f.current()
	token := newID()
	if err := testenv.BeginRotation(f.ctx, f.sm, f.arn, token, true); err != nil {
		t.Fatal(err)
	}
	var after map[string][]string
	var pending ptcsecret.Value
	for i, s := range []rotation.Step{rotation.CreateSecret, rotation.SetSecret, rotation.TestSecret, rotation.FinishSecret} {
		for run := 1; run <= 2; run++ {
			// A retry may land in a fresh environment: use a new Rotator each time.
			if err := f.step(s, token); err != nil {
				t.Fatalf("%s run %d: %v", s, run, err)
			}
			st := f.stages()
			if run == 1 {
				after = st
				if i == 0 {
					pending = f.value(token)
				}
				continue
			}
			if fmt.Sprint(sorted(st)) != fmt.Sprint(sorted(after)) {
				t.Fatalf("%s run twice changed stages: %v then %v", s, after, st)
			}
		}
	}
	if v := f.value(token); v.AccessToken != pending.AccessToken {
		t.Fatal("the pending value changed between runs")
	}
	if n := len(f.tokens()); n != 2 {
		t.Fatalf("want 2 tokens (current and previous) after a doubled rotation, have %d", n)
	}
	if st := f.stages(); !slices.Contains(st[oldID], "AWSPREVIOUS") {
		t.Fatalf("stages %v", st)
	}
	_, cur := f.current()
	f.mustLogIn(cur, "AWSCURRENT")
	f.assertNoLeak()
}

func TestTestSecretOnlyPassesWithoutMinting(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	before := len(f.hub.Tokens())
	f.hub.ResetCalls()
	f.enableRotation() // RotateSecret(RotateImmediately=false) again
	if after := len(f.hub.Tokens()); after != before {
		t.Fatalf("testSecret-only rotation minted: %d tokens before, %d after", before, after)
	}
	for _, c := range f.hub.Calls() {
		if strings.HasPrefix(c.Path, "/v2/access-tokens") || strings.HasPrefix(c.Path, "/v2/users") {
			t.Errorf("testSecret called the token API: %s %s", c.Method, c.Path)
		}
	}
}

// crashingSM dies (panics, as a killed process would stop) inside PutSecretValue, after the
// token was minted and before it was stored.
type crashingSM struct{ rotation.SecretsManager }

func (crashingSM) PutSecretValue(context.Context, *secretsmanager.PutSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error) {
	panic("simulated crash between mint and PutSecretValue")
}

func TestCrashBetweenMintAndPutLeavesNoOrphan(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	curID, cur := f.current()
	token := newID()
	if err := testenv.BeginRotation(f.ctx, f.sm, f.arn, token, true); err != nil {
		t.Fatal(err)
	}
	crashing := f.rotator()
	crashing.SM = crashingSM{f.sm}
	if err := f.stepWith(crashing, rotation.CreateSecret, token); err == nil {
		t.Fatal("the crashing createSecret reported success")
	}
	orphan, ok := f.tokens()[token]
	if !ok {
		t.Fatal("the crash scenario did not leave an orphan token to clean up")
	}
	if id, _ := f.current(); id != curID {
		t.Fatal("AWSCURRENT moved")
	}
	f.mustLogIn(cur, "AWSCURRENT after the crash")

	// Secrets Manager retries the rotation from createSecret in a new environment.
	r := f.rotator()
	for _, s := range []rotation.Step{rotation.CreateSecret, rotation.SetSecret, rotation.TestSecret, rotation.FinishSecret} {
		if err := f.stepWith(r, s, token); err != nil {
			t.Fatalf("retry %s: %v", s, err)
		}
	}
	toks := f.tokens()
	if toks[token].ID == orphan.ID {
		t.Fatal("the orphan token survived the retry")
	}
	for _, tk := range f.hub.Tokens() {
		if tk.ID == orphan.ID {
			t.Fatal("the orphan token still exists upstream")
		}
	}
	if len(toks) != 2 {
		t.Fatalf("want current and previous tokens only, have %v", keys(toks))
	}
	_, now := f.current()
	f.mustLogIn(now, "AWSCURRENT after the retry")
	if !strings.Contains(f.logs.String(), "revoked token left by an earlier attempt") {
		t.Error("the orphan's revocation was not logged")
	}
	f.assertNoLeak()
}

func TestTwoFactorAccount(t *testing.T) {
	acct := hubemu.Account{Username: hubUser, Password: hubPassword, TOTPSecret: hubTOTP}
	f := newFixture(t, fixtureOpts{account: acct, source: map[string]any{"username": hubUser, "password": hubPassword, "totpSecret": hubTOTP}})
	f.rotate()
	_, cur := f.current()
	f.mustLogIn(cur, "AWSCURRENT")
	f.assertNoLeak()
}

func TestOrganizationTokens(t *testing.T) {
	f := newFixture(t, fixtureOpts{source: map[string]any{"username": hubUser, "password": hubPassword, "organization": "ptc-org"}})
	f.rotate()
	f.rotate()
	_, cur := f.current()
	if cur.Username != "ptc-org" {
		t.Fatalf("organization token logs in as %q, want the organization name", cur.Username)
	}
	f.mustLogIn(cur, "AWSCURRENT")
	for _, tk := range f.tokens() {
		if !tk.Org {
			t.Errorf("token %s is not an organization token", tk.Label)
		}
	}
	if n := len(f.tokens()); n != 2 {
		t.Fatalf("want 2 organization tokens, have %d", n)
	}
	f.assertNoLeak()
}

func sorted(m map[string][]string) []string {
	var out []string
	for k, v := range m {
		v = slices.Clone(v)
		slices.Sort(v)
		out = append(out, k+"="+strings.Join(v, ","))
	}
	slices.Sort(out)
	return out
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

var _ = http.StatusOK
var _ = time.Second
