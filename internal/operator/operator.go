// Package operator is what the `ptc` command does: status of every pull-through cache
// credential in a Region, a doctor that explains one failing rule, a rotation followed step by
// step, and the adoption of a hand-made secret. cmd/ptc only parses flags and builds the
// clients; every decision is here, one file per command, against the small interfaces below so
// that the tests drive it with the real SDK clients pointed at moto and the emulators.
//
// Nothing here ever prints a secret value: the value of a managed secret is read only by the
// doctor, which reports key names (and only when they look like names) and the registry's
// verdict, never the value.
package operator

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/ptc-credentials/ptc-credentials/internal/kit"
	"github.com/ptc-credentials/ptc-credentials/internal/pinned"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/rotation"
)

// ECR is the part of the ECR API the CLI calls.
type ECR interface {
	DescribePullThroughCacheRules(ctx context.Context, in *ecr.DescribePullThroughCacheRulesInput, optFns ...func(*ecr.Options)) (*ecr.DescribePullThroughCacheRulesOutput, error)
	ValidatePullThroughCacheRule(ctx context.Context, in *ecr.ValidatePullThroughCacheRuleInput, optFns ...func(*ecr.Options)) (*ecr.ValidatePullThroughCacheRuleOutput, error)
}

// SecretsManager is the part of the Secrets Manager API the CLI calls.
type SecretsManager interface {
	DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
	ListSecretVersionIds(ctx context.Context, in *secretsmanager.ListSecretVersionIdsInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.ListSecretVersionIdsOutput, error)
	RotateSecret(ctx context.Context, in *secretsmanager.RotateSecretInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.RotateSecretOutput, error)
	TagResource(ctx context.Context, in *secretsmanager.TagResourceInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.TagResourceOutput, error)
}

// Lambda is the one Lambda call the doctor makes: does the rotation function exist?
type Lambda interface {
	GetFunction(ctx context.Context, in *lambda.GetFunctionInput, optFns ...func(*lambda.Options)) (*lambda.GetFunctionOutput, error)
}

// Env is what every command runs with. ECR, SM and Region are required.
type Env struct {
	// ECR and SM talk to the home Region (Region).
	ECR ECR
	SM  SecretsManager
	// ECRFor and SMFor build the clients of another Region, where a managed secret has a
	// replica and a rule of its own (status, doctor); nil means no other Region can be reached,
	// and every call there fails saying so. Use ECRIn and SMIn, which answer the home Region
	// with ECR and SM. They may be called concurrently.
	ECRFor func(region string) ECR
	SMFor  func(region string) SecretsManager
	// Lambda, when set, lets the doctor check that the rotation function exists.
	Lambda Lambda
	// Region is the Region the clients talk to (credential ARNs must be in it).
	Region string
	// Out receives the result (table, JSON, check list); Err progress and warnings.
	Out, Err io.Writer
	// HTTPClient makes the doctor's registry login check; nil means a 30 s client.
	HTTPClient *http.Client
	// Standins are loopback emulators that may stand in for the upstreams' pinned hosts when
	// adopt builds an upstream (tests only; the CLI sets none).
	Standins pinned.Standins
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Sleep waits between polls; nil means a timer that stops when ctx ends.
	Sleep func(ctx context.Context, d time.Duration) error
	// Concurrency bounds the rules status checks at once; zero means 8.
	Concurrency int
}

// SMIn is the Secrets Manager client of region: SM for the home Region (or ""), else SMFor's.
func (e *Env) SMIn(region string) SecretsManager {
	if region == "" || region == e.Region {
		return e.SM
	}
	if e.SMFor != nil {
		if c := e.SMFor(region); c != nil {
			return c
		}
	}
	return unreachable{region}
}

