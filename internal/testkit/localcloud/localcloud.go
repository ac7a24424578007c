// Package localcloud starts the whole of ptc-credentials on one machine, with no AWS account and
// no Docker: a local Secrets Manager (localsm) that really invokes the rotation function, the ECR
// pull-through cache API (ecrptc) whose ValidatePullThroughCacheRule logs in upstream, the five
// registry emulators (Docker Hub, ACR, GHCR, GitLab, Chainguard; with Docker Hub staged for an
// SSO-enforced organization and ACR federated beside them: Rows), AWS STS with the account's
// outbound identity federation issuer, CloudFormation's response bucket, and the two real
// bootstrap binaries under aws-lambda-rie — wired the way template.yaml wires them in
// AWS (the SDK's AWS_ENDPOINT_URL_<SERVICE> variables; no test-only branch in product code).
//
// `make demo` (tools/demo) and this package's tests drive it through RunScenario. Every
// server listens on a free loopback port; Close stops all of it.
package localcloud

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/ptc-credentials/ptc-credentials/internal/awsenv"
	"github.com/ptc-credentials/ptc-credentials/internal/pinned"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/registryauth"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/cfnemu"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/ecremu"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/localsm"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/stsemu"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
)

// The emulated account and home Region (localsm's and ecrptc's defaults, so ARNs agree).
const (
	Region    = localsm.DefaultRegion
	AccountID = localsm.DefaultAccountID
)

// ReplicaRegions are the Regions beside Region that the local cloud runs Secrets Manager and
// ECR in, and that the provisioner may replicate managed secrets to (ALLOWED_REPLICA_REGIONS):
// one in another continent each, as a team with caches near its clusters would pick.
var ReplicaRegions = []string{"eu-west-1", "ap-southeast-2"}

// DefaultReplicationLag is how long a write to a primary secret takes to reach its replicas in
// the local cloud (Options.ReplicationLag): Secrets Manager replicates asynchronously, usually
// within seconds, so the provisioner and the operator's view must wait for it, never assume it.
const DefaultReplicationLag = time.Second

// Credentials the functions and clients sign with: static and fake. Each function signs with
// its own key id, which localsm maps to the function's role (its resource policies are
// enforced against them); the cloud's own clients (SM, ECR's reads) sign with accessKeyID,
// which is not mapped, like an administrator outside the test's story.
const (
	accessKeyID      = "AKIDLOCALCLOUD"
	rotatorKeyID     = "AKIDLOCALROTATOR"
	provisionerKeyID = "AKIDLOCALPROVISIONER"
	otherTeamKeyID   = "AKIDANOTHERTEAM"
	secretAccessKey  = "localcloud-fake-secret-key"
)

// OwnerKeySecretName is the secret holding the provisioner's ownership-proof key, as the
// template's OwnerKeySecret holds it.
const OwnerKeySecretName = "ptc-credentials/localcloud/owner-key"

// Options configure Start. The zero value builds everything from the repository around the
// working directory.
type Options struct {
	// RepoRoot is the ptc-credentials checkout to build from; empty: found above the working
	// directory.
	RepoRoot string
	// RIEBin is a prebuilt aws-lambda-rie for this machine; empty: built from tools.mod.
	RIEBin string
	// BootstrapDir holds prebuilt <function>/bootstrap binaries for this machine (the layout of
	// `make build GOARCH=<host>`); empty: both are built.
	BootstrapDir string
	// ACRReplicationDelay is how long the emulators of registries that replicate (ACR) refuse a
	// new password, as ACR does while it replicates (the rotator waits it out). Zero: none.
	ACRReplicationDelay time.Duration
	// FunctionTimeout is each function's Lambda timeout (default 60 s).
	FunctionTimeout time.Duration
	// LogLevel is the functions' LOG_LEVEL (default INFO).
	LogLevel string
	// ReplicationLag is how long Secrets Manager takes to replicate a write to a primary secret
	// into its replica Regions (default DefaultReplicationLag; negative: at once).
	ReplicationLag time.Duration
}

