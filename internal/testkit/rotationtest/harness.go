// Package rotationtest is the shared harness for rotation integration tests of any upstream:
// a managed secret and its source secret in a real Secrets Manager double (moto_server, or
// localsm where a suite runs most of its cases there), the first token minted the way
// the provisioner does it, rotation enabled the way RotateSecret(RotateImmediately=false) does
// it, and whole rotations driven the way Secrets Manager drives them. Each upstream's tests
// bring their emulator and their own login check.
package rotationtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/ptc-credentials/ptc-credentials/internal/metrics"
	"github.com/ptc-credentials/ptc-credentials/internal/pinned"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/rotation"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
)

// Config describes the upstream under test.
type Config struct {
	// Provider is the upstream's descriptor.
	Provider upstream.Provider
	// SourceJSON is the source secret's value when New creates it (pointing the upstream at its
	// emulator); Upstream reads the value stored now, so a test that changes the source secret
	// needs to change it in Secrets Manager only.
	SourceJSON string
	// RegistryURL becomes the ptc:registry-url tag.
	RegistryURL string
	// HTTPClient is handed to the rotator and upstreams; nil means the default.
	HTTPClient *http.Client
	// Standins are the emulators that may stand in for the upstream's pinned hosts (its
	// registries.Emulator.Standins()); handed to the rotator and upstreams.
	Standins pinned.Standins
	// NoSetup skips creating the managed secret (for tests of a broken setup).
	NoSetup bool
}

// Harness is one managed secret under test.
type Harness struct {
	T   testing.TB
	Ctx context.Context
	SM  *secretsmanager.Client
	Cfg Config
	// Logs and EMF capture everything the rotators wrote.
	Logs, EMF *SyncBuffer
	// Name and ARN of the managed secret; SourceARN of the source secret.
	Name, ARN, SourceARN string
	// Key is ptcsecret.Key of the managed secret: token labels hash it, so find a version's
	// token with ptcsecret.VersionFromLabel(h.Key, label).
	Key string
	// Errs are every error a step returned, for leak scans.
	Errs []error
}

