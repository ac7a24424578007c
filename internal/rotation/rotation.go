// Package rotation runs the four-step Secrets Manager rotation protocol for a managed
// ecr-pullthroughcache/ secret, whatever the upstream registry: createSecret mints a labelled
// token and stores it as AWSPENDING, setSecret checks the identity did not change, testSecret
// logs in to the registry with it, finishSecret promotes it and revokes tokens older than
// AWSPREVIOUS.
//
// Every step is idempotent and may run twice or die halfway: Secrets Manager retries whole
// rotations. Nothing here ever moves AWSCURRENT except finishSecret, after testSecret passed.
package rotation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/ptc-credentials/ptc-credentials/internal/kit"
	"github.com/ptc-credentials/ptc-credentials/internal/logging"
	"github.com/ptc-credentials/ptc-credentials/internal/metrics"
	"github.com/ptc-credentials/ptc-credentials/internal/pinned"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
	"github.com/ptc-credentials/ptc-credentials/internal/webidentity"
)

// Step is one of the four rotation steps Secrets Manager invokes.
type Step string

// The steps, in the order Secrets Manager runs them.
const (
	CreateSecret Step = "createSecret"
	SetSecret    Step = "setSecret"
	TestSecret   Step = "testSecret"
	FinishSecret Step = "finishSecret"
)

// Event is the rotation event Secrets Manager sends (the same fields as aws-lambda-go's
// events.SecretsManagerSecretRotationEvent, kept here so the domain needs no Lambda types).
type Event struct {
	Step               Step   `json:"Step"`
	SecretID           string `json:"SecretId"`
	ClientRequestToken string `json:"ClientRequestToken"`
	RotationToken      string `json:"RotationToken,omitempty"`
}

// SecretsManager is the part of the Secrets Manager API the rotator calls.
type SecretsManager interface {
	DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
	PutSecretValue(ctx context.Context, in *secretsmanager.PutSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error)
	UpdateSecretVersionStage(ctx context.Context, in *secretsmanager.UpdateSecretVersionStageInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.UpdateSecretVersionStageOutput, error)
	// TagResource writes the ptc:rotator:* tags: testSecret's mark on the version it proved,
	// and the facts of a failed step (facts.go).
	TagResource(ctx context.Context, in *secretsmanager.TagResourceInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.TagResourceOutput, error)
}

// Rotator handles rotation events. Its zero value is not usable: set SM and Providers.
type Rotator struct {
	// SM is the Secrets Manager client.
	SM SecretsManager
	// Providers maps ptc:upstream values to their constructors.
	Providers map[string]upstream.Provider
	// HTTPClient is handed to upstreams; nil means their default.
	HTTPClient *http.Client
	// Standins are the loopback emulators that may stand in for the upstreams' pinned hosts
	// (awsenv.LoopbackStandinsVar); the zero value, the deployed state, allows none.
	Standins pinned.Standins
	// FederatedBindings are the deployer's limits on which managed secrets may use which
	// federated identity (upstream.FederatedBindingsVar); nil limits nothing.
	FederatedBindings upstream.FederatedBindings
	// WebIdentity is handed to upstreams in federated mode (upstream.Options.WebIdentity).
	WebIdentity webidentity.Source
	// Logger receives one record per step and upstream progress; nil discards.
	Logger *slog.Logger
	// Metrics receives EMF metrics; nil discards.
	Metrics *metrics.Emitter
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// SourceTTL bounds how long a source secret and the upstream session built from it are
	// reused within one warm Lambda environment. Reuse never crosses rotations: the cache is keyed
	// by the rotation's version id, so a credential a person just staged in the source secret
	// (GHCR's next PAT, a changed password) is read afresh by the next rotation. Zero means
	// 2 minutes; negative disables reuse.
	SourceTTL time.Duration
	// Secrets, when set, is the set a logging.Redacting handler under Logger keeps out of every
	// record: the safety net under the rule that no code logs a secret. The rotator resets it per
	// invocation and adds what it handles — the source secret's password, secret and token
	// fields, minted tokens, the values it reads.
	Secrets *logging.Secrets

	mu        sync.Mutex
	values    map[string]ptcsecret.Value // by secret ARN + version id; versions never change
	upstreams map[string]cachedUpstream  // by upstream, source, registry and version id; pruned on insert
	expiries  expiryCache                // token expiries seen, for the facts finishSecret records
}

