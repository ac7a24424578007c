package benchkit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/ptc-credentials/ptc-credentials/internal/metrics"
	"github.com/ptc-credentials/ptc-credentials/internal/pinned"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/rotation"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/providers"
)

// Backend is a Secrets Manager to rotate against: moto_server or localsm, both over HTTP with
// real SDK clients. Setup calls go around the counting decorator: they are Secrets Manager's (or
// the provisioner's) work, not the rotator's.
type Backend interface {
	// Name is "moto" or "local", for benchmark names.
	Name() string
	// SM is the client one Lambda environment would build (a fresh SDK client).
	SM() rotation.SecretsManager
	// CreateSecret creates a secret whose first version versionID (may be empty) holds value.
	CreateSecret(ctx context.Context, name, versionID, value string, tags []smtypes.Tag) (string, error)
	// Stage moves a staging label to a version.
	Stage(ctx context.Context, arn, stage, versionID string) error
	// EnableRotation turns rotation on as RotateSecret(RotateImmediately=false) does.
	EnableRotation(ctx context.Context, arn string) error
	// Begin stages an empty AWSPENDING version token, as RotateSecret does.
	Begin(ctx context.Context, arn, token string) error
}

// ServerBackend is a Secrets Manager server reached with real aws-sdk-go-v2 clients: moto_server
// (NewMotoBackend), whose cost is a Python process behind a one-request gate, or localsm
// (NewLocalBackend), a Go implementation conformance-tested against moto that costs little
// more than the SDK's own serialization and a loopback round trip, so the rotator's own cost
// shows.
type ServerBackend struct {
	// Server is the running Secrets Manager.
	Server testenv.SecretsManagerServer
	name   string
	admin  *secretsmanager.Client
}

// NewMotoBackend wraps a running moto_server.
func NewMotoBackend(m *testenv.Moto) *ServerBackend {
	return &ServerBackend{Server: m, name: "moto", admin: m.SecretsManager()}
}

// NewLocalBackend wraps a running localsm (testenv.StartLocalSM).
func NewLocalBackend(l *testenv.LocalSM) *ServerBackend {
	return &ServerBackend{Server: l, name: "local", admin: l.SecretsManager()}
}

// Name implements Backend.
func (b *ServerBackend) Name() string { return b.name }

// Moto returns the moto_server behind the backend, or nil for localsm.
func (b *ServerBackend) Moto() *testenv.Moto {
	m, _ := b.Server.(*testenv.Moto)
	return m
}

// SM implements Backend: a new SDK client, with its own connections, as a new Lambda
// environment has.
func (b *ServerBackend) SM() rotation.SecretsManager { return b.Server.SecretsManager() }

// Admin is the client setup uses.
func (b *ServerBackend) Admin() *secretsmanager.Client { return b.admin }

// CreateSecret implements Backend.
func (b *ServerBackend) CreateSecret(ctx context.Context, name, versionID, value string, tags []smtypes.Tag) (string, error) {
	in := &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value), Tags: tags}
	if versionID != "" {
		in.ClientRequestToken = aws.String(versionID)
	}
	out, err := b.admin.CreateSecret(ctx, in)
	if err != nil {
		return "", err
	}
	return aws.ToString(out.ARN), nil
}

// Stage implements Backend.
func (b *ServerBackend) Stage(ctx context.Context, arn, stage, versionID string) error {
	_, err := b.admin.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String(arn), VersionStage: aws.String(stage), MoveToVersionId: aws.String(versionID),
	})
	return err
}

// EnableRotation implements Backend: RotateSecret(RotateImmediately=false) marks rotation on and
// stages a pending copy; the testSecret Secrets Manager would then run is the provisioner
// benchmark's business, so the copy is simply dropped.
func (b *ServerBackend) EnableRotation(ctx context.Context, arn string) error {
	token := NewID()
	if err := testenv.BeginRotation(ctx, b.admin, arn, token, false); err != nil {
		return err
	}
	_, err := b.admin.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String(arn), VersionStage: aws.String(ptcsecret.StagePending), RemoveFromVersionId: aws.String(token),
	})
	return err
}

// Begin implements Backend.
func (b *ServerBackend) Begin(ctx context.Context, arn, token string) error {
	return testenv.BeginRotation(ctx, b.admin, arn, token, true)
}

// Managed is one managed secret ready to rotate.
type Managed struct {
	Registry          *Registry
	Index             int
	Name, ARN, Source string
	// Key is ptcsecret.Key of the secret: token labels hash it.
	Key string
}

