package benchkit

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/ptc-credentials/ptc-credentials/internal/provision"
	"github.com/ptc-credentials/ptc-credentials/internal/rotation"
)

// Counts tallies calls by operation name. It is safe for concurrent use.
type Counts struct {
	mu sync.Mutex
	m  map[string]int
}

// Add records n calls of op.
func (c *Counts) Add(op string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]int{}
	}
	c.m[op] += n
}

// Snapshot returns a copy of the tallies.
func (c *Counts) Snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.m)
}

// Total is the sum over every operation.
func (c *Counts) Total() int {
	n := 0
	for _, v := range c.Snapshot() {
		n += v
	}
	return n
}

// Reset forgets every tally.
func (c *Counts) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m = nil
}

// String lists "Op=n" sorted by operation, for benchmark logs and BENCHMARKS.md.
func (c *Counts) String() string {
	s := c.Snapshot()
	keys := slices.Sorted(maps.Keys(s))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + strconv.Itoa(s[k])
	}
	return strings.Join(parts, " ")
}

// CountingSM is a rotation.SecretsManager decorator that counts every call the rotator makes.
type CountingSM struct {
	Inner  rotation.SecretsManager
	Counts *Counts
}

var _ rotation.SecretsManager = CountingSM{}

// DescribeSecret implements rotation.SecretsManager.
func (c CountingSM) DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, o ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error) {
	c.Counts.Add("DescribeSecret", 1)
	return c.Inner.DescribeSecret(ctx, in, o...)
}

// GetSecretValue implements rotation.SecretsManager.
func (c CountingSM) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, o ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	c.Counts.Add("GetSecretValue", 1)
	return c.Inner.GetSecretValue(ctx, in, o...)
}

// PutSecretValue implements rotation.SecretsManager.
func (c CountingSM) PutSecretValue(ctx context.Context, in *secretsmanager.PutSecretValueInput, o ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error) {
	c.Counts.Add("PutSecretValue", 1)
	return c.Inner.PutSecretValue(ctx, in, o...)
}

// UpdateSecretVersionStage implements rotation.SecretsManager.
func (c CountingSM) UpdateSecretVersionStage(ctx context.Context, in *secretsmanager.UpdateSecretVersionStageInput, o ...func(*secretsmanager.Options)) (*secretsmanager.UpdateSecretVersionStageOutput, error) {
	c.Counts.Add("UpdateSecretVersionStage", 1)
	return c.Inner.UpdateSecretVersionStage(ctx, in, o...)
}

// TagResource implements rotation.SecretsManager.
func (c CountingSM) TagResource(ctx context.Context, in *secretsmanager.TagResourceInput, o ...func(*secretsmanager.Options)) (*secretsmanager.TagResourceOutput, error) {
	c.Counts.Add("TagResource", 1)
	return c.Inner.TagResource(ctx, in, o...)
}

// CountingProvisionSM is a provision.SecretsManager decorator that counts every call the
// provisioner makes.
type CountingProvisionSM struct {
	Inner  provision.SecretsManager
	Counts *Counts
}

var _ provision.SecretsManager = CountingProvisionSM{}

// CreateSecret implements provision.SecretsManager.
func (c CountingProvisionSM) CreateSecret(ctx context.Context, in *secretsmanager.CreateSecretInput, o ...func(*secretsmanager.Options)) (*secretsmanager.CreateSecretOutput, error) {
	c.Counts.Add("CreateSecret", 1)
	return c.Inner.CreateSecret(ctx, in, o...)
}

// DescribeSecret implements provision.SecretsManager.
func (c CountingProvisionSM) DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, o ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error) {
	c.Counts.Add("DescribeSecret", 1)
	return c.Inner.DescribeSecret(ctx, in, o...)
}

// GetSecretValue implements provision.SecretsManager.
func (c CountingProvisionSM) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, o ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	c.Counts.Add("GetSecretValue", 1)
	return c.Inner.GetSecretValue(ctx, in, o...)
}

// UpdateSecretVersionStage implements provision.SecretsManager.
func (c CountingProvisionSM) UpdateSecretVersionStage(ctx context.Context, in *secretsmanager.UpdateSecretVersionStageInput, o ...func(*secretsmanager.Options)) (*secretsmanager.UpdateSecretVersionStageOutput, error) {
	c.Counts.Add("UpdateSecretVersionStage", 1)
	return c.Inner.UpdateSecretVersionStage(ctx, in, o...)
}

// TagResource implements provision.SecretsManager.
func (c CountingProvisionSM) TagResource(ctx context.Context, in *secretsmanager.TagResourceInput, o ...func(*secretsmanager.Options)) (*secretsmanager.TagResourceOutput, error) {
	c.Counts.Add("TagResource", 1)
	return c.Inner.TagResource(ctx, in, o...)
}

// UntagResource implements provision.SecretsManager.
func (c CountingProvisionSM) UntagResource(ctx context.Context, in *secretsmanager.UntagResourceInput, o ...func(*secretsmanager.Options)) (*secretsmanager.UntagResourceOutput, error) {
	c.Counts.Add("UntagResource", 1)
	return c.Inner.UntagResource(ctx, in, o...)
}

