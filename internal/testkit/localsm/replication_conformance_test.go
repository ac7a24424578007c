package localsm_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/localsm"
)

// The replication script: the multi-Region calls the provisioner, the rotator and ECR make on
// a secret with replicas (issue 16), in their shapes, run against a localsm.Cluster and against
// moto_server (which keeps one backend per Region behind one endpoint, chosen by the SigV4
// credential scope, as the Cluster does). Each step runs in one Region: its client is signed for
// that Region and nothing else differs. The primary is in repHome; the replicas in repWest and
// repEU, and repSouth joins and leaves on Update.

const (
	repHome  = "us-east-1"
	repWest  = "us-west-2"
	repEU    = "eu-west-1"
	repSouth = "ap-south-1"
	// repSecret is the managed secret with replicas; repCollide is a second one whose name a
	// person's secret already holds in repEU.
	repSecret  = "ecr-pullthroughcache/conformance-multi"
	repCollide = "ecr-pullthroughcache/conformance-collide"
)

// repRegions are the Cluster's Regions for the script.
var repRegions = []string{repHome, repWest, repEU, repSouth}

// newRegionConf is a conf whose steps may run in any Region of endpoint.
func newRegionConf(ctx context.Context, endpoint string) *conf {
	c := newConf(ctx, regionClient(endpoint, repHome))
	c.endpoint = endpoint
	return c
}

// smIn is the non-retrying client for region (the same endpoint, signed for that Region).
func (c *conf) smIn(region string) *secretsmanager.Client {
	if c.in == nil {
		c.in = map[string]*secretsmanager.Client{}
	}
	if c.in[region] == nil {
		c.in[region] = regionClient(c.endpoint, region)
	}
	return c.in[region]
}

// arnIn is key's ARN as region holds it: the primary's with that Region in it (the
// replication guide: "The ARN for a replicated secret is the same as the primary secret except
// for the Region").
func (c *conf) arnIn(key, region string) string {
	return strings.Replace(c.arns[key], ":"+repHome+":", ":"+region+":", 1)
}

// rarn renders an ARN as <key@region> when it is key's ARN in that Region, and another
// secret's as other@region (its random suffix is each server's own).
func (c *conf) rarn(arn string) string {
	for key := range c.arns {
		for _, r := range repRegions {
			if arn == c.arnIn(key, r) {
				return "<" + key + "@" + r + ">"
			}
		}
	}
	if parts := strings.Split(arn, ":"); len(parts) == 7 {
		return "other@" + parts[3]
	}
	return "not an ARN: " + arn
}

// fmtRepl renders ReplicationStatus as Region:Status:key ("default" for aws/secretsmanager),
// in the order answered. StatusMessage is not compared: its wording is each server's own.
func fmtRepl(rs []smtypes.ReplicationStatusType) string {
	if len(rs) == 0 {
		return "none"
	}
	parts := make([]string, len(rs))
	for i, r := range rs {
		key := aws.ToString(r.KmsKeyId)
		if key == localsm.DefaultReplicaKMSKey {
			key = "default"
		}
		parts[i] = fmt.Sprintf("%s:%s:%s", aws.ToString(r.Region), r.Status, orDash(key))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// rcreate is CreateSecret as the provisioner makes it for a secret with replicas: Name,
// ClientRequestToken, SecretString, Description, Tags and AddReplicaRegions without KmsKeyId
// (ECR reads only secrets under the aws/secretsmanager key, in every Region).
func (c *conf) rcreate(key, name string, n int, value string, force bool, regions ...string) string {
	in := &secretsmanager.CreateSecretInput{
		Name: aws.String(name), ClientRequestToken: aws.String(tok(n)), SecretString: aws.String(value),
		Description: aws.String("ECR pull-through cache credential, replicated"),
		Tags:        []smtypes.Tag{{Key: aws.String("ptc:managed-by"), Value: aws.String(confManagedBy)}},
	}
	for _, r := range regions {
		in.AddReplicaRegions = append(in.AddReplicaRegions, smtypes.ReplicaRegionType{Region: aws.String(r)})
	}
	if force {
		in.ForceOverwriteReplicaSecret = true
	}
	out, err := c.smIn(repHome).CreateSecret(c.ctx, in)
	if err != nil {
		return outcome(err)
	}
	c.arns[key] = aws.ToString(out.ARN)
	return fmt.Sprintf("ok name=%s version=%s arn=%s replication=%s", aws.ToString(out.Name), c.vname(aws.ToString(out.VersionId)),
		c.rarn(aws.ToString(out.ARN)), fmtRepl(out.ReplicationStatus))
}

// rdescribe is DescribeSecret in region by key's ARN there (or by name), rendering what the
// provisioner and ptc status read: the ARN, PrimaryRegion, the labelled versions (the replica
// wait compares AWSCURRENT with the primary's), Description, Tags and, when repl, the
// ReplicationStatus.
func (c *conf) rdescribe(region, key string, byName, repl bool) string {
	id := c.arnIn(key, region)
	if byName || c.arns[key] == "" {
		id = map[string]string{"multi": repSecret, "collide": repCollide}[key]
	}
	d, err := c.smIn(region).DescribeSecret(c.ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)})
	if err != nil {
		return outcome(err)
	}
	line := fmt.Sprintf("ok arn=%s primary-region=%s desc=%q tags=%s stages=%s", c.rarn(aws.ToString(d.ARN)), orDash(aws.ToString(d.PrimaryRegion)),
		aws.ToString(d.Description), fmtTags(d.Tags), c.fmtStages(d.VersionIdsToStages, false))
	if repl {
		line += " replication=" + fmtRepl(d.ReplicationStatus)
	}
	return line
}