// Setup creates what the provisioner creates for managed secret number i of reg: the source
// secret (or sourceARN, when the registry's secrets share one), the first token minted with the
// label of the first version, the managed secret with its tags, and rotation turned on.
func Setup(ctx context.Context, be Backend, reg *Registry, i int, sourceARN string) (*Managed, error) {
	id := NewID()[:8]
	sourceJSON := reg.Source(i)
	if sourceARN == "" {
		var err error
		if sourceARN, err = be.CreateSecret(ctx, fmt.Sprintf("ptc-source/%s-%d-%s", reg.Name, i, id), "", sourceJSON, nil); err != nil {
			return nil, fmt.Errorf("creating the source secret: %w", err)
		}
	}
	m := &Managed{Registry: reg, Index: i, Name: fmt.Sprintf("%s%s-%d-%s", ptcsecret.Prefix, reg.Name, i, id), Source: sourceARN}
	m.Key = ptcsecret.Key(testenv.Region, testenv.AccountID, m.Name)
	up, err := reg.Provider.New([]byte(sourceJSON), upstream.Options{RegistryURL: reg.URL, Standins: reg.Standins()})
	if err != nil {
		return nil, fmt.Errorf("building the %s upstream: %w", reg.Name, err)
	}
	v0 := NewID()
	minted, err := up.Mint(ctx, upstream.MintRequest{SecretName: m.Name, VersionID: v0, Label: ptcsecret.Label(m.Key, v0)})
	if err != nil {
		return nil, fmt.Errorf("minting the first %s token: %w", reg.Name, err)
	}
	doc, err := minted.Credential.Marshal()
	if err != nil {
		return nil, err
	}
	tags := []smtypes.Tag{
		{Key: aws.String(ptcsecret.TagUpstream), Value: aws.String(reg.Name)},
		{Key: aws.String(ptcsecret.TagSourceSecret), Value: aws.String(sourceARN)},
		{Key: aws.String(ptcsecret.TagRegistryURL), Value: aws.String(reg.URL)},
	}
	if m.ARN, err = be.CreateSecret(ctx, m.Name, v0, doc, tags); err != nil {
		return nil, fmt.Errorf("creating the managed secret: %w", err)
	}
	for _, s := range minted.Stages {
		if err := be.Stage(ctx, m.ARN, s, v0); err != nil {
			return nil, fmt.Errorf("labelling the first version %s: %w", s, err)
		}
	}
	if err := be.EnableRotation(ctx, m.ARN); err != nil {
		return nil, fmt.Errorf("enabling rotation: %w", err)
	}
	return m, nil
}

// NewRotator returns the rotator one Lambda environment holds: its own Secrets Manager client
// (sm), its own HTTP connections, JSON logs and EMF metrics written (to nowhere) as in
// production, and every provider; standins are the emulators it may reach (Standins).
func NewRotator(sm rotation.SecretsManager, standins pinned.Standins) *rotation.Rotator {
	return &rotation.Rotator{
		SM:         sm,
		Standins:   standins,
		Providers:  providers.All(),
		HTTPClient: &http.Client{Timeout: 30 * time.Second, Transport: http.DefaultTransport.(*http.Transport).Clone()},
		Logger:     slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Metrics:    &metrics.Emitter{W: io.Discard},
	}
}

// Steps are the four rotation steps in order.
var Steps = []rotation.Step{rotation.CreateSecret, rotation.SetSecret, rotation.TestSecret, rotation.FinishSecret}

// RunSteps runs the four steps of the rotation to version token. newEnv returns the rotator of
// a Lambda environment: warm calls it once for all four steps (one environment, as Secrets
// Manager's four invocations usually land in), cold once per step (four environments).
func RunSteps(ctx context.Context, arn, token string, warm bool, newEnv func() *rotation.Rotator) error {
	var r *rotation.Rotator
	for _, s := range Steps {
		if r == nil || !warm {
			r = newEnv()
		}
		if err := r.Handle(ctx, rotation.Event{Step: s, SecretID: arn, ClientRequestToken: token, RotationToken: "rotation-token-" + token}); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

// CurrentVersion returns the version id carrying AWSCURRENT, read around the counting
// decorator.
func CurrentVersion(ctx context.Context, be Backend, arn string) (string, error) {
	sb, ok := be.(*ServerBackend)
	if !ok {
		return "", fmt.Errorf("unknown backend %T", be)
	}
	st, err := testenv.Stages(ctx, sb.Admin(), arn)
	if err != nil {
		return "", err
	}
	return testenv.VersionWith(st, ptcsecret.StageCurrent), nil
}

// NewID returns a random UUID-shaped version id.
func NewID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	x := hex.EncodeToString(b)
	return strings.Join([]string{x[:8], x[8:12], x[12:16], x[16:20], x[20:]}, "-")
}
