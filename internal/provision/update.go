package provision

import (
	"context"
	"fmt"
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
	props, err := ParseProperties(req.Properties, p.Providers)
	if err != nil {
		return Result{}, err
	}
	st, err := parseStack(req.StackID)
	if err != nil {
		return Result{}, err
	}
	oldPrefix, oldName, ok := ParsePhysicalID(req.PhysicalID)
	if !ok {
		return Result{}, fmt.Errorf("PhysicalResourceId %q was not made by this provisioner", kit.Truncate(req.PhysicalID, 200))
	}
	old, _ := ParseProperties(req.OldProperties, p.Providers) // best effort: only for comparison
	if changed := replacementChanges(old, props, oldPrefix, oldName); len(changed) > 0 {
		if props.EcrRepositoryPrefix == oldPrefix || props.SecretName == oldName {
			return Result{}, fmt.Errorf("changing %s needs a new rule and secret, which CloudFormation creates before it deletes the old ones; ECR allows one rule per prefix and a secret name is unique, so change EcrRepositoryPrefix (and SecretName, if you set it) in the same update", strings.Join(changed, ", "))
		}
		p.log().Info("update needs replacement", "changed", changed)
		return p.Create(ctx, Request{Type: "Create", StackID: req.StackID, LogicalID: req.LogicalID, Properties: req.Properties})
	}

	owner := ManagedBy(req.StackID, req.LogicalID)
	secret, err := p.describeSecret(ctx, oldName)
	if err != nil {
		return Result{}, err
	}
	if secret == nil {
		return Result{}, fmt.Errorf("secret %s no longer exists; remove the resource from the stack and add it again", oldName)
	}
	if err := checkOwner(secret, owner); err != nil {
		return Result{}, err
	}
	arn := aws.ToString(secret.ARN)
	log := p.log().With("request", "Update", "ecr_prefix", oldPrefix, "secret", oldName)

	current := map[string]string{}
	for _, t := range secret.Tags {
		current[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	want := map[string]string{}
	for _, t := range secretTags(owner, props) {
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
	sourceChanged := current[ptcsecret.TagSourceSecret] != props.SourceSecretArn
	scheduleChanged := old.RotationSchedule != props.RotationSchedule || !aws.ToBool(secret.RotationEnabled) ||
		aws.ToString(secret.RotationLambdaARN) != p.RotationLambdaARN
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
	return Result{PhysicalID: req.PhysicalID, Data: data(st, props, arn)}, nil
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