// rget is GetSecretValue in region by key's ARN there, with stage when given (ECR reads
// AWSCURRENT of the rule's secret in its own Region).
func (c *conf) rget(region, key, stage string) string {
	in := &secretsmanager.GetSecretValueInput{SecretId: aws.String(c.arnIn(key, region))}
	if stage != "" {
		in.VersionStage = aws.String(stage)
	}
	out, err := c.smIn(region).GetSecretValue(c.ctx, in)
	if err != nil {
		return outcome(err)
	}
	return fmt.Sprintf("ok arn=%s version=%s value=%q", c.rarn(aws.ToString(out.ARN)), c.vname(aws.ToString(out.VersionId)), aws.ToString(out.SecretString))
}

// rreplicate is ReplicateSecretToRegions as the provisioner's Update makes it (new Regions
// only, default key).
func (c *conf) rreplicate(key string, force bool, regions ...string) string {
	in := &secretsmanager.ReplicateSecretToRegionsInput{SecretId: aws.String(c.arns[key]), ForceOverwriteReplicaSecret: force}
	for _, r := range regions {
		in.AddReplicaRegions = append(in.AddReplicaRegions, smtypes.ReplicaRegionType{Region: aws.String(r)})
	}
	out, err := c.smIn(repHome).ReplicateSecretToRegions(c.ctx, in)
	if err != nil {
		return outcome(err)
	}
	return fmt.Sprintf("ok arn=%s replication=%s", c.rarn(aws.ToString(out.ARN)), fmtRepl(out.ReplicationStatus))
}

// rremove is RemoveRegionsFromReplication as Update (a Region dropped) and Delete (all of
// them, before DeleteSecret) make it.
func (c *conf) rremove(key string, regions ...string) string {
	out, err := c.smIn(repHome).RemoveRegionsFromReplication(c.ctx, &secretsmanager.RemoveRegionsFromReplicationInput{
		SecretId: aws.String(c.arns[key]), RemoveReplicaRegions: regions})
	if err != nil {
		return outcome(err)
	}
	return fmt.Sprintf("ok arn=%s replication=%s", c.rarn(aws.ToString(out.ARN)), fmtRepl(out.ReplicationStatus))
}

// rupdate is UpdateSecret with Description only, in region (the Description property).
func (c *conf) rupdate(region, key, desc string) string {
	out, err := c.smIn(region).UpdateSecret(c.ctx, &secretsmanager.UpdateSecretInput{SecretId: aws.String(c.arnIn(key, region)), Description: aws.String(desc)})
	if err != nil {
		return outcome(err)
	}
	return fmt.Sprintf("ok arn=%s version=%s", c.rarn(aws.ToString(out.ARN)), orDash(c.vnameOrEmpty(aws.ToString(out.VersionId))))
}

func (c *conf) vnameOrEmpty(id string) string {
	if id == "" {
		return ""
	}
	return c.vname(id)
}

// rput is PutSecretValue in region by key's ARN there (createSecret's shape: a version and
// VersionStages).
func (c *conf) rput(region, key string, n int, value string, stages ...string) string {
	out, err := c.smIn(region).PutSecretValue(c.ctx, &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(c.arnIn(key, region)), ClientRequestToken: aws.String(tok(n)), SecretString: aws.String(value), VersionStages: stages})
	if err != nil {
		return outcome(err)
	}
	return fmt.Sprintf("ok version=%s", c.vname(aws.ToString(out.VersionId)))
}

