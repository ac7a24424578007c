package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// RotatingSecretsManager is moto's Secrets Manager plus the one thing moto cannot do here:
// invoke the rotation function (moto runs Lambda functions only in Docker). RotateSecret stages
// the pending version in moto exactly as Secrets Manager does, then calls Invoke for each step
// — all four, or only testSecret when RotateImmediately is false, after which the pending copy
// is dropped as Secrets Manager drops it.
//
// Secrets Manager runs the rotation after RotateSecret has answered, so a failing step does not
// fail the call: it is recorded in Failures, where tests look for it.
//
// moto 5.2.1 marks rotation enabled only for AutomaticallyAfterDays, so a rate(N days)
// schedule is handed to moto in that form (hours and cron schedules as 1 day); DescribeSecret
// then shows the fake rotation function ARN (FakeRotationLambdaARN).
type RotatingSecretsManager struct {
	*secretsmanager.Client
	// Invoke runs one rotation step, as the rotation Lambda would.
	Invoke func(ctx context.Context, step, secretID, token string) error

	mu       sync.Mutex
	failures []error
	calls    int
}

var rateDaysRE = regexp.MustCompile(`^rate\((\d+) days?\)$`)

// RotateSecret implements the rotation API over moto.
func (r *RotatingSecretsManager) RotateSecret(ctx context.Context, in *secretsmanager.RotateSecretInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.RotateSecretOutput, error) {
	r.mu.Lock()
	r.calls++
	r.mu.Unlock()
	token := aws.ToString(in.ClientRequestToken)
	if token == "" {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		h := hex.EncodeToString(b)
		token = h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
	}
	days := int64(1)
	if in.RotationRules != nil {
		if m := rateDaysRE.FindStringSubmatch(aws.ToString(in.RotationRules.ScheduleExpression)); m != nil {
			days, _ = strconv.ParseInt(m[1], 10, 64)
		}
		if in.RotationRules.AutomaticallyAfterDays != nil {
			days = *in.RotationRules.AutomaticallyAfterDays
		}
	}
	immediately := in.RotateImmediately == nil || *in.RotateImmediately
	if err := beginRotation(ctx, r.Client, aws.ToString(in.SecretId), token, immediately, days); err != nil {
		return nil, err
	}
	desc, err := r.Client.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: in.SecretId})
	if err != nil {
		return nil, err
	}
	steps := []string{"createSecret", "setSecret", "testSecret", "finishSecret"}
	if !immediately {
		steps = []string{"testSecret"}
	}
	for _, step := range steps {
		if err := r.Invoke(ctx, step, aws.ToString(desc.ARN), token); err != nil {
			r.mu.Lock()
			r.failures = append(r.failures, fmt.Errorf("%s: %w", step, err))
			r.mu.Unlock()
			break
		}
	}
	if !immediately {
		_, _ = r.Client.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
			SecretId: desc.ARN, VersionStage: aws.String("AWSPENDING"), RemoveFromVersionId: aws.String(token),
		})
	}
	return &secretsmanager.RotateSecretOutput{ARN: desc.ARN, Name: desc.Name, VersionId: aws.String(token)}, nil
}

// Failures returns the rotation steps that failed, in order.
func (r *RotatingSecretsManager) Failures() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.failures...)
}

// RotateCalls counts RotateSecret calls.
func (r *RotatingSecretsManager) RotateCalls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}
