package localsm_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/localsm"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
)

// This file runs ONE scripted sequence of Secrets Manager calls with the real SDK client against
// localsm and against moto_server, normalises every answer to a transcript line (error code or
// "ok" plus the fields that matter: values, staging labels by version name, tags, rotation
// settings) and requires the two transcripts to be equal — except at the steps listed in the
// deviation table below, where moto 5.2.1 is known to differ from AWS. There localsm must give
// the AWS answer and moto its documented one, and a moto-only fix-up puts moto back into the
// state AWS would be in, so the rest of the script still compares like with like.

const confSecret = "conformance/app"

// deviation is a documented difference between moto 5.2.1 and AWS Secrets Manager.
type deviation struct {
	ID string
	// AWS quotes the API reference sentence that says what AWS does.
	AWS string
	// Moto says what moto 5.2.1 does instead (read from moto/secretsmanager/models.py).
	Moto string
}

var deviations = []deviation{
	{"get-id-stage-mismatch",
		`GetSecretValue, VersionStage: "If you include both this parameter and VersionId, the two parameters must refer to the same secret version." AWS answers ResourceNotFoundException (the rotation template's createSecret relies on that error class for GetSecretValue(VersionId, VersionStage=AWSPENDING)).`,
		`InvalidRequestException "You provided a VersionStage that is not associated to the provided VersionId." (HTTP 404).`},
	{"put-pending-overwrite",
		`PutSecretValue, ClientRequestToken: "If a version with this value already exists and that version's SecretString and SecretBinary values are different from those in the request, then the request fails because you cannot modify an existing version."`,
		`accepts different data for an existing version that carries AWSPENDING and overwrites its value.`},
	{"deprecated-listed",
		`DescribeSecret, VersionIdsToStages: "A list of the versions of the secret that have staging labels attached. Versions that don't have staging labels are considered deprecated"; ListSecretVersionIds, IncludeDeprecated: "By default, versions without staging labels aren't included."`,
		`lists versions without labels (with []) in DescribeSecret and in ListSecretVersionIds whatever IncludeDeprecated says.`},
	{"bare-read-stale",
		`GetSecretValue, VersionStage: "If you don't specify either a VersionStage or VersionId, Secrets Manager returns the AWSCURRENT version."`,
		`returns the version that was current when a value was last put as AWSCURRENT (its default_version_id), which UpdateSecretVersionStage does not update.`},
	{"label-move-without-remove",
		`UpdateSecretVersionStage, RemoveFromVersionId: "If the staging label you are trying to attach to one version is already attached to a different version, then you must include this parameter ... If the label is attached and you either do not specify this parameter, or the version ID does not match, then the operation fails."`,
		`enforces this for AWSCURRENT only; any other label is appended to the target and stays on the old version too (two versions carry it).`},
	{"pending-on-current-blocks",
		`RotateSecret / rotation function contract: the function must end with "The AWSPENDING and AWSCURRENT staging labels are attached to the same version of the secret, or The AWSPENDING staging label is not attached to any version"; only "If the AWSPENDING staging label is present but not attached to the same version as AWSCURRENT then any later invocation of RotateSecret assumes that a previous rotation request is still in progress and returns an error."`,
		`the inverse: InvalidRequestException "Previous rotation request is still in progress." exactly when AWSPENDING sits on the AWSCURRENT version (a finished rotation).`},
	{"pending-elsewhere-ignored",
		`(same sentence) AWSPENDING on a version that is not AWSCURRENT makes RotateSecret fail: "A previous rotation isn't complete. That rotation will be reattempted."`,
		`moves AWSPENDING to a new version and goes on (here it then fails on the missing Lambda function: ResourceNotFoundException).`},
	{"rotation-function-missing",
		`RotateSecret, RotateImmediately: "if you don't immediately rotate the secret, Secrets Manager tests the rotation configuration by running the testSecret step of the Lambda rotation function. The test creates an AWSPENDING version of the secret and then removes it."`,
		`runs Lambda functions only in Docker and looks the function up in its own Lambda backend: ResourceNotFoundException "Resource not found for ARN ..." after the pending version was staged; nothing is invoked and AWSPENDING is not removed.`},
	{"rotation-copy-stale",
		`RotateSecret, RotateImmediately (as above): the tested AWSPENDING version is a copy of the secret as it is, i.e. of AWSCURRENT.`,
		`copies the value the secret was created with (FakeSecret.secret_string, never updated by PutSecretValue).`},
	{"schedule-ignored",
		`RotationRulesType, ScheduleExpression: "A cron() or rate() expression that defines the schedule for rotating your secret"; "You can rotate a secret as often as every four hours" (so rate(1 hours) is refused); RotateSecret turns rotation on.`,
		`ignores ScheduleExpression: no validation, RotationEnabled set only for AutomaticallyAfterDays > 0, DescribeSecret shows AutomaticallyAfterDays 0 and no ScheduleExpression.`},
	{"replication-immediate",
		`ReplicationStatusType, Status: "InProgress, which indicates that Secrets Manager is in the process of creating the replica"; replication is asynchronous (CreateSecret, ReplicateSecretToRegions: "begins replication"), so the answer that adds a Region shows it InProgress, and a later DescribeSecret InSync or Failed.`,
		`creates the replica inside the call and answers InSync ("Replication succeeded") or Failed at once.`},
	{"primary-region-on-primary",
		`DescribeSecret, PrimaryRegion: "The Region the secret is in. If a secret is replicated to other Regions, the replicas are listed in ReplicationStatus." A replicated primary names its own Region (localsm shows it while the secret has replicas).`,
		`omits PrimaryRegion on the primary; only a replica carries it.`},
	{"replica-shows-replication-status",
		`DescribeSecret, ReplicationStatus: "A list of the replicas of this secret and their status" — a replica has no replicas of its own, so it lists none (it names its primary in PrimaryRegion).`,
		`a replica's DescribeSecret is the primary's answer with the ARN and PrimaryRegion changed, so it repeats the primary's ReplicationStatus.`},
	{"replica-policy-read-refused",
		`Replication guide: "Secrets Manager replicates the encrypted secret data and metadata such as tags and resource policies across the specified Regions"; a replica refuses updates ("A replica secret can't be updated independently from its primary secret, except for its encryption key", standalone-secret guide), not reads, so GetResourcePolicy there answers the replicated policy.`,
		`refuses GetResourcePolicy on a replica as it refuses writes: InvalidParameterException "Operation not permitted on a replica secret."`},
	{"create-name-scheduled-for-deletion",
		`InvalidRequestException, possible causes: "The secret is scheduled for deletion." (CreateSecret with the name of a secret in its recovery window).`,
		`ResourceExistsException "The operation failed because the secret ... already exists."`},
}