// RotateSecret implements provision.SecretsManager.
func (c CountingProvisionSM) RotateSecret(ctx context.Context, in *secretsmanager.RotateSecretInput, o ...func(*secretsmanager.Options)) (*secretsmanager.RotateSecretOutput, error) {
	c.Counts.Add("RotateSecret", 1)
	return c.Inner.RotateSecret(ctx, in, o...)
}

// DeleteSecret implements provision.SecretsManager.
func (c CountingProvisionSM) DeleteSecret(ctx context.Context, in *secretsmanager.DeleteSecretInput, o ...func(*secretsmanager.Options)) (*secretsmanager.DeleteSecretOutput, error) {
	c.Counts.Add("DeleteSecret", 1)
	return c.Inner.DeleteSecret(ctx, in, o...)
}

// CountingECR is a provision.ECR decorator that counts every call the provisioner makes.
type CountingECR struct {
	Inner  provision.ECR
	Counts *Counts
}

var _ provision.ECR = CountingECR{}

// CreatePullThroughCacheRule implements provision.ECR.
func (c CountingECR) CreatePullThroughCacheRule(ctx context.Context, in *ecr.CreatePullThroughCacheRuleInput, o ...func(*ecr.Options)) (*ecr.CreatePullThroughCacheRuleOutput, error) {
	c.Counts.Add("CreatePullThroughCacheRule", 1)
	return c.Inner.CreatePullThroughCacheRule(ctx, in, o...)
}

// DescribePullThroughCacheRules implements provision.ECR.
func (c CountingECR) DescribePullThroughCacheRules(ctx context.Context, in *ecr.DescribePullThroughCacheRulesInput, o ...func(*ecr.Options)) (*ecr.DescribePullThroughCacheRulesOutput, error) {
	c.Counts.Add("DescribePullThroughCacheRules", 1)
	return c.Inner.DescribePullThroughCacheRules(ctx, in, o...)
}

// DeletePullThroughCacheRule implements provision.ECR.
func (c CountingECR) DeletePullThroughCacheRule(ctx context.Context, in *ecr.DeletePullThroughCacheRuleInput, o ...func(*ecr.Options)) (*ecr.DeletePullThroughCacheRuleOutput, error) {
	c.Counts.Add("DeletePullThroughCacheRule", 1)
	return c.Inner.DeletePullThroughCacheRule(ctx, in, o...)
}

// ValidatePullThroughCacheRule implements provision.ECR.
func (c CountingECR) ValidatePullThroughCacheRule(ctx context.Context, in *ecr.ValidatePullThroughCacheRuleInput, o ...func(*ecr.Options)) (*ecr.ValidatePullThroughCacheRuleOutput, error) {
	c.Counts.Add("ValidatePullThroughCacheRule", 1)
	return c.Inner.ValidatePullThroughCacheRule(ctx, in, o...)
}

// GetResourcePolicy implements provision.SecretsManager.
func (c CountingProvisionSM) GetResourcePolicy(ctx context.Context, in *secretsmanager.GetResourcePolicyInput, o ...func(*secretsmanager.Options)) (*secretsmanager.GetResourcePolicyOutput, error) {
	c.Counts.Add("GetResourcePolicy", 1)
	return c.Inner.GetResourcePolicy(ctx, in, o...)
}

// ValidateResourcePolicy implements provision.SecretsManager.
func (c CountingProvisionSM) ValidateResourcePolicy(ctx context.Context, in *secretsmanager.ValidateResourcePolicyInput, o ...func(*secretsmanager.Options)) (*secretsmanager.ValidateResourcePolicyOutput, error) {
	c.Counts.Add("ValidateResourcePolicy", 1)
	return c.Inner.ValidateResourcePolicy(ctx, in, o...)
}

// PutResourcePolicy implements provision.SecretsManager.
func (c CountingProvisionSM) PutResourcePolicy(ctx context.Context, in *secretsmanager.PutResourcePolicyInput, o ...func(*secretsmanager.Options)) (*secretsmanager.PutResourcePolicyOutput, error) {
	c.Counts.Add("PutResourcePolicy", 1)
	return c.Inner.PutResourcePolicy(ctx, in, o...)
}

// ReplicateSecretToRegions implements provision.SecretsManager.
func (c CountingProvisionSM) ReplicateSecretToRegions(ctx context.Context, in *secretsmanager.ReplicateSecretToRegionsInput, o ...func(*secretsmanager.Options)) (*secretsmanager.ReplicateSecretToRegionsOutput, error) {
	c.Counts.Add("ReplicateSecretToRegions", 1)
	return c.Inner.ReplicateSecretToRegions(ctx, in, o...)
}

// RemoveRegionsFromReplication implements provision.SecretsManager.
func (c CountingProvisionSM) RemoveRegionsFromReplication(ctx context.Context, in *secretsmanager.RemoveRegionsFromReplicationInput, o ...func(*secretsmanager.Options)) (*secretsmanager.RemoveRegionsFromReplicationOutput, error) {
	c.Counts.Add("RemoveRegionsFromReplication", 1)
	return c.Inner.RemoveRegionsFromReplication(ctx, in, o...)
}

// UpdateSecret implements provision.SecretsManager.
func (c CountingProvisionSM) UpdateSecret(ctx context.Context, in *secretsmanager.UpdateSecretInput, o ...func(*secretsmanager.Options)) (*secretsmanager.UpdateSecretOutput, error) {
	c.Counts.Add("UpdateSecret", 1)
	return c.Inner.UpdateSecret(ctx, in, o...)
}
