package testenv

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// FakeRotationLambdaARN names a function moto does not have. moto's RotateSecret stages the
// pending version (empty, or a copy of AWSCURRENT when RotateImmediately is false) before it
// looks the function up and fails; that staged version is exactly what Secrets Manager hands the
// rotation function, so the tests then invoke the steps themselves, as Secrets Manager would.
// LocalSM stages the same version, answers success and fails only its own (absent) invocation.
const FakeRotationLambdaARN = "arn:aws:lambda:us-east-1:123456789012:function:ptc-rotator-under-test"

// BeginRotation does what Secrets Manager does before invoking createSecret: stage an
// AWSPENDING version with id token. With immediately=false the pending version is a copy of the
// current value and only testSecret is to be run.
//
// moto 5.2.1 treats AWSPENDING left on the AWSCURRENT version as "rotation still in progress"
// (AWS documents the opposite: that state is a finished rotation), so the leftover label is
// removed first.
func BeginRotation(ctx context.Context, sm *secretsmanager.Client, secretID, token string, immediately bool) error {
	return beginRotation(ctx, sm, secretID, token, immediately, 30)
}

func beginRotation(ctx context.Context, sm *secretsmanager.Client, secretID, token string, immediately bool, days int64) error {
	d, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(secretID)})
	if err != nil {
		return err
	}
	for id, stages := range d.VersionIdsToStages {
		if slices.Contains(stages, "AWSPENDING") && slices.Contains(stages, "AWSCURRENT") {
			if _, err := sm.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
				SecretId: aws.String(secretID), VersionStage: aws.String("AWSPENDING"), RemoveFromVersionId: aws.String(id),
			}); err != nil {
				return fmt.Errorf("clearing AWSPENDING left on the current version: %w", err)
			}
		}
	}
	_, err = sm.RotateSecret(ctx, &secretsmanager.RotateSecretInput{
		SecretId:           aws.String(secretID),
		ClientRequestToken: aws.String(token),
		RotationLambdaARN:  aws.String(FakeRotationLambdaARN),
		RotationRules:      &smtypes.RotationRulesType{AutomaticallyAfterDays: aws.Int64(days)},
		RotateImmediately:  aws.Bool(immediately),
	})
	var nf *smtypes.ResourceNotFoundException
	if errors.As(err, &nf) && strings.Contains(err.Error(), "ptc-rotator-under-test") {
		return nil
	}
	if err != nil {
		return err
	}
	// Success is what LocalSM answers. It is right only if the staged version is still just
	// pending: a server that ran a rotation function itself (moto's Docker-free Lambda backend
	// moves AWSCURRENT onto the empty version) would leave nothing for the test's steps to do.
	after, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(secretID)})
	if err != nil {
		return err
	}
	if st := after.VersionIdsToStages[token]; !slices.Contains(st, "AWSPENDING") || slices.Contains(st, "AWSCURRENT") {
		return fmt.Errorf("RotateSecret ran a rotation function instead of only staging version %s (stages %v)", token, st)
	}
	return nil
}

// Stages returns version id -> staging labels.
func Stages(ctx context.Context, sm *secretsmanager.Client, secretID string) (map[string][]string, error) {
	d, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(secretID)})
	if err != nil {
		return nil, err
	}
	return d.VersionIdsToStages, nil
}

// VersionWith returns the version id carrying stage, or "".
func VersionWith(stages map[string][]string, stage string) string {
	for id, s := range stages {
		if slices.Contains(s, stage) {
			return id
		}
	}
	return ""
}

// ValueOf reads the value of a version, naming both version and stage (moto may return a stale
// value for a bare stage read after UpdateSecretVersionStage).
func ValueOf(ctx context.Context, sm *secretsmanager.Client, secretID, versionID string) (string, error) {
	out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(secretID), VersionId: aws.String(versionID)})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.SecretString), nil
}

// The two function roles and the ownership key the test worlds give the provisioner
// (provision.Provisioner.RotatorRoleARN, ProvisionerRoleARN, OwnerKey), in the emulated
// account. OtherTeamRoleARN is a principal of the same account that is neither: the attacker
// of the trust-model tests.
const (
	RotatorRoleARN     = "arn:aws:iam::123456789012:role/ptc-rotator-role"
	ProvisionerRoleARN = "arn:aws:iam::123456789012:role/ptc-provisioner-role"
	OtherTeamRoleARN   = "arn:aws:iam::123456789012:role/another-team"
	// OwnerKey is the ownership-proof key: 64 characters, as the template generates it.
	OwnerKey = "test-owner-key-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN"
)
