package operator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/ptc-credentials/ptc-credentials/internal/kit"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
)

// A replicated managed secret (Custom::PullThroughCache ReplicaRegions) is one primary, where
// rotation runs, and a read-only replica in each replica Region, where a rule with the same
// repository prefix points at the replica's ARN: ECR reads only secrets of its own Region. A
// replica Region is healthy when Secrets Manager reports its replication InSync, the replica
// holds the primary's AWSCURRENT version, and its rule exists, points at the replica and passes
// ECR's validation there.

// ReplicaCatchUp is how long after the primary last changed a replica may still lack the
// primary's AWSCURRENT version without status calling it a problem: Secrets Manager replicates
// within seconds, and a rotation that just finished is not an incident.
const ReplicaCatchUp = 5 * time.Minute

// ReplicaStatus is one replica Region of a managed secret, as `ptc status` reports it.
type ReplicaStatus struct {
	Region    string `json:"region"`
	SecretARN string `json:"credentialArn"`
	// Replication is the primary's ReplicationStatus for the Region: InSync, InProgress or
	// Failed; StatusMessage is the service's reason, when it gives one.
	Replication   string `json:"replicationStatus"`
	StatusMessage string `json:"statusMessage,omitempty"`
	// CurrentVersion is the replica's AWSCURRENT version; HoldsCurrent says it is the primary's.
	CurrentVersion string `json:"currentVersion,omitempty"`
	HoldsCurrent   bool   `json:"holdsCurrentVersion"`
	// CatchingUp: the replica lacks the current version, but the primary changed less than
	// ReplicaCatchUp ago and replication is not Failed.
	CatchingUp bool `json:"catchingUp,omitempty"`
	// Rule says a rule with the primary rule's prefix exists in the Region; RuleCredentialARN
	// is the secret it points at (the replica's ARN when healthy).
	Rule              bool   `json:"rule"`
	RuleCredentialARN string `json:"ruleCredentialArn,omitempty"`
	Valid             *bool  `json:"valid,omitempty"`
	ValidationFailure string `json:"validationFailure,omitempty"`
	// Problems say what is unhealthy in this Region and what to do; empty means healthy.
	Problems []string `json:"problems"`

	// What went wrong reading the Region, for the doctor's checks.
	noReplica                          bool
	replicaErr, ruleErr, validationErr error
	primaryCurrent                     string
	primaryChanged                     time.Time
}

// Healthy reports whether nothing is wrong in the replica Region.
func (r ReplicaStatus) Healthy() bool { return len(r.Problems) == 0 }

// replicaARN is the ARN of a secret's replica in region: the same account, name and suffix.
func replicaARN(primaryARN, region string) string {
	parts := strings.SplitN(primaryARN, ":", 5)
	if len(parts) != 5 {
		return primaryARN
	}
	parts[3] = region
	return strings.Join(parts, ":")
}

// replicaRegions lists the replica Regions of a primary's DescribeSecret, in its order.
func replicaRegions(d *secretsmanager.DescribeSecretOutput) []smtypes.ReplicationStatusType {
	var out []smtypes.ReplicationStatusType
	for _, rs := range d.ReplicationStatus {
		if aws.ToString(rs.Region) != "" {
			out = append(out, rs)
		}
	}
	return out
}

// replicaOf returns the primary Region of a secret that is a replica in region, or "".
func replicaOf(d *secretsmanager.DescribeSecretOutput, region string) string {
	p := aws.ToString(d.PrimaryRegion)
	if p == "" {
		return ""
	}
	if r, _, _ := arnParts(aws.ToString(d.ARN)); r != "" {
		region = r
	}
	if p == region {
		return ""
	}
	return p
}

// regionRules are the pull-through cache rules of the Regions a run looks at, each Region
// listed once however many rules have a replica there: status over N replicated rules costs one
// listing per replica Region, not one per rule.
type regionRules struct {
	env *Env
	mu  sync.Mutex
	by  map[string]*regionRuleList
}

type regionRuleList struct {
	once  sync.Once
	rules map[string]ecrtypes.PullThroughCacheRule // by prefix
	err   error
}

func newRegionRules(env *Env) *regionRules {
	return &regionRules{env: env, by: map[string]*regionRuleList{}}
}

// rule returns the rule with prefix in region, whether there is one, or the listing's error.
func (rr *regionRules) rule(ctx context.Context, region, prefix string) (ecrtypes.PullThroughCacheRule, bool, error) {
	rr.mu.Lock()
	l, ok := rr.by[region]
	if !ok {
		l = &regionRuleList{}
		rr.by[region] = l
	}
	rr.mu.Unlock()
	l.once.Do(func() {
		rules, err := rr.env.rulesIn(ctx, region)
		if err != nil {
			l.err = err
			return
		}
		l.rules = make(map[string]ecrtypes.PullThroughCacheRule, len(rules))
		for _, r := range rules {
			l.rules[aws.ToString(r.EcrRepositoryPrefix)] = r
		}
	})
	if l.err != nil {
		return ecrtypes.PullThroughCacheRule{}, false, l.err
	}
	r, ok := l.rules[prefix]
	return r, ok, nil
}

