package operator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/ptc-credentials/ptc-credentials/internal/kit"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/registryauth"
	"github.com/ptc-credentials/ptc-credentials/internal/rotation"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/acr"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/dockerhub"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/providers"
)

// Check is one line of `ptc doctor`: passed, failed (with the fix) or skipped (a check before
// it failed, or there is nothing to check).
type Check struct {
	Name   string
	State  CheckState
	Detail string
	Fix    string
}

// CheckState is a check's outcome.
type CheckState int

// The outcomes, as doctor prints them.
const (
	Pass CheckState = iota // ✔
	Fail                   // ✘
	Skip                   // –
)

func (s CheckState) mark() string { return [...]string{"✔", "✘", "–"}[s] }

// doctor is one run: what the checks learned so far.
type doctor struct {
	env    *Env
	checks []Check
	rule   *ecrtypes.PullThroughCacheRule
	secret *secretsmanager.DescribeSecretOutput
	tags   map[string]string
	value  *ptcsecret.Value // the current value, when it has exactly the right shape
	// hidden are the secret's string values (but the username) and the key names not shown:
	// whatever a check prints (an ECR failure, a registry's error) passes through a redactor
	// of them, so a value the service echoes never reaches the output.
	hidden []string
}

func (d *doctor) add(c Check) { d.checks = append(d.checks, c) }

func (d *doctor) pass(name, format string, args ...any) {
	d.add(Check{Name: name, State: Pass, Detail: fmt.Sprintf(format, args...)})
}

func (d *doctor) fail(name, fix, format string, args ...any) {
	d.add(Check{Name: name, State: Fail, Detail: fmt.Sprintf(format, args...), Fix: fix})
}

func (d *doctor) skip(name, format string, args ...any) {
	d.add(Check{Name: name, State: Skip, Detail: fmt.Sprintf(format, args...)})
}

// Doctor runs every check of one rule, in order, prints each with ✔, ✘ or – and the fix for a
// ✘, and reports whether all passed. target is an ECR repository prefix or a secret (name or
// ARN) a rule uses; image, when set, is an upstream repository[:tag] to check the login and the
// pull path for.
func Doctor(ctx context.Context, env *Env, target, image string) (bool, error) {
	d := &doctor{env: env}
	d.run(ctx, target, image)
	ok := true
	red := kit.NewRedactor(d.hidden...)
	for _, c := range d.checks {
		c.Detail, c.Fix = red.Redact(c.Detail), red.Redact(c.Fix)
		fmt.Fprintf(env.out(), "%s %s: %s\n", c.State.mark(), c.Name, c.Detail)
		if c.State == Fail {
			ok = false
			if c.Fix != "" {
				fmt.Fprintf(env.out(), "    fix: %s\n", c.Fix)
			}
		}
	}
	if ok {
		fmt.Fprintln(env.out(), "no problem found")
	}
	return ok, nil
}

func (d *doctor) run(ctx context.Context, target, image string) {
	if !d.findRule(ctx, target) {
		return
	}
	if !d.checkCredentialARN() {
		return
	}
	if !d.checkSecret(ctx) {
		d.checkValidation(ctx)
		return
	}
	d.checkKey()
	d.checkValue(ctx)
	d.checkLogin(ctx, image)
	d.checkPullBudget()
	d.checkValidation(ctx)
	if primary := replicaOf(d.secret, d.env.Region); primary != "" {
		d.checkIsReplica(ctx, primary)
		return
	}
	d.checkRotation(ctx)
	d.checkReplicas(ctx)
}

