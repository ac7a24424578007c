package provision

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
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
)

// DefaultReplicaWait is how long a request waits, at most, for its replicas to hold the
// primary's AWSCURRENT version and the protecting policy. Secrets Manager replicates within
// seconds as a rule; two minutes leave room for a slow Region and still fit the provisioner's
// 300 s timeout with the rest of a Create.
const DefaultReplicaWait = 120 * time.Second

// Pacing of the replica polls: the first wait, and the cap each doubling stops at.
const (
	replicaPollFirst = time.Second
	replicaPollMax   = 8 * time.Second
)

// replicaRegions are the Regions a primary's ReplicationStatus lists (any status), in its order.
func replicaRegions(secret *secretsmanager.DescribeSecretOutput) []string {
	var out []string
	for _, s := range secret.ReplicationStatus {
		out = append(out, aws.ToString(s.Region))
	}
	return out
}

// replicationStatus is the primary's status entry for region (nil when it lists none).
func replicationStatus(secret *secretsmanager.DescribeSecretOutput, region string) *smtypes.ReplicationStatusType {
	for i, s := range secret.ReplicationStatus {
		if aws.ToString(s.Region) == region {
			return &secret.ReplicationStatus[i]
		}
	}
	return nil
}

// isOurReplica reports whether d, read in region, is the replica of primaryARN: it names the home
// Region as its primary and carries primaryARN's name and suffix. A secret that merely shares the
// name (another team's standalone secret, or one promoted away from its primary) is not.
func isOurReplica(d *secretsmanager.DescribeSecretOutput, primaryARN, home, region string) bool {
	return primaryARN != "" && aws.ToString(d.PrimaryRegion) == home && aws.ToString(d.ARN) == replicaARN(primaryARN, region)
}

// checkReplicaSlots makes sure no one else's secret holds the name in a Region about to receive a
// replica (Secrets Manager would fail that replication, or with ForceOverwriteReplicaSecret, which
// is never set here, overwrite it). primaryARN is "" while the primary does not exist yet: then
// any secret of the name there is someone else's.
func (p *Provisioner) checkReplicaSlots(ctx context.Context, name, primaryARN, home string, regions []string) error {
	for _, r := range regions {
		d, err := p.describeSecret(ctx, p.SMIn(r), name)
		if err != nil {
			return fmt.Errorf("ReplicaRegions %q: %w", r, err)
		}
		if d != nil && !isOurReplica(d, primaryARN, home, r) {
			return notOursf("ReplicaRegions %q: a secret named %s already exists in %s and is not a replica of this resource's secret; it was left untouched (choose another SecretName, or leave %s out)", r, name, r, r)
		}
	}
	return nil
}

// checkReplicaRules makes sure the rule prefix is free in every replica Region, or already ours
// there (a rule reading exactly our replica's ARN; primaryARN "" means nothing can be ours yet).
func (p *Provisioner) checkReplicaRules(ctx context.Context, prefix, primaryARN string, regions []string) error {
	for _, r := range regions {
		rule, err := p.describeRule(ctx, p.ECRIn(r), prefix)
		if err != nil {
			return fmt.Errorf("ReplicaRegions %q: %w", r, err)
		}
		if rule != nil && (primaryARN == "" || aws.ToString(rule.CredentialArn) != replicaARN(primaryARN, r)) {
			return notOursf("ReplicaRegions %q: a pull-through cache rule for EcrRepositoryPrefix %q already exists in %s (upstream %s) and is not managed by this resource; it was left untouched",
				r, prefix, r, aws.ToString(rule.UpstreamRegistryUrl))
		}
	}
	return nil
}

