package main

import (
	"bytes"
	"runtime"
	"strings"
	"testing"

	"github.com/ptc-credentials/ptc-credentials/internal/testkit/localcloud"
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

func TestDemoRefusesBadInput(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-no-such-flag"}, &stdout, &stderr, nil); code != 2 {
		t.Errorf("unknown flag: exit %d, want 2", code)
	}
	if code := run([]string{"extra"}, &stdout, &stderr, nil); code != 2 {
		t.Errorf("stray argument: exit %d, want 2", code)
	}
}