type cachedUpstream struct {
	up      upstream.Upstream
	expires time.Time
	secrets []string // the source secret's secret values, re-registered with Secrets on reuse
}

// StepError is what a failed step returns: Lambda reports its type name ("StepError") as the
// errorType Secrets Manager records, and its message never contains a secret value.
type StepError struct {
	Step     Step
	SecretID string
	Err      error
}

func (e *StepError) Error() string { return e.Err.Error() }

// Unwrap gives errors.Is/As the cause.
func (e *StepError) Unwrap() error { return e.Err }

// Handle runs one rotation step. The returned error is a *StepError and never contains a
// secret value.
//
// The step stops a little before ctx's deadline (a tenth of the time left, at most 5 s) so that
// a hanging upstream is reported as a logged, counted failure rather than a silent Lambda
// timeout.
func (r *Rotator) Handle(ctx context.Context, ev Event) error {
	if dl, ok := ctx.Deadline(); ok {
		margin := min(time.Until(dl)/10, 5*time.Second)
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-margin))
		defer cancel()
	}
	if err := r.handle(ctx, ev); err != nil {
		return &StepError{Step: ev.Step, SecretID: ev.SecretID, Err: err}
	}
	return nil
}

func (r *Rotator) handle(ctx context.Context, ev Event) (err error) {
	if r.Secrets != nil {
		r.Secrets.Reset() // one invocation's values; a warm environment must not pile them up
	}
	start := r.now()
	log := r.log().With("step", string(ev.Step), "secret_id", ev.SecretID, "version_id", ev.ClientRequestToken)
	st := &stepState{ev: ev, log: log}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("rotation %s of %s: internal error (panic: %v); AWSCURRENT was not changed", ev.Step, ev.SecretID, p)
		}
		attrs := []any{"upstream", st.upstream, "duration_ms", r.now().Sub(start).Milliseconds()}
		if st.name != "" {
			attrs = append(attrs, "secret", st.name)
		}
		switch {
		case err != nil:
			log.Error("rotation step failed", append(attrs, "outcome", "error", "error", err.Error())...)
			r.Metrics.Emit(metrics.RotationStepFailed, 1, metrics.Count, st.upstream, map[string]any{"step": string(ev.Step), "secret": st.name})
		default:
			log.Info("rotation step done", append(attrs, "outcome", st.outcome)...)
		}
		r.recordFacts(ctx, st, err)
	}()
	if err := validateEvent(ev); err != nil {
		return err
	}
	if err := r.prepare(ctx, st); err != nil {
		return err
	}
	if st.outcome == "already-current" {
		return nil
	}
	switch ev.Step {
	case CreateSecret:
		return r.createSecret(ctx, st)
	case SetSecret:
		return r.setSecret(ctx, st)
	case TestSecret:
		return r.testSecret(ctx, st)
	case FinishSecret:
		return r.finishSecret(ctx, st)
	}
	return nil
}

// stepState is what the guards learned about the secret, shared by the step.
type stepState struct {
	ev        Event
	log       *slog.Logger
	arn, name string
	key       string // ptcsecret.Key: what token labels hash
	upstream  string
	source    string // source secret ARN
	registry  string // ptc:registry-url, may be empty
	tags      map[string]string
	stages    map[string][]string
	current   string // version id carrying AWSCURRENT
	previous  string // version id carrying AWSPREVIOUS
	outcome   string
}