// findRule: check 1, the rule exists (by prefix, or the rule that uses the secret).
func (d *doctor) findRule(ctx context.Context, target string) bool {
	const name = "rule"
	isSecret := strings.HasPrefix(target, "arn:") || strings.HasPrefix(target, ptcsecret.Prefix)
	if !isSecret {
		rules, err := d.env.rules(ctx, target)
		var nf *ecrtypes.PullThroughCacheRuleNotFoundException
		switch {
		case errors.As(err, &nf) || (err == nil && len(rules) == 0):
			d.fail(name, "check the prefix (ptc status lists every rule of the Region), or create the rule (Custom::PullThroughCache, or aws ecr create-pull-through-cache-rule)",
				"no pull-through cache rule with prefix %q in %s", target, d.env.Region)
			return false
		case err != nil:
			d.fail(name, "check the credentials and Region (--region, --profile) and that you may call ecr:DescribePullThroughCacheRules", "%s", kit.Truncate(err.Error(), 300))
			return false
		}
		d.rule = &rules[0]
	} else {
		rules, err := d.env.rules(ctx)
		if err != nil {
			d.fail(name, "check the credentials and Region (--region, --profile)", "%s", kit.Truncate(err.Error(), 300))
			return false
		}
		want := ptcsecret.NameFromARN(target)
		for i, r := range rules {
			if ptcsecret.NameFromARN(aws.ToString(r.CredentialArn)) == want {
				d.rule = &rules[i]
				break
			}
		}
		if d.rule == nil {
			d.fail(name, "point a rule at it (aws ecr update-pull-through-cache-rule --credential-arn …), or run ptc doctor with the rule's prefix",
				"no pull-through cache rule in %s uses secret %s", d.env.Region, want)
			return false
		}
	}
	r := d.rule
	via := ""
	if p := aws.ToString(r.UpstreamRepositoryPrefix); p != "" {
		via = " (upstream repository prefix " + p + ")"
	}
	d.pass(name, "%s → %s %s%s", aws.ToString(r.EcrRepositoryPrefix), r.UpstreamRegistry, aws.ToString(r.UpstreamRegistryUrl), via)
	return true
}

// checkCredentialARN: check 2, the credential is a secret of this account and Region, under the
// prefix ECR reads.
func (d *doctor) checkCredentialARN() bool {
	const name = "credential ARN"
	arn := aws.ToString(d.rule.CredentialArn)
	if arn == "" {
		if slices.Contains([]string{"docker-hub", "github-container-registry", "azure-container-registry", "gitlab-container-registry", "chainguard"}, string(d.rule.UpstreamRegistry)) {
			d.fail(name, "give the rule a credential (aws ecr update-pull-through-cache-rule --credential-arn …)", "the rule has no credential, and %s needs one", d.rule.UpstreamRegistry)
			return false
		}
		d.skip(name, "%s needs no credential", d.rule.UpstreamRegistry)
		return false
	}
	region, account, secretName := arnParts(arn)
	registry := aws.ToString(d.rule.RegistryId)
	switch {
	case region == "":
		d.fail(name, "use the secret's full ARN", "%s is not a Secrets Manager secret ARN", arn)
		return false
	case region != d.env.Region:
		d.fail(name, "ECR reads only secrets of its own Region: copy the secret to "+d.env.Region+" (replicate-secret-to-regions, or create it there) and update the rule",
			"the secret is in %s, the rule in %s", region, d.env.Region)
		return false
	case registry != "" && account != registry:
		d.fail(name, "ECR reads only secrets of its own account: create the secret in account "+registry+" and update the rule",
			"the secret is in account %s, the registry is %s", account, registry)
		return false
	case !strings.HasPrefix(secretName, ptcsecret.Prefix):
		d.fail(name, "ECR's service-linked role reads only "+ptcsecret.Prefix+"*: create the secret under that prefix and update the rule",
			"secret %s is not under %s", secretName, ptcsecret.Prefix)
		return false
	}
	d.pass(name, "%s, in this account and Region, under %s", secretName, ptcsecret.Prefix)
	return true
}

