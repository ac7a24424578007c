package operator

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/ptc-credentials/ptc-credentials/internal/kit"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/rotation"
)

// TagPullsRemaining is where the rotator records the pull budget the registry reported when it
// last tested a credential (Docker Hub's ratelimit-remaining); ptc shows it as last recorded.
const TagPullsRemaining = ptcsecret.TagTestedPulls

// StuckAfter is how long a pending version distinct from AWSCURRENT may exist before status
// calls the rotation stuck (a healthy rotation takes seconds; ACR's replication up to minutes).
const StuckAfter = 15 * time.Minute

// RuleStatus is one pull-through cache rule and its credential, as `ptc status` reports it.
type RuleStatus struct {
	Prefix                   string     `json:"ecrRepositoryPrefix"`
	Upstream                 string     `json:"upstreamRegistry,omitempty"`
	URL                      string     `json:"upstreamRegistryUrl,omitempty"`
	UpstreamRepositoryPrefix string     `json:"upstreamRepositoryPrefix,omitempty"`
	SecretARN                string     `json:"credentialArn,omitempty"`
	Secret                   string     `json:"secret,omitempty"`
	Managed                  bool       `json:"managed"`
	Rotation                 bool       `json:"rotationEnabled"`
	Schedule                 string     `json:"schedule,omitempty"`
	RotationLambda           string     `json:"rotationLambdaArn,omitempty"`
	LastRotated              *time.Time `json:"lastRotated,omitempty"`
	NextRotation             *time.Time `json:"nextRotation,omitempty"`
	LastOutcome              string     `json:"lastOutcome,omitempty"`
	LastError                string     `json:"lastError,omitempty"`
	ExpiresAt                *time.Time `json:"expiresAt,omitempty"`
	DaysToExpiry             *int       `json:"daysToExpiry,omitempty"`
	PullsRemaining           string     `json:"pullsRemaining,omitempty"`
	PendingVersion           string     `json:"pendingVersion,omitempty"`
	PendingSince             *time.Time `json:"pendingSince,omitempty"`
	Valid                    *bool      `json:"valid,omitempty"`
	ValidationFailure        string     `json:"validationFailure,omitempty"`
	// PrimaryRegion is set when the rule's secret is a replica: the Region of its primary,
	// where it rotates.
	PrimaryRegion string `json:"primaryRegion,omitempty"`
	// Replicas are the replica Regions of a managed secret, each with its own rule.
	Replicas []ReplicaStatus `json:"replicas,omitempty"`
	// Problems say what is unhealthy and what to do; empty means healthy. A replica Region's
	// problems are in its ReplicaStatus.
	Problems []string `json:"problems"`
}

// Healthy reports whether nothing is wrong with the rule, nor in any of its replica Regions.
func (s RuleStatus) Healthy() bool {
	if len(s.Problems) > 0 {
		return false
	}
	for _, r := range s.Replicas {
		if !r.Healthy() {
			return false
		}
	}
	return true
}

// StatusReport is the whole of `ptc status`.
type StatusReport struct {
	Region    string       `json:"region"`
	Rules     []RuleStatus `json:"rules"`
	Unhealthy int          `json:"unhealthy"`
}

