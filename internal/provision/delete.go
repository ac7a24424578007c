package provision

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
)

// Delete removes the rule, revokes every token labelled for the secret and deletes the secret.
// What is already gone is success; what belongs to someone else is left alone.
func (p *Provisioner) Delete(ctx context.Context, req Request) (Result, error) {
	prefix, name, ok := ParsePhysicalID(req.PhysicalID)
	log := p.log().With("request", "Delete", "physical_id", req.PhysicalID)
	var orphanProps *Properties
	if !ok {
		// K2: an id this provisioner did not make — a failed Create's, or one CloudFormation
		// made up for a Create that never answered. Such a Create may have left a set: find it
		// by the properties, and remove it only if its owner tag names this very resource.
		props, err := ParseProperties(req.Properties, p.Providers, p.Standins)
		if err != nil {
			log.Info("nothing to delete: the physical id owns nothing (a failed Create)")
			return Result{PhysicalID: req.PhysicalID}, nil
		}
		prefix, name, orphanProps = props.EcrRepositoryPrefix, props.SecretName, &props
	}
	st, err := parseStack(req.StackID)
	if err != nil {
		return Result{}, err
	}
	owner := ManagedBy(req.StackID, req.LogicalID)
	recovery := DefaultRecoveryWindowInDays
	var named []string // the replica Regions the properties name
	if props, err := ParseProperties(req.Properties, p.Providers, p.Standins); err == nil {
		recovery = props.RecoveryWindowInDays
		named = props.ReplicaRegions
	}

	secret, err := p.describeSecret(ctx, p.SM, name)
	if err != nil {
		return Result{}, err
	}
	if secret != nil {
		var foreign *notOurs
		if _, err := p.checkOwner(ctx, st, secret, owner, true); errors.As(err, &foreign) {
			log.Warn("secret belongs to someone else: leaving it and its rule alone", "error", err.Error())
			return Result{PhysicalID: req.PhysicalID}, nil
		} else if err != nil {
			return Result{}, err
		}
	}

	// The rules go first, in every Region, so ECR stops using the credential before it
	// disappears. A replica Region's rule is ours only while it reads our replica's ARN there.
	var replicas []string
	if secret != nil {
		replicas = p.deleteRegions(secret, named, log)
		if err := p.reach(replicas); err != nil {
			return Result{}, err
		}
		for _, r := range replicas {
			if err := p.deleteReplicaRule(ctx, r, prefix, replicaARN(aws.ToString(secret.ARN), r), log); err != nil {
				return Result{}, err
			}
		}
	} else if len(named) > 0 {
		log.Warn("no secret of ours proves the replica Regions' rules ours: left alone", "regions", named)
	}
	rule, err := p.describeRule(ctx, p.ECR, prefix)
	if err != nil {
		return Result{}, err
	}
	switch {
	case rule == nil:
	case orphanProps != nil && secret == nil:
		// Found by properties alone, with no secret of ours to prove it: a rule reading a
		// missing secret may be someone else's broken rule.
		log.Warn("a rule for this prefix exists but no secret of ours proves it ours: left alone", "ecr_prefix", prefix)
	default:
		if ptcsecret.NameFromARN(aws.ToString(rule.CredentialArn)) == name {
			if err := p.deleteRule(ctx, p.ECR, prefix); err != nil {
				return Result{}, err
			}
			log.Info("deleted pull-through cache rule", "ecr_prefix", prefix)
		} else {
			log.Warn("the rule for this prefix uses another secret: left alone", "ecr_prefix", prefix)
		}
	}
	if secret == nil {
		if orphanProps != nil {
			p.revokeOrphans(ctx, st, *orphanProps, log)
		}
		log.Info("secret already gone", "secret", name)
		return Result{PhysicalID: req.PhysicalID}, nil
	}

	// Then the replicas: Secrets Manager refuses to delete a primary that still has any.
	if err := p.removeReplicas(ctx, aws.ToString(secret.ARN), replicaRegions(secret)); err != nil {
		return Result{}, err
	}
	if len(secret.ReplicationStatus) > 0 {
		log.Info("removed replicas", "regions", replicaRegions(secret))
	}

	// Tokens next, while the secret still names the source secret; a transient failure fails
	// the Delete so a retry can finish the job.
	if err := p.revokeAll(ctx, st, secret, log); err != nil {
		return Result{}, err
	}

	if secret.DeletedDate != nil {
		// A repeated Delete (CloudFormation lost the first answer): the secret is already
		// scheduled for deletion, and Secrets Manager refuses a second DeleteSecret.
		log.Info("secret already scheduled for deletion", "secret", name)
		return Result{PhysicalID: req.PhysicalID}, nil
	}
	in := &secretsmanager.DeleteSecretInput{SecretId: secret.ARN}
	if recovery == 0 {
		in.ForceDeleteWithoutRecovery = aws.Bool(true)
	} else {
		in.RecoveryWindowInDays = aws.Int64(int64(recovery))
	}
	if _, err := p.SM.DeleteSecret(ctx, in); ignoreNotFound(err) != nil {
		return Result{}, fmt.Errorf("deleting secret %s: %w", name, err)
	}
	log.Info("deleted secret", "secret", name, "recovery_window_days", recovery)
	return Result{PhysicalID: req.PhysicalID}, nil
}