// conf runs script steps against one Secrets Manager.
type conf struct {
	ctx context.Context
	sm  *secretsmanager.Client
	// arns are the ARNs of the product script's secrets, by script key: each server gives its
	// own random suffix.
	arns map[string]string
	// ids names version ids the script did not choose (RotateSecret without a
	// ClientRequestToken, as the provisioner calls it: the SDK picks one): x1, x2, ... in the
	// order this server revealed them.
	ids map[string]string
	// in are clients of the same endpoint signed for other Regions (the replication script;
	// see in), made on first use.
	endpoint string
	in       map[string]*secretsmanager.Client
}

func newConf(ctx context.Context, sm *secretsmanager.Client) *conf {
	return &conf{ctx: ctx, sm: sm, arns: map[string]string{}, ids: map[string]string{}}
}

type cstep struct {
	name string
	run  func(c *conf) string
	// dev names a deviation: then localsm must answer aws and moto must answer moto.
	dev       string
	aws, moto string
	// motoFix puts moto into the state AWS is in after this step.
	motoFix func(c *conf) error
}

var verRE = regexp.MustCompile(`^00000000-0000-4000-8000-0*(\d+)$`)

// vname is the step-local name of a version id: v<n> for the token tok(n).
func vname(id string) string {
	if m := verRE.FindStringSubmatch(id); m != nil {
		return "v" + m[1]
	}
	return "?" + id
}

// vname is the package vname, plus x<n> for the n-th id the script did not choose (see
// conf.ids) and "?" for such an id not seen before.
func (c *conf) vname(id string) string {
	if verRE.MatchString(id) {
		return vname(id)
	}
	if n, ok := c.ids[id]; ok {
		return n
	}
	return "?"
}

// learn names an id the script did not choose, in the order the server revealed it.
func (c *conf) learn(id string) {
	if id == "" || verRE.MatchString(id) || c.ids[id] != "" {
		return
	}
	c.ids[id] = fmt.Sprintf("x%d", len(c.ids)+1)
}

// vid is the version id of a step-local name (vname's inverse).
func (c *conf) vid(name string) string {
	if n, err := strconv.Atoi(strings.TrimPrefix(name, "v")); err == nil && strings.HasPrefix(name, "v") {
		return tok(n)
	}
	for id, n := range c.ids {
		if n == name {
			return id
		}
	}
	return "00000000-0000-4000-8000-ffffffffffff" // unknown: the server says so
}

