package localsm

import (
	"bytes"
	"regexp"
	"slices"
	"strings"
	"time"
)

// secret is one stored secret. Every field is guarded by Server.mu.
type secret struct {
	arn, name, description, kmsKeyID string
	tags                             []tag
	policy                           string // resource policy; "" is none
	versions                         map[string]*version
	order                            []string // version ids in creation order
	created, changed, accessed       time.Time
	// deleted is when DeleteSecret was called (zero: not scheduled); purgeAt is when the
	// secret is gone for good.
	deleted, purgeAt time.Time

	rotationConfigured bool // RotateSecret was called at least once
	rotationEnabled    bool
	lambdaARN          string
	rules              *rules
	lastRotated        time.Time
	nextRotation       time.Time

	// Replication (cluster.go). primaryRegion is set on a replica only: the Region of the
	// primary it copies. replicas is set on a primary only. seq is the replica's last applied
	// copy, so an older copy never overwrites a newer one.
	primaryRegion string
	replicas      []*replica
	seq           uint64
}

type tag struct{ key, value string }

type version struct {
	id       string
	str      *string
	bin      []byte
	stages   []string
	created  time.Time
	accessed time.Time
}

func (v *version) hasValue() bool { return v.str != nil || v.bin != nil }

// sameData reports whether v holds exactly this value (the idempotency rule of
// ClientRequestToken).
func (v *version) sameData(str *string, bin []byte) bool {
	if (v.str == nil) != (str == nil) || (v.bin == nil) != (bin == nil) {
		return false
	}
	if str != nil && *v.str != *str {
		return false
	}
	return bin == nil || bytes.Equal(v.bin, bin)
}

func (v *version) has(stage string) bool { return slices.Contains(v.stages, stage) }

func (v *version) remove(stage string) {
	v.stages = slices.DeleteFunc(v.stages, func(s string) bool { return s == stage })
}

func (v *version) add(stage string) {
	if !v.has(stage) {
		v.stages = append(v.stages, stage)
	}
}

func (s *secret) isDeleted() bool { return !s.deleted.IsZero() }

// holder returns the version carrying stage, or nil.
func (s *secret) holder(stage string) *version {
	for _, id := range s.order {
		if v := s.versions[id]; v.has(stage) {
			return v
		}
	}
	return nil
}

func (s *secret) addVersion(v *version) {
	s.versions[v.id] = v
	s.order = append(s.order, v.id)
}

// attach puts stage on v, taking it from whichever version had it. Moving AWSCURRENT moves
// AWSPREVIOUS to the version AWSCURRENT came from (PutSecretValue and UpdateSecretVersionStage
// API reference).
func (s *secret) attach(v *version, stage string) {
	old := s.holder(stage)
	if old == v {
		return
	}
	if old != nil {
		old.remove(stage)
	}
	v.add(stage)
	if stage == StageCurrent && old != nil {
		if prev := s.holder(StagePrevious); prev != nil {
			prev.remove(StagePrevious)
		}
		old.add(StagePrevious)
	}
}

// pendingIncomplete returns the version whose AWSPENDING label means a rotation has not
// finished: AWSPENDING on a version that is not also AWSCURRENT. AWSPENDING left on the
// current version is how a finished rotation may end (RotateSecret API reference).
func (s *secret) pendingIncomplete() *version {
	p := s.holder(StagePending)
	if p == nil || p.has(StageCurrent) {
		return nil
	}
	return p
}

// lookup resolves a SecretId (name, full ARN or partial ARN without the random suffix) and
// drops secrets whose recovery window has passed. It needs s.mu held.
func (s *Server) lookup(id string) *secret {
	now := s.opts.Now()
	for name, sec := range s.secrets {
		if sec.isDeleted() && !now.Before(sec.purgeAt) {
			delete(s.secrets, name)
		}
	}
	if sec, ok := s.secrets[id]; ok {
		return sec
	}
	if !strings.HasPrefix(id, "arn:") {
		return nil
	}
	for _, sec := range s.secrets {
		if sec.arn == id || s.partialARN(sec.name) == id {
			return sec
		}
	}
	return nil
}

func (s *Server) partialARN(name string) string {
	return "arn:aws:secretsmanager:" + s.opts.Region + ":" + s.opts.AccountID + ":secret:" + name
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9/_+=.@-]+$`)

func checkName(name string) *apiError {
	if len(name) < 1 || len(name) > 512 {
		return errParam("Invalid name. Must be a minimum of 1 and a maximum of 512 characters.")
	}
	if !nameRE.MatchString(name) {
		return errParam("Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@")
	}
	return nil
}

// checkVersionID enforces the model's 32–64 characters for ClientRequestToken and version ids.
func checkVersionID(field, id string) *apiError {
	if n := len(id); n < 32 || n > 64 {
		return errParam("%s must be 32-64 characters long, got %d.", field, n)
	}
	return nil
}

func checkSecretID(id *string) (string, *apiError) {
	if id == nil || *id == "" {
		return "", errParam("SecretId is required.")
	}
	if len(*id) > 2048 {
		return "", errParam("SecretId must be at most 2048 characters long.")
	}
	return *id, nil
}

func checkStage(field, stage string) *apiError {
	if n := len(stage); n < 1 || n > 256 {
		return errParam("%s must be 1-256 characters long, got %d.", field, n)
	}
	return nil
}

var rotationTokenRE = regexp.MustCompile(`^[a-zA-Z0-9-]{36,256}$`)

// value validates SecretString/SecretBinary: exactly one, within the model's sizes.
func checkValue(str *string, bin []byte) *apiError {
	switch {
	case str != nil && bin != nil:
		return errParam("You can't specify both SecretString and SecretBinary in the same request.")
	case str != nil && (len(*str) < 1 || len(*str) > 65536):
		return errParam("SecretString must be 1-65536 characters long.")
	case len(bin) > 65536:
		return errParam("SecretBinary must be at most 65536 bytes.")
	}
	return nil
}

func mergeTags(old []tag, in []tagJSON) ([]tag, *apiError) {
	out := slices.Clone(old)
	for _, t := range in {
		if t.Key == nil || len(*t.Key) < 1 || len(*t.Key) > 128 {
			return nil, errParam("Tag keys must be 1-128 characters long.")
		}
		val := ""
		if t.Value != nil {
			val = *t.Value
		}
		if len(val) > 256 {
			return nil, errParam("Tag values must be at most 256 characters long.")
		}
		if i := slices.IndexFunc(out, func(x tag) bool { return x.key == *t.Key }); i >= 0 {
			out[i].value = val
		} else {
			out = append(out, tag{key: *t.Key, value: val})
		}
	}
	return out, nil
}