// Status checks every rule of the Region (credential, rotation, ECR's validation) and returns
// the report. Progress goes to Env.Err.
func Status(ctx context.Context, env *Env) (*StatusReport, error) {
	rules, err := env.rules(ctx)
	if err != nil {
		return nil, err
	}
	env.progress("ptc status: %d pull-through cache rules in %s", len(rules), env.Region)
	rep := &StatusReport{Region: env.Region, Rules: make([]RuleStatus, len(rules))}
	rr := newRegionRules(env)
	workers := env.Concurrency
	if workers <= 0 {
		workers = 8
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		done int
		next = make(chan int)
	)
	for range min(workers, max(len(rules), 1)) {
		wg.Go(func() {
			for i := range next {
				rep.Rules[i] = env.ruleStatus(ctx, rr, rules[i])
				mu.Lock()
				done++
				if done%25 == 0 && done < len(rules) {
					env.progress("  checked %d/%d", done, len(rules))
				}
				mu.Unlock()
			}
		})
	}
	for i := range rules {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, r := range rep.Rules {
		if !r.Healthy() {
			rep.Unhealthy++
		}
	}
	env.progress("  checked %d/%d: %d unhealthy", len(rules), len(rules), rep.Unhealthy)
	return rep, nil
}

// ruleStatus reads one rule's secret and asks ECR to validate it: two calls, three with a
// pending version, and for each replica Region of a managed secret the replica's
// DescribeSecret and ECR's validation there (the Region's rules are listed once per run, rr).
func (env *Env) ruleStatus(ctx context.Context, rr *regionRules, rule ecrtypes.PullThroughCacheRule) RuleStatus {
	s := RuleStatus{
		Prefix: aws.ToString(rule.EcrRepositoryPrefix), Upstream: string(rule.UpstreamRegistry),
		URL: aws.ToString(rule.UpstreamRegistryUrl), UpstreamRepositoryPrefix: aws.ToString(rule.UpstreamRepositoryPrefix),
		SecretARN: aws.ToString(rule.CredentialArn), Problems: []string{},
	}
	problem := func(format string, args ...any) { s.Problems = append(s.Problems, fmt.Sprintf(format, args...)) }
	now := env.now()
	if s.SecretARN != "" {
		s.Secret = ptcsecret.NameFromARN(s.SecretARN)
		d, err := env.SM.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(s.SecretARN)})
		switch {
		case err != nil:
			problem("secret %s cannot be described: %s (run ptc doctor %s)", s.Secret, kit.Truncate(err.Error(), 200), s.Prefix)
		case d.DeletedDate != nil:
			problem("secret %s is scheduled for deletion: restore it (aws secretsmanager restore-secret) or point the rule at another", s.Secret)
		default:
			env.secretStatus(ctx, &s, d, now, problem)
			if s.Managed {
				for _, rs := range replicaRegions(d) {
					s.Replicas = append(s.Replicas, env.replicaStatus(ctx, rr, s.Prefix, d, rs, now))
				}
				sortReplicas(s.Replicas)
			}
		}
	}
	v, err := env.ECR.ValidatePullThroughCacheRule(ctx, &ecr.ValidatePullThroughCacheRuleInput{EcrRepositoryPrefix: rule.EcrRepositoryPrefix})
	switch {
	case err != nil:
		problem("ECR could not validate the rule: %s", kit.Truncate(err.Error(), 200))
	default:
		ok := v.IsValid
		s.Valid = &ok
		s.ValidationFailure = kit.Truncate(aws.ToString(v.Failure), 300)
		if !ok {
			problem("ECR's validation failed: %s (run ptc doctor %s)", s.ValidationFailure, s.Prefix)
		}
	}
	return s
}

func (env *Env) secretStatus(ctx context.Context, s *RuleStatus, d *secretsmanager.DescribeSecretOutput, now time.Time, problem func(string, ...any)) {
	tags := tagMap(d)
	s.Managed = tags[ptcsecret.TagUpstream] != ""
	s.Rotation = aws.ToBool(d.RotationEnabled)
	s.RotationLambda = aws.ToString(d.RotationLambdaARN)
	if rr := d.RotationRules; rr != nil {
		switch {
		case aws.ToString(rr.ScheduleExpression) != "":
			s.Schedule = aws.ToString(rr.ScheduleExpression)
		case aws.ToInt64(rr.AutomaticallyAfterDays) > 0:
			s.Schedule = fmt.Sprintf("every %d days", aws.ToInt64(rr.AutomaticallyAfterDays))
		}
	}
	s.LastRotated, s.NextRotation = d.LastRotatedDate, d.NextRotationDate
	s.PrimaryRegion = replicaOf(d, env.Region)
	// A replica rotates with its primary: its own rotation settings say nothing.
	if s.Managed && !s.Rotation && s.PrimaryRegion == "" {
		problem("managed secret %s has rotation turned off: its token will expire unrenewed (aws secretsmanager rotate-secret --secret-id %s --rotation-lambda-arn <rotator>)", s.Secret, s.Secret)
	}
	if !isDefaultKey(aws.ToString(d.KmsKeyId)) {
		problem("secret %s is encrypted with a customer managed key: ECR can read only secrets under aws/secretsmanager", s.Secret)
	}
	f := readFacts(d)
	switch {
	case !f.failedAt.IsZero():
		s.LastOutcome, s.LastError = "failed", f.lastError
		problem("the last rotation failed at %s (%s): %s", f.failedStep, f.failedAt.UTC().Format(time.RFC3339), s.LastError)
	case f.ok:
		s.LastOutcome = "ok"
	}
	if f.expires != nil {
		t := *f.expires
		s.ExpiresAt = &t
		days := int(t.Sub(now).Hours() / 24)
		s.DaysToExpiry = &days
		switch {
		case !t.After(now):
			problem("the current token expired %s: rotate now (ptc rotate %s)", since(now, t), s.Secret)
		case days < rotation.ExpiryWarningDays:
			problem("the current token expires in %d days: rotate (ptc rotate %s), or for GHCR stage the next token first", days, s.Secret)
		}
	}
	if p := tags[TagPullsRemaining]; p != "" {
		s.PullsRemaining = p
	}
	if p := stuckPending(d.VersionIdsToStages); p != "" {
		s.PendingVersion = p
		created, err := env.versionCreated(ctx, s.SecretARN, p)
		switch {
		case err != nil:
			problem("pending version %s: its age cannot be read: %s", p, kit.Truncate(err.Error(), 120))
		case created.IsZero() || now.Sub(created) > StuckAfter:
			if !created.IsZero() {
				s.PendingSince = &created
			}
			problem("a rotation is stuck: version %s has been AWSPENDING since %s; later rotations fail until it finishes (ptc doctor %s shows the rotator's error)", p, sinceOrUnknown(now, created), s.Prefix)
		default:
			s.PendingSince = &created
		}
	}
}

