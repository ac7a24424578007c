package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/ptc-credentials/ptc-credentials/internal/logging"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/registryauth"
	"github.com/ptc-credentials/ptc-credentials/internal/rotation"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/ecremu"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/lambdaemu"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/localsm"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/registries"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/testenv"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream"
	"github.com/ptc-credentials/ptc-credentials/internal/upstream/providers"
)

// TestCommandsThroughTheStandardChain runs the ptc commands as an operator would, the clients
// configured only by the environment (AWS_REGION, AWS_ENDPOINT_URL_ECR,
// AWS_ENDPOINT_URL_SECRETS_MANAGER, AWS_ENDPOINT_URL_LAMBDA, static keys), against a local
// Secrets Manager that runs the real rotator, the ECR, Lambda and Docker Hub emulators: adopt a hand-made secret, status,
// doctor of a broken hand-made secret and of an image without library/, rotate — with the exit
// status of each, and no secret value in any output. PTC_SAMPLES=<file> writes the outputs
// (docs/operations.md quotes them).
func TestCommandsThroughTheStandardChain(t *testing.T) {
	ctx := testenv.Context(t)
	hub := registries.DockerHub.MustStart(t, registries.Options{})

	var rot *rotation.Rotator
	secrets := &logging.Secrets{}
	var rotLog bytes.Buffer
	sm := localsm.New(localsm.Options{Invoker: func(ctx context.Context, _ string, payload []byte) error {
		var ev rotation.Event
		if err := json.Unmarshal(payload, &ev); err != nil {
			return err
		}
		return rot.Handle(ctx, ev)
	}})
	smSrv := httptest.NewServer(sm)
	t.Cleanup(smSrv.Close)
	smc := secretsmanager.NewFromConfig(testenv.AWSConfig(), func(o *secretsmanager.Options) { o.BaseEndpoint = aws.String(smSrv.URL) })
	rot = &rotation.Rotator{SM: smc, Providers: providers.All(), Secrets: secrets, Standins: hub.Standins(), Logger: slog.New(logging.Redacting(slog.NewJSONHandler(&rotLog, nil), secrets))}
	ecrSrv := httptest.NewServer(ecremu.New(ecremu.Options{SecretsManager: smc, Verify: func(ctx context.Context, _, url string, cred ptcsecret.Value) error {
		return registryauth.Check(ctx, nil, registryauth.Target{Registry: url, Repository: hub.CheckRepository}, registryauth.Credential{Username: cred.Username, Password: cred.AccessToken})
	}}))
	t.Cleanup(ecrSrv.Close)
	lambdaSrv := httptest.NewServer(lambdaemu.New("us-east-1", "123456789012", "ptc-rotator"))
	t.Cleanup(lambdaSrv.Close)
	ecrc := ecr.NewFromConfig(testenv.AWSConfig(), func(o *ecr.Options) { o.BaseEndpoint = aws.String(ecrSrv.URL) })

	for k, v := range map[string]string{
		"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "AKIDPTCCLITEST", "AWS_SECRET_ACCESS_KEY": "ptc-cli-test-fake", "AWS_SESSION_TOKEN": "",
		"AWS_PROFILE": "", "AWS_CONFIG_FILE": os.DevNull, "AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
		"AWS_ENDPOINT_URL_ECR": ecrSrv.URL, "AWS_ENDPOINT_URL_SECRETS_MANAGER": smSrv.URL, "AWS_ENDPOINT_URL_LAMBDA": lambdaSrv.URL, "AWS_EC2_METADATA_DISABLED": "true",
		"PTC_LOOPBACK_STANDINS": hub.Standins().String(), // the registry emulator stands in for Docker Hub
	} {
		t.Setenv(k, v)
	}

	secret := func(name, value string) string {
		o, err := smc.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(o.ARN)
	}
	rule := func(prefix, arn string) {
		if _, err := ecrc.CreatePullThroughCacheRule(ctx, &ecr.CreatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String(prefix),
			UpstreamRegistry: ecrtypes.UpstreamRegistryDockerHub, UpstreamRegistryUrl: aws.String(hub.URL), CredentialArn: aws.String(arn)}); err != nil {
			t.Fatal(err)
		}
	}
	good := `{"username":"` + registries.HubUser + `","accessToken":"` + hub.SourceSecret + `"}`
	rule("docker-hub", secret(ptcsecret.Prefix+"docker-hub", good))
	rule("hand-made", secret(ptcsecret.Prefix+"hand-made", `{"username":"`+registries.HubUser+`","access-token":"`+hub.SourceSecret+`"}`))
	var src map[string]any
	_ = json.Unmarshal([]byte(hub.Source(0)), &src)
	src[upstream.BindingField] = []string{ptcsecret.Prefix + "docker-hub"}
	b, _ := json.Marshal(src)
	source := secret("ptc-source/docker-hub", string(b))

	var samples strings.Builder
	runCmd := func(want int, args ...string) string {
		t.Helper()
		var out, errw bytes.Buffer
		code := run(ctx, args, &out, &errw)
		fmt.Fprintf(&samples, "$ ptc %s\n%s(exit status %d)\n\n", strings.Join(args, " "), out.String(), code)
		if code != want {
			t.Errorf("ptc %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, want, out.String(), errw.String())
		}
		for _, p := range hub.PlantedSecrets() {
			if strings.Contains(out.String()+errw.String(), p) {
				t.Errorf("ptc %s printed a planted secret", strings.Join(args, " "))
			}
		}
		return out.String() + errw.String()
	}

	runCmd(0, "adopt", "docker-hub", "--source-secret", source, "--rotator-arn", "arn:aws:lambda:us-east-1:123456789012:function:ptc-rotator")
	out := runCmd(0, "adopt", "docker-hub", "--source-secret", source, "--rotator-arn", "arn:aws:lambda:us-east-1:123456789012:function:ptc-rotator", "--apply", "--timeout", "1m")
	if !strings.Contains(out, "ECR validated the rule") {
		t.Fatalf("adopt --apply:\n%s\nrotator:\n%s", out, rotLog.String())
	}
	out = runCmd(1, "status")
	for _, w := range []string{"docker-hub", "managed", "hand-made", "INVALID", "2 rule(s), 1 unhealthy", "pull-through cache rules in us-east-1"} {
		if !strings.Contains(out, w) {
			t.Errorf("status lacks %q:\n%s", w, out)
		}
	}
	out = runCmd(1, "status", "--json")
	if !strings.Contains(out, `"unhealthy": 1`) {
		t.Errorf("status --json:\n%s", out)
	}
	out = runCmd(1, "doctor", "hand-made")
	if !strings.Contains(out, `key "access-token" where ECR expects "accessToken"`) {
		t.Errorf("doctor hand-made:\n%s", out)
	}
	out = runCmd(1, "doctor", "docker-hub", "--image", "alpine:3.20")
	if !strings.Contains(out, "library/alpine") || !strings.Contains(out, "the function exists") {
		t.Errorf("doctor --image alpine:\n%s", out)
	}
	out = runCmd(0, "rotate", ptcsecret.Prefix+"docker-hub", "--timeout", "1m")
	if !strings.Contains(out, "AWSCURRENT moved to") {
		t.Errorf("rotate:\n%s", out)
	}
	runCmd(2, "frobnicate")
	runCmd(2, "doctor")
	if p := os.Getenv("PTC_SAMPLES"); p != "" {
		if err := os.WriteFile(p, []byte(samples.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReplicaRegionsThroughTheStandardChain: the replica Regions' clients are built from the
// same environment with only the Region changed (one endpoint per service serves every Region,
// by the SigV4 scope): status shows the replica row, doctor checks the replica Region, and
// rotate in the replica Region refuses, naming the primary's. PTC_SAMPLES_REGIONS=<file> writes
// the outputs (docs/operations.md quotes them).
func TestReplicaRegionsThroughTheStandardChain(t *testing.T) {
	ctx := testenv.Context(t)
	hub := registries.DockerHub.MustStart(t, registries.Options{})
	const home, replica = "us-east-1", "eu-west-1"
	cluster := testenv.StartLocalSMCluster(t, localsm.ClusterOptions{Regions: []string{home, replica}})
	ecrs := ecremu.NewRegions([]string{home, replica}, func(region string) ecremu.Options {
		return ecremu.Options{SecretsManager: cluster.SecretsManagerIn(region), Verify: func(ctx context.Context, _, url string, cred ptcsecret.Value) error {
			return registryauth.Check(ctx, nil, registryauth.Target{Registry: url, Repository: hub.CheckRepository}, registryauth.Credential{Username: cred.Username, Password: cred.AccessToken})
		}}
	})
	ecrSrv := httptest.NewServer(ecrs)
	t.Cleanup(ecrSrv.Close)
	lambdaSrv := httptest.NewServer(lambdaemu.New(home, testenv.AccountID, "ptc-rotator-under-test"))
	t.Cleanup(lambdaSrv.Close)
	for k, v := range map[string]string{
		"AWS_REGION": home, "AWS_ACCESS_KEY_ID": "AKIDPTCCLITEST", "AWS_SECRET_ACCESS_KEY": "ptc-cli-test-fake", "AWS_SESSION_TOKEN": "",
		"AWS_PROFILE": "", "AWS_CONFIG_FILE": os.DevNull, "AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
		"AWS_ENDPOINT_URL_ECR": ecrSrv.URL, "AWS_ENDPOINT_URL_SECRETS_MANAGER": cluster.URL(), "AWS_ENDPOINT_URL_LAMBDA": lambdaSrv.URL, "AWS_EC2_METADATA_DISABLED": "true",
		"PTC_LOOPBACK_STANDINS": hub.Standins().String(),
	} {
		t.Setenv(k, v)
	}
	smc := cluster.SecretsManagerIn(home)
	o, err := smc.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(ptcsecret.Prefix + "docker-hub"),
		SecretString:      aws.String(`{"username":"` + registries.HubUser + `","accessToken":"` + hub.SourceSecret + `"}`),
		Tags:              []smtypes.Tag{{Key: aws.String(ptcsecret.TagUpstream), Value: aws.String(ptcsecret.UpstreamDockerHub)}},
		AddReplicaRegions: []smtypes.ReplicaRegionType{{Region: aws.String(replica)}}})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(o.ARN)
	if err := testenv.BeginRotation(ctx, smc, arn, "0a1b2c3d-0000-4000-8000-000000000001", false); err != nil {
		t.Fatal(err)
	}
	if _, err := smc.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String(arn), VersionStage: aws.String("AWSPENDING"),
		RemoveFromVersionId: aws.String("0a1b2c3d-0000-4000-8000-000000000001")}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{home, replica} {
		cfg := testenv.AWSConfig()
		cfg.Region = r
		ecrc := ecr.NewFromConfig(cfg, func(o *ecr.Options) { o.BaseEndpoint = aws.String(ecrSrv.URL) })
		if _, err := ecrc.CreatePullThroughCacheRule(ctx, &ecr.CreatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("docker-hub"),
			UpstreamRegistry: ecrtypes.UpstreamRegistryDockerHub, UpstreamRegistryUrl: aws.String(hub.URL),
			CredentialArn: aws.String(strings.Replace(arn, ":"+home+":", ":"+r+":", 1))}); err != nil {
			t.Fatal(err)
		}
	}

	var samples strings.Builder
	runCmd := func(want int, args ...string) string {
		t.Helper()
		var out, errw bytes.Buffer
		code := run(ctx, args, &out, &errw)
		fmt.Fprintf(&samples, "$ ptc %s\n%s%s(exit status %d)\n\n", strings.Join(args, " "), out.String(), errw.String(), code)
		if code != want {
			t.Errorf("ptc %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, want, out.String(), errw.String())
		}
		for _, p := range hub.PlantedSecrets() {
			if strings.Contains(out.String()+errw.String(), p) {
				t.Errorf("ptc %s printed a planted secret", strings.Join(args, " "))
			}
		}
		return out.String() + errw.String()
	}
	out := runCmd(0, "status")
	for _, w := range []string{"↳ " + replica, "InSync, current", "primary, 1 replica(s)", "1 rule(s), 0 unhealthy"} {
		if !strings.Contains(out, w) {
			t.Errorf("status lacks %q:\n%s", w, out)
		}
	}
	out = runCmd(0, "doctor", "docker-hub")
	if !strings.Contains(out, "✔ rule in "+replica) || !strings.Contains(out, "✔ ECR validation in "+replica+": IsValid") || !strings.Contains(out, "the function exists") {
		t.Errorf("doctor:\n%s", out)
	}
	out = runCmd(0, "status", "--region", replica)
	if !strings.Contains(out, "replica of "+home) {
		t.Errorf("status --region %s:\n%s", replica, out)
	}
	out = runCmd(2, "rotate", ptcsecret.Prefix+"docker-hub", "--region", replica)
	if !strings.Contains(out, "rotation runs in the primary only") || !strings.Contains(out, "--region "+home) {
		t.Errorf("rotate in %s:\n%s", replica, out)
	}
	if p := os.Getenv("PTC_SAMPLES_REGIONS"); p != "" {
		if err := os.WriteFile(p, []byte(samples.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
