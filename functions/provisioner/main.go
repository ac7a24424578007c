// Command provisioner is the handler of the CloudFormation custom resource
// Custom::PullThroughCache. It is wiring only: the response protocol lives in
// internal/customresource, the work in internal/provision.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/ptc-credentials/ptc-credentials/internal/awsenv"
	"github.com/ptc-credentials/ptc-credentials/internal/customresource"
	"github.com/ptc-credentials/ptc-credentials/internal/logging"
	"github.com/ptc-credentials/ptc-credentials/internal/metrics"
	"github.com/ptc-credentials/ptc-credentials/internal/provision"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/providers"
)

func main() {
	log := logging.New(os.Stderr)
	slog.SetDefault(log)
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
	ecrEndpoint, err := awsenv.Endpoint(os.Getenv, "ECR")
	if err != nil {
		log.Error("loading AWS configuration", "error", err.Error())
		os.Exit(1)
	}
	p := &provision.Provisioner{
		SM:                secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) { o.BaseEndpoint = endpoint(smEndpoint) }),
		ECR:               ecr.NewFromConfig(cfg, func(o *ecr.Options) { o.BaseEndpoint = endpoint(ecrEndpoint) }),
		Providers:         providers.All(),
		RotationLambdaARN: os.Getenv("ROTATION_LAMBDA_ARN"),
		Logger:            log,
		OnSecret:          customresource.AddSecrets,
		Metrics:           &metrics.Emitter{W: os.Stdout},
	}
	lambda.Start(customresource.Wrap(func(ctx context.Context, req customresource.Request) (customresource.Result, error) {
		res, err := p.Handle(ctx, provision.Request{
			Type:          string(req.RequestType),
			StackID:       req.StackID,
			LogicalID:     req.LogicalResourceID,
			PhysicalID:    req.PhysicalResourceID,
			Properties:    req.ResourceProperties,
			OldProperties: req.OldResourceProperties,
		})
		return customresource.Result{PhysicalResourceID: res.PhysicalID, Data: res.Data}, err
	}, customresource.Options{Logger: log}))
}

// endpoint is nil (the SDK's own endpoint) for no override.
func endpoint(override string) *string {
	if override == "" {
		return nil
	}
	return aws.String(override)
}
