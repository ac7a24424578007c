// Package provision creates, updates and deletes the three things one Custom::PullThroughCache
// resource owns together: the ecr-pullthroughcache/ secret (with its first upstream token), the
// ECR pull-through cache rule that reads it, and the secret's rotation schedule. It never
// touches what it did not create: ownership is the secret's ptc:managed-by tag with the
// ptc:owner-mac proof only the provisioner can compute (owner.go), and a rule is ours only
// while it points at such a secret. Every managed secret carries a resource policy that keeps
// its ptc:* tags and its value to the two function roles (policy.go).
//
// It knows nothing of CloudFormation's response protocol (internal/customresource does that);
// it takes a request and returns a physical id and data, or an error that names the problem.
package provision

import (
	"context"
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
	"github.com/ptc-credentials/ptc-credentials/internal/pinned"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
	"github.com/ptc-credentials/ptc-credentials/internal/webidentity"
)

// ResourceType is the CloudFormation type this provisioner serves; a request for any other
// type is refused (cfnauth).
const ResourceType = "Custom::PullThroughCache"

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
	// The protecting resource policy (policy.go).
	GetResourcePolicy(ctx context.Context, in *secretsmanager.GetResourcePolicyInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetResourcePolicyOutput, error)
	ValidateResourcePolicy(ctx context.Context, in *secretsmanager.ValidateResourcePolicyInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.ValidateResourcePolicyOutput, error)
	PutResourcePolicy(ctx context.Context, in *secretsmanager.PutResourcePolicyInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.PutResourcePolicyOutput, error)
	// Replicas (ReplicaRegions) and the Description property; called on the primary only.
	ReplicateSecretToRegions(ctx context.Context, in *secretsmanager.ReplicateSecretToRegionsInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.ReplicateSecretToRegionsOutput, error)
	RemoveRegionsFromReplication(ctx context.Context, in *secretsmanager.RemoveRegionsFromReplicationInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.RemoveRegionsFromReplicationOutput, error)
	UpdateSecret(ctx context.Context, in *secretsmanager.UpdateSecretInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.UpdateSecretOutput, error)
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

