package provision

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/ptc-credentials/ptc-credentials/internal/kit"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
)

// Update changes the schedule, source secret and tags in place; any other change needs a new
// rule and secret, returned under a new physical id (CloudFormation then deletes the old one).
func (p *Provisioner) Update(ctx context.Context, req Request) (Result, error) {
	props, err := ParseProperties(req.Properties, p.Providers, p.Standins)
	if err != nil {
		return Result{}, err
	}
	st, err := parseStack(req.StackID)
	if err != nil {
		return Result{}, err
	}
	// The Regions asked for are checked before anything is touched; Regions being removed need
	// only be reachable (the allow-list may have shrunk since they were added).
	if err := p.checkReplicaRegions(props, st); err != nil {
		return Result{}, err
	}
	if err := dataFits(req, st, props); err != nil {
		return Result{}, err
	}
	oldPrefix, oldName, ok := ParsePhysicalID(req.PhysicalID)
	if !ok {
		return Result{}, fmt.Errorf("PhysicalResourceId %q was not made by this provisioner", kit.Truncate(req.PhysicalID, 200))
	}
	old, _ := ParseProperties(req.OldProperties, p.Providers, p.Standins) // best effort: only for comparison
	owner := ManagedBy(req.StackID, req.LogicalID)
	secret, err := p.describeSecret(ctx, p.SM, oldName)
	if err != nil {
		return Result{}, err
	}
	// What the set is, from the secret itself when it is provably ours; OldResourceProperties
	// only fill in what the secret does not record (UpstreamRepositoryPrefix, the schedule).
	var own ownership
	var ownErr error
	live := old
	if secret != nil {
		if own, ownErr = p.checkOwner(ctx, st, secret, owner, true); ownErr == nil {
			tags := tagMap(secret)
			live.UpstreamRegistry, live.UpstreamRegistryURL = tags[ptcsecret.TagUpstream], tags[ptcsecret.TagRegistryURL]
		}
	}
	if changed := replacementChanges(live, props, oldPrefix, oldName); len(changed) > 0 {
		if props.EcrRepositoryPrefix == oldPrefix || props.SecretName == oldName {
			return Result{}, fmt.Errorf("changing %s needs a new rule and secret, which CloudFormation creates before it deletes the old ones; ECR allows one rule per prefix and a secret name is unique, so change EcrRepositoryPrefix (and SecretName, if you set it) in the same update", strings.Join(changed, ", "))
		}
		p.log().Info("update needs replacement", "changed", changed)
		return p.Create(ctx, Request{Type: "Create", StackID: req.StackID, LogicalID: req.LogicalID, Properties: req.Properties})
	}
	if secret == nil {
		return Result{}, fmt.Errorf("secret %s no longer exists; remove the resource from the stack and add it again", oldName)
	}
	if ownErr != nil {
		return Result{}, ownErr
	}
	if err := p.reach(union(props.ReplicaRegions, replicaRegions(secret))); err != nil {
		return Result{}, err
	}
	key, err := p.ownerKey(ctx)
	if err != nil {
		return Result{}, err
	}
	arn := aws.ToString(secret.ARN)
	log := p.log().With("request", "Update", "ecr_prefix", oldPrefix, "secret", oldName)

	if own == legacyOK {
		log.Info("secret predates ownership proofs: adding the proof and the protecting policy")
	}
	// The policy first: from here on only the function roles change the ptc:* tags.
	if changed, err := p.protect(ctx, arn, false); err != nil {
		return Result{}, err
	} else if changed {
		log.Info("protecting resource policy applied")
	}
	current := tagMap(secret)
	want := map[string]string{}
	for _, t := range secretTags(owner, OwnerMAC(key, st.region, st.account, oldName, owner), props) {
		want[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	var add []smtypes.Tag
	var remove []string
	for k, v := range want {
		if current[k] != v {
			add = append(add, smtypes.Tag{Key: aws.String(k), Value: aws.String(v)})
		}
	}
	for k := range current {
		// aws:* tags are the service's; ptc:rotator:* are facts the rotator records (the mark
		// finishSecret requires), not configuration this resource sets.
		if _, keep := want[k]; !keep && !strings.HasPrefix(k, "aws:") && !strings.HasPrefix(k, ptcsecret.RotatorTagPrefix) {
			remove = append(remove, k)
		}
	}
	if len(add) > 0 {
		if _, err := p.SM.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String(arn), Tags: add}); err != nil {
			return Result{}, fmt.Errorf("tagging secret %s: %w", oldName, err)
		}
	}
	if len(remove) > 0 {
		if _, err := p.SM.UntagResource(ctx, &secretsmanager.UntagResourceInput{SecretId: aws.String(arn), TagKeys: remove}); err != nil {
			return Result{}, fmt.Errorf("untagging secret %s: %w", oldName, err)
		}
	}
	// The description, in place; Secrets Manager carries it to the replicas.
	if want := props.SecretDescription(); aws.ToString(secret.Description) != want {
		if _, err := p.SM.UpdateSecret(ctx, &secretsmanager.UpdateSecretInput{SecretId: aws.String(arn), Description: aws.String(want)}); err != nil {
			return Result{}, fmt.Errorf("setting the description of secret %s: %w", oldName, err)
		}
		log.Info("description set")
	}
	// The Regions, in place: a Region left out loses its rule and replica, a new one gets both.
	replicas, err := p.reconcileRegions(ctx, st, secret, props, log)
	if err != nil {
		return Result{}, err
	}
	sourceChanged := current[ptcsecret.TagSourceSecret] != props.SourceSecretArn
	// The live schedule decides when the secret reports one (a RotateSecret behind the stack's
	// back is undone here); OldResourceProperties only when it does not.
	liveSchedule := ""
	if secret.RotationRules != nil {
		liveSchedule = aws.ToString(secret.RotationRules.ScheduleExpression)
	}
	scheduleChanged := old.RotationSchedule != props.RotationSchedule || (liveSchedule != "" && liveSchedule != props.RotationSchedule) ||
		!aws.ToBool(secret.RotationEnabled) || aws.ToString(secret.RotationLambdaARN) != p.RotationLambdaARN
	switch {
	case sourceChanged:
		// The new source credential takes over now, not at the next scheduled rotation.
		if err := p.enableRotation(ctx, arn, props.RotationSchedule, true); err != nil {
			return Result{}, err
		}
		log.Info("source secret changed: rotation started", "source_secret", props.SourceSecretArn)
	case scheduleChanged:
		if err := p.enableRotation(ctx, arn, props.RotationSchedule, false); err != nil {
			return Result{}, err
		}
		log.Info("rotation schedule set", "schedule", props.RotationSchedule)
	}
	log.Info("updated in place", "tags_set", len(add), "tags_removed", len(remove))
	return Result{PhysicalID: req.PhysicalID, Data: data(st, props, arn, replicas)}, nil
}

