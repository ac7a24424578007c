package localcloud

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/ptc-credentials/ptc-credentials/internal/kit"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/registryauth"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/localsm"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/registries"
)

// The steps of a scenario, in order.
const (
	StepCreate   = "create"
	StepRotate   = "rotate"
	StepValidate = "validate"
	StepDelete   = "delete"
)

// SourcePrefix starts the name of every source secret the scenario creates.
const SourcePrefix = "ptc-source/"

// ErrStalePAT is the rotation failure, on registries where a person stages the next credential
// (GHCR), where the rotator staged the credential the source secret held before a person put the
// next one there.
var ErrStalePAT = errors.New("stale source secret")

// errSkipped marks a step that did not run because an earlier one failed.
var errSkipped = errors.New("skipped: an earlier step failed")

// ScenarioOptions configure RunScenario.
type ScenarioOptions struct {
	// Rotations is how many rotations to run (default: the row's Registry.Rotations, else 2:
	// the second one shows the first token revoked, since AWSPREVIOUS must keep working for one
	// generation).
	Rotations int
}

// StepResult is the outcome of one step.
type StepResult struct {
	Name     string
	Err      error
	Duration time.Duration
}

// Result is what one registry's scenario did and found. It holds no secret value.
type Result struct {
	Registry Registry
	Steps    []StepResult

	// Created is CloudFormation's answer to Create; SecretARN is from its Data.
	Created   Answer
	SecretARN string
	// Versions are the managed secret's versions, oldest first: Create's, then one per rotation.
	Versions []string
	// Rotations are localsm's records of the rotations RotateSecret ran (Create's testSecret-only
	// run is not among them).
	Rotations []localsm.Rotation
	// Current describes the token AWSCURRENT holds at the end; Revoked the versions whose
	// credential stopped logging in during the rotations (e.g. "v1 (deleted)").
	Current string
	Revoked []string
	// PullsLeft is the pull budget the rotator tagged the secret with after the last rotation
	// (ptcsecret.TagTestedPulls; "" when the registry reports none).
	PullsLeft string
	// Described says what each version held when it became AWSCURRENT, e.g. "v2 PAT #2";
	// Staged names the credentials a person staged before each rotation (registries that
	// cannot mint).
	Described []string
	Staged    []string
	// Valid and ValidateFailure are ValidatePullThroughCacheRule's answer.
	Valid           bool
	ValidateFailure string
	// Deleted is CloudFormation's answer to Delete; RuleGone and SecretGone what ECR and
	// Secrets Manager say afterwards; LiveLabelled the labelled tokens the registry still holds
	// for the secret (registries with labels: must be 0); StillLogIn the versions whose
	// credential still logs in (by design only where nothing is revoked: GHCR).
	Deleted      Answer
	RuleGone     bool
	SecretGone   bool
	LiveLabelled int
	StillLogIn   []string

	// Regions are the Regions the secret and its rules live in, home first (rows with
	// ReplicaRegions); ReplicaWaits how long after each rotation the replicas took to hold the
	// new AWSCURRENT; PeakOrgTokens the most organization access tokens the upstream
	// organization held at once (rows of a registry with an organization; else 0).
	Regions       []string
	ReplicaWaits  []time.Duration
	PeakOrgTokens int

	Duration time.Duration
}

// OK reports whether every step ran and succeeded.
func (r Result) OK() bool {
	for _, s := range r.Steps {
		if s.Err != nil {
			return false
		}
	}
	return len(r.Steps) == 4
}

// Step returns the result of the named step (zero when it is not there).
func (r Result) Step(name string) StepResult {
	for _, s := range r.Steps {
		if s.Name == name {
			return s
		}
	}
	return StepResult{}
}

// scenario is one run of RunScenario.
type scenario struct {
	c    *Cloud
	w    io.Writer
	reg  Registry
	opts ScenarioOptions
	res  *Result

	sourceARN  string
	props      map[string]any
	logicalID  string
	physicalID string
	key        string // ptcsecret.Key of the managed secret
	creds      map[string]ptcsecret.Value
}