// checkSecret: check 3, the secret exists and is readable.
func (d *doctor) checkSecret(ctx context.Context) bool {
	const name = "secret"
	arn := aws.ToString(d.rule.CredentialArn)
	out, err := d.env.SM.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)})
	var nf *smtypes.ResourceNotFoundException
	switch {
	case errors.As(err, &nf):
		d.fail(name, "create it (a managed one: Custom::PullThroughCache; by hand: aws secretsmanager create-secret --name "+ptcsecret.NameFromARN(arn)+") or point the rule at the secret that exists",
			"secret %s does not exist", ptcsecret.NameFromARN(arn))
		return false
	case err != nil:
		d.fail(name, "check that you may call secretsmanager:DescribeSecret on it", "%s", kit.Truncate(err.Error(), 300))
		return false
	case out.DeletedDate != nil:
		d.fail(name, "restore it (aws secretsmanager restore-secret --secret-id "+aws.ToString(out.Name)+")",
			"secret %s is scheduled for deletion on %s", aws.ToString(out.Name), aws.ToTime(out.DeletedDate).UTC().Format(time.RFC3339))
		return false
	}
	d.secret, d.tags = out, tagMap(out)
	kind := "hand-made"
	if d.tags[ptcsecret.TagUpstream] != "" {
		kind = "managed (" + d.tags[ptcsecret.TagUpstream] + ")"
	}
	d.pass(name, "%s exists, %s", aws.ToString(out.Name), kind)
	return true
}

// checkKey: check 4, the default aws/secretsmanager key.
func (d *doctor) checkKey() {
	const name = "encryption key"
	if k := aws.ToString(d.secret.KmsKeyId); !isDefaultKey(k) {
		d.fail(name, "ECR can decrypt only secrets under the default key: aws secretsmanager update-secret --secret-id "+aws.ToString(d.secret.Name)+
			" --kms-key-id alias/aws/secretsmanager, then put the value again (older versions keep the old key)",
			"the secret uses customer managed key %s", k)
		return
	}
	d.pass(name, "the default aws/secretsmanager key")
}

// keyNameRE is what a key name must look like to be printed: a short identifier. Anything else
// may be a value pasted in the wrong place, and is never shown.
var keyNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]{0,23}$`)

func showKey(k string) string {
	if keyNameRE.MatchString(k) && !looksLikeToken(k) {
		return fmt.Sprintf("%q", k)
	}
	return "(a key not shown: it does not look like a name and may be a value)"
}

// looksLikeToken catches the token shapes a key name should never have.
func looksLikeToken(k string) bool {
	for _, p := range []string{"ghp_", "gho_", "github_pat_", "glpat-", "dckr_pat_", "dckr_oat_"} {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

// nearMiss says which expected key an unexpected one was probably meant to be.
func nearMiss(k string) string {
	n := strings.ToLower(strings.NewReplacer("-", "", "_", "", ".", "", " ", "").Replace(k))
	switch n {
	case "accesstoken", "token", "password", "pat", "secret", "apikey", "apitoken", "passwd", "pass", "personalaccesstoken":
		return "accessToken"
	case "username", "user", "login", "name", "userid":
		return "username"
	}
	return ""
}

// checkValue: check 5, the value is exactly {"username", "accessToken"}, both non-empty
// strings. Names a near miss; never shows a value.
func (d *doctor) checkValue(ctx context.Context) {
	const name = "secret value"
	out, err := d.env.SM.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: d.secret.ARN, VersionStage: aws.String(ptcsecret.StageCurrent)})
	if err != nil {
		d.fail(name, "check that you may call secretsmanager:GetSecretValue (and kms:Decrypt) on it", "AWSCURRENT cannot be read: %s", kit.Truncate(err.Error(), 200))
		return
	}
	if out.SecretString == nil {
		d.fail(name, "ECR reads a JSON SecretString: put {\"username\": …, \"accessToken\": …} as a string value", "the secret holds binary data")
		return
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(aws.ToString(out.SecretString)), &raw); err != nil {
		d.fail(name, `put the value as a JSON object: {"username": "<user>", "accessToken": "<token>"} (the console's "Plaintext" tab shows it)`, "the value is not a JSON object")
		return
	}
	for k, r := range raw {
		var s string
		if json.Unmarshal(r, &s) == nil && k != "username" {
			d.hidden = append(d.hidden, s)
		}
		if showKey(k)[0] != '"' {
			d.hidden = append(d.hidden, k)
		}
	}
	var problems, fixes []string
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range raw {
			if !yield(k) {
				return
			}
		}
	}) {
		if k == "username" || k == "accessToken" {
			continue
		}
		if want := nearMiss(k); want != "" {
			problems = append(problems, fmt.Sprintf("key %s where ECR expects %q", showKey(k), want))
			fixes = append(fixes, fmt.Sprintf("rename %s to %q", showKey(k), want))
			continue
		}
		problems = append(problems, fmt.Sprintf("extra key %s", showKey(k)))
		fixes = append(fixes, fmt.Sprintf("remove %s", showKey(k)))
	}
	for _, k := range []string{"username", "accessToken"} {
		r, ok := raw[k]
		var s string
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("no key %q", k))
		case json.Unmarshal(r, &s) != nil:
			problems = append(problems, fmt.Sprintf("key %q is not a string", k))
			fixes = append(fixes, fmt.Sprintf("make %q a JSON string", k))
		case strings.TrimSpace(s) == "":
			problems = append(problems, fmt.Sprintf("key %q is empty", k))
			fixes = append(fixes, fmt.Sprintf("fill in %q", k))
		}
	}
	if len(problems) > 0 {
		d.fail(name, strings.Join(fixes, "; ")+`: the value must be exactly {"username": "…", "accessToken": "…"}`, "%s", strings.Join(problems, "; "))
		return
	}
	v, err := ptcsecret.Parse(aws.ToString(out.SecretString))
	if err != nil { // cannot happen after the checks above; never quote the value
		d.fail(name, `the value must be exactly {"username": "…", "accessToken": "…"}`, "%s", err.Error())
		return
	}
	d.value = &v
	d.pass(name, "exactly username and accessToken (username %q)", v.Username)
}

