// Package provision creates, updates and deletes the three things one Custom::PullThroughCache
// resource owns together: the ecr-pullthroughcache/ secret (with its first upstream token), the
// ECR pull-through cache rule that reads it, and the secret's rotation schedule. It never
// touches what it did not create: ownership is the secret's ptc:managed-by tag, and a rule is
// ours only while it points at our secret.
//
// It knows nothing of CloudFormation's response protocol (internal/customresource does that);
// it takes a request and returns a physical id and data, or an error that names the problem.
package provision

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/ptc-credentials/ptc-credentials/internal/metrics"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
)

// SecretsManager is the part of the Secrets Manager API the provisioner calls.
type SecretsManager interface {
	CreateSecret(ctx context.Context, in *secretsmanager.CreateSecretInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.CreateSecretOutput, error)
	DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
	UpdateSecretVersionStage(ctx context.Context, in *secretsmanager.UpdateSecretVersionStageInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.UpdateSecretVersionStageOutput, error)
	TagResource(ctx context.Context, in *secretsmanager.TagResourceInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.TagResourceOutput, error)
	UntagResource(ctx context.Context, in *secretsmanager.UntagResourceInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.UntagResourceOutput, error)
	RotateSecret(ctx context.Context, in *secretsmanager.RotateSecretInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.RotateSecretOutput, error)
	DeleteSecret(ctx context.Context, in *secretsmanager.DeleteSecretInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.DeleteSecretOutput, error)
}

// ECR is the part of the ECR API the provisioner calls.
type ECR interface {
	CreatePullThroughCacheRule(ctx context.Context, in *ecr.CreatePullThroughCacheRuleInput, optFns ...func(*ecr.Options)) (*ecr.CreatePullThroughCacheRuleOutput, error)
	DescribePullThroughCacheRules(ctx context.Context, in *ecr.DescribePullThroughCacheRulesInput, optFns ...func(*ecr.Options)) (*ecr.DescribePullThroughCacheRulesOutput, error)
	DeletePullThroughCacheRule(ctx context.Context, in *ecr.DeletePullThroughCacheRuleInput, optFns ...func(*ecr.Options)) (*ecr.DeletePullThroughCacheRuleOutput, error)
	ValidatePullThroughCacheRule(ctx context.Context, in *ecr.ValidatePullThroughCacheRuleInput, optFns ...func(*ecr.Options)) (*ecr.ValidatePullThroughCacheRuleOutput, error)
}

// Request is one custom-resource request, reduced to what provisioning needs.
type Request struct {
	// Type is Create, Update or Delete.
	Type string
	// StackID is the stack's ARN; Region, account and partition are read from it.
	StackID string
	// LogicalID is the resource's logical id in the template.
	LogicalID string
	// PhysicalID is the id CloudFormation knows (Update and Delete).
	PhysicalID string
	// Properties and OldProperties (Update) are the raw resource properties.
	Properties, OldProperties map[string]any
}

// Result is what CloudFormation is told on success.
type Result struct {
	PhysicalID string
	Data       map[string]string
}

// Provisioner handles requests. Set SM, ECR, Providers and RotationLambdaARN.
type Provisioner struct {
	SM        SecretsManager
	ECR       ECR
	Providers map[string]upstream.Provider
	// RotationLambdaARN is the rotator Secrets Manager will invoke.
	RotationLambdaARN string
	// HTTPClient is handed to upstreams; nil means their default.
	HTTPClient *http.Client
	// Logger receives progress; nil discards. Never a secret value.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Sleep is handed to upstreams for retries; nil means real waiting.
	Sleep func(ctx context.Context, d time.Duration) error
	// OnSecret is told every secret value the request handles (source credential fields, the
	// minted token) before it could reach an error, so the response layer can scrub them
	// (customresource.AddSecrets). Nil: nobody is told.
	OnSecret func(ctx context.Context, values ...string)
	// Metrics receives ProvisionFailed; nil discards.
	Metrics *metrics.Emitter
}

