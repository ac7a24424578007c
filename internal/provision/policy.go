package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
)

// MaxPolicyLength is Secrets Manager's limit on a resource policy (PutResourcePolicy and
// ValidateResourcePolicy: ResourcePolicy, 1 to 20480 characters).
const MaxPolicyLength = 20480

// The statement ids of the protecting policy; docs/security.md explains each.
const (
	sidConfig = "PtcTagsOnlyByTheFunctions"
	sidValue  = "PtcValueOnlyByTheFunctions"
	sidPolicy = "PtcPolicyOnlyByTheProvisioner"
	sidAttach = "PtcReplicasStayAttached"
)

// ProtectingPolicy is the resource policy every managed secret carries. It only denies, so it
// grants nobody anything (ECR's service-linked role keeps reading through its own policy) and
// passes BlockPublicPolicy:
//
//   - TagResource / UntagResource touching any ptc:* key, for every principal but the two
//     function roles: the configuration and the ownership proof stay what the functions set;
//   - PutSecretValue, UpdateSecretVersionStage and CancelRotateSecret for every principal but
//     the two roles: only a rotation the rotator ran changes the token, and nobody else turns
//     rotation off;
//   - PutResourcePolicy / DeleteResourcePolicy for every principal but the provisioner role:
//     the policy cannot be lifted to get at the rest;
//   - StopReplicationToReplica for every principal but the provisioner role: it is called on a
//     replica, in the replica's Region, and would promote it to a standalone secret that no
//     rotation reaches any more — its Region's rule would fail once the token it holds is
//     revoked. Secrets Manager copies this policy to every replica, which is where it counts.
//
// DeleteSecret, GetSecretValue and RotateSecret stay with IAM: deleting stays possible (no
// secret is ever locked beyond its owner's reach), reading is ECR's job, and "rotate now" is an
// operator's (a RotateSecret naming another function cannot write the value either).
func ProtectingPolicy(rotatorRoleARN, provisionerRoleARN string) (string, error) {
	for name, v := range map[string]string{"ROTATOR_ROLE_ARN": rotatorRoleARN, "PROVISIONER_ROLE_ARN": provisionerRoleARN} {
		if !strings.HasPrefix(v, "arn:") || !strings.Contains(v, ":iam::") || !strings.Contains(v, ":role/") {
			return "", fmt.Errorf("the provisioner's %s is %q, not an IAM role ARN: deploy it with the template, which sets it", name, v)
		}
	}
	both := []string{rotatorRoleARN, provisionerRoleARN}
	doc := policyDoc{Version: "2012-10-17", Statement: []policyStatement{
		{Sid: sidConfig, Effect: "Deny", Principal: "*", Resource: "*",
			Action: []string{"secretsmanager:TagResource", "secretsmanager:UntagResource"},
			Condition: map[string]map[string]any{
				"ForAnyValue:StringLike": {"aws:TagKeys": []string{"ptc:*"}},
				"StringNotEquals":        {"aws:PrincipalArn": both},
			}},
		{Sid: sidValue, Effect: "Deny", Principal: "*", Resource: "*",
			// UpdateSecret too: with SecretString it stores a new AWSCURRENT (PutSecretValue by
			// another name), with KmsKeyId it moves the secret to a key ECR cannot use.
			// Replication copies the token to other Regions. Neither role calls any of these.
			Action: []string{"secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage", "secretsmanager:CancelRotateSecret",
				"secretsmanager:UpdateSecret", "secretsmanager:ReplicateSecretToRegions", "secretsmanager:RemoveRegionsFromReplication"},
			Condition: map[string]map[string]any{"StringNotEquals": {"aws:PrincipalArn": both}}},
		{Sid: sidPolicy, Effect: "Deny", Principal: "*", Resource: "*",
			Action:    []string{"secretsmanager:PutResourcePolicy", "secretsmanager:DeleteResourcePolicy"},
			Condition: map[string]map[string]any{"StringNotEquals": {"aws:PrincipalArn": []string{provisionerRoleARN}}}},
		{Sid: sidAttach, Effect: "Deny", Principal: "*", Resource: "*",
			Action:    []string{"secretsmanager:StopReplicationToReplica"},
			Condition: map[string]map[string]any{"StringNotEquals": {"aws:PrincipalArn": []string{provisionerRoleARN}}}},
	}}
	b, err := json.Marshal(doc)
	if err != nil {
		return "", err
	}
	if len(b) > MaxPolicyLength {
		return "", fmt.Errorf("the protecting policy is %d characters, over Secrets Manager's %d", len(b), MaxPolicyLength)
	}
	return string(b), nil
}

type policyDoc struct {
	Version   string            `json:"Version"`
	Statement []policyStatement `json:"Statement"`
}

type policyStatement struct {
	Sid       string                    `json:"Sid"`
	Effect    string                    `json:"Effect"`
	Principal string                    `json:"Principal"`
	Action    []string                  `json:"Action"`
	Resource  string                    `json:"Resource"`
	Condition map[string]map[string]any `json:"Condition"`
}

// samePolicy compares two policy documents as JSON values (Secrets Manager may hand a policy
// back re-serialized).
func samePolicy(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// protect gives the secret the protecting policy unless it already has exactly that one: it
// is checked with ValidateResourcePolicy first and put with BlockPublicPolicy. fresh says the
// secret was created by this very request, so it has no policy yet and needs no look.
func (p *Provisioner) protect(ctx context.Context, arn string, fresh bool) (changed bool, err error) {
	want, err := ProtectingPolicy(p.RotatorRoleARN, p.ProvisionerRoleARN)
	if err != nil {
		return false, err
	}
	name := ptcsecret.NameFromARN(arn)
	if !fresh {
		got, err := p.SM.GetResourcePolicy(ctx, &secretsmanager.GetResourcePolicyInput{SecretId: aws.String(arn)})
		if err != nil {
			return false, fmt.Errorf("reading the resource policy of %s: %w", name, err)
		}
		if samePolicy(aws.ToString(got.ResourcePolicy), want) {
			return false, nil
		}
	}
	v, err := p.SM.ValidateResourcePolicy(ctx, &secretsmanager.ValidateResourcePolicyInput{SecretId: aws.String(arn), ResourcePolicy: aws.String(want)})
	if err != nil {
		return false, fmt.Errorf("validating the resource policy of %s: %w", name, err)
	}
	if !v.PolicyValidationPassed {
		var msgs []string
		for _, e := range v.ValidationErrors {
			msgs = append(msgs, aws.ToString(e.CheckName)+": "+aws.ToString(e.ErrorMessage))
		}
		return false, errors.New("Secrets Manager refused the protecting resource policy of " + name + ": " + strings.Join(msgs, "; "))
	}
	if _, err := p.SM.PutResourcePolicy(ctx, &secretsmanager.PutResourcePolicyInput{
		SecretId: aws.String(arn), ResourcePolicy: aws.String(want), BlockPublicPolicy: aws.Bool(true),
	}); err != nil {
		return false, fmt.Errorf("putting the resource policy on %s: %w", name, err)
	}
	return true, nil
}