func validateEvent(ev Event) error {
	switch ev.Step {
	case CreateSecret, SetSecret, TestSecret, FinishSecret:
	case "":
		return errors.New(`rotation event: field "Step" is missing`)
	default:
		return fmt.Errorf(`rotation event: field "Step" is %q; expected createSecret, setSecret, testSecret or finishSecret`, kit.Truncate(string(ev.Step), 40))
	}
	if strings.TrimSpace(ev.SecretID) == "" {
		return errors.New(`rotation event: field "SecretId" is missing`)
	}
	if n := len(ev.ClientRequestToken); n < 32 || n > ptcsecret.MaxVersionIDLen {
		return fmt.Errorf(`rotation event: field "ClientRequestToken" must be 32 to 64 characters (a secret version id), got %d`, n)
	}
	return nil
}

// prepare runs the guards every step shares (after the AWS rotation template): the secret is a
// managed one, rotation is on, the token is a version of it, and it is pending, not current.
func (r *Rotator) prepare(ctx context.Context, st *stepState) error {
	out, err := r.SM.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(st.ev.SecretID)})
	if err != nil {
		return fmt.Errorf("describing secret %s: %w", st.ev.SecretID, err)
	}
	st.arn, st.name = aws.ToString(out.ARN), aws.ToString(out.Name)
	if !strings.HasPrefix(st.name, ptcsecret.Prefix) {
		return fmt.Errorf("secret %s is not a managed pull-through cache secret: its name must start with %q", st.name, ptcsecret.Prefix)
	}
	if st.key, err = ptcsecret.KeyFromARN(st.arn); err != nil {
		return fmt.Errorf("secret %s: %w", st.name, err)
	}
	tags := map[string]string{}
	for _, t := range out.Tags {
		tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	st.tags = tags
	st.upstream = tags[ptcsecret.TagUpstream]
	if st.upstream == "" {
		return fmt.Errorf("secret %s has no tag %s: set it to one of %s", st.name, ptcsecret.TagUpstream, r.providerNames())
	}
	if _, ok := r.Providers[st.upstream]; !ok {
		bad := st.upstream
		st.upstream = ""
		return fmt.Errorf("secret %s: tag %s is %q; supported: %s", st.name, ptcsecret.TagUpstream, kit.Truncate(bad, 60), r.providerNames())
	}
	r.reportReplication(st, out)
	st.source = tags[ptcsecret.TagSourceSecret]
	if st.source == "" {
		return fmt.Errorf("secret %s has no tag %s: set it to the ARN of the source secret holding the minting credential", st.name, ptcsecret.TagSourceSecret)
	}
	if ptcsecret.IsManagedName(st.source) {
		return fmt.Errorf("secret %s: tag %s names a secret inside %q, which ECR's service role can read; keep the minting credential outside that prefix", st.name, ptcsecret.TagSourceSecret, ptcsecret.Prefix)
	}
	st.registry = tags[ptcsecret.TagRegistryURL]
	// Before the source secret is read: a tag naming another host than the upstream's registry
	// would have the fresh token sent there by the login check.
	if err := r.Providers[st.upstream].CheckRegistryURL("tag "+ptcsecret.TagRegistryURL, st.registry, r.Standins); err != nil {
		return fmt.Errorf("secret %s: %w", st.name, err)
	}
	if !aws.ToBool(out.RotationEnabled) {
		return fmt.Errorf("secret %s does not have rotation enabled", st.name)
	}
	st.stages = out.VersionIdsToStages
	for id, stages := range st.stages {
		if slices.Contains(stages, ptcsecret.StageCurrent) {
			st.current = id
		}
		if slices.Contains(stages, ptcsecret.StagePrevious) {
			st.previous = id
		}
	}
	stages, ok := st.stages[st.ev.ClientRequestToken]
	if !ok {
		return fmt.Errorf("secret %s has no version %s to rotate to", st.name, st.ev.ClientRequestToken)
	}
	if slices.Contains(stages, ptcsecret.StageCurrent) {
		st.outcome = "already-current"
		return nil
	}
	if !slices.Contains(stages, ptcsecret.StagePending) {
		return fmt.Errorf("secret %s version %s is not AWSPENDING (stages %v); another rotation may have replaced it", st.name, st.ev.ClientRequestToken, stages)
	}
	return nil
}