// Handle dispatches on the request type.
func (p *Provisioner) Handle(ctx context.Context, req Request) (res Result, err error) {
	defer func() {
		if err != nil {
			reg, _ := req.Properties["UpstreamRegistry"].(string)
			p.Metrics.Emit(metrics.ProvisionFailed, 1, metrics.Count, reg, map[string]any{"request": req.Type, "logical_id": req.LogicalID})
		}
	}()
	switch req.Type {
	case "Create":
		return p.Create(ctx, req)
	case "Update":
		return p.Update(ctx, req)
	case "Delete":
		return p.Delete(ctx, req)
	}
	return Result{}, fmt.Errorf("RequestType %q: expected Create, Update or Delete", req.Type)
}

// secrets tells OnSecret about values that must not reach a response.
func (p *Provisioner) secrets(ctx context.Context, values ...string) {
	if p.OnSecret != nil {
		p.OnSecret(ctx, values...)
	}
}

// sourceSecrets tells OnSecret about every string in a source secret's JSON: which fields are
// secret differs per upstream, and none of them belongs in a response.
func (p *Provisioner) sourceSecrets(ctx context.Context, doc string) {
	var m map[string]any
	if json.Unmarshal([]byte(doc), &m) != nil {
		p.secrets(ctx, doc)
		return
	}
	for _, v := range m {
		if s, ok := v.(string); ok && len(s) >= 6 && !strings.HasPrefix(s, "http") {
			p.secrets(ctx, s)
		}
	}
}

// stack is what the stack id tells.
type stack struct{ partition, region, account string }

