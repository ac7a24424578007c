package operator

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/ptc-credentials/ptc-credentials/internal/kit"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/rotation"
)

// PollEvery is how often rotate reads the secret while it follows a rotation.
const PollEvery = 2 * time.Second

// Rotate starts a rotation of secret (name or ARN) with RotateSecret and follows it, a line per
// observed step with its time, until AWSCURRENT moves to the new version (true), the rotator
// records a failure or the version is dropped (false, with the rotator's error), or timeout.
//
// A replica (the secret in a replica Region, by name there or by its ARN) is refused: rotation
// runs in the primary only. After the promotion of a replicated secret, rotate follows each
// replica Region until its replica holds the new version, and reports false if one fails or
// does not within the timeout.
func Rotate(ctx context.Context, env *Env, secret string, timeout time.Duration) (bool, error) {
	region := env.Region
	if r, _, _ := arnParts(secret); r != "" {
		region = r
	}
	d, err := env.SMIn(region).DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(secret)})
	if err != nil {
		return false, fmt.Errorf("describing %s: %w", secret, err)
	}
	if primary := replicaOf(d, region); primary != "" {
		return false, fmt.Errorf("secret %s in %s is a replica of the one in %s: rotation runs in the primary only, and the replicas receive the new version from it; run ptc rotate %s --region %s",
			aws.ToString(d.Name), region, primary, aws.ToString(d.Name), primary)
	}
	if region != env.Region {
		return false, fmt.Errorf("secret %s is in %s, not %s: run ptc rotate %s --region %s", aws.ToString(d.Name), region, env.Region, aws.ToString(d.Name), region)
	}
	if aws.ToString(d.RotationLambdaARN) == "" {
		return false, fmt.Errorf("secret %s has no rotation function: adopt it first (ptc adopt <ecr-prefix> --source-secret …)", aws.ToString(d.Name))
	}
	if p := stuckPending(d.VersionIdsToStages); p != "" {
		env.line("version %s is already AWSPENDING: Secrets Manager refuses a new rotation until it finishes; ptc doctor %s shows why it is stuck", p, aws.ToString(d.Name))
	}
	out, err := env.SM.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: d.ARN, RotateImmediately: aws.Bool(true)})
	if err != nil {
		return false, fmt.Errorf("RotateSecret %s: %w", aws.ToString(d.Name), err)
	}
	return env.follow(ctx, aws.ToString(d.ARN), aws.ToString(d.Name), aws.ToString(out.VersionId), versionWith(d.VersionIdsToStages, ptcsecret.StageCurrent), timeout)
}

// line prints one progress line with the time.
func (e *Env) line(format string, args ...any) {
	fmt.Fprintf(e.out(), "%s  %s\n", e.now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// follow polls the secret until version becomes AWSCURRENT, fails or times out.
func (e *Env) follow(ctx context.Context, arn, name, version, oldCurrent string, timeout time.Duration) (bool, error) {
	start := e.now()
	e.line("rotation of %s started: new version %s (AWSCURRENT is %s)", name, version, orNone(oldCurrent))
	lastFacts := ""
	pendingSeen, testedSeen := false, false
	for {
		d, err := e.SM.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)})
		if err != nil {
			return false, fmt.Errorf("describing %s: %w", name, err)
		}
		tags := tagMap(d)
		stages, present := d.VersionIdsToStages[version]
		switch {
		case slices.Contains(stages, ptcsecret.StageCurrent):
			detail := ""
			if f := readFacts(d); f.expires != nil {
				detail = "; the new token expires " + f.expires.UTC().Format(time.RFC3339)
			}
			e.line("finishSecret: AWSCURRENT moved to %s (AWSPREVIOUS is %s)%s", version, orNone(oldCurrent), detail)
			if len(replicaRegions(d)) == 0 {
				return true, nil
			}
			return e.followReplicas(ctx, arn, name, version, start.Add(timeout))
		case present && slices.Contains(stages, ptcsecret.StagePending) && !pendingSeen:
			pendingSeen = true
			e.line("version %s is AWSPENDING: the rotator mints, checks and tests the new token", version)
		}
		// testSecret's mark is the one step between AWSPENDING and the promotion that leaves a
		// trace on the secret: the new token logged in to the registry.
		if present && !testedSeen && tags[ptcsecret.TagTestedVersion] == version && !slices.Contains(stages, ptcsecret.StageCurrent) {
			testedSeen = true
			e.line("testSecret: the new token logged in to the registry (the rotator marked version %s as tested)", version)
		}
		if f := tags[rotation.TagLastFailure]; f != lastFacts {
			lastFacts = f
			when, step, _ := strings.Cut(f, " ")
			t, perr := time.Parse(time.RFC3339, when)
			if perr == nil && !t.Before(start.Truncate(time.Second)) {
				e.line("%s failed: %s", step, tags[rotation.TagLastError])
				e.line("AWSCURRENT is still %s and still works; Secrets Manager retries the rotation. Fix the cause (ptc doctor %s), then ptc rotate again", orNone(oldCurrent), name)
				return false, nil
			}
		}
		if pendingSeen && !present {
			e.line("version %s was dropped before it became AWSCURRENT: the rotation was cancelled or replaced", version)
			return false, nil
		}
		if e.now().Sub(start) >= timeout {
			e.line("still not AWSCURRENT after %s: the rotation may be retrying; ptc status and ptc doctor show where it stands", kit.Truncate(timeout.String(), 20))
			return false, nil
		}
		if err := e.sleep(ctx, PollEvery); err != nil {
			return false, err
		}
	}
}

// followReplicas polls the primary's ReplicationStatus and each replica until every replica
// Region holds version (true), one reports Failed (false, with the service's reason), or
// deadline (false): after a rotation the replicas are where ECR reads the new token in their
// Regions, and the old one is revoked at the next rotation.
func (e *Env) followReplicas(ctx context.Context, arn, name, version string, deadline time.Time) (bool, error) {
	done := map[string]bool{}
	for {
		d, err := e.SM.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)})
		if err != nil {
			return false, fmt.Errorf("describing %s: %w", name, err)
		}
		pending := 0
		for _, rs := range replicaRegions(d) {
			region := aws.ToString(rs.Region)
			if done[region] {
				continue
			}
			if rs.Status == smtypes.StatusTypeFailed {
				e.line("replica %s: replication Failed (%s); ECR there keeps reading the replica's old version, whose token a later rotation revokes: fix it now (ptc doctor <prefix> checks each Region; docs/operations.md, \"A replica Region is Failed\")",
					region, orNone(kit.Truncate(aws.ToString(rs.StatusMessage), 200)))
				return false, nil
			}
			rd, err := e.SMIn(region).DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(replicaARN(arn, region))})
			if err == nil && slices.Contains(rd.VersionIdsToStages[version], ptcsecret.StageCurrent) {
				done[region] = true
				e.line("replica %s holds the new version as AWSCURRENT (%s)", region, rs.Status)
				continue
			}
			pending++
		}
		if pending == 0 {
			return true, nil
		}
		if !e.now().Before(deadline) {
			e.line("%d replica Region(s) do not hold the new version yet; ptc status shows where each stands", pending)
			return false, nil
		}
		if err := e.sleep(ctx, PollEvery); err != nil {
			return false, err
		}
	}
}

func orNone(v string) string {
	if v == "" {
		return "none"
	}
	return v
}