// RunScenario runs the life of one Custom::PullThroughCache for registry name (an ECR
// UpstreamRegistry value) and narrates it to w: create its source secret, Create (through the
// provisioner), RotateSecret on Secrets Manager (which drives the four steps through the
// rotator) opts.Rotations times, ECR's ValidatePullThroughCacheRule, Delete — checking at each
// step what Secrets Manager, ECR and the registry hold. Nothing it writes is a secret value.
// Run it once per registry and Cloud: the source secret's name is fixed.
func (c *Cloud) RunScenario(ctx context.Context, w io.Writer, name string, opts ScenarioOptions) Result {
	reg, ok := c.Registry(name)
	if opts.Rotations <= 0 {
		opts.Rotations = reg.Rotations
	}
	if opts.Rotations <= 0 {
		opts.Rotations = 2
	}
	res := Result{Registry: reg}
	if !ok {
		res.Steps = []StepResult{{Name: StepCreate, Err: fmt.Errorf("no emulated registry %q", name)}}
		return res
	}
	s := &scenario{c: c, w: w, reg: reg, opts: opts, res: &res, creds: map[string]ptcsecret.Value{},
		logicalID: logicalID(reg.Key)}
	start := time.Now()
	fmt.Fprintf(w, "\n== %s (%s) ==\n", reg.Title, reg.Key)
	if reg.Can.Replicates && c.replicationDelay > 0 {
		fmt.Fprintf(w, "  (%s)\n", fmt.Sprintf(reg.ReplicationNote, FormatDuration(c.replicationDelay)))
	}
	created := s.step(ctx, StepCreate, s.create, nil)
	s.step(ctx, StepRotate, s.rotate, skipUnless(created))
	s.step(ctx, StepValidate, s.validate, skipUnless(created))
	s.step(ctx, StepDelete, s.delete, skipUnless(created))
	res.Duration = time.Since(start)
	c.NoteIssued()
	return res
}

func skipUnless(ok bool) error {
	if ok {
		return nil
	}
	return errSkipped
}

// step runs fn unless skip is set, records and prints its outcome, and reports success.
func (s *scenario) step(ctx context.Context, name string, fn func(context.Context) error, skip error) bool {
	t0 := time.Now()
	err := skip
	if err == nil {
		err = fn(ctx)
	}
	d := time.Since(t0)
	s.res.Steps = append(s.res.Steps, StepResult{Name: name, Err: err, Duration: d})
	s.c.NoteIssued()
	switch {
	case err == nil:
		fmt.Fprintf(s.w, "  %-8s ok (%s)\n", name, FormatDuration(d))
	case errors.Is(err, errSkipped):
		fmt.Fprintf(s.w, "  %-8s skipped\n", name)
	default:
		fmt.Fprintf(s.w, "  %-8s FAILED (%s): %v\n", name, FormatDuration(d), err)
	}
	return err == nil
}

// say prints one narrative line, indented under the step, with the time since t0.
func (s *scenario) say(t0 time.Time, format string, args ...any) {
	fmt.Fprintf(s.w, "    [%6s] %s\n", FormatDuration(time.Since(t0)), fmt.Sprintf(format, args...))
}

// more prints a continuation line.
func (s *scenario) more(format string, args ...any) {
	fmt.Fprintf(s.w, "             %s\n", fmt.Sprintf(format, args...))
}

// --- create ----------------------------------------------------------------------------------