// replicaProblems counts the problems of a rule's replica Regions.
func replicaProblems(r RuleStatus) int {
	n := 0
	for _, rs := range r.Replicas {
		n += len(rs.Problems)
	}
	return n
}

func sinceOrUnknown(now, t time.Time) string {
	if t.IsZero() {
		return "an unknown time"
	}
	return t.UTC().Format(time.RFC3339) + " (" + since(now, t) + ")"
}

// WriteStatusJSON writes the report as indented JSON.
func WriteStatusJSON(env *Env, rep *StatusReport) error {
	enc := json.NewEncoder(env.out())
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// WriteStatusTable writes the report as a table for people, then each unhealthy rule's
// problems. A replicated secret's rule is followed by one row per replica Region ("↳
// eu-west-1"): that Region's rule (ECR column) and whether its replica holds the primary's
// current version (REPLICA column, shown when some rule has replicas).
func WriteStatusTable(env *Env, rep *StatusReport) error {
	now := env.now()
	replicated := slices.ContainsFunc(rep.Rules, func(r RuleStatus) bool { return len(r.Replicas) > 0 || r.PrimaryRegion != "" })
	header := []string{"PREFIX", "UPSTREAM", "SECRET", "KIND", "ROTATION", "LAST ROTATION", "NEXT", "EXPIRES", "PULLS LEFT", "PENDING", "ECR", "HEALTH"}
	if replicated {
		header = slices.Insert(header, len(header)-1, "REPLICA")
	}
	t := &table{header: header}
	row := func(replica string, cells ...string) {
		if replicated {
			cells = slices.Insert(cells, len(cells)-1, replica)
		}
		t.add(cells...)
	}
	for _, r := range rep.Rules {
		kind := "hand-made"
		if r.Managed {
			kind = "managed"
		}
		if r.SecretARN == "" {
			kind = "-"
		}
		rot := "off"
		if r.Rotation {
			rot = "on"
			if r.Schedule != "" {
				rot = r.Schedule
			}
		}
		last := "-"
		if r.LastRotated != nil {
			last = r.LastRotated.UTC().Format("2006-01-02 15:04")
		}
		if r.LastOutcome != "" {
			last += " " + r.LastOutcome
		}
		next := "-"
		if r.NextRotation != nil {
			next = r.NextRotation.UTC().Format("2006-01-02")
		}
		exp := "-"
		if r.DaysToExpiry != nil {
			exp = strconv.Itoa(*r.DaysToExpiry) + "d"
		}
		pulls := "-"
		if r.PullsRemaining != "" {
			pulls = r.PullsRemaining
		}
		pending := "-"
		if r.PendingVersion != "" {
			pending = "age unknown"
			if r.PendingSince != nil {
				pending = since(now, *r.PendingSince)
			}
		}
		valid := "-"
		if r.Valid != nil {
			valid = "valid"
			if !*r.Valid {
				valid = "INVALID"
			}
		}
		health := "ok"
		if len(r.Problems) > 0 {
			health = fmt.Sprintf("%d problem(s)", len(r.Problems))
		}
		if n := replicaProblems(r); n > 0 {
			// The rule's own row says its replica Regions need a look too.
			here := ""
			if len(r.Problems) > 0 {
				here = health + ", "
			}
			health = fmt.Sprintf("%s%d in replica Regions", here, n)
		}
		replica := "-"
		switch {
		case r.PrimaryRegion != "":
			replica = "replica of " + r.PrimaryRegion
			rot = "in " + r.PrimaryRegion
		case len(r.Replicas) > 0:
			replica = fmt.Sprintf("primary, %d replica(s)", len(r.Replicas))
		}
		row(replica, r.Prefix, r.Upstream, r.Secret, kind, rot, last, next, exp, pulls, pending, valid, health)
		for _, rs := range r.Replicas {
			health := "ok"
			if !rs.Healthy() {
				health = fmt.Sprintf("%d problem(s)", len(rs.Problems))
			}
			rexp := "-"
			if rs.HoldsCurrent {
				rexp = exp // the same version, so the same token
			}
			row(rs.replicaCell(), "↳ "+rs.Region, "", "", "replica", "with primary", "-", "-", rexp, "-", "-", rs.ruleCell(), health)
		}
	}
	if _, err := fmt.Fprint(env.out(), t.String()); err != nil {
		return err
	}
	for _, r := range rep.Rules {
		for _, p := range r.Problems {
			fmt.Fprintf(env.out(), "✘ %s: %s\n", r.Prefix, p)
		}
		for _, rs := range r.Replicas {
			for _, p := range rs.Problems {
				fmt.Fprintf(env.out(), "✘ %s ↳ %s: %s\n", r.Prefix, rs.Region, p)
			}
		}
	}
	_, err := fmt.Fprintf(env.out(), "%d rule(s), %d unhealthy\n", len(rep.Rules), rep.Unhealthy)
	return err
}
