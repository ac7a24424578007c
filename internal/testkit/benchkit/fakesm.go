package benchkit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/rotation"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
)

// FakeSM is an in-process, map-based Secrets Manager holding just what a rotation touches:
// secrets with tags, versions with staging labels, and the four calls the rotator makes, with
// Secrets Manager's rules for them (a stage read of a version that does not carry the stage is
// ResourceNotFoundException; moving AWSCURRENT moves AWSPREVIOUS; a version left without a label
// is deprecated and dropped). It exists so the benchmarks can show the rotator's own cost apart
// from moto_server's, and so the scale simulation is not bounded by moto. TestFakeSMAgreesWithMoto
// checks it against moto for the calls a rotation makes.
type FakeSM struct {
	mu      sync.Mutex
	secrets map[string]*fakeSecret // by ARN
	names   map[string]string      // name -> ARN
}

type fakeSecret struct {
	arn, name string
	tags      []smtypes.Tag
	rotation  bool
	versions  map[string]*fakeVersion
}

type fakeVersion struct {
	value  *string // nil: staged by RotateSecret, no value yet
	stages []string
}

var _ rotation.SecretsManager = (*FakeSM)(nil)

// NewFakeSM returns an empty store.
func NewFakeSM() *FakeSM {
	return &FakeSM{secrets: map[string]*fakeSecret{}, names: map[string]string{}}
}

func notFound(format string, args ...any) error {
	return &smtypes.ResourceNotFoundException{Message: aws.String(fmt.Sprintf(format, args...))}
}

// find resolves a name or ARN; the caller holds mu.
func (f *FakeSM) find(id string) (*fakeSecret, error) {
	if s, ok := f.secrets[id]; ok {
		return s, nil
	}
	if arn, ok := f.names[id]; ok {
		return f.secrets[arn], nil
	}
	return nil, notFound("Secrets Manager can't find the specified secret.")
}

// CreateSecret stores a secret whose first version (id versionID, or a random one) is
// AWSCURRENT, and returns its ARN.
func (f *FakeSM) CreateSecret(_ context.Context, in *secretsmanager.CreateSecretInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.CreateSecretOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	name := aws.ToString(in.Name)
	if _, ok := f.names[name]; ok {
		return nil, &smtypes.ResourceExistsException{Message: aws.String("the secret " + name + " already exists")}
	}
	suffix := make([]byte, 3)
	_, _ = rand.Read(suffix)
	arn := fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:%s-%s", testenv.Region, testenv.AccountID, name, hex.EncodeToString(suffix))
	vid := aws.ToString(in.ClientRequestToken)
	if vid == "" {
		vid = NewID()
	}
	s := &fakeSecret{arn: arn, name: name, tags: slices.Clone(in.Tags), versions: map[string]*fakeVersion{}}
	if in.SecretString != nil {
		s.versions[vid] = &fakeVersion{value: aws.String(*in.SecretString), stages: []string{ptcsecret.StageCurrent}}
	}
	f.secrets[arn], f.names[name] = s, arn
	return &secretsmanager.CreateSecretOutput{ARN: aws.String(arn), Name: aws.String(name), VersionId: aws.String(vid)}, nil
}

// DescribeSecret implements rotation.SecretsManager.
func (f *FakeSM) DescribeSecret(_ context.Context, in *secretsmanager.DescribeSecretInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, err := f.find(aws.ToString(in.SecretId))
	if err != nil {
		return nil, err
	}
	stages := make(map[string][]string, len(s.versions))
	for id, v := range s.versions {
		stages[id] = slices.Clone(v.stages)
	}
	return &secretsmanager.DescribeSecretOutput{
		ARN: aws.String(s.arn), Name: aws.String(s.name), Tags: slices.Clone(s.tags),
		RotationEnabled: aws.Bool(s.rotation), VersionIdsToStages: stages,
	}, nil
}

// GetSecretValue implements rotation.SecretsManager.
func (f *FakeSM) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, err := f.find(aws.ToString(in.SecretId))
	if err != nil {
		return nil, err
	}
	vid, stage := aws.ToString(in.VersionId), aws.ToString(in.VersionStage)
	if vid == "" && stage == "" {
		stage = ptcsecret.StageCurrent
	}
	if vid == "" {
		for id, v := range s.versions {
			if slices.Contains(v.stages, stage) {
				vid = id
			}
		}
	}
	v, ok := s.versions[vid]
	switch {
	case !ok, v.value == nil:
		return nil, notFound("Secrets Manager can't find the specified secret value for VersionId: %s", vid)
	case stage != "" && !slices.Contains(v.stages, stage):
		return nil, notFound("Secrets Manager can't find the specified secret value for staging label: %s", stage)
	}
	return &secretsmanager.GetSecretValueOutput{
		ARN: aws.String(s.arn), Name: aws.String(s.name), VersionId: aws.String(vid),
		SecretString: aws.String(*v.value), VersionStages: slices.Clone(v.stages),
	}, nil
}

