// Command ptc is the operator's view of ECR pull-through cache credentials: status of every
// rule in a Region, a doctor for one failing rule, a rotation followed step by step, and the
// adoption of a hand-made secret. It is wiring only: flags, the AWS configuration (the standard
// chain: profiles, AWS_REGION, AWS_ENDPOINT_URL_<SERVICE>) and the clients; internal/operator
// does the work.
//
// Exit status: 0 healthy/done, 1 something is unhealthy or failed, 2 the command could not run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/ptc-credentials/ptc-credentials/internal/awsenv"
	"github.com/ptc-credentials/ptc-credentials/internal/operator"
	"github.com/ptc-credentials/ptc-credentials/internal/pinned"
)

const usage = `ptc — ECR pull-through cache credentials, for operators

  ptc status [--json]                                   every rule in the Region and its credential
  ptc doctor <ecr-prefix | secret> [--image repo[:tag]] every check of one rule, with the fix
  ptc rotate <secret> [--timeout 10m]                   rotate now and follow it step by step
  ptc adopt <ecr-prefix> --source-secret ARN [--upstream U] [--rotator-arn ARN]
            [--schedule "rate(30 days)"] [--apply]      make a hand-made secret managed (dry run by default)

Every command takes --region and --profile; endpoints follow AWS_ENDPOINT_URL_ECR and
AWS_ENDPOINT_URL_SECRETS_MANAGER. Exit status 1 means something is unhealthy or failed.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet("ptc "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	region := fs.String("region", "", "AWS Region (default: the profile's or AWS_REGION)")
	profile := fs.String("profile", "", "shared config profile (default: AWS_PROFILE or default)")
	asJSON := fs.Bool("json", false, "status: JSON for scripts instead of the table")
	image := fs.String("image", "", "doctor: an upstream image, repo[:tag], to check the login and the path for")
	timeout := fs.Duration("timeout", 10*time.Minute, "rotate, adopt: how long to follow the rotation")
	source := fs.String("source-secret", "", "adopt: ARN of the source secret holding the minting credential")
	upstream := fs.String("upstream", "", "adopt: the upstream (default: the rule's)")
	rotator := fs.String("rotator-arn", "", "adopt: ARN of the rotation function (the stack's RotatorArn output)")
	schedule := fs.String("schedule", "rate(30 days)", "adopt: rotation schedule")
	apply := fs.Bool("apply", false, "adopt: act; without it adopt only says what it would do")
	// Flags may come after the positional argument: ptc doctor docker-hub --image alpine.
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	want := map[string]int{"status": 0, "doctor": 1, "rotate": 1, "adopt": 1}
	n, ok := want[cmd]
	if !ok {
		fmt.Fprintf(stderr, "ptc: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if len(pos) != n {
		fmt.Fprintf(stderr, "ptc %s: expected %d argument(s), got %d\n\n%s", cmd, n, len(pos), usage)
		return 2
	}
	env, err := newEnv(ctx, *region, *profile, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "ptc: %v\n", err)
		return 2
	}
	var healthy bool
	switch cmd {
	case "status":
		var rep *operator.StatusReport
		if rep, err = operator.Status(ctx, env); err == nil {
			if *asJSON {
				err = operator.WriteStatusJSON(env, rep)
			} else {
				err = operator.WriteStatusTable(env, rep)
			}
			healthy = rep.Unhealthy == 0
		}
	case "doctor":
		healthy, err = operator.Doctor(ctx, env, pos[0], *image)
	case "rotate":
		healthy, err = operator.Rotate(ctx, env, pos[0], *timeout)
	case "adopt":
		healthy, err = operator.Adopt(ctx, env, operator.AdoptOptions{
			Prefix: pos[0], SourceSecret: *source, Upstream: *upstream, RotatorARN: *rotator,
			Schedule: *schedule, Apply: *apply, Timeout: *timeout,
		})
	}
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "ptc %s: %v\n", cmd, err)
		return 2
	case !healthy:
		return 1
	}
	return 0
}

// newEnv loads the AWS configuration the standard way and builds the clients.
func newEnv(ctx context.Context, region, profile string, stdout, stderr io.Writer) (*operator.Env, error) {
	var opts []func(*config.LoadOptions) error
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	if profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(profile))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("loading the AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return nil, errors.New("no AWS Region: pass --region or set AWS_REGION (or region in the profile)")
	}
	// The functions' emulator switch, for the same tests: unset in real use (no stand-ins).
	standins, err := pinned.ParseStandinsVar(awsenv.LoopbackStandinsVar, awsenv.LoopbackStandins(os.Getenv))
	if err != nil {
		return nil, err
	}
	// A replicated secret's replica Regions get clients of their own, built on first use from
	// the same configuration (credentials, endpoints) with only the Region changed.
	var mu sync.Mutex
	smBy, ecrBy := map[string]operator.SecretsManager{}, map[string]operator.ECR{}
	return &operator.Env{
		ECR: ecr.NewFromConfig(cfg), SM: secretsmanager.NewFromConfig(cfg), Lambda: lambda.NewFromConfig(cfg),
		Region: cfg.Region, Out: stdout, Err: stderr, Standins: standins,
		SMFor: func(region string) operator.SecretsManager {
			mu.Lock()
			defer mu.Unlock()
			if smBy[region] == nil {
				smBy[region] = secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) { o.Region = region })
			}
			return smBy[region]
		},
		ECRFor: func(region string) operator.ECR {
			mu.Lock()
			defer mu.Unlock()
			if ecrBy[region] == nil {
				ecrBy[region] = ecr.NewFromConfig(cfg, func(o *ecr.Options) { o.Region = region })
			}
			return ecrBy[region]
		},
	}, nil
}