// ensureReplicas makes the primary replicate to every Region of want: a Region it does not list
// yet is added, one whose replication Failed is removed and added again (Secrets Manager has no
// retry call; a failure stays until then) — unless our replica there still holds the primary's
// AWSCURRENT version and the protecting policy: that Region's rule reads it, and removing it
// would break the Region's pulls for a failure (say, of a tag change) that ECR does not care
// about. Each Region is checked free first (checkReplicaSlots). It returns whether it changed
// anything.
func (p *Provisioner) ensureReplicas(ctx context.Context, secret *secretsmanager.DescribeSecretOutput, home string, want []string, log *slog.Logger) (bool, error) {
	arn := aws.ToString(secret.ARN)
	var missing, failed []string
	for _, r := range want {
		switch s := replicationStatus(secret, r); {
		case s == nil:
			missing = append(missing, r)
		case s.Status == smtypes.StatusTypeFailed:
			serving, err := p.failedButServing(ctx, arn, home, r, currentVersion(secret))
			if err != nil {
				return false, err
			}
			if serving {
				log.Warn("replication to a replica Region failed, but its replica still holds the current version and the policy: kept, so that Region's rule keeps working",
					"region", r, "status_message", kit.Truncate(aws.ToString(s.StatusMessage), 300))
				continue
			}
			failed = append(failed, r)
		}
	}
	if len(failed) > 0 {
		if err := p.removeReplicas(ctx, arn, failed); err != nil {
			return false, err
		}
		log.Info("removed failed replicas to try them again", "regions", failed)
		missing = append(missing, failed...)
	}
	if len(missing) == 0 {
		return false, nil
	}
	if err := p.checkReplicaSlots(ctx, aws.ToString(secret.Name), arn, home, missing); err != nil {
		return false, err
	}
	if _, err := p.SM.ReplicateSecretToRegions(ctx, &secretsmanager.ReplicateSecretToRegionsInput{
		SecretId: aws.String(arn), AddReplicaRegions: replicaRegionTypes(missing),
	}); err != nil {
		return false, fmt.Errorf("replicating secret %s to %s: %w", ptcsecret.NameFromARN(arn), strings.Join(missing, ", "), err)
	}
	log.Info("replicating secret", "regions", missing)
	return true, nil
}

// replicaRegionTypes are the AddReplicaRegions entries for regions: no KmsKeyId, so each replica
// uses its Region's aws/secretsmanager key, the only key ECR reads.
func replicaRegionTypes(regions []string) []smtypes.ReplicaRegionType {
	out := make([]smtypes.ReplicaRegionType, len(regions))
	for i, r := range regions {
		out[i] = smtypes.ReplicaRegionType{Region: aws.String(r)}
	}
	return out
}

// removeReplicas stops replicating the primary to regions, which deletes those replicas.
func (p *Provisioner) removeReplicas(ctx context.Context, primaryARN string, regions []string) error {
	if len(regions) == 0 {
		return nil
	}
	if _, err := p.SM.RemoveRegionsFromReplication(ctx, &secretsmanager.RemoveRegionsFromReplicationInput{
		SecretId: aws.String(primaryARN), RemoveReplicaRegions: regions,
	}); ignoreNotFound(err) != nil {
		return fmt.Errorf("removing the replicas of %s in %s: %w", ptcsecret.NameFromARN(primaryARN), strings.Join(regions, ", "), err)
	}
	return nil
}

// awaitReplicas waits until the replica in every Region of regions holds the primary's AWSCURRENT
// version and the protecting policy, and returns their ARNs in the order of regions. It fails at
// once, naming the Region, when the primary reports that Region's replication Failed, or when the
// secret there is not our replica; and after the wait budget (ReplicaWait) naming every Region
// still behind and what it lacks. Secrets Manager carries the resource policy to the replicas
// itself; a replica that holds the value but still lacks the policy halfway through the budget
// gets it put again on the primary, once (a put that raced the replica's creation).
func (p *Provisioner) awaitReplicas(ctx context.Context, primaryARN, home string, regions []string, log *slog.Logger) ([]string, error) {
	if len(regions) == 0 {
		return nil, nil
	}
	want, err := ProtectingPolicy(p.RotatorRoleARN, p.ProvisionerRoleARN)
	if err != nil {
		return nil, err
	}
	budget := p.ReplicaWait
	if budget <= 0 {
		budget = DefaultReplicaWait
	}
	sleep := kit.Sleep
	if p.Sleep != nil {
		sleep = p.Sleep
	}
	name := ptcsecret.NameFromARN(primaryARN)
	arns := make([]string, len(regions))
	done := make([]bool, len(regions))
	var waited time.Duration
	next := replicaPollFirst
	reput := false
	for {
		primary, err := p.SM.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(primaryARN)})
		if err != nil {
			return nil, fmt.Errorf("looking up secret %s: %w", name, err)
		}
		current := currentVersion(primary)
		behind := map[string]string{}
		for i, r := range regions {
			if done[i] {
				continue
			}
			st := replicationStatus(primary, r)
			switch {
			case st == nil:
				// Just asked for, or removed meanwhile: waited on like a slow Region (a read may
				// lag the write), and named if it never shows.
				behind[r] = whyNotListed
				continue
			case st.Status == smtypes.StatusTypeFailed:
				// A replica that still holds the value and the policy serves its Region (a later
				// change, say a tag, failed to reach it); one that does not fails the request.
				if why, err := p.replicaReady(ctx, primaryARN, home, r, current, want); err == nil && why == "" {
					done[i], arns[i] = true, replicaARN(primaryARN, r)
					log.Warn("replication to a replica Region failed, but its replica holds the current version and the policy", "region", r,
						"status_message", kit.Truncate(aws.ToString(st.StatusMessage), 300))
					continue
				}
				return nil, fmt.Errorf("ReplicaRegions %q: Secrets Manager could not replicate secret %s to %s: %s", r, name, r, kit.Truncate(aws.ToString(st.StatusMessage), 300))
			}
			why, err := p.replicaReady(ctx, primaryARN, home, r, current, want)
			if err != nil {
				return nil, err
			}
			if why == "" {
				done[i], arns[i] = true, replicaARN(primaryARN, r)
				continue
			}
			behind[r] = why + " (status " + string(st.Status) + ")"
			if why == whyNoPolicy && !reput && waited >= budget/2 {
				if _, err := p.protect(ctx, primaryARN, true); err != nil {
					return nil, err
				}
				reput = true
				log.Info("a replica holds the value but not the protecting policy: put it on the primary again", "region", r)
			}
		}
		if len(behind) == 0 {
			return arns, nil
		}
		d := next
		if dl, ok := ctx.Deadline(); waited+d > budget || ctx.Err() != nil || (ok && time.Until(dl)-SecretWaitMargin < d) || sleep(ctx, d) != nil {
			var parts []string
			for _, r := range regions {
				if why, ok := behind[r]; ok {
					parts = append(parts, fmt.Sprintf("ReplicaRegions %q: the replica of %s %s", r, name, why))
				}
			}
			return nil, fmt.Errorf("%s, after waiting %s for replication (retry the stack operation; if it persists, check Secrets Manager in those Regions)", strings.Join(parts, "; "), waited)
		}
		waited += d
		next = min(2*d, replicaPollMax)
		log.Info("waiting for replicas", "behind", slices.Sorted(maps.Keys(behind)), "waited", waited.String())
	}
}

