package provision

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
)

// Create makes the secret, the rule and the rotation. On failure it undoes exactly what this
// call created and returns the error; CloudFormation is then told FAILED with an id that owns
// nothing.
func (p *Provisioner) Create(ctx context.Context, req Request) (Result, error) {
	props, err := ParseProperties(req.Properties, p.Providers, p.Standins)
	if err != nil {
		return Result{}, err
	}
	st, err := parseStack(req.StackID)
	if err != nil {
		return Result{}, err
	}
	// Every Region is checked before anything is made: a request naming a Region outside the
	// deployer's allow-list, or one the provisioner cannot reach, touches nothing.
	if err := p.checkReplicaRegions(props, st); err != nil {
		return Result{}, err
	}
	if err := p.reach(props.ReplicaRegions); err != nil {
		return Result{}, err
	}
	if err := dataFits(req, st, props); err != nil {
		return Result{}, err
	}
	if p.RotationLambdaARN == "" {
		return Result{}, errors.New("the provisioner has no ROTATION_LAMBDA_ARN: deploy it with the template, which sets it")
	}
	// Both are checked before anything is made: a Create that cannot protect or prove what it
	// makes must not make it.
	if _, err := ProtectingPolicy(p.RotatorRoleARN, p.ProvisionerRoleARN); err != nil {
		return Result{}, err
	}
	if _, err := p.ownerKey(ctx); err != nil {
		return Result{}, err
	}
	owner := ManagedBy(req.StackID, req.LogicalID)
	log := p.log().With("request", "Create", "ecr_prefix", props.EcrRepositoryPrefix, "secret", props.SecretName, "upstream", props.UpstreamRegistry)
	u := &undo{log: log}
	res, err := p.create(ctx, st, owner, props, u, log)
	if err != nil {
		if uerr := u.run(ctx); uerr != nil {
			return Result{}, fmt.Errorf("%w; undoing it also failed: %v", err, uerr)
		}
		return Result{}, fmt.Errorf("%w (everything this request created was removed)", err)
	}
	return res, nil
}