// reconcileRegions makes the set's Regions those of props.ReplicaRegions and returns the replicas'
// ARNs in that order. A Region no longer listed loses its rule first (ECR stops reading the
// replica), then its replica. A listed Region missing its replica gets one (a Failed replication
// is tried again), then every listed Region's replica must hold the current version and the
// protecting policy, and a Region missing its rule gets it, validated. Each step looks before it
// acts, so an Update that died halfway (say, replica made but rule not) resumes where it stopped.
func (p *Provisioner) reconcileRegions(ctx context.Context, st stack, secret *secretsmanager.DescribeSecretOutput, props Properties, log *slog.Logger) ([]string, error) {
	arn := aws.ToString(secret.ARN)
	var gone, added []string
	for _, r := range replicaRegions(secret) {
		if !slices.Contains(props.ReplicaRegions, r) {
			gone = append(gone, r)
		}
	}
	for _, r := range props.ReplicaRegions {
		if replicationStatus(secret, r) == nil {
			added = append(added, r)
		}
	}
	for _, r := range gone {
		if err := p.deleteReplicaRule(ctx, r, props.EcrRepositoryPrefix, replicaARN(arn, r), log); err != nil {
			return nil, err
		}
	}
	if err := p.removeReplicas(ctx, arn, gone); err != nil {
		return nil, err
	}
	if len(gone) > 0 {
		log.Info("removed replicas", "regions", gone)
	}
	// A new Region's rule prefix must be free before its replica is made.
	if err := p.checkReplicaRules(ctx, props.EcrRepositoryPrefix, arn, added); err != nil {
		return nil, err
	}
	if _, err := p.ensureReplicas(ctx, secret, st.region, props.ReplicaRegions, log); err != nil {
		return nil, err
	}
	replicas, err := p.awaitReplicas(ctx, arn, st.region, props.ReplicaRegions, log)
	if err != nil {
		return nil, err
	}
	for i, r := range props.ReplicaRegions {
		created, err := p.ensureReplicaRule(ctx, props, r, replicas[i], nil, log)
		if err != nil {
			return nil, err
		}
		if created {
			if err := p.validateRule(ctx, p.ECRIn(r), r, props.EcrRepositoryPrefix); err != nil {
				return nil, err
			}
		}
	}
	return replicas, nil
}

// union is a's items, then b's not in a.
func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, x := range b {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

func tagMap(secret *secretsmanager.DescribeSecretOutput) map[string]string {
	m := map[string]string{}
	for _, t := range secret.Tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

// replacementChanges lists the properties whose change ECR cannot apply in place.
func replacementChanges(old, props Properties, oldPrefix, oldName string) []string {
	var changed []string
	if props.EcrRepositoryPrefix != oldPrefix {
		changed = append(changed, "EcrRepositoryPrefix")
	}
	if props.SecretName != oldName {
		changed = append(changed, "SecretName")
	}
	if props.UpstreamRegistry != old.UpstreamRegistry {
		changed = append(changed, "UpstreamRegistry")
	}
	if props.UpstreamRegistryURL != old.UpstreamRegistryURL {
		changed = append(changed, "UpstreamRegistryUrl")
	}
	if props.UpstreamRepositoryPrefix != old.UpstreamRepositoryPrefix {
		changed = append(changed, "UpstreamRepositoryPrefix")
	}
	return changed
}