func (r *Rotator) createSecret(ctx context.Context, st *stepState) error {
	token := st.ev.ClientRequestToken
	_, err := r.SM.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
		SecretId: aws.String(st.arn), VersionId: aws.String(token), VersionStage: aws.String(ptcsecret.StagePending),
	})
	if err == nil {
		st.outcome = "pending-exists"
		return nil
	}
	var nf *smtypes.ResourceNotFoundException
	if !errors.As(err, &nf) {
		return fmt.Errorf("reading pending version of %s: %w", st.name, err)
	}
	up, err := r.upstreamFor(ctx, st)
	if err != nil {
		return err
	}
	label := ptcsecret.Label(st.key, token)
	// A crash between minting and PutSecretValue leaves a token carrying this label; it is
	// revoked before minting again so retries never leak tokens. Only this version's token is an
	// orphan: the others belong to AWSCURRENT and AWSPREVIOUS, which finishSecret looks after.
	minted, err := upstream.MintLabelled(ctx, up, upstream.MintRequest{
		SecretName: st.name, VersionID: token, Label: label, CurrentStages: st.stages[st.current],
	}, ptcsecret.LabelPrefix(st.key), func(t upstream.Token) bool { return t.Label != label }, func(t upstream.Token) {
		st.log.Info("revoked token left by an earlier attempt", "token_label", t.Label, "token_id", t.ID)
	})
	if err != nil {
		return fmt.Errorf("minting a %s token for %s: %w", st.upstream, st.name, err)
	}
	r.addSecrets(minted.Credential.AccessToken)
	doc, err := minted.Credential.Marshal()
	if err != nil {
		r.undoMint(ctx, st, up, minted.Token)
		return fmt.Errorf("%s returned an unusable credential: %w", st.upstream, err)
	}
	in := &secretsmanager.PutSecretValueInput{
		SecretId:           aws.String(st.arn),
		ClientRequestToken: aws.String(token),
		SecretString:       aws.String(doc),
		VersionStages:      append([]string{ptcsecret.StagePending}, minted.Stages...),
	}
	if st.ev.RotationToken != "" {
		in.RotationToken = aws.String(st.ev.RotationToken)
	}
	if _, err := r.SM.PutSecretValue(ctx, in); err != nil {
		// K4: no undo — the value may have been stored though the answer was lost; the retry's
		// createSecret revokes this label's token if the version holds no value.
		return fmt.Errorf("storing the new token as AWSPENDING of %s: %w", st.name, err)
	}
	r.remember(st.arn, token, minted.Credential)
	r.expiries.note(st.arn, token, minted.Token.ExpiresAt)
	st.log.Info("minted token", "token_label", minted.Token.Label, "token_id", minted.Token.ID, "username", minted.Credential.Username, "expires_at", timeOrEmpty(minted.Token.ExpiresAt), "extra_stages", minted.Stages)
	st.outcome = "minted"
	return nil
}

// undoMint revokes a token that could not be stored. A failure is only logged: the token
// carries this version's label, so the retry's createSecret revokes it before minting again.
func (r *Rotator) undoMint(ctx context.Context, st *stepState, up upstream.Upstream, t upstream.Token) {
	if t.ID == "" {
		return
	}
	if err := up.Revoke(ctx, t); err != nil {
		st.log.Warn("could not revoke the token that was not stored; the next attempt will", "token_label", t.Label, "error", err.Error())
	}
}

func (r *Rotator) setSecret(ctx context.Context, st *stepState) error {
	pending, err := r.value(ctx, st, st.ev.ClientRequestToken, ptcsecret.StagePending)
	if err != nil {
		return err
	}
	if !r.Providers[st.upstream].FixedUsername || st.current == "" {
		st.outcome = "ok"
		return nil
	}
	// testSecret recorded the username of the version it proved. That is the current username
	// when the proved version is AWSCURRENT, and also when it is gone: the copy of the current
	// value that RotateSecret(RotateImmediately=false) tests and then drops. (Secrets Manager
	// runs setSecret before testSecret, so a tested version with another username is never
	// left behind by a rotation it drives.) Otherwise read the current value.
	currentUser := st.tags[ptcsecret.TagTestedUsername]
	tested := st.tags[ptcsecret.TagTestedVersion]
	testedLive := len(st.stages[tested]) > 0 // a version without labels is deprecated, as good as gone
	if (tested != st.current && testedLive) || currentUser == "" {
		current, err := r.value(ctx, st, st.current, ptcsecret.StageCurrent)
		if err != nil {
			return err
		}
		currentUser = current.Username
	}
	if pending.Username != currentUser {
		return fmt.Errorf("secret %s: the pending token logs in as %q but AWSCURRENT as %q; %s tokens keep one username, so check the source secret's account before rotating again", st.name, pending.Username, currentUser, st.upstream)
	}
	st.outcome = "identity-unchanged"
	return nil
}

