package rotation_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/rotation"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
)

// FuzzHandle feeds Rotator.Handle an arbitrary rotation event (JSON bytes) against an
// in-memory Secrets Manager whose DescribeSecret answer (tags, version stages, rotation flag),
// stored values, source secret and failures all come from the fuzzed data too, and a fake
// upstream whose behaviour the source secret's JSON drives. It asserts, for every input:
//   - no panic (Handle turns one into an "internal error (panic" error, which fails the run);
//   - every error is non-empty and names the secret, the version, the source secret or a field;
//   - AWSCURRENT moves only when finishSecret returns nil, and then to the event's version;
//   - each step makes only its own calls (mint and PutSecretValue in createSecret, the login
//     check in testSecret, the stage move in finishSecret), never puts AWSCURRENT, and revokes
//     only tokens that are neither AWSCURRENT nor AWSPREVIOUS afterwards;
//   - errors and logs never contain the current, pending or minted token.
//
// The fuzzed arguments: event JSON; a JSON object of tag overrides; a JSON object of version
// id -> stages overrides; the source secret's value; the pending version's value; flag bits.
func FuzzHandle(f *testing.F) {
	f.Fuzz(func(t *testing.T, event, tags, stages []byte, source, pendingValue string, flags uint32) {
		var ev rotation.Event
		if json.Unmarshal(event, &ev) != nil {
			return
		}
		sm := fuzzNewSM(ev, tags, stages, source, pendingValue, flags)
		ups := &fuzzUpstreams{}
		var logs bytes.Buffer
		r := &rotation.Rotator{
			SM:        sm,
			Providers: ups.providers(),
			Logger:    slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			Now:       func() time.Time { return time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC) },
		}
		before := sm.current()
		markedBefore := sm.tag(ptcsecret.TagTestedVersion)
		err := r.Handle(context.Background(), ev)
		after := sm.current()

		if err != nil {
			msg := err.Error()
			if strings.Contains(msg, "internal error (panic") {
				t.Fatalf("Handle panicked: %s", msg)
			}
			fuzzClearError(t, msg, ev, sm)
		}
		if after != before && (ev.Step != rotation.FinishSecret || err != nil) {
			t.Fatalf("AWSCURRENT moved from %q to %q in step %q (error: %v)", before, after, ev.Step, err)
		}
		if err == nil && ev.Step == rotation.FinishSecret && after != ev.ClientRequestToken {
			t.Fatalf("finishSecret succeeded but AWSCURRENT is on %q, not %q", after, ev.ClientRequestToken)
		}
		if after != before && markedBefore != ev.ClientRequestToken {
			t.Fatalf("finishSecret promoted version %q, which testSecret had not marked (mark: %q)", after, markedBefore)
		}
		for _, k := range sm.taggedKeys {
			// testSecret writes its mark; a failed step (or finishSecret, clearing one) its facts.
			facts := k == rotation.TagLastFailure || k == rotation.TagLastError
			if !facts && ev.Step != rotation.TestSecret {
				t.Fatalf("step %q wrote tag %q", ev.Step, k)
			}
			if facts && err == nil && ev.Step != rotation.FinishSecret {
				t.Fatalf("step %q succeeded but wrote the failure fact %q", ev.Step, k)
			}
		}
		for _, k := range sm.taggedKeys {
			if !strings.HasPrefix(k, ptcsecret.RotatorTagPrefix) {
				t.Fatalf("the rotator wrote tag %q, outside %s*", k, ptcsecret.RotatorTagPrefix)
			}
		}
		if ev.Step == rotation.TestSecret && err == nil && before != ev.ClientRequestToken && sm.tag(ptcsecret.TagTestedVersion) != ev.ClientRequestToken {
			t.Fatalf("testSecret passed without marking version %q", ev.ClientRequestToken)
		}
		if sm.putCurrent {
			t.Fatal("PutSecretValue was asked to attach AWSCURRENT")
		}
		if sm.puts > 0 && ev.Step != rotation.CreateSecret {
			t.Fatalf("step %q called PutSecretValue", ev.Step)
		}
		if sm.updates > 0 && ev.Step != rotation.FinishSecret {
			t.Fatalf("step %q called UpdateSecretVersionStage", ev.Step)
		}
		if ups.mints > 1 || (ups.mints > 0 && ev.Step != rotation.CreateSecret) {
			t.Fatalf("step %q minted %d tokens", ev.Step, ups.mints)
		}
		if ups.verifies > 0 && ev.Step != rotation.TestSecret {
			t.Fatalf("step %q ran the login check", ev.Step)
		}
		keep := []string{sm.current(), sm.withStage(ptcsecret.StagePrevious)}
		for _, v := range ups.revoked {
			switch {
			case v == fuzzForeign:
				t.Fatalf("step %q revoked a token of another secret", ev.Step)
			case ev.Step == rotation.CreateSecret && v != ev.ClientRequestToken:
				t.Fatalf("createSecret revoked the token of version %q, not only its own orphan", v)
			case ev.Step == rotation.FinishSecret && slices.Contains(keep, v) && v != "":
				t.Fatalf("finishSecret revoked the token of version %q, which is AWSCURRENT or AWSPREVIOUS", v)
			case ev.Step == rotation.SetSecret || ev.Step == rotation.TestSecret:
				t.Fatalf("step %q revoked a token", ev.Step)
			}
		}

		// Planted values must never reach an error or a log line, unless the fuzzer itself put
		// the same text into a field that is quoted legitimately (an id, a name).
		inputs := string(event) + string(tags) + string(stages) + source
		planted := append([]string{fuzzCurrentToken}, ups.minted...)
		if v, perr := ptcsecret.Parse(pendingValue); perr == nil && len(v.AccessToken) >= 6 &&
			!strings.Contains(v.Username, v.AccessToken) && !strings.Contains(fuzzUser, v.AccessToken) {
			planted = append(planted, v.AccessToken)
		}
		for _, p := range planted {
			if len(strings.TrimSpace(p)) < 6 || strings.Contains(inputs, p) || strings.Contains(fuzzDescribeText, p) {
				continue
			}
			if err != nil && strings.Contains(err.Error(), p) {
				t.Fatalf("error leaks a token: %v", err)
			}
			if strings.Contains(logs.String(), p) {
				t.Fatalf("logs leak a token: %s", logs.String())
			}
		}
	})
}