func (p *Provisioner) create(ctx context.Context, st stack, owner string, props Properties, u *undo, log *slog.Logger) (Result, error) {
	// 1. The rule's prefix must be free, or already ours (a retried Create resumes).
	rule, err := p.describeRule(ctx, p.ECR, props.EcrRepositoryPrefix)
	if err != nil {
		return Result{}, err
	}
	// 2. The secret name must be free, or ours.
	secret, err := p.describeSecret(ctx, p.SM, props.SecretName)
	if err != nil {
		return Result{}, err
	}
	if secret != nil {
		// Only a secret with this resource's proof is resumed: a tag naming us is not enough.
		if _, err := p.checkOwner(ctx, st, secret, owner, false); err != nil {
			return Result{}, err
		}
		if secret.DeletedDate != nil {
			return Result{}, fmt.Errorf("secret %s is scheduled for deletion; restore it or choose another SecretName", props.SecretName)
		}
		log.Info("secret already exists and is ours: resuming an earlier attempt")
	}
	if rule != nil && (secret == nil || ptcsecret.NameFromARN(aws.ToString(rule.CredentialArn)) != props.SecretName) {
		return Result{}, fmt.Errorf("a pull-through cache rule for EcrRepositoryPrefix %q already exists (upstream %s) and is not managed by this resource; it was left untouched",
			props.EcrRepositoryPrefix, aws.ToString(rule.UpstreamRegistryUrl))
	}

	// 2a. Every replica Region must be free for the secret's name and the rule's prefix, or hold
	// only what is already ours (a resumed Create).
	existing := ""
	if secret != nil {
		existing = aws.ToString(secret.ARN)
	}
	if err := p.checkReplicaSlots(ctx, props.SecretName, existing, st.region, props.ReplicaRegions); err != nil {
		return Result{}, err
	}
	if err := p.checkReplicaRules(ctx, props.EcrRepositoryPrefix, existing, props.ReplicaRegions); err != nil {
		return Result{}, err
	}

	var secretARN string
	if secret == nil {
		secretARN, err = p.createSecret(ctx, st, owner, props, u, log)
		if err != nil {
			return Result{}, err
		}
	} else {
		secretARN = existing
		// An earlier attempt may have died before replicating everywhere (a Create resumed after
		// replacement, or ReplicaRegions replicated by hand since): add what is missing.
		if _, err := p.ensureReplicas(ctx, secret, st.region, props.ReplicaRegions, log); err != nil {
			return Result{}, err
		}
	}
	// 2b. The protecting policy (also when resuming: the earlier attempt may have died first).
	// Secrets Manager carries it to the replicas; awaitReplicas checks that it got there.
	if _, err := p.protect(ctx, secretARN, secret == nil); err != nil {
		return Result{}, err
	}
	// 2c. Every replica holds the value and the policy before its rule is made: ECR reads the
	// replica of its own Region, and validation must see the value the primary has.
	replicas, err := p.awaitReplicas(ctx, secretARN, st.region, props.ReplicaRegions, log)
	if err != nil {
		return Result{}, err
	}

	// 3. The rule.
	if rule == nil {
		in := &ecr.CreatePullThroughCacheRuleInput{
			EcrRepositoryPrefix: aws.String(props.EcrRepositoryPrefix),
			UpstreamRegistryUrl: aws.String(props.UpstreamRegistryURL),
			UpstreamRegistry:    ecrtypes.UpstreamRegistry(props.UpstreamRegistry),
			CredentialArn:       aws.String(secretARN),
		}
		if props.UpstreamRepositoryPrefix != "" {
			in.UpstreamRepositoryPrefix = aws.String(props.UpstreamRepositoryPrefix)
		}
		// K3: registered before the call; deletes the rule only while it reads our secret.
		u.add("delete pull-through cache rule "+props.EcrRepositoryPrefix, func(ctx context.Context) error {
			r, err := p.describeRule(ctx, p.ECR, props.EcrRepositoryPrefix)
			if err != nil || r == nil || ptcsecret.NameFromARN(aws.ToString(r.CredentialArn)) != props.SecretName {
				return err
			}
			return p.deleteRule(ctx, p.ECR, props.EcrRepositoryPrefix)
		})
		if err := p.createRule(ctx, p.ECR, in); err != nil {
			var exists *ecrtypes.PullThroughCacheRuleAlreadyExistsException
			if errors.As(err, &exists) {
				return Result{}, fmt.Errorf("a pull-through cache rule for EcrRepositoryPrefix %q was created by someone else meanwhile; it was left untouched", props.EcrRepositoryPrefix)
			}
			return Result{}, fmt.Errorf("creating the pull-through cache rule for %q: %w", props.EcrRepositoryPrefix, err)
		}
		log.Info("created pull-through cache rule")
	}

	// 3b. One rule per replica Region, each reading its own Region's replica.
	for i, r := range props.ReplicaRegions {
		if _, err := p.ensureReplicaRule(ctx, props, r, replicas[i], u, log); err != nil {
			return Result{}, err
		}
	}

	// 4. ECR itself checks it can read the secret and log in upstream, in every Region: that ECR
	// accepts a replica's ARN is proved here, not assumed.
	// (Both calls retry while ECR does not see the new secret yet: eventual.go.)
	if err := p.validateRule(ctx, p.ECR, "", props.EcrRepositoryPrefix); err != nil {
		return Result{}, err
	}
	for _, r := range props.ReplicaRegions {
		if err := p.validateRule(ctx, p.ECRIn(r), r, props.EcrRepositoryPrefix); err != nil {
			return Result{}, err
		}
	}

	// 5. Rotation: RotateImmediately=false makes Secrets Manager run only testSecret.
	if err := p.enableRotation(ctx, secretARN, props.RotationSchedule, false); err != nil {
		return Result{}, err
	}
	log.Info("created", "secret_arn", secretARN, "schedule", props.RotationSchedule)
	return Result{PhysicalID: PhysicalID(props.EcrRepositoryPrefix, props.SecretName), Data: data(st, props, secretARN, replicas)}, nil
}