// Cloud is a running local cloud. Create it with Start and stop it with Close.
type Cloud struct {
	// StackID is the CloudFormation stack every custom-resource request comes from.
	StackID string
	// Region and AccountID are the emulated ones: the stack's Region, where the functions run.
	Region, AccountID string
	// Regions are every Region Secrets Manager and ECR answer in: Region, then ReplicaRegions.
	Regions []string
	// ReplicationLag is how long replication into the replica Regions takes (Options).
	ReplicationLag time.Duration

	// SecretsManagerURL and ECRURL are the endpoints the functions and clients use.
	SecretsManagerURL, ECRURL string
	// SM and ECR are real aws-sdk-go-v2 clients pointed at them.
	SM  *secretsmanager.Client
	ECR *ecr.Client
	// SecretsManager and ECRServer are the home Region's emulators behind them, for their
	// recorded state; SecretsManagers and ECRServers hold every Region's, behind the same two
	// endpoints, which route a request by the Region its SigV4 signature is scoped to (as the
	// SDK's one AWS_ENDPOINT_URL_<SERVICE> reaches every Region here).
	SecretsManager  *localsm.Server
	SecretsManagers *localsm.Cluster
	ECRServers      *ecremu.Regions
	// OtherTeamSM is a Secrets Manager client signed as testenv.OtherTeamRoleARN: a principal
	// of the account that is neither function role (the trust-model attacker).
	OtherTeamSM *secretsmanager.Client
	ECRServer   *ecremu.Server
	// CloudFormation answers the provisioner's DescribeStackResource / DescribeStacks: it shows
	// each custom resource in the state CloudFormation would while a request is out.
	CloudFormation    *cfnemu.Server
	CloudFormationURL string

	// STS is the AWS STS emulator (GetWebIdentityToken) and the account's outbound identity
	// federation issuer, at STSURL: the functions' AWS_ENDPOINT_URL_STS.
	STS    *stsemu.Server
	STSURL string

	// Rotator and Provisioner are the real bootstraps under aws-lambda-rie.
	Rotator, Provisioner *Function

	// BuildTime is how long building (or checking) the binaries took; StartTime how long
	// starting everything after that took.
	BuildTime, StartTime time.Duration

	registries       []Registry
	replicationDelay time.Duration
	cfn              *ResponseBucket
	cfnURL           string

	presignedSig string
	cfg          aws.Config

	servers []*http.Server
	workDir string

	mu          sync.Mutex
	secrets     map[string]bool // every secret value known, revoked tokens included
	invocations []Invocation

	closeOnce sync.Once
}

