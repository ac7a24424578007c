// Command rotator is the Secrets Manager rotation function for ecr-pullthroughcache/ secrets.
// It is wiring only: the protocol lives in internal/rotation.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/ptc-credentials/ptc-credentials/internal/awsenv"
	"github.com/ptc-credentials/ptc-credentials/internal/logging"
	"github.com/ptc-credentials/ptc-credentials/internal/metrics"
	"github.com/ptc-credentials/ptc-credentials/internal/pinned"
	"github.com/ptc-credentials/ptc-credentials/internal/rotation"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/providers"
	"github.com/ptc-credentials/ptc-credentials/internal/webidentity"
)

func main() {
	// Behind the redaction net: whatever the rotator handles in an invocation is kept out of
	// every log record, also a careless one.
	secrets := &logging.Secrets{}
	log := logging.NewRedacting(os.Stderr, secrets)
	cfg, err := awsenv.Config(os.Getenv)
	if err != nil {
		log.Error("loading AWS configuration", "error", err.Error())
		os.Exit(1)
	}
	smEndpoint, err := awsenv.Endpoint(os.Getenv, "SECRETS_MANAGER")
	if err != nil {
		log.Error("loading AWS configuration", "error", err.Error())
		os.Exit(1)
	}
	stsEndpoint, err := awsenv.Endpoint(os.Getenv, "STS")
	if err != nil {
		log.Error("loading AWS configuration", "error", err.Error())
		os.Exit(1)
	}
	// The emulator switch: a bad value stops the cold start here, never runs with a wider pin.
	standins, err := pinned.ParseStandinsVar(awsenv.LoopbackStandinsVar, awsenv.LoopbackStandins(os.Getenv))
	if err != nil {
		log.Error("loading configuration", "error", err.Error())
		os.Exit(1)
	}
	bindings, err := upstream.ParseFederatedBindings(os.Getenv(upstream.FederatedBindingsVar))
	if err != nil {
		log.Error("loading configuration", "error", err.Error())
		os.Exit(1)
	}
	r := &rotation.Rotator{
		Standins:          standins,
		FederatedBindings: bindings,
		// Federated upstreams get the role's web identity token from the Region's STS endpoint.
		WebIdentity: &webidentity.STS{API: sts.NewFromConfig(cfg, func(o *sts.Options) { o.BaseEndpoint = endpoint(stsEndpoint) })},
		SM:          secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) { o.BaseEndpoint = endpoint(smEndpoint) }),
		Providers:   providers.All(),
		Logger:      log,
		Secrets:     secrets,
		Metrics:     &metrics.Emitter{W: os.Stdout},
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

// endpoint is nil (the SDK's own endpoint) for no override.
func endpoint(override string) *string {
	if override == "" {
		return nil
	}
	return aws.String(override)
}