func (r *Rotator) testSecret(ctx context.Context, st *stepState) error {
	pending, err := r.value(ctx, st, st.ev.ClientRequestToken, ptcsecret.StagePending)
	if err != nil {
		return err
	}
	up, err := r.upstreamFor(ctx, st)
	if err != nil {
		return err
	}
	v, err := up.Verify(ctx, pending)
	if err != nil {
		r.Metrics.Emit(metrics.VerificationFailed, 1, metrics.Count, st.upstream, map[string]any{"secret": st.name})
		return fmt.Errorf("the pending token of %s cannot log in to the %s registry: %w", st.name, st.upstream, err)
	}
	if err := r.markTested(ctx, st, pending, v); err != nil {
		return err
	}
	st.outcome = "login-ok"
	r.reportPullBudget(st, v)
	if !v.ExpiresAt.IsZero() {
		days := v.ExpiresAt.Sub(r.now()).Hours() / 24
		attrs := []any{"username", pending.Username, "expires_at", v.ExpiresAt.UTC().Format(time.RFC3339), "days_to_expiry", int(days)}
		r.Metrics.Emit(metrics.TokenDaysToExpiry, days, metrics.None, st.upstream, map[string]any{"secret": st.name})
		if days < ExpiryWarningDays {
			st.log.Warn("the verified token expires soon: stage its successor", attrs...)
		} else {
			st.log.Info("pending token verified", attrs...)
		}
	}
	return nil
}

// markTested records on the secret that this version passed testSecret (TagTestedVersion, with
// its username and expiry), so that finishSecret — a separate invocation, perhaps in another
// environment — promotes only a version this rotator proved. A retry that finds the mark in place
// writes nothing.
func (r *Rotator) markTested(ctx context.Context, st *stepState, pending ptcsecret.Value, v upstream.Verification) error {
	want := map[string]string{ptcsecret.TagTestedVersion: st.ev.ClientRequestToken}
	if ptcsecret.TagValueOK(pending.Username) {
		want[ptcsecret.TagTestedUsername] = pending.Username
	}
	exp := v.ExpiresAt
	if exp.IsZero() { // the expiry the upstream gave at mint, when createSecret ran here (facts.go)
		exp, _ = r.expiries.get(st.arn, st.ev.ClientRequestToken)
	}
	switch {
	case !exp.IsZero():
		want[ptcsecret.TagTestedExpiry] = exp.UTC().Format(time.RFC3339)
	case st.tags[ptcsecret.TagTestedExpiry] != "": // not an earlier version's expiry
		want[ptcsecret.TagTestedExpiry] = "unknown"
	}
	switch {
	case v.PullsRemaining != nil:
		want[ptcsecret.TagTestedPulls] = strconv.Itoa(*v.PullsRemaining)
	case v.PullsUnlimited:
		want[ptcsecret.TagTestedPulls] = "unlimited"
	case st.tags[ptcsecret.TagTestedPulls] != "": // not an earlier credential's budget
		want[ptcsecret.TagTestedPulls] = "unknown"
	}
	var tags []smtypes.Tag
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if st.tags[k] != want[k] {
			tags = append(tags, smtypes.Tag{Key: aws.String(k), Value: aws.String(want[k])})
		}
	}
	if len(tags) == 0 {
		return nil
	}
	if _, err := r.SM.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String(st.arn), Tags: tags}); err != nil {
		return fmt.Errorf("the pending token of %s logs in, but recording that it passed (tag %s) failed, so finishSecret would refuse it: %w", st.name, ptcsecret.TagTestedVersion, err)
	}
	return nil
}