func (s *scenario) create(ctx context.Context) error {
	t0 := time.Now()
	src := SourcePrefix + s.reg.Key
	out, err := s.c.SM.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String(src), SecretString: aws.String(s.reg.Source),
		Description: aws.String("minting credential for " + s.reg.Title + " (ptc-credentials demo)"),
	})
	if err != nil {
		return fmt.Errorf("creating source secret %s: %w", src, err)
	}
	s.sourceARN = aws.ToString(out.ARN)
	s.say(t0, "source secret %s created: %s (value not shown)", src, s.reg.SourceWhat)

	s.props = map[string]any{
		"EcrRepositoryPrefix":  s.reg.Prefix,
		"UpstreamRegistry":     s.reg.Name,
		"UpstreamRegistryUrl":  s.reg.URL,
		"SourceSecretArn":      s.sourceARN,
		"RotationSchedule":     s.reg.Schedule,
		"RecoveryWindowInDays": "0",
		"Tags":                 []any{map[string]any{"Key": "team", "Value": "platform"}},
	}
	if s.replicated() {
		regions := make([]any, len(s.reg.ReplicaRegions))
		for i, r := range s.reg.ReplicaRegions {
			regions[i] = r
		}
		s.props["ReplicaRegions"] = regions
		s.props["Description"] = s.reg.Title + " pull-through cache credential, one for " + strings.Join(append([]string{s.c.Region}, s.reg.ReplicaRegions...), ", ")
	}
	t0 = time.Now()
	ans, err := s.c.CustomResourceFor(ctx, s.logicalID, "Create", "", s.props)
	s.res.Created = ans
	if err != nil {
		return err
	}
	if ans.Status != "SUCCESS" {
		return fmt.Errorf("CloudFormation received %s: %s", ans.Status, ans.Reason)
	}
	s.physicalID = ans.PhysicalResourceID
	s.res.SecretARN = ans.Data["SecretArn"]
	s.say(t0, "Create %s %s -> %s", ResourceType, s.logicalID, ans.Status)
	s.more("physical id          %s", ans.PhysicalResourceID)
	s.more("RepositoryUriPrefix  %s", ans.Data["RepositoryUriPrefix"])
	s.more("managed secret       %s", ans.Data["SecretName"])
	if s.res.SecretARN == "" {
		return errors.New("the Create answer carries no SecretArn in Data")
	}
	if s.key, err = ptcsecret.KeyFromARN(s.res.SecretARN); err != nil {
		return err
	}
	if s.replicated() {
		if err := s.checkRegions(ctx, ans); err != nil {
			return err
		}
	}
	// Turning rotation on with RotateImmediately=false makes Secrets Manager run testSecret on a
	// copy of the first version; it does so after answering, as AWS does.
	t0 = time.Now()
	if err := s.c.SecretsManager.WaitRotation(ctx, s.res.SecretARN); err != nil {
		return err
	}
	rot, ok := s.lastRotation("")
	switch {
	case !ok:
		return errors.New("turning rotation on ran no testSecret")
	case rot.Err != "":
		return fmt.Errorf("the testSecret Secrets Manager ran when rotation was turned on failed: %s", rot.Err)
	}
	s.say(t0, "Secrets Manager ran testSecret on the rotator (rotation turned on, %s): ok", s.props["RotationSchedule"])
	v, _, err := s.current(ctx)
	if err != nil {
		return err
	}
	s.res.Versions = append(s.res.Versions, v)
	first := s.describe(ctx, v)
	s.res.Described = append(s.res.Described, first)
	s.more("first token          %s, username %s", first, ShortLabel(s.creds[v].Username))
	if s.replicated() {
		// The provisioner validated every Region's rule once its replica held the value; the
		// first wait is Create's, so it is not among ReplicaWaits.
		cur, _, err := s.replicaCurrent(ctx, s.reg.ReplicaRegions[len(s.reg.ReplicaRegions)-1])
		if err != nil {
			return err
		}
		if cur != v {
			return fmt.Errorf("the Create answered before the replicas held the first version (%s holds %q)", s.reg.ReplicaRegions[len(s.reg.ReplicaRegions)-1], cur)
		}
		s.more("replicas             %s hold v1 (Create waited for them)", strings.Join(s.reg.ReplicaRegions, ", "))
	}
	s.noteOrgTokens()
	return nil
}

// --- rotate ----------------------------------------------------------------------------------

func (s *scenario) rotate(ctx context.Context) error {
	for i := 1; i <= s.opts.Rotations; i++ {
		if err := s.rotateOnce(ctx, i); err != nil {
			return fmt.Errorf("rotation %d: %w", i, err)
		}
	}
	s.res.Current = s.describe(ctx, s.res.Versions[len(s.res.Versions)-1])
	// The pull budget the rotator's testSecret read for the new credential, as it tagged it.
	if d, err := s.c.SM.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(s.res.SecretARN)}); err == nil {
		for _, t := range d.Tags {
			if aws.ToString(t.Key) == ptcsecret.TagTestedPulls {
				s.res.PullsLeft = aws.ToString(t.Value)
			}
		}
	}
	if s.res.PullsLeft != "" {
		s.more("pulls left           %s (tag %s, from the registry's ratelimit-remaining)", s.res.PullsLeft, ptcsecret.TagTestedPulls)
	}
	return nil
}