// rstage is finishSecret's UpdateSecretVersionStage in the primary's Region.
func (c *conf) rstage(key string, move, remove int) string {
	_, err := c.smIn(repHome).UpdateSecretVersionStage(c.ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String(c.arns[key]), VersionStage: aws.String("AWSCURRENT"), MoveToVersionId: aws.String(tok(move)), RemoveFromVersionId: aws.String(tok(remove))})
	return okOr(err)
}

// rtag is TagResource in the primary's Region (the provisioner's Update).
func (c *conf) rtag(key, k, v string) string {
	_, err := c.smIn(repHome).TagResource(c.ctx, &secretsmanager.TagResourceInput{SecretId: aws.String(c.arns[key]),
		Tags: []smtypes.Tag{{Key: aws.String(k), Value: aws.String(v)}}})
	return okOr(err)
}

// rputpolicy is PutResourcePolicy in region by key's ARN there, the protecting policy.
func (c *conf) rputpolicy(region, key string) string {
	_, err := c.smIn(region).PutResourcePolicy(c.ctx, &secretsmanager.PutResourcePolicyInput{
		SecretId: aws.String(c.arnIn(key, region)), ResourcePolicy: aws.String(confPolicy), BlockPublicPolicy: aws.Bool(true)})
	return okOr(err)
}

// rgetpolicy is GetResourcePolicy in region by key's ARN there.
func (c *conf) rgetpolicy(region, key string) string {
	out, err := c.smIn(region).GetResourcePolicy(c.ctx, &secretsmanager.GetResourcePolicyInput{SecretId: aws.String(c.arnIn(key, region))})
	if err != nil {
		return outcome(err)
	}
	pol := "none"
	switch p := aws.ToString(out.ResourcePolicy); {
	case p == confPolicy:
		pol = "protecting"
	case p != "":
		pol = "other"
	}
	return fmt.Sprintf("ok arn=%s policy=%s", c.rarn(aws.ToString(out.ARN)), pol)
}

// rdelete is DeleteSecret in region by key's ARN there: ForceDeleteWithoutRecovery, or a
// recovery window.
func (c *conf) rdelete(region, key string, force bool) string {
	in := &secretsmanager.DeleteSecretInput{SecretId: aws.String(c.arnIn(key, region))}
	if force {
		in.ForceDeleteWithoutRecovery = aws.Bool(true)
	} else {
		in.RecoveryWindowInDays = aws.Int64(7)
	}
	out, err := c.smIn(region).DeleteSecret(c.ctx, in)
	if err != nil {
		msg := ""
		if strings.Contains(err.Error(), "still has replica regions") {
			msg = " (names the replica Regions)"
		}
		return outcome(err) + msg
	}
	return fmt.Sprintf("ok arn=%s", c.rarn(aws.ToString(out.ARN)))
}