// Provisioner handles requests. Set SM, ECR, Providers, RotationLambdaARN, the two role ARNs
// and OwnerKey; for ReplicaRegions also Region, SMFor, ECRFor and AllowedReplicaRegions.
type Provisioner struct {
	// SM and ECR are the clients of the home Region (the function's own).
	SM  SecretsManager
	ECR ECR
	// Region is the home Region's name; SMIn and ECRIn answer SM and ECR for it (and for "").
	Region string
	// SMFor and ECRFor build the clients of another Region (a replica Region). Nil, or a nil
	// answer: the provisioner cannot reach that Region, and a request naming it fails before
	// anything is made.
	SMFor  func(region string) SecretsManager
	ECRFor func(region string) ECR
	// AllowedReplicaRegions are the only Regions a request may name in ReplicaRegions (the
	// deployer's AllowedReplicaRegionsVar); empty allows no replication at all.
	AllowedReplicaRegions []string
	// ReplicaWait bounds the wait for every replica to hold the primary's AWSCURRENT version and
	// the protecting policy; 0 means DefaultReplicaWait. It is measured in Sleep's waits, so a
	// test's clock decides it.
	ReplicaWait time.Duration
	Providers   map[string]upstream.Provider
	// RotationLambdaARN is the rotator Secrets Manager will invoke.
	RotationLambdaARN string
	// RotatorRoleARN and ProvisionerRoleARN are the two function roles, the only principals the
	// protecting resource policy lets change a managed secret's ptc:* tags and value
	// (ProtectingPolicy).
	RotatorRoleARN, ProvisionerRoleARN string
	// OwnerKey is the key of the ownership proofs (owner.go); nil refuses every request.
	OwnerKey OwnerKeyFunc
	// HTTPClient is handed to upstreams; nil means their default.
	HTTPClient *http.Client
	// WebIdentity is handed to upstreams in federated mode (upstream.Options.WebIdentity).
	WebIdentity webidentity.Source
	// Logger receives progress; nil discards. Never a secret value.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Sleep is handed to upstreams for retries; nil means real waiting.
	Sleep func(ctx context.Context, d time.Duration) error
	// Standins are the loopback emulators that may stand in for the upstreams' pinned hosts
	// (awsenv.LoopbackStandinsVar); the zero value, the deployed state, allows none.
	Standins pinned.Standins
	// FederatedBindings are the deployer's limits on which managed secrets may use which
	// federated identity (upstream.FederatedBindingsVar); nil limits nothing.
	FederatedBindings upstream.FederatedBindings
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

// SMIn is the Secrets Manager client of region: SM for the home Region (or ""), else SMFor's
// answer, which is nil when the provisioner has none for it.
func (p *Provisioner) SMIn(region string) SecretsManager {
	if region == "" || region == p.Region {
		return p.SM
	}
	if p.SMFor == nil {
		return nil
	}
	return p.SMFor(region)
}

// ECRIn is the ECR client of region, as SMIn is for Secrets Manager.
func (p *Provisioner) ECRIn(region string) ECR {
	if region == "" || region == p.Region {
		return p.ECR
	}
	if p.ECRFor == nil {
		return nil
	}
	return p.ECRFor(region)
}

// reach checks that both clients exist in every Region, so that a request never starts work it
// cannot finish for want of a client.
func (p *Provisioner) reach(regions []string) error {
	for _, r := range regions {
		sm, e := p.SMIn(r), p.ECRIn(r)
		if sm == nil || e == nil || isNilInterface(sm) || isNilInterface(e) {
			return fmt.Errorf("ReplicaRegions %q: the provisioner has no Secrets Manager or ECR client for that Region", r)
		}
	}
	return nil
}

// secrets tells OnSecret about values that must not reach a response.
func (p *Provisioner) secrets(ctx context.Context, values ...string) {
	if p.OnSecret != nil {
		p.OnSecret(ctx, values...)
	}
}

// sourceSecrets tells OnSecret about every string in a source secret's JSON: which fields are
// secret differs per upstream, and none of them belongs in a response. Only the endpoint fields
// (named …Url) and "mode" (a fixed word such as "staged", which would otherwise be scrubbed from
// every log line and refused in a physical id) are left out, by name, so that errors can still
// say which host failed; a value is never judged by its looks (a password may well start with
// "http").
func (p *Provisioner) sourceSecrets(ctx context.Context, doc string) {
	var m map[string]any
	if json.Unmarshal([]byte(doc), &m) != nil {
		p.secrets(ctx, doc)
		return
	}
	for k, v := range m {
		if s, ok := v.(string); ok && len(s) >= 6 && !strings.HasSuffix(strings.ToLower(k), "url") && k != "mode" {
			p.secrets(ctx, s)
		}
	}
}

// The operations live one per file (create.go, update.go, delete.go, with undo.go for Create's
// undo and ids.go for what ids and tags encode); what follows here is what several of them share.

func (p *Provisioner) log() *slog.Logger {
	if p.Logger != nil {
		return p.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// upstream builds the upstream the properties name, for minting into props.SecretName: the
// source secret must allow that managed secret (its BindingField).
//
// An upstream whose credentials live a fixed time (upstream.RotationBounded) also needs a
// RotationSchedule that rotates at least twice per lifetime; a rate() schedule that does not is
// refused before anything is minted (a cron schedule is not measured).
func (p *Provisioner) upstream(ctx context.Context, props Properties) (upstream.Upstream, error) {
	up, err := p.fromSource(ctx, "SourceSecretArn", props.UpstreamRegistry, props.SourceSecretArn, props.UpstreamRegistryURL, props.SecretName)
	if err != nil {
		return nil, err
	}
	if b, ok := up.(upstream.RotationBounded); ok {
		if every, ok := RateInterval(props.RotationSchedule); ok && every > b.MaxRotationInterval() {
			return nil, fmt.Errorf("RotationSchedule %q rotates every %s, but %s credentials from this source secret live %s: rotate at least twice per lifetime (at most every %s), or raise the source secret's lifetime",
				props.RotationSchedule, every, props.UpstreamRegistry, 2*b.MaxRotationInterval(), b.MaxRotationInterval())
		}
	}
	return up, nil
}

// fromSource builds an upstream with upstream.FromSource, telling OnSecret every value of the
// source secret first. name is how the ARN's owner knows it: the property, or the tag.
// forSecret is the managed secret it mints for; "" builds it only to revoke (Delete), without
// the binding check.
func (p *Provisioner) fromSource(ctx context.Context, name, registry, sourceARN, registryURL, forSecret string) (upstream.Upstream, error) {
	if forSecret == "" {
		// Revoking needs no login check, so no registry: a tag since pointed at another host
		// must not keep Delete from taking back what was minted.
		registryURL = ""
	}
	return upstream.FromSource(ctx, p.SM, upstream.SourceRequest{
		Name: name, Registry: registry, ARN: sourceARN, Providers: p.Providers,
		ForSecret: forSecret, RevokeOnly: forSecret == "",
		Options: p.upstreamOptions(registryURL),
		Seen:    func(doc string) { p.sourceSecrets(ctx, doc) },
	})
}

func (p *Provisioner) upstreamOptions(registryURL string) upstream.Options {
	return upstream.Options{HTTPClient: p.HTTPClient, Now: p.Now, Logger: p.log(), RegistryURL: registryURL, Sleep: p.Sleep,
		RegistryURLField: "UpstreamRegistryUrl", Standins: p.Standins, WebIdentity: p.WebIdentity, FederatedBindings: p.FederatedBindings}
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

func (p *Provisioner) describeRule(ctx context.Context, e ECR, prefix string) (*ecrtypes.PullThroughCacheRule, error) {
	out, err := e.DescribePullThroughCacheRules(ctx, &ecr.DescribePullThroughCacheRulesInput{EcrRepositoryPrefixes: []string{prefix}})
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

func (p *Provisioner) deleteRule(ctx context.Context, e ECR, prefix string) error {
	_, err := e.DeletePullThroughCacheRule(ctx, &ecr.DeletePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String(prefix)})
	var nf *ecrtypes.PullThroughCacheRuleNotFoundException
	if err != nil && !errors.As(err, &nf) {
		return fmt.Errorf("deleting the pull-through cache rule for %q: %w", prefix, err)
	}
	return nil
}

func (p *Provisioner) describeSecret(ctx context.Context, sm SecretsManager, name string) (*secretsmanager.DescribeSecretOutput, error) {
	out, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
	var nf *smtypes.ResourceNotFoundException
	switch {
	case errors.As(err, &nf):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("looking up secret %s: %w", name, err)
	}
	return out, nil
}

// secretTags are the tags a managed secret carries; mac is its ownership proof (OwnerMAC).
func secretTags(owner, mac string, props Properties) []smtypes.Tag {
	tags := []smtypes.Tag{
		{Key: aws.String(ptcsecret.TagUpstream), Value: aws.String(props.UpstreamRegistry)},
		{Key: aws.String(ptcsecret.TagSourceSecret), Value: aws.String(props.SourceSecretArn)},
		{Key: aws.String(ptcsecret.TagManagedBy), Value: aws.String(owner)},
		{Key: aws.String(ptcsecret.TagOwnerMAC), Value: aws.String(mac)},
		{Key: aws.String(ptcsecret.TagRegistryURL), Value: aws.String(props.UpstreamRegistryURL)},
	}
	for k, v := range props.Tags {
		tags = append(tags, smtypes.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	return tags
}

// data is what the resource returns (Fn::GetAtt): the home Region's names, plus Regions (home
// first, then ReplicaRegions) and ReplicaSecretArns (in ReplicaRegions' order), comma-separated
// so that a template can !Split them.
func data(st stack, props Properties, secretARN string, replicaARNs []string) map[string]string {
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
		"Regions":             strings.Join(append([]string{st.region}, props.ReplicaRegions...), ","),
		"ReplicaSecretArns":   strings.Join(replicaARNs, ","),
	}
}

// maxResponseBytes is CloudFormation's limit on a custom resource's whole answer; the response
// layer (internal/customresource) turns a SUCCESS whose Data does not fit into FAILED.
const maxResponseBytes = 4096

// dataFits checks, before anything is made, that the answer to this request will fit
// CloudFormation's limit with the Data its ReplicaRegions add (each replica's ARN, as long as
// the home one): a set that would be made and then reported FAILED must not be made at all.
func dataFits(req Request, st stack, props Properties) error {
	home := "arn:" + st.partition + ":secretsmanager:" + st.region + ":" + st.account + ":secret:" + props.SecretName + "-AbCdEf"
	var replicas []string
	for _, r := range props.ReplicaRegions {
		replicas = append(replicas, replicaARN(home, r))
	}
	body, _ := json.Marshal(map[string]any{
		"Status": "SUCCESS", "Reason": "", "RequestId": "00000000-0000-0000-0000-000000000000",
		"StackId": req.StackID, "LogicalResourceId": req.LogicalID,
		"PhysicalResourceId": PhysicalID(props.EcrRepositoryPrefix, props.SecretName),
		"Data":               data(st, props, home, replicas),
	})
	if n := len(body); n > maxResponseBytes {
		return fmt.Errorf("ReplicaRegions: with %d replica Regions the answer to CloudFormation would be about %d bytes, over its %d-byte limit (each Region adds its secret ARN to ReplicaSecretArns); use fewer Regions or a shorter SecretName",
			len(props.ReplicaRegions), n, maxResponseBytes)
	}
	return nil
}

func ignoreNotFound(err error) error {
	var nf *smtypes.ResourceNotFoundException
	if errors.As(err, &nf) {
		return nil
	}
	return err
}