// PutSecretValue implements rotation.SecretsManager: a repeated token with the same value is
// ignored, with another value refused (as AWS does, unlike moto).
func (f *FakeSM) PutSecretValue(_ context.Context, in *secretsmanager.PutSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, err := f.find(aws.ToString(in.SecretId))
	if err != nil {
		return nil, err
	}
	vid := aws.ToString(in.ClientRequestToken)
	if vid == "" {
		vid = NewID()
	}
	stages := in.VersionStages
	if len(stages) == 0 {
		stages = []string{ptcsecret.StageCurrent}
	}
	v, ok := s.versions[vid]
	if ok && v.value != nil {
		if *v.value != aws.ToString(in.SecretString) {
			return nil, &smtypes.ResourceExistsException{Message: aws.String("a version with this ClientRequestToken already exists with different data")}
		}
		return &secretsmanager.PutSecretValueOutput{ARN: aws.String(s.arn), Name: aws.String(s.name), VersionId: aws.String(vid), VersionStages: slices.Clone(v.stages)}, nil
	}
	if !ok {
		v = &fakeVersion{}
		s.versions[vid] = v
	}
	v.value = aws.String(aws.ToString(in.SecretString))
	for _, st := range stages {
		s.moveStage(st, vid)
	}
	s.prune()
	return &secretsmanager.PutSecretValueOutput{ARN: aws.String(s.arn), Name: aws.String(s.name), VersionId: aws.String(vid), VersionStages: slices.Clone(v.stages)}, nil
}

// UpdateSecretVersionStage implements rotation.SecretsManager.
func (f *FakeSM) UpdateSecretVersionStage(_ context.Context, in *secretsmanager.UpdateSecretVersionStageInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.UpdateSecretVersionStageOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, err := f.find(aws.ToString(in.SecretId))
	if err != nil {
		return nil, err
	}
	stage, to, from := aws.ToString(in.VersionStage), aws.ToString(in.MoveToVersionId), aws.ToString(in.RemoveFromVersionId)
	holder := ""
	for id, v := range s.versions {
		if slices.Contains(v.stages, stage) {
			holder = id
		}
	}
	if to != "" {
		if _, ok := s.versions[to]; !ok {
			return nil, notFound("version %s does not exist", to)
		}
		if holder != "" && holder != to && holder != from {
			return nil, &smtypes.InvalidParameterException{Message: aws.String(fmt.Sprintf("the staging label %s is attached to version %s; name it in RemoveFromVersionId", stage, holder))}
		}
		s.moveStage(stage, to)
	} else if from != "" {
		if holder != from {
			return nil, &smtypes.InvalidParameterException{Message: aws.String(fmt.Sprintf("the staging label %s is not attached to version %s", stage, from))}
		}
		s.removeStage(stage, from)
	}
	s.prune()
	return &secretsmanager.UpdateSecretVersionStageOutput{ARN: aws.String(s.arn), Name: aws.String(s.name)}, nil
}

// moveStage attaches stage to version to, taking it from wherever it was; moving AWSCURRENT
// puts AWSPREVIOUS on the old current version. The caller holds mu.
func (s *fakeSecret) moveStage(stage, to string) {
	old := ""
	for id, v := range s.versions {
		if id != to && slices.Contains(v.stages, stage) {
			old = id
			s.removeStage(stage, id)
		}
	}
	v := s.versions[to]
	if !slices.Contains(v.stages, stage) {
		v.stages = append(v.stages, stage)
	}
	if stage == ptcsecret.StageCurrent && old != "" {
		s.moveStage(ptcsecret.StagePrevious, old)
	}
}

// removeStage drops stage from version id.
func (s *fakeSecret) removeStage(stage, id string) {
	if v, ok := s.versions[id]; ok {
		v.stages = slices.DeleteFunc(v.stages, func(x string) bool { return x == stage })
	}
}

// prune deprecates (deletes) versions left without labels: DescribeSecret does not list those,
// nothing a rotation does reads them, and the scale simulation must not grow without bound.
func (s *fakeSecret) prune() {
	for id, v := range s.versions {
		if len(v.stages) == 0 {
			delete(s.versions, id)
		}
	}
}

// BeginRotation is what Secrets Manager does before invoking createSecret: refuse while another
// rotation is pending, stage an empty AWSPENDING version with id token, and mark rotation on.
// With immediately false the pending version is a copy of AWSCURRENT (RotateImmediately=false).
func (f *FakeSM) BeginRotation(secretID, token string, immediately bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, err := f.find(secretID)
	if err != nil {
		return err
	}
	for id, v := range s.versions {
		if slices.Contains(v.stages, ptcsecret.StagePending) {
			if id == token {
				return nil // a retry of the same rotation
			}
			if !slices.Contains(v.stages, ptcsecret.StageCurrent) {
				return &smtypes.InvalidRequestException{Message: aws.String("a previous rotation isn't complete; that rotation will be reattempted")}
			}
			s.removeStage(ptcsecret.StagePending, id)
		}
	}
	v := &fakeVersion{}
	if !immediately {
		for _, cur := range s.versions {
			if slices.Contains(cur.stages, ptcsecret.StageCurrent) {
				v.value = aws.String(aws.ToString(cur.value))
			}
		}
	}
	s.versions[token] = v
	s.moveStage(ptcsecret.StagePending, token)
	s.prune()
	s.rotation = true
	return nil
}

// EnableRotation marks rotation on, as RotateSecret(RotateImmediately=false) does once its
// testSecret passed.
func (f *FakeSM) EnableRotation(secretID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, err := f.find(secretID)
	if err != nil {
		return err
	}
	s.rotation = true
	return nil
}

// Current returns the version id carrying AWSCURRENT.
func (f *FakeSM) Current(secretID string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, err := f.find(secretID)
	if err != nil {
		return "", err
	}
	for id, v := range s.versions {
		if slices.Contains(v.stages, ptcsecret.StageCurrent) {
			return id, nil
		}
	}
	return "", nil
}

// NewID returns a random UUID-shaped version id.
func NewID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	x := hex.EncodeToString(b)
	return strings.Join([]string{x[:8], x[8:12], x[12:16], x[16:20], x[20:]}, "-")
}