func parseStack(stackID string) (stack, error) {
	parts := strings.SplitN(stackID, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "cloudformation" || parts[3] == "" || len(parts[4]) != 12 {
		return stack{}, fmt.Errorf("StackId %q is not a CloudFormation stack ARN", truncate(stackID, 200))
	}
	return stack{partition: parts[1], region: parts[3], account: parts[4]}, nil
}

// PhysicalID names one set: "ptc:<EcrRepositoryPrefix>:<SecretName>". Neither part may contain
// a colon, so the id parses back without state.
func PhysicalID(prefix, secretName string) string { return "ptc:" + prefix + ":" + secretName }

// ParsePhysicalID reverses PhysicalID; ok is false for ids this package did not make (such as
// the id of a failed Create, which owns nothing).
func ParsePhysicalID(id string) (prefix, secretName string, ok bool) {
	rest, found := strings.CutPrefix(id, "ptc:")
	if !found {
		return "", "", false
	}
	prefix, secretName, found = strings.Cut(rest, ":")
	if !found || prefix == "" || !strings.HasPrefix(secretName, ptcsecret.Prefix) {
		return "", "", false
	}
	return prefix, secretName, true
}

// ManagedBy is the ptc:managed-by value for a resource: "<stack id>/<logical id>", hashed when
// it would not fit a tag value (256 characters).
func ManagedBy(stackID, logicalID string) string {
	v := stackID + "/" + logicalID
	if len(v) <= 256 {
		return v
	}
	sum := sha256.Sum256([]byte(v))
	return "sha256:" + hex.EncodeToString(sum[:])
}

func (p *Provisioner) log() *slog.Logger {
	if p.Logger != nil {
		return p.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (p *Provisioner) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// Create makes the secret, the rule and the rotation. On failure it undoes exactly what this
// call created and returns the error; CloudFormation is then told FAILED with an id that owns
// nothing.
func (p *Provisioner) Create(ctx context.Context, req Request) (Result, error) {
	props, err := ParseProperties(req.Properties, p.Providers)
	if err != nil {
		return Result{}, err
	}
	st, err := parseStack(req.StackID)
	if err != nil {
		return Result{}, err
	}
	if p.RotationLambdaARN == "" {
		return Result{}, errors.New("the provisioner has no ROTATION_LAMBDA_ARN: deploy it with the template, which sets it")
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
	rule, err := p.describeRule(ctx, props.EcrRepositoryPrefix)
	if err != nil {
		return Result{}, err
	}
	// 2. The secret name must be free, or ours.
	secret, err := p.describeSecret(ctx, props.SecretName)
	if err != nil {
		return Result{}, err
	}
	if secret != nil {
		if err := checkOwner(secret, owner); err != nil {
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

	var secretARN string
	if secret == nil {
		secretARN, err = p.createSecret(ctx, st, owner, props, u, log)
		if err != nil {
			return Result{}, err
		}
	} else {
		secretARN = aws.ToString(secret.ARN)
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
			r, err := p.describeRule(ctx, props.EcrRepositoryPrefix)
			if err != nil || r == nil || ptcsecret.NameFromARN(aws.ToString(r.CredentialArn)) != props.SecretName {
				return err
			}
			return p.deleteRule(ctx, props.EcrRepositoryPrefix)
		})
		if _, err := p.ECR.CreatePullThroughCacheRule(ctx, in); err != nil {
			var exists *ecrtypes.PullThroughCacheRuleAlreadyExistsException
			if errors.As(err, &exists) {
				return Result{}, fmt.Errorf("a pull-through cache rule for EcrRepositoryPrefix %q was created by someone else meanwhile; it was left untouched", props.EcrRepositoryPrefix)
			}
			return Result{}, fmt.Errorf("creating the pull-through cache rule for %q: %w", props.EcrRepositoryPrefix, err)
		}
		log.Info("created pull-through cache rule")
	}

	// 4. ECR itself checks it can read the secret and log in upstream.
	v, err := p.ECR.ValidatePullThroughCacheRule(ctx, &ecr.ValidatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String(props.EcrRepositoryPrefix)})
	if err != nil {
		return Result{}, fmt.Errorf("validating the pull-through cache rule for %q: %w", props.EcrRepositoryPrefix, err)
	}
	if !v.IsValid {
		return Result{}, fmt.Errorf("ECR could not use the new credential: %s", truncate(aws.ToString(v.Failure), 500))
	}

	// 5. Rotation: RotateImmediately=false makes Secrets Manager run only testSecret.
	if err := p.enableRotation(ctx, secretARN, props.RotationSchedule, false); err != nil {
		return Result{}, err
	}
	log.Info("created", "secret_arn", secretARN, "schedule", props.RotationSchedule)
	return Result{PhysicalID: PhysicalID(props.EcrRepositoryPrefix, props.SecretName), Data: data(st, props, secretARN)}, nil
}

// createSecret mints and verifies the first token, then stores it as the secret's first version.
func (p *Provisioner) createSecret(ctx context.Context, st stack, owner string, props Properties, u *undo, log *slog.Logger) (string, error) {
	up, err := p.upstream(ctx, props)
	if err != nil {
		return "", err
	}
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
	// K3: registered before the call, so a lost answer is undone too; it deletes only the
	// secret holding this attempt's version.
	u.add("delete secret "+props.SecretName, func(ctx context.Context) error {
		d, err := p.SM.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(props.SecretName)})
		if err != nil {
			return ignoreNotFound(err)
		}
		if _, ours := d.VersionIdsToStages[version]; !ours || checkOwner(d, owner) != nil {
			return nil
		}
		_, err = p.SM.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: d.ARN, ForceDeleteWithoutRecovery: aws.Bool(true)})
		return ignoreNotFound(err)
	})
	out, err := p.SM.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name:               aws.String(props.SecretName),
		ClientRequestToken: aws.String(version),
		SecretString:       aws.String(doc),
		Description:        aws.String(fmt.Sprintf("ECR pull-through cache credential for %s (%s), rotated by ptc-credentials", props.EcrRepositoryPrefix, props.UpstreamRegistry)),
		// No KmsKeyId: ECR reads only secrets under the default aws/secretsmanager key.
		Tags: secretTags(owner, props),
	})
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
		return Result{}, fmt.Errorf("PhysicalResourceId %q was not made by this provisioner", truncate(req.PhysicalID, 200))
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
		if _, keep := want[k]; !keep && !strings.HasPrefix(k, "aws:") {
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
		props, err := ParseProperties(req.Properties, p.Providers)
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
	if props, err := ParseProperties(req.Properties, p.Providers); err == nil {
		recovery = props.RecoveryWindowInDays
	}

	secret, err := p.describeSecret(ctx, name)
	if err != nil {
		return Result{}, err
	}
	if secret != nil {
		if err := checkOwner(secret, owner); err != nil {
			log.Warn("secret belongs to someone else: leaving it and its rule alone", "error", err.Error())
			return Result{PhysicalID: req.PhysicalID}, nil
		}
	}

	// The rule goes first, so ECR stops using the credential before it disappears. It is ours
	// only while it points at our secret.
	rule, err := p.describeRule(ctx, prefix)
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
			if err := p.deleteRule(ctx, prefix); err != nil {
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

	// Tokens next, while the secret still names the source secret; a transient failure fails
	// the Delete so a retry can finish the job.
	if err := p.revokeAll(ctx, st, secret, log); err != nil {
		return Result{}, err
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

// revokeOrphans revokes tokens a Create that never finished may have minted for a secret that
// does not exist. It is best effort: this Delete answers for a Create that owns nothing, and
// must not keep a stack from rolling back because, say, the source secret that made the Create
// fail is still unreadable; what it cannot revoke expires with the token.
func (p *Provisioner) revokeOrphans(ctx context.Context, st stack, props Properties, log *slog.Logger) {
	up, err := p.upstream(ctx, props)
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
	tags := map[string]string{}
	for _, t := range secret.Tags {
		tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	prov, ok := p.Providers[tags[ptcsecret.TagUpstream]]
	if !ok {
		log.Warn("secret has no known ptc:upstream tag: no tokens to revoke")
		return nil
	}
	up, err := p.fromSource(ctx, "source secret", tags[ptcsecret.TagUpstream], tags[ptcsecret.TagSourceSecret], tags[ptcsecret.TagRegistryURL])
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

// upstream builds the upstream the properties name.
func (p *Provisioner) upstream(ctx context.Context, props Properties) (upstream.Upstream, error) {
	return p.fromSource(ctx, "SourceSecretArn", props.UpstreamRegistry, props.SourceSecretArn, props.UpstreamRegistryURL)
}

// fromSource builds an upstream with upstream.FromSource, telling OnSecret every value of the
// source secret first. name is how the ARN's owner knows it: the property, or the tag.
func (p *Provisioner) fromSource(ctx context.Context, name, registry, sourceARN, registryURL string) (upstream.Upstream, error) {
	return upstream.FromSource(ctx, p.SM, upstream.SourceRequest{
		Name: name, Registry: registry, ARN: sourceARN, Providers: p.Providers,
		Options: p.upstreamOptions(registryURL),
		Seen:    func(doc string) { p.sourceSecrets(ctx, doc) },
	})
}

func (p *Provisioner) upstreamOptions(registryURL string) upstream.Options {
	return upstream.Options{HTTPClient: p.HTTPClient, Now: p.Now, Logger: p.log(), RegistryURL: registryURL, Sleep: p.Sleep}
}

func (p *Provisioner) enableRotation(ctx context.Context, arn, schedule string, immediately bool) error {
	_, err := p.SM.RotateSecret(ctx, &secretsmanager.RotateSecretInput{
		SecretId:          aws.String(arn),
		RotationLambdaARN: aws.String(p.RotationLambdaARN),
		RotationRules:     &smtypes.RotationRulesType{ScheduleExpression: aws.String(schedule)},
		RotateImmediately: aws.Bool(immediately),
	})
	if err != nil {
		return fmt.Errorf("turning on rotation of %s with %s: %w", ptcsecret.NameFromARN(arn), schedule, err)
	}
	return nil
}

func (p *Provisioner) describeRule(ctx context.Context, prefix string) (*ecrtypes.PullThroughCacheRule, error) {
	out, err := p.ECR.DescribePullThroughCacheRules(ctx, &ecr.DescribePullThroughCacheRulesInput{EcrRepositoryPrefixes: []string{prefix}})
	var nf *ecrtypes.PullThroughCacheRuleNotFoundException
	switch {
	case errors.As(err, &nf):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("looking up the pull-through cache rule for %q: %w", prefix, err)
	}
	for _, r := range out.PullThroughCacheRules {
		if aws.ToString(r.EcrRepositoryPrefix) == prefix {
			return &r, nil
		}
	}
	return nil, nil
}

func (p *Provisioner) deleteRule(ctx context.Context, prefix string) error {
	_, err := p.ECR.DeletePullThroughCacheRule(ctx, &ecr.DeletePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String(prefix)})
	var nf *ecrtypes.PullThroughCacheRuleNotFoundException
	if err != nil && !errors.As(err, &nf) {
		return fmt.Errorf("deleting the pull-through cache rule for %q: %w", prefix, err)
	}
	return nil
}

func (p *Provisioner) describeSecret(ctx context.Context, name string) (*secretsmanager.DescribeSecretOutput, error) {
	out, err := p.SM.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
	var nf *smtypes.ResourceNotFoundException
	switch {
	case errors.As(err, &nf):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("looking up secret %s: %w", name, err)
	}
	return out, nil
}

func checkOwner(secret *secretsmanager.DescribeSecretOutput, owner string) error {
	for _, t := range secret.Tags {
		if aws.ToString(t.Key) == ptcsecret.TagManagedBy {
			if aws.ToString(t.Value) == owner {
				return nil
			}
			return fmt.Errorf("secret %s is managed by %s, not by this resource; it was left untouched", aws.ToString(secret.Name), aws.ToString(t.Value))
		}
	}
	return fmt.Errorf("secret %s already exists and is not managed by ptc-credentials; it was left untouched (choose another SecretName)", aws.ToString(secret.Name))
}

func secretTags(owner string, props Properties) []smtypes.Tag {
	tags := []smtypes.Tag{
		{Key: aws.String(ptcsecret.TagUpstream), Value: aws.String(props.UpstreamRegistry)},
		{Key: aws.String(ptcsecret.TagSourceSecret), Value: aws.String(props.SourceSecretArn)},
		{Key: aws.String(ptcsecret.TagManagedBy), Value: aws.String(owner)},
		{Key: aws.String(ptcsecret.TagRegistryURL), Value: aws.String(props.UpstreamRegistryURL)},
	}
	for k, v := range props.Tags {
		tags = append(tags, smtypes.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	return tags
}

func data(st stack, props Properties, secretARN string) map[string]string {
	suffix := "amazonaws.com"
	if strings.HasPrefix(st.partition, "aws-cn") {
		suffix = "amazonaws.com.cn"
	}
	uri := st.account + ".dkr.ecr." + st.region + "." + suffix
	if props.EcrRepositoryPrefix != "ROOT" {
		uri += "/" + strings.TrimSuffix(props.EcrRepositoryPrefix, "/")
	}
	return map[string]string{
		"SecretArn":           secretARN,
		"SecretName":          props.SecretName,
		"EcrRepositoryPrefix": props.EcrRepositoryPrefix,
		"RepositoryUriPrefix": uri,
		"UpstreamRegistryUrl": props.UpstreamRegistryURL,
	}
}

func ignoreNotFound(err error) error {
	var nf *smtypes.ResourceNotFoundException
	if errors.As(err, &nf) {
		return nil
	}
	return err
}

func newVersionID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// undo records what a Create made, to remove it in reverse order if a later step fails.
type undo struct {
	log   *slog.Logger
	steps []undoStep
}

type undoStep struct {
	what string
	fn   func(context.Context) error
}

func (u *undo) add(what string, fn func(context.Context) error) {
	u.steps = append(u.steps, undoStep{what, fn})
}

// run undoes everything, even when the request's context is already cancelled (the deadline
// guard fired): leaving a half-made set behind is worse than a few seconds more.
func (u *undo) run(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	var failed []string
	for i := len(u.steps) - 1; i >= 0; i-- {
		s := u.steps[i]
		if err := s.fn(ctx); err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", s.what, err))
			u.log.Error("undo failed", "what", s.what, "error", err.Error())
			continue
		}
		u.log.Info("undone", "what", s.what)
	}
	if len(failed) > 0 {
		return errors.New(strings.Join(failed, "; ") + " — remove these by hand")
	}
	return nil
}