// fmtStages renders version id -> labels by the package vname.
func fmtStages(m map[string][]string, withEmpty bool) string {
	return (&conf{ids: map[string]string{}}).fmtStages(m, withEmpty)
}

// fmtStages renders version id -> labels by step-local name. A version the script did not
// choose gets its x-name here when it is the only such new one (two at once could be named in
// either order, so they stay "?" and the transcripts differ visibly).
func (c *conf) fmtStages(m map[string][]string, withEmpty bool) string {
	var fresh []string
	for id, st := range m {
		if c.vname(id) == "?" && (len(st) > 0 || withEmpty) {
			fresh = append(fresh, id)
		}
	}
	if len(fresh) == 1 {
		c.learn(fresh[0])
	}
	var parts []string
	for id, st := range m {
		if len(st) == 0 && !withEmpty {
			continue
		}
		st = slices.Clone(st)
		slices.Sort(st)
		parts = append(parts, fmt.Sprintf("%s:%v", c.vname(id), st))
	}
	slices.Sort(parts)
	return "{" + strings.Join(parts, " ") + "}"
}

func fmtTags(tags []smtypes.Tag) string {
	var parts []string
	for _, t := range tags {
		parts = append(parts, aws.ToString(t.Key)+"="+aws.ToString(t.Value))
	}
	slices.Sort(parts)
	return "{" + strings.Join(parts, " ") + "}"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// outcome renders an error by its code, and marks one the SDK could not turn into the service
// model's typed error: the product tells errors apart with errors.As on those types (e.g.
// *types.ResourceNotFoundException), so an answer that only has the right code is not enough.
func outcome(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		if _, generic := ae.(*smithy.GenericAPIError); generic && modeledErrors[ae.ErrorCode()] {
			return "err=" + code(err) + " (untyped)"
		}
	}
	return "err=" + code(err)
}

// modeledErrors are the Secrets Manager service model's error shapes (the SDK's types package).
var modeledErrors = map[string]bool{
	"DecryptionFailure": true, "EncryptionFailure": true, "InternalServiceError": true, "InvalidNextTokenException": true,
	"InvalidParameterException": true, "InvalidRequestException": true, "LimitExceededException": true,
	"MalformedPolicyDocumentException": true, "PreconditionNotMetException": true, "PublicPolicyException": true,
	"ResourceExistsException": true, "ResourceNotFoundException": true,
}

var confARNRE = regexp.MustCompile(`^arn:aws:secretsmanager:us-east-1:123456789012:secret:` + regexp.QuoteMeta(confSecret) + `-[A-Za-z0-9]{6}$`)

func (c *conf) create(name string, n int, value string, tags map[string]string) string {
	in := &secretsmanager.CreateSecretInput{Name: aws.String(name), ClientRequestToken: aws.String(tok(n)), SecretString: aws.String(value), Description: aws.String("conformance")}
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range tags {
			if !yield(k) {
				return
			}
		}
	}) {
		in.Tags = append(in.Tags, smtypes.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	out, err := c.sm.CreateSecret(c.ctx, in)
	if err != nil {
		return outcome(err)
	}
	return fmt.Sprintf("ok name=%s version=%s arn-shape=%v", aws.ToString(out.Name), c.vname(aws.ToString(out.VersionId)), confARNRE.MatchString(aws.ToString(out.ARN)))
}

func (c *conf) get(id string, version int, stage string) string {
	in := &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)}
	if version > 0 {
		in.VersionId = aws.String(tok(version))
	}
	if stage != "" {
		in.VersionStage = aws.String(stage)
	}
	out, err := c.sm.GetSecretValue(c.ctx, in)
	if err != nil {
		return outcome(err)
	}
	st := slices.Clone(out.VersionStages)
	slices.Sort(st)
	return fmt.Sprintf("ok version=%s stages=%v value=%q", c.vname(aws.ToString(out.VersionId)), st, aws.ToString(out.SecretString))
}

func (c *conf) put(n int, value string, stages ...string) string {
	out, err := c.sm.PutSecretValue(c.ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(confSecret), ClientRequestToken: aws.String(tok(n)), SecretString: aws.String(value), VersionStages: stages})
	if err != nil {
		return outcome(err)
	}
	st := slices.Clone(out.VersionStages)
	slices.Sort(st)
	return fmt.Sprintf("ok version=%s stages=%v", c.vname(aws.ToString(out.VersionId)), st)
}

// describe shows labelled versions only (the deprecated ones are compared by describeRaw and
// ListSecretVersionIds, where their deviation is recorded once).
func (c *conf) describe(id string) string { return c.describeWith(id, false) }