// checkLogin: check 6, the credential logs in upstream through the OCI token handshake, for
// the image when given, with the path hints ECR users miss.
func (d *doctor) checkLogin(ctx context.Context, image string) {
	const name = "upstream login"
	upstreamName := string(d.rule.UpstreamRegistry)
	prefix := aws.ToString(d.rule.EcrRepositoryPrefix)
	upPrefix := aws.ToString(d.rule.UpstreamRepositoryPrefix)
	repo, tag, _ := strings.Cut(image, ":")
	if i := strings.LastIndex(image, "@"); i > 0 {
		repo, tag = image[:i], image[i:]
	}
	if repo != "" {
		// People pass the ECR path; the upstream path is what follows the prefix.
		if rest, ok := strings.CutPrefix(repo, prefix+"/"); ok && prefix != "ROOT" {
			repo = rest
		}
		if upPrefix != "" && !strings.HasPrefix(repo, upPrefix+"/") {
			repo = upPrefix + "/" + repo
		}
		if upstreamName == "docker-hub" && !strings.Contains(repo, "/") {
			official := "library/" + repo
			d.fail("image path", "pull "+d.pullURI(official, tag)+" (Docker Hub official images live under library/; ECR does not add it)",
				"%q is a Docker Hub official image: its upstream path is %q", repo, official)
			repo = official
		} else {
			d.pass("image path", "pull it as %s", d.pullURI(repo, tag))
		}
	}
	if repo == "" {
		switch upstreamName {
		case "docker-hub":
			repo = dockerhub.DefaultCheckRepository
		case "azure-container-registry":
			repo = acr.DefaultCheckRepository
		}
	}
	if d.value == nil {
		d.skip(name, "no usable credential to log in with (see the secret value check)")
		return
	}
	if repo == "" {
		d.skip(name, "give --image <repository> to check the login (%s has no repository every account may pull)", upstreamName)
		return
	}
	url := aws.ToString(d.rule.UpstreamRegistryUrl)
	// The credential goes only where the rotator would send it: the upstream's pinned registry
	// and token realm hosts (and, in tests, the Env's stand-ins), over a pinned client.
	p, known := providers.All()[upstreamName]
	if !known {
		d.skip(name, "ptc-credentials does not know which hosts a %s credential may be sent to, so it sends it nowhere", upstreamName)
		return
	}
	if err := p.CheckRegistryURL("the rule's upstream URL", url, d.env.Standins); err != nil {
		d.fail(name, "the rule must pull "+upstreamName+" from "+p.RegistryHosts.String()+": recreate the rule with that upstream URL; the credential was not sent",
			"%s", kit.Truncate(err.Error(), 300))
		return
	}
	client := upstream.Options{HTTPClient: d.env.HTTPClient, Standins: d.env.Standins}.Client(providers.LoginHosts(p))
	err := registryauth.Check(ctx, client, registryauth.Target{Registry: url, Repository: repo},
		registryauth.Credential{Username: d.value.Username, Password: d.value.AccessToken})
	msg := ""
	if err != nil {
		msg = kit.NewRedactor(d.value.AccessToken).Redact(err.Error())
	}
	switch {
	case err == nil:
		d.pass(name, "%s gave username %q a pull token for %s", url, d.value.Username, repo)
	case errors.Is(err, registryauth.ErrBadCredentials):
		fix := "the token is wrong, expired or revoked: rotate (ptc rotate " + aws.ToString(d.secret.Name) + ") or put a new one"
		if d.tags[ptcsecret.TagUpstream] == "" {
			fix = "the token is wrong, expired or revoked: put a new one, or let ptc-credentials renew it (ptc adopt " + prefix + " --source-secret …)"
		}
		d.fail(name, fix, "%s", kit.Truncate(msg, 300))
	case errors.Is(err, registryauth.ErrUnreachable):
		d.fail(name, "the registry could not be reached from here: check the network, then try again", "%s", kit.Truncate(msg, 300))
	default:
		d.fail(name, "the registry does not speak the OCI token handshake at that URL: check the rule's upstream URL", "%s", kit.Truncate(msg, 300))
	}
}