// replicationScript is the multi-Region sequence (see the top of this file).
func replicationScript() []cstep {
	const v1, v2 = `{"username":"ptc-pull","accessToken":"multi-1"}`, `{"username":"ptc-pull","accessToken":"multi-2"}`
	inSync2 := "[us-west-2:InSync:default eu-west-1:InSync:default]"
	desc := `"ECR pull-through cache credential, replicated"`
	tags := "{ptc:managed-by=" + confManagedBy + "}"
	return []cstep{
		// --- provisioner Create ---
		{name: "Create: DescribeSecret by name in a replica Region before anything exists", run: func(c *conf) string { return c.rdescribe(repWest, "multi", true, true) }},
		{name: "Create: CreateSecret with AddReplicaRegions (no KmsKeyId), ClientRequestToken, Description, Tags", run: func(c *conf) string {
			return c.rcreate("multi", repSecret, 1, v1, false, repWest, repEU)
		},
			dev:  "replication-immediate",
			aws:  "ok name=" + repSecret + " version=v1 arn=<multi@us-east-1> replication=[us-west-2:InProgress:default eu-west-1:InProgress:default]",
			moto: "ok name=" + repSecret + " version=v1 arn=<multi@us-east-1> replication=" + inSync2},
		{name: "Create: PutResourcePolicy in the primary's Region, the protecting policy, BlockPublicPolicy", run: func(c *conf) string { return c.rputpolicy(repHome, "multi") }},
		{name: "Create: DescribeSecret by ARN in the primary's Region: ReplicationStatus", run: func(c *conf) string { return c.rdescribe(repHome, "multi", false, true) },
			dev:  "primary-region-on-primary",
			aws:  "ok arn=<multi@us-east-1> primary-region=us-east-1 desc=" + desc + " tags=" + tags + " stages={v1:[AWSCURRENT]} replication=" + inSync2,
			moto: "ok arn=<multi@us-east-1> primary-region=- desc=" + desc + " tags=" + tags + " stages={v1:[AWSCURRENT]} replication=" + inSync2},
		{name: "Create: the replica wait, DescribeSecret by the replica's ARN in its Region", run: func(c *conf) string { return c.rdescribe(repWest, "multi", false, true) },
			dev:  "replica-shows-replication-status",
			aws:  "ok arn=<multi@us-west-2> primary-region=us-east-1 desc=" + desc + " tags=" + tags + " stages={v1:[AWSCURRENT]} replication=none",
			moto: "ok arn=<multi@us-west-2> primary-region=us-east-1 desc=" + desc + " tags=" + tags + " stages={v1:[AWSCURRENT]} replication=" + inSync2},
		{name: "Create: DescribeSecret by name in the other replica Region", run: func(c *conf) string { return c.rdescribe(repEU, "multi", true, false) }},
		{name: "ECR in a replica Region reads the rule's secret: GetSecretValue by the replica's ARN + AWSCURRENT", run: func(c *conf) string {
			return c.rget(repWest, "multi", "AWSCURRENT")
		}},
		{name: "GetSecretValue in the other replica Region, no VersionStage", run: func(c *conf) string { return c.rget(repEU, "multi", "") }},
		{name: "the policy applies in the replica too: GetResourcePolicy by the replica's ARN in its Region", run: func(c *conf) string { return c.rgetpolicy(repEU, "multi") },
			dev: "replica-policy-read-refused", aws: "ok arn=<multi@eu-west-1> policy=protecting", moto: "err=InvalidParameterException"},

		// --- a replica is read-only ---
		{name: "PutSecretValue on the replica in its Region is refused", run: func(c *conf) string { return c.rput(repWest, "multi", 9, v2, "AWSPENDING") }},
		{name: "UpdateSecret Description on the replica in its Region is refused", run: func(c *conf) string { return c.rupdate(repEU, "multi", "x") }},
		{name: "PutResourcePolicy on the replica in its Region is refused", run: func(c *conf) string { return c.rputpolicy(repEU, "multi") }},
		{name: "DeleteSecret ForceDeleteWithoutRecovery on the replica in its Region is refused", run: func(c *conf) string { return c.rdelete(repWest, "multi", true) }},

		// --- a rotation in the primary's Region reaches the replicas ---
		{name: "createSecret: PutSecretValue v2 AWSPENDING in the primary's Region", run: func(c *conf) string { return c.rput(repHome, "multi", 2, v2, "AWSPENDING") }},
		{name: "finishSecret: UpdateSecretVersionStage AWSCURRENT to v2 in the primary's Region", run: func(c *conf) string { return c.rstage("multi", 2, 1) }},
		{name: "ptc status: DescribeSecret of the replica, AWSCURRENT converged", run: func(c *conf) string { return c.rdescribe(repWest, "multi", false, false) }},
		{name: "ECR in the other replica Region reads the new AWSCURRENT", run: func(c *conf) string { return c.rget(repEU, "multi", "AWSCURRENT") }},

		// --- provisioner Update: Description, tags, a Region added and one removed ---
		{name: "Update: UpdateSecret Description only, in the primary's Region", run: func(c *conf) string { return c.rupdate(repHome, "multi", "changed description") }},
		{name: "Update: TagResource in the primary's Region", run: func(c *conf) string { return c.rtag("multi", "team", "platform") }},
		{name: "Update: DescribeSecret of a replica shows the new Description and tags", run: func(c *conf) string { return c.rdescribe(repEU, "multi", false, false) }},
		{name: "Update: ReplicateSecretToRegions a new Region", run: func(c *conf) string { return c.rreplicate("multi", false, repSouth) },
			dev:  "replication-immediate",
			aws:  "ok arn=<multi@us-east-1> replication=[us-west-2:InSync:default eu-west-1:InSync:default ap-south-1:InProgress:default]",
			moto: "ok arn=<multi@us-east-1> replication=[us-west-2:InSync:default eu-west-1:InSync:default ap-south-1:InSync:default]"},
		{name: "Update: the replica wait in the new Region", run: func(c *conf) string { return c.rdescribe(repSouth, "multi", false, false) }},
		{name: "Update: RemoveRegionsFromReplication the Region dropped from ReplicaRegions", run: func(c *conf) string { return c.rremove("multi", repSouth) }},
		{name: "Update: the removed replica is gone from its Region", run: func(c *conf) string { return c.rdescribe(repSouth, "multi", false, false) }},
		{name: "Update retried: RemoveRegionsFromReplication of a Region no longer replicated", run: func(c *conf) string { return c.rremove("multi", repSouth) }},

		// --- provisioner Delete: replicas first ---
		{name: "Delete: DeleteSecret ForceDeleteWithoutRecovery of a primary with replicas is refused", run: func(c *conf) string { return c.rdelete(repHome, "multi", true) }},
		{name: "Delete: DeleteSecret RecoveryWindowInDays of a primary with replicas is refused", run: func(c *conf) string { return c.rdelete(repHome, "multi", false) }},
		{name: "Delete: RemoveRegionsFromReplication every replica Region", run: func(c *conf) string { return c.rremove("multi", repWest, repEU) }},
		{name: "Delete: the replica is gone from its Region", run: func(c *conf) string { return c.rget(repWest, "multi", "AWSCURRENT") }},
		{name: "Delete: DescribeSecret in the primary's Region, no replicas left", run: func(c *conf) string { return c.rdescribe(repHome, "multi", false, true) }},
		{name: "Delete: DeleteSecret ForceDeleteWithoutRecovery, now allowed", run: func(c *conf) string { return c.rdelete(repHome, "multi", true) }},
		{name: "Delete: DescribeSecret in the primary's Region of the gone secret", run: func(c *conf) string { return c.rdescribe(repHome, "multi", true, false) }},

		// --- a replica Region that already has a secret of that name ---
		{name: "setup: a person's secret of the same name in a replica Region", run: func(c *conf) string {
			_, err := c.smIn(repEU).CreateSecret(c.ctx, &secretsmanager.CreateSecretInput{Name: aws.String(repCollide), SecretString: aws.String("a person's")})
			return okOr(err)
		}},
		{name: "Create: CreateSecret with AddReplicaRegions into that Region", run: func(c *conf) string {
			return c.rcreate("collide", repCollide, 20, v1, false, repEU)
		},
			dev:  "replication-immediate",
			aws:  "ok name=" + repCollide + " version=v20 arn=<collide@us-east-1> replication=[eu-west-1:InProgress:default]",
			moto: "ok name=" + repCollide + " version=v20 arn=<collide@us-east-1> replication=[eu-west-1:Failed:default]"},
		{name: "Create: the replica wait sees ReplicationStatus Failed", run: func(c *conf) string { return c.rdescribe(repHome, "collide", false, true) },
			dev:  "primary-region-on-primary",
			aws:  "ok arn=<collide@us-east-1> primary-region=us-east-1 desc=" + desc + " tags=" + tags + " stages={v20:[AWSCURRENT]} replication=[eu-west-1:Failed:default]",
			moto: "ok arn=<collide@us-east-1> primary-region=- desc=" + desc + " tags=" + tags + " stages={v20:[AWSCURRENT]} replication=[eu-west-1:Failed:default]"},
		{name: "the person's secret is left alone", run: func(c *conf) string {
			out, err := c.smIn(repEU).GetSecretValue(c.ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(repCollide)})
			if err != nil {
				return outcome(err)
			}
			return fmt.Sprintf("ok arn=%s value=%q", c.rarn(aws.ToString(out.ARN)), aws.ToString(out.SecretString))
		}},
		{name: "undo: RemoveRegionsFromReplication the failed Region", run: func(c *conf) string { return c.rremove("collide", repEU) }},
		{name: "undo: the person's secret is still there", run: func(c *conf) string { return c.rdescribe(repEU, "collide", true, false) }},
		{name: "ReplicateSecretToRegions with ForceOverwriteReplicaSecret replaces it", run: func(c *conf) string { return c.rreplicate("collide", true, repEU) },
			dev: "replication-immediate", aws: "ok arn=<collide@us-east-1> replication=[eu-west-1:InProgress:default]", moto: "ok arn=<collide@us-east-1> replication=[eu-west-1:InSync:default]"},
		{name: "the Region now holds the replica", run: func(c *conf) string { return c.rget(repEU, "collide", "AWSCURRENT") }},
		{name: "CreateSecret with the primary's own Region as a replica Region is refused", run: func(c *conf) string {
			return c.rcreate("self", "ecr-pullthroughcache/conformance-self", 30, v1, false, repHome)
		}},
	}
}