// logicalID is the custom resource's logical id for the row with key: CloudFormation allows
// only letters and digits ("docker-hub-staged" -> "DockerHubStagedCache").
func logicalID(key string) string {
	var b strings.Builder
	for _, part := range strings.Split(key, "-") {
		if part != "" {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return b.String() + "Cache"
}

func (s *scenario) rotateOnce(ctx context.Context, i int) error {
	var staged registries.Credential
	if !s.reg.Can.Mints {
		// The registry cannot mint (GHCR): a person creates the next credential and puts it
		// into the source secret.
		t0 := time.Now()
		cred, doc, _ := s.reg.Emulator.StageNext(0)
		if _, err := s.c.SM.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
			SecretId: aws.String(s.sourceARN), SecretString: aws.String(doc),
		}); err != nil {
			return fmt.Errorf("staging the next credential in the source secret: %w", err)
		}
		staged = cred
		s.res.Staged = append(s.res.Staged, cred.Name)
		s.c.NoteIssued()
		s.say(t0, "%s and put it into %s%s", fmt.Sprintf(s.reg.StagedHow, cred.Name), SourcePrefix, s.reg.Key)
	}
	before, err := s.loggingIn(ctx)
	if err != nil {
		return err
	}

	t0 := time.Now()
	out, err := s.c.SM.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String(s.res.SecretARN)})
	if err != nil {
		return fmt.Errorf("RotateSecret: %w", err)
	}
	if err := s.c.SecretsManager.WaitRotation(ctx, s.res.SecretARN); err != nil {
		return err
	}
	version := aws.ToString(out.VersionId)
	rot, ok := s.lastRotation(version)
	if !ok {
		return fmt.Errorf("Secrets Manager has no record of the rotation to version %s", version)
	}
	s.res.Rotations = append(s.res.Rotations, rot)
	var steps []string
	for _, st := range rot.Steps {
		steps = append(steps, fmt.Sprintf("%s %s", st.Step, FormatDuration(st.Finished.Sub(st.Started))))
	}
	s.say(t0, "RotateSecret #%d: Secrets Manager invoked the rotator: %s", i, strings.Join(steps, ", "))
	if rot.Err != "" {
		return fmt.Errorf("the rotation stopped: %s", rot.Err)
	}
	if !rot.Promoted || len(rot.Steps) != 4 {
		return fmt.Errorf("the rotation ran %d steps and promoted=%v", len(rot.Steps), rot.Promoted)
	}
	cur, stages, err := s.current(ctx)
	if err != nil {
		return err
	}
	if cur != version {
		return fmt.Errorf("AWSCURRENT is on version %s, not on the rotation's %s", cur, version)
	}
	prev := s.res.Versions[len(s.res.Versions)-1]
	s.res.Versions = append(s.res.Versions, cur)
	if !slices.Contains(stages[prev], ptcsecret.StagePrevious) {
		return fmt.Errorf("the version before (%s) is not AWSPREVIOUS: %v", s.gen(prev), stages[prev])
	}
	if s.creds[cur].AccessToken == s.creds[prev].AccessToken {
		if !s.reg.Can.Mints {
			return fmt.Errorf("%w: the rotator promoted the credential it already had, not %s that was just put into the source secret (does it reuse a source secret it read earlier?)", ErrStalePAT, staged.Name)
		}
		return errors.New("the rotation left the token unchanged")
	}
	after, err := s.loggingIn(ctx)
	if err != nil {
		return err
	}
	if !after[cur] {
		return fmt.Errorf("the new AWSCURRENT %s does not log in to %s", s.gen(cur), s.reg.Title)
	}
	if !after[prev] {
		return fmt.Errorf("AWSPREVIOUS %s stopped logging in; it must keep working for one rotation", s.gen(prev))
	}
	var revoked []string
	for _, v := range s.res.Versions {
		if before[v] && !after[v] {
			revoked = append(revoked, s.gen(v)+" ("+s.revokedHow()+")")
		}
	}
	s.res.Revoked = append(s.res.Revoked, revoked...)
	now := s.describe(ctx, cur)
	s.res.Described = append(s.res.Described, now)
	s.more("now AWSCURRENT       %s", now)
	s.more("AWSPREVIOUS          %s, still logs in", s.gen(prev))
	if len(revoked) == 0 {
		s.more("revoked              nothing%s", s.whyNothingRevoked(i))
	} else {
		s.more("revoked              %s: no longer logs in", strings.Join(revoked, ", "))
	}
	if s.reg.Can.Labels {
		live := s.liveLabels()
		var gens []string
		for _, v := range s.res.Versions {
			if _, ok := live[v]; ok {
				gens = append(gens, s.gen(v))
			}
		}
		s.more("%-20s %d token(s) labelled for this secret: %s", s.reg.Title, len(live), strings.Join(gens, ", "))
		for _, v := range s.res.Versions {
			if _, ok := live[v]; ok && !after[v] {
				return fmt.Errorf("%s still holds the token of %s, which no longer logs in", s.reg.Title, s.gen(v))
			}
		}
	}
	if s.replicated() {
		if err := s.noteReplicas(ctx, cur); err != nil {
			return err
		}
	}
	s.noteOrgTokens()
	return nil
}