// pullURI is the ECR image to pull for an upstream repository.
func (d *doctor) pullURI(upstreamRepo, tag string) string {
	prefix := aws.ToString(d.rule.EcrRepositoryPrefix)
	repo := upstreamRepo
	if p := aws.ToString(d.rule.UpstreamRepositoryPrefix); p != "" {
		repo = strings.TrimPrefix(repo, p+"/")
	}
	if prefix != "ROOT" {
		repo = prefix + "/" + repo
	}
	host := aws.ToString(d.rule.RegistryId) + ".dkr.ecr." + d.env.Region + ".amazonaws.com"
	switch {
	case tag == "":
	case strings.HasPrefix(tag, "@"):
		repo += tag
	default:
		repo += ":" + tag
	}
	return host + "/" + repo
}

// checkPullBudget: Docker Hub's pull budget, when something recorded it on the secret.
func (d *doctor) checkPullBudget() {
	if d.rule.UpstreamRegistry != ecrtypes.UpstreamRegistryDockerHub {
		return
	}
	if p := d.tags[TagPullsRemaining]; p != "" {
		if p == "0" {
			d.fail("pull budget", "wait for Docker Hub's window to reset, or use an account with a higher pull limit", "Docker Hub reports no pulls left")
			return
		}
		d.pass("pull budget", "%s pulls left (as last recorded)", p)
		return
	}
	d.skip("pull budget", "not recorded on the secret")
}

// checkValidation: ECR's own ValidatePullThroughCacheRule.
func (d *doctor) checkValidation(ctx context.Context) {
	const name = "ECR validation"
	out, err := d.env.ECR.ValidatePullThroughCacheRule(ctx, &ecr.ValidatePullThroughCacheRuleInput{EcrRepositoryPrefix: d.rule.EcrRepositoryPrefix})
	switch {
	case err != nil:
		d.fail(name, "check that you may call ecr:ValidatePullThroughCacheRule", "%s", kit.Truncate(err.Error(), 300))
	case !out.IsValid:
		d.fail(name, "fix the ✘ above; ECR logs in with AWSCURRENT exactly as stored", "%s", kit.Truncate(aws.ToString(out.Failure), 400))
	default:
		d.pass(name, "IsValid")
	}
}