// ECRIn is the ECR client of region: ECR for the home Region (or ""), else ECRFor's.
func (e *Env) ECRIn(region string) ECR {
	if region == "" || region == e.Region {
		return e.ECR
	}
	if e.ECRFor != nil {
		if c := e.ECRFor(region); c != nil {
			return c
		}
	}
	return unreachable{region}
}

// unreachable is the client of a Region the Env has no client for: every call fails, naming
// the Region, so a command reports it in the row or check it concerns instead of crashing.
type unreachable struct{ region string }

func (u unreachable) err() error {
	return fmt.Errorf("no client for Region %s (this ptc was built without other Regions' clients)", u.region)
}

func (u unreachable) DescribePullThroughCacheRules(context.Context, *ecr.DescribePullThroughCacheRulesInput, ...func(*ecr.Options)) (*ecr.DescribePullThroughCacheRulesOutput, error) {
	return nil, u.err()
}

func (u unreachable) ValidatePullThroughCacheRule(context.Context, *ecr.ValidatePullThroughCacheRuleInput, ...func(*ecr.Options)) (*ecr.ValidatePullThroughCacheRuleOutput, error) {
	return nil, u.err()
}

func (u unreachable) DescribeSecret(context.Context, *secretsmanager.DescribeSecretInput, ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error) {
	return nil, u.err()
}

func (u unreachable) GetSecretValue(context.Context, *secretsmanager.GetSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	return nil, u.err()
}

func (u unreachable) ListSecretVersionIds(context.Context, *secretsmanager.ListSecretVersionIdsInput, ...func(*secretsmanager.Options)) (*secretsmanager.ListSecretVersionIdsOutput, error) {
	return nil, u.err()
}

func (u unreachable) RotateSecret(context.Context, *secretsmanager.RotateSecretInput, ...func(*secretsmanager.Options)) (*secretsmanager.RotateSecretOutput, error) {
	return nil, u.err()
}

func (u unreachable) TagResource(context.Context, *secretsmanager.TagResourceInput, ...func(*secretsmanager.Options)) (*secretsmanager.TagResourceOutput, error) {
	return nil, u.err()
}

func (e *Env) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func (e *Env) sleep(ctx context.Context, d time.Duration) error {
	if e.Sleep != nil {
		return e.Sleep(ctx, d)
	}
	return kit.Sleep(ctx, d)
}

func (e *Env) out() io.Writer {
	if e.Out != nil {
		return e.Out
	}
	return io.Discard
}

func (e *Env) errw() io.Writer {
	if e.Err != nil {
		return e.Err
	}
	return io.Discard
}

func (e *Env) progress(format string, args ...any) {
	fmt.Fprintf(e.errw(), format+"\n", args...)
}

// rules lists every pull-through cache rule of the home Region's registry, following NextToken.
func (e *Env) rules(ctx context.Context, prefixes ...string) ([]ecrtypes.PullThroughCacheRule, error) {
	return e.rulesIn(ctx, e.Region, prefixes...)
}

// rulesIn is rules in region.
func (e *Env) rulesIn(ctx context.Context, region string, prefixes ...string) ([]ecrtypes.PullThroughCacheRule, error) {
	var out []ecrtypes.PullThroughCacheRule
	in := &ecr.DescribePullThroughCacheRulesInput{}
	if len(prefixes) > 0 {
		in.EcrRepositoryPrefixes = prefixes
	}
	c := e.ECRIn(region)
	for {
		page, err := c.DescribePullThroughCacheRules(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("listing pull-through cache rules: %w", err)
		}
		out = append(out, page.PullThroughCacheRules...)
		if aws.ToString(page.NextToken) == "" {
			return out, nil
		}
		in.NextToken = page.NextToken
	}
}