func (s *scenario) whyNothingRevoked(i int) string {
	switch {
	case !s.reg.Can.Revokes:
		return " (" + s.reg.NoRevocation + ")"
	case i == 1:
		return " (the first token is AWSPREVIOUS now and keeps working until the next rotation)"
	}
	return ""
}

// revokedHow says how a version's credential was invalidated.
func (s *scenario) revokedHow() string {
	if s.reg.RevokedHow != "" {
		return s.reg.RevokedHow
	}
	return "refused"
}

// --- validate --------------------------------------------------------------------------------

func (s *scenario) validate(ctx context.Context) error {
	t0 := time.Now()
	out, err := s.c.ECR.ValidatePullThroughCacheRule(ctx, &ecr.ValidatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String(s.reg.Prefix)})
	if err != nil {
		return fmt.Errorf("ValidatePullThroughCacheRule: %w", err)
	}
	s.res.Valid, s.res.ValidateFailure = out.IsValid, aws.ToString(out.Failure)
	s.say(t0, "ECR ValidatePullThroughCacheRule %s: IsValid=%v (ECR read AWSCURRENT and logged in to %s)", s.reg.Prefix, out.IsValid, s.reg.Title)
	if !out.IsValid {
		return fmt.Errorf("ECR says the rule is not valid: %s", s.res.ValidateFailure)
	}
	return s.validateRegions(ctx)
}

// --- delete ----------------------------------------------------------------------------------