// Start builds what it must, then starts every server and both functions. On error everything
// started so far is stopped again.
func Start(ctx context.Context, opts Options) (c *Cloud, err error) {
	if runtime.GOOS != "linux" {
		return nil, errors.New("localcloud needs Linux: aws-lambda-rie starts the runtime through Linux process APIs")
	}
	if opts.RepoRoot == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, fmt.Errorf("reading the working directory: %w", err)
		}
		if opts.RepoRoot, err = FindRepoRoot(wd); err != nil {
			return nil, err
		}
	}
	if opts.FunctionTimeout <= 0 {
		opts.FunctionTimeout = 60 * time.Second
	}
	if opts.LogLevel == "" {
		opts.LogLevel = "INFO"
	}
	c = &Cloud{
		StackID: "arn:aws:cloudformation:" + Region + ":" + AccountID + ":stack/ptc-demo/" + newUUID(),
		Region:  Region, AccountID: AccountID,
		cfn:              &ResponseBucket{},
		presignedSig:     randomSecret("presig-", 32),
		secrets:          map[string]bool{},
		replicationDelay: opts.ACRReplicationDelay,
		Regions:          append([]string{Region}, ReplicaRegions...),
		ReplicationLag:   opts.ReplicationLag,
	}
	switch {
	case c.ReplicationLag == 0:
		c.ReplicationLag = DefaultReplicationLag
	case c.ReplicationLag < 0:
		c.ReplicationLag = 0
	}
	defer func() {
		if err != nil {
			c.Close()
			c = nil
		}
	}()
	if c.workDir, err = os.MkdirTemp("", "ptc-localcloud-"); err != nil {
		return c, fmt.Errorf("creating a work directory: %w", err)
	}

	t0 := time.Now()
	bins, err := build(ctx, opts, c.workDir)
	if err != nil {
		return c, fmt.Errorf("building the functions and aws-lambda-rie: %w", err)
	}
	c.BuildTime = time.Since(t0)
	t0 = time.Now()

	cfg := aws.Config{Region: Region, Credentials: credentials.NewStaticCredentialsProvider(accessKeyID, secretAccessKey, "")}
	rotatorARN := "arn:aws:lambda:" + Region + ":" + AccountID + ":function:ptc-rotator"
	provisionerARN := "arn:aws:lambda:" + Region + ":" + AccountID + ":function:ptc-provisioner"

	// Secrets Manager: rotation invokes the rotator over the Lambda Invoke API. The rotator's
	// endpoint is known only once it runs, and it needs Secrets Manager's URL first, so the
	// invoker looks it up at call time.
	// Every Region's Secrets Manager shares the template; rotation only ever runs in a primary's
	// Region (replicas are read-only), and the rotator lives in the home Region.
	var endpoints sync.Map
	c.SecretsManagers = localsm.NewCluster(localsm.ClusterOptions{Regions: c.Regions, ReplicationLag: c.ReplicationLag,
		Options: localsm.Options{Invoker: func(ctx context.Context, arn string, payload []byte) error {
			url, ok := endpoints.Load(arn)
			if !ok {
				return fmt.Errorf("no Lambda function %s in the local cloud", arn)
			}
			return localsm.HTTPInvoker{Endpoints: map[string]string{arn: url.(string)}}.Invoke(ctx, arn, payload)
		}, Principals: map[string]string{
			rotatorKeyID: testenv.RotatorRoleARN, provisionerKeyID: testenv.ProvisionerRoleARN, otherTeamKeyID: testenv.OtherTeamRoleARN,
		}}})
	c.SecretsManager = c.SecretsManagers.Region(Region)
	if c.SecretsManagerURL, err = c.serve(c.SecretsManagers); err != nil {
		return c, err
	}
	c.cfg = cfg
	c.SM = secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) { o.BaseEndpoint = aws.String(c.SecretsManagerURL) })
	other := cfg.Copy()
	other.Credentials = credentials.NewStaticCredentialsProvider(otherTeamKeyID, secretAccessKey, "")
	c.OtherTeamSM = secretsmanager.NewFromConfig(other, func(o *secretsmanager.Options) { o.BaseEndpoint = aws.String(c.SecretsManagerURL) })
	ownerKey, err := c.SM.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(OwnerKeySecretName), SecretString: aws.String(testenv.OwnerKey)})
	if err != nil {
		return c, fmt.Errorf("creating the ownership key secret: %w", err)
	}

	// AWS STS and the account's outbound identity federation issuer: each function's role gets
	// its web identity token here, and the federated registries trust it.
	c.STS = stsemu.New(stsemu.Options{Region: Region,
		Credentials: map[string]string{rotatorKeyID: secretAccessKey, provisionerKeyID: secretAccessKey},
		Roles:       map[string]string{rotatorKeyID: testenv.RotatorRoleARN, provisionerKeyID: testenv.ProvisionerRoleARN}})
	if c.STSURL, err = c.serve(c.STS); err != nil {
		return c, err
	}

	// The registries.
	if err := c.startRegistries(opts); err != nil {
		return c, err
	}

	// ECR in each Region reads the rule's secret from Secrets Manager of its own Region (a rule
	// may only name a secret of its Region) and, on Validate, logs in upstream with it.
	c.ECRServers = ecremu.NewRegions(c.Regions, func(region string) ecremu.Options {
		return ecremu.Options{
			SecretsManager: c.SMIn(region),
			Verify: func(ctx context.Context, upstreamRegistry, registryURL string, cred ptcsecret.Value) error {
				return registryauth.Check(ctx, nil, registryauth.Target{Registry: registryURL, Repository: c.checkRepoFor(upstreamRegistry)},
					registryauth.Credential{Username: cred.Username, Password: cred.AccessToken})
			},
		}
	})
	c.ECRServer = c.ECRServers.Region(Region)
	if c.ECRURL, err = c.serve(c.ECRServers); err != nil {
		return c, err
	}
	c.ECR = ecr.NewFromConfig(cfg, func(o *ecr.Options) { o.BaseEndpoint = aws.String(c.ECRURL) })

	if c.cfnURL, err = c.serve(c.cfn); err != nil {
		return c, err
	}
	c.CloudFormation = cfnemu.New(cfnemu.Options{Region: Region, Credentials: map[string]string{accessKeyID: secretAccessKey, provisionerKeyID: secretAccessKey}})
	if c.CloudFormationURL, err = c.serve(c.CloudFormation); err != nil {
		return c, err
	}

	// The functions, each with the environment Lambda gives it and nothing of this process's.
	for _, fn := range []struct {
		name, arn, keyID string
		into             **Function
	}{{FnRotator, rotatorARN, rotatorKeyID, &c.Rotator}, {FnProvisioner, provisionerARN, provisionerKeyID, &c.Provisioner}} {
		home := filepath.Join(c.workDir, "home-"+fn.name)
		if err := os.MkdirAll(home, 0o700); err != nil {
			return c, fmt.Errorf("creating %s: %w", home, err)
		}
		env := map[string]string{
			"PATH":                             os.Getenv("PATH"),
			"HOME":                             home,
			"AWS_CONFIG_FILE":                  filepath.Join(home, "aws-config-none"),
			"AWS_SHARED_CREDENTIALS_FILE":      filepath.Join(home, "aws-credentials-none"),
			"AWS_EC2_METADATA_DISABLED":        "true",
			"AWS_REGION":                       Region,
			"AWS_ACCESS_KEY_ID":                fn.keyID,
			"AWS_SECRET_ACCESS_KEY":            secretAccessKey,
			"AWS_LAMBDA_FUNCTION_NAME":         "ptc-" + fn.name,
			"AWS_LAMBDA_FUNCTION_TIMEOUT":      strconv.Itoa(int(opts.FunctionTimeout / time.Second)),
			"AWS_ENDPOINT_URL_SECRETS_MANAGER": c.SecretsManagerURL,
			"AWS_ENDPOINT_URL_ECR":             c.ECRURL,
			"AWS_ENDPOINT_URL_STS":             c.STSURL,
			"LOG_LEVEL":                        opts.LogLevel,
		}
		// The one switch that lets loopback stand in for pinned hosts (never set by the
		// template): the registry emulators for the upstreams' hosts, and, for the provisioner,
		// the response bucket for CloudFormation's.
		env[awsenv.LoopbackStandinsVar] = c.Standins(false).String()
		if fn.name == FnProvisioner {
			env["ROTATION_LAMBDA_ARN"] = rotatorARN
			env["ROTATOR_ROLE_ARN"] = testenv.RotatorRoleARN
			env["PROVISIONER_ROLE_ARN"] = testenv.ProvisionerRoleARN
			env["OWNER_KEY_SECRET_ARN"] = aws.ToString(ownerKey.ARN)
			env["AWS_ENDPOINT_URL_CLOUDFORMATION"] = c.CloudFormationURL
			env["ALLOWED_REPLICA_REGIONS"] = strings.Join(ReplicaRegions, ",")
			env[awsenv.LoopbackStandinsVar] = c.Standins(true).String()
		}
		f, err := StartFunction(bins.rie, fn.name, fn.arn, bins.bootstraps[fn.name], env)
		if err != nil {
			return c, err
		}
		*fn.into = f
		endpoints.Store(fn.arn, f.URL)
	}
	c.StartTime = time.Since(t0)
	c.noteSecret(c.presignedSig)
	c.NoteIssued()
	return c, nil
}

