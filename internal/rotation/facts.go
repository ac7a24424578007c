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
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
)

// Tags the rotator records on the managed secret for operators (`ptc status`, `ptc doctor`),
// beside testSecret's mark (ptcsecret.TagTestedVersion, with the tested token's expiry): facts,
// never configuration the functions act on, never a secret. They are ptc:rotator:* tags, the
// only ones the rotator's role may write, and the provisioner's Update keeps them.
//
// A successful rotation costs no call of its own: its time is the secret's LastRotatedDate and
// its token's expiry is in the mark. Only a failed step writes (TagLastFailure, TagLastError),
// and the first promotion after a failure clears them.
const (
	// TagLastFailure is "<RFC3339> <step>" of the last failed step, "none" once a rotation
	// promoted a version after it.
	TagLastFailure = ptcsecret.RotatorTagPrefix + "last-failure"
	// TagLastError is that step's error, redacted and shortened to what a tag value allows;
	// "none" once cleared.
	TagLastError = ptcsecret.RotatorTagPrefix + "last-error"
)

// FactsNotRecorded is the metric counting failed steps whose facts could not be tagged.
const FactsNotRecorded = "FactsNotRecorded"

// maxTagValue is Secrets Manager's limit on a tag value, in characters.
const maxTagValue = 256

// expiryCache remembers, per secret ARN + version id, the token expiry an upstream reported at
// createSecret, so that testSecret's mark can carry it (ptcsecret.TagTestedExpiry) when the
// login check reports none. The steps of one rotation usually share a warm environment; when
// they do not, the mark says "unknown".
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

// recordFacts tags the secret with a failed step's facts, or clears them at the first
// promotion after a failure. It is best effort: a failure is logged and counted
// (FactsNotRecorded), never returned. Nothing is recorded for a step that did not get as far as
// knowing the secret is a managed one.
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
	switch {
	case stepErr != nil:
		tags = []smtypes.Tag{
			tag(TagLastFailure, r.now().UTC().Format(time.RFC3339)+" "+string(st.ev.Step)),
			tag(TagLastError, TagValue(r.Secrets.Redact(stepErr.Error()))),
		}
	case st.ev.Step == FinishSecret && strings.HasPrefix(st.outcome, "promoted") && st.tags[TagLastFailure] != "" && st.tags[TagLastFailure] != "none":
		tags = []smtypes.Tag{tag(TagLastFailure, "none"), tag(TagLastError, "none")}
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