// deleteRegions are the replica Regions whose rules a Delete looks at: every Region the secret
// replicates to, and those the properties name that the deployer allows (a replica removed
// behind the stack's back may have left its rule, which still reads our replica's ARN, unique to
// our secret). A named Region outside the allow-list is not looked at: the role may not act
// there, and nothing of ours can be there.
func (p *Provisioner) deleteRegions(secret *secretsmanager.DescribeSecretOutput, named []string, log *slog.Logger) []string {
	out := replicaRegions(secret)
	for _, r := range named {
		switch {
		case slices.Contains(out, r), r == regionOfARN(aws.ToString(secret.ARN)):
		case !slices.Contains(p.AllowedReplicaRegions, r):
			log.Warn("ReplicaRegions names a Region outside AllowedReplicaRegions: not looked at", "region", r)
		default:
			out = append(out, r)
		}
	}
	return out
}

// revokeOrphans revokes tokens a Create that never finished may have minted for a secret that
// does not exist. It is best effort: this Delete answers for a Create that owns nothing, and
// must not keep a stack from rolling back because, say, the source secret that made the Create
// fail is still unreadable; what it cannot revoke expires with the token.
func (p *Provisioner) revokeOrphans(ctx context.Context, st stack, props Properties, log *slog.Logger) {
	// Only to revoke: no binding check (a source that no longer allows the secret may still
	// have minted for it).
	up, err := p.fromSource(ctx, "SourceSecretArn", props.UpstreamRegistry, props.SourceSecretArn, props.UpstreamRegistryURL, "")
	if err != nil {
		log.Warn("could not check for tokens left by the failed Create", "error", err.Error())
		return
	}
	_, _, err = upstream.RevokeLabelled(ctx, up, ptcsecret.LabelPrefix(ptcsecret.Key(st.region, st.account, props.SecretName)), nil, func(t upstream.Token, err error) error {
		if err != nil {
			log.Warn("could not revoke a token left by the failed Create; it expires on its own", "token_label", t.Label, "error", err.Error())
			return nil
		}
		log.Info("revoked token left by the failed Create", "token_label", t.Label, "token_id", t.ID)
		return nil
	})
	if err != nil {
		log.Warn("could not list tokens left by the failed Create", "error", err.Error())
	}
}

// revokeAll revokes every token labelled for the secret.
func (p *Provisioner) revokeAll(ctx context.Context, st stack, secret *secretsmanager.DescribeSecretOutput, log *slog.Logger) error {
	tags := tagMap(secret)
	prov, ok := p.Providers[tags[ptcsecret.TagUpstream]]
	if !ok {
		log.Warn("secret has no known ptc:upstream tag: no tokens to revoke")
		return nil
	}
	up, err := p.fromSource(ctx, "source secret", tags[ptcsecret.TagUpstream], tags[ptcsecret.TagSourceSecret], tags[ptcsecret.TagRegistryURL], "")
	var nf *smtypes.ResourceNotFoundException
	switch {
	case errors.As(err, &nf):
		log.Warn("source secret is gone: upstream tokens cannot be revoked here; revoke them in the registry by their ptc- label", "source_secret", tags[ptcsecret.TagSourceSecret])
		return nil
	case errors.Is(err, upstream.ErrUnusableSource):
		// Retrying cannot help until someone fixes the source secret; the secret still goes.
		log.Warn("source secret is unusable: upstream tokens cannot be revoked here", "error", err.Error())
		return nil
	case err != nil:
		return fmt.Errorf("revoking the upstream tokens: %w", err)
	}
	key := ptcsecret.Key(st.region, st.account, aws.ToString(secret.Name))
	// The first failure fails the Delete, so that CloudFormation's retry finishes the job.
	if _, _, err := upstream.RevokeLabelled(ctx, up, ptcsecret.LabelPrefix(key), nil, func(t upstream.Token, err error) error {
		if err != nil {
			return fmt.Errorf("revoking %s token %s: %w", prov.Registry, t.Label, err)
		}
		log.Info("revoked token", "token_label", t.Label, "token_id", t.ID)
		return nil
	}); err != nil {
		return err
	}
	if r, ok := up.(upstream.Retirer); ok {
		if err := r.RetireAll(ctx); err != nil {
			return fmt.Errorf("retiring %s credentials: %w", prov.Registry, err)
		}
	}
	return nil
}
