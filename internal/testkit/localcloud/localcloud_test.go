package localcloud

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/ptc-credentials/ptc-credentials/internal/provision"
	"github.com/ptc-credentials/ptc-credentials/internal/ptcsecret"
)

func startCloud(t *testing.T) *Cloud {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("aws-lambda-rie runs only on Linux")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := Start(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// TestScenarioEveryRegistry runs the demo's scenario for each registry through the real
// bootstraps and checks what it reports against what the emulators hold, then that nothing
// secret reached any output, then that Close stops everything.
func TestScenarioEveryRegistry(t *testing.T) {
	c := startCloud(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var said bytes.Buffer
	var results []Result

	for _, reg := range c.Registries() {
		t.Run(reg.Name, func(t *testing.T) {
			r := c.RunScenario(ctx, &said, reg.Name, ScenarioOptions{Rotations: 2})
			results = append(results, r)
			checkResult(t, c, reg, r)
		})
	}

	// Nothing secret in the narrative, the functions' output, the Invoke answers or
	// CloudFormation's answers; and the scan would have seen one.
	text := said.String() + c.Transcript()
	if n := c.Leaks(text); n != 0 {
		t.Errorf("%d secret values leaked into the output", n)
	}
	secrets := c.Secrets()
	for _, s := range []string{c.hubPassword, c.acrClientSecret, c.gitlabOwnerToken, c.presignedSig} {
		if !slices.Contains(secrets, s) {
			t.Error("a source credential is missing from Secrets")
		}
	}
	if len(secrets) < 15 {
		t.Errorf("Secrets knows %d values; the scenarios minted more than that", len(secrets))
	}
	if c.Leaks("x "+c.hubPassword+" y") != 1 {
		t.Error("Leaks does not find a planted value")
	}
	for _, want := range []string{`"level":"INFO"`, `"CloudWatchMetrics"`} {
		if !strings.Contains(c.Rotator.Output(), want) {
			t.Errorf("rotator output lacks %s", want)
		}
	}

	// A request the provisioner refuses still gets exactly one answer: FAILED, naming the property.
	t.Run("bad request", func(t *testing.T) {
		before := len(c.Answers())
		a, err := c.CustomResource(ctx, "Create", "", map[string]any{"EcrRepositoryPrefix": "x", "UpstreamRegistry": "docker-hub"})
		if err != nil {
			t.Fatal(err)
		}
		if a.Status != "FAILED" || !strings.Contains(a.Reason, "SourceSecretArn") || a.LogicalResourceID != DefaultLogicalID {
			t.Errorf("answer %s %q (logical %q)", a.Status, a.Reason, a.LogicalResourceID)
		}
		if n := len(c.Answers()) - before; n != 1 {
			t.Errorf("CloudFormation received %d answers", n)
		}
	})

	var table bytes.Buffer
	WriteSummary(&table, results)
	if lines := strings.Split(strings.TrimSpace(table.String()), "\n"); len(lines) != 2+len(results) ||
		!strings.HasPrefix(lines[0], "registry") || !strings.Contains(lines[2], "Docker Hub") {
		t.Errorf("summary table:\n%s", table.String())
	}
	if t.Failed() {
		t.Logf("narrative:\n%s", said.String())
	}

	// Close stops the functions and every server, and may be called again.
	c.Close()
	for _, f := range []*Function{c.Rotator, c.Provisioner} {
		select {
		case <-f.Exited():
		default:
			t.Errorf("%s's aws-lambda-rie still runs after Close", f.Name)
		}
		if conn, err := net.DialTimeout("tcp", f.Addr, time.Second); err == nil {
			conn.Close()
			t.Errorf("%s's Invoke address %s still accepts connections after Close", f.Name, f.Addr)
		}
	}
	for _, u := range []string{c.SecretsManagerURL, c.ECRURL, c.HubURL, c.ACRURL, c.GHCRURL, c.GitLabURL, c.cfnURL} {
		if resp, err := http.Get(u); err == nil {
			resp.Body.Close()
			t.Errorf("%s still answers after Close", u)
		}
	}
	c.Close()
}

// checkResult compares what the scenario reported with what the emulators hold.
func checkResult(t *testing.T, c *Cloud, reg Registry, r Result) {
	t.Helper()
	for _, s := range r.Steps {
		if s.Err != nil {
			t.Errorf("step %s: %v", s.Name, s.Err)
		}
	}
	if !r.OK() {
		return
	}
	name := ptcsecret.Prefix + reg.Prefix
	if r.Created.Status != "SUCCESS" || r.Created.Method != http.MethodPut || r.Created.PhysicalResourceID != provision.PhysicalID(reg.Prefix, name) ||
		r.Created.StackID != c.StackID || r.Created.Query.Get("X-Amz-Signature") != c.presignedSig {
		t.Errorf("Create answer %s %s physical %q stack %q", r.Created.Method, r.Created.Status, r.Created.PhysicalResourceID, r.Created.StackID)
	}
	// The provisioner returns nothing once CloudFormation has its answer: Lambda's JSON null.
	if inv := r.Created.Invocation; inv.Status != http.StatusOK || strings.TrimSpace(string(inv.Body)) != "null" {
		t.Errorf("Create Invoke answered %d %s", inv.Status, inv.Body)
	}
	if got, want := r.Created.Data["RepositoryUriPrefix"], AccountID+".dkr.ecr."+Region+".amazonaws.com/"+reg.Prefix; got != want {
		t.Errorf("RepositoryUriPrefix %q, want %q", got, want)
	}
	if len(r.Versions) != 3 || len(r.Rotations) != 2 {
		t.Fatalf("%d versions and %d rotations, want 3 and 2", len(r.Versions), len(r.Rotations))
	}
	for i, rot := range r.Rotations {
		var steps []string
		for _, s := range rot.Steps {
			steps = append(steps, s.Step)
		}
		if !rot.Immediately || !rot.Done || rot.Err != "" || !rot.Promoted || rot.VersionID != r.Versions[i+1] ||
			!slices.Equal(steps, []string{"createSecret", "setSecret", "testSecret", "finishSecret"}) {
			t.Errorf("rotation %d: %+v", i+1, rot)
		}
	}
	if !r.Valid || r.ValidateFailure != "" {
		t.Errorf("ValidatePullThroughCacheRule: valid %v, failure %q", r.Valid, r.ValidateFailure)
	}
	if r.Deleted.Status != "SUCCESS" || r.Deleted.PhysicalResourceID != r.Created.PhysicalResourceID || !r.RuleGone || !r.SecretGone {
		t.Errorf("Delete: %s %q rule gone %v secret gone %v", r.Deleted.Status, r.Deleted.PhysicalResourceID, r.RuleGone, r.SecretGone)
	}
	for _, rule := range c.ECRServer.Rules() {
		if rule.EcrRepositoryPrefix == reg.Prefix {
			t.Errorf("ECR still has rule %s", reg.Prefix)
		}
	}
	_, err := c.SM.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
	if err == nil {
		t.Errorf("secret %s still exists", name)
	}

	key := ptcsecret.Key(Region, AccountID, name)
	switch reg.Name {
	case ptcsecret.UpstreamDockerHub:
		if !slices.Equal(r.Revoked, []string{"v1 (deleted)"}) {
			t.Errorf("revoked %v, want the first token only", r.Revoked)
		}
		for _, tk := range c.Hub.Tokens() {
			if _, ok := ptcsecret.VersionFromLabel(key, tk.Label); ok {
				t.Errorf("Docker Hub still holds %s", tk.Label)
			}
		}
	case ptcsecret.UpstreamGitLab:
		if !slices.Equal(r.Revoked, []string{"v1 (revoked)"}) {
			t.Errorf("revoked %v, want the first token only", r.Revoked)
		}
		n := 0
		for _, tk := range c.GitLab.Tokens() {
			if _, ok := ptcsecret.VersionFromLabel(key, tk.Name); ok {
				n++
				if !tk.Revoked {
					t.Errorf("GitLab token %s is not revoked", tk.Name)
				}
			}
		}
		if n != 3 {
			t.Errorf("GitLab holds %d tokens of the secret, want the 3 minted", n)
		}
	case ptcsecret.UpstreamACR:
		if !slices.Equal(r.Revoked, []string{"v1 (slot regenerated)"}) {
			t.Errorf("revoked %v, want v1, whose slot the second rotation regenerated", r.Revoked)
		}
		if !strings.HasSuffix(r.Current, ACRToken+"/password1") {
			t.Errorf("current %q, want password1 again after two rotations", r.Current)
		}
	case ptcsecret.UpstreamGHCR:
		if len(r.Revoked) != 0 {
			t.Errorf("revoked %v: the rotator must never revoke a person's PAT", r.Revoked)
		}
		for _, tk := range c.GHCR.Tokens() {
			if tk.Revoked {
				t.Error("a GitHub PAT was revoked")
			}
		}
		if !strings.HasSuffix(r.Current, "PAT #3") {
			t.Errorf("current %q, want the third PAT a person staged", r.Current)
		}
	}
	if reg.Name != ptcsecret.UpstreamGHCR && len(r.StillLogIn) != 0 {
		t.Errorf("after Delete %v still log in", r.StillLogIn)
	}
}
