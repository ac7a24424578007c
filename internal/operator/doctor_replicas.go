package operator

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/ptc-credentials/ptc-credentials/internal/kit"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
)

// retryReplication is the fix for a replica that failed, is missing or stopped receiving
// versions: Secrets Manager's own troubleshooting advice, in this secret's terms.
func retryReplication(region string) string {
	return "fix the cause the status message names (a secret of the same name already in " + region +
		": check that nothing uses it, then let the retry overwrite it; a KMS key: a pull-through cache secret uses aws/secretsmanager in every Region), then retry the replication: " +
		"Secrets Manager console, the primary secret, Replicate secret, Retry replication; or remove " + region + " from the resource's ReplicaRegions, update the stack, and add it back (docs/operations.md, \"A replica Region is Failed\")"
}

func regionOf(arn string) string {
	r, _, _ := arnParts(arn)
	return r
}

// checkReplicas: for a managed primary with replicas, per replica Region the replica (InSync,
// holding the primary's AWSCURRENT), the Region's rule (there, pointing at the replica) and
// ECR's validation in that Region.
func (d *doctor) checkReplicas(ctx context.Context) {
	if d.tags[ptcsecret.TagUpstream] == "" {
		return
	}
	prefix := aws.ToString(d.rule.EcrRepositoryPrefix)
	rr := newRegionRules(d.env)
	for _, rs := range replicaRegions(d.secret) {
		r := d.env.replicaStatus(ctx, rr, prefix, d.secret, rs, d.env.now())
		d.replicaChecks(r)
	}
}

func (d *doctor) replicaChecks(r ReplicaStatus) {
	now := d.env.now()
	name := "replica " + r.Region
	switch {
	case r.Replication == string(smtypes.StatusTypeFailed):
		d.fail(name, retryReplication(r.Region), "replication Failed: %s; ECR in %s reads the replica's last value, which a later rotation revokes",
			orNone(r.StatusMessage), r.Region)
	case r.noReplica:
		d.fail(name, retryReplication(r.Region), "the replica %s does not exist in %s (replication %s)", r.SecretARN, r.Region, orNone(r.Replication))
	case r.replicaErr != nil:
		d.fail(name, "check that you may call secretsmanager:DescribeSecret in "+r.Region, "%s", kit.Truncate(r.replicaErr.Error(), 300))
	case r.HoldsCurrent:
		d.pass(name, "%s, holds AWSCURRENT %s like the primary", r.Replication, r.CurrentVersion)
	case r.CatchingUp:
		d.pass(name, "%s, catching up: holds AWSCURRENT %s, the primary %s (it changed %s)", r.Replication, orNone(r.CurrentVersion), orNone(r.primaryCurrent), since(now, r.primaryChanged))
	default:
		d.fail(name, retryReplication(r.Region), "%s, but holds AWSCURRENT %s while the primary's is %s, and the primary changed %s",
			orNone(r.Replication), orNone(r.CurrentVersion), orNone(r.primaryCurrent), sinceOrUnknown(now, r.primaryChanged))
	}
	prefix := aws.ToString(d.rule.EcrRepositoryPrefix)
	name = "rule in " + r.Region
	switch {
	case r.ruleErr != nil:
		d.fail(name, "check the credentials and that you may call ecr:DescribePullThroughCacheRules in "+r.Region, "%s", kit.Truncate(r.ruleErr.Error(), 300))
		return
	case !r.Rule:
		d.fail(name, "update the stack (the provisioner creates the rule of every replica Region), or: aws ecr create-pull-through-cache-rule --region "+r.Region+
			" --ecr-repository-prefix "+prefix+" --upstream-registry "+string(d.rule.UpstreamRegistry)+" --upstream-registry-url "+aws.ToString(d.rule.UpstreamRegistryUrl)+" --credential-arn "+r.SecretARN,
			"no pull-through cache rule with prefix %q in %s", prefix, r.Region)
		return
	case r.RuleCredentialARN != r.SecretARN:
		d.fail(name, "aws ecr update-pull-through-cache-rule --region "+r.Region+" --ecr-repository-prefix "+prefix+" --credential-arn "+r.SecretARN,
			"the rule points at %s, not at the replica %s (ECR reads only secrets of its own Region)", orNone(r.RuleCredentialARN), r.SecretARN)
	default:
		d.pass(name, "%s → the replica %s", prefix, r.SecretARN)
	}
	name = "ECR validation in " + r.Region
	switch {
	case r.validationErr != nil:
		d.fail(name, "check that you may call ecr:ValidatePullThroughCacheRule in "+r.Region, "%s", kit.Truncate(r.validationErr.Error(), 300))
	case r.Valid != nil && !*r.Valid:
		d.fail(name, "fix the ✘ above for "+r.Region+"; ECR there logs in with the replica's AWSCURRENT exactly as stored", "%s", kit.Truncate(r.ValidationFailure, 400))
	case r.Valid != nil:
		d.pass(name, "IsValid")
	}
}

// checkIsReplica: for a secret that is the replica of a primary in another Region, the
// primary's view of this Region (ReplicationStatus) and whether this replica holds the
// primary's AWSCURRENT. Reports the primary Region, where rotation runs.
func (d *doctor) checkIsReplica(ctx context.Context, primary string) {
	const name = "replica"
	here := regionOf(aws.ToString(d.secret.ARN))
	primaryARN := replicaARN(aws.ToString(d.secret.ARN), primary)
	p, err := d.env.SMIn(primary).DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(primaryARN)})
	if err != nil {
		d.fail(name, "check that you may call secretsmanager:DescribeSecret in "+primary, "a replica of %s, whose primary cannot be described: %s", primary, kit.Truncate(err.Error(), 300))
		return
	}
	i := slices.IndexFunc(p.ReplicationStatus, func(rs smtypes.ReplicationStatusType) bool { return aws.ToString(rs.Region) == here })
	if i < 0 {
		d.fail(name, "the primary no longer replicates here: the rule in "+here+" reads a secret nothing updates; update the stack to replicate to "+here+" again, or point the rule at a secret of its own",
			"a replica of %s, which does not list %s among its replicas", primary, here)
		return
	}
	rs := p.ReplicationStatus[i]
	mine := versionWith(d.secret.VersionIdsToStages, ptcsecret.StageCurrent)
	theirs := versionWith(p.VersionIdsToStages, ptcsecret.StageCurrent)
	detail := fmt.Sprintf("a replica of %s (replication %s); rotation runs there: ptc doctor %s --region %s checks it", primary, rs.Status, aws.ToString(d.rule.EcrRepositoryPrefix), primary)
	switch {
	case rs.Status == smtypes.StatusTypeFailed:
		d.fail(name, retryReplication(here), "%s; Failed: %s", detail, orNone(kit.Truncate(aws.ToString(rs.StatusMessage), 300)))
	case mine != theirs && !(p.LastChangedDate != nil && d.env.now().Sub(*p.LastChangedDate) < ReplicaCatchUp):
		d.fail(name, retryReplication(here), "%s; holds AWSCURRENT %s while the primary's is %s", detail, orNone(mine), orNone(theirs))
	default:
		if mine == theirs {
			detail += "; holds the primary's AWSCURRENT"
		} else {
			detail += "; catching up with the primary's AWSCURRENT " + theirs
		}
		d.pass(name, "%s", strings.TrimSpace(detail))
	}
}