// failedButServing reports whether our replica in region, whose replication the primary reports
// Failed, still holds current (the primary's AWSCURRENT version) and the protecting policy, so
// that its Region's rule works. A secret there that is not our replica is an error.
func (p *Provisioner) failedButServing(ctx context.Context, primaryARN, home, region, current string) (bool, error) {
	policy, err := ProtectingPolicy(p.RotatorRoleARN, p.ProvisionerRoleARN)
	if err != nil {
		return false, err
	}
	why, err := p.replicaReady(ctx, primaryARN, home, region, current, policy)
	if err != nil {
		return false, err
	}
	return why == "", nil
}

// What a replica still lacks (replicaReady).
const (
	whyMissing   = "does not exist yet"
	whyNoVersion = "does not hold the primary's AWSCURRENT version yet"
	whyNoPolicy  = "does not carry the protecting resource policy yet"
	whyNotListed = "is not in the primary's ReplicationStatus (was the Region removed meanwhile?)"
)

// replicaReady reads the replica in region and says what it still lacks ("" when nothing): the
// secret itself, the primary's AWSCURRENT version, or the protecting policy. A secret there that
// is not our replica is an error.
func (p *Provisioner) replicaReady(ctx context.Context, primaryARN, home, region, current, policy string) (string, error) {
	sm := p.SMIn(region)
	rarn := replicaARN(primaryARN, region)
	d, err := p.describeSecret(ctx, sm, rarn)
	if err != nil {
		return "", fmt.Errorf("ReplicaRegions %q: %w", region, err)
	}
	switch {
	case d == nil:
		return whyMissing, nil
	case !isOurReplica(d, primaryARN, home, region):
		return "", notOursf("ReplicaRegions %q: secret %s there is not a replica of this resource's secret (it names primary Region %q); it was left untouched", region, rarn, aws.ToString(d.PrimaryRegion))
	case current == "" || currentVersion(d) != current:
		return whyNoVersion, nil
	}
	got, err := sm.GetResourcePolicy(ctx, &secretsmanager.GetResourcePolicyInput{SecretId: aws.String(rarn)})
	if replicaReadRefused(err) {
		// moto refuses to read a replica's policy ("Operation not permitted on a replica
		// secret"); whether AWS does is unverified (docs/security.md). The policy cannot be
		// checked there then, but it cannot be changed there either: Secrets Manager copies the
		// primary's, which protect put and checked. Refusing every multi-Region Create over an
		// unreadable read would protect nothing.
		p.log().WarnContext(ctx, "the replica's resource policy cannot be read in its Region; relying on Secrets Manager replicating the primary's",
			"region", region, "replica", rarn)
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("ReplicaRegions %q: reading the resource policy of the replica: %w", region, err)
	}
	if !samePolicy(aws.ToString(got.ResourcePolicy), policy) {
		return whyNoPolicy, nil
	}
	return "", nil
}