// New creates the source secret and (unless cfg.NoSetup) the managed secret with a first token
// labelled for its first version in sm (a *testenv.Moto or *testenv.LocalSM), then enables
// rotation.
func New(t testing.TB, sm testenv.SecretsManagerServer, cfg Config) *Harness {
	t.Helper()
	h := &Harness{T: t, Ctx: testenv.Context(t), SM: sm.SecretsManager(), Cfg: cfg, Logs: &SyncBuffer{}, EMF: &SyncBuffer{}}
	id := NewID()
	h.Name = ptcsecret.Prefix + cfg.Provider.Registry + "-" + id[:8]
	src, err := h.SM.CreateSecret(h.Ctx, &secretsmanager.CreateSecretInput{Name: aws.String("ptc-source/" + cfg.Provider.Registry + "-" + id[:8]), SecretString: aws.String(BindSource(cfg.SourceJSON, h.Name))})
	if err != nil {
		t.Fatal(err)
	}
	h.SourceARN = aws.ToString(src.ARN)
	h.Key = ptcsecret.Key(testenv.Region, testenv.AccountID, h.Name)
	if cfg.NoSetup {
		return h
	}
	v0 := NewID()
	// As the provisioner does it: the secret does not exist yet, so any token labelled for it is
	// an orphan, revoked (none kept) before minting.
	minted, err := upstream.MintLabelled(h.Ctx, h.Upstream(), upstream.MintRequest{SecretName: h.Name, VersionID: v0, Label: ptcsecret.Label(h.Key, v0)}, ptcsecret.LabelPrefix(h.Key), nil, nil)
	if err != nil {
		t.Fatalf("minting the first token: %v", err)
	}
	doc, err := minted.Credential.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	h.ARN = h.CreateManaged(v0, doc, h.Tags())
	if len(minted.Stages) > 0 {
		// The provisioner records upstream bookkeeping labels (ACR's slot) on the first version.
		for _, s := range minted.Stages {
			if _, err := h.SM.UpdateSecretVersionStage(h.Ctx, &secretsmanager.UpdateSecretVersionStageInput{
				SecretId: aws.String(h.ARN), VersionStage: aws.String(s), MoveToVersionId: aws.String(v0),
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	h.EnableRotation()
	return h
}

// Tags are the managed-secret tags for this upstream.
func (h *Harness) Tags() []smtypes.Tag {
	tags := []smtypes.Tag{
		{Key: aws.String(ptcsecret.TagUpstream), Value: aws.String(h.Cfg.Provider.Registry)},
		{Key: aws.String(ptcsecret.TagSourceSecret), Value: aws.String(h.SourceARN)},
	}
	if h.Cfg.RegistryURL != "" {
		tags = append(tags, smtypes.Tag{Key: aws.String(ptcsecret.TagRegistryURL), Value: aws.String(h.Cfg.RegistryURL)})
	}
	return tags
}

// CreateManaged creates the managed secret with a first version and returns its ARN.
func (h *Harness) CreateManaged(versionID, doc string, tags []smtypes.Tag) string {
	h.T.Helper()
	out, err := h.SM.CreateSecret(h.Ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String(h.Name), ClientRequestToken: aws.String(versionID), SecretString: aws.String(doc), Tags: tags,
	})
	if err != nil {
		h.T.Fatal(err)
	}
	return aws.ToString(out.ARN)
}

// Upstream builds the upstream under test from the source secret as it is stored now, the way
// the rotator does (upstream.FromSource).
func (h *Harness) Upstream() upstream.Upstream {
	h.T.Helper()
	up, err := upstream.FromSource(h.Ctx, h.SM, upstream.SourceRequest{
		Name: "source secret", Registry: h.Cfg.Provider.Registry, ARN: h.SourceARN, ForSecret: h.Name,
		Providers: map[string]upstream.Provider{h.Cfg.Provider.Registry: h.Cfg.Provider},
		Options:   upstream.Options{HTTPClient: h.Cfg.HTTPClient, RegistryURL: h.Cfg.RegistryURL, Standins: h.Cfg.Standins},
	})
	if err != nil {
		h.T.Fatal(err)
	}
	return up
}

// EnableRotation is RotateSecret(RotateImmediately=false): testSecret on a pending copy of the
// current value, which Secrets Manager then drops.
func (h *Harness) EnableRotation() {
	h.T.Helper()
	token := NewID()
	if err := testenv.BeginRotation(h.Ctx, h.SM, h.ARN, token, false); err != nil {
		h.T.Fatal(err)
	}
	if err := h.Step(rotation.TestSecret, token); err != nil {
		h.T.Fatalf("testSecret on the pending copy of the current value: %v", err)
	}
	if _, err := h.SM.UpdateSecretVersionStage(h.Ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String(h.ARN), VersionStage: aws.String("AWSPENDING"), RemoveFromVersionId: aws.String(token),
	}); err != nil {
		h.T.Fatal(err)
	}
}

// Rotator returns a rotator as a fresh Lambda environment would have it.
func (h *Harness) Rotator() *rotation.Rotator {
	return &rotation.Rotator{
		SM:         h.SM,
		Providers:  map[string]upstream.Provider{h.Cfg.Provider.Registry: h.Cfg.Provider},
		HTTPClient: h.Cfg.HTTPClient,
		Standins:   h.Cfg.Standins,
		Logger:     slog.New(slog.NewJSONHandler(h.Logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Metrics:    &metrics.Emitter{W: h.EMF},
	}
}

// Step runs one step in a fresh environment.
func (h *Harness) Step(step rotation.Step, token string) error {
	return h.StepWith(h.Rotator(), step, token)
}

// StepWith runs one step with the given rotator, recording any error.
func (h *Harness) StepWith(r *rotation.Rotator, step rotation.Step, token string) error {
	err := r.Handle(h.Ctx, rotation.Event{Step: step, SecretID: h.ARN, ClientRequestToken: token, RotationToken: "rotation-token-" + NewID()})
	if err != nil {
		h.Errs = append(h.Errs, err)
	}
	return err
}

// Steps are the four steps in order.
var Steps = []rotation.Step{rotation.CreateSecret, rotation.SetSecret, rotation.TestSecret, rotation.FinishSecret}

// Begin stages a pending version as RotateSecret does and returns its id.
func (h *Harness) Begin() string {
	h.T.Helper()
	token := NewID()
	if err := testenv.BeginRotation(h.Ctx, h.SM, h.ARN, token, true); err != nil {
		h.T.Fatal(err)
	}
	return token
}

// Rotate runs one whole rotation (in one warm environment) and returns the new version id.
func (h *Harness) Rotate() string {
	h.T.Helper()
	token := h.Begin()
	r := h.Rotator()
	for _, s := range Steps {
		if err := h.StepWith(r, s, token); err != nil {
			h.T.Fatalf("%s: %v", s, err)
		}
	}
	return token
}

// Stages returns version id -> staging labels.
func (h *Harness) Stages() map[string][]string {
	h.T.Helper()
	st, err := testenv.Stages(h.Ctx, h.SM, h.ARN)
	if err != nil {
		h.T.Fatal(err)
	}
	return st
}

// Value reads one version's value.
func (h *Harness) Value(version string) ptcsecret.Value {
	h.T.Helper()
	s, err := testenv.ValueOf(h.Ctx, h.SM, h.ARN, version)
	if err != nil {
		h.T.Fatalf("reading version %s: %v", version, err)
	}
	v, err := ptcsecret.Parse(s)
	if err != nil {
		h.T.Fatal(err)
	}
	return v
}

// Current returns the AWSCURRENT version id and value.
func (h *Harness) Current() (string, ptcsecret.Value) {
	h.T.Helper()
	id := testenv.VersionWith(h.Stages(), "AWSCURRENT")
	return id, h.Value(id)
}

// AssertStages fails unless version carries every one of want.
func (h *Harness) AssertStages(version string, want ...string) {
	h.T.Helper()
	st := h.Stages()
	for _, w := range want {
		if !slices.Contains(st[version], w) {
			h.T.Fatalf("version %s lacks %s: stages %v", version, w, st)
		}
	}
}

// AssertNoLeak fails if any planted value appears in the captured logs, metrics or errors.
func (h *Harness) AssertNoLeak(planted ...string) {
	h.T.Helper()
	var errText strings.Builder
	for _, e := range h.Errs {
		errText.WriteString(e.Error() + "\n")
	}
	for _, where := range []struct{ name, text string }{{"logs", h.Logs.String()}, {"metrics", h.EMF.String()}, {"errors", errText.String()}} {
		for _, p := range planted {
			if len(p) >= 6 && strings.Contains(where.text, p) {
				h.T.Errorf("a planted secret (%d chars, starts %q) appears in the %s", len(p), p[:4], where.name)
			}
		}
	}
}

// NewID returns a random UUID-shaped version id.
func NewID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	x := hex.EncodeToString(b)
	return x[:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:]
}

// SyncBuffer is a goroutine-safe bytes.Buffer for captured logs.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write implements io.Writer.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// CrashingSM dies inside PutSecretValue — it panics, as a killed process stops — after the
// token was minted and before it was stored: the crash a retry must clean up after.
type CrashingSM struct{ rotation.SecretsManager }

// PutSecretValue panics.
func (CrashingSM) PutSecretValue(context.Context, *secretsmanager.PutSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error) {
	panic("simulated crash between mint and PutSecretValue")
}

// SortedStages renders version id -> stages in a stable order, to compare two snapshots.
func SortedStages(m map[string][]string) []string {
	var out []string
	for k, v := range m {
		v = slices.Clone(v)
		slices.Sort(v)
		out = append(out, k+"="+strings.Join(v, ","))
	}
	slices.Sort(out)
	return out
}

// BindSource returns a source secret JSON that allows managed secret name, as the source's owner
// would set it (upstream.BindingField), when doc is a JSON object that does not say yet; any
// other doc (not JSON, or with its own binding — the binding tests') is returned as it is.
func BindSource(doc, name string) string {
	var obj map[string]any
	if err := json.Unmarshal([]byte(doc), &obj); err != nil {
		return doc
	}
	if _, ok := obj[upstream.BindingField]; ok {
		return doc
	}
	obj[upstream.BindingField] = []string{name}
	b, err := json.Marshal(obj)
	if err != nil {
		return doc
	}
	return string(b)
}