// fuzzClearError checks that a Handle error says what it is about.
func fuzzClearError(t *testing.T, msg string, ev rotation.Event, sm *fuzzSM) {
	t.Helper()
	if strings.TrimSpace(msg) == "" {
		t.Fatal("Handle returned an empty error")
	}
	for _, bad := range []string{"%!", "<nil>"} {
		if strings.Contains(msg, bad) {
			t.Fatalf("malformed error message (%s): %s", bad, msg)
		}
	}
	for _, ref := range []string{ev.SecretID, sm.name, sm.arn, sm.sourceID, ev.ClientRequestToken, `field "`} {
		if strings.TrimSpace(ref) != "" && strings.Contains(msg, ref) {
			return
		}
	}
	t.Fatalf("error names neither the secret, the version, the source secret nor a field: %s", msg)
}

// Fixed parts of the fake's answers.
const (
	fuzzCurrentID    = "11111111-1111-4111-8111-111111111111"
	fuzzPreviousID   = "22222222-2222-4222-8222-222222222222"
	fuzzSourceARN    = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ptc-source/fuzz-AbCdEf"
	fuzzUser         = "fuzz-user"
	fuzzCurrentToken = "PLANTED-current-token-5d1f"
	fuzzARNPrefix    = "arn:aws:secretsmanager:us-east-1:123456789012:secret:"
	fuzzForeign      = "\x00foreign" // what fuzzUpstream.revoked records for a token of another secret
)

// fuzzDescribeText is every fixed string the fake answers with, for the leak check's exclusions.
var fuzzDescribeText = fuzzCurrentID + fuzzPreviousID + fuzzSourceARN + fuzzUser + fuzzARNPrefix

var fuzzUpstreamNames = []string{ptcsecret.UpstreamDockerHub, ptcsecret.UpstreamACR, ptcsecret.UpstreamGHCR, ptcsecret.UpstreamGitLab}

