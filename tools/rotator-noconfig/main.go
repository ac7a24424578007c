// Command rotator-noconfig is functions/rotator with one change, built only to measure it: the
// aws.Config is assembled from the variables Lambda sets (AWS_REGION, AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) and AWS_ENDPOINT_URL_SECRETS_MANAGER, instead of
// config.LoadDefaultConfig, which links the shared-config parser and the STS, SSO, SSO-OIDC and
// sign-in clients a Lambda function never uses. BENCHMARKS.md reports what that saves in
// binary size and cold start; it is not a product binary.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/ptc-credentials/ptc-credentials/internal/logging"
	"github.com/ptc-credentials/ptc-credentials/internal/metrics"
	"github.com/ptc-credentials/ptc-credentials/internal/rotation"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/providers"
)

func main() {
	log := logging.New(os.Stderr)
	cfg := aws.Config{
		Region: os.Getenv("AWS_REGION"),
		Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(
			os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), os.Getenv("AWS_SESSION_TOKEN"))),
	}
	sm := secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) {
		if ep := os.Getenv("AWS_ENDPOINT_URL_SECRETS_MANAGER"); ep != "" {
			o.BaseEndpoint = aws.String(ep)
		}
	})
	r := &rotation.Rotator{
		SM:        sm,
		Providers: providers.All(),
		Logger:    log,
		Metrics:   &metrics.Emitter{W: os.Stdout},
	}
	slog.SetDefault(log)
	lambda.Start(func(ctx context.Context, ev events.SecretsManagerSecretRotationEvent) error {
		return r.Handle(ctx, rotation.Event{
			Step:               rotation.Step(ev.Step),
			SecretID:           ev.SecretID,
			ClientRequestToken: ev.ClientRequestToken,
			RotationToken:      ev.RotationToken,
		})
	})
}