func (c *conf) describeRaw() string {
	d, err := c.sm.DescribeSecret(c.ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(confSecret)})
	if err != nil {
		return outcome(err)
	}
	return "ok stages=" + c.fmtStages(d.VersionIdsToStages, true)
}

func (c *conf) describeWith(id string, withEmpty bool) string {
	d, err := c.sm.DescribeSecret(c.ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)})
	if err != nil {
		return outcome(err)
	}
	days, sched := "-", "-"
	if r := d.RotationRules; r != nil {
		if r.AutomaticallyAfterDays != nil {
			days = fmt.Sprint(*r.AutomaticallyAfterDays)
		}
		sched = orDash(aws.ToString(r.ScheduleExpression))
	}
	lambda := orDash(aws.ToString(d.RotationLambdaARN))
	if lambda == lambdaARN {
		lambda = "configured"
	}
	return fmt.Sprintf("ok desc=%s tags=%s stages=%s rotation=%v lambda=%s days=%s schedule=%s deleted=%v",
		orDash(aws.ToString(d.Description)), fmtTags(d.Tags), c.fmtStages(d.VersionIdsToStages, withEmpty),
		aws.ToBool(d.RotationEnabled), lambda, days, sched, d.DeletedDate != nil)
}

func (c *conf) stage(label string, move, remove int) string {
	in := &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String(confSecret), VersionStage: aws.String(label)}
	if move > 0 {
		in.MoveToVersionId = aws.String(tok(move))
	}
	if remove > 0 {
		in.RemoveFromVersionId = aws.String(tok(remove))
	}
	_, err := c.sm.UpdateSecretVersionStage(c.ctx, in)
	if err != nil {
		return outcome(err)
	}
	return "ok"
}

// fix runs a stage change as part of a moto fix-up.
func (c *conf) fix(label string, move, remove int) error {
	if got := c.stage(label, move, remove); got != "ok" {
		return fmt.Errorf("UpdateSecretVersionStage(%s, move v%d, remove v%d): %s", label, move, remove, got)
	}
	return nil
}

func (c *conf) rotate(n int, immediately bool, rules smtypes.RotationRulesType) string {
	out, err := c.sm.RotateSecret(c.ctx, &secretsmanager.RotateSecretInput{
		SecretId: aws.String(confSecret), ClientRequestToken: aws.String(tok(n)), RotationLambdaARN: aws.String(lambdaARN),
		RotationRules: &rules, RotateImmediately: aws.Bool(immediately),
	})
	if err != nil {
		return outcome(err)
	}
	return "ok version=" + c.vname(aws.ToString(out.VersionId))
}

func (c *conf) list(id string, deprecated bool) string {
	out, err := c.sm.ListSecretVersionIds(c.ctx, &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String(id), IncludeDeprecated: aws.Bool(deprecated)})
	if err != nil {
		return outcome(err)
	}
	m := map[string][]string{}
	for _, v := range out.Versions {
		m[aws.ToString(v.VersionId)] = v.VersionStages
	}
	return "ok versions=" + c.fmtStages(m, true)
}

func (c *conf) del(window int64, force bool) string {
	in := &secretsmanager.DeleteSecretInput{SecretId: aws.String(confSecret)}
	if window > 0 {
		in.RecoveryWindowInDays = aws.Int64(window)
	}
	if force {
		in.ForceDeleteWithoutRecovery = aws.Bool(true)
	}
	out, err := c.sm.DeleteSecret(c.ctx, in)
	if err != nil {
		return outcome(err)
	}
	return fmt.Sprintf("ok name=%s deletion-date=%v", aws.ToString(out.Name), out.DeletionDate != nil)
}

func okOr(err error) string {
	if err != nil {
		return outcome(err)
	}
	return "ok"
}

var days30 = smtypes.RotationRulesType{AutomaticallyAfterDays: aws.Int64(30)}