// currentVersion is the id of the version labelled AWSCURRENT ("" if none).
func currentVersion(d *secretsmanager.DescribeSecretOutput) string {
	for id, stages := range d.VersionIdsToStages {
		if slices.Contains(stages, "AWSCURRENT") {
			return id
		}
	}
	return ""
}

// ensureReplicaRule makes the rule of one replica Region, reading that Region's replica, unless it
// is there already (a resumed request); a rule of the prefix reading anything else is refused. It
// reports whether it created the rule. undo, when set, is told how to take it back.
func (p *Provisioner) ensureReplicaRule(ctx context.Context, props Properties, region, replica string, u *undo, log *slog.Logger) (bool, error) {
	e := p.ECRIn(region)
	rule, err := p.describeRule(ctx, e, props.EcrRepositoryPrefix)
	if err != nil {
		return false, fmt.Errorf("ReplicaRegions %q: %w", region, err)
	}
	if rule != nil {
		if aws.ToString(rule.CredentialArn) != replica {
			return false, notOursf("ReplicaRegions %q: a pull-through cache rule for EcrRepositoryPrefix %q already exists in %s (upstream %s) and is not managed by this resource; it was left untouched",
				region, props.EcrRepositoryPrefix, region, aws.ToString(rule.UpstreamRegistryUrl))
		}
		return false, nil
	}
	in := &ecr.CreatePullThroughCacheRuleInput{
		EcrRepositoryPrefix: aws.String(props.EcrRepositoryPrefix),
		UpstreamRegistryUrl: aws.String(props.UpstreamRegistryURL),
		UpstreamRegistry:    ecrtypes.UpstreamRegistry(props.UpstreamRegistry),
		CredentialArn:       aws.String(replica),
	}
	if props.UpstreamRepositoryPrefix != "" {
		in.UpstreamRepositoryPrefix = aws.String(props.UpstreamRepositoryPrefix)
	}
	if u != nil {
		// Registered before the call, like the home rule's; it deletes the rule only while it
		// reads our replica.
		u.add("delete pull-through cache rule "+props.EcrRepositoryPrefix+" in "+region, func(ctx context.Context) error {
			return p.deleteReplicaRule(ctx, region, props.EcrRepositoryPrefix, replica, nil)
		})
	}
	if err := p.createRule(ctx, e, in); err != nil {
		return false, fmt.Errorf("ReplicaRegions %q: creating the pull-through cache rule for %q: %w", region, props.EcrRepositoryPrefix, err)
	}
	log.Info("created pull-through cache rule", "region", region, "credential_arn", replica)
	return true, nil
}

// deleteReplicaRule deletes the rule of prefix in region if it reads replica (our replica's ARN
// there); any other rule of the prefix is someone else's and is left alone (logged when log is
// set). A missing rule is success.
func (p *Provisioner) deleteReplicaRule(ctx context.Context, region, prefix, replica string, log *slog.Logger) error {
	e := p.ECRIn(region)
	rule, err := p.describeRule(ctx, e, prefix)
	if err != nil {
		return fmt.Errorf("ReplicaRegions %q: %w", region, err)
	}
	if rule == nil {
		return nil
	}
	if aws.ToString(rule.CredentialArn) != replica {
		if log != nil {
			log.Warn("the rule for this prefix in a replica Region uses another secret: left alone", "region", region, "ecr_prefix", prefix)
		}
		return nil
	}
	if err := p.deleteRule(ctx, e, prefix); err != nil {
		return fmt.Errorf("ReplicaRegions %q: %w", region, err)
	}
	if log != nil {
		log.Info("deleted pull-through cache rule", "region", region, "ecr_prefix", prefix)
	}
	return nil
}

// isNilInterface reports whether v holds a nil pointer (or is nil): SMFor returning a typed nil
// client must count as no client.
func isNilInterface(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Map, reflect.Func, reflect.Slice, reflect.Chan:
		return rv.IsNil()
	}
	return false
}

// replicaReadRefused reports whether err is Secrets Manager refusing a call on a replica
// ("Operation not permitted on a replica secret. Call must be made in primary secret's
// region.", InvalidParameterException).
func replicaReadRefused(err error) bool {
	var ipe *smtypes.InvalidParameterException
	return errors.As(err, &ipe) && strings.Contains(strings.ToLower(ipe.ErrorMessage()), "replica secret")
}