func (s *scenario) delete(ctx context.Context) error {
	t0 := time.Now()
	ans, err := s.c.CustomResourceFor(ctx, s.logicalID, "Delete", s.physicalID, s.props)
	s.res.Deleted = ans
	if err != nil {
		return err
	}
	s.say(t0, "Delete %s %s -> %s", ResourceType, s.logicalID, ans.Status)
	if ans.Status != "SUCCESS" {
		return fmt.Errorf("CloudFormation received %s: %s", ans.Status, ans.Reason)
	}
	var problems []string

	_, err = s.c.ECR.DescribePullThroughCacheRules(ctx, &ecr.DescribePullThroughCacheRulesInput{EcrRepositoryPrefixes: []string{s.reg.Prefix}})
	var noRule *ecrtypes.PullThroughCacheRuleNotFoundException
	s.res.RuleGone = errors.As(err, &noRule)
	if !s.res.RuleGone {
		problems = append(problems, fmt.Sprintf("the pull-through cache rule %s is still there (err %v)", s.reg.Prefix, err))
	}
	_, err = s.c.SM.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(s.res.SecretARN)})
	var noSecret *smtypes.ResourceNotFoundException
	s.res.SecretGone = errors.As(err, &noSecret)
	if !s.res.SecretGone {
		problems = append(problems, fmt.Sprintf("the managed secret is still there (err %v)", err))
	}
	s.more("rule %-15s gone: %v (DescribePullThroughCacheRules: not found)", s.reg.Prefix, s.res.RuleGone)
	s.more("secret               gone: %v (RecoveryWindowInDays 0)", s.res.SecretGone)
	problems = append(problems, s.goneInRegions(ctx)...)

	live, err := s.loggingIn(ctx)
	if err != nil {
		return err
	}
	for _, v := range s.res.Versions {
		if live[v] {
			s.res.StillLogIn = append(s.res.StillLogIn, s.gen(v))
		}
	}
	switch {
	case s.reg.Can.Labels:
		s.res.LiveLabelled = len(s.liveLabels())
		s.more("tokens               %d labelled token(s) left in %s; %d of %d credential(s) the secret held still log in",
			s.res.LiveLabelled, s.reg.Title, len(s.res.StillLogIn), len(s.res.Versions))
		if s.res.LiveLabelled != 0 || len(s.res.StillLogIn) != 0 {
			problems = append(problems, fmt.Sprintf("%d labelled token(s) left and %v still log in", s.res.LiveLabelled, s.res.StillLogIn))
		}
	case s.reg.Can.Revokes:
		s.more("tokens               %s; %d of %d credential(s)", s.reg.DeleteNote, len(s.res.StillLogIn), len(s.res.Versions))
		s.more("                     the secret held still log in")
		if len(s.res.StillLogIn) != 0 {
			problems = append(problems, fmt.Sprintf("%s credentials of %v still log in", s.reg.Title, s.res.StillLogIn))
		}
	default:
		s.more("tokens               %s", s.reg.DeleteNote)
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// --- what the secret and the registry hold ----------------------------------------------------

// current reads the AWSCURRENT version, remembers its credential, and returns its id and the
// stages of every version.
func (s *scenario) current(ctx context.Context) (string, map[string][]string, error) {
	d, err := s.c.SM.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(s.res.SecretARN)})
	if err != nil {
		return "", nil, fmt.Errorf("DescribeSecret: %w", err)
	}
	var cur string
	for v, st := range d.VersionIdsToStages {
		if slices.Contains(st, ptcsecret.StageCurrent) {
			cur = v
		}
	}
	if cur == "" {
		return "", nil, fmt.Errorf("no version is AWSCURRENT: %v", d.VersionIdsToStages)
	}
	got, err := s.c.SM.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(s.res.SecretARN), VersionId: aws.String(cur)})
	if err != nil {
		return "", nil, fmt.Errorf("GetSecretValue of AWSCURRENT: %w", err)
	}
	v, err := ptcsecret.Parse(aws.ToString(got.SecretString))
	if err != nil {
		return "", nil, fmt.Errorf("AWSCURRENT is not what ECR reads: %w", err)
	}
	s.creds[cur] = v
	s.c.noteSecret(v.AccessToken)
	return cur, d.VersionIdsToStages, nil
}

// gen names a version by its place in the secret's history: v1 is Create's.
func (s *scenario) gen(v string) string {
	if i := slices.Index(s.res.Versions, v); i >= 0 {
		return fmt.Sprintf("v%d", i+1)
	}
	return "v?"
}

// describe says which token version v holds, without its value.
func (s *scenario) describe(ctx context.Context, v string) string {
	var stages []string
	if d, err := s.c.SM.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(s.res.SecretARN)}); err == nil {
		stages = d.VersionIdsToStages[v]
	}
	return s.gen(v) + " " + ShortLabel(s.reg.Emulator.DescribeVersion(s.key, registries.Version{ID: v, Stages: stages, Value: s.creds[v]}))
}

// ShortLabel shortens a token label (ptc-<12 hex>-<version id>) for display.
func ShortLabel(label string) string {
	return kit.Truncate(label, len("ptc-")+12+1+8) // the secret's hash and 8 of the version id
}

// liveLabels returns the registry's live tokens labelled for this secret, by version id.
func (s *scenario) liveLabels() map[string]string { return s.reg.Emulator.Labelled(s.key) }

// loggingIn checks every version's credential against the registry: true when it logs in,
// false when the registry refuses it. Any other outcome (unreachable, protocol) is an error,
// never taken for a revocation.
func (s *scenario) loggingIn(ctx context.Context) (map[string]bool, error) {
	out := map[string]bool{}
	for _, v := range s.res.Versions {
		cred, ok := s.creds[v]
		if !ok {
			continue
		}
		err := s.c.Login(ctx, s.reg, cred)
		if err != nil && !refusedLogin(err) {
			return nil, fmt.Errorf("checking the login of %s: %w", s.gen(v), err)
		}
		out[v] = err == nil
	}
	return out, nil
}

