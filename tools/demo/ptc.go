package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/ptc-credentials/ptc-credentials/internal/operator"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/localcloud"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/registries"
)

// opsModes are the rows whose mode the operator's view shows beside minting Docker Hub.
var opsModes = []string{registries.DockerHub.Name + "-staged", registries.ACR.Name + "-federated", registries.Chainguard.Name}

// operatorView is the demo's last act: the operator's view with the ptc command's code. A
// managed Docker Hub rule (made by the provisioner, as a stack would), one managed rule each
// for staged Docker Hub (an SSO-enforced organization), ACR federated and Chainguard, and a
// hand-made one whose
// secret uses the key "access-token" (as a public sample does); `ptc status` over both, then
// `ptc doctor` of the broken one with an image pulled without library/. It returns the
// hand-made secret's value, for the leak scan, and an error if ptc did not see what it must.
func operatorView(ctx context.Context, out io.Writer, cloud *localcloud.Cloud) (string, error) {
	hub, ok := cloud.Registry(registries.DockerHub.Name)
	if !ok {
		return "", errors.New("no Docker Hub emulator")
	}
	fmt.Fprintln(out, "\n== The operator's view: ptc status and ptc doctor ==")
	src, err := cloud.SM.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(localcloud.SourcePrefix + "ops-docker-hub"), SecretString: aws.String(hub.Source)})
	if err != nil {
		return "", fmt.Errorf("creating the source secret: %w", err)
	}
	ans, err := cloud.CustomResourceFor(ctx, "OpsDockerHubCache", "Create", "", map[string]any{
		"EcrRepositoryPrefix": "ops-docker-hub", "UpstreamRegistry": hub.Name, "UpstreamRegistryUrl": hub.URL,
		"SourceSecretArn": aws.ToString(src.ARN), "RotationSchedule": "rate(30 days)", "RecoveryWindowInDays": "0",
	})
	if err != nil || ans.Status != "SUCCESS" {
		return "", fmt.Errorf("creating the managed rule: %v %s", err, ans.Reason)
	}
	fmt.Fprintf(out, "  managed rule ops-docker-hub created through %s; rotating it once...\n", localcloud.ResourceType)
	// Create turned rotation on (testSecret of the current value), which Secrets Manager runs
	// after answering: let it finish, as a person would by the time they rotate.
	if err := cloud.SecretsManager.WaitRotation(ctx, ans.Data["SecretArn"]); err != nil {
		return "", err
	}
	env := &operator.Env{ECR: cloud.ECR, SM: cloud.SM, Region: cloud.Region, Out: io.Discard, Err: io.Discard,
		ECRFor:   func(region string) operator.ECR { return cloud.ECRIn(region) },
		SMFor:    func(region string) operator.SecretsManager { return cloud.SMIn(region) },
		Standins: cloud.Standins(false)}
	if ok, err := operator.Rotate(ctx, env, ans.Data["SecretArn"], time.Minute); err != nil || !ok {
		return "", fmt.Errorf("rotating the managed secret: %v", err)
	}

	// One managed rule for each mode that is not minting with a stored secret: staged Docker Hub
	// for an SSO-enforced organization, ACR federated, Chainguard (federated). Each source is
	// its own (Source(1): a fresh organization access token; its own ACR token).
	var modes []string
	for i, key := range opsModes {
		reg, ok := cloud.Registry(key)
		if !ok {
			continue
		}
		prefix := "ops-" + reg.Prefix
		src, err := cloud.SM.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(localcloud.SourcePrefix + "ops-" + key), SecretString: aws.String(reg.Emulator.Source(1))})
		if err != nil {
			return "", fmt.Errorf("creating the source secret of %s: %w", prefix, err)
		}
		ans, err := cloud.CustomResourceFor(ctx, fmt.Sprintf("OpsCache%d", i+2), "Create", "", map[string]any{
			"EcrRepositoryPrefix": prefix, "UpstreamRegistry": reg.Name, "UpstreamRegistryUrl": reg.URL,
			"SourceSecretArn": aws.ToString(src.ARN), "RotationSchedule": reg.Schedule, "RecoveryWindowInDays": "0",
		})
		if err != nil || ans.Status != "SUCCESS" {
			return "", fmt.Errorf("creating the managed rule %s: %v %s", prefix, err, ans.Reason)
		}
		if err := cloud.SecretsManager.WaitRotation(ctx, ans.Data["SecretArn"]); err != nil {
			return "", err
		}
		modes = append(modes, prefix)
	}
	cloud.NoteIssued()
	if len(modes) > 0 {
		fmt.Fprintf(out, "  managed rules %s created (staged, federated)\n", strings.Join(modes, ", "))
	}

	// One replicated credential: a Docker Hub organization's, with a rule in every Region.
	replicated := ""
	if org, ok := cloud.Registry(registries.DockerHub.Name + "-org-3-regions"); ok {
		replicated = "ops-" + org.Prefix
		src, err := cloud.SM.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(localcloud.SourcePrefix + replicated), SecretString: aws.String(org.Emulator.Source(1))})
		if err != nil {
			return "", fmt.Errorf("creating the source secret of %s: %w", replicated, err)
		}
		regions := make([]any, len(org.ReplicaRegions))
		for i, r := range org.ReplicaRegions {
			regions[i] = r
		}
		ans, err := cloud.CustomResourceFor(ctx, "OpsReplicatedCache", "Create", "", map[string]any{
			"EcrRepositoryPrefix": replicated, "UpstreamRegistry": org.Name, "UpstreamRegistryUrl": org.URL,
			"SourceSecretArn": aws.ToString(src.ARN), "RotationSchedule": "rate(30 days)", "RecoveryWindowInDays": "0",
			"ReplicaRegions": regions, "Description": "one Docker Hub organization credential for three Regions",
		})
		if err != nil || ans.Status != "SUCCESS" {
			return "", fmt.Errorf("creating the replicated rule %s: %v %s", replicated, err, ans.Reason)
		}
		if err := cloud.SecretsManager.WaitRotation(ctx, ans.Data["SecretArn"]); err != nil {
			return "", err
		}
		cloud.NoteIssued()
		fmt.Fprintf(out, "  managed rule %s created in %s, its secret replicated\n", replicated, strings.ReplaceAll(ans.Data["Regions"], ",", ", "))
	}

	b := make([]byte, 12)
	_, _ = rand.Read(b)
	value := "demo-handmade-" + hex.EncodeToString(b)
	hand, err := cloud.SM.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(ptcsecret.Prefix + "hand-made"),
		SecretString: aws.String(`{"username":"` + registries.HubUser + `","access-token":"` + value + `"}`)})
	if err != nil {
		return value, fmt.Errorf("creating the hand-made secret: %w", err)
	}
	if _, err := cloud.ECR.CreatePullThroughCacheRule(ctx, &ecr.CreatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("hand-made"),
		UpstreamRegistry: ecrtypes.UpstreamRegistryDockerHub, UpstreamRegistryUrl: aws.String(hub.URL), CredentialArn: hand.ARN}); err != nil {
		return value, fmt.Errorf("creating the hand-made rule: %w", err)
	}
	fmt.Fprintln(out, `  hand-made rule hand-made created, its secret with the key "access-token" (value not shown)`)

	var buf strings.Builder
	env.Out = io.MultiWriter(out, &buf)
	fmt.Fprintln(out, "\n$ ptc status")
	rep, err := operator.Status(ctx, env)
	if err != nil {
		return value, err
	}
	if err := operator.WriteStatusTable(env, rep); err != nil {
		return value, err
	}
	if replicated != "" {
		fmt.Fprintf(out, "\n$ ptc doctor %s\n", replicated)
		ok, err := operator.Doctor(ctx, env, replicated, "")
		if err != nil {
			return value, err
		}
		if !ok {
			return value, fmt.Errorf("ptc doctor finds the replicated rule %s unhealthy", replicated)
		}
	}
	fmt.Fprintln(out, "\n$ ptc doctor hand-made --image alpine")
	if _, err := operator.Doctor(ctx, env, "hand-made", "alpine"); err != nil {
		return value, err
	}
	got := buf.String()
	if replicated != "" {
		for _, region := range localcloud.ReplicaRegions {
			modes = append(modes, "↳ "+region)
		}
	}
	for _, want := range append(modes, "ops-docker-hub", "managed", "hand-made", `key "access-token" where ECR expects "accessToken"`, "library/alpine") {
		if !strings.Contains(got, want) {
			return value, fmt.Errorf("ptc's output lacks %q", want)
		}
	}
	for _, r := range rep.Rules {
		if strings.HasPrefix(r.Prefix, "ops-") && !r.Healthy() {
			return value, fmt.Errorf("the managed rule is unhealthy: %s", strings.Join(r.Problems, "; "))
		}
	}
	return value, nil
}