// Flag bits of the fuzzed uint32.
const (
	fuzzFlagUpstream    = 0x3 // which upstream the default ptc:upstream tag names
	fuzzFlagTokenStages = 0xc // what the event's version carries: pending, nothing, current, previous
	fuzzFlagNoRotation  = 1 << 4
	fuzzFlagPendingVal  = 1 << 5 // the event's version already has a value
	fuzzFlagPrevious    = 1 << 6 // an AWSPREVIOUS version exists
	fuzzFlagACRSlot     = 1 << 7 // AWSCURRENT carries ptc-acr-password1
	fuzzFlagManagedName = 1 << 8 // put an unprefixed SecretId under ecr-pullthroughcache/
	fuzzFlagNotFound    = 1 << 9
	fuzzFailDescribe    = 1 << 10
	fuzzFailGet         = 1 << 11
	fuzzFailGetSource   = 1 << 12
	fuzzFailPut         = 1 << 13
	fuzzFailUpdate      = 1 << 14
	fuzzFlagSourceBin   = 1 << 15 // the source secret has a binary value only
	fuzzFailTag         = 1 << 16
)

type fuzzVersion struct {
	stages []string
	value  *string
}

// fuzzSM is an in-memory Secrets Manager holding one managed secret and its source secret. It
// keeps the service's stage rules: a staging label is on at most one version, moving
// AWSCURRENT needs RemoveFromVersionId naming its holder and moves AWSPREVIOUS to it, and a
// version's value never changes.
type fuzzSM struct {
	arn, name, sourceID string
	tags                []smtypes.Tag
	rotation            bool
	versions            map[string]*fuzzVersion
	source              string
	flags               uint32

	puts, updates, tagCalls int
	taggedKeys              []string
	putCurrent              bool
}

