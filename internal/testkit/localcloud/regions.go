package localcloud

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
)

// replicaWaitLimit bounds how long the scenario waits for a replica to hold a version the
// primary just promoted; the cloud's lag is a second, so reaching it means replication broke.
const replicaWaitLimit = 30 * time.Second

// replicaARN is the ARN of secretARN's replica in region: a replica keeps the primary's name
// and random suffix, in its own Region.
func replicaARN(secretARN, region string) string {
	parts := strings.SplitN(secretARN, ":", 5)
	if len(parts) < 5 {
		return secretARN
	}
	parts[3] = region
	return strings.Join(parts, ":")
}

// replicated reports whether the row's secret has replicas.
func (s *scenario) replicated() bool { return len(s.reg.ReplicaRegions) > 0 }

// checkRegions checks, after Create, what every replica Region holds: Create's answer lists it,
// its rule points at the secret ARN of its own Region, and its replica holds AWSCURRENT.
func (s *scenario) checkRegions(ctx context.Context, ans Answer) error {
	s.res.Regions = append([]string{s.c.Region}, s.reg.ReplicaRegions...)
	if got := ans.Data["Regions"]; got != strings.Join(s.res.Regions, ",") {
		return fmt.Errorf("the Create answer's Data.Regions is %q, want %q", got, strings.Join(s.res.Regions, ","))
	}
	s.more("description          %q", s.props["Description"])
	for _, region := range s.reg.ReplicaRegions {
		want := replicaARN(s.res.SecretARN, region)
		if !slices.Contains(strings.Split(ans.Data["ReplicaSecretArns"], ","), want) {
			return fmt.Errorf("the Create answer's Data.ReplicaSecretArns (%s) lacks %s", ans.Data["ReplicaSecretArns"], want)
		}
		rule, err := s.ruleIn(ctx, region)
		if err != nil {
			return err
		}
		if got := aws.ToString(rule.CredentialArn); got != want {
			return fmt.Errorf("the rule %s in %s reads %s, not its Region's replica %s", s.reg.Prefix, region, got, want)
		}
		s.more("%-20s %s -> replica %s", "rule in "+region, s.reg.Prefix, shortARN(want))
	}
	return nil
}

// ruleIn returns the row's pull-through cache rule in region.
func (s *scenario) ruleIn(ctx context.Context, region string) (ecrtypes.PullThroughCacheRule, error) {
	out, err := s.c.ECRIn(region).DescribePullThroughCacheRules(ctx, &ecr.DescribePullThroughCacheRulesInput{EcrRepositoryPrefixes: []string{s.reg.Prefix}})
	if err != nil {
		return ecrtypes.PullThroughCacheRule{}, fmt.Errorf("the rule %s in %s: %w", s.reg.Prefix, region, err)
	}
	if len(out.PullThroughCacheRules) != 1 {
		return ecrtypes.PullThroughCacheRule{}, fmt.Errorf("%d rules %s in %s", len(out.PullThroughCacheRules), s.reg.Prefix, region)
	}
	return out.PullThroughCacheRules[0], nil
}

// waitReplicas waits until every replica holds version as AWSCURRENT and returns how long that
// took (the longest Region). Secrets Manager replicates after answering; nothing else tells.
func (s *scenario) waitReplicas(ctx context.Context, version string) (time.Duration, error) {
	t0 := time.Now()
	for _, region := range s.reg.ReplicaRegions {
		for {
			cur, status, err := s.replicaCurrent(ctx, region)
			if err != nil {
				return 0, err
			}
			if cur == version {
				break
			}
			if status == string(smtypes.StatusTypeFailed) {
				return 0, fmt.Errorf("replication to %s failed", region)
			}
			if time.Since(t0) > replicaWaitLimit {
				return 0, fmt.Errorf("the replica in %s still holds %s as AWSCURRENT after %s, not %s", region, s.gen(cur), FormatDuration(replicaWaitLimit), s.gen(version))
			}
			select {
			case <-ctx.Done():
				return 0, ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return time.Since(t0), nil
}

// replicaCurrent returns the version the replica in region holds as AWSCURRENT, and the
// primary's replication status for that Region.
func (s *scenario) replicaCurrent(ctx context.Context, region string) (current, status string, err error) {
	d, err := s.c.SMIn(region).DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(replicaARN(s.res.SecretARN, region))})
	if err != nil {
		return "", "", fmt.Errorf("the replica in %s: %w", region, err)
	}
	for v, st := range d.VersionIdsToStages {
		if slices.Contains(st, ptcsecret.StageCurrent) {
			current = v
		}
	}
	p, err := s.c.SM.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(s.res.SecretARN)})
	if err != nil {
		return "", "", fmt.Errorf("DescribeSecret: %w", err)
	}
	for _, r := range p.ReplicationStatus {
		if aws.ToString(r.Region) == region {
			status = string(r.Status)
		}
	}
	return current, status, nil
}