// replicaStatus checks one replica Region of the primary secret d, whose rule in the home
// Region has prefix: the replica's DescribeSecret, the Region's rule (from the listing rr
// shares) and ECR's validation there, three calls at most, two with no rule.
func (env *Env) replicaStatus(ctx context.Context, rr *regionRules, prefix string, d *secretsmanager.DescribeSecretOutput, rs smtypes.ReplicationStatusType, now time.Time) ReplicaStatus {
	region := aws.ToString(rs.Region)
	arn := replicaARN(aws.ToString(d.ARN), region)
	name := aws.ToString(d.Name)
	r := ReplicaStatus{Region: region, SecretARN: arn, Replication: string(rs.Status), StatusMessage: kit.Truncate(aws.ToString(rs.StatusMessage), 300), Problems: []string{}}
	problem := func(format string, args ...any) { r.Problems = append(r.Problems, fmt.Sprintf(format, args...)) }
	primaryCurrent := versionWith(d.VersionIdsToStages, ptcsecret.StageCurrent)
	r.primaryCurrent, r.primaryChanged = primaryCurrent, aws.ToTime(d.LastChangedDate)
	recent := d.LastChangedDate != nil && now.Sub(*d.LastChangedDate) < ReplicaCatchUp
	if rs.Status == smtypes.StatusTypeFailed {
		msg := r.StatusMessage
		if msg == "" {
			msg = "no reason given"
		}
		problem("replication to %s failed (%s): pulls there use the replica's last value, which a later rotation revokes; fix the cause, then retry the replication (docs/operations.md, \"A replica Region is Failed\")", region, msg)
	}
	rd, err := env.SMIn(region).DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)})
	var nf *smtypes.ResourceNotFoundException
	switch {
	case errors.As(err, &nf):
		r.noReplica = true
		problem("the replica %s does not exist in %s: the rule there has nothing to read; retry the replication (docs/operations.md, \"A replica Region is Failed\")", name, region)
	case err != nil:
		r.replicaErr = err
		problem("the replica in %s cannot be described: %s", region, kit.Truncate(err.Error(), 200))
	default:
		r.CurrentVersion = versionWith(rd.VersionIdsToStages, ptcsecret.StageCurrent)
		r.HoldsCurrent = primaryCurrent != "" && r.CurrentVersion == primaryCurrent
		switch {
		case r.HoldsCurrent:
		case rs.Status != smtypes.StatusTypeFailed && recent:
			r.CatchingUp = true
		case rs.Status != smtypes.StatusTypeFailed:
			problem("the replica in %s holds AWSCURRENT %s, not the primary's %s, and the primary changed %s: replication is stuck (docs/operations.md, \"A replica Region is Failed\")",
				region, orNone(r.CurrentVersion), orNone(primaryCurrent), sinceOrUnknown(now, aws.ToTime(d.LastChangedDate)))
		}
	}
	rule, ok, err := rr.rule(ctx, region, prefix)
	switch {
	case err != nil:
		r.ruleErr = err
		problem("the rules in %s cannot be listed: %s", region, kit.Truncate(err.Error(), 200))
		return r
	case !ok:
		problem("no pull-through cache rule %s in %s: pulls through %s find no cache rule; update the stack (the provisioner creates one rule per Region) or create it pointing at %s", prefix, region, region, arn)
		return r
	}
	r.Rule = true
	r.RuleCredentialARN = aws.ToString(rule.CredentialArn)
	if r.RuleCredentialARN != arn {
		problem("the rule %s in %s points at %s, not at the replica %s: ECR there reads another secret (aws ecr update-pull-through-cache-rule --region %s --ecr-repository-prefix %s --credential-arn %s)",
			prefix, region, orNone(r.RuleCredentialARN), arn, region, prefix, arn)
	}
	v, err := env.ECRIn(region).ValidatePullThroughCacheRule(ctx, &ecr.ValidatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String(prefix)})
	switch {
	case err != nil:
		r.validationErr = err
		problem("ECR in %s could not validate the rule: %s", region, kit.Truncate(err.Error(), 200))
	default:
		ok := v.IsValid
		r.Valid = &ok
		r.ValidationFailure = kit.Truncate(aws.ToString(v.Failure), 300)
		if !ok {
			problem("ECR's validation in %s failed: %s (ptc doctor %s shows every check there)", region, r.ValidationFailure, prefix)
		}
	}
	return r
}

// replicaCell is what the table's REPLICA column says about one replica Region.
func (r ReplicaStatus) replicaCell() string {
	state := r.Replication
	if state == "" {
		state = "unknown"
	}
	switch {
	case r.HoldsCurrent:
		return state + ", current"
	case r.CatchingUp:
		return state + ", catching up"
	case r.CurrentVersion != "":
		return state + ", BEHIND"
	}
	return state + ", NO REPLICA"
}

// ruleCell is what the table's ECR column says about one replica Region's rule.
func (r ReplicaStatus) ruleCell() string {
	switch {
	case !r.Rule:
		return "NO RULE"
	case r.RuleCredentialARN != r.SecretARN:
		return "WRONG ARN"
	case r.Valid == nil:
		return "-"
	case !*r.Valid:
		return "INVALID"
	}
	return "valid"
}

// sortReplicas orders a rule's replicas by Region, so that the output is stable.
func sortReplicas(rs []ReplicaStatus) {
	slices.SortFunc(rs, func(a, b ReplicaStatus) int { return strings.Compare(a.Region, b.Region) })
}
