package ecremu

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The aws CLI (botocore, an independent implementation of the protocol) must parse the
// emulator's answers and map its errors to the modeled codes.
func TestAWSCLI(t *testing.T) {
	bin, err := exec.LookPath("aws")
	if err != nil {
		t.Skip("aws CLI is not on PATH; it is the independent client check of the wire format")
	}
	t.Parallel()
	e := start(t, Options{})
	home := t.TempDir()
	awsCLI := func(args ...string) ([]byte, string, error) {
		cmd := exec.CommandContext(ctx(t), bin, append(args, "--endpoint-url", e.hs.URL, "--region", "us-east-1", "--output", "json")...)
		// A clean environment: no profile, config or metadata lookups leak in from the machine.
		cmd.Env = []string{
			"PATH=" + os.Getenv("PATH"), "HOME=" + home,
			"AWS_ACCESS_KEY_ID=x", "AWS_SECRET_ACCESS_KEY=x",
			"AWS_CONFIG_FILE=" + filepath.Join(home, "config"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "credentials"),
			"AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=", "AWS_MAX_ATTEMPTS=1",
		}
		if v := os.Getenv("PYENV_ROOT"); v != "" { // the aws shim here is a pyenv one
			cmd.Env = append(cmd.Env, "PYENV_ROOT="+v)
		}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.Bytes(), stderr.String(), err
	}

	type result struct {
		out    []byte
		stderr string
		err    error
	}
	// Each CLI start costs about a second, so independent calls run side by side.
	parallel := func(calls ...[]string) []result {
		res := make([]result, len(calls))
		var wg sync.WaitGroup
		for i, args := range calls {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res[i].out, res[i].stderr, res[i].err = awsCLI(args...)
			}()
		}
		wg.Wait()
		return res
	}

	// Round 1: a create, and a describe that must fail whatever else exists.
	r := parallel(
		[]string{"ecr", "create-pull-through-cache-rule", "--ecr-repository-prefix", "k8s", "--upstream-registry-url", "registry.k8s.io", "--upstream-registry", "k8s"},
		[]string{"ecr", "describe-pull-through-cache-rules", "--ecr-repository-prefixes", "nope"},
	)
	if r[0].err != nil {
		t.Fatalf("create: %v\n%s", r[0].err, r[0].stderr)
	}
	var created map[string]any
	if err := json.Unmarshal(r[0].out, &created); err != nil {
		t.Fatalf("CLI output is not JSON: %v\n%s", err, r[0].out)
	}
	if created["ecrRepositoryPrefix"] != "k8s" || created["upstreamRegistry"] != "k8s" || created["registryId"] != DefaultAccountID || created["createdAt"] == nil {
		t.Errorf("create output = %s", r[0].out)
	}
	wantCLIError(t, "describe unknown prefix", r[1].err, r[1].stderr, "PullThroughCacheRuleNotFoundException", "DescribePullThroughCacheRules")

	// Round 2: describe what exists, and create it again.
	r = parallel(
		[]string{"ecr", "describe-pull-through-cache-rules"},
		[]string{"ecr", "create-pull-through-cache-rule", "--ecr-repository-prefix", "k8s", "--upstream-registry-url", "registry.k8s.io"},
	)
	if r[0].err != nil {
		t.Fatalf("describe: %v\n%s", r[0].err, r[0].stderr)
	}
	var described struct {
		PullThroughCacheRules []struct {
			EcrRepositoryPrefix string `json:"ecrRepositoryPrefix"`
			UpstreamRegistryURL string `json:"upstreamRegistryUrl"`
			CreatedAt           any    `json:"createdAt"`
		} `json:"pullThroughCacheRules"`
	}
	if err := json.Unmarshal(r[0].out, &described); err != nil {
		t.Fatalf("describe output is not JSON: %v\n%s", err, r[0].out)
	}
	if len(described.PullThroughCacheRules) != 1 || described.PullThroughCacheRules[0].EcrRepositoryPrefix != "k8s" ||
		described.PullThroughCacheRules[0].UpstreamRegistryURL != "registry.k8s.io" || described.PullThroughCacheRules[0].CreatedAt == nil {
		t.Errorf("describe output = %s", r[0].out)
	}
	wantCLIError(t, "duplicate create", r[1].err, r[1].stderr, "PullThroughCacheRuleAlreadyExistsException", "CreatePullThroughCacheRule")

	// Round 3: delete returns the rule.
	out, stderr, err := awsCLI("ecr", "delete-pull-through-cache-rule", "--ecr-repository-prefix", "k8s")
	if err != nil {
		t.Fatalf("delete: %v\n%s", err, stderr)
	}
	if !bytes.Contains(out, []byte(`"ecrRepositoryPrefix": "k8s"`)) {
		t.Errorf("delete output = %s", out)
	}
	if len(e.srv.Rules()) != 0 {
		t.Errorf("rules left: %+v", e.srv.Rules())
	}
}

func wantCLIError(t *testing.T, what string, err error, stderr string, code, detail string) {
	t.Helper()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Errorf("%s: err = %v, want a non-zero exit\n%s", what, err, stderr)
		return
	}
	if !strings.Contains(stderr, "("+code+")") || !strings.Contains(stderr, detail) {
		t.Errorf("%s: stderr %q, want the code (%s) and %q", what, stderr, code, detail)
	}
}