// checkRotation: enabled, by which function, a pending version stuck since when, the last
// rotation the rotator recorded.
func (d *doctor) checkRotation(ctx context.Context) {
	const name = "rotation"
	s := d.secret
	managed := d.tags[ptcsecret.TagUpstream] != ""
	secretName := aws.ToString(s.Name)
	if !aws.ToBool(s.RotationEnabled) {
		if managed {
			d.fail(name, "turn it on: aws secretsmanager rotate-secret --secret-id "+secretName+" --rotation-lambda-arn <the stack's rotator>", "off for a managed secret: its token expires unrenewed")
		} else {
			d.skip(name, "off: a hand-made secret; ptc adopt %s --source-secret <ARN> makes ptc-credentials renew it", aws.ToString(d.rule.EcrRepositoryPrefix))
		}
		return
	}
	sched := ""
	if rr := s.RotationRules; rr != nil && aws.ToString(rr.ScheduleExpression) != "" {
		sched = ", " + aws.ToString(rr.ScheduleExpression)
	}
	fn := aws.ToString(s.RotationLambdaARN)
	if d.env.Lambda != nil && fn != "" {
		_, err := d.env.Lambda.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(fn)})
		var nf *lambdatypes.ResourceNotFoundException
		switch {
		case errors.As(err, &nf):
			d.fail(name, "point the secret at a rotator that exists: aws secretsmanager rotate-secret --secret-id "+secretName+" --rotation-lambda-arn <the stack's RotatorArn output> (or redeploy the stack that had it)",
				"on, but the rotation function %s does not exist: every rotation fails", fn)
			return
		case err != nil:
			sched += "; function not checked: " + kit.Truncate(err.Error(), 120)
		default:
			sched += "; the function exists"
		}
	}
	now := d.env.now()
	if p := stuckPending(s.VersionIdsToStages); p != "" {
		created, err := d.env.versionCreated(ctx, aws.ToString(s.ARN), p)
		if err == nil && !created.IsZero() && now.Sub(created) <= StuckAfter {
			d.pass(name, "a rotation is in progress: version %s pending since %s", p, sinceOrUnknown(now, created))
		} else {
			fix := "read the rotator's log for version " + p + "; when the cause is fixed, ptc rotate " + secretName + " (or cancel: aws secretsmanager cancel-rotate-secret, then remove AWSPENDING from the version)"
			detail := fmt.Sprintf("version %s has been AWSPENDING since %s; every later rotation fails until it finishes", p, sinceOrUnknown(now, created))
			if e := d.tags[rotation.TagLastError]; e != "" && e != "none" {
				detail += "; the rotator's last error: " + e
			}
			d.fail(name, fix, "%s", detail)
			return
		}
	}
	f := readFacts(s)
	if !f.failedAt.IsZero() {
		d.fail(name, "fix what the error names, then ptc rotate "+secretName,
			"on (%s%s), but the last rotation failed at %s (%s): %s", aws.ToString(s.RotationLambdaARN), sched, f.failedStep, f.failedAt.UTC().Format(time.RFC3339), f.lastError)
		return
	}
	detail := fmt.Sprintf("on (%s%s)", aws.ToString(s.RotationLambdaARN), sched)
	if s.LastRotatedDate != nil {
		detail += "; last rotated " + s.LastRotatedDate.UTC().Format(time.RFC3339)
	}
	if f.ok {
		detail += ", the current version passed the rotator's test"
	}
	if f.expires != nil {
		t := *f.expires
		days := int(t.Sub(now).Hours() / 24)
		if days < rotation.ExpiryWarningDays {
			d.fail(name, "rotate now: ptc rotate "+secretName, "%s; the current token expires in %d days (%s)", detail, days, t.Format(time.RFC3339))
			return
		}
		detail += fmt.Sprintf("; token expires in %d days", days)
	}
	d.pass(name, "%s", detail)
}
