package operator

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/ptc-credentials/ptc-credentials/internal/kit"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/providers"
)

// AdoptedBy is the ptc:managed-by value of a secret ptc adopt made managed: no stack owns it,
// so no Custom::PullThroughCache Delete will ever touch it.
const AdoptedBy = "ptc-adopt"

// AdoptOptions say what to adopt.
type AdoptOptions struct {
	// Prefix is the rule's ECR repository prefix; its credential is the secret to adopt.
	Prefix string
	// SourceSecret is the ARN of the source secret holding the minting credential.
	SourceSecret string
	// Upstream must equal the rule's upstream when set.
	Upstream string
	// RotatorARN is the rotation function (the stack's RotatorArn output); required
	// with Apply unless the secret already names one.
	RotatorARN string
	// Schedule is the rotation schedule, e.g. "rate(30 days)".
	Schedule string
	// Apply acts; without it Adopt only prints the plan.
	Apply bool
	// Timeout bounds following the first rotation.
	Timeout time.Duration
}

var lambdaARNRE = regexp.MustCompile(`^arn:aws[a-z-]*:lambda:([a-z0-9-]+):([0-9]{12}):function:[A-Za-z0-9_-]+(:[A-Za-z0-9_$-]+)?$`)

// Adopt turns the hand-made secret of a rule into a managed one: the ptc: tags, rotation with
// the rotator, one rotation followed to its end, then ECR's validation. It refuses, saying what
// to fix, a customer managed key, a secret another owner manages, a source secret that does not
// allow this secret (or that its registry cannot use), and a rotation already stuck. Without
// opts.Apply it changes nothing and prints what it would do.
func Adopt(ctx context.Context, env *Env, opts AdoptOptions) (bool, error) {
	out := env.out()
	rules, err := env.rules(ctx, opts.Prefix)
	if err != nil || len(rules) == 0 {
		return false, fmt.Errorf("no pull-through cache rule with prefix %q in %s (ptc status lists them)", opts.Prefix, env.Region)
	}
	rule := rules[0]
	arn := aws.ToString(rule.CredentialArn)
	if arn == "" {
		return false, fmt.Errorf("rule %s has no credential to adopt", opts.Prefix)
	}
	d, err := env.SM.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)})
	if err != nil {
		return false, fmt.Errorf("describing the rule's secret %s: %w", ptcsecret.NameFromARN(arn), err)
	}
	name, tags := aws.ToString(d.Name), tagMap(d)
	up := string(rule.UpstreamRegistry)
	registryURL := aws.ToString(rule.UpstreamRegistryUrl)
	rotator := opts.RotatorARN
	if rotator == "" {
		rotator = aws.ToString(d.RotationLambdaARN)
	}

	var refusals []string
	refuse := func(format string, args ...any) { refusals = append(refusals, fmt.Sprintf(format, args...)) }
	if !isDefaultKey(aws.ToString(d.KmsKeyId)) {
		refuse("secret %s uses customer managed key %s, which ECR cannot decrypt: move it to aws/secretsmanager first (ptc doctor %s says how)", name, aws.ToString(d.KmsKeyId), opts.Prefix)
	}
	if owner := tags[ptcsecret.TagManagedBy]; owner != "" && owner != AdoptedBy {
		refuse("secret %s is managed by %s: change it there (its template's Custom::PullThroughCache), not with adopt", name, kit.Truncate(owner, 200))
	}
	if opts.Upstream != "" && opts.Upstream != up {
		refuse("--upstream %s does not match the rule's upstream %s", kit.Truncate(opts.Upstream, 60), up)
	}
	provs := providers.All()
	if _, ok := provs[up]; !ok {
		refuse("upstream %s cannot be managed by ptc-credentials (supported: %s)", up, strings.Join(slices.Sorted(maps.Keys(provs)), ", "))
	}
	if p := stuckPending(d.VersionIdsToStages); p != "" {
		refuse("version %s of %s is AWSPENDING: finish or cancel that rotation first (ptc doctor %s)", p, name, opts.Prefix)
	}
	switch {
	case opts.SourceSecret == "":
		refuse("--source-secret is required: the ARN of the secret holding the minting credential (README, \"Registries\")")
	case ptcsecret.IsManagedName(opts.SourceSecret):
		refuse("the source secret %s is under %s, which ECR's service role can read: keep the minting credential elsewhere (ptc-source/…)", opts.SourceSecret, ptcsecret.Prefix)
	case !strings.HasPrefix(opts.SourceSecret, "arn:"):
		refuse("--source-secret must be the source secret's ARN (the ptc:source-secret tag holds it), got %q", kit.Truncate(opts.SourceSecret, 100))
	default:
		if _, ok := provs[up]; ok {
			// The same check the rotator makes before every mint: readable, bound, usable.
			_, err := upstream.FromSource(ctx, env.SM, upstream.SourceRequest{Name: "source secret", Registry: up, ARN: opts.SourceSecret,
				ForSecret: name, Providers: provs, Options: upstream.Options{HTTPClient: env.HTTPClient, RegistryURL: registryURL, Standins: env.Standins}})
			if err != nil {
				refuse("%s", kit.Truncate(err.Error(), 500))
			}
		}
	}
	if opts.Apply && rotator == "" {
		refuse("--rotator-arn is required: the rotation function's ARN (the stack's RotatorArn output: aws cloudformation describe-stacks --stack-name <stack> --query \"Stacks[0].Outputs[?OutputKey=='RotatorArn'].OutputValue\" --output text)")
	}
	if rotator != "" {
		m := lambdaARNRE.FindStringSubmatch(rotator)
		switch {
		case m == nil:
			refuse("--rotator-arn %q is not a Lambda function ARN", kit.Truncate(rotator, 200))
		case m[1] != env.Region:
			refuse("the rotator %s is in %s; rotation needs one in %s", rotator, m[1], env.Region)
		}
	}
	if len(refusals) > 0 {
		fmt.Fprintf(out, "ptc adopt %s: refused, nothing changed:\n", opts.Prefix)
		for _, r := range refusals {
			fmt.Fprintf(out, "  ✘ %s\n", r)
		}
		return false, nil
	}

	newTags := []smtypes.Tag{
		{Key: aws.String(ptcsecret.TagUpstream), Value: aws.String(up)},
		{Key: aws.String(ptcsecret.TagSourceSecret), Value: aws.String(opts.SourceSecret)},
		{Key: aws.String(ptcsecret.TagManagedBy), Value: aws.String(AdoptedBy)},
	}
	if registryURL != "" {
		newTags = append(newTags, smtypes.Tag{Key: aws.String(ptcsecret.TagRegistryURL), Value: aws.String(registryURL)})
	}
	verb := "would"
	if opts.Apply {
		verb = "will"
	}
	fmt.Fprintf(out, "ptc adopt %s: secret %s (%s, %s)\n", opts.Prefix, name, up, registryURL)
	fmt.Fprintf(out, "  ✔ default key, no other owner, source secret %s allows %s and is usable for %s\n", opts.SourceSecret, name, up)
	fmt.Fprintf(out, "  1. %s tag it:", verb)
	for _, t := range newTags {
		fmt.Fprintf(out, " %s=%s", aws.ToString(t.Key), aws.ToString(t.Value))
	}
	fmt.Fprintf(out, "\n  2. %s turn rotation on with %s, %s, and rotate now: a new token is minted and tested before it becomes AWSCURRENT; the hand-made one stays AWSPREVIOUS\n", verb, orNone(rotator), opts.Schedule)
	fmt.Fprintf(out, "  3. %s ask ECR to validate the rule\n", verb)
	fmt.Fprintf(out, "  afterwards: revoke the hand-made token at the registry yourself (ptc-credentials revokes only tokens it minted)\n")
	if !opts.Apply {
		fmt.Fprintf(out, "dry run: nothing changed; run again with --apply to adopt\n")
		return true, nil
	}

	if _, err := env.SM.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: d.ARN, Tags: newTags}); err != nil {
		return false, fmt.Errorf("tagging %s: %w", name, err)
	}
	env.line("tagged %s", name)
	rot, err := env.SM.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: d.ARN, RotationLambdaARN: aws.String(rotator),
		RotationRules: &smtypes.RotationRulesType{ScheduleExpression: aws.String(opts.Schedule)}, RotateImmediately: aws.Bool(true)})
	if err != nil {
		return false, fmt.Errorf("RotateSecret %s with %s: %w (the tags are set; fix the cause and run adopt --apply again)", name, rotator, err)
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	ok, err := env.follow(ctx, aws.ToString(d.ARN), name, aws.ToString(rot.VersionId), versionWith(d.VersionIdsToStages, ptcsecret.StageCurrent), timeout)
	if err != nil || !ok {
		return false, err
	}
	v, err := env.ECR.ValidatePullThroughCacheRule(ctx, &ecr.ValidatePullThroughCacheRuleInput{EcrRepositoryPrefix: rule.EcrRepositoryPrefix})
	switch {
	case err != nil:
		return false, fmt.Errorf("ValidatePullThroughCacheRule %s: %w", opts.Prefix, err)
	case !v.IsValid:
		env.line("✘ ECR's validation failed: %s (ptc doctor %s)", kit.Truncate(aws.ToString(v.Failure), 300), opts.Prefix)
		return false, nil
	}
	env.line("✔ ECR validated the rule: %s is managed now", name)
	return true, nil
}