// SMIn is a Secrets Manager client for region (signed for it, so the cloud's one endpoint
// routes it there), as the cloud's administrator.
func (c *Cloud) SMIn(region string) *secretsmanager.Client {
	cfg := c.cfg.Copy()
	cfg.Region = region
	return secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) { o.BaseEndpoint = aws.String(c.SecretsManagerURL) })
}

// ECRIn is an ECR client for region, as the cloud's administrator.
func (c *Cloud) ECRIn(region string) *ecr.Client {
	cfg := c.cfg.Copy()
	cfg.Region = region
	return ecr.NewFromConfig(cfg, func(o *ecr.Options) { o.BaseEndpoint = aws.String(c.ECRURL) })
}

// Standins are the cloud's loopback servers that stand in for pinned hosts: every registry
// emulator, and with responseBucket CloudFormation's response bucket too.
func (c *Cloud) Standins(responseBucket bool) pinned.Standins {
	var urls []string
	for _, r := range c.registries {
		urls = append(urls, r.URL)
	}
	if responseBucket {
		urls = append(urls, c.cfnURL)
	}
	return pinned.NewStandins(urls...)
}

// serve runs h on a fresh loopback listener and returns its base URL.
func (c *Cloud) serve(h http.Handler) (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("listening on a loopback port: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: discardLog}
	c.servers = append(c.servers, srv)
	go func() { _ = srv.Serve(l) }()
	return "http://" + l.Addr().String(), nil
}

// Close stops both functions (their process groups), closes every listener and removes the work
// directory. It is safe to call more than once and on a partly started Cloud.
func (c *Cloud) Close() {
	if c == nil {
		return
	}
	c.closeOnce.Do(func() {
		var wg sync.WaitGroup
		for _, f := range []*Function{c.Rotator, c.Provisioner} {
			if f != nil {
				wg.Go(f.Stop)
			}
		}
		wg.Wait()
		for _, s := range c.servers {
			_ = s.Close()
		}
		if c.workDir != "" {
			_ = os.RemoveAll(c.workDir)
		}
	})
}

// noteSecret remembers a secret value for Secrets.
func (c *Cloud) noteSecret(s string) {
	if s == "" {
		return
	}
	c.mu.Lock()
	c.secrets[s] = true
	c.mu.Unlock()
}

// NoteIssued remembers every secret the registry emulators know now (source credentials,
// tokens, passwords, PATs), so Secrets still covers them after they are revoked and forgotten.
// RunScenario calls it after every step.
func (c *Cloud) NoteIssued() {
	for _, r := range c.registries {
		for _, s := range r.Emulator.PlantedSecrets() {
			c.noteSecret(s)
		}
	}
}

// Secrets returns every secret value the cloud knows of: the source credentials, every token
// and password the registries issued, the ResponseURL signature. Nothing of it may ever appear
// in output.
func (c *Cloud) Secrets() []string {
	c.NoteIssued()
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.secrets))
	for s := range c.secrets {
		out = append(out, s)
	}
	return out
}