func fuzzNewSM(ev rotation.Event, tagsJSON, stagesJSON []byte, source, pendingValue string, flags uint32) *fuzzSM {
	sm := &fuzzSM{source: source, flags: flags, rotation: flags&fuzzFlagNoRotation == 0, versions: map[string]*fuzzVersion{}}
	// Secrets Manager accepts a name or an ARN and always answers with both.
	if _, err := ptcsecret.KeyFromARN(ev.SecretID); err == nil {
		sm.arn, sm.name = ev.SecretID, ptcsecret.NameFromARN(ev.SecretID)
	} else {
		sm.name = ev.SecretID
		if flags&fuzzFlagManagedName != 0 && !strings.HasPrefix(sm.name, ptcsecret.Prefix) {
			sm.name = ptcsecret.Prefix + sm.name
		}
		sm.arn = fuzzARNPrefix + sm.name + "-AbCdEf"
	}
	if sm.name == "" {
		sm.name = "unnamed"
	}

	tags := map[string]string{
		ptcsecret.TagUpstream:     fuzzUpstreamNames[flags&fuzzFlagUpstream],
		ptcsecret.TagSourceSecret: fuzzSourceARN,
	}
	var over map[string]string
	if json.Unmarshal(tagsJSON, &over) == nil {
		for k, v := range over {
			tags[k] = v
		}
	}
	for k, v := range tags {
		sm.tags = append(sm.tags, smtypes.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	sm.sourceID = tags[ptcsecret.TagSourceSecret]

	cur := fmt.Sprintf(`{"username":%q,"accessToken":%q}`, fuzzUser, fuzzCurrentToken)
	curStages := []string{ptcsecret.StageCurrent}
	if flags&fuzzFlagACRSlot != 0 {
		curStages = append(curStages, "ptc-acr-password1")
	}
	sm.versions[fuzzCurrentID] = &fuzzVersion{stages: curStages, value: &cur}
	if flags&fuzzFlagPrevious != 0 {
		prev := fmt.Sprintf(`{"username":%q,"accessToken":"PLANTED-previous-token"}`, fuzzUser)
		sm.versions[fuzzPreviousID] = &fuzzVersion{stages: []string{ptcsecret.StagePrevious}, value: &prev}
	}
	if tok := ev.ClientRequestToken; tok != "" {
		v := &fuzzVersion{}
		if flags&fuzzFlagPendingVal != 0 {
			v.value = &pendingValue
		}
		switch (flags & fuzzFlagTokenStages) >> 2 {
		case 0:
			v.stages = []string{ptcsecret.StagePending}
		case 1:
			v = nil // not a version of the secret
		case 2:
			sm.versions[fuzzCurrentID].stages = nil
			v.stages = []string{ptcsecret.StageCurrent}
			v.value = &cur
		case 3:
			v.stages = []string{ptcsecret.StagePrevious}
		}
		if v != nil {
			sm.versions[tok] = v
		}
	}
	var overStages map[string][]string
	if json.Unmarshal(stagesJSON, &overStages) == nil {
		// In id order, and moving each label as Secrets Manager does: a staging label is on at
		// most one version.
		for _, id := range slices.Sorted(maps.Keys(overStages)) {
			v, ok := sm.versions[id]
			if !ok {
				val := cur
				v = &fuzzVersion{value: &val}
				sm.versions[id] = v
			}
			v.stages = nil
			for _, st := range slices.Compact(slices.Sorted(slices.Values(overStages[id]))) {
				sm.detach(st)
				v.stages = append(v.stages, st)
			}
		}
	}
	return sm
}

func (s *fuzzSM) withStage(stage string) string {
	for id, v := range s.versions {
		if slices.Contains(v.stages, stage) {
			return id
		}
	}
	return ""
}

func (s *fuzzSM) current() string { return s.withStage(ptcsecret.StageCurrent) }

func (s *fuzzSM) isManaged(id *string) bool {
	return aws.ToString(id) == s.arn || aws.ToString(id) == s.name
}

func fuzzNotFound(what string) error {
	return &smtypes.ResourceNotFoundException{Message: aws.String("Secrets Manager can't find " + what)}
}

func (s *fuzzSM) DescribeSecret(_ context.Context, in *secretsmanager.DescribeSecretInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error) {
	switch {
	case s.flags&fuzzFailDescribe != 0:
		return nil, errors.New("fuzz: DescribeSecret: ThrottlingException")
	case s.flags&fuzzFlagNotFound != 0 || !s.isManaged(in.SecretId):
		return nil, fuzzNotFound("the specified secret")
	}
	out := &secretsmanager.DescribeSecretOutput{
		ARN: aws.String(s.arn), Name: aws.String(s.name), Tags: s.tags,
		RotationEnabled: aws.Bool(s.rotation), VersionIdsToStages: map[string][]string{},
	}
	for id, v := range s.versions {
		if len(v.stages) > 0 {
			out.VersionIdsToStages[id] = slices.Clone(v.stages)
		}
	}
	return out, nil
}

func (s *fuzzSM) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	if aws.ToString(in.SecretId) == s.sourceID && !s.isManaged(in.SecretId) {
		switch {
		case s.flags&fuzzFailGetSource != 0:
			return nil, errors.New("fuzz: GetSecretValue: AccessDeniedException")
		case s.flags&fuzzFlagSourceBin != 0:
			return &secretsmanager.GetSecretValueOutput{ARN: aws.String(s.sourceID), SecretBinary: []byte(s.source)}, nil
		}
		return &secretsmanager.GetSecretValueOutput{ARN: aws.String(s.sourceID), SecretString: aws.String(s.source)}, nil
	}
	if !s.isManaged(in.SecretId) {
		return nil, fuzzNotFound("the specified secret")
	}
	if s.flags&fuzzFailGet != 0 {
		return nil, errors.New("fuzz: GetSecretValue: InternalServiceError")
	}
	id, stage := aws.ToString(in.VersionId), aws.ToString(in.VersionStage)
	if id == "" {
		if stage == "" {
			stage = ptcsecret.StageCurrent
		}
		id = s.withStage(stage)
	}
	v, ok := s.versions[id]
	if !ok || v.value == nil || (stage != "" && !slices.Contains(v.stages, stage)) {
		return nil, fuzzNotFound("the specified version")
	}
	return &secretsmanager.GetSecretValueOutput{ARN: aws.String(s.arn), VersionId: aws.String(id), SecretString: aws.String(*v.value), VersionStages: slices.Clone(v.stages)}, nil
}

func (s *fuzzSM) PutSecretValue(_ context.Context, in *secretsmanager.PutSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error) {
	s.puts++
	if slices.Contains(in.VersionStages, ptcsecret.StageCurrent) {
		s.putCurrent = true
	}
	switch {
	case s.flags&fuzzFailPut != 0:
		return nil, errors.New("fuzz: PutSecretValue: LimitExceededException")
	case !s.isManaged(in.SecretId):
		return nil, fuzzNotFound("the specified secret")
	case aws.ToString(in.ClientRequestToken) == "":
		return nil, &smtypes.InvalidParameterException{Message: aws.String("ClientRequestToken is required")}
	}
	id, val := aws.ToString(in.ClientRequestToken), aws.ToString(in.SecretString)
	v, ok := s.versions[id]
	if !ok {
		v = &fuzzVersion{}
		s.versions[id] = v
	}
	if v.value != nil && *v.value != val {
		return nil, &smtypes.ResourceExistsException{Message: aws.String("a version with this ClientRequestToken already exists")}
	}
	v.value = &val
	for _, st := range in.VersionStages {
		s.detach(st)
		v.stages = append(v.stages, st)
	}
	return &secretsmanager.PutSecretValueOutput{ARN: aws.String(s.arn), VersionId: aws.String(id), VersionStages: slices.Clone(v.stages)}, nil
}

func (s *fuzzSM) detach(stage string) {
	for _, v := range s.versions {
		v.stages = slices.DeleteFunc(v.stages, func(x string) bool { return x == stage })
	}
}

func (s *fuzzSM) UpdateSecretVersionStage(_ context.Context, in *secretsmanager.UpdateSecretVersionStageInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.UpdateSecretVersionStageOutput, error) {
	s.updates++
	if s.flags&fuzzFailUpdate != 0 {
		return nil, errors.New("fuzz: UpdateSecretVersionStage: InternalServiceError")
	}
	if !s.isManaged(in.SecretId) {
		return nil, fuzzNotFound("the specified secret")
	}
	stage, to, from := aws.ToString(in.VersionStage), aws.ToString(in.MoveToVersionId), aws.ToString(in.RemoveFromVersionId)
	target, ok := s.versions[to]
	if !ok || target.value == nil {
		return nil, fuzzNotFound("the version to move to")
	}
	holder := s.withStage(stage)
	if holder != "" && holder != to && holder != from {
		return nil, &smtypes.InvalidParameterException{Message: aws.String("the staging label is attached to another version; name it in RemoveFromVersionId")}
	}
	if holder == to {
		return &secretsmanager.UpdateSecretVersionStageOutput{ARN: aws.String(s.arn)}, nil
	}
	s.detach(stage)
	target.stages = append(target.stages, stage)
	if stage == ptcsecret.StageCurrent && holder != "" {
		s.detach(ptcsecret.StagePrevious)
		s.versions[holder].stages = append(s.versions[holder].stages, ptcsecret.StagePrevious)
	}
	return &secretsmanager.UpdateSecretVersionStageOutput{ARN: aws.String(s.arn)}, nil
}

func (s *fuzzSM) TagResource(_ context.Context, in *secretsmanager.TagResourceInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.TagResourceOutput, error) {
	s.tagCalls++
	if s.flags&fuzzFailTag != 0 {
		return nil, errors.New("fuzz: TagResource: InternalServiceError")
	}
	if !s.isManaged(in.SecretId) {
		return nil, fuzzNotFound("the specified secret")
	}
	for _, t := range in.Tags {
		s.taggedKeys = append(s.taggedKeys, aws.ToString(t.Key))
		s.tags = slices.DeleteFunc(s.tags, func(o smtypes.Tag) bool { return aws.ToString(o.Key) == aws.ToString(t.Key) })
		s.tags = append(s.tags, t)
	}
	return &secretsmanager.TagResourceOutput{}, nil
}

func (s *fuzzSM) tag(key string) string {
	for _, t := range s.tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value)
		}
	}
	return ""
}

