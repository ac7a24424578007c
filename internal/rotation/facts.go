package rotation

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/ptc-credentials/ptc-credentials/internal/metrics"
)

// Tags the rotator records on the managed secret after a rotation: facts for operators (`ptc
// status`, `ptc doctor`), never configuration the functions act on, and never a secret. The
// rotator's IAM lets it write only these keys (template.yaml, RecordRotationFacts).
const (
	// TagLastRotation is "<RFC3339> ok" after a promotion, or "<RFC3339> failed <step>" after
	// a failed step.
	TagLastRotation = "ptc:last-rotation"
	// TagExpiresAt is the RFC3339 expiry of the AWSCURRENT token when the upstream reported one
	// in this environment (at mint or login), "unknown" when it did not.
	TagExpiresAt = "ptc:expires-at"
	// TagLastError is the last failed step's error, shortened to what a tag value allows;
	// "none" after a successful rotation.
	TagLastError = "ptc:last-error"
)

// FactsTagKeys are the keys the rotator may write (the template's aws:TagKeys condition).
var FactsTagKeys = []string{TagLastRotation, TagExpiresAt, TagLastError}

// FactsNotRecorded is the metric counting rotations whose facts could not be tagged.
const FactsNotRecorded = "FactsNotRecorded"

// Outcomes TagLastRotation records.
const (
	OutcomeOK     = "ok"
	OutcomeFailed = "failed"
)

// maxTagValue is Secrets Manager's limit on a tag value, in characters.
const maxTagValue = 256

// expiryCache remembers, per secret ARN + version id, the token expiry an upstream reported at
// createSecret or testSecret, so that finishSecret can record it. The steps of one rotation
// usually share a warm environment; when they do not, the expiry is recorded as "unknown".
type expiryCache struct {
	mu sync.Mutex
	m  map[string]time.Time
}

func (c *expiryCache) note(arn, version string, t time.Time) {
	if t.IsZero() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) > 256 {
		c.m = map[string]time.Time{}
	}
	c.m[arn+"\x00"+version] = t
}

func (c *expiryCache) get(arn, version string) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.m[arn+"\x00"+version]
	return t, ok
}

// recordFacts tags the secret with the outcome of a finished rotation or a failed step. It is
// best effort: a failure is logged and counted (FactsNotRecorded), never returned. Nothing is
// recorded for a step that did not get as far as knowing the secret is a managed one.
func (r *Rotator) recordFacts(ctx context.Context, st *stepState, stepErr error) {
	if st.arn == "" || st.upstream == "" {
		return
	}
	// It runs in Handle's deferred function, after its recover: a panic here must not escape
	// (nor change the step's outcome) either.
	defer func() {
		if p := recover(); p != nil {
			st.log.Error("internal error recording the rotation's facts", "panic", fmt.Sprint(p))
			r.Metrics.Emit(FactsNotRecorded, 1, metrics.Count, st.upstream, map[string]any{"secret": st.name})
		}
	}()
	var tags []smtypes.Tag
	now := r.now().UTC().Format(time.RFC3339)
	switch {
	case stepErr != nil:
		tags = []smtypes.Tag{
			tag(TagLastRotation, now+" "+OutcomeFailed+" "+string(st.ev.Step)),
			tag(TagLastError, TagValue(r.Secrets.Redact(stepErr.Error()))),
		}
	case st.ev.Step == FinishSecret && strings.HasPrefix(st.outcome, "promoted"):
		exp := "unknown"
		if t, ok := r.expiries.get(st.arn, st.ev.ClientRequestToken); ok {
			exp = t.UTC().Format(time.RFC3339)
		}
		tags = []smtypes.Tag{tag(TagLastRotation, now+" "+OutcomeOK), tag(TagExpiresAt, exp), tag(TagLastError, "none")}
	default:
		return
	}
	if _, err := r.SM.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String(st.arn), Tags: tags}); err != nil {
		st.log.Warn("could not record the rotation's facts on the secret; ptc status will show older ones", "error", err.Error())
		r.Metrics.Emit(FactsNotRecorded, 1, metrics.Count, st.upstream, map[string]any{"secret": st.name})
	}
}

func tag(k, v string) smtypes.Tag { return smtypes.Tag{Key: aws.String(k), Value: aws.String(v)} }

// TagValue turns text into a valid Secrets Manager tag value: letters, digits, spaces and
// _ . : / = + - @ only (anything else becomes a space, runs of spaces one), at most 256
// characters.
func TagValue(s string) string {
	var b strings.Builder
	space := false
	n := 0
	for _, c := range s {
		ok := unicode.IsLetter(c) || unicode.IsDigit(c) || strings.ContainsRune("_.:/=+-@", c)
		if !ok {
			if !space && b.Len() > 0 {
				b.WriteByte(' ')
				n++
				space = true
			}
		} else {
			b.WriteRune(c)
			n++
			space = false
		}
		if n >= maxTagValue {
			break
		}
	}
	return strings.TrimRight(b.String(), " ")
}