// Leaks returns how many of the known secret values occur in text (0 is the only good answer).
// It never returns the values themselves.
func (c *Cloud) Leaks(text string) int {
	n := 0
	for _, s := range c.Secrets() {
		if len(s) >= 8 && strings.Contains(text, s) {
			n++
		}
	}
	return n
}

// keyMarkers are what private keys and JWTs look like in text, whatever their value: a PEM
// block, a JWK's private part, and the start of a base64url JSON object (every JWT: the web
// identity tokens, Chainguard's tokens, pull-token JWTs, whose values Secrets lists too once
// the cloud has seen them, but a throw-away signing key is never seen outside the function).
var keyMarkers = []string{"PRIVATE KEY", `"d":"`, "eyJ"}

// KeyMaterial returns the markers of private keys and JWTs that occur in text (none is the
// only good answer). It never returns the text around them.
func (c *Cloud) KeyMaterial(text string) []string {
	var found []string
	for _, m := range keyMarkers {
		if strings.Contains(text, m) {
			found = append(found, m)
		}
	}
	return found
}

// Transcript is everything the cloud's own parts said: both functions' output, every Invoke
// answer, every CloudFormation answer body. Leak scans read it.
func (c *Cloud) Transcript() string {
	var b []byte
	for _, f := range []*Function{c.Rotator, c.Provisioner} {
		if f != nil {
			b = append(b, f.Output()...)
		}
	}
	c.mu.Lock()
	for _, inv := range c.invocations {
		b = append(b, inv.Body...)
		b = append(b, '\n')
	}
	c.mu.Unlock()
	for _, a := range c.cfn.All() {
		b = append(b, a.Body...)
		b = append(b, '\n')
	}
	return string(b)
}

func (c *Cloud) noteInvocation(inv Invocation) {
	c.mu.Lock()
	c.invocations = append(c.invocations, inv)
	c.mu.Unlock()
}

// discardLog keeps net/http's server errors (a client hanging up) out of the demo's output.
var discardLog = log.New(io.Discard, "", 0)