// ExpiryWarningDays is how close to its expiry a verified token makes testSecret warn (and the
// template's TokenDaysToExpiry alarm fire): time enough for a person to stage a successor where
// nothing can mint one (GHCR).
const ExpiryWarningDays = 14

func (r *Rotator) finishSecret(ctx context.Context, st *stepState) error {
	token := st.ev.ClientRequestToken
	if got := st.tags[ptcsecret.TagTestedVersion]; got != token {
		if got == "" {
			got = "absent"
		}
		return fmt.Errorf("secret %s version %s has not passed this rotator's testSecret (tag %s is %s), so it is not promoted; AWSCURRENT still works. Secrets Manager retries the whole rotation, which tests it", st.name, token, ptcsecret.TagTestedVersion, kit.Truncate(got, 70))
	}
	in := &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String(st.arn), VersionStage: aws.String(ptcsecret.StageCurrent), MoveToVersionId: aws.String(token),
	}
	if st.current != "" {
		in.RemoveFromVersionId = aws.String(st.current)
	}
	if _, err := r.SM.UpdateSecretVersionStage(ctx, in); err != nil {
		return fmt.Errorf("moving AWSCURRENT of %s to version %s: %w", st.name, token, err)
	}
	st.log.Info("promoted pending version", "previous_version_id", st.current)
	r.Metrics.Emit(metrics.RotationSucceeded, 1, metrics.Count, st.upstream, map[string]any{"secret": st.name})
	st.outcome = "promoted"
	// The new current is token and Secrets Manager moves AWSPREVIOUS to the old current: keep
	// both, revoke the rest. A failure here is counted, never fatal — the promotion stands and
	// the next rotation retries.
	revoked, failed := r.revokeOlder(ctx, st, token, st.current)
	if revoked > 0 {
		r.Metrics.Emit(metrics.TokensRevoked, float64(revoked), metrics.Count, st.upstream, map[string]any{"secret": st.name})
	}
	if failed > 0 {
		r.Metrics.Emit(metrics.RevocationFailed, float64(failed), metrics.Count, st.upstream, map[string]any{"secret": st.name})
		st.outcome = "promoted-revocation-failed"
	}
	return nil
}

// revokeOlder revokes every token labelled for this secret whose version is neither keep1 nor
// keep2, and returns how many it revoked and how many it could not.
func (r *Rotator) revokeOlder(ctx context.Context, st *stepState, keep1, keep2 string) (revoked, failed int) {
	up, err := r.upstreamFor(ctx, st)
	if err != nil {
		st.log.Warn("could not revoke old tokens; the next rotation will retry", "error", err.Error())
		return 0, 1
	}
	keep := func(t upstream.Token) bool {
		version, ok := ptcsecret.VersionFromLabel(st.key, t.Label)
		return !ok || version == keep1 || version == keep2
	}
	// Every failure is counted and the run goes on: the next rotation retries what is left.
	revoked, failed, err = upstream.RevokeLabelled(ctx, up, ptcsecret.LabelPrefix(st.key), keep, func(t upstream.Token, err error) error {
		if err != nil {
			st.log.Warn("could not revoke old token; the next rotation will retry", "token_label", t.Label, "token_id", t.ID, "error", err.Error())
			return nil
		}
		st.log.Info("revoked old token", "token_label", t.Label, "token_id", t.ID)
		return nil
	})
	if err != nil {
		st.log.Warn("could not list tokens to revoke; the next rotation will retry", "error", err.Error())
		return 0, 1
	}
	return revoked, failed
}

