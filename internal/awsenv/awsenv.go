// Package awsenv builds the aws.Config a Lambda function needs from the variables the Lambda
// runtime sets, instead of config.LoadDefaultConfig.
//
// LoadDefaultConfig links the shared-config and credentials-file parsers, IMDS and the STS,
// SSO, SSO-OIDC and sign-in clients — 1.9 MB of each bootstrap (BENCHMARKS.md §1) that a Lambda
// function never runs: Lambda hands the role's credentials and the Region to the function as
// environment variables, and LoadDefaultConfig would read exactly those. The endpoint override
// variables the SDK documents (AWS_ENDPOINT_URL_<SERVICE>, then AWS_ENDPOINT_URL) are honoured
// the same way, because the tests and the demo point the real bootstraps at local emulators
// with them; the deployed template sets none of them (tests/template checks that).
package awsenv

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Getenv reads one environment variable; os.Getenv in the functions, a map in tests.
type Getenv func(string) string

// Config returns the Region and credentials Lambda provides. It names every variable that is
// missing; it never puts a credential in an error.
func Config(getenv Getenv) (aws.Config, error) {
	region := getenv("AWS_REGION")
	if region == "" {
		region = getenv("AWS_DEFAULT_REGION")
	}
	var missing []string
	if region == "" {
		missing = append(missing, "AWS_REGION")
	}
	id, secret := getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY")
	if id == "" {
		missing = append(missing, "AWS_ACCESS_KEY_ID")
	}
	if secret == "" {
		missing = append(missing, "AWS_SECRET_ACCESS_KEY")
	}
	if len(missing) > 0 {
		return aws.Config{}, fmt.Errorf("AWS configuration: %s not set (the Lambda runtime sets them for the function's role)", strings.Join(missing, ", "))
	}
	return aws.Config{
		Region: region,
		// Static for the life of the execution environment, exactly as LoadDefaultConfig's
		// environment provider would be; the cache only spares a lock per call.
		Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(id, secret, getenv("AWS_SESSION_TOKEN"))),
	}, nil
}

// Endpoint returns the endpoint override for a service, named as the SDK's environment
// variables name it (the service id in upper case with spaces as underscores, e.g.
// "SECRETS_MANAGER", "ECR", "CLOUDFORMATION"): AWS_ENDPOINT_URL_<SERVICE>, else
// AWS_ENDPOINT_URL, else "" (the SDK's own endpoint). A value that is not an absolute http(s)
// URL is an error naming the variable.
func Endpoint(getenv Getenv, service string) (string, error) {
	for _, name := range []string{"AWS_ENDPOINT_URL_" + service, "AWS_ENDPOINT_URL"} {
		v := getenv(name)
		if v == "" {
			continue
		}
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return "", fmt.Errorf("%s must be an absolute http(s) URL", name)
		}
		return v, nil
	}
	return "", nil
}

// LoopbackStandinsVar names the one switch that lets loopback emulators stand in for the hosts
// the functions otherwise pin: every upstream's registry, token realm and API hosts
// (internal/pinned), and CloudFormation's response bucket. Its value is a comma-separated list
// of loopback host:port endpoints, e.g. "127.0.0.1:4001,127.0.0.1:4002"; only those may stand
// in, so a loopback server not listed is refused like any other host. The local cloud and the
// tests set it; the deployed template never does (tests/template checks that).
const LoopbackStandinsVar = "PTC_LOOPBACK_STANDINS"

// LoopbackStandins returns LoopbackStandinsVar's value; pinned.ParseStandinsVar reads it, and
// the functions stop at cold start on its error.
func LoopbackStandins(getenv Getenv) string { return getenv(LoopbackStandinsVar) }
