// Command provisioner is the handler of the CloudFormation custom resource
// Custom::PullThroughCache. It is wiring only: the response protocol lives in
// internal/customresource, request authentication in internal/cfnauth, the work in
// internal/provision.
package main

import (
	"context"
	"log/slog"
	"os"
	"sync"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/ptc-credentials/ptc-credentials/internal/awsenv"
	"github.com/ptc-credentials/ptc-credentials/internal/cfnauth"
	"github.com/ptc-credentials/ptc-credentials/internal/customresource"
	"github.com/ptc-credentials/ptc-credentials/internal/logging"
	"github.com/ptc-credentials/ptc-credentials/internal/metrics"
	"github.com/ptc-credentials/ptc-credentials/internal/pinned"
	"github.com/ptc-credentials/ptc-credentials/internal/provision"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/providers"
	"github.com/ptc-credentials/ptc-credentials/internal/webidentity"
)

func main() {
	// Behind the redaction net: every secret value a request handles (OnSecret) is kept out of
	// every log record, not only out of the answer.
	secrets := &logging.Secrets{}
	log := logging.NewRedacting(os.Stderr, secrets)
	slog.SetDefault(log)
	fail := func(err error) {
		log.Error("loading configuration", "error", err.Error())
		os.Exit(1)
	}
	cfg, err := awsenv.Config(os.Getenv)
	if err != nil {
		fail(err)
	}
	ep := map[string]*string{}
	for _, svc := range []string{"SECRETS_MANAGER", "ECR", "CLOUDFORMATION", "STS"} {
		v, err := awsenv.Endpoint(os.Getenv, svc)
		if err != nil {
			fail(err)
		}
		if v != "" {
			ep[svc] = aws.String(v)
		}
	}
	rotator := os.Getenv("ROTATION_LAMBDA_ARN")
	// The rotator's ARN, which the template sets, names this function's own partition, Region
	// and account (both functions live in one stack); requests for stacks elsewhere are refused.
	self, err := cfnauth.IdentityFromARN(rotator)
	if err != nil {
		fail(err)
	}
	// The emulator switch: a bad value stops the cold start here, never runs with a wider pin.
	standins, err := pinned.ParseStandinsVar(awsenv.LoopbackStandinsVar, awsenv.LoopbackStandins(os.Getenv))
	if err != nil {
		fail(err)
	}
	checker := &cfnauth.Checker{
		CFN:          cloudformation.NewFromConfig(cfg, func(o *cloudformation.Options) { o.BaseEndpoint = ep["CLOUDFORMATION"] }),
		Self:         self,
		ResourceType: provision.ResourceType,
		Standins:     standins,
		Overlaps:     provision.Overlaps,
	}
	sm := secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) { o.BaseEndpoint = ep["SECRETS_MANAGER"] })
	bindings, err := upstream.ParseFederatedBindings(os.Getenv(upstream.FederatedBindingsVar))
	if err != nil {
		fail(err)
	}
	// The deployer's replica Regions (the template's AllowedReplicaRegions); a typo stops the
	// cold start rather than silently allowing nothing there.
	allowed, err := provision.ParseAllowedRegions(os.Getenv(provision.AllowedReplicaRegionsVar))
	if err != nil {
		fail(err)
	}
	p := &provision.Provisioner{
		Standins:          standins,
		FederatedBindings: bindings,
		SM:                sm,
		ECR:               ecr.NewFromConfig(cfg, func(o *ecr.Options) { o.BaseEndpoint = ep["ECR"] }),
		// Replica Regions: the same clients with another Region (an emulator endpoint serves
		// every Region and routes by the signature's Region, as AWS's do by host).
		Region: cfg.Region,
		SMFor: perRegion(func(r string) provision.SecretsManager {
			return secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) { o.Region, o.BaseEndpoint = r, ep["SECRETS_MANAGER"] })
		}),
		ECRFor: perRegion(func(r string) provision.ECR {
			return ecr.NewFromConfig(cfg, func(o *ecr.Options) { o.Region, o.BaseEndpoint = r, ep["ECR"] })
		}),
		AllowedReplicaRegions: allowed,
		Providers:             providers.All(),
		// Federated upstreams get the role's web identity token from the Region's STS endpoint.
		WebIdentity:       &webidentity.STS{API: sts.NewFromConfig(cfg, func(o *sts.Options) { o.BaseEndpoint = ep["STS"] })},
		RotationLambdaARN: rotator,
		// The template sets all three: the roles the protecting policy exempts, and the secret
		// holding the ownership-proof key (read on first use, so a failure is a FAILED answer).
		RotatorRoleARN:     os.Getenv("ROTATOR_ROLE_ARN"),
		ProvisionerRoleARN: os.Getenv("PROVISIONER_ROLE_ARN"),
		OwnerKey:           provision.OwnerKeyFromSecret(sm, os.Getenv("OWNER_KEY_SECRET_ARN")),
		Logger:             log,
		OnSecret: func(ctx context.Context, values ...string) {
			customresource.AddSecrets(ctx, values...)
			secrets.Add(values...)
		},
		Metrics: &metrics.Emitter{W: os.Stdout},
	}
	lambda.Start(customresource.Wrap(func(ctx context.Context, req customresource.Request) (customresource.Result, error) {
		secrets.Reset() // one request's values; a warm environment must not pile them up
		res, err := p.Handle(ctx, provision.Request{
			Type:          string(req.RequestType),
			StackID:       req.StackID,
			LogicalID:     req.LogicalResourceID,
			PhysicalID:    req.PhysicalResourceID,
			Properties:    req.ResourceProperties,
			OldProperties: req.OldResourceProperties,
		})
		return customresource.Result{PhysicalResourceID: res.PhysicalID, Data: res.Data}, err
	}, customresource.Options{
		Logger:           log,
		CheckResponseURL: checker.CheckResponseURL,
		Authenticate: func(ctx context.Context, req customresource.Request) error {
			return checker.Check(ctx, cfnauth.Request{
				Type: string(req.RequestType), StackID: req.StackID, LogicalID: req.LogicalResourceID,
				PhysicalID: req.PhysicalResourceID, ResponseURL: req.ResponseURL,
			})
		},
	}))
}

// perRegion builds one client per Region on first use and keeps it for the warm environment.
func perRegion[T any](build func(region string) T) func(string) T {
	var mu sync.Mutex
	clients := map[string]T{}
	return func(region string) T {
		mu.Lock()
		defer mu.Unlock()
		c, ok := clients[region]
		if !ok {
			c = build(region)
			clients[region] = c
		}
		return c
	}
}