// lastRotation returns localsm's latest record for this secret (for version, when given).
func (s *scenario) lastRotation(version string) (localsm.Rotation, bool) {
	rots := s.c.SecretsManager.Rotations()
	for i := len(rots) - 1; i >= 0; i-- {
		r := rots[i]
		if r.SecretARN == s.res.SecretARN && (version == "" || r.VersionID == version) {
			return r, true
		}
	}
	return localsm.Rotation{}, false
}

// refusedLogin reports whether err is the registry refusing a credential.
func refusedLogin(err error) bool { return errors.Is(err, registryauth.ErrBadCredentials) }

// --- the summary -----------------------------------------------------------------------------

// FormatDuration prints d the way the narrative does: 85ms, 1.2s.
func FormatDuration(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	}
	return fmt.Sprintf("%.1fs", d.Seconds())
}

// WriteSummary prints one row per result: registry | create | rotate | validate | delete |
// current token | revoked | pulls left | time.
func WriteSummary(w io.Writer, results []Result) {
	rows := [][]string{{"registry", "create", "rotate", "validate", "delete", "current token", "revoked", "pulls left", "time"}}
	for _, r := range results {
		cell := func(name, okText string) string {
			st := r.Step(name)
			switch {
			case st.Name == "":
				return "-"
			case errors.Is(st.Err, errSkipped):
				return "skipped"
			case st.Err != nil:
				return "FAILED"
			}
			return okText
		}
		revoked := "none"
		if len(r.Revoked) > 0 {
			revoked = strings.Join(r.Revoked, ", ")
		}
		current := r.Current
		if current == "" {
			current = "-"
		}
		pulls := r.PullsLeft
		if pulls == "" {
			pulls = "-"
		}
		rows = append(rows, []string{
			r.Registry.Title,
			cell(StepCreate, "SUCCESS"),
			cell(StepRotate, fmt.Sprintf("%d/%d ok", len(r.Rotations), len(r.Rotations))),
			cell(StepValidate, "IsValid"),
			cell(StepDelete, "SUCCESS"),
			current, revoked, pulls, FormatDuration(r.Duration),
		})
	}
	widths := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, c := range row {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	line := func(row []string) {
		var b strings.Builder
		for i, c := range row {
			if i > 0 {
				b.WriteString(" | ")
			}
			b.WriteString(c)
			if i < len(row)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-len([]rune(c))))
			}
		}
		fmt.Fprintln(w, b.String())
	}
	line(rows[0])
	sep := make([]string, len(widths))
	for i, n := range widths {
		sep[i] = strings.Repeat("-", n)
	}
	line(sep)
	for _, row := range rows[1:] {
		line(row)
	}
	for _, r := range results {
		writeRegionsNote(w, r)
	}
}

// writeRegionsNote prints, under the table, what a replicated row showed: one secret serving
// rules in several Regions, how long its replicas took, and the organization's token count
// against what one resource per Region would hold.
func writeRegionsNote(w io.Writer, r Result) {
	if len(r.Regions) < 2 {
		return
	}
	var waits []string
	for _, d := range r.ReplicaWaits {
		waits = append(waits, FormatDuration(d))
	}
	if len(waits) == 0 {
		waits = []string{"-"}
	}
	note := fmt.Sprintf("%s: one secret, rotated in its primary Region only, serves rules in %d Regions (%s); its replicas held each new AWSCURRENT %s after the rotation.",
		r.Registry.Title, len(r.Regions), strings.Join(r.Regions, ", "), strings.Join(waits, ", "))
	if r.PeakOrgTokens > 0 {
		note += fmt.Sprintf(" Organization %s held at most %d token(s) at once; one resource per Region would hold up to %d (3 per secret at a rotation's peak) of the Team plan's 10.",
			r.Registry.Org, r.PeakOrgTokens, 3*len(r.Regions))
	}
	fmt.Fprintln(w)
	line := ""
	for _, word := range strings.Fields(note) {
		if line != "" && len(line)+1+len(word) > 96 {
			fmt.Fprintln(w, line)
			line = " "
		}
		if line != "" {
			line += " "
		}
		line += word
	}
	fmt.Fprintln(w, line)
}