// createSecret mints and verifies the first token, then stores it as the secret's first version.
func (p *Provisioner) createSecret(ctx context.Context, st stack, owner string, props Properties, u *undo, log *slog.Logger) (string, error) {
	up, err := p.upstream(ctx, props)
	if err != nil {
		return "", err
	}
	warnStagedSchedule(log, up, props.RotationSchedule)
	key := ptcsecret.Key(st.region, st.account, props.SecretName)
	version := newVersionID()
	label := ptcsecret.Label(key, version)
	// K1: no secret of this name exists (create checked), so every token labelled for it is an
	// orphan of a Create that died between minting and CreateSecret: MintLabelled revokes them
	// all (it keeps none) before minting.
	minted, err := upstream.MintLabelled(ctx, up, upstream.MintRequest{SecretName: props.SecretName, VersionID: version, Label: label},
		ptcsecret.LabelPrefix(key), nil, func(t upstream.Token) {
			log.Info("revoked token left by an earlier attempt", "token_label", t.Label, "token_id", t.ID)
		})
	if err != nil {
		var failedMint *upstream.MintError
		if errors.As(err, &failedMint) {
			// K3: the upstream may have minted before its answer was lost.
			u.add("revoke token "+label, func(ctx context.Context) error {
				_, _, err := upstream.RevokeLabelled(ctx, up, label, nil, upstream.FailFast)
				return err
			})
		}
		return "", fmt.Errorf("minting the first %s token: %w", props.UpstreamRegistry, err)
	}
	if minted.Token.ID != "" {
		u.add("revoke token "+minted.Token.Label, func(ctx context.Context) error { return up.Revoke(ctx, minted.Token) })
	}
	p.secrets(ctx, minted.Credential.AccessToken)
	log.Info("minted first token", "token_label", minted.Token.Label, "token_id", minted.Token.ID, "username", minted.Credential.Username)
	if _, err := up.Verify(ctx, minted.Credential); err != nil {
		return "", fmt.Errorf("the first %s token cannot log in to %s: %w", props.UpstreamRegistry, props.UpstreamRegistryURL, err)
	}
	doc, err := minted.Credential.Marshal()
	if err != nil {
		return "", fmt.Errorf("%s returned an unusable credential: %w", props.UpstreamRegistry, err)
	}
	ownerKey, err := p.ownerKey(ctx)
	if err != nil {
		return "", err
	}
	mac := OwnerMAC(ownerKey, st.region, st.account, props.SecretName, owner)
	// K3: registered before the call, so a lost answer is undone too; it deletes only the
	// secret holding this attempt's version, with our proof.
	u.add("delete secret "+props.SecretName, func(ctx context.Context) error {
		d, err := p.SM.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(props.SecretName)})
		if err != nil {
			return ignoreNotFound(err)
		}
		if _, mine := d.VersionIdsToStages[version]; !mine {
			return nil
		}
		if o, _ := p.checkOwner(ctx, st, d, owner, false); o != ours {
			return nil
		}
		// Secrets Manager refuses to delete a primary that still has replicas: they go first
		// (removing a Region deletes its replica; a Failed one leaves whatever blocked it).
		if err := p.removeReplicas(ctx, aws.ToString(d.ARN), replicaRegions(d)); err != nil {
			return err
		}
		_, err = p.SM.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: d.ARN, ForceDeleteWithoutRecovery: aws.Bool(true)})
		return ignoreNotFound(err)
	})
	in := &secretsmanager.CreateSecretInput{
		Name:               aws.String(props.SecretName),
		ClientRequestToken: aws.String(version),
		SecretString:       aws.String(doc),
		Description:        aws.String(props.SecretDescription()),
		// No KmsKeyId: ECR reads only secrets under the default aws/secretsmanager key.
		Tags: secretTags(owner, mac, props),
	}
	if len(props.ReplicaRegions) > 0 {
		// The replicas are born with the secret, each under its own Region's default key.
		in.AddReplicaRegions = replicaRegionTypes(props.ReplicaRegions)
	}
	out, err := p.SM.CreateSecret(ctx, in)
	if err != nil {
		return "", fmt.Errorf("creating secret %s: %w", props.SecretName, err)
	}
	arn := aws.ToString(out.ARN)
	for _, stage := range minted.Stages {
		if _, err := p.SM.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
			SecretId: aws.String(arn), VersionStage: aws.String(stage), MoveToVersionId: aws.String(version),
		}); err != nil {
			return "", fmt.Errorf("labelling the first version of %s with %s: %w", props.SecretName, stage, err)
		}
	}
	log.Info("created secret", "secret_arn", arn, "version_id", version)
	return arn, nil
}

func newVersionID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