// value reads a version's value, reusing what this process already read or wrote: a version's
// value never changes once stored, so the cache cannot go stale.
func (r *Rotator) value(ctx context.Context, st *stepState, versionID, stage string) (ptcsecret.Value, error) {
	key := st.arn + "\x00" + versionID
	r.mu.Lock()
	v, ok := r.values[key]
	r.mu.Unlock()
	if ok {
		r.addSecrets(v.AccessToken)
		return v, nil
	}
	// Name both the version and the stage: moto (and eventually consistent reads) may return
	// an old value for a bare stage read.
	out, err := r.SM.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
		SecretId: aws.String(st.arn), VersionId: aws.String(versionID), VersionStage: aws.String(stage),
	})
	if err != nil {
		return ptcsecret.Value{}, fmt.Errorf("reading %s version %s of %s: %w", stage, versionID, st.name, err)
	}
	v, err = ptcsecret.Parse(aws.ToString(out.SecretString))
	if err != nil {
		return ptcsecret.Value{}, fmt.Errorf("%s version %s of %s: %w", stage, versionID, st.name, err)
	}
	r.remember(st.arn, versionID, v)
	r.addSecrets(v.AccessToken)
	return v, nil
}

// addSecrets registers values with Secrets, when there is one.
func (r *Rotator) addSecrets(values ...string) {
	if r.Secrets != nil {
		r.Secrets.Add(values...)
	}
}

// sourceSecretValues returns the string fields of a source secret's JSON whose names say they
// are secret (password, totpSecret, clientSecret, token, …). Names, ids and URLs stay readable
// in logs.
func sourceSecretValues(doc string) []string {
	var m map[string]any
	if json.Unmarshal([]byte(doc), &m) != nil {
		return nil
	}
	var out []string
	for k, v := range m {
		s, ok := v.(string)
		lk := strings.ToLower(k)
		if ok && (strings.Contains(lk, "password") || strings.Contains(lk, "secret") || strings.Contains(lk, "token")) {
			out = append(out, s)
		}
	}
	return out
}

func (r *Rotator) remember(arn, versionID string, v ptcsecret.Value) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.values == nil || len(r.values) > 256 {
		r.values = map[string]ptcsecret.Value{}
	}
	r.values[arn+"\x00"+versionID] = v
}

// upstreamFor builds (or reuses) the upstream from the source secret.
func (r *Rotator) upstreamFor(ctx context.Context, st *stepState) (upstream.Upstream, error) {
	key := st.upstream + "\x00" + st.source + "\x00" + st.registry + "\x00" + st.ev.ClientRequestToken
	ttl := r.SourceTTL
	if ttl == 0 {
		ttl = 2 * time.Minute
	}
	if ttl > 0 {
		r.mu.Lock()
		c, ok := r.upstreams[key]
		r.mu.Unlock()
		if ok && r.now().Before(c.expires) {
			r.addSecrets(c.secrets...)
			return c.up, nil
		}
	}
	var secrets []string
	up, err := upstream.FromSource(ctx, r.SM, upstream.SourceRequest{Name: "source secret", Registry: st.upstream, ARN: st.source, ForSecret: st.name, Providers: r.Providers, Options: upstream.Options{
		HTTPClient: r.HTTPClient, Now: r.Now, Logger: r.log().With("secret", st.name, "upstream", st.upstream), RegistryURL: st.registry,
		Standins:    r.Standins,
		WebIdentity: r.WebIdentity, FederatedBindings: r.FederatedBindings,
	}, Seen: func(doc string) {
		secrets = sourceSecretValues(doc)
		r.addSecrets(secrets...)
	}})
	if err != nil {
		return nil, err
	}
	if ttl > 0 {
		now := r.now()
		r.mu.Lock()
		if r.upstreams == nil {
			r.upstreams = map[string]cachedUpstream{}
		}
		// Keys carry the rotation's version id, so an entry is never used after it expires; a
		// warm environment serving rotation after rotation would otherwise keep every one of
		// them (and the sessions they hold) for its whole life.
		for k, c := range r.upstreams {
			if !now.Before(c.expires) {
				delete(r.upstreams, k)
			}
		}
		r.upstreams[key] = cachedUpstream{up: up, expires: now.Add(ttl), secrets: secrets}
		r.mu.Unlock()
	}
	return up, nil
}

func (r *Rotator) providerNames() string {
	names := make([]string, 0, len(r.Providers))
	for n := range r.Providers {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

func (r *Rotator) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Rotator) log() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func timeOrEmpty(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