// tagMap turns Secrets Manager tags into a map.
func tagMap(d *secretsmanager.DescribeSecretOutput) map[string]string {
	m := map[string]string{}
	for _, t := range d.Tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

// versionWith returns the version id carrying stage, or "".
func versionWith(stages map[string][]string, stage string) string {
	ids := make([]string, 0, len(stages))
	for id := range stages {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if slices.Contains(stages[id], stage) {
			return id
		}
	}
	return ""
}

// stuckPending returns the AWSPENDING version when it is not also AWSCURRENT (a rotation in
// progress or stuck), else "".
func stuckPending(stages map[string][]string) string {
	p := versionWith(stages, ptcsecret.StagePending)
	if p == "" || slices.Contains(stages[p], ptcsecret.StageCurrent) {
		return ""
	}
	return p
}

// versionCreated returns when a version was created (ListSecretVersionIds), zero if unknown.
func (e *Env) versionCreated(ctx context.Context, secretID, version string) (time.Time, error) {
	in := &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String(secretID)}
	for {
		out, err := e.SM.ListSecretVersionIds(ctx, in)
		if err != nil {
			return time.Time{}, err
		}
		for _, v := range out.Versions {
			if aws.ToString(v.VersionId) == version {
				return aws.ToTime(v.CreatedDate), nil
			}
		}
		if aws.ToString(out.NextToken) == "" {
			return time.Time{}, nil
		}
		in.NextToken = out.NextToken
	}
}

// isDefaultKey reports whether a secret's KmsKeyId is the default aws/secretsmanager key
// (empty, the alias, or the alias's ARN), the only one ECR can decrypt with.
func isDefaultKey(kmsKeyID string) bool {
	return kmsKeyID == "" || kmsKeyID == "alias/aws/secretsmanager" || strings.HasSuffix(kmsKeyID, ":alias/aws/secretsmanager")
}

// arnParts splits a Secrets Manager ARN into Region, account and name ("" when not an ARN).
func arnParts(arn string) (region, account, name string) {
	parts := strings.SplitN(arn, ":", 7)
	if len(parts) != 7 || parts[0] != "arn" || parts[2] != "secretsmanager" || parts[5] != "secret" {
		return "", "", ""
	}
	return parts[3], parts[4], ptcsecret.NameFromARN(arn)
}

// since renders how long ago t was, in whole minutes, hours or days.
func since(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < 0:
		return "in the future"
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

// facts is what the rotator recorded on a secret (internal/rotation/facts.go and testSecret's
// mark), read for status, doctor and rotate.
type facts struct {
	// failedAt and failedStep are the last failed step, zero when none is recorded or a
	// rotation promoted a version after it.
	failedAt   time.Time
	failedStep string
	lastError  string
	// ok: the current version is the one the rotator last proved.
	ok bool
	// expires is the current token's expiry, when the rotator recorded it.
	expires *time.Time
}

func readFacts(d *secretsmanager.DescribeSecretOutput) facts {
	tags := tagMap(d)
	var f facts
	if when, step, ok := strings.Cut(tags[rotation.TagLastFailure], " "); ok {
		if t, err := time.Parse(time.RFC3339, when); err == nil && (d.LastRotatedDate == nil || t.After(*d.LastRotatedDate)) {
			f.failedAt, f.failedStep, f.lastError = t, step, tags[rotation.TagLastError]
		}
	}
	current := versionWith(d.VersionIdsToStages, ptcsecret.StageCurrent)
	tested := tags[ptcsecret.TagTestedVersion]
	// The mark speaks for AWSCURRENT when it names it, and also when it names a version that no
	// longer carries a label: the copy of AWSCURRENT that turning rotation on tests and drops
	// (the rotator's setSecret reads it the same way). Only the first is a finished rotation.
	speaksForCurrent := current != "" && (tested == current || (tested != "" && len(d.VersionIdsToStages[tested]) == 0))
	if current != "" && tested == current {
		f.ok = f.failedAt.IsZero()
	}
	if speaksForCurrent {
		if t, err := time.Parse(time.RFC3339, tags[ptcsecret.TagTestedExpiry]); err == nil {
			f.expires = &t
		}
	}
	return f
}
