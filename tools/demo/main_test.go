package main

import (
	"bytes"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/localcloud"
	"github.com/ptc-credentials/ptc-credentials/internal/testkit/registries"
)

// TestDemoPrintsNoSecret runs the demo for Docker Hub and GitLab and scans everything it printed
// for every secret value the run created (passwords, tokens, the ResponseURL signature).
func TestDemoPrintsNoSecret(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("aws-lambda-rie runs only on Linux")
	}
	var stdout, stderr bytes.Buffer
	var cloud *localcloud.Cloud
	code := run([]string{"-registries", "docker-hub,gitlab-container-registry", "-logs"}, &stdout, &stderr, func(c *localcloud.Cloud) { cloud = c })
	out := stdout.String() + stderr.String()
	if code != 0 {
		t.Fatalf("demo exited %d:\n%s", code, out)
	}
	if cloud == nil {
		t.Fatal("the demo never started its cloud")
	}
	secrets := cloud.Secrets()
	if len(secrets) < 8 {
		t.Fatalf("the run created only %d secret values; the scan would prove little", len(secrets))
	}
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("a secret value (%d characters) appears in the demo's output", len(s))
		}
	}
	for _, want := range []string{
		"== Docker Hub (docker-hub) ==", "== GitLab (gitlab-container-registry) ==",
		"RotateSecret #2", "IsValid=true", "v1 (revoked): no longer logs in",
		"registry   | create  | rotate | validate | delete  | current token",
		"| SUCCESS | 2/2 ok | IsValid  | SUCCESS |", "All done in",
		`"msg":"promoted pending version"`, // -logs: the rotator's own records
		"$ ptc status", "ops-docker-hub", "$ ptc doctor hand-made --image alpine",
		`✘ secret value: key "access-token" where ECR expects "accessToken"`, `its upstream path is "library/alpine"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "LEAK") || strings.Contains(out, "FAILED") {
		t.Errorf("output reports a failure:\n%s", out)
	}
}

// TestDemoStagedAndFederatedRows runs the rows that store no minting secret — Docker Hub staged
// for an organization that enforces SSO, ACR federated, Chainguard — beside Docker Hub minting:
// every row succeeds, Docker Hub's personal account shows its pulls left, nothing secret (the
// web identity tokens, Chainguard's tokens and pull-token JWTs among them) and nothing that looks
// like a private key or a JWT is printed, and ptc status lists a managed rule of each mode.
func TestDemoStagedAndFederatedRows(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("aws-lambda-rie runs only on Linux")
	}
	var stdout, stderr bytes.Buffer
	var cloud *localcloud.Cloud
	rows := []string{"docker-hub", "docker-hub-staged", "azure-container-registry-federated", "chainguard", "docker-hub-org-3-regions"}
	code := run([]string{"-registries", strings.Join(rows, ","), "-acr-replication", "0s", "-logs"}, &stdout, &stderr, func(c *localcloud.Cloud) { cloud = c })
	out := stdout.String() + stderr.String()
	if code != 0 {
		t.Fatalf("demo exited %d:\n%s", code, out)
	}
	for _, s := range cloud.Secrets() {
		if strings.Contains(out, s) {
			t.Errorf("a secret value (%d characters) appears in the demo's output", len(s))
		}
	}
	tokens := cloud.STS.Tokens()
	if len(tokens) == 0 {
		t.Fatal("the functions got no web identity token: the federated rows did not federate")
	}
	secrets := cloud.Secrets()
	for _, tok := range tokens {
		if !slices.Contains(secrets, tok) {
			t.Error("a web identity token is not among the values the leak scan looks for")
		}
	}
	if m := cloud.KeyMaterial(out); len(m) != 0 {
		t.Errorf("output holds key material or a JWT: %v", m)
	}
	summary := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if title, rest, ok := strings.Cut(l, " | "); ok {
			summary[strings.TrimSpace(title)] = rest
		}
	}
	if !strings.Contains(summary["registry"], "| pulls left |") {
		t.Errorf("the summary has no pulls left column: %q", summary["registry"])
	}
	for _, title := range []string{"Docker Hub", "Docker Hub (staged, SSO org)", "Azure Container Registry (federated)", "Chainguard"} {
		row, ok := summary[title]
		if !ok || !strings.HasPrefix(row, "SUCCESS | 2/2 ok | IsValid  | SUCCESS |") {
			t.Errorf("row %q = %q, want every step to succeed", title, row)
		}
	}
	// The three-Region row rotates once by default (-rotations 0 leaves it to the row) and says
	// how few organization tokens one replicated credential needs.
	if row := summary["Docker Hub (organization)"]; !strings.HasPrefix(row, "SUCCESS | 1/1 ok | IsValid  | SUCCESS |") {
		t.Errorf("the three-Region row = %q, want one rotation and every step to succeed", row)
	}
	if m := regexp.MustCompile(`held at most (\d+) token\(s\) at once`).FindStringSubmatch(out); m == nil || m[1] < "1" || m[1] > "3" {
		t.Errorf("the three-Region note gives the organization's peak as %v, want 1 to 3:\n%s", m, out)
	}
	if cells := strings.Split(summary["Docker Hub"], " | "); len(cells) < 7 || strings.TrimSpace(cells[6]) != strconv.Itoa(registries.HubPullLimit) {
		t.Errorf("Docker Hub's pulls left in %q, want %d (HEAD does not count as a pull)", summary["Docker Hub"], registries.HubPullLimit)
	}
	if cells := strings.Split(summary["Docker Hub (staged, SSO org)"], " | "); len(cells) < 7 || strings.TrimSpace(cells[6]) != "unlimited" {
		t.Errorf("the SSO organization's pulls left in %q, want unlimited (Docker Business: no pull limit, no rate-limit header)", summary["Docker Hub (staged, SSO org)"])
	}
	for _, want := range []string{
		"== Docker Hub (staged, SSO org) (docker-hub-staged) ==", "== Azure Container Registry (federated) (azure-container-registry-federated) ==",
		"== Chainguard (chainguard) ==", "the owner signed in with SSO and made organization access token",
		"serves rules in 3 Regions", "rule in eu-west-1", "rule in ap-southeast-2", "ECR in ap-southeast-2 ValidatePullThroughCacheRule",
		"$ ptc status", "ops-docker-hub-sso", "ops-acr-federated", "ops-chainguard", "All done in",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "LEAK") || strings.Contains(out, "FAILED") {
		t.Errorf("output reports a failure:\n%s", out)
	}
}

func TestDemoRefusesBadInput(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-no-such-flag"}, &stdout, &stderr, nil); code != 2 {
		t.Errorf("unknown flag: exit %d, want 2", code)
	}
	if code := run([]string{"extra"}, &stdout, &stderr, nil); code != 2 {
		t.Errorf("stray argument: exit %d, want 2", code)
	}
}