// noteReplicas waits for the replicas after a promotion of version and narrates it.
func (s *scenario) noteReplicas(ctx context.Context, version string) error {
	wait, err := s.waitReplicas(ctx, version)
	if err != nil {
		return err
	}
	s.res.ReplicaWaits = append(s.res.ReplicaWaits, wait)
	s.more("replicas             %s hold %s as AWSCURRENT %s after (lag %s)", strings.Join(s.reg.ReplicaRegions, ", "), s.gen(version),
		FormatDuration(wait), FormatDuration(s.c.ReplicationLag))
	return nil
}

// noteOrgTokens narrates how many organization access tokens the organization holds.
func (s *scenario) noteOrgTokens() {
	if s.reg.Org == "" {
		return
	}
	s.res.PeakOrgTokens = s.reg.Emulator.PeakOrgTokens()
	s.more("organization         %s holds %d organization access token(s), at most %d so far (Team cap %d)",
		s.reg.Org, s.reg.Emulator.OrgTokens(), s.res.PeakOrgTokens, 10)
}

// validateRegions has ECR validate the rule in every replica Region (the home one is done).
func (s *scenario) validateRegions(ctx context.Context) error {
	for _, region := range s.reg.ReplicaRegions {
		t0 := time.Now()
		out, err := s.c.ECRIn(region).ValidatePullThroughCacheRule(ctx, &ecr.ValidatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String(s.reg.Prefix)})
		if err != nil {
			return fmt.Errorf("ValidatePullThroughCacheRule in %s: %w", region, err)
		}
		s.say(t0, "ECR in %s ValidatePullThroughCacheRule %s: IsValid=%v (read its Region's replica)", region, s.reg.Prefix, out.IsValid)
		if !out.IsValid {
			return fmt.Errorf("ECR in %s says the rule is not valid: %s", region, aws.ToString(out.Failure))
		}
	}
	return nil
}

// goneInRegions checks that Delete left no rule and no replica in any replica Region.
func (s *scenario) goneInRegions(ctx context.Context) []string {
	var problems []string
	for _, region := range s.reg.ReplicaRegions {
		_, err := s.c.ECRIn(region).DescribePullThroughCacheRules(ctx, &ecr.DescribePullThroughCacheRulesInput{EcrRepositoryPrefixes: []string{s.reg.Prefix}})
		var noRule *ecrtypes.PullThroughCacheRuleNotFoundException
		ruleGone := errors.As(err, &noRule)
		_, err2 := s.c.SMIn(region).DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(replicaARN(s.res.SecretARN, region))})
		var noSecret *smtypes.ResourceNotFoundException
		replicaGone := errors.As(err2, &noSecret)
		s.more("in %-17s rule gone: %v, replica gone: %v", region, ruleGone, replicaGone)
		if !ruleGone {
			problems = append(problems, fmt.Sprintf("the rule %s in %s is still there (err %v)", s.reg.Prefix, region, err))
		}
		if !replicaGone {
			problems = append(problems, fmt.Sprintf("the replica in %s is still there (err %v)", region, err2))
		}
	}
	return problems
}

// shortARN keeps an ARN's Region and name, enough to tell replicas apart in the narrative.
func shortARN(arn string) string {
	parts := strings.SplitN(arn, ":", 7)
	if len(parts) < 7 {
		return arn
	}
	return parts[3] + ":…:secret:" + parts[6]
}