// fuzzSource is the fake upstream's source secret: switches for each failure it can show.
type fuzzSource struct {
	Username    string   `json:"username"`
	MintError   bool     `json:"mintError"`
	EmptyToken  bool     `json:"emptyToken"`
	TokensError bool     `json:"tokensError"`
	RevokeError bool     `json:"revokeError"`
	VerifyError bool     `json:"verifyError"`
	Orphans     []string `json:"orphans"` // versions whose labelled tokens exist upstream
	Stages      []string `json:"stages"`  // extra staging labels Mint asks for
}

// fuzzUpstreams builds fake upstreams under the real registry names and records what every one
// of them was asked to do.
type fuzzUpstreams struct {
	mints, verifies int
	minted          []string // token values, planted
	revoked         []string // version ids of revoked tokens
}

func (u *fuzzUpstreams) providers() map[string]upstream.Provider {
	m := map[string]upstream.Provider{}
	for _, name := range fuzzUpstreamNames {
		m[name] = upstream.Provider{
			Registry: name,
			New: func(source []byte, _ upstream.Options) (upstream.Upstream, error) {
				var s fuzzSource
				if err := upstream.DecodeSource(source, name, &s); err != nil {
					return nil, err
				}
				return &fuzzUpstream{all: u, reg: name, src: s}, nil
			},
			FixedUsername: name == ptcsecret.UpstreamDockerHub || name == ptcsecret.UpstreamACR,
		}
	}
	return m
}