// script is the one sequence both targets run.
func script() []cstep {
	return []cstep{
		{name: "CreateSecret", run: func(c *conf) string {
			return c.create(confSecret, 1, "value-1", map[string]string{"team": "a", "env": "test"})
		}},
		{name: "CreateSecret retried with the same token and value", run: func(c *conf) string {
			return c.create(confSecret, 1, "value-1", nil)
		}},
		{name: "CreateSecret same name, new token", run: func(c *conf) string { return c.create(confSecret, 2, "value-x", nil) }},
		{name: "DescribeSecret unknown secret", run: func(c *conf) string { return c.describe("conformance/missing") }},
		{name: "GetSecretValue unknown secret", run: func(c *conf) string { return c.get("conformance/missing", 0, "") }},
		{name: "GetSecretValue (AWSCURRENT by default)", run: func(c *conf) string { return c.get(confSecret, 0, "") }},
		{name: "GetSecretValue unknown VersionId", run: func(c *conf) string { return c.get(confSecret, 99, "") }},
		{name: "GetSecretValue unknown VersionStage", run: func(c *conf) string { return c.get(confSecret, 0, "NOSUCHSTAGE") }},
		{name: "PutSecretValue v2 (default: AWSCURRENT)", run: func(c *conf) string { return c.put(2, "value-2") }},
		{name: "PutSecretValue v2 retried, same data", run: func(c *conf) string { return c.put(2, "value-2") }},
		{name: "PutSecretValue v2 again, different data", run: func(c *conf) string { return c.put(2, "value-2-changed") }},
		{name: "DescribeSecret: AWSCURRENT moved, AWSPREVIOUS followed", run: func(c *conf) string { return c.describe(confSecret) }},
		{name: "GetSecretValue AWSPREVIOUS", run: func(c *conf) string { return c.get(confSecret, 0, "AWSPREVIOUS") }},
		{name: "PutSecretValue v3 as AWSPENDING", run: func(c *conf) string { return c.put(3, "value-3", "AWSPENDING") }},
		{name: "GetSecretValue v3 + AWSPENDING", run: func(c *conf) string { return c.get(confSecret, 3, "AWSPENDING") }},
		{name: "GetSecretValue v3 + AWSCURRENT (not v3's label)", run: func(c *conf) string { return c.get(confSecret, 3, "AWSCURRENT") },
			dev: "get-id-stage-mismatch", aws: "err=ResourceNotFoundException", moto: "err=InvalidRequestException"},
		{name: "PutSecretValue v3 again, different data (v3 is AWSPENDING)", run: func(c *conf) string { return c.put(3, "value-3-changed", "AWSPENDING") },
			dev: "put-pending-overwrite", aws: "err=ResourceExistsException", moto: "ok version=v3 stages=[AWSPENDING]",
			motoFix: func(c *conf) error {
				if got := c.put(3, "value-3", "AWSPENDING"); got != "ok version=v3 stages=[AWSPENDING]" {
					return fmt.Errorf("restoring v3's value: %s", got)
				}
				return nil
			}},
		{name: "GetSecretValue v3 (value unchanged)", run: func(c *conf) string { return c.get(confSecret, 3, "") }},
		{name: "UpdateSecretVersionStage AWSCURRENT to v3 without RemoveFromVersionId", run: func(c *conf) string { return c.stage("AWSCURRENT", 3, 0) }},
		{name: "UpdateSecretVersionStage AWSCURRENT to v3, RemoveFromVersionId v1 (label is on v2)", run: func(c *conf) string { return c.stage("AWSCURRENT", 3, 1) }},
		{name: "UpdateSecretVersionStage AWSCURRENT v2 -> v3", run: func(c *conf) string { return c.stage("AWSCURRENT", 3, 2) }},
		{name: "DescribeSecret, every listed version", run: func(c *conf) string { return c.describeRaw() },
			dev: "deprecated-listed", aws: "ok stages={v2:[AWSPREVIOUS] v3:[AWSCURRENT AWSPENDING]}", moto: "ok stages={v1:[] v2:[AWSPREVIOUS] v3:[AWSCURRENT AWSPENDING]}"},
		{name: "GetSecretValue without VersionId or VersionStage", run: func(c *conf) string { return c.get(confSecret, 0, "") },
			dev: "bare-read-stale", aws: `ok version=v3 stages=[AWSCURRENT AWSPENDING] value="value-3"`, moto: `ok version=v2 stages=[AWSPREVIOUS] value="value-2"`},
		{name: "GetSecretValue AWSCURRENT", run: func(c *conf) string { return c.get(confSecret, 0, "AWSCURRENT") }},
		{name: "GetSecretValue v1 by id (no labels left)", run: func(c *conf) string { return c.get(confSecret, 1, "") }},
		{name: "UpdateSecretVersionStage AWSCURRENT back to v2 (roll back)", run: func(c *conf) string { return c.stage("AWSCURRENT", 2, 3) }},
		{name: "DescribeSecret after roll back", run: func(c *conf) string { return c.describe(confSecret) }},
		{name: "UpdateSecretVersionStage AWSCURRENT to v3 again", run: func(c *conf) string { return c.stage("AWSCURRENT", 3, 2) }},
		{name: "UpdateSecretVersionStage MYLABEL to v2 (on no version yet)", run: func(c *conf) string { return c.stage("MYLABEL", 2, 0) }},
		{name: "UpdateSecretVersionStage MYLABEL to v3 without RemoveFromVersionId", run: func(c *conf) string { return c.stage("MYLABEL", 3, 0) },
			dev: "label-move-without-remove", aws: "err=InvalidParameterException", moto: "ok",
			motoFix: func(c *conf) error { return c.fix("MYLABEL", 0, 3) }},
		{name: "UpdateSecretVersionStage MYLABEL v2 -> v3", run: func(c *conf) string { return c.stage("MYLABEL", 3, 2) }},
		{name: "PutSecretValue v4 with MYLABEL (takes the label)", run: func(c *conf) string { return c.put(4, "value-4", "MYLABEL") }},
		{name: "DescribeSecret after the label moves", run: func(c *conf) string { return c.describe(confSecret) }},
		{name: "UpdateSecretVersionStage remove MYLABEL from v4", run: func(c *conf) string { return c.stage("MYLABEL", 0, 4) }},
		{name: "UpdateSecretVersionStage remove AWSPENDING from v4 (not there)", run: func(c *conf) string { return c.stage("AWSPENDING", 0, 4) }},
		{name: "ListSecretVersionIds", run: func(c *conf) string { return c.list(confSecret, false) },
			dev: "deprecated-listed", aws: "ok versions={v2:[AWSPREVIOUS] v3:[AWSCURRENT AWSPENDING]}", moto: "ok versions={v1:[] v2:[AWSPREVIOUS] v3:[AWSCURRENT AWSPENDING] v4:[]}"},
		{name: "ListSecretVersionIds IncludeDeprecated", run: func(c *conf) string { return c.list(confSecret, true) }},
		{name: "RotateSecret RotateImmediately=false while AWSPENDING is on AWSCURRENT (finished rotation)", run: func(c *conf) string { return c.rotate(5, false, days30) },
			dev: "pending-on-current-blocks", aws: "ok version=v5", moto: "err=InvalidRequestException",
			motoFix: func(c *conf) error {
				// What AWS did: AWSPENDING moves to a copy v5, testSecret passes, the copy loses it.
				if err := c.fix("AWSPENDING", 0, 3); err != nil {
					return err
				}
				if got := c.rotate(5, false, days30); got != "err=ResourceNotFoundException" {
					return fmt.Errorf("RotateSecret to stage v5: %s", got)
				}
				return c.fix("AWSPENDING", 0, 5)
			}},
		{name: "DescribeSecret after enabling rotation", run: func(c *conf) string { return c.describe(confSecret) }},
		{name: "GetSecretValue v5 (the tested copy)", run: func(c *conf) string { return c.get(confSecret, 5, "") },
			dev: "rotation-copy-stale", aws: `ok version=v5 stages=[] value="value-3"`, moto: `ok version=v5 stages=[] value="value-1"`},
		{name: "PutSecretValue v6 as AWSPENDING (an unfinished rotation)", run: func(c *conf) string { return c.put(6, "value-6", "AWSPENDING") }},
		{name: "RotateSecret while AWSPENDING is on v6, not AWSCURRENT", run: func(c *conf) string { return c.rotate(7, true, days30) },
			dev: "pending-elsewhere-ignored", aws: "err=InvalidRequestException", moto: "err=ResourceNotFoundException",
			motoFix: func(c *conf) error {
				if err := c.fix("AWSPENDING", 0, 7); err != nil {
					return err
				}
				return c.fix("AWSPENDING", 6, 0)
			}},
		{name: "DescribeSecret with the unfinished rotation", run: func(c *conf) string { return c.describe(confSecret) }},
		{name: "UpdateSecretVersionStage remove AWSPENDING from v6", run: func(c *conf) string { return c.stage("AWSPENDING", 0, 6) }},
		{name: "RotateSecret AutomaticallyAfterDays=0", run: func(c *conf) string {
			return c.rotate(8, false, smtypes.RotationRulesType{AutomaticallyAfterDays: aws.Int64(0)})
		}},
		{name: "RotateSecret AutomaticallyAfterDays=1001", run: func(c *conf) string {
			return c.rotate(8, false, smtypes.RotationRulesType{AutomaticallyAfterDays: aws.Int64(1001)})
		}},
		{name: "CancelRotateSecret", run: func(c *conf) string {
			_, err := c.sm.CancelRotateSecret(c.ctx, &secretsmanager.CancelRotateSecretInput{SecretId: aws.String(confSecret)})
			return okOr(err)
		}},
		{name: "DescribeSecret after CancelRotateSecret", run: func(c *conf) string { return c.describe(confSecret) }},
		{name: "TagResource env=prod owner=ops", run: func(c *conf) string {
			_, err := c.sm.TagResource(c.ctx, &secretsmanager.TagResourceInput{SecretId: aws.String(confSecret), Tags: []smtypes.Tag{
				{Key: aws.String("env"), Value: aws.String("prod")}, {Key: aws.String("owner"), Value: aws.String("ops")}}})
			return okOr(err)
		}},
		{name: "UntagResource team, missing", run: func(c *conf) string {
			_, err := c.sm.UntagResource(c.ctx, &secretsmanager.UntagResourceInput{SecretId: aws.String(confSecret), TagKeys: []string{"team", "missing"}})
			return okOr(err)
		}},
		{name: "DescribeSecret tags", run: func(c *conf) string { return c.describe(confSecret) }},
		{name: "TagResource unknown secret", run: func(c *conf) string {
			_, err := c.sm.TagResource(c.ctx, &secretsmanager.TagResourceInput{SecretId: aws.String("conformance/missing"), Tags: []smtypes.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
			return okOr(err)
		}},
		{name: "DeleteSecret RecoveryWindowInDays=3", run: func(c *conf) string { return c.del(3, false) }},
		{name: "DeleteSecret RecoveryWindowInDays=7 and ForceDeleteWithoutRecovery", run: func(c *conf) string { return c.del(7, true) }},
		{name: "DeleteSecret RecoveryWindowInDays=7", run: func(c *conf) string { return c.del(7, false) }},
		{name: "GetSecretValue of a deleted secret", run: func(c *conf) string { return c.get(confSecret, 0, "") }},
		{name: "DescribeSecret of a deleted secret", run: func(c *conf) string { return c.describe(confSecret) }},
		{name: "DeleteSecret again", run: func(c *conf) string { return c.del(0, false) }},
		{name: "CreateSecret with the name of the deleted secret", run: func(c *conf) string { return c.create(confSecret, 20, "value-x", nil) },
			dev: "create-name-scheduled-for-deletion", aws: "err=InvalidRequestException", moto: "err=ResourceExistsException"},
		{name: "RestoreSecret", run: func(c *conf) string {
			_, err := c.sm.RestoreSecret(c.ctx, &secretsmanager.RestoreSecretInput{SecretId: aws.String(confSecret)})
			return okOr(err)
		}},
		{name: "GetSecretValue AWSCURRENT after RestoreSecret", run: func(c *conf) string { return c.get(confSecret, 0, "AWSCURRENT") }},
		{name: "RotateSecret ScheduleExpression rate(1 hours)", run: func(c *conf) string {
			return c.rotate(8, false, smtypes.RotationRulesType{ScheduleExpression: aws.String("rate(1 hours)")})
		},
			dev: "schedule-ignored", aws: "err=InvalidParameterException", moto: "err=ResourceNotFoundException",
			motoFix: func(c *conf) error { return c.fix("AWSPENDING", 0, 8) }},
		{name: "RotateSecret ScheduleExpression rate(10 days), RotateImmediately=false", run: func(c *conf) string {
			return c.rotate(9, false, smtypes.RotationRulesType{ScheduleExpression: aws.String("rate(10 days)")})
		},
			dev: "rotation-function-missing", aws: "ok version=v9", moto: "err=ResourceNotFoundException",
			motoFix: func(c *conf) error { return c.fix("AWSPENDING", 0, 9) }},
		{name: "DescribeSecret with a rate schedule", run: func(c *conf) string { return c.describe(confSecret) },
			dev:  "schedule-ignored",
			aws:  "ok desc=conformance tags={env=prod owner=ops} stages={v2:[AWSPREVIOUS] v3:[AWSCURRENT]} rotation=true lambda=configured days=10 schedule=rate(10 days) deleted=false",
			moto: "ok desc=conformance tags={env=prod owner=ops} stages={v2:[AWSPREVIOUS] v3:[AWSCURRENT]} rotation=false lambda=configured days=0 schedule=- deleted=false"},
		{name: "DeleteSecret ForceDeleteWithoutRecovery", run: func(c *conf) string { return c.del(0, true) }},
		{name: "DescribeSecret after force delete", run: func(c *conf) string { return c.describe(confSecret) }},
		{name: "CreateSecret the name again", run: func(c *conf) string { return c.create(confSecret, 21, "value-new", nil) }},
	}
}

func runScript(c *conf, steps []cstep, isMoto bool) []string {
	lines := make([]string, len(steps))
	for i, s := range steps {
		lines[i] = s.run(c)
		if isMoto && s.motoFix != nil && lines[i] == s.moto {
			if err := s.motoFix(c); err != nil {
				lines[i] += " [moto fix-up failed: " + err.Error() + "]"
			}
		}
	}
	return lines
}

// TestConformanceWithMoto runs both scripts — script (the API's rules) and productScript
// (every call the product makes, in the shapes it makes them; see product_conformance_test.go)
// — against localsm and one moto_server, through its one-request gate.
func TestConformanceWithMoto(t *testing.T) {
	moto := testenv.StartMotoT(t)
	ctx := testenv.Context(t)

	known := map[string]bool{}
	for _, d := range deviations {
		known[d.ID] = true
	}
	used := map[string]bool{}
	for _, steps := range [][]cstep{script(), productScript(), replicationScript()} {
		for _, s := range steps {
			if s.dev != "" {
				if !known[s.dev] {
					t.Fatalf("step %q names deviation %q, which the table does not document", s.name, s.dev)
				}
				used[s.dev] = true
			}
		}
	}
	for _, d := range deviations {
		if !used[d.ID] {
			t.Errorf("deviation %q is documented but no step exercises it", d.ID)
		}
	}

	t.Run("api", func(t *testing.T) {
		// localsm with a rotation function behind the RIE Invoke API (its testSecret reads the
		// copy through the SDK); the function needs the client, the client the server.
		var fn *rie
		srv := localsm.New(localsm.Options{Synchronous: true, Invoker: func(ctx context.Context, arn string, payload []byte) error {
			return fn.invoker()(ctx, arn, payload)
		}})
		hs := httptest.NewServer(srv)
		t.Cleanup(hs.Close)
		local := client(hs.URL)
		fn = newRIE(t, local)

		steps := script()
		got := runScript(newConf(ctx, local), steps, false)
		want := runScript(newConf(ctx, client(moto.Endpoint)), steps, true)
		compareTranscripts(t, steps, got, want)

		// The rotations localsm ran for the script: each only testSecret, each successful.
		for _, r := range srv.Rotations() {
			if r.Immediately || r.Err != "" || len(r.Steps) != 1 {
				t.Errorf("rotation %+v: want one successful testSecret", r)
			}
		}
		if n := len(srv.Rotations()); n != 2 {
			t.Errorf("localsm ran %d rotations, want 2 (v5 and v9)", n)
		}
	})

	t.Run("product", func(t *testing.T) {
		// localsm as the product's tests use it (testenv.LocalSM): RotateSecret stages the
		// pending version and invokes nothing, the state moto leaves when it cannot find the
		// function; the script plays Secrets Manager's and the rotator's part itself.
		local := testenv.StartLocalSMT(t)
		steps := productScript()
		got := runScript(newConf(ctx, client(local.Endpoint)), steps, false)
		want := runScript(newConf(ctx, client(moto.Endpoint)), steps, true)
		compareTranscripts(t, steps, got, want)
	})

	t.Run("replication", func(t *testing.T) {
		// A Cluster as testenv.StartLocalSMCluster serves it, without lag: what a step
		// replicates has landed when the next step runs, as it has in moto.
		local := testenv.StartLocalSMCluster(t, localsm.ClusterOptions{Regions: repRegions})
		steps := replicationScript()
		got := runScript(newRegionConf(ctx, local.URL()), steps, false)
		want := runScript(newRegionConf(ctx, moto.Endpoint), steps, true)
		compareTranscripts(t, steps, got, want)
	})
}

// compareTranscripts fails unless each step's answers agree: equal, or, at a documented
// deviation, localsm's the AWS answer and moto's its documented one.
func compareTranscripts(t *testing.T, steps []cstep, got, want []string) {
	t.Helper()
	var report strings.Builder
	failed := 0
	for i, s := range steps {
		l, m := got[i], want[i]
		mark, ok := "  ", l == m
		if s.dev != "" {
			ok = l == s.aws && m == s.moto
		}
		if !ok {
			mark, failed = "!!", failed+1
		}
		fmt.Fprintf(&report, "%s %02d %s\n     localsm: %s\n", mark, i+1, s.name, l)
		switch {
		case s.dev != "":
			fmt.Fprintf(&report, "     moto:    %s\n     deviation %s: want localsm %s, moto %s\n", m, s.dev, s.aws, s.moto)
		case l != m:
			fmt.Fprintf(&report, "     moto:    %s\n", m)
		}
	}
	var table strings.Builder
	for _, d := range deviations {
		fmt.Fprintf(&table, "- %s\n  AWS:  %s\n  moto: %s\n", d.ID, d.AWS, d.Moto)
	}
	if failed > 0 {
		t.Errorf("%d of %d steps differ from the expected transcript (!! marks them):\n%s\nmoto 5.2.1 deviations from AWS:\n%s", failed, len(steps), report.String(), table.String())
	} else {
		t.Logf("moto 5.2.1 deviations from AWS (localsm follows AWS):\n%s\ntranscript:\n%s", table.String(), report.String())
	}
}