type fuzzUpstream struct {
	all    *fuzzUpstreams
	reg    string
	src    fuzzSource
	prefix string // the label prefix the rotator listed with
	made   []upstream.Token
}

func (f *fuzzUpstream) Registry() string { return f.reg }

func (f *fuzzUpstream) Mint(_ context.Context, req upstream.MintRequest) (upstream.Minted, error) {
	f.all.mints++
	if f.src.MintError {
		return upstream.Minted{}, errors.New("fuzz upstream: mint refused")
	}
	tok := fmt.Sprintf("PLANTED-minted-%d-%s", f.all.mints, strings.Repeat("x", 8))
	if f.src.EmptyToken {
		tok = " "
	}
	f.all.minted = append(f.all.minted, tok)
	t := upstream.Token{ID: "id-" + req.Label, Label: req.Label}
	f.made = append(f.made, t)
	user := f.src.Username
	if user == "" {
		user = fuzzUser
	}
	return upstream.Minted{Credential: upstream.Credential{Username: user, AccessToken: tok}, Token: t, Stages: f.src.Stages}, nil
}

func (f *fuzzUpstream) Tokens(_ context.Context, labelPrefix string) ([]upstream.Token, error) {
	f.prefix = labelPrefix
	if f.src.TokensError {
		return nil, errors.New("fuzz upstream: list refused")
	}
	out := slices.Clone(f.made)
	for _, v := range f.src.Orphans {
		out = append(out, upstream.Token{ID: "orphan-" + v, Label: labelPrefix + v})
	}
	// A token of another secret must never be touched.
	out = append(out, upstream.Token{ID: "foreign", Label: "ptc-000000000000-" + fuzzCurrentID})
	return out, nil
}

func (f *fuzzUpstream) Revoke(_ context.Context, t upstream.Token) error {
	if t.ID == "foreign" {
		f.all.revoked = append(f.all.revoked, fuzzForeign)
	} else {
		f.all.revoked = append(f.all.revoked, strings.TrimPrefix(t.Label, f.prefix))
	}
	if f.src.RevokeError {
		return errors.New("fuzz upstream: revoke refused")
	}
	return nil
}

func (f *fuzzUpstream) Verify(context.Context, upstream.Credential) (upstream.Verification, error) {
	f.all.verifies++
	if f.src.VerifyError {
		return upstream.Verification{}, errors.New("fuzz upstream: login refused")
	}
	return upstream.Verification{ExpiresAt: time.Date(2025, 6, 10, 0, 0, 0, 0, time.UTC)}, nil
}
